//! Organizations API (`/admin/v1`, `/admin/v2`) and User management API (`/users/{id}/manage`).

use std::collections::HashSet;

use axum::{http::Method, response::Response};
use jiff::{Timestamp, tz::TimeZone};
use serde::{Deserialize, Serialize};

use super::{Ctx, Cursor, decode_cursor, encode_cursor, invalid_cursor, json, no_content};
use crate::sim::Faults;
use crate::sim::state::{
    AccountStatus, InstanceIdx, SimAccountType, SimGroup, SimOutcome, SimState, SimUser, WriteError, v2_status,
};

pub(super) fn route(ctx: &Ctx<'_>, method: &Method, segs: &[&str]) -> Option<Response> {
    let m = method.as_str();
    Some(match (m, segs) {
        ("GET", ["admin", "v1", "orgs"]) => list_orgs(ctx),
        ("GET", ["admin", "v1", "orgs", org]) => with_org(ctx, org, get_org),
        ("GET", ["admin", "v1", "orgs", org, "users"]) => with_org(ctx, org, super::site::v1_users),
        ("GET", ["admin", "v1", "orgs", org, "events"]) => with_org(ctx, org, super::site::v1_events),
        ("GET", ["admin", "v1", "orgs", org, "events", id]) => with_org(ctx, org, |ctx| super::site::v1_event(ctx, id)),
        ("GET", ["admin", "v1", "orgs", org, "domains"]) => {
            with_org(ctx, org, |ctx| super::site::v1_domains(ctx, None))
        }
        ("GET", ["admin", "v1", "orgs", org, "domains", id]) => {
            with_org(ctx, org, |ctx| super::site::v1_domains(ctx, Some(id)))
        }
        ("GET", ["admin", "v1", "orgs", org, "directory", "users", acct, "last-active-dates"]) => {
            with_org(ctx, org, |ctx| super::site::last_active_dates(ctx, acct))
        }
        (
            "POST",
            ["admin", "v1", "orgs", org, "directory", "users", acct, op @ ("suspend-access" | "restore-access")],
        ) => with_org(ctx, org, |ctx| super::site::v1_user_write(ctx, op, acct)),
        ("DELETE", ["admin", "v1", "orgs", org, "directory", "users", acct]) => {
            with_org(ctx, org, |ctx| super::site::v1_user_write(ctx, "remove", acct))
        }
        ("POST", ["admin", "v1", "orgs", org, "directory", "groups", group, "memberships"]) => {
            with_org(ctx, org, |ctx| super::site::v1_membership(ctx, group, None))
        }
        ("DELETE", ["admin", "v1", "orgs", org, "directory", "groups", group, "memberships", acct]) => {
            with_org(ctx, org, |ctx| super::site::v1_membership(ctx, group, Some(acct)))
        }
        ("GET", ["admin", "v2", "orgs", org, "directories"]) => with_org(ctx, org, list_directories),
        ("GET", ["admin", "api-access", "v1", "orgs", org, "api-tokens"]) => with_org(ctx, org, list_api_tokens),
        ("GET", ["admin", "v2", "orgs", org, "directories", dir, "users", "stats"]) => {
            with_org(ctx, org, |ctx| user_stats(ctx, dir))
        }
        ("POST", ["admin", "v2", "orgs", org, "users", "invite"]) => with_org(ctx, org, invite),
        ("POST", ["admin", "v2", "orgs", org, "directories", dir, "users", "search"]) => {
            with_org(ctx, org, |ctx| search_users(ctx, dir))
        }
        ("GET", ["admin", "v2", "orgs", org, "directories", dir, "users", acct]) => {
            with_org(ctx, org, |ctx| get_user(ctx, dir, acct))
        }
        ("DELETE", ["admin", "v2", "orgs", org, "directories", dir, "users", acct]) => {
            with_org(ctx, org, |ctx| user_write(ctx, dir, acct, "user.remove"))
        }
        ("POST", ["admin", "v2", "orgs", org, "directories", dir, "users", acct, "suspend"]) => {
            with_org(ctx, org, |ctx| user_write(ctx, dir, acct, "user.suspend"))
        }
        ("POST", ["admin", "v2", "orgs", org, "directories", dir, "users", acct, "restore"]) => {
            with_org(ctx, org, |ctx| user_write(ctx, dir, acct, "user.restore"))
        }
        ("GET", ["admin", "v2", "orgs", org, "directories", dir, "users", acct, "role-assignments"]) => {
            with_org(ctx, org, |ctx| user_role_assignments(ctx, dir, acct))
        }
        ("POST", ["admin", "v2", "orgs", org, "directories", dir, "groups", "search"]) => {
            with_org(ctx, org, |ctx| search_groups(ctx, dir))
        }
        ("GET", ["admin", "v2", "orgs", org, "directories", dir, "groups", group]) => {
            with_org(ctx, org, |ctx| get_group(ctx, dir, group))
        }
        ("GET", ["admin", "v2", "orgs", org, "directories", dir, "groups", group, "role-assignments"]) => {
            with_org(ctx, org, |ctx| group_role_assignments(ctx, dir, group))
        }
        ("POST", ["admin", "v2", "orgs", org, "directories", dir, "groups", group, "memberships"]) => {
            with_org(ctx, org, |ctx| add_membership(ctx, dir, group))
        }
        ("DELETE", ["admin", "v2", "orgs", org, "directories", dir, "groups", group, "memberships", acct]) => {
            with_org(ctx, org, |ctx| remove_membership(ctx, dir, group, acct))
        }
        ("GET", ["users", acct, "manage"]) => manage(ctx, acct),
        ("POST", ["users", acct, "manage", "lifecycle", op @ ("disable" | "enable")]) => lifecycle(ctx, acct, op),
        _ => return None,
    })
}

