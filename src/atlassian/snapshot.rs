//! The snapshot: every directory's users (v2 search, largest page, everything expanded) and groups
//! (search with member counts, role assignments per group), fetched concurrently across directories
//! and groups with sequential cursors per listing, then filled where v2 lacked activity data, then
//! assembled. Any failure fails the whole snapshot: there is no partial one.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use futures::future::{try_join, try_join_all};
use jiff::Timestamp;
use reqwest::{Method, Url};
use serde_json::json;

use super::AtlassianClient;
use super::config::ApiFamily;
use super::error::{AtlassianError, CallSite};
use super::http::{CallStats, Http, Request};
use super::observer::Operation;
use super::wire::{
    self, ConversionNotes, GroupInterner, Next, Page, PendingUser, RawDirectory, RawGroup, RawLastActive,
    RawRoleAssignment, RawUser, RawV1User,
};
use crate::snapshot::{ApiTokenActivity, DirectoryInfo, DirectorySnapshot, Group, SnapshotReport};

/// The largest page the v2 listings accept.
pub const PAGE_LIMIT: u32 = 100;
/// A listing longer than this is taken to be a server looping on its cursor.
const MAX_PAGES: u64 = 1_000_000;
const USER_EXPAND: [&str; 3] = ["productAccess", "groups", "platformRoles"];
const USER_EXPAND_WITHOUT_ACTIVITY: [&str; 2] = ["groups", "platformRoles"];

/// One directory's users and groups as listed.
#[derive(Debug, Default)]
pub(crate) struct DirectoryListing {
    pub users: Vec<PendingUser>,
    /// Group ids met in user records; `users[..].user.groups` index into it until assembly.
    pub interner: GroupInterner,
    pub groups: Vec<ListedGroup>,
    pub notes: ConversionNotes,
}

#[derive(Debug)]
pub(crate) struct ListedGroup {
    pub raw: RawGroup,
    pub grants: Vec<crate::product::Product>,
    pub site_admin: bool,
}

impl AtlassianClient {
    /// A complete snapshot of the organization (every configured directory, or all of them), as of
    /// `taken_at` (the caller's clock: the client never reads wall-clock time for data).
    pub async fn snapshot(&self, taken_at: Timestamp) -> Result<DirectorySnapshot, AtlassianError> {
        let http = &*self.http;
        let stats = CallStats::default();
        let directories = list_directories(http, &stats).await?;
        let mut listings = try_join_all(directories.iter().enumerate().map(|(i, dir)| {
            let stats = &stats;
            async move {
                let (users, groups) =
                    try_join(list_users(http, &dir.id, i as u16, stats), list_groups(http, &dir.id, stats)).await?;
                Ok::<_, AtlassianError>(DirectoryListing { groups, ..users })
            }
        }))
        .await?;
        let mut report = SnapshotReport::default();
        fill_missing_activity(http, &mut listings, &mut report).await?;
        report.calls += stats.calls.load(Ordering::Relaxed);
        report.pages = stats.pages();
        report.notes.extend(stats.notes.lock().expect("notes lock").drain(..));
        let retries = stats.retries.load(Ordering::Relaxed);
        if retries > 0 {
            report.notes.push(format!("{retries} call(s) were retried"));
        }
        Ok(assemble(&http.config.org_id, taken_at, directories, listings, http.config.api_key_owner.clone(), report))
    }
}

impl CallStats {
    fn pages(&self) -> u64 {
        self.pages_done.load(Ordering::Relaxed)
    }
}

fn next_cursor(http: &Http, call: &CallSite, next: &str, previous: Option<&str>) -> Result<String, AtlassianError> {
    let incomplete = |message: String| AtlassianError::Parse { call: call.clone(), message };
    let cursor = match wire::classify_next(next).map_err(incomplete)? {
        Next::Cursor(c) => c,
        Next::Url(url) => {
            if !http.same_origin(&url) {
                return Err(incomplete(format!(
                    "links.next points at another host ({})",
                    url.origin().ascii_serialization()
                )));
            }
            wire::cursor_of_url(&url).ok_or_else(|| incomplete("links.next is a URL without a cursor".to_owned()))?
        }
    };
    if previous == Some(cursor.as_str()) {
        return Err(incomplete("links.next repeats the cursor of this page".to_owned()));
    }
    Ok(cursor)
}

