//! The JSON Atlassian sends, and its conversion to the snapshot model. Lenient where Atlassian is
//! inconsistent (role ids as strings or objects, `links.next` as cursor or URL, date or date-time),
//! strict where a mistake would matter (an unknown user status, a timestamp that does not parse).

use std::collections::HashMap;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::product::{Product, ProductKey};
use crate::snapshot::{AccountType, DirectoryUser, ManagementSource, ProductActivity, UserStatus};

pub const ROLE_ORG_ADMIN: &str = "atlassian/org-admin";
pub const ROLE_SITE_ADMIN: &str = "atlassian/site-admin";
pub const ROLE_USER: &str = "atlassian/user";

/// A page of a cursor listing: `{"data":[...],"links":{"next":...}}`.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    /// Required: a page without `data` is not a page (never read as an empty listing).
    pub data: Vec<T>,
    #[serde(default)]
    pub links: Option<Links>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Links {
    #[serde(default)]
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The next cursor or URL, if any (empty strings mean "no more").
    pub fn next(&self) -> Option<&str> {
        self.links.as_ref().and_then(|l| l.next.as_deref()).filter(|n| !n.trim().is_empty())
    }
}

#[derive(Debug, Deserialize)]
pub struct RawDirectory {
    #[serde(rename = "directoryId", default)]
    pub directory_id: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl RawDirectory {
    pub fn id(&self) -> Option<&str> {
        self.directory_id.as_deref().or(self.id.as_deref())
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawUser {
    pub account_id: String,
    #[serde(default)]
    pub account_type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub account_status: Option<String>,
    #[serde(default)]
    pub membership_status: Option<String>,
    #[serde(default)]
    pub added_to_org: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub claim_status: Option<String>,
    #[serde(default)]
    pub management_source: Option<String>,
    #[serde(default)]
    pub platform_roles: Option<Vec<Value>>,
    /// `None`: the field was absent (v2 lacks the data); `Some([])`: no product access.
    #[serde(default)]
    pub product_access: Option<Vec<RawProductAccess>>,
    #[serde(default)]
    pub groups: Option<Vec<RawGroupRef>>,
    /// When a deactivated account was deactivated.
    #[serde(default)]
    pub deactivated_on: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawProductAccess {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub last_active_timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawGroupRef {
    pub id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawGroup {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub external_synced: Option<bool>,
    /// `{"deletable","modifiable","readable"}` (API.md §2.11); older answers sent a string.
    #[serde(default)]
    pub management_access: Option<Value>,
    #[serde(default)]
    pub counts: Option<RawCounts>,
}

impl RawGroup {
    /// Whether the caller may change the group's memberships: `managementAccess.modifiable`, or
    /// the older string form (`"read-only"` or `"none"` mean no). Absent means yes.
    pub fn modifiable(&self) -> bool {
        match &self.management_access {
            Some(Value::Object(m)) => m.get("modifiable").and_then(Value::as_bool).unwrap_or(true),
            Some(Value::String(s)) => !matches!(s.as_str(), "read-only" | "readonly" | "none"),
            _ => true,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RawCounts {
    #[serde(default)]
    pub users: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawRoleAssignment {
    #[serde(default)]
    pub resource_owner: Option<String>,
    #[serde(default)]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub roles: Vec<Value>,
}

/// v1 `GET /v1/orgs/{orgId}/users` (managed accounts).
#[derive(Debug, Deserialize)]
pub struct RawV1User {
    pub account_id: String,
    #[serde(default)]
    pub product_access: Option<Vec<RawV1ProductAccess>>,
}

#[derive(Debug, Deserialize)]
pub struct RawV1ProductAccess {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub last_active: Option<String>,
}

/// v1 last-active-dates: `{"data":{"product_access":[...],"added_to_org"},"links"}`.
#[derive(Debug, Deserialize)]
pub struct RawLastActive {
    pub data: RawLastActiveData,
    #[serde(default)]
    pub links: Option<Links>,
}

#[derive(Debug, Deserialize)]
pub struct RawLastActiveData {
    #[serde(default)]
    pub product_access: Vec<RawV1ProductAccess>,
    #[serde(default)]
    pub added_to_org: Option<String>,
}

/// A role id, whether sent as `"atlassian/org-admin"` or `{"roleId": "atlassian/org-admin"}`.
pub fn role_id(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Object(map) => ["roleId", "id", "role"].iter().find_map(|k| map.get(*k).and_then(Value::as_str)),
        _ => None,
    }
}

/// An instant as Atlassian writes it: RFC 3339 date-time, or a bare date. A bare date is read as
/// the last second of that day (UTC): the reading that never makes anyone look more inactive.
pub fn parse_instant(value: &str) -> Result<Timestamp, String> {
    let value = value.trim();
    if let Ok(ts) = value.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(date) = value.parse::<jiff::civil::Date>() {
        return date
            .at(23, 59, 59, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| format!("{value:?}: {e}"));
    }
    Err(format!("{value:?} is neither an RFC 3339 date-time nor a date"))
}

/// Per-product activity from raw entries: merged per product (the latest date wins), sorted.
/// Keys seatwarden does not model are kept ([`ProductKey::Other`]) and listed in `unknown_keys`
/// for the report. Returns the entries and whether any entry had a timestamp.
pub fn merge_activity<'a>(
    entries: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
    unknown_keys: &mut Vec<String>,
) -> Result<(Vec<ProductActivity>, bool), String> {
    let mut out: Vec<ProductActivity> = Vec::new();
    let mut any_timestamp = false;
    for (key, last_active) in entries {
        let last_active = match last_active.filter(|s| !s.trim().is_empty()) {
            Some(s) => Some(parse_instant(s).map_err(|e| format!("lastActive: {e}"))?),
            None => None,
        };
        any_timestamp |= last_active.is_some();
        let product = ProductKey::from_api_key(key.unwrap_or(""));
        if let ProductKey::Other(other) = product
            && !unknown_keys.iter().any(|k| k == other.key())
        {
            unknown_keys.push(other.key().to_owned());
        }
        match out.iter_mut().find(|p| p.product == product) {
            Some(existing) => existing.last_active = existing.last_active.max(last_active),
            None => out.push(ProductActivity { product, last_active }),
        }
    }
    out.sort_by_key(|p| p.product);
    out.shrink_to_fit();
    Ok((out, any_timestamp))
}

/// Interns group ids met in user records, per directory, so users hold small indices.
#[derive(Debug, Default)]
pub struct GroupInterner {
    pub ids: Vec<String>,
    index: HashMap<String, u32>,
}

impl GroupInterner {
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(i) = self.index.get(id) {
            return *i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(id.to_owned());
        self.index.insert(id.to_owned(), i);
        i
    }
}

/// A user as listed, before fallbacks and before group indices are made global.
#[derive(Debug)]
pub struct PendingUser {
    /// `user.groups` holds indices into the directory's [`GroupInterner`] until assembly.
    pub user: DirectoryUser,
    /// v2 delivered productAccess for this user.
    pub activity_known: bool,
    /// Some product access entry had a timestamp.
    pub ever_active: bool,
    pub site_admin_role: bool,
    /// `deactivatedOn` of a deactivated account: how long it has been deactivated (escalation
    /// from deactivation to removal counts from here, not from its last activity).
    pub deactivated_on: Option<Timestamp>,
}

/// What converting one page's users found besides the users.
#[derive(Debug, Default)]
pub struct ConversionNotes {
    pub not_in_directory: u64,
    pub unknown_account_types: Vec<String>,
    pub unknown_product_keys: Vec<String>,
}

/// Converts a v2 user. `Ok(None)` for accounts not in the directory (`not_invited`).
pub fn convert_user(
    raw: RawUser,
    directory: u16,
    groups: &mut GroupInterner,
    notes: &mut ConversionNotes,
) -> Result<Option<PendingUser>, String> {
    let who = &raw.account_id;
    if who.trim().is_empty() {
        return Err("a user has an empty accountId".to_owned());
    }
    let status = match raw.status.as_deref() {
        Some("active") => UserStatus::Active,
        Some("suspended") => UserStatus::Suspended,
        Some("deactivated" | "for_deletion" | "closed" | "inactive") => UserStatus::Deactivated,
        Some("not_invited") => {
            notes.not_in_directory += 1;
            return Ok(None);
        }
        other => match (raw.account_status.as_deref(), raw.membership_status.as_deref()) {
            (Some("inactive" | "closed"), _) => UserStatus::Deactivated,
            (Some("active"), Some("suspended")) => UserStatus::Suspended,
            (Some("active"), Some("active")) => UserStatus::Active,
            (Some("active"), Some("no_membership")) => {
                notes.not_in_directory += 1;
                return Ok(None);
            }
            (account, membership) => {
                return Err(format!(
                    "user {who}: unknown status {other:?} (accountStatus {account:?}, membershipStatus {membership:?})"
                ));
            }
        },
    };
    let account_type = match raw.account_type.as_deref() {
        Some("atlassian") => AccountType::Atlassian,
        Some("app") => AccountType::App,
        Some("customer") => AccountType::Customer,
        other => {
            // Never acted on: an account we can't classify (or that has no type) is not a person
            // we know how to treat.
            let other = other.unwrap_or("<missing>");
            if !notes.unknown_account_types.iter().any(|t| t == other) {
                notes.unknown_account_types.push(other.to_owned());
            }
            AccountType::Unknown
        }
    };
    let added_to_org = match raw.added_to_org.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => Some(parse_instant(s).map_err(|e| format!("user {who}: addedToOrg: {e}"))?),
        None => None,
    };
    let (product_access, ever_active, activity_known) = match &raw.product_access {
        Some(entries) => {
            let (list, ever) = merge_activity(
                entries.iter().map(|e| (e.key.as_deref(), e.last_active_timestamp.as_deref())),
                &mut notes.unknown_product_keys,
            )
            .map_err(|e| format!("user {who}: productAccess {e}"))?;
            (list, ever, true)
        }
        None => (Vec::new(), false, false),
    };
    let deactivated_on = match raw.deactivated_on.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => Some(parse_instant(s).map_err(|e| format!("user {who}: deactivatedOn: {e}"))?),
        None => None,
    };
    let roles: Vec<&str> = raw.platform_roles.iter().flatten().filter_map(role_id).collect();
    let mut group_idx: Vec<u32> = raw.groups.iter().flatten().map(|g| groups.intern(&g.id)).collect();
    group_idx.sort_unstable();
    group_idx.dedup();
    group_idx.shrink_to_fit();
    let management_source = match raw.management_source.as_deref() {
        Some("synced") => ManagementSource::Synced,
        Some("invited") => ManagementSource::Invited,
        _ => ManagementSource::Unknown,
    };
    let name = raw.name.or(raw.nickname).unwrap_or_default();
    Ok(Some(PendingUser {
        user: DirectoryUser {
            account_id: raw.account_id,
            email: raw.email.filter(|e| !e.is_empty()),
            name,
            account_type,
            managed: raw.claim_status.as_deref() == Some("managed"),
            status,
            added_to_org,
            product_access,
            groups: group_idx,
            org_admin: roles.contains(&ROLE_ORG_ADMIN),
            site_admin: false,
            management_source,
            directory,
        },
        activity_known,
        ever_active,
        site_admin_role: roles.contains(&ROLE_SITE_ADMIN),
        deactivated_on,
    }))
}

/// Active and never active on any product: invited (or added) and never came.
pub fn finish_status(pending: &mut PendingUser) {
    if pending.user.status == UserStatus::Active && !pending.ever_active {
        pending.user.status = UserStatus::InvitedNeverActive;
    }
}

/// What a group's role assignments grant: products with `atlassian/user`, and site-admin.
pub fn grants_of(assignments: &[RawRoleAssignment], unknown_keys: &mut Vec<String>) -> (Vec<Product>, bool) {
    let mut products = Vec::new();
    let mut site_admin = false;
    for a in assignments {
        let roles: Vec<&str> = a.roles.iter().filter_map(role_id).collect();
        if roles.contains(&ROLE_SITE_ADMIN) {
            site_admin = true;
        }
        if roles.contains(&ROLE_USER) {
            let key = a.resource_owner.as_deref().or_else(|| a.resource_id.as_deref().and_then(product_of_ari));
            match key.and_then(Product::from_api_key) {
                Some(p) if !products.contains(&p) => products.push(p),
                Some(_) => {}
                None => {
                    let key = key.unwrap_or("<none>").to_owned();
                    if !unknown_keys.contains(&key) {
                        unknown_keys.push(key);
                    }
                }
            }
        }
    }
    products.sort();
    (products, site_admin)
}

/// `ari:cloud:jira-software::site/1` → `jira-software`.
fn product_of_ari(ari: &str) -> Option<&str> {
    ari.strip_prefix("ari:cloud:").and_then(|rest| rest.split("::").next())
}

/// Where the next page is: a cursor to send, or a URL to GET.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Cursor(String),
    Url(reqwest::Url),
}

pub fn classify_next(next: &str) -> Result<Next, String> {
    let next = next.trim();
    if next.starts_with("https://") || next.starts_with("http://") {
        return reqwest::Url::parse(next).map(Next::Url).map_err(|e| format!("links.next {next:?}: {e}"));
    }
    Ok(Next::Cursor(next.to_owned()))
}

/// The cursor inside a `links.next` URL (for POST searches, which take the cursor in the body).
pub fn cursor_of_url(url: &reqwest::Url) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == "cursor").map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_access_deactivated_on_and_management_source_are_read() {
        let g = |json: &str| serde_json::from_str::<RawGroup>(json).unwrap().modifiable();
        assert!(!g(r#"{"id":"g","managementAccess":{"deletable":false,"modifiable":false,"readable":true}}"#));
        assert!(g(r#"{"id":"g","managementAccess":{"deletable":true,"modifiable":true,"readable":true}}"#));
        assert!(g(r#"{"id":"g","managementAccess":{"readable":true}}"#), "absent modifiable: no claim");
        assert!(!g(r#"{"id":"g","managementAccess":"read-only"}"#), "the older string form");
        assert!(g(r#"{"id":"g"}"#));
        let mut notes = ConversionNotes::default();
        let mut groups = GroupInterner::default();
        let u = raw(
            r#"{"accountId":"a","status":"deactivated","managementSource":"synced","deactivatedOn":"2026-05-01T10:00:00.000Z"}"#,
        );
        let p = convert_user(u, 0, &mut groups, &mut notes).unwrap().unwrap();
        assert_eq!(p.deactivated_on, Some("2026-05-01T10:00:00Z".parse().unwrap()));
        assert_eq!(p.user.management_source, ManagementSource::Synced, "synced accounts are IdP-managed");
        let bad = raw(r#"{"accountId":"a","status":"deactivated","deactivatedOn":"last week"}"#);
        assert!(convert_user(bad, 0, &mut groups, &mut notes).unwrap_err().contains("deactivatedOn"));
    }

    fn raw(json: &str) -> RawUser {
        serde_json::from_str(json).unwrap()
    }

    fn convert(json: &str) -> Result<Option<PendingUser>, String> {
        convert_user(raw(json), 0, &mut GroupInterner::default(), &mut ConversionNotes::default())
    }

    #[test]
    fn full_v2_user_converts() {
        let mut groups = GroupInterner::default();
        let mut notes = ConversionNotes::default();
        let u = convert_user(
            raw(r#"{"accountId":"a1","accountType":"atlassian","status":"active","accountStatus":"active",
                "membershipStatus":"active","addedToOrg":"2025-01-02T03:04:05Z","name":"Ann","nickname":"ann",
                "email":"ann@x.io","emailVerified":true,"claimStatus":"managed","managementSource":"synced",
                "platformRoles":["atlassian/org-admin", {"roleId":"atlassian/site-admin"}],
                "productAccess":[{"key":"jira","id":"i1","lastActiveTimestamp":"2025-06-01T00:00:00Z"},
                                 {"key":"jira-software","id":"i2","lastActiveTimestamp":"2025-07-01T00:00:00Z"},
                                 {"key":"confluence","id":"i3","lastActiveTimestamp":null}],
                "groups":[{"id":"g2","name":"b","description":""},{"id":"g1","name":"a","description":null}],
                "picture":"https://x"}"#),
            3,
            &mut groups,
            &mut notes,
        )
        .unwrap()
        .unwrap();
        assert_eq!(u.user.account_id, "a1");
        assert!(u.user.managed && u.user.org_admin && u.site_admin_role);
        assert_eq!(u.user.management_source, ManagementSource::Synced);
        assert_eq!(u.user.directory, 3);
        assert_eq!(u.user.added_to_org, Some("2025-01-02T03:04:05Z".parse().unwrap()));
        assert_eq!(
            u.user.product_access,
            vec![
                ProductActivity {
                    product: ProductKey::Known(Product::JiraSoftware),
                    last_active: Some("2025-07-01T00:00:00Z".parse().unwrap())
                },
                ProductActivity { product: ProductKey::Known(Product::Confluence), last_active: None },
            ],
            "two Jira instances merge to the latest date"
        );
        assert_eq!(groups.ids, vec!["g2", "g1"]);
        assert_eq!(u.user.groups, vec![0, 1]);
        assert!(u.activity_known && u.ever_active);
    }

    #[test]
    fn active_without_any_timestamp_is_invited_never_active() {
        let mut u = convert(
            r#"{"accountId":"a","status":"active","productAccess":[{"key":"jira","lastActiveTimestamp":null}]}"#,
        )
        .unwrap()
        .unwrap();
        finish_status(&mut u);
        assert_eq!(u.user.status, UserStatus::InvitedNeverActive);
        let mut u = convert(r#"{"accountId":"a","status":"active","productAccess":[]}"#).unwrap().unwrap();
        finish_status(&mut u);
        assert_eq!(u.user.status, UserStatus::InvitedNeverActive);
        // Activity on a product we don't know still counts as activity.
        let mut u =
            convert(r#"{"accountId":"a","status":"active","productAccess":[{"key":"hipchat","lastActiveTimestamp":"2025-01-01T00:00:00Z"}]}"#)
                .unwrap()
                .unwrap();
        finish_status(&mut u);
        assert_eq!(u.user.status, UserStatus::Active);
        // Suspended users keep their status.
        let mut u = convert(r#"{"accountId":"a","status":"suspended","productAccess":[]}"#).unwrap().unwrap();
        finish_status(&mut u);
        assert_eq!(u.user.status, UserStatus::Suspended);
    }

    #[test]
    fn missing_product_access_is_unknown_not_inactive() {
        let u = convert(r#"{"accountId":"a","status":"active"}"#).unwrap().unwrap();
        assert!(!u.activity_known);
    }

    #[test]
    fn statuses_map_and_unknown_ones_fail_loudly() {
        let status = |json: &str| convert(json).unwrap().map(|u| u.user.status);
        assert_eq!(status(r#"{"accountId":"a","status":"deactivated"}"#), Some(UserStatus::Deactivated));
        assert_eq!(status(r#"{"accountId":"a","status":"for_deletion"}"#), Some(UserStatus::Deactivated));
        assert_eq!(status(r#"{"accountId":"a","status":"not_invited"}"#), None);
        assert_eq!(
            status(r#"{"accountId":"a","status":"new-thing","accountStatus":"active","membershipStatus":"suspended"}"#),
            Some(UserStatus::Suspended)
        );
        let err = convert(r#"{"accountId":"a9","status":"weird"}"#).unwrap_err();
        assert!(err.contains("a9") && err.contains("weird"), "{err}");
        let err = convert(r#"{"accountId":"a9","status":"active","addedToOrg":"yesterday"}"#).unwrap_err();
        assert!(err.contains("addedToOrg"), "{err}");
    }

    #[test]
    fn unknown_or_missing_account_types_are_unknown_and_noted() {
        let mut notes = ConversionNotes::default();
        let u = convert_user(
            raw(r#"{"accountId":"a","accountType":"unknown","status":"active"}"#),
            0,
            &mut GroupInterner::default(),
            &mut notes,
        )
        .unwrap()
        .unwrap();
        assert_eq!(u.user.account_type, AccountType::Unknown);
        let u =
            convert_user(raw(r#"{"accountId":"b","status":"active"}"#), 0, &mut GroupInterner::default(), &mut notes)
                .unwrap()
                .unwrap();
        assert_eq!(u.user.account_type, AccountType::Unknown, "no accountType is not a human");
        assert_eq!(notes.unknown_account_types, vec!["unknown", "<missing>"]);
    }

    #[test]
    fn dates_read_as_end_of_day() {
        assert_eq!(parse_instant("2025-05-01").unwrap(), "2025-05-01T23:59:59Z".parse::<Timestamp>().unwrap());
        assert_eq!(
            parse_instant("2025-05-01T09:12:44.000Z").unwrap(),
            "2025-05-01T09:12:44Z".parse::<Timestamp>().unwrap()
        );
        assert!(parse_instant("05/01/2025").is_err());
    }

    #[test]
    fn role_assignments_give_grants_and_site_admin() {
        let assignments: Vec<RawRoleAssignment> = serde_json::from_str(
            r#"[{"resourceId":"ari:cloud:jira-software::site/1","resourceOwner":"jira-software","roles":["atlassian/user"]},
                {"resourceId":"ari:cloud:confluence::site/1","roles":[{"roleId":"atlassian/user"}]},
                {"resourceId":"ari:cloud:jira-servicedesk::site/1","resourceOwner":"jira-servicedesk","roles":["atlassian/customer"]},
                {"resourceId":"ari:cloud:platform::site/1","resourceOwner":"jira-software","roles":["atlassian/site-admin"]}]"#,
        )
        .unwrap();
        let mut unknown = Vec::new();
        let (grants, site_admin) = grants_of(&assignments, &mut unknown);
        assert_eq!(grants, vec![Product::JiraSoftware, Product::Confluence]);
        assert!(site_admin);
        assert!(unknown.is_empty());
    }

    #[test]
    fn next_links_as_cursor_or_url() {
        assert_eq!(classify_next("MDNlZWRm").unwrap(), Next::Cursor("MDNlZWRm".into()));
        let Next::Url(url) = classify_next("https://api.atlassian.com/admin/v1/orgs/o/users?cursor=abc%3D").unwrap()
        else {
            panic!("a URL")
        };
        assert_eq!(cursor_of_url(&url).as_deref(), Some("abc="));
        let page: Page<Value> = serde_json::from_str(r#"{"data":[],"links":{"self":"x","next":""}}"#).unwrap();
        assert_eq!(page.next(), None);
        let page: Page<Value> = serde_json::from_str(r#"{"data":[1],"links":{"next":"c2"}}"#).unwrap();
        assert_eq!(page.next(), Some("c2"));
        let err = serde_json::from_str::<Page<Value>>(r#"{"links":{}}"#).unwrap_err();
        assert!(err.to_string().contains("missing field `data`"), "{err}");
    }
}