fn with_org(ctx: &Ctx<'_>, org: &str, f: impl FnOnce(&Ctx<'_>) -> Response) -> Response {
    if org != ctx.shared.read().org_id {
        return ctx.error(404, "ADMIN-404-2", "Organization not found", &format!("No organization with id {org}."));
    }
    f(ctx)
}

/// `-` means every directory (reads only); otherwise a known directory id.
pub(super) fn directory(ctx: &Ctx<'_>, state: &SimState, dir: &str, write: bool) -> Result<Option<u16>, Response> {
    if dir == "-" {
        if write {
            return Err(ctx.error(
                400,
                "ADMIN-400-4",
                "Invalid resource",
                "directoryId: `-` (all directories) is for reads only; writes need a directory id",
            ));
        }
        return Ok(None);
    }
    state
        .directory_idx(dir)
        .map(Some)
        .ok_or_else(|| ctx.error(404, "ADMIN-404-1", "Unknown resource", &format!("No directory with id {dir}.")))
}

pub(super) fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(super) fn date(t: Timestamp) -> String {
    t.to_zoned(TimeZone::UTC).date().to_string()
}

fn org_json(ctx: &Ctx<'_>, state: &SimState) -> serde_json::Value {
    let base = format!("{}/admin/v1/orgs/{}", ctx.base_url(), state.org_id);
    serde_json::json!({
        "id": state.org_id,
        "type": "orgs",
        "attributes": {"name": state.org_name},
        "relationships": {
            "domains": {"links": {"related": format!("{base}/domains")}},
            "users": {"links": {"related": format!("{base}/users")}},
        },
        "links": {"self": base},
    })
}

fn list_orgs(ctx: &Ctx<'_>) -> Response {
    let state = ctx.shared.read();
    json(
        200,
        &serde_json::json!({"data": [org_json(ctx, &state)], "links": {"self": format!("{}/admin/v1/orgs", ctx.base_url())}}),
    )
}

fn get_org(ctx: &Ctx<'_>) -> Response {
    let state = ctx.shared.read();
    json(200, &serde_json::json!({"data": org_json(ctx, &state)}))
}

#[derive(Serialize, Deserialize, Default, Clone)]
struct DirectoryQuery {
    account_id: Option<String>,
    limit: u32,
}

fn list_directories(ctx: &Ctx<'_>) -> Response {
    let (q, at, page) = match ctx.query.get("cursor") {
        Some(raw) => match decode_cursor::<DirectoryQuery>(raw) {
            Some(c) => (c.q, c.at, c.page),
            None => return invalid_cursor(ctx),
        },
        None => match ctx.query.int("limit", 20, 1, 100) {
            Ok(limit) => (DirectoryQuery { account_id: ctx.query.get("accountId").map(str::to_string), limit }, 0, 1),
            Err(e) => return ctx.error(400, "ADMIN-400-24", "Invalid request", &e),
        },
    };
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let state = ctx.shared.read();
    let wanted: Vec<usize> = (0..state.directories.len())
        .filter(|&d| match &q.account_id {
            Some(a) => state.directories_of(a).contains(&(d as u16)),
            None => true,
        })
        .collect();
    let slice: Vec<_> = wanted.iter().skip(at).take(q.limit as usize).collect();
    let data: Vec<_> = slice
        .iter()
        .map(|&&d| serde_json::json!({"directoryId": state.directories[d].id, "name": state.directories[d].name}))
        .collect();
    let mut links = serde_json::Map::new();
    links.insert("self".into(), encode_cursor(&Cursor { q: q.clone(), at, page }).into());
    if at + slice.len() < wanted.len() {
        links.insert("next".into(), encode_cursor(&Cursor { q, at: at + slice.len(), page: page + 1 }).into());
    }
    json(200, &serde_json::json!({"data": data, "links": links}))
}

// ---------------------------------------------------------------- users

/// The body of `POST .../users/search`; also what a cursor carries.
#[derive(Serialize, Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct UserSearch {
    #[serde(skip_serializing)]
    cursor: Option<String>,
    limit: Option<u32>,
    account_ids: Option<Vec<String>>,
    emails: Option<Vec<String>>,
    email_domains: Option<Vec<String>>,
    group_ids: Option<Vec<String>>,
    status: Option<Vec<String>>,
    claim_status: Option<String>,
    account_status: Option<Vec<String>>,
    membership_status: Option<Vec<String>>,
    search_term: Option<String>,
    expand: Option<Vec<String>>,
}

const STATUSES: [&str; 5] = ["active", "suspended", "not_invited", "deactivated", "for_deletion"];
const USER_EXPANDS: [&str; 4] = ["productAccess", "groups", "platformRoles", "counts.resources"];

#[derive(Clone, Copy, Default)]
pub(super) struct Expand {
    pub product_access: bool,
    pub groups: bool,
    pub platform_roles: bool,
}

impl Expand {
    fn of(list: &[String]) -> Self {
        let has = |k: &str| list.iter().any(|e| e == k);
        Expand { product_access: has("productAccess"), groups: has("groups"), platform_roles: has("platformRoles") }
    }
}