/// GETs every page of a cursor listing (cursor in the query, or `links.next` as a URL on the API host).
async fn get_all_pages<T: serde::de::DeserializeOwned>(
    http: &Http,
    call: CallSite,
    url: Url,
    stats: &CallStats,
) -> Result<Vec<T>, AtlassianError> {
    let mut out = Vec::new();
    let mut next_url = url.clone();
    let mut previous: Option<String> = None;
    for page in 1..=MAX_PAGES {
        let call = call.clone().page(page);
        let req = Request::new(call.clone(), ApiFamily::Org, Method::GET, next_url.clone());
        let body: Page<T> = http.read_json(&req, Some(stats)).await?;
        stats.pages_done.fetch_add(1, Ordering::Relaxed);
        let next = body.next().map(str::to_owned);
        out.extend(body.data);
        let Some(next) = next else { return Ok(out) };
        next_url = match wire::classify_next(&next) {
            Ok(Next::Url(u)) if http.same_origin(&u) => u,
            _ => {
                let cursor = next_cursor(http, &call, &next, previous.as_deref())?;
                let mut u = url.clone();
                u.query_pairs_mut().append_pair("cursor", &cursor);
                previous = Some(cursor);
                u
            }
        };
    }
    Err(AtlassianError::Parse { call, message: format!("more than {MAX_PAGES} pages") })
}

async fn list_directories(http: &Http, stats: &CallStats) -> Result<Vec<DirectoryInfo>, AtlassianError> {
    let org = http.config.org_id.as_str();
    let mut url = http.admin_url(&["v2", "orgs", org, "directories"]);
    url.query_pairs_mut().append_pair("limit", &PAGE_LIMIT.to_string());
    let call = CallSite::new(Operation::DirectoriesList);
    let raw: Vec<RawDirectory> = get_all_pages(http, call.clone(), url, stats).await?;
    let mut all = Vec::with_capacity(raw.len());
    for (i, d) in raw.iter().enumerate() {
        let id = d.id().ok_or_else(|| AtlassianError::Parse {
            call: call.clone(),
            message: format!("directory {i} has no directoryId"),
        })?;
        all.push(DirectoryInfo { id: id.to_owned(), name: d.name.clone().unwrap_or_default() });
    }
    let wanted = &http.config.directories;
    let chosen: Vec<DirectoryInfo> = if wanted.is_empty() {
        all
    } else {
        let mut chosen = Vec::new();
        for id in wanted {
            let found = all.iter().find(|d| &d.id == id).ok_or_else(|| {
                AtlassianError::Config(super::config::ConfigError::new(
                    "directories",
                    format!("directory {id} is not in organization {org} (it has: {})", ids(&all)),
                ))
            })?;
            chosen.push(found.clone());
        }
        chosen
    };
    if chosen.is_empty() {
        return Err(AtlassianError::Incomplete { call, message: format!("organization {org} lists no directories") });
    }
    if chosen.len() > usize::from(u16::MAX) {
        return Err(AtlassianError::Incomplete { call, message: "more directories than a snapshot can hold".into() });
    }
    Ok(chosen)
}

fn ids(dirs: &[DirectoryInfo]) -> String {
    dirs.iter().map(|d| d.id.as_str()).collect::<Vec<_>>().join(", ")
}

