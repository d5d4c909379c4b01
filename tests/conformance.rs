//! The simulator answers as Atlassian does: every endpoint it serves, success bodies and each
//! documented error, over real HTTP, validated strictly against Atlassian's OpenAPI documents (read
//! from `$SEATWARDEN_SHARED_DIR/atlassian/specs`) and, where those lack a field or an operation,
//! against schemas written here from API.md (§2.3–§2.11, §1.2, §6). A field the simulator sends
//! that neither documents fails: the simulator cannot drift into shapes of its own.

#[path = "openapi/mod.rs"]
mod openapi;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use openapi::{Spec, admin, confluence, jira, user_management};
use reqwest::Method;
use seatwarden::sim::{Faults, SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};

// ------------------------------------------------------------------ schemas written from API.md

/// v2 cursor links (§1.1): bare cursor strings.
fn v2_links() -> Value {
    json!({"type": "object", "required": ["self"], "properties": {
        "self": {"type": "string"}, "prev": {"type": "string", "nullable": true}, "next": {"type": "string"}}})
}

/// `POST .../users/search` (§2.3b): `{"data":[MultiDirectoryUser],"links"}`.
fn users_search_page() -> Value {
    json!({"type": "object", "required": ["data", "links"], "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/MultiDirectoryUser"}},
        "links": v2_links()}})
}

/// `POST .../groups/search` (§2.6).
fn groups_search_page() -> Value {
    json!({"type": "object", "required": ["data", "links"], "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/MultiDirectoryGroup"}},
        "links": v2_links()}})
}

/// `GET .../users/{accountId}` (§2.3d): `{"data": MultiDirectoryUser}`.
fn user_details() -> Value {
    json!({"type": "object", "required": ["data"], "properties": {"data": {"$ref": "#/components/schemas/MultiDirectoryUser"}}})
}

/// `POST /v2/orgs/{orgId}/users/invite` (§2.8). API.md gives no shape for the result items.
fn invite_response() -> Value {
    json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {
        "type": "object", "required": ["email", "results"], "properties": {
            "id": {"type": "string"}, "email": {"type": "string"},
            "results": {"type": "array", "items": {"type": "object", "properties": {
                "roleAssignmentResult": {"type": "array", "items": {}},
                "groupAssignmentResult": {"type": "array", "items": {}},
                "error": {"$ref": "#/components/schemas/Error"}}}}}}}}})
}

/// `GET /admin/api-access/v1/orgs/{orgId}/api-tokens` (§2.10).
fn api_tokens_page() -> Value {
    json!({"type": "object", "required": ["data", "links"], "properties": {
        "data": {"type": "array", "items": {"type": "object", "required": ["id", "status", "user"], "properties": {
            "id": {"type": "string"}, "label": {"type": "string"}, "status": {"type": "string"},
            "createdAt": {"type": "string", "format": "date-time"},
            "expiresAt": {"type": "string", "format": "date-time", "nullable": true},
            "lastActiveAt": {"type": "string", "format": "date-time", "nullable": true},
            "user": {"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string"}, "orgId": {"type": "string"}, "name": {"type": "string"}, "email": {"type": "string"}}}}}},
        "links": {"type": "object", "properties": {
            "self": {"type": "string"}, "next": {"type": "string"}, "prev": {"type": "string", "nullable": true}}}}})
}

/// Admin v2 errors (§1.2): the document's `Errors`.
fn v2_errors() -> Value {
    json!({"$ref": "#/components/schemas/Errors"})
}

/// Bitbucket workspace members (§6, shape per Bitbucket's documents).
fn bitbucket_members() -> Value {
    json!({"type": "object", "required": ["values"], "properties": {
        "values": {"type": "array", "items": {"type": "object", "required": ["user"], "properties": {
            "type": {"type": "string", "enum": ["workspace_membership"]},
            "user": {"type": "object", "required": ["account_id"], "properties": {
                "type": {"type": "string"}, "display_name": {"type": "string"}, "uuid": {"type": "string"},
                "account_id": {"type": "string"}, "nickname": {"type": "string"}}},
            "workspace": {"type": "object", "additionalProperties": true},
            "links": {"type": "object", "additionalProperties": true}}}},
        "page": {"type": "integer"}, "pagelen": {"type": "integer"}, "size": {"type": "integer"},
        "next": {"type": "string"}, "previous": {"type": "string"}}})
}

/// Bitbucket errors (§1.2): `{"type":"error","error":{"message","detail","data"}}`.
fn bitbucket_error() -> Value {
    json!({"type": "object", "required": ["type", "error"], "properties": {
        "type": {"type": "string", "enum": ["error"]},
        "error": {"type": "object", "required": ["message"], "properties": {
            "message": {"type": "string"}, "detail": {"type": "string"}, "data": {"type": "object", "additionalProperties": true}}}}})
}

