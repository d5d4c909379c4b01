//! Admin v1 (reads, events, the legacy writes) and the site APIs: Jira, Confluence, Bitbucket.

use axum::{http::Method, response::Response};

use super::{
    ApiFamily, Ctx, Cursor,
    admin::{date, rfc3339},
    decode_cursor, encode_cursor, invalid_cursor, json, no_content,
};
use crate::sim::state::{
    AccountStatus, Membership, SimAccountType, SimEvent, SimOutcome, SimState, SimUser, WriteError,
};

/// The date the v1 write endpoints were switched off.
const V1_WRITES_OFF: &str = "2026-06-30";
/// Page size of the v1 users list.
const V1_USERS_PAGE: usize = 100;
const V1_EVENTS_PAGE: usize = 100;

pub(super) fn route(ctx: &Ctx<'_>, method: &Method, segs: &[&str]) -> Option<Response> {
    Some(match (method.as_str(), segs) {
        ("GET", ["rest", "api", "3", "users", "search"]) => jira_users(ctx),
        ("GET", ["rest", "api", "3", "group", "member"]) => jira_group_members(ctx),
        ("POST", ["rest", "api", "3", "group", "user"]) => site_membership(ctx, true),
        ("DELETE", ["rest", "api", "3", "group", "user"]) => site_membership(ctx, false),
        ("GET", ["wiki", "rest", "api", "group"]) => confluence_groups(ctx),
        ("GET", ["wiki", "rest", "api", "group", group, "membersByGroupId"]) => confluence_members(ctx, group),
        ("POST", ["wiki", "rest", "api", "group", "userByGroupId"]) => site_membership(ctx, true),
        ("DELETE", ["wiki", "rest", "api", "group", "userByGroupId"]) => site_membership(ctx, false),
        ("GET", ["2.0", "workspaces", workspace, "members"]) => bitbucket_members(ctx, workspace),
        _ => return None,
    })
}

fn avatar(u: &SimUser) -> String {
    format!("https://avatar.example/{}.png", u.account_id)
}

fn site_url(state: &SimState, site: u16) -> String {
    format!("https://{}.atlassian.net", state.sites[site as usize].name)
}

// ---------------------------------------------------------------- admin v1 reads

pub(super) fn v1_users(ctx: &Ctx<'_>) -> Response {
    let (at, page) = match ctx.query.get("cursor") {
        Some(raw) => match decode_cursor::<u8>(raw) {
            Some(c) => (c.at, c.page),
            None => return invalid_cursor(ctx),
        },
        None => (0, 1),
    };
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let state = ctx.shared.read();
    // One row per account (its first directory entry), with activity from every directory.
    let managed = |i: usize| {
        let u = &state.users[i];
        u.managed && u.account_type == SimAccountType::Atlassian && state.is_first_entry(i)
    };
    let total = (0..state.users.len()).filter(|&i| managed(i)).count();
    let mut data = Vec::with_capacity(V1_USERS_PAGE);
    let mut next = None;
    for (i, u) in state.users.iter().enumerate().skip(at) {
        if !managed(i) {
            continue;
        }
        if data.len() == V1_USERS_PAGE {
            next = Some(i);
            break;
        }
        let access = state.account_activity(&u.account_id);
        let product_access: Vec<_> = access
            .iter()
            .map(|&(i, last_active)| {
                let p = &state.products[i as usize];
                let url = if p.product == crate::product::Product::Bitbucket {
                    format!("https://bitbucket.org/{}", state.sites[p.site as usize].name)
                } else {
                    site_url(&state, p.site)
                };
                let mut v =
                    serde_json::json!({"key": p.product.v1_key(), "name": p.product.display_name(), "url": url});
                if let Some(t) = last_active {
                    v["last_active"] = rfc3339(t).into();
                }
                v
            })
            .collect();
        let billable = state.entries_of(&u.account_id).any(|e| {
            let entry = &state.users[e];
            entry.is_billable() && !state.access_of(entry).is_empty()
        });
        let mut v = serde_json::json!({
            "account_id": u.account_id,
            "account_type": u.account_type.api(),
            "account_status": u.account_status.api(),
            "name": u.name,
            "picture": avatar(u),
            "access_billable": billable,
            "product_access": product_access,
            "links": {"self": format!("{}/admin/v1/orgs/{}/users/{}", ctx.base_url(), state.org_id, u.account_id)},
        });
        if let Some(e) = &u.email {
            v["email"] = e.as_str().into();
        }
        if let Some(t) = access.iter().filter_map(|&(_, t)| t).max() {
            v["last_active"] = rfc3339(t).into();
        }
        data.push(v);
    }
    // Links are URLs here ("URL to fetch the Next Page"), unlike v2's bare cursors.
    let url = |at, page| {
        format!(
            "{}/admin/v1/orgs/{}/users?cursor={}",
            ctx.base_url(),
            state.org_id,
            encode_cursor(&Cursor { q: 0u8, at, page })
        )
    };
    let mut links = serde_json::Map::new();
    links.insert("self".into(), url(at, page).into());
    if let Some(at) = next {
        links.insert("next".into(), url(at, page + 1).into());
    }
    json(200, &serde_json::json!({"data": data, "meta": {"total": total}, "links": links}))
}