async fn list_users(
    http: &Http,
    directory: &str,
    directory_idx: u16,
    stats: &CallStats,
) -> Result<DirectoryListing, AtlassianError> {
    if !http.config.split_user_listing {
        return list_user_stream(http, directory, directory_idx, None, stats).await;
    }
    let (managed, unmanaged) = try_join(
        list_user_stream(http, directory, directory_idx, Some("managed"), stats),
        list_user_stream(http, directory, directory_idx, Some("unmanaged"), stats),
    )
    .await?;
    let misfiled = managed.users.iter().filter(|u| !u.user.managed).count()
        + unmanaged.users.iter().filter(|u| u.user.managed).count();
    if misfiled > 0 {
        stats.note(format!(
            "users/search of directory {directory} did not honour the claimStatus filter ({misfiled} user(s) in the \
             wrong part): users de-duplicated; set split_user_listing off to save calls"
        ));
    }
    Ok(merge_listings(managed, unmanaged))
}

/// One listing's users joined to another's: group indices re-interned, accounts de-duplicated.
fn merge_listings(mut into: DirectoryListing, from: DirectoryListing) -> DirectoryListing {
    let remap: Vec<u32> = from.interner.ids.iter().map(|id| into.interner.intern(id)).collect();
    let seen: std::collections::HashSet<String> = into.users.iter().map(|u| u.user.account_id.clone()).collect();
    for mut pending in from.users {
        if seen.contains(&pending.user.account_id) {
            continue;
        }
        for g in pending.user.groups.iter_mut() {
            *g = remap[*g as usize];
        }
        into.users.push(pending);
    }
    into.notes.not_in_directory += from.notes.not_in_directory;
    for t in from.notes.unknown_account_types {
        if !into.notes.unknown_account_types.contains(&t) {
            into.notes.unknown_account_types.push(t);
        }
    }
    for k in from.notes.unknown_product_keys {
        if !into.notes.unknown_product_keys.contains(&k) {
            into.notes.unknown_product_keys.push(k);
        }
    }
    into
}

async fn list_user_stream(
    http: &Http,
    directory: &str,
    directory_idx: u16,
    claim_status: Option<&'static str>,
    stats: &CallStats,
) -> Result<DirectoryListing, AtlassianError> {
    let org = http.config.org_id.as_str();
    let url = http.admin_url(&["v2", "orgs", org, "directories", directory, "users", "search"]);
    let part = claim_status.map(|c| if c == "managed" { "claimStatus managed" } else { "claimStatus unmanaged" });
    let mut listing = DirectoryListing::default();
    let mut cursor: Option<String> = None;
    for page in 1..=MAX_PAGES {
        let call = CallSite::new(Operation::UsersSearch).directory(directory).listing(part).page(page);
        let expand: &[&str] =
            if http.config.fallbacks.v2_product_access { &USER_EXPAND } else { &USER_EXPAND_WITHOUT_ACTIVITY };
        let mut body = json!({ "limit": PAGE_LIMIT, "expand": expand });
        if let Some(c) = claim_status {
            body["claimStatus"] = json!(c);
        }
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let req = Request::new(call.clone(), ApiFamily::Org, Method::POST, url.clone()).json(&body);
        let page_body: Page<RawUser> = http.read_json(&req, Some(stats)).await?;
        stats.pages_done.fetch_add(1, Ordering::Relaxed);
        for raw in page_body.data {
            let converted = wire::convert_user(raw, directory_idx, &mut listing.interner, &mut listing.notes)
                .map_err(|message| AtlassianError::Parse { call: call.clone(), message })?;
            listing.users.extend(converted);
        }
        match page_body.links.and_then(|l| l.next).filter(|n| !n.trim().is_empty()) {
            None => return Ok(listing),
            Some(next) => cursor = Some(next_cursor(http, &call, &next, cursor.as_deref())?),
        }
    }
    Err(AtlassianError::Parse {
        call: CallSite::new(Operation::UsersSearch).directory(directory).listing(part),
        message: format!("more than {MAX_PAGES} pages"),
    })
}