/// Confluence errors: neither its document nor API.md gives a body; the simulator's
/// `{statusCode, message}` is written down here so it cannot grow unnoticed.
fn confluence_error() -> Value {
    json!({"type": "object", "required": ["message"], "properties": {
        "statusCode": {"type": "integer"}, "message": {"type": "string"}}})
}

/// The schema for a response the document lists without a body: API.md §1.2's shapes per family
/// (gateway 401/429 `ProxyError`, admin application errors, Jira `ErrorCollection`, Confluence).
fn undocumented_body(spec: &Spec, status: u16, what: &str, text: &str) -> Value {
    match spec.name {
        "admin-organization.swagger.v3.json" if matches!(status, 401 | 429) => {
            json!({"$ref": "#/components/schemas/ProxyError"})
        }
        "admin-organization.swagger.v3.json" => json!({"$ref": "#/components/schemas/Errors.ApplicationErrors.Model"}),
        "jira-platform.swagger-v3.v3.json" if status >= 400 => json!({"$ref": "#/components/schemas/ErrorCollection"}),
        "confluence-v1.swagger.v3.json" if status >= 400 => confluence_error(),
        _ => {
            assert!(text.is_empty(), "{what}: a body where the document gives none: {text}");
            json!({})
        }
    }
}

// ------------------------------------------------------------------ the harness

enum Auth {
    Org,
    Site,
    None,
}

/// Where a response's schema comes from.
enum Expect<'a> {
    /// The operation's documented response for the status.
    Documented(&'a Spec, &'static str, &'static str),
    /// A schema (resolving `$ref`s against the admin document unless `in` says otherwise).
    Written(Value),
    WrittenIn(&'a Spec, Value),
    /// A body-less success (204 and the like).
    Empty,
}

struct Harness {
    sim: SimHandle,
    http: reqwest::Client,
    org: String,
    dir: String,
    /// (method, endpoint) -> statuses checked.
    checked: BTreeMap<(String, String), BTreeSet<u16>>,
}

impl Harness {
    async fn start(config: SimConfig) -> Harness {
        seatwarden::tls::install_crypto_provider();
        let sim = Simulator::start(config, "127.0.0.1:0").await.expect("simulator starts");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let org = sim.org_id();
        let dir = sim.directory_ids()[0].clone();
        Harness { sim, http, org, dir, checked: BTreeMap::new() }
    }

    /// Sends the request, asserts the status and validates the body strictly. `endpoint` is the
    /// path template, for the coverage record.
    #[allow(clippy::too_many_arguments)]
    async fn check(
        &mut self,
        endpoint: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        auth: Auth,
        status: u16,
        expect: Expect<'_>,
    ) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.sim.base_url()));
        req = match auth {
            Auth::Org => req.bearer_auth(self.sim.api_key()),
            Auth::Site => req.basic_auth(self.sim.site_email(), Some(self.sim.site_token())),
            Auth::None => req,
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the simulator answers");
        let got = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        let what = format!("{method} {path} {status}");
        let value: Value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
        let (spec, schema) = match expect {
            Expect::Empty => {
                assert!(text.is_empty(), "{what}: a body where none is documented: {text}");
                self.record(endpoint, &method, status);
                return Value::Null;
            }
            Expect::Documented(spec, p, m) => {
                assert!(
                    spec.statuses(p, m).contains(&status),
                    "{what}: {} documents no {status} for {m} {p}",
                    spec.name
                );
                match spec.response_schema(p, m, status) {
                    Some(s) => (spec, s.clone()),
                    // Documented without a body: the API family's error shape from API.md §1.2.
                    None => (spec, undocumented_body(spec, status, &what, &text)),
                }
            }
            Expect::Written(s) => (admin(), s),
            Expect::WrittenIn(spec, s) => (spec, s),
        };
        let errors = spec.errors(&schema, &value);
        assert!(errors.is_empty(), "{what} does not match ({}):\n{}\nbody: {value:#}", spec.name, errors.join("\n"));
        self.record(endpoint, &method, status);
        value
    }

    fn record(&mut self, endpoint: &str, method: &Method, status: u16) {
        self.checked.entry((method.to_string(), endpoint.to_string())).or_default().insert(status);
    }

    fn v1(&self, rest: &str) -> String {
        format!("/admin/v1/orgs/{}{rest}", self.org)
    }

    fn v2(&self, rest: &str) -> String {
        format!("/admin/v2/orgs/{}/directories/{}{rest}", self.org, self.dir)
    }

    fn find(&self, f: impl Fn(&seatwarden::sim::state::SimUser) -> bool) -> String {
        self.sim.with_state(|s| s.users.iter().find(|u| f(u)).expect("a matching user").account_id.clone())
    }

    fn group(&self, name: &str) -> String {
        self.sim.with_state(|s| s.groups[s.group_by_name(name).unwrap() as usize].id.clone())
    }
}