pub(super) fn last_active_dates(ctx: &Ctx<'_>, acct: &str) -> Response {
    let state = ctx.shared.read();
    let Some(u) = state.listed_entry(acct).map(|i| &state.users[i]) else {
        return ctx.write_error(&WriteError::user_not_found(acct));
    };
    let product_access: Vec<_> = state
        .account_activity(acct)
        .into_iter()
        .filter_map(|(i, last_active)| {
            let p = &state.products[i as usize];
            last_active.map(|t| serde_json::json!({"id": p.id, "key": p.product.v1_key(), "last_active": date(t)}))
        })
        .collect();
    json(
        200,
        &serde_json::json!({"data": {"product_access": product_access, "added_to_org": date(u.added_to_org)}, "links": {}}),
    )
}

fn event_action(operation: &str) -> &'static str {
    match operation {
        "user.suspend" => "user_access_suspended",
        "user.restore" => "user_access_restored",
        "user.remove" => "user_removed_from_directory",
        "user.invite" => "user_invited",
        "user.deactivate" => "user_deactivated",
        "user.activate" => "user_reactivated",
        "group.membership.add" => "user_added_to_group",
        "group.membership.remove" => "user_removed_from_group",
        _ => "other",
    }
}

fn event_json(ctx: &Ctx<'_>, state: &SimState, e: &SimEvent) -> serde_json::Value {
    let actor = state.api_key_owner.clone().unwrap_or_else(|| "org-api-key".to_string());
    let mut context = Vec::new();
    if let Some(a) = &e.account_id {
        context.push(serde_json::json!({"id": a, "type": "users"}));
    }
    if let Some(g) = &e.group_id {
        context.push(serde_json::json!({"id": g, "type": "groups"}));
    }
    let url = format!("{}/admin/v1/orgs/{}/events/{}", ctx.base_url(), state.org_id, e.seq);
    serde_json::json!({
        "id": e.seq.to_string(),
        "type": "events",
        "attributes": {
            "time": rfc3339(e.time),
            "action": event_action(&e.operation),
            "actor": {"id": actor, "name": "Organization API key", "auth": {"authType": "api-token"}},
            "context": context,
            "container": [{"id": state.org_id, "type": "orgs"}],
            "location": {"ip": "127.0.0.1"},
        },
        "links": {"self": url},
    })
}

/// `GET /v1/orgs/{orgId}/events/{eventId}`: what an event's `links.self` leads to.
pub(super) fn v1_event(ctx: &Ctx<'_>, id: &str) -> Response {
    let state = ctx.shared.read();
    let event = id
        .parse::<u64>()
        .ok()
        .and_then(|seq| state.events.iter().find(|e| e.seq == seq && e.outcome == SimOutcome::Applied));
    match event {
        Some(e) => json(200, &serde_json::json!({"data": event_json(ctx, &state, e)})),
        None => ctx.error(404, "ADMIN-404-4", "Event not found", &format!("No event with id {id}.")),
    }
}