async fn list_groups(http: &Http, directory: &str, stats: &CallStats) -> Result<Vec<ListedGroup>, AtlassianError> {
    let org = http.config.org_id.as_str();
    let url = http.admin_url(&["v2", "orgs", org, "directories", directory, "groups", "search"]);
    let mut groups: Vec<RawGroup> = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 1..=MAX_PAGES {
        let call = CallSite::new(Operation::GroupsSearch).directory(directory).page(page);
        let mut body = json!({ "limit": PAGE_LIMIT, "expand": ["counts.users"] });
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let req = Request::new(call.clone(), ApiFamily::Org, Method::POST, url.clone()).json(&body);
        let page_body: Page<RawGroup> = http.read_json(&req, Some(stats)).await?;
        stats.pages_done.fetch_add(1, Ordering::Relaxed);
        groups.extend(page_body.data);
        match page_body.links.and_then(|l| l.next).filter(|n| !n.trim().is_empty()) {
            None => break,
            Some(next) => cursor = Some(next_cursor(http, &call, &next, cursor.as_deref())?),
        }
    }
    // Role assignments of every group, concurrently (bounded by the client's permits).
    try_join_all(groups.into_iter().map(|raw| async move {
        let mut url =
            http.admin_url(&["v2", "orgs", org, "directories", directory, "groups", &raw.id, "role-assignments"]);
        url.query_pairs_mut().append_pair("limit", &PAGE_LIMIT.to_string());
        let call = CallSite::new(Operation::GroupRoleAssignments).directory(directory).subject(&raw.id);
        let assignments: Vec<RawRoleAssignment> = get_all_pages(http, call, url, stats).await?;
        let mut unknown = Vec::new();
        let (grants, site_admin) = wire::grants_of(&assignments, &mut unknown);
        for key in unknown {
            stats.note(format!("group role assignments name an unknown product {key:?}: ignored"));
        }
        Ok::<_, AtlassianError>(ListedGroup { raw, grants, site_admin })
    }))
    .await
}