impl UserSearch {
    fn validate(&self) -> Result<(), String> {
        if let Some(l) = self.limit
            && !(1..=100).contains(&l)
        {
            return Err(format!("limit: {l} is out of range (1 to 100)"));
        }
        for s in self.status.iter().flatten() {
            if !STATUSES.contains(&s.as_str()) {
                return Err(format!("status: unknown value {s:?} (expected one of {})", STATUSES.join(", ")));
            }
        }
        if let Some(c) = &self.claim_status
            && c != "managed"
            && c != "unmanaged"
        {
            return Err(format!("claimStatus: unknown value {c:?} (expected managed or unmanaged)"));
        }
        for e in self.expand.iter().flatten() {
            if !USER_EXPANDS.contains(&e.as_str()) {
                return Err(format!("expand: unknown value {e:?} (expected one of {})", USER_EXPANDS.join(", ")));
            }
        }
        if self.search_term.is_some() && self.emails.is_some() {
            return Err("searchTerm and emails cannot be used together".to_string());
        }
        Ok(())
    }
}

/// A search compiled against the state.
struct UserFilter {
    directory: Option<u16>,
    ids: Option<HashSet<String>>,
    emails: Option<HashSet<String>>,
    domains: Option<Vec<String>>,
    groups: Option<Vec<u32>>,
    status: Option<Vec<String>>,
    claim_managed: Option<bool>,
    account_status: Option<Vec<String>>,
    membership_status: Option<Vec<String>>,
    term: Option<String>,
}

impl UserFilter {
    fn new(state: &SimState, directory: Option<u16>, q: &UserSearch) -> Self {
        let lower = |v: &Vec<String>| v.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>();
        UserFilter {
            directory,
            ids: q.account_ids.as_ref().map(|v| v.iter().cloned().collect()),
            emails: q.emails.as_ref().map(|v| lower(v).into_iter().collect()),
            domains: q.email_domains.as_ref().map(lower),
            groups: q.group_ids.as_ref().map(|v| v.iter().filter_map(|g| state.group_idx(g)).collect()),
            status: q.status.clone(),
            claim_managed: q.claim_status.as_deref().map(|c| c == "managed"),
            account_status: q.account_status.clone(),
            membership_status: q.membership_status.clone(),
            term: q.search_term.as_ref().map(|t| t.to_lowercase()),
        }
    }

    fn matches(&self, u: &SimUser) -> bool {
        if !u.is_directory_user() || self.directory.is_some_and(|d| d != u.directory) {
            return false;
        }
        if self.ids.as_ref().is_some_and(|ids| !ids.contains(&u.account_id)) {
            return false;
        }
        if let Some(emails) = &self.emails
            && !u.email.as_ref().is_some_and(|e| emails.contains(&e.to_ascii_lowercase()))
        {
            return false;
        }
        if let Some(domains) = &self.domains
            && !u.email_domain().is_some_and(|d| domains.iter().any(|x| x.eq_ignore_ascii_case(d)))
        {
            return false;
        }
        if let Some(groups) = &self.groups
            && !u.groups.iter().any(|g| groups.contains(g))
        {
            return false;
        }
        if let Some(status) = &self.status
            && !status.iter().any(|s| s == v2_status(u))
        {
            return false;
        }
        if self.claim_managed.is_some_and(|m| m != u.managed) {
            return false;
        }
        if let Some(a) = &self.account_status
            && !a.iter().any(|s| s == u.account_status.api())
        {
            return false;
        }
        if let Some(m) = &self.membership_status
            && !m.iter().any(|s| s == u.membership.api())
        {
            return false;
        }
        if let Some(t) = &self.term
            && !(u.name.to_lowercase().contains(t) || u.email.as_ref().is_some_and(|e| e.to_lowercase().contains(t)))
        {
            return false;
        }
        true
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UserJson<'a> {
    account_id: &'a str,
    account_type: &'static str,
    status: &'static str,
    account_status: &'static str,
    membership_status: &'static str,
    added_to_org: String,
    name: &'a str,
    nickname: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    email_verified: bool,
    claim_status: &'static str,
    management_source: Option<&'static str>,
    /// When the account was deactivated; only on deactivated accounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    deactivated_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    department: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform_roles: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_access: Option<Vec<ProductAccessJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<GroupRefJson<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProductAccessJson<'a> {
    key: &'a str,
    id: &'a str,
    last_active_timestamp: Option<String>,
}

#[derive(Serialize)]
pub(super) struct GroupRefJson<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
}

pub(super) fn platform_roles(state: &SimState, u: &SimUser) -> Vec<&'static str> {
    let mut roles = Vec::new();
    if u.org_admin {
        roles.push("atlassian/org-admin");
    }
    if state.is_site_admin(u) {
        roles.push("atlassian/site-admin");
    }
    roles
}