/// `GET /v1/orgs/{orgId}/domains` (and `/{domainId}`): the claimed domains, verified by DNS.
pub(super) fn v1_domains(ctx: &Ctx<'_>, one: Option<&str>) -> Response {
    let state = ctx.shared.read();
    let base = format!("{}/admin/v1/orgs/{}/domains", ctx.base_url(), state.org_id);
    let domain = |d: &String| {
        serde_json::json!({
            "id": d,
            "type": "domains",
            "attributes": {"name": d, "claim": {"type": "dns", "status": "verified"}},
            "links": {"self": format!("{base}/{d}")},
        })
    };
    match one {
        None => json(
            200,
            &serde_json::json!({"data": state.claimed_domains.iter().map(domain).collect::<Vec<_>>(), "links": {"self": base}}),
        ),
        Some(id) => match state.claimed_domains.iter().find(|d| d.as_str() == id) {
            Some(d) => json(200, &serde_json::json!({"data": domain(d)})),
            None => ctx.error(404, "ADMIN-404-3", "Domain not found", &format!("No domain with id {id}.")),
        },
    }
}

/// The audit log: applied writes, newest first.
pub(super) fn v1_events(ctx: &Ctx<'_>) -> Response {
    let (at, page) = match ctx.query.get("cursor") {
        Some(raw) => match decode_cursor::<u8>(raw) {
            Some(c) => (c.at, c.page),
            None => return invalid_cursor(ctx),
        },
        None => (0, 1),
    };
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let state = ctx.shared.read();
    let applied: Vec<_> = state.events.iter().rev().filter(|e| e.outcome == SimOutcome::Applied).collect();
    let data: Vec<_> = applied.iter().skip(at).take(V1_EVENTS_PAGE).map(|e| event_json(ctx, &state, e)).collect();
    let shown = data.len();
    let mut links = serde_json::Map::new();
    links.insert("self".into(), encode_cursor(&Cursor { q: 0u8, at, page }).into());
    let mut meta = serde_json::json!({"page_size": V1_EVENTS_PAGE});
    if at + shown < applied.len() {
        let next = encode_cursor(&Cursor { q: 0u8, at: at + shown, page: page + 1 });
        links.insert("next".into(), next.clone().into());
        meta["next"] = next.into();
    }
    json(200, &serde_json::json!({"data": data, "meta": meta, "links": links}))
}

// ---------------------------------------------------------------- admin v1 writes (switched off)

fn v1_removed(ctx: &Ctx<'_>, operation: &str, acct: Option<&str>, group: Option<&str>, successor: &str) -> Response {
    ctx.shared.write().record(
        ctx.now,
        operation,
        "admin-v1",
        acct,
        group,
        SimOutcome::Refused { status: 410, code: "ADMIN-410-1".into() },
    );
    ctx.error(
        410,
        "ADMIN-410-1",
        "Gone",
        &format!("This v1 endpoint was switched off on {V1_WRITES_OFF}: use {successor} (or run the simulator with --legacy-v1)."),
    )
}

pub(super) fn v1_user_write(ctx: &Ctx<'_>, op: &str, acct: &str) -> Response {
    let (operation, successor) = match op {
        "suspend-access" => {
            ("user.suspend", "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend")
        }
        "restore-access" => {
            ("user.restore", "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/restore")
        }
        _ => ("user.remove", "DELETE /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}"),
    };
    if !ctx.shared.config.legacy_v1 {
        return v1_removed(ctx, operation, Some(acct), None, successor);
    }
    let mut state = ctx.shared.write();
    let result = match op {
        "suspend-access" => state.suspend(None, acct),
        "restore-access" => state.restore(None, acct).map_err(|e| {
            if e.code == "ADMIN-409-3" { WriteError { status: 400, code: "ADMIN-400-32", ..e } } else { e }
        }),
        _ => state.remove_user(None, acct),
    };
    let org = state.org_id.clone();
    match state.record_result(ctx.now, operation, "admin-v1", Some(acct), None, result.map(|o| ((), o))) {
        Ok(_) if op == "remove" => no_content(),
        Ok(_) => json(
            200,
            &serde_json::json!({"message": format!("Access to organization {org} was {} for user {acct}",
                if op == "suspend-access" { "suspended" } else { "restored" })}),
        ),
        Err(e) => ctx.write_error(&e),
    }
}

#[derive(serde::Deserialize, Default)]
struct V1MembershipBody {
    account_id: Option<String>,
}