/// Where v2 returned no productAccess: the v1 users list (managed accounts), then per-user
/// last-active-dates, each counted and noted. Anything still missing fails the snapshot, since a
/// user without activity data would otherwise look never active.
async fn fill_missing_activity(
    http: &Http,
    listings: &mut [DirectoryListing],
    report: &mut SnapshotReport,
) -> Result<(), AtlassianError> {
    let missing = |listings: &[DirectoryListing]| -> Vec<(usize, usize)> {
        listings
            .iter()
            .enumerate()
            .flat_map(|(d, l)| l.users.iter().enumerate().filter(|(_, u)| !u.activity_known).map(move |(i, _)| (d, i)))
            .collect()
    };
    let unknown = missing(listings);
    if unknown.is_empty() {
        return Ok(());
    }
    let fallbacks = http.config.fallbacks.clone();
    let org = http.config.org_id.as_str();
    let managed_missing = unknown.iter().filter(|(d, i)| listings[*d].users[*i].user.managed).count();
    if managed_missing > 0 && fallbacks.v1_users {
        let stats = CallStats::default();
        let mut url = http.admin_url(&["v1", "orgs", org, "users"]);
        url.query_pairs_mut().append_pair("limit", &PAGE_LIMIT.to_string());
        let v1: Vec<RawV1User> = get_all_pages(http, CallSite::new(Operation::V1UsersList), url, &stats).await?;
        let calls = stats.calls.load(Ordering::Relaxed);
        report.v1_fallback_calls += calls;
        report.calls += calls;
        let by_id: HashMap<&str, &RawV1User> = v1.iter().map(|u| (u.account_id.as_str(), u)).collect();
        let mut filled = 0;
        for (d, i) in &unknown {
            let pending = &mut listings[*d].users[*i];
            let Some(entries) = by_id
                .get(pending.user.account_id.as_str())
                .and_then(|u| u.product_access.as_ref())
                .filter(|_| pending.user.managed)
            else {
                continue;
            };
            let mut unknown_keys = Vec::new();
            let (list, ever) = wire::merge_activity(
                entries.iter().map(|e| (e.key.as_deref(), e.last_active.as_deref())),
                &mut unknown_keys,
            )
            .map_err(|message| AtlassianError::Parse { call: CallSite::new(Operation::V1UsersList), message })?;
            pending.user.product_access = list;
            pending.ever_active = ever;
            pending.activity_known = true;
            filled += 1;
        }
        report.notes.push(format!(
            "v2 users/search returned no productAccess for {managed_missing} managed user(s); \
             {filled} filled from the v1 users list ({calls} call(s))"
        ));
    }
    let still = missing(listings);
    if still.is_empty() {
        return Ok(());
    }
    if still.len() as u64 > u64::from(fallbacks.max_last_active_calls) {
        return Err(AtlassianError::Incomplete {
            call: CallSite::new(Operation::UsersSearch),
            message: format!(
                "{} user(s) have no productAccess in v2 and fetching their last-active dates one by one would \
                 exceed the limit of {} call(s)",
                still.len(),
                fallbacks.max_last_active_calls
            ),
        });
    }
    let stats = CallStats::default();
    let results = try_join_all(still.iter().map(|(d, i)| {
        let account_id = listings[*d].users[*i].user.account_id.clone();
        let stats = &stats;
        async move {
            let url = http.admin_url(&["v1", "orgs", org, "directory", "users", &account_id, "last-active-dates"]);
            let call = CallSite::new(Operation::LastActiveDates).subject(&account_id);
            let mut entries = Vec::new();
            let mut added = None;
            let mut next_url = url.clone();
            let mut previous: Option<String> = None;
            for page in 1..=MAX_PAGES {
                let call = call.clone().page(page);
                let req = Request::new(call.clone(), ApiFamily::Org, Method::GET, next_url.clone());
                let body: RawLastActive = http.read_json(&req, Some(stats)).await?;
                entries.extend(body.data.product_access);
                added = added.or(body.data.added_to_org);
                let Some(next) = body.links.and_then(|l| l.next).filter(|n| !n.trim().is_empty()) else { break };
                let cursor = next_cursor(http, &call, &next, previous.as_deref())?;
                next_url = url.clone();
                next_url.query_pairs_mut().append_pair("cursor", &cursor);
                previous = Some(cursor);
            }
            let mut unknown_keys = Vec::new();
            let (list, ever) = wire::merge_activity(
                entries.iter().map(|e| (e.key.as_deref(), e.last_active.as_deref())),
                &mut unknown_keys,
            )
            .map_err(|message| AtlassianError::Parse { call: call.clone(), message })?;
            let added = match added {
                Some(s) => Some(wire::parse_instant(&s).map_err(|message| AtlassianError::Parse { call, message })?),
                None => None,
            };
            Ok::<_, AtlassianError>((list, ever, added))
        }
    }))
    .await?;
    for ((d, i), (list, ever, added)) in still.iter().zip(results) {
        let pending = &mut listings[*d].users[*i];
        pending.user.product_access = list;
        pending.ever_active = ever;
        pending.activity_known = true;
        pending.user.added_to_org = pending.user.added_to_org.or(added);
    }
    let calls = stats.calls.load(Ordering::Relaxed);
    report.last_active_fallback_calls += calls;
    report.calls += calls;
    report.notes.push(format!(
        "{} user(s) had no productAccess in v2 or v1; read one by one from last-active-dates ({calls} call(s))",
        still.len()
    ));
    Ok(())
}