fn active_managed(u: &seatwarden::sim::state::SimUser) -> bool {
    use seatwarden::sim::state::{AccountStatus, Membership, SimAccountType, SimManagementSource};
    u.managed
        && u.account_type == SimAccountType::Atlassian
        && u.membership == Membership::Active
        && u.account_status == AccountStatus::Active
        && u.management_source != Some(SimManagementSource::Synced)
}

/// Every endpoint of Atlassian's APIs the simulator serves (the control API `/_sim` aside), with
/// the statuses this suite checks for it: a success and each documented error it can produce.
const SERVED: [(&str, &str, &[u16]); 34] = [
    ("GET", "/admin/v1/orgs", &[200, 401, 429]),
    ("GET", "/admin/v1/orgs/{orgId}", &[200, 404]),
    ("GET", "/admin/v1/orgs/{orgId}/users", &[200, 400, 401, 404, 500]),
    ("GET", "/admin/v1/orgs/{orgId}/domains", &[200]),
    ("GET", "/admin/v1/orgs/{orgId}/domains/{domainId}", &[200, 404]),
    ("GET", "/admin/v1/orgs/{orgId}/events", &[200, 400]),
    ("GET", "/admin/v1/orgs/{orgId}/events/{eventId}", &[200, 404]),
    ("GET", "/admin/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates", &[200, 404]),
    ("POST", "/admin/v1/orgs/{orgId}/directory/users/{accountId}/suspend-access", &[410]),
    ("GET", "/admin/v2/orgs/{orgId}/directories", &[200, 400, 401, 429]),
    ("POST", "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/search", &[200, 400, 404, 500]),
    ("GET", "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/stats", &[200, 404]),
    ("GET", "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}", &[200, 404]),
    ("GET", "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments", &[200, 404]),
    ("POST", "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend", &[204, 400, 404]),
    ("POST", "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/restore", &[204, 409]),
    ("DELETE", "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}", &[204, 404]),
    ("POST", "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/search", &[200, 400]),
    ("GET", "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}", &[200, 404]),
    ("GET", "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments", &[200, 404]),
    ("POST", "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships", &[204, 403, 409]),
    (
        "DELETE",
        "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships/{accountId}",
        &[204, 404],
    ),
    ("POST", "/admin/v2/orgs/{orgId}/users/invite", &[200, 400]),
    ("GET", "/admin/api-access/v1/orgs/{orgId}/api-tokens", &[200, 400, 401, 403]),
    ("GET", "/users/{account_id}/manage", &[200, 401, 403, 404]),
    ("POST", "/users/{account_id}/manage/lifecycle/disable", &[204, 403, 404]),
    ("POST", "/users/{account_id}/manage/lifecycle/enable", &[204, 409]),
    ("GET", "/rest/api/3/users/search", &[200]),
    ("GET", "/rest/api/3/group/member", &[200, 404]),
    ("POST", "/rest/api/3/group/user", &[201, 400]),
    ("DELETE", "/rest/api/3/group/user", &[200]),
    ("GET", "/wiki/rest/api/group", &[200]),
    ("GET", "/wiki/rest/api/group/{groupId}/membersByGroupId", &[200, 400]),
    ("GET", "/2.0/workspaces/{workspace}/members", &[200, 404]),
];

// ------------------------------------------------------------------ the suite