pub(super) fn user_json<'a>(state: &'a SimState, u: &'a SimUser, expand: Expand) -> UserJson<'a> {
    UserJson {
        account_id: &u.account_id,
        account_type: u.account_type.api(),
        status: v2_status(u),
        account_status: u.account_status.api(),
        membership_status: u.membership.api(),
        added_to_org: rfc3339(u.added_to_org),
        name: &u.name,
        nickname: u.name.split(' ').next().unwrap_or(&u.name),
        email: u.email.as_deref(),
        email_verified: u.email_verified,
        claim_status: if u.managed { "managed" } else { "unmanaged" },
        management_source: u.management_source.map(|m| m.api()),
        deactivated_on: u.deactivated_on.filter(|_| u.account_status != AccountStatus::Active).map(rfc3339),
        department: u.department.as_deref(),
        platform_roles: expand.platform_roles.then(|| platform_roles(state, u)),
        product_access: expand.product_access.then(|| {
            state
                .access_of(u)
                .into_iter()
                .map(|i| {
                    let p = &state.products[i as usize];
                    ProductAccessJson {
                        key: p.product.v2_key(),
                        id: &p.id,
                        last_active_timestamp: u.last_active_on(i).map(rfc3339),
                    }
                })
                .collect()
        }),
        groups: expand.groups.then(|| {
            u.groups
                .iter()
                .map(|&g| {
                    let g = &state.groups[g as usize];
                    GroupRefJson { id: &g.id, name: &g.name, description: &g.description }
                })
                .collect()
        }),
    }
}