pub(super) fn v1_membership(ctx: &Ctx<'_>, group: &str, remove: Option<&str>) -> Response {
    let operation = if remove.is_some() { "group.membership.remove" } else { "group.membership.add" };
    let acct = match remove {
        Some(a) => a.to_string(),
        None => match ctx.body_json::<V1MembershipBody>() {
            Ok(V1MembershipBody { account_id: Some(a) }) => a,
            Ok(_) => return ctx.error(400, "ADMIN-400-24", "Invalid request body", "account_id: required"),
            Err(resp) => return resp,
        },
    };
    if !ctx.shared.config.legacy_v1 {
        let successor = if remove.is_some() {
            "DELETE /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships/{accountId}"
        } else {
            "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships"
        };
        return v1_removed(ctx, operation, Some(&acct), Some(group), successor);
    }
    let mut state = ctx.shared.write();
    let result = if remove.is_some() {
        state.remove_membership(None, group, &acct)
    } else {
        state.add_membership(None, group, &acct)
    };
    match state.record_result(ctx.now, operation, "admin-v1", Some(&acct), Some(group), result.map(|o| ((), o))) {
        Ok(_) => json(
            200,
            &serde_json::json!({"message": format!("User {acct} was {} group {group}",
                if remove.is_some() { "removed from" } else { "added to" })}),
        ),
        Err(e) => ctx.write_error(&e),
    }
}

// ---------------------------------------------------------------- Jira

fn jira_user(ctx: &Ctx<'_>, u: &SimUser) -> serde_json::Value {
    let mut v = serde_json::json!({
        "self": format!("{}/rest/api/3/user?accountId={}", ctx.base_url(), u.account_id),
        "accountId": u.account_id,
        "accountType": u.account_type.api(),
        "active": u.account_status == AccountStatus::Active && u.membership == Membership::Active,
        "displayName": u.name,
        "avatarUrls": {"48x48": avatar(u), "24x24": avatar(u), "16x16": avatar(u), "32x32": avatar(u)},
        "timeZone": "Etc/UTC",
    });
    if let Some(e) = &u.email {
        v["emailAddress"] = e.as_str().into();
    }
    v
}

/// Offset paging shared by the site APIs: (start, size, page number) or a 400.
fn offset(
    ctx: &Ctx<'_>,
    start_key: &str,
    size_key: &str,
    default: u32,
    max: u32,
) -> Result<(usize, usize, u32), Response> {
    let start = ctx.query.int(start_key, 0, 0, u32::MAX).map_err(|e| ctx.error(400, "", "Bad request", &e))?;
    let size = ctx.query.int(size_key, default, 1, max).map_err(|e| ctx.error(400, "", "Bad request", &e))?;
    Ok((start as usize, size as usize, start / size + 1))
}

fn jira_users(ctx: &Ctx<'_>) -> Response {
    let (start, size, page) = match offset(ctx, "startAt", "maxResults", 50, 1000) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let state = ctx.shared.read();
    // The site's user base: everyone who was ever in its directory, active or not.
    let values: Vec<_> = state
        .users
        .iter()
        .filter(|u| u.directory == 0)
        .skip(start)
        .take(size)
        .map(|u| {
            let mut v = jira_user(ctx, u);
            v["locale"] = "en_US".into();
            v
        })
        .collect();
    json(200, &values)
}

fn site_group(ctx: &Ctx<'_>, state: &SimState) -> Result<u32, Response> {
    let by_id = ctx.query.get("groupId").and_then(|g| state.group_idx(g));
    let by_name = || ctx.query.get("groupname").and_then(|n| state.group_by_name(n));
    by_id.or_else(by_name).ok_or_else(|| {
        let named = ctx.query.get("groupId").or(ctx.query.get("groupname")).unwrap_or("");
        ctx.error(404, "", "Not found", &format!("groupId: no group {named:?} on this site"))
    })
}