#[tokio::test]
async fn every_response_of_every_endpoint_matches_atlassians_documents() {
    let config = SimConfig {
        users: 400,
        now: "2026-09-01T12:00:00Z".parse().unwrap(),
        frozen: true,
        ..SimConfig::two_directories()
    };
    let mut h = Harness::start(config).await;
    let a = admin();
    let um = user_management();
    let (org, dir) = (h.org.clone(), h.dir.clone());

    // ---- v1 organization reads
    let p = "/admin/v1/orgs";
    h.check(p, Method::GET, p, None, Auth::Org, 200, Expect::Documented(a, "/v1/orgs", "get")).await;
    h.check(p, Method::GET, p, None, Auth::None, 401, Expect::Documented(a, "/v1/orgs", "get")).await;
    let e = "/admin/v1/orgs/{orgId}";
    let body = h
        .check(e, Method::GET, &h.v1(""), None, Auth::Org, 200, Expect::Documented(a, "/v1/orgs/{orgId}", "get"))
        .await;
    // The org's links lead somewhere that answers.
    let domains = body["data"]["relationships"]["domains"]["links"]["related"].as_str().unwrap().to_string();
    let domains_path = domains.strip_prefix(&h.sim.base_url()).unwrap().to_string();
    h.check(
        e,
        Method::GET,
        "/admin/v1/orgs/nope",
        None,
        Auth::Org,
        404,
        Expect::Documented(a, "/v1/orgs/{orgId}", "get"),
    )
    .await;
    let e = "/admin/v1/orgs/{orgId}/domains";
    let body = h
        .check(
            e,
            Method::GET,
            &domains_path,
            None,
            Auth::Org,
            200,
            Expect::Documented(a, "/v1/orgs/{orgId}/domains", "get"),
        )
        .await;
    let domain = body["data"][0]["id"].as_str().unwrap().to_string();
    let e = "/admin/v1/orgs/{orgId}/domains/{domainId}";
    let doc = Expect::Documented(a, "/v1/orgs/{orgId}/domains/{domainId}", "get");
    h.check(e, Method::GET, &h.v1(&format!("/domains/{domain}")), None, Auth::Org, 200, doc).await;
    let doc = Expect::Documented(a, "/v1/orgs/{orgId}/domains/{domainId}", "get");
    h.check(e, Method::GET, &h.v1("/domains/nowhere.example"), None, Auth::Org, 404, doc).await;

    // v1 users: every page, following links.next as the URL it is.
    let e = "/admin/v1/orgs/{orgId}/users";
    let mut path = h.v1("/users");
    loop {
        let body = h
            .check(e, Method::GET, &path, None, Auth::Org, 200, Expect::Documented(a, "/v1/orgs/{orgId}/users", "get"))
            .await;
        match body["links"]["next"].as_str() {
            Some(url) => {
                assert!(url.starts_with(&h.sim.base_url()), "links.next is a URL: {url}");
                path = url.strip_prefix(&h.sim.base_url()).unwrap().to_string();
            }
            None => break,
        }
    }
    for (path, auth, status) in [
        (h.v1("/users?cursor=garbage"), Auth::Org, 400),
        (h.v1("/users"), Auth::None, 401),
        ("/admin/v1/orgs/nope/users".to_string(), Auth::Org, 404),
    ] {
        h.check(e, Method::GET, &path, None, auth, status, Expect::Documented(a, "/v1/orgs/{orgId}/users", "get"))
            .await;
    }

    let active = h.find(active_managed);
    let e = "/admin/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates";
    let doc = || Expect::Documented(a, "/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates", "get");
    h.check(
        e,
        Method::GET,
        &h.v1(&format!("/directory/users/{active}/last-active-dates")),
        None,
        Auth::Org,
        200,
        doc(),
    )
    .await;
    h.check(e, Method::GET, &h.v1("/directory/users/nobody/last-active-dates"), None, Auth::Org, 404, doc()).await;

    // ---- v2 directories, users, groups
    let e = "/admin/v2/orgs/{orgId}/directories";
    let doc = || Expect::Documented(a, "/v2/orgs/{orgId}/directories", "get");
    let dirs_path = format!("/admin/v2/orgs/{org}/directories");
    h.check(e, Method::GET, &dirs_path, None, Auth::Org, 200, doc()).await;
    h.check(e, Method::GET, &format!("{dirs_path}?cursor=%%%"), None, Auth::Org, 400, doc()).await;
    h.check(e, Method::GET, &dirs_path, None, Auth::None, 401, doc()).await;

    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/search";
    let expand = json!({"limit": 100, "expand": ["productAccess", "groups", "platformRoles"]});
    let mut body = expand.clone();
    let mut seen_deactivated = false;
    for d in h.sim.directory_ids() {
        let search = format!("/admin/v2/orgs/{org}/directories/{d}/users/search");
        loop {
            let page = h
                .check(
                    e,
                    Method::POST,
                    &search,
                    Some(body.clone()),
                    Auth::Org,
                    200,
                    Expect::Written(users_search_page()),
                )
                .await;
            seen_deactivated |= page["data"].as_array().unwrap().iter().any(|u| u["deactivatedOn"].is_string());
            match page["links"]["next"].as_str() {
                Some(c) => body = json!({"cursor": c}),
                None => break,
            }
        }
        body = expand.clone();
    }
    assert!(seen_deactivated, "deactivated users carry deactivatedOn");
    let search = h.v2("/users/search");
    h.check(e, Method::POST, &search, Some(json!({"limit": 500})), Auth::Org, 400, Expect::Written(v2_errors())).await;
    h.check(e, Method::POST, &search, Some(json!({"cursor": "bogus"})), Auth::Org, 400, Expect::Written(v2_errors()))
        .await;
    let unknown = format!("/admin/v2/orgs/{org}/directories/unknown/users/search");
    h.check(e, Method::POST, &unknown, Some(json!({})), Auth::Org, 404, Expect::Written(v2_errors())).await;
    h.check(e, Method::POST, &search, Some(json!({})), Auth::None, 401, Expect::Written(v2_errors())).await;
    h.sim.set_faults(Faults::parse("fail-page=1").unwrap());
    h.check(e, Method::POST, &search, Some(json!({})), Auth::Org, 500, Expect::Written(v2_errors())).await;
    let doc = Expect::Documented(a, "/v1/orgs/{orgId}/users", "get");
    h.check("/admin/v1/orgs/{orgId}/users", Method::GET, &h.v1("/users"), None, Auth::Org, 500, doc).await;
    h.sim.set_faults(Faults::default());

    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/stats";
    let doc = || Expect::Documented(a, "/v2/orgs/{orgId}/directories/{directoryId}/users/stats", "get");
    h.check(e, Method::GET, &h.v2("/users/stats"), None, Auth::Org, 200, doc()).await;
    let all = format!("/admin/v2/orgs/{org}/directories/-/users/stats");
    h.check(e, Method::GET, &all, None, Auth::Org, 200, doc()).await;
    let unknown = format!("/admin/v2/orgs/{org}/directories/unknown/users/stats");
    h.check(e, Method::GET, &unknown, None, Auth::Org, 404, doc()).await;
    h.check(e, Method::GET, &h.v2("/users/stats"), None, Auth::None, 401, doc()).await;

    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}";
    let user = h
        .check(
            e,
            Method::GET,
            &h.v2(&format!("/users/{active}")),
            None,
            Auth::Org,
            200,
            Expect::Written(user_details()),
        )
        .await;
    assert_eq!(user["data"]["accountType"], "atlassian");
    // App accounts are no directory users: they appear in the sites' user search only.
    let app = h.find(|u| u.account_type == seatwarden::sim::state::SimAccountType::App);
    h.check(e, Method::GET, &h.v2(&format!("/users/{app}")), None, Auth::Org, 404, Expect::Written(v2_errors())).await;
    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments";
    let doc = || {
        Expect::Documented(a, "/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments", "get")
    };
    h.check(e, Method::GET, &h.v2(&format!("/users/{active}/role-assignments")), None, Auth::Org, 200, doc()).await;
    h.check(e, Method::GET, &h.v2("/users/nobody/role-assignments"), None, Auth::Org, 404, doc()).await;

    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/search";
    let gs = h.v2("/groups/search");
    let page = h
        .check(
            e,
            Method::POST,
            &gs,
            Some(json!({"limit": 100, "expand": ["counts.users", "counts.resources"]})),
            Auth::Org,
            200,
            Expect::Written(groups_search_page()),
        )
        .await;
    let okta = page["data"].as_array().unwrap().iter().find(|g| g["name"] == "okta-engineering").unwrap().clone();
    assert_eq!(okta["managementAccess"]["modifiable"], false, "a synced group is not modifiable");
    h.check(e, Method::POST, &gs, Some(json!({"limit": 0})), Auth::Org, 400, Expect::Written(v2_errors())).await;
    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}";
    let doc = || Expect::Documented(a, "/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}", "get");
    let jira_group = h.group("jira-software-users");
    h.check(e, Method::GET, &h.v2(&format!("/groups/{jira_group}")), None, Auth::Org, 200, doc()).await;
    h.check(e, Method::GET, &h.v2("/groups/nope"), None, Auth::Org, 404, doc()).await;
    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments";
    let doc =
        || Expect::Documented(a, "/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments", "get");
    for name in ["jira-software-users", "site-admins", "loom-users"] {
        let g = h.group(name);
        h.check(e, Method::GET, &h.v2(&format!("/groups/{g}/role-assignments")), None, Auth::Org, 200, doc()).await;
    }
    h.check(e, Method::GET, &h.v2("/groups/nope/role-assignments"), None, Auth::Org, 404, doc()).await;

    // ---- v2 writes: 204 without a body; refusals in the `Errors` shape.
    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend";
    h.check(e, Method::POST, &h.v2(&format!("/users/{active}/suspend")), None, Auth::Org, 204, Expect::Empty).await;
    h.check(e, Method::POST, &h.v2("/users/nobody/suspend"), None, Auth::Org, 404, Expect::Written(v2_errors())).await;
    let all = format!("/admin/v2/orgs/{org}/directories/-/users/{active}/suspend");
    h.check(e, Method::POST, &all, None, Auth::Org, 400, Expect::Written(v2_errors())).await;
    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/restore";
    h.check(e, Method::POST, &h.v2(&format!("/users/{active}/restore")), None, Auth::Org, 204, Expect::Empty).await;
    let holder = h.find(|u| active_managed(u) && u.directory == 0 && u.groups.contains(&0) && !u.org_admin);
    let jira_instance = h.sim.with_state(|s| s.groups[0].grants[0]);
    h.sim.with_state_mut(|s| {
        let i = s.entry_in(&holder, 0).unwrap();
        s.users[i].membership = seatwarden::sim::state::Membership::Suspended;
        s.products[jira_instance as usize].license_limit = s.seats_used(jira_instance);
    });
    h.check(
        e,
        Method::POST,
        &h.v2(&format!("/users/{holder}/restore")),
        None,
        Auth::Org,
        409,
        Expect::Written(v2_errors()),
    )
    .await;
    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships";
    let outsider = h.find(|u| active_managed(u) && u.directory == 0 && !u.groups.contains(&0));
    let memberships = h.v2(&format!("/groups/{jira_group}/memberships"));
    h.check(
        e,
        Method::POST,
        &memberships,
        Some(json!({"accountId": outsider})),
        Auth::Org,
        409,
        Expect::Written(v2_errors()),
    )
    .await;
    h.sim.with_state_mut(|s| s.products[jira_instance as usize].license_limit = u32::MAX);
    h.check(e, Method::POST, &memberships, Some(json!({"accountId": outsider})), Auth::Org, 204, Expect::Empty).await;
    let okta_id = okta["id"].as_str().unwrap();
    let synced = h.v2(&format!("/groups/{okta_id}/memberships"));
    h.check(
        e,
        Method::POST,
        &synced,
        Some(json!({"accountId": outsider})),
        Auth::Org,
        403,
        Expect::Written(v2_errors()),
    )
    .await;
    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships/{accountId}";
    h.check(
        e,
        Method::DELETE,
        &h.v2(&format!("/groups/{jira_group}/memberships/{outsider}")),
        None,
        Auth::Org,
        204,
        Expect::Empty,
    )
    .await;
    h.check(
        e,
        Method::DELETE,
        &h.v2(&format!("/groups/{jira_group}/memberships/{outsider}")),
        None,
        Auth::Org,
        404,
        Expect::Written(v2_errors()),
    )
    .await;
    let e = "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}";
    let leaver = h.find(|u| active_managed(u) && u.directory == 0 && u.account_id != active && !u.org_admin);
    h.check(e, Method::DELETE, &h.v2(&format!("/users/{leaver}")), None, Auth::Org, 204, Expect::Empty).await;
    h.check(e, Method::DELETE, &h.v2(&format!("/users/{leaver}")), None, Auth::Org, 404, Expect::Written(v2_errors()))
        .await;
    let e = "/admin/v2/orgs/{orgId}/users/invite";
    let invite = format!("/admin/v2/orgs/{org}/users/invite");
    let body = json!({"emails": ["new.person@acme.example"], "additionalGroups": [jira_group]});
    h.check(e, Method::POST, &invite, Some(body), Auth::Org, 200, Expect::Written(invite_response())).await;
    h.check(e, Method::POST, &invite, Some(json!({"emails": []})), Auth::Org, 400, Expect::Written(v2_errors())).await;
    let e = "/admin/v1/orgs/{orgId}/directory/users/{accountId}/suspend-access";
    // Switched off on 2026-06-30: not in the 2025 document; the body is its `Errors.ApplicationErrors.Model`.
    let gone = Expect::Written(json!({"$ref": "#/components/schemas/Errors.ApplicationErrors.Model"}));
    h.check(e, Method::POST, &h.v1(&format!("/directory/users/{active}/suspend-access")), None, Auth::Org, 410, gone)
        .await;

    // ---- events: the list, and each event's links.self answers.
    let e = "/admin/v1/orgs/{orgId}/events";
    let events = h
        .check(
            e,
            Method::GET,
            &h.v1("/events"),
            None,
            Auth::Org,
            200,
            Expect::Documented(a, "/v1/orgs/{orgId}/events", "get"),
        )
        .await;
    h.check(
        e,
        Method::GET,
        &h.v1("/events?cursor=nonsense"),
        None,
        Auth::Org,
        400,
        Expect::Documented(a, "/v1/orgs/{orgId}/events", "get"),
    )
    .await;
    let e = "/admin/v1/orgs/{orgId}/events/{eventId}";
    let url = events["data"][0]["links"]["self"].as_str().unwrap();
    let path = url.strip_prefix(&h.sim.base_url()).unwrap().to_string();
    let doc = || Expect::Documented(a, "/v1/orgs/{orgId}/events/{eventId}", "get");
    let one = h.check(e, Method::GET, &path, None, Auth::Org, 200, doc()).await;
    assert_eq!(one["data"], events["data"][0]);
    h.check(e, Method::GET, &h.v1("/events/999999"), None, Auth::Org, 404, doc()).await;

    // ---- API tokens (§2.10)
    let e = "/admin/api-access/v1/orgs/{orgId}/api-tokens";
    let tokens = format!("/admin/api-access/v1/orgs/{org}/api-tokens");
    let mut path = format!("{tokens}?limit=100");
    loop {
        let page = h.check(e, Method::GET, &path, None, Auth::Org, 200, Expect::Written(api_tokens_page())).await;
        match page["links"]["next"].as_str() {
            Some(c) => path = format!("{tokens}?cursor={c}"),
            None => break,
        }
    }
    h.check(e, Method::GET, &format!("{tokens}?cursor=x"), None, Auth::Org, 400, Expect::Written(v2_errors())).await;
    h.check(
        e,
        Method::GET,
        &tokens,
        None,
        Auth::None,
        401,
        Expect::Written(json!({"$ref": "#/components/schemas/ProxyError"})),
    )
    .await;
    h.sim.set_faults(Faults::parse("api-tokens=403").unwrap());
    h.check(e, Method::GET, &tokens, None, Auth::Org, 403, Expect::Written(v2_errors())).await;
    h.sim.set_faults(Faults::default());

    // ---- User management
    let e = "/users/{account_id}/manage";
    let doc = || Expect::Documented(um, "/users/{account_id}/manage", "get");
    let synced_user = h.find(|u| u.management_source == Some(seatwarden::sim::state::SimManagementSource::Synced));
    let external = h.find(|u| !u.managed && u.account_type == seatwarden::sim::state::SimAccountType::Atlassian);
    for (who, status) in [(&active, 200), (&synced_user, 200), (&external, 403)] {
        h.check(e, Method::GET, &format!("/users/{who}/manage"), None, Auth::Org, status, doc()).await;
    }
    h.check(e, Method::GET, "/users/nobody/manage", None, Auth::Org, 404, doc()).await;
    h.check(
        e,
        Method::GET,
        &format!("/users/{active}/manage"),
        None,
        Auth::None,
        401,
        Expect::Written(json!({"$ref": "#/components/schemas/ProxyError"})),
    )
    .await;
    let e = "/users/{account_id}/manage/lifecycle/disable";
    let doc = || Expect::Documented(um, "/users/{account_id}/manage/lifecycle/disable", "post");
    h.check(
        e,
        Method::POST,
        &format!("/users/{active}/manage/lifecycle/disable"),
        Some(json!({})),
        Auth::Org,
        204,
        Expect::Empty,
    )
    .await;
    h.check(
        e,
        Method::POST,
        &format!("/users/{external}/manage/lifecycle/disable"),
        Some(json!({})),
        Auth::Org,
        403,
        doc(),
    )
    .await;
    h.check(e, Method::POST, "/users/nobody/manage/lifecycle/disable", Some(json!({})), Auth::Org, 404, doc()).await;
    let e = "/users/{account_id}/manage/lifecycle/enable";
    h.check(e, Method::POST, &format!("/users/{active}/manage/lifecycle/enable"), None, Auth::Org, 204, Expect::Empty)
        .await;
    h.sim.with_state_mut(|s| {
        let entries: Vec<usize> = s.entries_of(&active).collect();
        for i in entries {
            s.users[i].account_status = seatwarden::sim::state::AccountStatus::Closed;
        }
    });
    let doc = Expect::Documented(um, "/users/{account_id}/manage/lifecycle/enable", "post");
    h.check(e, Method::POST, &format!("/users/{active}/manage/lifecycle/enable"), None, Auth::Org, 409, doc).await;

    // ---- Jira, Confluence, Bitbucket
    let j = jira();
    let e = "/rest/api/3/users/search";
    let users = h
        .check(
            e,
            Method::GET,
            "/rest/api/3/users/search?maxResults=1000",
            None,
            Auth::Site,
            200,
            Expect::Documented(j, "/rest/api/3/users/search", "get"),
        )
        .await;
    assert!(
        users.as_array().unwrap().iter().any(|u| u["accountType"] == "app"),
        "apps appear in the sites' user search"
    );
    let e = "/rest/api/3/group/member";
    let doc = || Expect::Documented(j, "/rest/api/3/group/member", "get");
    h.check(e, Method::GET, &format!("/rest/api/3/group/member?groupId={jira_group}"), None, Auth::Site, 200, doc())
        .await;
    h.check(
        e,
        Method::GET,
        "/rest/api/3/group/member?groupId=nope",
        None,
        Auth::Site,
        404,
        Expect::WrittenIn(j, json!({"$ref": "#/components/schemas/ErrorCollection"})),
    )
    .await;
    let labs = h.group("labs-confluence-users");
    let e = "/rest/api/3/group/user";
    let doc = Expect::Documented(j, "/rest/api/3/group/user", "post");
    h.check(
        e,
        Method::POST,
        &format!("/rest/api/3/group/user?groupId={labs}"),
        Some(json!({"accountId": outsider})),
        Auth::Site,
        201,
        doc,
    )
    .await;
    h.check(
        e,
        Method::POST,
        &format!("/rest/api/3/group/user?groupId={labs}"),
        Some(json!({})),
        Auth::Site,
        400,
        Expect::WrittenIn(j, json!({"$ref": "#/components/schemas/ErrorCollection"})),
    )
    .await;
    let doc = Expect::Documented(j, "/rest/api/3/group/user", "delete");
    h.check(
        e,
        Method::DELETE,
        &format!("/rest/api/3/group/user?groupId={labs}&accountId={outsider}"),
        None,
        Auth::Site,
        200,
        doc,
    )
    .await;
    let c = confluence();
    let e = "/wiki/rest/api/group";
    h.check(
        e,
        Method::GET,
        "/wiki/rest/api/group?limit=50",
        None,
        Auth::Site,
        200,
        Expect::Documented(c, "/wiki/rest/api/group", "get"),
    )
    .await;
    let e = "/wiki/rest/api/group/{groupId}/membersByGroupId";
    let doc = Expect::Documented(c, "/wiki/rest/api/group/{groupId}/membersByGroupId", "get");
    h.check(
        e,
        Method::GET,
        &format!("/wiki/rest/api/group/{jira_group}/membersByGroupId?limit=50"),
        None,
        Auth::Site,
        200,
        doc,
    )
    .await;
    h.check(
        e,
        Method::GET,
        &format!("/wiki/rest/api/group/{jira_group}/membersByGroupId?limit=201"),
        None,
        Auth::Site,
        400,
        Expect::WrittenIn(c, confluence_error()),
    )
    .await;
    let e = "/2.0/workspaces/{workspace}/members";
    h.check(
        e,
        Method::GET,
        "/2.0/workspaces/acme/members?pagelen=100",
        None,
        Auth::Site,
        200,
        Expect::Written(bitbucket_members()),
    )
    .await;
    h.check(
        e,
        Method::GET,
        "/2.0/workspaces/elsewhere/members",
        None,
        Auth::Site,
        404,
        Expect::Written(bitbucket_error()),
    )
    .await;

    // ---- 429 in both gateway shapes.
    h.sim.set_rate_limit(Some(1));
    h.sim.advance(jiff::SignedDuration::from_secs(60)); // a fresh minute of the frozen clock
    h.check(
        "/admin/v1/orgs",
        Method::GET,
        "/admin/v1/orgs",
        None,
        Auth::Org,
        200,
        Expect::Documented(a, "/v1/orgs", "get"),
    )
    .await;
    h.check(
        "/admin/v1/orgs",
        Method::GET,
        "/admin/v1/orgs",
        None,
        Auth::Org,
        429,
        Expect::Documented(a, "/v1/orgs", "get"),
    )
    .await;
    let e = "/admin/v2/orgs/{orgId}/directories";
    h.check(
        e,
        Method::GET,
        &format!("/admin/v2/orgs/{org}/directories"),
        None,
        Auth::Org,
        429,
        Expect::Documented(a, "/v2/orgs/{orgId}/directories", "get"),
    )
    .await;
    h.sim.set_rate_limit(None);
    let _ = dir;

    // ---- coverage: every served endpoint, each status listed for it.
    let mut missing = Vec::new();
    for (method, endpoint, statuses) in SERVED {
        let got = h.checked.get(&(method.to_string(), endpoint.to_string())).cloned().unwrap_or_default();
        for s in statuses {
            if !got.contains(s) {
                missing.push(format!("{method} {endpoint} {s}"));
            }
        }
    }
    assert!(missing.is_empty(), "not checked:\n{}", missing.join("\n"));
    let listed: BTreeSet<(String, String)> = SERVED.iter().map(|(m, e, _)| (m.to_string(), e.to_string())).collect();
    let extra: Vec<_> = h.checked.keys().filter(|k| !listed.contains(*k)).collect();
    assert!(extra.is_empty(), "checked but not listed in SERVED: {extra:?}");
}