/// One page of a user search, serialized (the part measured by the page-latency benchmark).
pub(crate) fn user_search_page(
    state: &SimState,
    directory: Option<u16>,
    q: &UserSearch,
    at: usize,
    page: u32,
    faults: &Faults,
) -> Vec<u8> {
    let limit = q.limit.unwrap_or(50) as usize;
    let filter = UserFilter::new(state, directory, q);
    let expand = Expand::of(q.expand.as_deref().unwrap_or(&[]));
    let mut hits = Vec::with_capacity(limit);
    let mut next_at = None;
    // Named accounts (the executor's re-read) are looked up, not scanned for; in listing order.
    let candidates: Box<dyn Iterator<Item = usize>> = match &q.account_ids {
        Some(ids) => {
            let mut found: Vec<usize> = ids.iter().flat_map(|id| state.entries_of(id)).filter(|&i| i >= at).collect();
            found.sort_unstable();
            found.dedup();
            Box::new(found.into_iter())
        }
        None => Box::new(at..state.users.len()),
    };
    for i in candidates {
        let u = &state.users[i];
        // Across all directories an account is listed once.
        if directory.is_none() && state.listed_entry(&u.account_id) != Some(i) {
            continue;
        }
        if filter.matches(u) {
            if hits.len() == limit {
                next_at = Some(i);
                break;
            }
            hits.push(u);
        }
    }
    #[derive(Serialize)]
    struct Links {
        #[serde(rename = "self")]
        this: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    }
    #[derive(Serialize)]
    struct Page<'a> {
        data: Vec<UserJson<'a>>,
        links: Links,
    }
    let body = Page {
        data: hits.into_iter().map(|u| user_json(state, u, expand)).collect(),
        links: Links {
            this: encode_cursor(&Cursor { q: q.clone(), at, page }),
            next: faults
                .next_page(at, page, next_at)
                .map(|(at, page)| encode_cursor(&Cursor { q: q.clone(), at, page })),
        },
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The server-side work of one `users/search` page without HTTP: parse, validate, filter, page and
/// serialize. `directory` is a directory id (`None`: all directories).
pub(crate) fn users_search_page(state: &SimState, directory: Option<&str>, body: &[u8]) -> Result<Vec<u8>, String> {
    let body: UserSearch = serde_json::from_slice(body).map_err(|e| format!("request body: {e}"))?;
    let (q, at, page) = match &body.cursor {
        Some(raw) => {
            let c = decode_cursor::<UserSearch>(raw).ok_or("cursor: not a cursor this server issued")?;
            (c.q, c.at, c.page)
        }
        None => (body, 0, 1),
    };
    q.validate()?;
    let dir = match directory {
        Some(id) => Some(state.directory_idx(id).ok_or_else(|| format!("directoryId: no directory {id}"))?),
        None => None,
    };
    Ok(user_search_page(state, dir, &q, at, page, &Faults::default()))
}

fn search_users(ctx: &Ctx<'_>, dir: &str) -> Response {
    let body: UserSearch = match ctx.body_json() {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    // With a cursor every other parameter is discarded: the cursor carries the search.
    let (q, at, page) = match &body.cursor {
        Some(raw) => match decode_cursor::<UserSearch>(raw) {
            Some(c) => (c.q, c.at, c.page),
            None => return invalid_cursor(ctx),
        },
        None => (body, 0, 1),
    };
    if let Err(e) = q.validate() {
        return ctx.error(400, "ADMIN-400-24", "Invalid request body", &e);
    }
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let state = ctx.shared.read();
    let directory = match directory(ctx, &state, dir, false) {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    if let Some(d) = directory
        && ctx.faults.empties(&state.directories[d as usize].id, d as usize)
    {
        // The quiet lie: an empty listing, no error, while groups and stats still count members.
        let this = encode_cursor(&Cursor { q, at, page });
        return json(200, &serde_json::json!({"data": [], "links": {"self": this}}));
    }
    super::json_bytes(200, user_search_page(&state, directory, &q, at, page, &ctx.faults))
}

/// `GET .../users/stats`: members of the directory (each account once across all directories)
/// by role and by account status.
fn user_stats(ctx: &Ctx<'_>, dir: &str) -> Response {
    let state = ctx.shared.read();
    let directory = match directory(ctx, &state, dir, false) {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let (mut users, mut org_admins, mut site_admins) = (0u32, 0u32, 0u32);
    let mut by_status = [0u32; 3];
    for (i, u) in state.users.iter().enumerate() {
        let counted = match directory {
            Some(d) => u.directory == d && u.is_member(),
            None => state.listed_entry(&u.account_id) == Some(i),
        };
        if !counted || u.account_type != SimAccountType::Atlassian {
            continue;
        }
        by_status[u.account_status as usize] += 1;
        users += u32::from(!state.access_of(u).is_empty());
        org_admins += u32::from(u.org_admin);
        site_admins += u32::from(state.is_site_admin(u));
    }
    let statuses = [AccountStatus::Active, AccountStatus::Inactive, AccountStatus::Closed];
    json(
        200,
        &serde_json::json!({
            "roles": [
                {"roleId": "atlassian/user", "count": users},
                {"roleId": "atlassian/org-admin", "count": org_admins},
                {"roleId": "atlassian/site-admin", "count": site_admins},
            ],
            "accountStatus": statuses.iter().map(|s| serde_json::json!({"status": s.api(), "count": by_status[*s as usize]})).collect::<Vec<_>>(),
        }),
    )
}

// ---------------------------------------------------------------- API tokens (API Access API)

#[derive(Serialize, Deserialize, Default, Clone)]
struct TokenQuery {
    limit: u32,
    status: Option<String>,
    q: Option<String>,
}

/// `GET /admin/api-access/v1/orgs/{orgId}/api-tokens`: every user API token of the managed
/// accounts, with `lastActiveAt` (API.md §2.10), cursor-paged.
fn list_api_tokens(ctx: &Ctx<'_>) -> Response {
    if ctx.faults.api_tokens_refused {
        return ctx.error(
            403,
            "ADMIN-403-3",
            "Forbidden",
            "Listing API tokens needs Atlassian Guard and an API key with read:tokens:admin (injected fault api-tokens=403).",
        );
    }
    let (q, at, page) = match ctx.query.get("cursor") {
        Some(raw) => match decode_cursor::<TokenQuery>(raw) {
            Some(c) => (c.q, c.at, c.page),
            None => return invalid_cursor(ctx),
        },
        None => match ctx.query.int("limit", 50, 1, 100) {
            Ok(limit) => (
                TokenQuery {
                    limit,
                    status: ctx.query.get("status").map(str::to_string),
                    q: ctx.query.get("q").map(str::to_lowercase),
                },
                0,
                1,
            ),
            Err(e) => return ctx.error(400, "ADMIN-400-24", "Invalid request", &e),
        },
    };
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let state = ctx.shared.read();
    let matches = |t: &crate::sim::state::SimApiToken| {
        let owner = state.user(&t.account_id);
        q.status.as_deref().is_none_or(|s| s.eq_ignore_ascii_case("ALLOWED"))
            && q.q.as_deref().is_none_or(|needle| {
                t.label.to_lowercase().contains(needle)
                    || owner.is_some_and(|u| {
                        u.name.to_lowercase().contains(needle)
                            || u.email.as_deref().is_some_and(|e| e.to_lowercase().contains(needle))
                    })
            })
    };
    let mut data = Vec::new();
    let mut next_at = None;
    for (i, t) in state.api_tokens.iter().enumerate().skip(at) {
        if !matches(t) {
            continue;
        }
        if data.len() == q.limit as usize {
            next_at = Some(i);
            break;
        }
        let owner = state.user(&t.account_id);
        let mut user = serde_json::json!({"id": t.account_id, "orgId": state.org_id});
        if let Some(u) = owner {
            user["name"] = u.name.as_str().into();
            if let Some(e) = &u.email {
                user["email"] = e.as_str().into();
            }
        }
        data.push(serde_json::json!({
            "id": t.id,
            "label": t.label,
            "status": "ALLOWED",
            "createdAt": rfc3339(t.created_at),
            "expiresAt": rfc3339(t.expires_at),
            "lastActiveAt": t.last_active_at.map(rfc3339),
            "user": user,
        }));
    }
    let mut links = serde_json::Map::new();
    links.insert("self".into(), encode_cursor(&Cursor { q: q.clone(), at, page }).into());
    if let Some((at, page)) = ctx.faults.next_page(at, page, next_at) {
        links.insert("next".into(), encode_cursor(&Cursor { q, at, page }).into());
    }
    json(200, &serde_json::json!({"data": data, "links": links}))
}

fn member<'s>(ctx: &Ctx<'_>, state: &'s SimState, dir: &str, acct: &str) -> Result<&'s SimUser, Response> {
    let directory = directory(ctx, state, dir, false)?;
    state
        .entries_of(acct)
        .map(|i| &state.users[i])
        .find(|u| u.is_directory_user() && directory.is_none_or(|d| d == u.directory))
        .ok_or_else(|| ctx.write_error(&WriteError::user_not_found(acct)))
}

fn get_user(ctx: &Ctx<'_>, dir: &str, acct: &str) -> Response {
    let state = ctx.shared.read();
    let user = match member(ctx, &state, dir, acct) {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let mut expand = Expand::of(&ctx.query.all("expand"));
    expand.platform_roles = true;
    json(200, &serde_json::json!({"data": user_json(&state, user, expand)}))
}

/// `{"data":[{"resourceId","resourceOwner","roles"}]}` for a set of grants.
fn role_assignments(state: &SimState, instances: &[InstanceIdx], site_admin_of: &[u16]) -> serde_json::Value {
    let mut data: Vec<serde_json::Value> = instances
        .iter()
        .map(|&i| {
            let p = &state.products[i as usize];
            serde_json::json!({
                "resourceId": p.resource_id(&state.sites),
                "resourceOwner": p.product.v2_key(),
                "roles": ["atlassian/user"],
            })
        })
        .collect();
    for &s in site_admin_of {
        data.push(serde_json::json!({
            "resourceId": format!("ari:cloud:platform::site/{}", state.sites[s as usize].id),
            "resourceOwner": "platform",
            "roles": ["atlassian/site-admin"],
        }));
    }
    serde_json::json!({"data": data, "links": {}})
}

fn user_role_assignments(ctx: &Ctx<'_>, dir: &str, acct: &str) -> Response {
    let state = ctx.shared.read();
    let user = match member(ctx, &state, dir, acct) {
        Ok(u) => u,
        Err(resp) => return resp,
    };
    let sites: Vec<u16> = user.groups.iter().filter_map(|&g| state.groups[g as usize].site_admin_of).collect();
    json(200, &role_assignments(&state, &state.access_of(user), &sites))
}

fn user_write(ctx: &Ctx<'_>, dir: &str, acct: &str, operation: &str) -> Response {
    let mut state = ctx.shared.write();
    let directory = match directory(ctx, &state, dir, true) {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let result = match operation {
        "user.suspend" => state.suspend(directory, acct),
        "user.restore" => state.restore(directory, acct),
        _ => state.remove_user(directory, acct),
    };
    let result = state.record_result(ctx.now, operation, "admin-v2", Some(acct), None, result.map(|o| ((), o)));
    state.name_directory_of_last_event(directory);
    match result {
        Ok(_) => no_content(),
        Err(e) => ctx.write_error(&e),
    }
}

// ---------------------------------------------------------------- groups

#[derive(Serialize, Deserialize, Default, Clone, Debug)]
#[serde(rename_all = "camelCase", default)]
struct GroupSearch {
    #[serde(skip_serializing)]
    cursor: Option<String>,
    limit: Option<u32>,
    account_ids: Option<Vec<String>>,
    group_ids: Option<Vec<String>>,
    group_names: Option<Vec<String>>,
    search_term: Option<String>,
    resource_owners: Option<Vec<String>>,
    expand: Option<Vec<String>>,
}

const GROUP_EXPANDS: [&str; 2] = ["counts.users", "counts.resources"];

pub(super) fn group_json(
    state: &SimState,
    g: &SimGroup,
    member_count: Option<u32>,
    resources: bool,
) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "directoryId": state.directories[g.directory as usize].id,
        // An object (API.md §2.11): what the caller may do with the group.
        "managementAccess": {
            "deletable": g.modifiable() && g.site_admin_of.is_none(),
            "modifiable": g.modifiable(),
            "readable": true,
        },
        "externalSynced": g.idp_synced,
        "managedBy": if g.idp_synced { "external" } else if g.locked { "team-members" } else { "admins" },
    });
    let mut counts = serde_json::Map::new();
    if let Some(n) = member_count {
        counts.insert("users".into(), n.into());
    }
    if resources {
        counts.insert("resources".into(), (g.grants.len() + g.site_admin_of.iter().count()).into());
    }
    if !counts.is_empty() {
        v["counts"] = counts.into();
    }
    v
}

fn search_groups(ctx: &Ctx<'_>, dir: &str) -> Response {
    let body: GroupSearch = match ctx.body_json() {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let (q, at, page) = match &body.cursor {
        Some(raw) => match decode_cursor::<GroupSearch>(raw) {
            Some(c) => (c.q, c.at, c.page),
            None => return invalid_cursor(ctx),
        },
        None => (body, 0, 1),
    };
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return ctx.error(
            400,
            "ADMIN-400-24",
            "Invalid request body",
            &format!("limit: {limit} is out of range (1 to 100)"),
        );
    }
    if q.group_names.is_some() && (q.search_term.is_some() || q.group_ids.is_some()) {
        return ctx.error(
            400,
            "ADMIN-400-24",
            "Invalid request body",
            "groupNames cannot be combined with searchTerm or groupIds",
        );
    }
    for e in q.expand.iter().flatten() {
        if !GROUP_EXPANDS.contains(&e.as_str()) {
            return ctx.error(
                400,
                "ADMIN-400-24",
                "Invalid request body",
                &format!("expand: unknown value {e:?} (expected counts.users or counts.resources)"),
            );
        }
    }
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let state = ctx.shared.read();
    let directory = match directory(ctx, &state, dir, false) {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let members: Option<Vec<&SimUser>> = q
        .account_ids
        .as_ref()
        .map(|ids| ids.iter().flat_map(|a| state.entries_of(a)).map(|i| &state.users[i]).collect());
    let matching: Vec<usize> = (0..state.groups.len())
        .filter(|&i| {
            let g = &state.groups[i];
            directory.is_none_or(|d| d == g.directory)
                && q.group_ids.as_ref().is_none_or(|ids| ids.contains(&g.id))
                && q.group_names.as_ref().is_none_or(|ns| ns.iter().any(|n| n.eq_ignore_ascii_case(&g.name)))
                && q.search_term.as_ref().is_none_or(|t| g.name.to_lowercase().contains(&t.to_lowercase()))
                && q.resource_owners.as_ref().is_none_or(|owners| {
                    g.grants.iter().any(|&p| owners.iter().any(|o| o == state.products[p as usize].product.v2_key()))
                })
                && members.as_ref().is_none_or(|ms| ms.iter().any(|u| u.groups.contains(&(i as u32))))
        })
        .collect();
    let expand = q.expand.clone().unwrap_or_default();
    let counts = expand.iter().any(|e| e == "counts.users").then(|| state.member_counts());
    let resources = expand.iter().any(|e| e == "counts.resources");
    let slice: Vec<usize> = matching.iter().copied().skip(at).take(limit as usize).collect();
    let data: Vec<_> =
        slice.iter().map(|&i| group_json(&state, &state.groups[i], counts.as_ref().map(|c| c[i]), resources)).collect();
    let mut links = serde_json::Map::new();
    links.insert("self".into(), encode_cursor(&Cursor { q: q.clone(), at, page }).into());
    if at + slice.len() < matching.len() {
        links.insert("next".into(), encode_cursor(&Cursor { q, at: at + slice.len(), page: page + 1 }).into());
    }
    json(200, &serde_json::json!({"data": data, "links": links}))
}

fn find_group<'s>(ctx: &Ctx<'_>, state: &'s SimState, dir: &str, group: &str) -> Result<&'s SimGroup, Response> {
    let directory = directory(ctx, state, dir, false)?;
    state
        .group_idx(group)
        .map(|g| &state.groups[g as usize])
        .filter(|g| directory.is_none_or(|d| d == g.directory))
        .ok_or_else(|| ctx.write_error(&WriteError::group_not_found(group)))
}

fn get_group(ctx: &Ctx<'_>, dir: &str, group: &str) -> Response {
    let state = ctx.shared.read();
    let g = match find_group(ctx, &state, dir, group) {
        Ok(g) => g,
        Err(resp) => return resp,
    };
    let idx = state.group_idx(group).unwrap_or(0) as usize;
    let count = state.member_counts()[idx];
    json(200, &serde_json::json!({"data": group_json(&state, g, Some(count), true)}))
}

fn group_role_assignments(ctx: &Ctx<'_>, dir: &str, group: &str) -> Response {
    let state = ctx.shared.read();
    let g = match find_group(ctx, &state, dir, group) {
        Ok(g) => g,
        Err(resp) => return resp,
    };
    let sites: Vec<u16> = g.site_admin_of.into_iter().collect();
    json(200, &role_assignments(&state, &g.grants, &sites))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MembershipBody {
    account_id: Option<String>,
}

fn add_membership(ctx: &Ctx<'_>, dir: &str, group: &str) -> Response {
    let body: MembershipBody = match ctx.body_json() {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let Some(acct) = body.account_id else {
        return ctx.error(400, "ADMIN-400-24", "Invalid request body", "accountId: required");
    };
    let mut state = ctx.shared.write();
    let directory = match directory(ctx, &state, dir, true) {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let result = state.add_membership(directory, group, &acct).map(|o| ((), o));
    let result = state.record_result(ctx.now, "group.membership.add", "admin-v2", Some(&acct), Some(group), result);
    state.name_directory_of_last_event(directory);
    match result {
        Ok(_) => no_content(),
        Err(e) => ctx.write_error(&e),
    }
}

fn remove_membership(ctx: &Ctx<'_>, dir: &str, group: &str, acct: &str) -> Response {
    let mut state = ctx.shared.write();
    let directory = match directory(ctx, &state, dir, true) {
        Ok(d) => d,
        Err(resp) => return resp,
    };
    let result = state.remove_membership(directory, group, acct).map(|o| ((), o));
    let result = state.record_result(ctx.now, "group.membership.remove", "admin-v2", Some(acct), Some(group), result);
    state.name_directory_of_last_event(directory);
    match result {
        Ok(_) => no_content(),
        Err(e) => ctx.write_error(&e),
    }
}

// ---------------------------------------------------------------- invite

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct InviteBody {
    emails: Vec<String>,
    permission_rules: Vec<PermissionRule>,
    additional_groups: Vec<String>,
    #[allow(dead_code)]
    send_notification: Option<bool>,
    #[allow(dead_code)]
    notification_text: Option<String>,
}

#[derive(Deserialize, Default)]
struct PermissionRule {
    resource: String,
    role: String,
}

fn invite(ctx: &Ctx<'_>) -> Response {
    let body: InviteBody = match ctx.body_json() {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if body.emails.is_empty() {
        return ctx.error(400, "ADMIN-400-24", "Invalid request body", "emails: at least one email is required");
    }
    let mut state = ctx.shared.write();
    let directory = 0u16;
    // A permission rule grants a product through that product's default (first unsynced) license group.
    let mut groups = Vec::new();
    for rule in &body.permission_rules {
        if rule.role != "atlassian/user" {
            return ctx.error(
                400,
                "ADMIN-UAM-400-3",
                "Invalid role for resource",
                &format!(
                    "permissionRules: role {:?} is not supported by the simulator (only atlassian/user)",
                    rule.role
                ),
            );
        }
        let instance =
            (0..state.products.len()).find(|&i| state.products[i].resource_id(&state.sites) == rule.resource);
        let group = instance.and_then(|i| {
            state.groups.iter().position(|g| {
                g.directory == directory && !g.idp_synced && g.site_admin_of.is_none() && g.grants == [i as InstanceIdx]
            })
        });
        match group {
            Some(g) => groups.push(g as u32),
            None => {
                return ctx.error(
                    400,
                    "ADMIN-UAM-400-4",
                    "Product not licensed",
                    &format!("permissionRules: resource {:?} is not a product of this organization", rule.resource),
                );
            }
        }
    }
    for gid in &body.additional_groups {
        match state.group_idx(gid).filter(|&g| state.groups[g as usize].directory == directory) {
            Some(g) => groups.push(g),
            None => return ctx.write_error(&WriteError::group_not_found(gid)),
        }
    }
    let mut data = Vec::new();
    let mut failures = 0;
    let mut last_error = None;
    for email in &body.emails {
        let new_id = || {
            let mut rng = ctx.shared.rng();
            crate::sim::generate::account_id(&mut rng)
        };
        let result = state.invite(directory, email, &groups, ctx.now, new_id);
        let id = result.as_ref().ok().map(|(id, _)| id.clone());
        let result = state.record_result(ctx.now, "user.invite", "admin-v2", id.as_deref(), None, result);
        match result {
            Ok((id, _)) => data.push(serde_json::json!({
                "id": id,
                "email": email,
                "results": [{
                    "roleAssignmentResult": body.permission_rules.iter().map(|r| serde_json::json!({
                        "resource": r.resource, "role": r.role, "status": "SUCCESS"})).collect::<Vec<_>>(),
                    "groupAssignmentResult": groups.iter().map(|&g| serde_json::json!({
                        "groupId": state.groups[g as usize].id, "status": "SUCCESS"})).collect::<Vec<_>>(),
                }],
            })),
            Err(e) => {
                failures += 1;
                data.push(serde_json::json!({
                    "email": email,
                    "results": [{"error": {"status": e.status.to_string(), "code": e.code, "detail": e.detail}}],
                }));
                last_error = Some(e);
            }
        }
    }
    match last_error {
        Some(e) if failures == body.emails.len() => ctx.write_error(&e),
        Some(_) => json(206, &serde_json::json!({"data": data})),
        None => json(200, &serde_json::json!({"data": data})),
    }
}

// ---------------------------------------------------------------- user management

fn rule(allowed: Option<&'static str>) -> serde_json::Value {
    match allowed {
        None => serde_json::json!({"allowed": true}),
        Some(reason) => serde_json::json!({"allowed": false, "reason": {"key": reason}}),
    }
}

fn manage(ctx: &Ctx<'_>, acct: &str) -> Response {
    let state = ctx.shared.read();
    let Some(user) = state.user(acct) else {
        return json(404, &serde_json::json!({"key": "accountNotFound"}));
    };
    if !user.managed || user.account_type != SimAccountType::Atlassian {
        return json(403, &serde_json::json!({"key": "forbidden"}));
    }
    let lifecycle = state.lifecycle_refusal(user);
    let profile = if lifecycle.is_some() { Some("externalDirectory.scim") } else { None };
    json(
        200,
        &serde_json::json!({
            "profile.write": {"name": rule(profile), "nickname": rule(profile), "extended_profile.department": rule(profile)},
            "profile.read": rule(None),
            "email.set": rule(profile),
            "lifecycle.enablement": rule(lifecycle),
            "lifecycle.delete": rule(lifecycle),
            "apiToken.read": rule(None),
            "apiToken.delete": rule(None),
        }),
    )
}

fn lifecycle(ctx: &Ctx<'_>, acct: &str, op: &str) -> Response {
    let mut state = ctx.shared.write();
    let operation = if op == "disable" { "user.deactivate" } else { "user.activate" };
    let Some(user) = state.user(acct) else {
        state.record(
            ctx.now,
            operation,
            "user-management",
            Some(acct),
            None,
            SimOutcome::Refused { status: 404, code: "accountNotFound".into() },
        );
        return json(404, &serde_json::json!({"key": "accountNotFound"}));
    };
    if let Some(reason) = state.lifecycle_refusal(user) {
        state.record(
            ctx.now,
            operation,
            "user-management",
            Some(acct),
            None,
            SimOutcome::Refused { status: 403, code: "forbidden.action".into() },
        );
        return json(
            403,
            &serde_json::json!({"key": "forbidden.action", "context": {"allowed": false, "reason": {"key": reason}}}),
        );
    }
    if op == "enable" && user.account_status == AccountStatus::Closed {
        state.record(
            ctx.now,
            operation,
            "user-management",
            Some(acct),
            None,
            SimOutcome::Refused { status: 409, code: "conflict.lifecycleErrors".into() },
        );
        return lifecycle_conflict(acct, "The account is closed and cannot be enabled.");
    }
    let result = if op == "disable" { state.deactivate(acct, ctx.now) } else { state.activate(acct) };
    match state.record_result(ctx.now, operation, "user-management", Some(acct), None, result.map(|o| ((), o))) {
        Ok(_) => no_content(),
        Err(e) if e.status == 409 => lifecycle_conflict(acct, &e.detail),
        Err(e) => ctx.write_error(&e),
    }
}

fn lifecycle_conflict(acct: &str, message: &str) -> Response {
    json(
        409,
        &serde_json::json!({"key": "conflict.lifecycleErrors", "context": {
            "message": message, "accountId": acct, "errorCodes": [{"code": "lifecycle.notEligible", "message": message}]}}),
    )
}