fn jira_group_members(ctx: &Ctx<'_>) -> Response {
    let (start, size, page) = match offset(ctx, "startAt", "maxResults", 50, 50) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let state = ctx.shared.read();
    let g = match site_group(ctx, &state) {
        Ok(g) => g,
        Err(resp) => return resp,
    };
    let inactive = ctx.query.flag("includeInactiveUsers");
    let members: Vec<&SimUser> = state
        .users
        .iter()
        .filter(|u| u.is_member() && u.groups.contains(&g))
        .filter(|u| inactive || (u.account_status == AccountStatus::Active && u.membership == Membership::Active))
        .collect();
    let values: Vec<_> = members.iter().skip(start).take(size).map(|u| jira_user(ctx, u)).collect();
    let is_last = start + values.len() >= members.len();
    let group_id = &state.groups[g as usize].id;
    let mut body = serde_json::json!({
        "self": format!("{}/rest/api/3/group/member?groupId={group_id}&startAt={start}&maxResults={size}", ctx.base_url()),
        "startAt": start,
        "maxResults": size,
        "total": members.len(),
        "isLast": is_last,
        "values": values,
    });
    if !is_last {
        body["nextPage"] = format!(
            "{}/rest/api/3/group/member?groupId={group_id}&startAt={}&maxResults={size}",
            ctx.base_url(),
            start + size
        )
        .into();
    }
    json(200, &body)
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SiteMembershipBody {
    account_id: Option<String>,
}

/// Jira `POST|DELETE /rest/api/3/group/user`, Confluence `POST|DELETE /wiki/rest/api/group/userByGroupId`:
/// the same directory groups as the Admin API.
fn site_membership(ctx: &Ctx<'_>, add: bool) -> Response {
    let api = if ctx.family == ApiFamily::Jira { "jira" } else { "confluence" };
    let acct = if add {
        match ctx.body_json::<SiteMembershipBody>() {
            Ok(SiteMembershipBody { account_id: Some(a) }) => a,
            Ok(_) => return ctx.error(400, "", "Bad request", "accountId: required in the request body"),
            Err(_) => return ctx.error(400, "", "Bad request", "request body: expected {\"accountId\": \"...\"}"),
        }
    } else {
        match ctx.query.get("accountId") {
            Some(a) => a.to_string(),
            None => return ctx.error(400, "", "Bad request", "accountId: required query parameter"),
        }
    };
    let mut state = ctx.shared.write();
    let g = match site_group(ctx, &state) {
        Ok(g) => g,
        Err(resp) => return resp,
    };
    let group_id = state.groups[g as usize].id.clone();
    let operation = if add { "group.membership.add" } else { "group.membership.remove" };
    let result = if add {
        state.add_membership(None, &group_id, &acct)
    } else {
        match state.remove_membership(None, &group_id, &acct) {
            // Confluence answers 204 when the user was not a member.
            Err(e) if api == "confluence" && e.status == 404 && state.user(&acct).is_some() => {
                Ok(SimOutcome::Unchanged)
            }
            other => other,
        }
    };
    let result = state.record_result(ctx.now, operation, api, Some(&acct), Some(&group_id), result.map(|o| ((), o)));
    match result {
        Ok(_) => match (api, add) {
            ("jira", true) => {
                let g = &state.groups[g as usize];
                json(
                    201,
                    &serde_json::json!({
                        "name": g.name,
                        "groupId": g.id,
                        "self": format!("{}/rest/api/3/group?groupId={}", ctx.base_url(), g.id),
                        "users": {"size": 0, "items": [], "max-results": 50, "start-index": 0, "end-index": 0},
                        "expand": "users",
                    }),
                )
            }
            ("jira", false) => json_empty(200),
            (_, true) => json_empty(201),
            (_, false) => no_content(),
        },
        // The site APIs report a full product as a bad request.
        Err(e) if e.status == 409 => ctx.error(400, e.code, e.title, &e.detail),
        Err(e) => ctx.error(e.status, e.code, e.title, &e.detail),
    }
}

fn json_empty(status: u16) -> Response {
    let mut resp = no_content();
    *resp.status_mut() = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    resp
}

// ---------------------------------------------------------------- Confluence

fn confluence_groups(ctx: &Ctx<'_>) -> Response {
    let (start, size, page) = match offset(ctx, "start", "limit", 200, 200) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let state = ctx.shared.read();
    let site_groups: Vec<_> = state.groups.iter().filter(|g| g.directory == 0).collect();
    let results: Vec<_> = site_groups
        .iter()
        .skip(start)
        .take(size)
        .map(|g| {
            serde_json::json!({"type": "group", "name": g.name, "id": g.id,
                "_links": {"self": format!("{}/wiki/rest/api/group/by-id?id={}", ctx.base_url(), g.id)}})
        })
        .collect();
    let mut links = serde_json::json!({"base": format!("{}/wiki", ctx.base_url()), "context": "/wiki"});
    if start + results.len() < site_groups.len() {
        links["next"] = format!("/rest/api/group?start={}&limit={size}", start + size).into();
    }
    json(
        200,
        &serde_json::json!({"results": results, "start": start, "limit": size, "size": results.len(),
            "totalSize": site_groups.len(), "_links": links}),
    )
}

fn confluence_members(ctx: &Ctx<'_>, group: &str) -> Response {
    let (start, size, page) = match offset(ctx, "start", "limit", 200, 200) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let state = ctx.shared.read();
    let Some(g) = state.group_idx(group) else {
        return ctx.error(404, "", "Not found", &format!("groupId: no group {group:?} on this site"));
    };
    let members: Vec<&SimUser> = state.users.iter().filter(|u| u.is_member() && u.groups.contains(&g)).collect();
    let results: Vec<_> = members
        .iter()
        .skip(start)
        .take(size)
        .map(|u| {
            let mut v = serde_json::json!({
                "type": "known",
                "accountId": u.account_id,
                "accountType": u.account_type.api(),
                "publicName": u.name,
                "displayName": u.name,
                "isExternalCollaborator": !u.managed,
                "isGuest": false,
                "profilePicture": {"path": avatar(u), "width": 48, "height": 48, "isDefault": false},
                "_links": {"self": format!("{}/wiki/rest/api/user?accountId={}", ctx.base_url(), u.account_id)},
            });
            if let Some(e) = &u.email {
                v["email"] = e.as_str().into();
            }
            v
        })
        .collect();
    let mut links = serde_json::json!({"base": format!("{}/wiki", ctx.base_url()), "context": "/wiki"});
    if start + results.len() < members.len() {
        links["next"] = format!("/rest/api/group/{group}/membersByGroupId?start={}&limit={size}", start + size).into();
    }
    json(
        200,
        &serde_json::json!({"results": results, "start": start, "limit": size, "size": results.len(),
            "totalSize": members.len(), "_links": links}),
    )
}

// ---------------------------------------------------------------- Bitbucket

fn bitbucket_members(ctx: &Ctx<'_>, workspace: &str) -> Response {
    let state = ctx.shared.read();
    let Some(instance) = state.products.iter().position(|p| {
        p.product == crate::product::Product::Bitbucket && state.sites[p.site as usize].name == workspace
    }) else {
        return ctx.error(404, "", "Not found", &format!("workspace: no workspace {workspace:?}"));
    };
    let page = match ctx.query.int("page", 1, 1, u32::MAX) {
        Ok(p) => p,
        Err(e) => return ctx.error(400, "", "Bad request", &e),
    };
    let pagelen = match ctx.query.int("pagelen", 50, 1, 100) {
        Ok(p) => p as usize,
        Err(e) => return ctx.error(400, "", "Bad request", &e),
    };
    if let Some(fail) = ctx.page_fails(page) {
        return fail;
    }
    let mut seen = std::collections::HashSet::new();
    let members: Vec<&SimUser> = state
        .users
        .iter()
        .filter(|u| u.is_billable() && state.access_of(u).contains(&(instance as u16)))
        .filter(|u| seen.insert(u.account_id.as_str()))
        .collect();
    let start = (page as usize - 1) * pagelen;
    let values: Vec<_> = members
        .iter()
        .skip(start)
        .take(pagelen)
        .map(|u| {
            serde_json::json!({
                "type": "workspace_membership",
                "user": {"type": "user", "display_name": u.name, "uuid": format!("{{{}}}", u.account_id),
                    "account_id": u.account_id, "nickname": u.name.split(' ').next().unwrap_or(&u.name)},
                "workspace": {"type": "workspace", "slug": workspace, "name": workspace,
                    "uuid": format!("{{{}}}", state.products[instance].id)},
                "links": {"self": {"href": format!("{}/2.0/workspaces/{workspace}/members/{}", ctx.base_url(), u.account_id)}},
            })
        })
        .collect();
    let mut body = serde_json::json!({"values": values, "page": page, "pagelen": pagelen, "size": members.len()});
    if start + pagelen < members.len() {
        body["next"] =
            format!("{}/2.0/workspaces/{workspace}/members?page={}&pagelen={pagelen}", ctx.base_url(), page + 1).into();
    }
    json(200, &body)
}