#[test]
fn the_strict_check_rejects_an_undocumented_field() {
    let a = admin();
    let group = json!({"id": "g", "name": "n", "directoryId": "d", "managementAccess": {"modifiable": true}});
    assert!(a.errors(a.component("MultiDirectoryGroup"), &group).is_empty());
    let extra = json!({"id": "g", "name": "n", "invented": 1});
    let errors = a.errors(a.component("MultiDirectoryGroup"), &extra);
    assert!(errors.iter().any(|e| e.contains("invented")), "{errors:?}");
    // The old string form of managementAccess is not Atlassian's.
    let old = json!({"id": "g", "managementAccess": "full"});
    assert!(!a.errors(a.component("MultiDirectoryGroup"), &old).is_empty());
    // An app account is not a directory user.
    let app = json!({"accountId": "a", "accountType": "app"});
    assert!(!a.errors(a.component("MultiDirectoryUser"), &app).is_empty());
    // Nested and through allOf: unknown names anywhere fail.
    let page = json!({"data": [{"directoryId": "d", "name": "n", "color": "red"}], "links": {}});
    let schema = a.response_schema("/v2/orgs/{orgId}/directories", "get", 200).unwrap();
    assert!(a.errors(schema, &page).iter().any(|e| e.contains("color")));
    let proxy = json!({"code": 401, "message": "no"});
    assert!(!a.errors(&v2_errors(), &proxy).is_empty(), "a ProxyError is not the v2 `Errors` shape");
}