/// Builds the immutable snapshot from the listings (pure).
pub(crate) fn assemble(
    org_id: &str,
    taken_at: Timestamp,
    directories: Vec<DirectoryInfo>,
    listings: Vec<DirectoryListing>,
    api_key_owner: Option<String>,
    mut report: SnapshotReport,
) -> DirectorySnapshot {
    let mut groups: Vec<Group> = Vec::new();
    let mut users = Vec::with_capacity(listings.iter().map(|l| l.users.len()).sum());
    let mut not_in_directory = 0;
    let mut unknown_types = BTreeSet::new();
    let mut unknown_keys = BTreeSet::new();
    for (d, listing) in listings.into_iter().enumerate() {
        let d16 = d as u16;
        let mut by_id: HashMap<&str, u32> = HashMap::new();
        for g in &listing.groups {
            let idx = groups.len() as u32;
            groups.push(Group {
                id: g.raw.id.clone(),
                name: g.raw.name.clone().unwrap_or_default(),
                directory: d16,
                idp_synced: g.raw.external_synced.unwrap_or(false),
                locked: !g.raw.modifiable(),
                member_count: g.raw.counts.as_ref().and_then(|c| c.users).unwrap_or(0).min(u64::from(u32::MAX)) as u32,
                site_admin: g.site_admin,
                grants: g.grants.clone(),
            });
            by_id.entry(g.raw.id.as_str()).or_insert(idx);
        }
        let mut placeholders = 0;
        let local_to_global: Vec<u32> = listing
            .interner
            .ids
            .iter()
            .map(|id| match by_id.get(id.as_str()) {
                Some(i) => *i,
                None => {
                    // A group met in a user record but not in the group listing (created between
                    // the two calls): kept, with what is known, so memberships are not lost.
                    placeholders += 1;
                    groups.push(Group {
                        id: id.clone(),
                        name: String::new(),
                        directory: d16,
                        idp_synced: false,
                        locked: false,
                        member_count: 0,
                        site_admin: false,
                        grants: Vec::new(),
                    });
                    (groups.len() - 1) as u32
                }
            })
            .collect();
        if placeholders > 0 {
            report.notes.push(format!(
                "{placeholders} group(s) of directory {} appear in user records but not in the group listing",
                directories.get(d).map(|x| x.id.as_str()).unwrap_or("?")
            ));
        }
        not_in_directory += listing.notes.not_in_directory;
        unknown_types.extend(listing.notes.unknown_account_types);
        unknown_keys.extend(listing.notes.unknown_product_keys);
        for mut pending in listing.users {
            for g in pending.user.groups.iter_mut() {
                *g = local_to_global[*g as usize];
            }
            pending.user.groups.sort_unstable();
            pending.user.site_admin =
                pending.site_admin_role || pending.user.groups.iter().any(|g| groups[*g as usize].site_admin);
            wire::finish_status(&mut pending);
            users.push(pending.user);
        }
    }
    if not_in_directory > 0 {
        report.notes.push(format!("{not_in_directory} listed account(s) have no directory membership: left out"));
    }
    if !unknown_types.is_empty() {
        report.notes.push(format!(
            "accounts of unknown or missing type {:?} are never acted on",
            unknown_types.into_iter().collect::<Vec<_>>()
        ));
    }
    if !unknown_keys.is_empty() {
        report.notes.push(format!(
            "product keys {:?} are not modelled by seatwarden: their activity is kept and counts as activity",
            unknown_keys.into_iter().collect::<Vec<_>>()
        ));
    }
    let activity_products = users
        .iter()
        .flat_map(|u| u.product_access.iter())
        .filter(|p| p.last_active.is_some())
        .map(|p| p.product)
        .collect();
    let (accounts, repeated) = DirectorySnapshot::fold_rows(users);
    if repeated > 0 {
        report.notes.push(format!("{repeated} user row(s) repeated in one directory's listing: folded"));
    }
    groups.shrink_to_fit();
    DirectorySnapshot {
        org_id: org_id.to_owned(),
        directories,
        taken_at,
        accounts,
        groups,
        api_key_owner,
        activity_products,
        api_tokens: ApiTokenActivity::NotRead,
        report,
        incomplete: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product::{Product, ProductKey};
    use crate::snapshot::UserStatus;

    fn listing(users_json: &str, groups: Vec<ListedGroup>, dir: u16) -> DirectoryListing {
        let raw: Vec<RawUser> = serde_json::from_str(users_json).unwrap();
        let mut l = DirectoryListing { groups, ..Default::default() };
        for r in raw {
            let converted = wire::convert_user(r, dir, &mut l.interner, &mut l.notes).unwrap();
            l.users.extend(converted);
        }
        l
    }

    fn group(id: &str, site_admin: bool, grants: Vec<Product>) -> ListedGroup {
        ListedGroup {
            raw: serde_json::from_value(
                json!({"id": id, "name": format!("name-{id}"), "externalSynced": id == "gs", "counts": {"users": 7}}),
            )
            .unwrap(),
            grants,
            site_admin,
        }
    }

    #[test]
    fn split_listings_merge_with_groups_reinterned_and_duplicates_dropped() {
        let managed = listing(
            r#"[{"accountId":"m1","status":"active","claimStatus":"managed","groups":[{"id":"g1"},{"id":"g2"}]}]"#,
            vec![],
            0,
        );
        let unmanaged = listing(
            r#"[{"accountId":"u1","status":"active","groups":[{"id":"g2"},{"id":"g3"}]},
                {"accountId":"m1","status":"active","claimStatus":"managed","groups":[{"id":"g1"}]}]"#,
            vec![],
            0,
        );
        let merged = merge_listings(managed, unmanaged);
        assert_eq!(merged.users.len(), 2, "m1 once");
        assert_eq!(merged.interner.ids, vec!["g1", "g2", "g3"]);
        let u1 = merged.users.iter().find(|u| u.user.account_id == "u1").unwrap();
        let ids: Vec<&str> = u1.user.groups.iter().map(|g| merged.interner.ids[*g as usize].as_str()).collect();
        assert_eq!(ids, vec!["g2", "g3"]);
    }

    #[test]
    fn assembly_maps_groups_admins_status_and_activity() {
        let d0 = listing(
            r#"[{"accountId":"b","status":"active","productAccess":[{"key":"confluence","lastActiveTimestamp":"2025-01-01T00:00:00Z"}],"groups":[{"id":"gs"},{"id":"gadm"}]},
                {"accountId":"a","status":"active","productAccess":[{"key":"jira","lastActiveTimestamp":null}],"groups":[{"id":"gnew"}]}]"#,
            vec![group("gadm", true, vec![]), group("gs", false, vec![Product::Confluence])],
            0,
        );
        let d1 = listing(
            r#"[{"accountId":"a","status":"suspended","productAccess":[]}]"#,
            vec![group("gadm", false, vec![])],
            1,
        );
        let dirs = vec![
            DirectoryInfo { id: "d0".into(), name: "zero".into() },
            DirectoryInfo { id: "d1".into(), name: "one".into() },
        ];
        let taken_at: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let snap = assemble("org", taken_at, dirs, vec![d0, d1], Some("owner".into()), SnapshotReport::default());
        assert_eq!(snap.taken_at, taken_at);
        assert_eq!(snap.api_key_owner.as_deref(), Some("owner"));
        let ids: Vec<(&str, Vec<u16>)> = snap
            .accounts
            .iter()
            .map(|u| (u.account_id.as_str(), u.memberships.iter().map(|m| m.directory).collect()))
            .collect();
        assert_eq!(ids, vec![("a", vec![0, 1]), ("b", vec![0])], "one account each, directories in order");
        let b = snap.account("b").unwrap();
        assert!(b.site_admin, "member of a site-admin group");
        let names: Vec<&str> = b.groups().map(|g| snap.groups[g as usize].id.as_str()).collect();
        assert_eq!(names, vec!["gadm", "gs"]);
        let a = snap.account("a").unwrap();
        assert_eq!(a.memberships[0].status, UserStatus::InvitedNeverActive);
        assert_eq!(a.memberships[1].status, UserStatus::Suspended);
        assert_eq!(a.status(), UserStatus::InvitedNeverActive, "usable in one directory");
        assert!(!a.site_admin);
        // Same group id in two directories: two groups.
        assert_eq!(snap.groups.iter().filter(|g| g.id == "gadm").count(), 2);
        let (_, gs) = snap.group_by_id("gs").unwrap();
        assert!(gs.idp_synced);
        assert_eq!(gs.member_count, 7);
        assert_eq!(gs.grants, vec![Product::Confluence]);
        // A group seen only in a user record is kept and noted.
        assert!(snap.group_by_id("gnew").is_some());
        assert!(snap.report.notes.iter().any(|n| n.contains("not in the group listing")), "{:?}", snap.report.notes);
        assert_eq!(snap.activity_products, BTreeSet::from([ProductKey::Known(Product::Confluence)]));
    }
}
