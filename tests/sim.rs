//! The simulator over real HTTP on 127.0.0.1: responses against Atlassian's OpenAPI documents
//! (read from `$SEATWARDEN_SHARED_DIR` or `../shared`), stateful scenarios, faults, the rate limit,
//! the control API, saved state, paging under concurrent writes, and the `seatwarden sim` process.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, header::HeaderMap};
use seatwarden::{
    product::Product,
    sim::{
        Faults, SimConfig, SimHandle, SimOutcome, Simulator,
        state::{AccountStatus, Membership, SimManagementSource},
    },
};
use serde_json::{Value, json};

// ------------------------------------------------------------------ the documents

#[path = "openapi/mod.rs"]
mod openapi;

use openapi::Spec;

fn admin_spec() -> &'static Spec {
    openapi::admin()
}
fn user_management_spec() -> &'static Spec {
    openapi::user_management()
}
fn jira_spec() -> &'static Spec {
    openapi::jira()
}
fn confluence_spec() -> &'static Spec {
    openapi::confluence()
}

#[test]
fn the_schema_check_rejects_what_a_schema_forbids() {
    let spec = admin_spec();
    let good = json!({"data": [{"directoryId": "d", "name": "n"}], "links": {"self": "c"}});
    spec.check("/v2/orgs/{orgId}/directories", "get", 200, &good);
    let schema = spec.component("MultiDirectoryUser");
    let errors = spec.errors(schema, &json!({"accountId": 7, "status": "asleep", "addedToOrg": "yesterday"}));
    assert_eq!(errors.len(), 2, "{errors:?}"); // accountId type and status enum
    let errors = spec.errors(spec.component("OrgModel"), &json!({"id": "o", "type": "orgs"}));
    assert!(errors.iter().any(|e| e.contains("attributes")), "{errors:?}");
    let jira = jira_spec();
    let errors = jira.errors(jira.component("UserDetails"), &json!({"accountId": "a", "locale": "en"}));
    assert!(errors.iter().any(|e| e.contains("locale")), "additionalProperties false: {errors:?}");
    let errors = spec.errors(
        spec.component("UserProductLastActive"),
        &json!({"id": "i", "key": "confluence", "last_active": "2025-13-40"}),
    );
    assert!(errors.iter().any(|e| e.contains("date")), "{errors:?}");
    // Strict: a property no schema names is an error, not "anything goes".
    let errors = spec.errors(schema, &json!({"accountId": "a", "color": "teal"}));
    assert!(errors.iter().any(|e| e.contains("\"color\" is documented nowhere")), "{errors:?}");
}

// ------------------------------------------------------------------ client helpers

const START: &str = "2026-09-01T12:00:00Z";

fn config(users: u32) -> SimConfig {
    SimConfig { users, now: START.parse().unwrap(), frozen: true, ..SimConfig::default() }
}

struct Api {
    sim: SimHandle,
    http: reqwest::Client,
    org: String,
    dir: String,
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

enum Auth {
    Bearer(String),
    Basic(String, String),
    None,
}

impl Api {
    async fn start(config: SimConfig) -> Api {
        seatwarden::tls::install_crypto_provider();
        let sim = Simulator::start(config, "127.0.0.1:0").await.expect("simulator starts");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let org = sim.org_id();
        let dir = sim.directory_ids()[0].clone();
        Api { sim, http, org, dir }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>, auth: Auth) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.sim.base_url()));
        req = match auth {
            Auth::Bearer(k) => req.bearer_auth(k),
            Auth::Basic(e, t) => req.basic_auth(e, Some(t)),
            Auth::None => req,
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request reaches the simulator");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::Null) };
        Resp { status, headers, text, body }
    }

    /// With the org API key.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.send(method, path, body, Auth::Bearer(self.sim.api_key())).await
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body)).await
    }

    /// With the site user's email and token.
    async fn site(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.send(method, path, body, Auth::Basic(self.sim.site_email(), self.sim.site_token())).await
    }

    fn v2(&self, rest: &str) -> String {
        format!("/admin/v2/orgs/{}/directories/{}{rest}", self.org, self.dir)
    }

    fn v1(&self, rest: &str) -> String {
        format!("/admin/v1/orgs/{}{rest}", self.org)
    }

    fn group_id(&self, name: &str) -> String {
        self.sim.with_state(|s| s.groups[s.group_by_name(name).unwrap() as usize].id.clone())
    }

    /// The first user matching `f`.
    fn find_user(&self, f: impl Fn(&seatwarden::sim::state::SimUser) -> bool) -> String {
        self.sim.with_state(|s| s.users.iter().find(|u| f(u)).expect("a matching generated user").account_id.clone())
    }

    fn jira_instance(&self) -> u16 {
        self.sim.with_state(|s| s.instance_of(Product::JiraSoftware)[0])
    }
}

fn active_managed(u: &seatwarden::sim::state::SimUser) -> bool {
    u.managed
        && u.membership == Membership::Active
        && u.account_status == AccountStatus::Active
        && u.management_source != Some(SimManagementSource::Synced)
        && u.email.is_some()
}

// ------------------------------------------------------------------ against the specs

#[tokio::test]
async fn organizations_api_reads_validate_against_the_spec() {
    let api = Api::start(SimConfig { faults: Faults::default(), ..config(250) }).await;
    let spec = admin_spec();
    let r = api.get("/admin/v1/orgs").await;
    spec.check("/v1/orgs", "get", 200, &r.body);
    assert_eq!(r.body["data"][0]["id"], api.org.as_str());
    let r = api.send(Method::GET, "/admin/v1/orgs", None, Auth::None).await;
    assert_eq!(r.status, 401);
    spec.check("/v1/orgs", "get", 401, &r.body);
    let r = api.send(Method::GET, "/admin/v1/orgs", None, Auth::Bearer("wrong".into())).await;
    assert_eq!(r.status, 401);
    assert!(!r.text.contains("sim-key"), "the expected key is never echoed");

    let r = api.get(&api.v1("")).await;
    spec.check("/v1/orgs/{orgId}", "get", 200, &r.body);
    let r = api.get("/admin/v1/orgs/nope").await;
    assert_eq!(r.status, 404);
    spec.check("/v1/orgs/{orgId}", "get", 404, &r.body);
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-404-2");

    // v1 users: every page validates; only managed accounts; total matches.
    let mut next: Option<String> = None;
    let mut seen = 0;
    loop {
        // links.next is the URL of the next page (API.md §2.11), fetched as is.
        let path = match &next {
            Some(url) => url.strip_prefix(&api.sim.base_url()).expect("a URL of this server").to_string(),
            None => api.v1("/users"),
        };
        let r = api.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        spec.check("/v1/orgs/{orgId}/users", "get", 200, &r.body);
        seen += r.body["data"].as_array().unwrap().len();
        assert!(
            r.body["data"].as_array().unwrap().iter().all(|u| u["email"]
                .as_str()
                .is_some_and(|e| !e.ends_with(seatwarden::sim::generate::CONTRACTOR_DOMAIN)))
        );
        match r.body["links"]["next"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => {
                assert_eq!(r.body["meta"]["total"].as_u64(), Some(seen as u64));
                break;
            }
        }
    }
    assert!(seen > 150 && seen < 250, "managed accounts only: {seen}");
    let r = api.get(&api.v1("/users?cursor=garbage")).await;
    assert_eq!(r.status, 400);
    spec.check("/v1/orgs/{orgId}/users", "get", 400, &r.body);
    let r = api.get("/admin/v1/orgs/nope/users").await;
    spec.check("/v1/orgs/{orgId}/users", "get", 404, &r.body);

    // last-active-dates: dates, only products with activity.
    let active = api.find_user(|u| active_managed(u) && !u.activity.is_empty());
    let r = api.get(&api.v1(&format!("/directory/users/{active}/last-active-dates"))).await;
    spec.check("/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates", "get", 200, &r.body);
    assert!(!r.body["data"]["product_access"].as_array().unwrap().is_empty());
    let never = api.find_user(|u| u.activity.is_empty() && u.management_source == Some(SimManagementSource::Invited));
    let r = api.get(&api.v1(&format!("/directory/users/{never}/last-active-dates"))).await;
    assert_eq!(r.body["data"]["product_access"], json!([]), "never used: empty, not epoch");
    let r = api.get(&api.v1("/directory/users/nobody/last-active-dates")).await;
    assert_eq!(r.status, 404);
    spec.check("/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates", "get", 404, &r.body);
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-404-8");

    // v2 reads in the spec.
    let r = api.get(&format!("/admin/v2/orgs/{}/directories", api.org)).await;
    spec.check("/v2/orgs/{orgId}/directories", "get", 200, &r.body);
    assert_eq!(r.body["data"][0]["directoryId"], api.dir.as_str());
    let r = api.get(&format!("/admin/v2/orgs/{}/directories?cursor=%%%", api.org)).await;
    spec.check("/v2/orgs/{orgId}/directories", "get", 400, &r.body);
    for name in ["jira-software-users", "site-admins", "dept-sales"] {
        let gid = api.group_id(name);
        let r = api.get(&api.v2(&format!("/groups/{gid}/role-assignments"))).await;
        spec.check("/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments", "get", 200, &r.body);
        let roles: Vec<&str> = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|a| a["roles"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()))
            .collect();
        match name {
            "jira-software-users" => {
                assert_eq!(r.body["data"][0]["resourceOwner"], "jira-software");
                assert!(
                    r.body["data"][0]["resourceId"].as_str().unwrap().starts_with("ari:cloud:jira-software::site/")
                );
                assert_eq!(roles, ["atlassian/user"]);
            }
            "site-admins" => assert!(roles.contains(&"atlassian/site-admin")),
            _ => assert!(roles.is_empty(), "an unlicensed group grants nothing"),
        }
        let r = api.get(&api.v2(&format!("/groups/{gid}"))).await;
        spec.check("/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}", "get", 200, &r.body);
    }
    let r = api.get(&api.v2("/groups/nope")).await;
    assert_eq!(r.status, 404);
    spec.check("/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}", "get", 404, &r.body);
    let r = api.send(Method::GET, &format!("/admin/v2/orgs/{}/directories", api.org), None, Auth::None).await;
    assert_eq!(r.status, 401);
    spec.check("/v2/orgs/{orgId}/directories", "get", 401, &r.body);
    let r = api.get(&api.v1("/events?cursor=nonsense")).await;
    assert_eq!(r.status, 400);
    spec.check("/v1/orgs/{orgId}/events", "get", 400, &r.body);
    let r = api.get(&api.v2("/groups/nope/role-assignments")).await;
    assert_eq!(r.status, 404);
    spec.check("/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments", "get", 404, &r.body);
    let r = api.get(&api.v2(&format!("/users/{active}/role-assignments"))).await;
    spec.check("/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments", "get", 200, &r.body);
    let r = api.get(&api.v2("/users/nobody/role-assignments")).await;
    spec.check("/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments", "get", 404, &r.body);

    // A write, then the audit events validate.
    let r = api.call(Method::POST, &api.v2(&format!("/users/{active}/suspend")), None).await;
    assert_eq!(r.status, 204);
    let r = api.get(&api.v1("/events")).await;
    spec.check("/v1/orgs/{orgId}/events", "get", 200, &r.body);
    assert_eq!(r.body["data"][0]["attributes"]["action"], "user_access_suspended");
    assert_eq!(r.body["data"][0]["attributes"]["context"][0]["id"], active.as_str());
    assert_eq!(r.body["data"][0]["attributes"]["time"], "2026-09-01T12:00:00.000Z", "the simulator's clock");

    // 500 from an injected failing page, 429 from the rate limit: both documented shapes.
    api.sim.set_faults(Faults::parse("fail-page=1").unwrap());
    let r = api.get(&api.v1("/users")).await;
    assert_eq!(r.status, 500);
    spec.check("/v1/orgs/{orgId}/users", "get", 500, &r.body);
    api.sim.set_faults(Faults::default());
    api.sim.set_rate_limit(Some(1));
    api.get("/admin/v1/orgs").await;
    let r = api.get("/admin/v1/orgs").await;
    assert_eq!(r.status, 429);
    spec.check("/v1/orgs", "get", 429, &r.body);
}

#[tokio::test]
async fn v1_writes_answer_as_removed_unless_legacy_v1() {
    let spec = admin_spec();
    let api = Api::start(config(120)).await;
    let user = api.find_user(active_managed);
    let r = api.call(Method::POST, &api.v1(&format!("/directory/users/{user}/suspend-access")), None).await;
    assert_eq!(r.status, 410, "{}", r.text);
    // 410 is not in the 2025 spec (the switch-off came later): the body is the spec's `Errors` shape.
    spec.check_schema(spec.component("Errors"), &r.body, "v1 suspend-access 410");
    assert!(r.body["errors"][0]["detail"].as_str().unwrap().contains("/suspend"));
    assert_eq!(api.sim.with_state(|s| s.user(&user).unwrap().membership), Membership::Active, "nothing changed");
    assert!(matches!(api.sim.events().last().unwrap().outcome, SimOutcome::Refused { status: 410, .. }));

    let api = Api::start(SimConfig { legacy_v1: true, ..config(120) }).await;
    let path = "/v1/orgs/{orgId}/directory/users/{accountId}";
    let r = api.call(Method::POST, &api.v1(&format!("/directory/users/{user}/suspend-access")), None).await;
    assert_eq!(r.status, 200);
    spec.check(&format!("{path}/suspend-access"), "post", 200, &r.body);
    let r = api.call(Method::POST, &api.v1(&format!("/directory/users/{user}/restore-access")), None).await;
    spec.check(&format!("{path}/restore-access"), "post", 200, &r.body);
    let r = api.call(Method::POST, &api.v1("/directory/users/nobody/suspend-access"), None).await;
    assert_eq!(r.status, 404);
    spec.check(&format!("{path}/suspend-access"), "post", 404, &r.body);

    let mpath = "/v1/orgs/{orgId}/directory/groups/{groupId}/memberships";
    let confluence = api.group_id("labs-confluence-users");
    let outsider = api.find_user(|u| active_managed(u) && u.groups.len() == 1);
    let r = api
        .post(&api.v1(&format!("/directory/groups/{confluence}/memberships")), json!({"account_id": outsider}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    spec.check(mpath, "post", 200, &r.body);
    let okta = api.group_id("okta-engineering");
    let r = api.post(&api.v1(&format!("/directory/groups/{okta}/memberships")), json!({"account_id": outsider})).await;
    assert_eq!(r.status, 403);
    spec.check(mpath, "post", 403, &r.body);
    let jira = api.group_id("jira-software-users");
    let inst = api.jira_instance();
    api.sim.with_state_mut(|s| s.products[inst as usize].license_limit = s.seats_used(inst));
    let r = api.post(&api.v1(&format!("/directory/groups/{jira}/memberships")), json!({"account_id": outsider})).await;
    assert_eq!(r.status, 409);
    spec.check(mpath, "post", 409, &r.body);
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-409-3");
    // Restoring into a full product: v1 answers 400 ADMIN-400-32 (too many license breaches).
    let holder = api.find_user(|u| active_managed(u) && u.groups.contains(&0) && !u.org_admin);
    api.sim.with_state_mut(|s| {
        s.user_mut(&holder).unwrap().membership = Membership::Suspended;
        s.products[inst as usize].license_limit = s.seats_used(inst);
    });
    let r = api.call(Method::POST, &api.v1(&format!("/directory/users/{holder}/restore-access")), None).await;
    assert_eq!(r.status, 400, "{}", r.text);
    spec.check(&format!("{path}/restore-access"), "post", 400, &r.body);
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-400-32");
    let r = api
        .call(Method::DELETE, &api.v1(&format!("/directory/groups/{confluence}/memberships/{outsider}")), None)
        .await;
    assert_eq!(r.status, 200);
    spec.check(&format!("{mpath}/{{accountId}}"), "delete", 200, &r.body);
    let r = api.call(Method::DELETE, &api.v1(&format!("/directory/users/{user}")), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(api.sim.with_state(|s| s.user(&user).unwrap().membership), Membership::None);
}

#[tokio::test]
async fn user_management_validates_against_its_spec() {
    let spec = user_management_spec();
    let api = Api::start(config(200)).await;
    let managed = api.find_user(active_managed);
    let external = api.find_user(|u| !u.managed && u.email.is_some() && u.membership == Membership::Active);
    let synced = api.find_user(|u| u.management_source == Some(SimManagementSource::Synced));

    let r = api.get(&format!("/users/{managed}/manage")).await;
    assert_eq!(r.status, 200);
    spec.check("/users/{account_id}/manage", "get", 200, &r.body);
    assert_eq!(r.body["lifecycle.enablement"], json!({"allowed": true}));
    let r = api.get(&format!("/users/{synced}/manage")).await;
    spec.check("/users/{account_id}/manage", "get", 200, &r.body);
    assert_eq!(r.body["lifecycle.enablement"]["reason"]["key"], "externalDirectory.scim");
    let r = api.get(&format!("/users/{external}/manage")).await;
    assert_eq!(r.status, 403);
    spec.check("/users/{account_id}/manage", "get", 403, &r.body);
    let r = api.get("/users/nobody/manage").await;
    assert_eq!(r.status, 404);
    spec.check("/users/{account_id}/manage", "get", 404, &r.body);

    let disable = "/users/{account_id}/manage/lifecycle/disable";
    let r = api.post(&format!("/users/{managed}/manage/lifecycle/disable"), json!({"message": "bye"})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(api.sim.with_state(|s| s.user(&managed).unwrap().account_status), AccountStatus::Inactive);
    let r = api.post(&format!("/users/{external}/manage/lifecycle/disable"), json!({})).await;
    assert_eq!(r.status, 403);
    spec.check(disable, "post", 403, &r.body);
    let r = api.post("/users/nobody/manage/lifecycle/disable", json!({})).await;
    spec.check(disable, "post", 404, &r.body);
    let enable = "/users/{account_id}/manage/lifecycle/enable";
    let r = api.call(Method::POST, &format!("/users/{managed}/manage/lifecycle/enable"), None).await;
    assert_eq!(r.status, 204);
    api.sim.with_state_mut(|s| s.user_mut(&managed).unwrap().account_status = AccountStatus::Closed);
    let r = api.call(Method::POST, &format!("/users/{managed}/manage/lifecycle/enable"), None).await;
    assert_eq!(r.status, 409);
    spec.check(enable, "post", 409, &r.body);
    let r = api.send(Method::GET, &format!("/users/{managed}/manage"), None, Auth::None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn jira_and_confluence_validate_against_their_specs() {
    let jira = jira_spec();
    let confluence = confluence_spec();
    let api = Api::start(config(150)).await;
    let r = api.site(Method::GET, "/rest/api/3/users/search?maxResults=40", None).await;
    assert_eq!(r.status, 200);
    jira.check("/rest/api/3/users/search", "get", 200, &r.body);
    assert_eq!(r.body.as_array().unwrap().len(), 40);
    let r = api.site(Method::GET, "/rest/api/3/users/search?startAt=140&maxResults=40", None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 10, "a bare array, short at the end");
    let r = api.call(Method::GET, "/rest/api/3/users/search", None).await;
    assert_eq!(r.status, 401, "a site path takes Basic auth, not the org key");
    jira.check_schema(jira.component("ErrorCollection"), &r.body, "Jira 401 (the spec names no body: ErrorCollection)");

    let gid = api.group_id("confluence-users");
    let r = api.site(Method::GET, &format!("/rest/api/3/group/member?groupId={gid}&maxResults=10"), None).await;
    jira.check("/rest/api/3/group/member", "get", 200, &r.body);
    assert_eq!(r.body["isLast"], false);
    let total = r.body["total"].as_u64().unwrap();
    assert_eq!(
        total as u32,
        api.sim.with_state(|s| s.member_counts()[s.group_idx(&gid).unwrap() as usize]).min(total as u32),
        "active members only by default"
    );
    let r = api.site(Method::GET, "/rest/api/3/group/member?groupId=nope", None).await;
    assert_eq!(r.status, 404);
    jira.check_schema(jira.component("ErrorCollection"), &r.body, "Jira 404 (ErrorCollection)");

    let labs = api.group_id("labs-confluence-users");
    let user = api.find_user(|u| active_managed(u) && u.groups.len() == 1);
    let r = api
        .site(Method::POST, &format!("/rest/api/3/group/user?groupId={labs}"), Some(json!({"accountId": user})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    jira.check("/rest/api/3/group/user", "post", 201, &r.body);
    let r = api.site(Method::POST, &format!("/rest/api/3/group/user?groupId={labs}"), Some(json!({}))).await;
    assert_eq!(r.status, 400);
    jira.check_schema(jira.component("ErrorCollection"), &r.body, "Jira 400 (ErrorCollection)");
    let r = api.site(Method::DELETE, &format!("/rest/api/3/group/user?groupId={labs}&accountId={user}"), None).await;
    assert_eq!(r.status, 200);
    assert!(!api.sim.with_state(|s| s.user(&user).unwrap().groups.contains(&s.group_idx(&labs).unwrap())));

    let r = api.site(Method::GET, "/wiki/rest/api/group?limit=5", None).await;
    confluence.check("/wiki/rest/api/group", "get", 200, &r.body);
    let r = api.site(Method::GET, &format!("/wiki/rest/api/group/{gid}/membersByGroupId?limit=7"), None).await;
    confluence.check("/wiki/rest/api/group/{groupId}/membersByGroupId", "get", 200, &r.body);
    assert_eq!(r.body["size"], 7);
    let r = api.site(Method::GET, &format!("/wiki/rest/api/group/{gid}/membersByGroupId?limit=201"), None).await;
    assert_eq!(r.status, 400, "limit over 200");
    let r = api
        .site(
            Method::POST,
            &format!("/wiki/rest/api/group/userByGroupId?groupId={labs}"),
            Some(json!({"accountId": user})),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = api
        .site(Method::DELETE, &format!("/wiki/rest/api/group/userByGroupId?groupId={labs}&accountId={user}"), None)
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .site(Method::DELETE, &format!("/wiki/rest/api/group/userByGroupId?groupId={labs}&accountId={user}"), None)
        .await;
    assert_eq!(r.status, 204, "Confluence: 204 also when the user was not a member");
    let apis: Vec<String> = api.sim.events().iter().map(|e| e.api.clone()).collect();
    // The malformed add was refused before it became a write, so it is not an event.
    assert_eq!(apis, ["jira", "jira", "confluence", "confluence", "confluence"]);
}

/// The specs lack v2 users/search, groups/search, invite, the v2 writes and Bitbucket: these are
/// checked against API.md's shapes (and the contract agreed with the client), not a schema.
#[tokio::test]
async fn operations_missing_from_the_specs_match_api_md_shapes() {
    let spec = admin_spec();
    let api = Api::start(config(300)).await;
    let r = api
        .post(&api.v2("/users/search"), json!({"limit": 100, "expand": ["productAccess", "groups", "platformRoles"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let users = r.body["data"].as_array().unwrap();
    assert_eq!(users.len(), 100);
    assert!(r.body["links"]["next"].is_string() && r.body["links"]["self"].is_string());
    for u in users {
        for field in [
            "accountId",
            "accountType",
            "status",
            "accountStatus",
            "membershipStatus",
            "addedToOrg",
            "name",
            "nickname",
            "emailVerified",
            "claimStatus",
            "platformRoles",
            "productAccess",
            "groups",
        ] {
            assert!(u.get(field).is_some(), "{field} missing in {u}");
        }
        assert!(u.get("managementSource").is_some(), "managementSource is present (null when unknown)");
        assert!(["atlassian", "app", "customer"].contains(&u["accountType"].as_str().unwrap()));
        assert!(["active", "suspended", "deactivated", "not_invited"].contains(&u["status"].as_str().unwrap()));
        assert!(["managed", "unmanaged"].contains(&u["claimStatus"].as_str().unwrap()));
        assert!(u["addedToOrg"].as_str().unwrap().parse::<Timestamp>().is_ok());
        for p in u["productAccess"].as_array().unwrap() {
            assert!(Product::from_api_key(p["key"].as_str().unwrap()).is_some(), "{p}");
            assert!(p["id"].is_string());
            assert!(
                p["lastActiveTimestamp"].is_null()
                    || p["lastActiveTimestamp"].as_str().unwrap().parse::<Timestamp>().is_ok()
            );
        }
        for g in u["groups"].as_array().unwrap() {
            assert!(g["id"].is_string() && g["name"].is_string() && g["description"].is_string());
        }
        // Where the 2025 spec has a model for these users, everything but the newer fields fits it.
        let mut fitted = u.clone();
        for newer in ["productAccess", "groups", "department", "accountType", "platformRoles", "managementSource"] {
            fitted.as_object_mut().unwrap().remove(newer);
        }
        spec.check_schema(spec.component("MultiDirectoryUser"), &fitted, "users/search item (minus newer fields)");
    }
    let admin = users.iter().find(|u| u["platformRoles"].as_array().unwrap().contains(&json!("atlassian/org-admin")));
    assert!(admin.is_some(), "org admins carry platformRoles");
    let plain = api.post(&api.v2("/users/search"), json!({"limit": 1})).await;
    let u = &plain.body["data"][0];
    assert!(
        u.get("productAccess").is_none() && u.get("groups").is_none() && u.get("platformRoles").is_none(),
        "only when expanded"
    );

    // An invitee that never logged in; an accessible product never used.
    let never = api.find_user(|u| {
        u.activity.is_empty() && u.management_source == Some(SimManagementSource::Invited) && !u.groups.is_empty()
    });
    let r = api.post(&api.v2("/users/search"), json!({"accountIds": [never], "expand": ["productAccess"]})).await;
    let u = &r.body["data"][0];
    assert_eq!((u["status"].as_str(), u["managementSource"].as_str()), (Some("active"), Some("invited")));
    assert!(u["productAccess"].as_array().unwrap().iter().all(|p| p["lastActiveTimestamp"].is_null()));

    // Groups search.
    let r = api.post(&api.v2("/groups/search"), json!({"expand": ["counts.users"], "limit": 100})).await;
    assert_eq!(r.status, 200);
    let groups = r.body["data"].as_array().unwrap();
    for g in groups {
        for field in ["id", "name", "description", "directoryId", "managementAccess", "externalSynced", "managedBy"] {
            assert!(g.get(field).is_some(), "{field} missing in {g}");
        }
        assert!(g["counts"]["users"].is_u64());
        spec.check_schema(spec.component("MultiDirectoryGroup"), g, "groups/search item");
    }
    let okta = groups.iter().find(|g| g["name"] == "okta-engineering").unwrap();
    assert_eq!(okta["externalSynced"], true);
    let r = api.post(&api.v2("/groups/search"), json!({"limit": 5})).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 5);
    assert!(r.body["data"][0].get("counts").is_none());
    let next = r.body["links"]["next"].as_str().unwrap().to_string();
    let r2 = api.post(&api.v2("/groups/search"), json!({"cursor": next, "limit": 99})).await;
    assert_eq!(r2.body["data"].as_array().unwrap().len(), 5, "a cursor carries its search; other fields are discarded");
    assert_ne!(r2.body["data"][0]["id"], r.body["data"][0]["id"]);

    // v2 errors: the spec's `Errors` component.
    let r = api.post(&api.v2("/users/search"), json!({"limit": 500})).await;
    assert_eq!(r.status, 400);
    spec.check_schema(spec.component("Errors"), &r.body, "users/search 400");
    assert!(r.body["errors"][0]["detail"].as_str().unwrap().contains("limit"));
    let r = api.post(&api.v2("/users/search"), json!({"status": ["sleeping"]})).await;
    assert!(r.body["errors"][0]["detail"].as_str().unwrap().contains("status"));
    let r = api.post(&api.v2("/users/search"), json!({"cursor": "bogus"})).await;
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-400-1");
    let r = api.call(Method::POST, &api.v2("/users/nobody/suspend"), None).await;
    assert_eq!(r.status, 404);
    spec.check_schema(spec.component("Errors"), &r.body, "v2 suspend 404");
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-404-8");
    let r = api.call(Method::POST, &format!("/admin/v2/orgs/{}/directories/-/users/x/suspend", api.org), None).await;
    assert_eq!(r.status, 400, "writes need a concrete directory");

    // One-user re-read.
    let one = api.find_user(active_managed);
    let r = api.get(&api.v2(&format!("/users/{one}?expand=productAccess"))).await;
    assert_eq!(r.body["data"]["accountId"], one.as_str());
    assert!(r.body["data"]["productAccess"].is_array());
    let r = api.get(&api.v2("/users/nobody")).await;
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-404-8");

    // Invite: a new person, billed from now on; an existing member is unchanged.
    let jira = api.group_id("jira-software-users");
    let inst = api.jira_instance();
    let seats = api.sim.with_state(|s| s.seats_used(inst));
    let r = api
        .post(
            &format!("/admin/v2/orgs/{}/users/invite", api.org),
            json!({"emails": ["new.person@acme.example"], "additionalGroups": [jira], "sendNotification": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.body["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["data"][0]["email"], "new.person@acme.example");
    assert!(r.body["data"][0]["results"].is_array());
    assert_eq!(api.sim.with_state(|s| s.seats_used(inst)), seats + 1, "invitees are billable");
    let r = api
        .post(&api.v2("/users/search"), json!({"emails": ["NEW.person@acme.example"], "expand": ["productAccess"]}))
        .await;
    let u = &r.body["data"][0];
    assert_eq!(
        (u["accountId"].as_str(), u["managementSource"].as_str(), u["claimStatus"].as_str()),
        (Some(id.as_str()), Some("invited"), Some("managed"))
    );
    assert_eq!(u["productAccess"][0]["lastActiveTimestamp"], Value::Null);
    let r = api.post(&format!("/admin/v2/orgs/{}/users/invite", api.org), json!({"emails": []})).await;
    assert_eq!(r.status, 400);

    // Bitbucket (API.md §6).
    let r = api.site(Method::GET, "/2.0/workspaces/acme/members?pagelen=5", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["values"].as_array().unwrap().len(), 5);
    let m = &r.body["values"][0];
    assert_eq!(m["type"], "workspace_membership");
    assert!(m["user"]["account_id"].is_string() && m["user"]["display_name"].is_string());
    assert!(r.body["next"].as_str().unwrap().contains("page=2"));
    let r = api.site(Method::GET, "/2.0/workspaces/elsewhere/members", None).await;
    assert_eq!((r.status, r.body["type"].as_str()), (404, Some("error")));
}

#[tokio::test]
async fn several_directories_are_listed_and_addressed_separately() {
    let api = Api::start(SimConfig { directories: 2, ..config(200) }).await;
    let r = api.get(&format!("/admin/v2/orgs/{}/directories", api.org)).await;
    let ids: Vec<&str> =
        r.body["data"].as_array().unwrap().iter().map(|d| d["directoryId"].as_str().unwrap()).collect();
    assert_eq!(ids, api.sim.directory_ids());
    let r = api.get(&format!("/admin/v2/orgs/{}/directories?limit=1", api.org)).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    let next = r.body["links"]["next"].as_str().unwrap().to_string();
    let r = api.get(&format!("/admin/v2/orgs/{}/directories?cursor={next}", api.org)).await;
    assert_eq!(r.body["data"][0]["directoryId"], ids[1]);
    let path = format!("/admin/v2/orgs/{}/directories/{}/users/search", api.org, ids[1]);
    let second: Vec<String> = api.post(&path, json!({"limit": 100})).await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["accountId"].as_str().unwrap().to_string())
        .collect();
    let in_second =
        api.sim.with_state(|s| s.users.iter().filter(|u| u.directory == 1 && u.is_directory_user()).count());
    assert_eq!(second.len(), in_second.min(100));
    assert!(api.sim.with_state(|s| second.iter().all(|id| s.user(id).unwrap().directory == 1)));
    let r = api
        .call(
            Method::POST,
            &format!("/admin/v2/orgs/{}/directories/{}/users/{}/suspend", api.org, ids[0], second[0]),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "a user is suspended in the directory that holds them");
    let r = api
        .call(
            Method::POST,
            &format!("/admin/v2/orgs/{}/directories/{}/users/{}/suspend", api.org, ids[1], second[0]),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = api.get(&format!("/admin/v2/orgs/{}/directories?accountId={}", api.org, second[0])).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["data"][0]["directoryId"], ids[1]);
    let r = api.post(&format!("/admin/v2/orgs/{}/directories/unknown/users/search", api.org), json!({})).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn an_invite_with_a_permission_rule_grants_the_product() {
    let api = Api::start(config(100)).await;
    let inst = api.sim.with_state(|s| s.instance_of(Product::Confluence)[1]);
    let resource = api.sim.with_state(|s| s.products[inst as usize].resource_id(&s.sites));
    let r = api
        .post(
            &format!("/admin/v2/orgs/{}/users/invite", api.org),
            json!({"emails": ["guest@contractors-partner.example"], "permissionRules": [{"resource": resource, "role": "atlassian/user"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.body["data"][0]["id"].as_str().unwrap().to_string();
    api.sim.with_state(|s| {
        let u = s.user(&id).unwrap();
        assert!(!u.managed, "an external domain stays unmanaged");
        assert_eq!(s.access_of(u), vec![inst]);
        assert_eq!(u.added_to_org, START.parse::<Timestamp>().unwrap());
    });
    let r = api
        .post(
            &format!("/admin/v2/orgs/{}/users/invite", api.org),
            json!({"emails": ["x@acme.example"], "permissionRules": [{"resource": "ari:cloud:trello::site/none", "role": "atlassian/user"}]}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("ari:cloud:trello::site/none"));
    let ev = api.sim.events();
    assert_eq!(
        (ev.len(), ev[0].operation.as_str(), ev[0].account_id.as_deref()),
        (1, "user.invite", Some(id.as_str()))
    );
}

// ------------------------------------------------------------------ stateful scenarios

/// Seats of Jira Software (first site) as the client sees them: users with access who are billed.
async fn jira_seats_via_api(api: &Api) -> usize {
    let mut cursor = None;
    let mut seats = 0;
    loop {
        let body = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({"limit": 100, "status": ["active"], "expand": ["productAccess"]}),
        };
        let r = api.post(&api.v2("/users/search"), body).await;
        let jira_id = api.sim.with_state(|s| s.products[api.jira_instance() as usize].id.clone());
        seats += r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| {
                u["accountType"] == "atlassian"
                    && u["productAccess"].as_array().unwrap().iter().any(|p| p["id"] == jira_id.as_str())
            })
            .count();
        match r.body["links"]["next"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => return seats,
        }
    }
}

#[tokio::test]
async fn suspend_and_restore_round_trip() {
    let api = Api::start(config(200)).await;
    let inst = api.jira_instance();
    let user = api.find_user(|u| {
        active_managed(u) && u.groups.len() >= 2 && u.account_type == seatwarden::sim::state::SimAccountType::Atlassian
    });
    let groups_before = api.sim.with_state(|s| s.user(&user).unwrap().groups.clone());
    let seats = jira_seats_via_api(&api).await;
    assert_eq!(seats as u32, api.sim.with_state(|s| s.seats_used(inst)));
    let had_jira = api.sim.with_state(|s| s.access_of(s.user(&user).unwrap()).contains(&inst));

    let r = api.call(Method::POST, &api.v2(&format!("/users/{user}/suspend")), None).await;
    assert_eq!(r.status, 204);
    let r = api.post(&api.v2("/users/search"), json!({"accountIds": [user], "expand": ["groups"]})).await;
    assert_eq!(r.body["data"][0]["status"], "suspended");
    assert_eq!(r.body["data"][0]["membershipStatus"], "suspended");
    assert_eq!(r.body["data"][0]["groups"].as_array().unwrap().len(), groups_before.len(), "suspension keeps groups");
    assert_eq!(jira_seats_via_api(&api).await, seats - usize::from(had_jira), "suspension stops billing");
    let r = api.call(Method::POST, &api.v2(&format!("/users/{user}/suspend")), None).await;
    assert_eq!(r.status, 204, "suspending twice converges");

    api.sim.advance(SignedDuration::from_hours(48));
    let r = api.call(Method::POST, &api.v2(&format!("/users/{user}/restore")), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(api.sim.with_state(|s| s.user(&user).unwrap().groups.clone()), groups_before);
    assert_eq!(jira_seats_via_api(&api).await, seats, "restore brings access and billing back");
    let events = api.sim.events();
    let ops: Vec<(&str, &SimOutcome)> = events.iter().map(|e| (e.operation.as_str(), &e.outcome)).collect();
    assert_eq!(
        ops,
        [
            ("user.suspend", &SimOutcome::Applied),
            ("user.suspend", &SimOutcome::Unchanged),
            ("user.restore", &SimOutcome::Applied)
        ]
    );
    assert_eq!(events[2].time, START.parse::<Timestamp>().unwrap() + SignedDuration::from_hours(48));
    assert_eq!(events[2].account_id.as_deref(), Some(user.as_str()));

    let r = api.call(Method::DELETE, &api.v2(&format!("/users/{user}")), None).await;
    assert_eq!(r.status, 204);
    let r = api.post(&api.v2("/users/search"), json!({"accountIds": [user]})).await;
    assert_eq!(r.body["data"], json!([]), "a removed user leaves the directory");
    let r = api.call(Method::POST, &api.v2(&format!("/users/{user}/restore")), None).await;
    assert_eq!(r.status, 404, "removed users must be invited again");
}

#[tokio::test]
async fn a_group_removal_frees_a_seat_unless_another_group_grants_it() {
    let api = Api::start(config(200)).await;
    let inst = api.jira_instance();
    let jira = api.group_id("jira-software-users");
    let site_admins = api.group_id("site-admins");
    let user = api.find_user(|u| active_managed(u) && !u.org_admin && u.groups.len() == 3);
    api.sim.with_state_mut(|s| {
        let j = s.group_idx(&jira).unwrap();
        let u = s.user_mut(&user).unwrap();
        if !u.groups.contains(&j) {
            u.groups.push(j);
        }
    });
    let seats = api.sim.with_state(|s| s.seats_used(inst));
    let r = api
        .call(Method::POST, &api.v2(&format!("/groups/{site_admins}/memberships")), Some(json!({"accountId": user})))
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = api.call(Method::DELETE, &api.v2(&format!("/groups/{jira}/memberships/{user}")), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(api.sim.with_state(|s| s.seats_used(inst)), seats, "site-admins still grants Jira");
    let r = api.call(Method::DELETE, &api.v2(&format!("/groups/{site_admins}/memberships/{user}")), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(api.sim.with_state(|s| s.seats_used(inst)), seats - 1, "the last granting group went: a seat is free");
    let r = api.post(&api.v2("/users/search"), json!({"accountIds": [user], "expand": ["productAccess"]})).await;
    let jira_id = api.sim.with_state(|s| s.products[inst as usize].id.clone());
    assert!(!r.body["data"][0]["productAccess"].as_array().unwrap().iter().any(|p| p["id"] == jira_id.as_str()));
    let r = api.call(Method::DELETE, &api.v2(&format!("/groups/{jira}/memberships/{user}")), None).await;
    assert_eq!(r.status, 404, "not a member any more");
    let r = api.call(Method::POST, &api.v2("/groups/nope/memberships"), Some(json!({"accountId": user}))).await;
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-404-10");
}

#[tokio::test]
async fn deactivating_an_external_account_is_refused() {
    let api = Api::start(config(200)).await;
    let external = api.find_user(|u| !u.managed && u.email.is_some() && u.membership == Membership::Active);
    let r = api.call(Method::POST, &format!("/users/{external}/manage/lifecycle/disable"), None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["key"], "forbidden.action");
    assert_eq!(api.sim.with_state(|s| s.user(&external).unwrap().account_status), AccountStatus::Active);
    assert!(matches!(&api.sim.events()[0].outcome, SimOutcome::Refused { status: 403, .. }));
    // Suspension works for external accounts.
    let r = api.call(Method::POST, &api.v2(&format!("/users/{external}/suspend")), None).await;
    assert_eq!(r.status, 204);
    // An IdP-managed account is refused too; after the flag changes, it is allowed.
    let synced = api.find_user(|u| u.management_source == Some(SimManagementSource::Synced));
    let r = api.call(Method::POST, &format!("/users/{synced}/manage/lifecycle/disable"), None).await;
    assert_eq!((r.status, r.body["context"]["reason"]["key"].as_str()), (403, Some("externalDirectory.scim")));
    api.sim.with_state_mut(|s| s.user_mut(&synced).unwrap().management_source = None);
    let r = api.call(Method::POST, &format!("/users/{synced}/manage/lifecycle/disable"), None).await;
    assert_eq!(r.status, 204);
    let r = api.post(&api.v2("/users/search"), json!({"accountIds": [synced]})).await;
    assert_eq!(
        (r.body["data"][0]["status"].as_str(), r.body["data"][0]["accountStatus"].as_str()),
        (Some("deactivated"), Some("inactive"))
    );
}

#[tokio::test]
async fn an_idp_synced_group_refuses_changes() {
    let api = Api::start(config(200)).await;
    let okta = api.group_id("okta-engineering");
    let member = api.find_user(|u| u.management_source == Some(SimManagementSource::Synced));
    let outsider = api.find_user(|u| active_managed(u) && u.department.as_deref() != Some("engineering"));
    let r = api.call(Method::DELETE, &api.v2(&format!("/groups/{okta}/memberships/{member}")), None).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-403-5");
    let r = api
        .call(Method::POST, &api.v2(&format!("/groups/{okta}/memberships")), Some(json!({"accountId": outsider})))
        .await;
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-403-5");
    let r = api.site(Method::DELETE, &format!("/rest/api/3/group/user?groupId={okta}&accountId={member}"), None).await;
    assert_eq!(r.status, 403, "through Jira as well");
    assert!(api.sim.with_state(|s| s.user(&member).unwrap().groups.contains(&s.group_idx(&okta).unwrap())));
    // Tests can turn the sync off.
    api.sim.with_state_mut(|s| {
        let g = s.group_idx(&okta).unwrap() as usize;
        s.groups[g].idp_synced = false;
    });
    let r = api.call(Method::DELETE, &api.v2(&format!("/groups/{okta}/memberships/{member}")), None).await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn a_full_product_refuses_an_add() {
    let api = Api::start(config(200)).await;
    let inst = api.jira_instance();
    let jira = api.group_id("jira-software-users");
    let j = api.sim.with_state(|s| s.group_idx(&jira).unwrap());
    let candidate = api.find_user(|u| active_managed(u) && !u.groups.contains(&j) && u.groups.len() <= 2);
    api.sim.with_state_mut(|s| s.products[inst as usize].license_limit = s.seats_used(inst));
    let r = api
        .call(Method::POST, &api.v2(&format!("/groups/{jira}/memberships")), Some(json!({"accountId": candidate})))
        .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-409-3");
    let r = api
        .site(Method::POST, &format!("/rest/api/3/group/user?groupId={jira}"), Some(json!({"accountId": candidate})))
        .await;
    assert_eq!(r.status, 400, "Jira reports a full product as a bad request");
    let r = api
        .post(
            &format!("/admin/v2/orgs/{}/users/invite", api.org),
            json!({"emails": ["late@acme.example"], "additionalGroups": [jira]}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    // Suspend someone first, then the add fits (order: free, then add).
    let holder = api.find_user(|u| active_managed(u) && u.groups.contains(&j) && !u.org_admin);
    api.call(Method::POST, &api.v2(&format!("/users/{holder}/suspend")), None).await;
    let r = api
        .call(Method::POST, &api.v2(&format!("/groups/{jira}/memberships")), Some(json!({"accountId": candidate})))
        .await;
    assert_eq!(r.status, 204);
    let r = api.call(Method::POST, &api.v2(&format!("/users/{holder}/restore")), None).await;
    assert_eq!(r.status, 409, "restoring would breach the limit now");
    let refused: Vec<_> =
        api.sim.events().into_iter().filter(|e| matches!(e.outcome, SimOutcome::Refused { .. })).collect();
    assert_eq!(refused.len(), 4);
}

// ------------------------------------------------------------------ faults and rate limits

#[tokio::test]
async fn faults_appear_as_configured() {
    let api = Api::start(config(120)).await;
    let n = 1000;
    api.sim.set_faults(Faults::parse("429=0.1,500=0.05,503=0.05").unwrap());
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for _ in 0..n {
        let r = api.get("/admin/v1/orgs").await;
        *by_status.entry(r.status).or_default() += 1;
        if r.status == 429 || r.status == 503 {
            assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
            assert_eq!(r.body["code"], r.status);
        }
        if r.status == 500 {
            assert_eq!(r.body["errors"][0]["code"], "ADMIN-500-1");
        }
    }
    // Binomial: within 4.5 standard deviations.
    for (status, p) in [(429u16, 0.1f64), (500, 0.05), (503, 0.05)] {
        let got = *by_status.get(&status).unwrap_or(&0) as f64;
        let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
        assert!((got - mean).abs() < 4.5 * sd, "{status}: {got} of {n}, expected about {mean}");
    }

    api.sim.set_faults(Faults::parse("malformed=0.3").unwrap());
    let mut broken = 0;
    for _ in 0..300 {
        let r = api.post(&api.v2("/users/search"), json!({"limit": 2})).await;
        assert_eq!(r.status, 200);
        if serde_json::from_str::<Value>(&r.text).is_err() {
            broken += 1;
        }
    }
    assert!((50..130).contains(&broken), "malformed bodies: {broken} of 300");

    api.sim.set_faults(Faults::parse("fail-page=3").unwrap());
    for _ in 0..2 {
        let mut cursor: Option<String> = None;
        let mut statuses = Vec::new();
        for _ in 0..4 {
            let body = cursor.as_ref().map(|c| json!({"cursor": c})).unwrap_or(json!({"limit": 10}));
            let r = api.post(&api.v2("/users/search"), body).await;
            statuses.push(r.status);
            if r.status != 200 {
                break;
            }
            cursor = r.body["links"]["next"].as_str().map(str::to_string);
        }
        assert_eq!(statuses, [200, 200, 500], "the third page fails, every time");
    }
    let r = api.site(Method::GET, "/rest/api/3/users/search?startAt=20&maxResults=10", None).await;
    assert_eq!(r.status, 500, "offset listings too");

    api.sim.set_faults(Faults::parse("latency=40ms").unwrap());
    let t = Instant::now();
    for _ in 0..5 {
        api.get("/admin/v1/orgs").await;
    }
    assert!(t.elapsed() >= Duration::from_millis(200), "latency added to each request: {:?}", t.elapsed());
    // The control API is never faulted.
    api.sim.set_faults(Faults::parse("500=1").unwrap());
    assert_eq!(api.get("/_sim/clock").await.status, 200);
    assert_eq!(api.get("/admin/v1/orgs").await.status, 500);
}

#[tokio::test]
async fn the_rate_limit_is_per_credential_on_the_simulators_clock() {
    let api = Api::start(SimConfig { rate_limit_per_minute: Some(5), ..config(50) }).await;
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let r = api.get("/admin/v1/orgs").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
        assert_eq!(r.header("x-ratelimit-reset"), Some("2026-09-01T12:01:00Z"), "an ISO-8601 instant");
        remaining.push(r.header("x-ratelimit-remaining").unwrap().parse::<u32>().unwrap());
    }
    assert_eq!(remaining, [4, 3, 2, 1, 0]);
    let r = api.post(&api.v2("/users/search"), json!({})).await;
    assert_eq!(r.status, 429, "across all paths");
    assert_eq!(r.header("retry-after"), Some("60"), "frozen at :00, the window resets at :01");
    // v2 answers 429 in its `Errors` shape; v1 behind the gateway answers `{code, message}`.
    assert_eq!(r.body["errors"][0]["code"], "ADMIN-429-1");
    assert_eq!(r.body["errors"][0]["status"], "429");
    let r = api.get("/admin/v1/orgs").await;
    assert_eq!(r.body, json!({"code": 429, "message": "Rate limit exceeded: too many requests."}));
    // Another credential has its own budget.
    let r = api.site(Method::GET, "/rest/api/3/users/search?maxResults=1", None).await;
    assert_eq!((r.status, r.header("x-ratelimit-remaining")), (200, Some("4")));
    api.sim.advance(SignedDuration::from_millis(30_500));
    let r = api.get("/admin/v1/orgs").await;
    assert_eq!(r.header("retry-after"), Some("30"), "29.5 s left, rounded up");
    api.sim.advance(SignedDuration::from_millis(29_500));
    let r = api.get("/admin/v1/orgs").await;
    assert_eq!((r.status, r.header("x-ratelimit-remaining")), (200, Some("4")));
    let counts = api.sim.request_counts();
    assert_eq!((counts.total, counts.org_api_key, counts.site_token), (10, 9, 1));
    let log = api.sim.request_log();
    assert_eq!(log.last().unwrap().time, START.parse::<Timestamp>().unwrap() + SignedDuration::from_secs(60));
    assert_eq!(log.iter().filter(|r| r.status == 429).count(), 3);
}

// ------------------------------------------------------------------ control API and saved state

#[tokio::test]
async fn the_control_api_moves_the_clock_changes_faults_and_saves_state() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim-state.json");
    let api = Api::start(SimConfig { state_file: Some(file.clone()), ..config(80) }).await;
    let r = api.post("/_sim/clock", json!({"advance": "1d12h"})).await;
    assert_eq!(r.body["now"], "2026-09-03T00:00:00Z");
    let r = api.post("/_sim/clock", json!({"now": "2026-10-01T00:00:00Z"})).await;
    assert_eq!(r.body["now"], "2026-10-01T00:00:00Z");
    assert_eq!(api.sim.now(), "2026-10-01T00:00:00Z".parse::<Timestamp>().unwrap());
    let r = api.post("/_sim/clock", json!({"advance": "soon"})).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("advance"));
    let r = api.send(Method::GET, "/_sim/clock", None, Auth::Bearer("wrong".into())).await;
    assert_eq!(r.status, 401, "the control API takes the same API key");

    let r = api.post("/_sim/faults", json!({"spec": "500=1"})).await;
    assert_eq!(r.body["spec"], "500=1");
    assert_eq!(api.get("/admin/v1/orgs").await.status, 500);
    let r = api.post("/_sim/faults", json!({"spec": "500=2"})).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("500=2"));
    api.post("/_sim/faults", json!({"spec": ""})).await;
    assert_eq!(api.get("/admin/v1/orgs").await.status, 200);

    let user = api.find_user(active_managed);
    api.call(Method::POST, &api.v2(&format!("/users/{user}/suspend")), None).await;
    let r = api.get("/_sim/events").await;
    assert_eq!(r.body["events"][0]["operation"], "user.suspend");
    assert_eq!(r.body["events"][0]["time"], "2026-10-01T00:00:00Z");
    let r = api.get("/_sim/events?since=1").await;
    assert_eq!(r.body["events"], json!([]));

    let r = api.call(Method::POST, "/_sim/state/save", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(file.exists());
    let r = api.call(Method::POST, "/_sim/state/reset", None).await;
    assert_eq!(r.status, 204);
    assert_eq!(api.sim.with_state(|s| s.user(&user).unwrap().membership), Membership::Active);
    assert!(api.sim.events().is_empty());

    // A new simulator on the saved file has the saved users, events and clock.
    let again = Api::start(SimConfig { users: 5, state_file: Some(file.clone()), ..config(5) }).await;
    assert_eq!(again.sim.with_state(|s| s.users.len()), 80);
    assert_eq!(again.sim.with_state(|s| s.user(&user).unwrap().membership), Membership::Suspended);
    assert_eq!(again.sim.events().len(), 1);
    assert_eq!(again.sim.now(), "2026-10-01T00:00:00Z".parse::<Timestamp>().unwrap());
    // Shutdown saves.
    again.call(Method::POST, &again.v2(&format!("/users/{user}/restore")), None).await;
    let saved = again.sim.shutdown().await.unwrap();
    assert_eq!(saved.as_deref(), Some(file.as_path()));
    let (state, _) = seatwarden::sim::load_state(&file).unwrap();
    assert_eq!(state.user(&user).unwrap().membership, Membership::Active);
    std::fs::write(&file, "{not json").unwrap();
    let err =
        Simulator::start(SimConfig { state_file: Some(file.clone()), ..config(5) }, "127.0.0.1:0").await.err().unwrap();
    assert!(err.to_string().contains("sim-state.json"), "{err}");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_output() {
    let c = SimConfig { api_key: "s3cr3t-key".into(), site_token: Some("t0ken".into()), ..config(1) };
    let shown = format!("{c:?}");
    assert!(!shown.contains("s3cr3t-key") && !shown.contains("t0ken"), "{shown}");
}

#[tokio::test]
async fn basic_auth_needs_the_site_user_and_token() {
    let api = Api::start(SimConfig { site_token: Some("tok".into()), ..config(20) }).await;
    let ok = api
        .send(Method::GET, "/rest/api/3/users/search", None, Auth::Basic("admin@example.com".into(), "tok".into()))
        .await;
    assert_eq!(ok.status, 200);
    let wrong = api
        .send(Method::GET, "/rest/api/3/users/search", None, Auth::Basic("admin@example.com".into(), "sim-key".into()))
        .await;
    assert_eq!(wrong.status, 401);
    let basic_on_admin =
        api.send(Method::GET, "/admin/v1/orgs", None, Auth::Basic("admin@example.com".into(), "tok".into())).await;
    assert_eq!(basic_on_admin.status, 401);
    let r = api.send(Method::GET, "/2.0/workspaces/acme/members", None, Auth::None).await;
    assert_eq!((r.status, r.body["type"].as_str()), (401, Some("error")));
    assert!(r.header("x-ratelimit-limit").is_some(), "rate-limit headers on every response");
    let r = api.send(Method::GET, "/wiki/rest/api/group", None, Auth::None).await;
    assert_eq!(r.status, 401);
    let _ = base64::engine::general_purpose::STANDARD.encode("unused");
}

// ------------------------------------------------------------------ scale

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_100000_users_under_concurrent_writes_yields_each_once() {
    let api = Api::start(config(100_000)).await;
    let members: HashSet<String> = api
        .sim
        .with_state(|s| s.users.iter().filter(|u| u.is_directory_user()).map(|u| u.account_id.clone()).collect());
    let targets: Vec<String> = api.sim.with_state(|s| {
        s.users
            .iter()
            .filter(|u| u.membership == Membership::Active)
            .step_by(97)
            .map(|u| u.account_id.clone())
            .collect()
    });
    let confluence = api.group_id("labs-confluence-users");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let done = done.clone();
        let base = api.sim.base_url();
        let key = api.sim.api_key();
        let v2 = api.v2("");
        let org = api.org.clone();
        let http = api.http.clone();
        tokio::spawn(async move {
            let mut writes = 0;
            for (i, id) in targets.iter().enumerate() {
                let (method, path, body) = match i % 4 {
                    0 => (Method::POST, format!("{v2}/users/{id}/suspend"), None),
                    1 => {
                        (Method::POST, format!("{v2}/groups/{confluence}/memberships"), Some(json!({"accountId": id})))
                    }
                    2 => (
                        Method::POST,
                        format!("/admin/v2/orgs/{org}/users/invite"),
                        Some(json!({"emails": [format!("late{i}@acme.example")]})),
                    ),
                    _ => (Method::POST, format!("{v2}/users/{id}/restore"), None),
                };
                let mut req = http.request(method, format!("{base}{path}")).bearer_auth(&key);
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let status = req.send().await.unwrap().status().as_u16();
                assert!(status < 500, "write {path}: {status}");
                writes += 1;
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            writes
        })
    };
    let mut seen: HashMap<String, u32> = HashMap::with_capacity(110_000);
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut writes_at_first_page = None;
    let writes_at_last_page;
    loop {
        let body = cursor.as_ref().map(|c| json!({"cursor": c})).unwrap_or(json!({"limit": 100}));
        let r = api.post(&api.v2("/users/search"), body).await;
        assert_eq!(r.status, 200);
        pages += 1;
        writes_at_first_page.get_or_insert(done.load(std::sync::atomic::Ordering::SeqCst));
        for u in r.body["data"].as_array().unwrap() {
            *seen.entry(u["accountId"].as_str().unwrap().to_string()).or_default() += 1;
        }
        match r.body["links"]["next"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => {
                writes_at_last_page = done.load(std::sync::atomic::Ordering::SeqCst);
                break;
            }
        }
    }
    let writes = writer.await.unwrap();
    let during = writes_at_last_page - writes_at_first_page.unwrap();
    assert!(during >= 100, "writes landed while paging: {during}");
    assert!(writes > 1000, "writes ran alongside: {writes}");
    assert!(pages >= 980, "about 99,000 directory users (app accounts are not listed): {pages} pages");
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "seen twice: {:?}", &dupes[..dupes.len().min(5)]);
    let missing = members.iter().filter(|id| !seen.contains_key(*id)).count();
    assert_eq!(missing, 0, "every member present before the listing appears");
    assert!(seen.len() >= members.len());
}

// ------------------------------------------------------------------ the process

#[test]
fn seatwarden_sim_prints_its_address_serves_and_saves_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seatwarden"))
        .args(["sim", "--port", "0", "--users", "60", "--frozen", "--now", START, "--state"])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let fields: HashMap<&str, &str> = line
        .trim()
        .strip_prefix("seatwarden sim listening ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    assert_eq!(fields["org_id"], "sim-org");
    let base = fields["base_url"];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = runtime.block_on(async {
        seatwarden::tls::install_crypto_provider();
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{base}/admin/v2/orgs/sim-org/directories/{}/users/search", fields["directory_id"]))
            .bearer_auth("sim-key")
            .json(&json!({"limit": 100}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["data"].as_array().unwrap().len(), 59, "60 accounts, one of them an app (no directory user)");
        status
    });
    assert_eq!(status, 200);
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exits cleanly on SIGTERM: {exit:?}");
    assert!(state.exists(), "state saved on shutdown");
    let (saved, now) = seatwarden::sim::load_state(&state).unwrap();
    assert_eq!((saved.users.len(), now.to_string().as_str()), (60, START));
}

/// Clients measure `X-RateLimit-Reset` against `Date`: both come from the simulator's clock, so a
/// moved clock doesn't make every reset look hours away.
#[tokio::test]
async fn the_date_header_follows_the_simulated_clock() {
    let api = Api::start(config(20)).await;
    let r = api.get("/admin/v1/orgs").await;
    let date = r.header("date").expect("a Date header").to_owned();
    let expected = START.parse::<jiff::Timestamp>().unwrap().to_zoned(jiff::tz::TimeZone::UTC);
    assert_eq!(date, expected.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string());
    api.sim.advance(jiff::SignedDuration::from_hours(24 * 30));
    let later = api.get("/admin/v1/orgs").await;
    let moved = expected.checked_add(jiff::SignedDuration::from_hours(24 * 30)).unwrap();
    assert_eq!(later.header("date").unwrap(), moved.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string());
    let reset: jiff::Timestamp = later.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(
        reset > moved.timestamp() && reset.duration_since(moved.timestamp()).as_secs() <= 60,
        "the reset is within the simulated minute"
    );
}

// ------------------------------------------------------------------ organization shapes (issue 12)

fn two_directory_config(users: u32) -> SimConfig {
    SimConfig { users, now: START.parse().unwrap(), frozen: true, ..SimConfig::two_directories() }
}

impl Api {
    fn v2_in(&self, dir: &str, rest: &str) -> String {
        format!("/admin/v2/orgs/{}/directories/{dir}{rest}", self.org)
    }

    /// Every page of a users search, following `links.next` (at most `max_pages`).
    async fn users_pages(&self, dir: &str, first: Value, max_pages: usize) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut body = first;
        while pages.len() < max_pages {
            let r = self.post(&self.v2_in(dir, "/users/search"), body).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let next = r.body["links"]["next"].as_str().map(str::to_string);
            pages.push(r.body);
            match next {
                Some(c) => body = json!({"cursor": c}),
                None => break,
            }
        }
        pages
    }
}

fn account_ids(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap().iter().map(|u| u["accountId"].as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test]
async fn one_account_in_two_directories_has_per_directory_facts() {
    let api = Api::start(two_directory_config(400)).await;
    let dirs = api.sim.directory_ids();
    // An account in both directories whose status differs between them.
    let id = api.sim.with_state(|s| {
        s.users
            .iter()
            .filter(|u| u.directory == 1)
            .find(|u| s.entry_in(&u.account_id, 0).is_some_and(|i| s.users[i].membership != u.membership))
            .expect("a shared account suspended in one directory only")
            .account_id
            .clone()
    });
    let mut seen = Vec::new();
    for dir in &dirs {
        let r = api
            .post(&api.v2_in(dir, "/users/search"), json!({"accountIds": [id], "expand": ["groups", "productAccess"]}))
            .await;
        let data = r.body["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "listed once in each directory");
        let group_ids: Vec<String> =
            data[0]["groups"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_string()).collect();
        let directory = api.sim.with_state(|s| s.directory_idx(dir).unwrap());
        assert!(
            api.sim.with_state(|s| group_ids
                .iter()
                .all(|g| s.groups[s.group_idx(g).unwrap() as usize].directory == directory)),
            "each directory shows its own groups"
        );
        seen.push((data[0]["status"].clone(), data[0]["email"].clone()));
    }
    assert_ne!(seen[0].0, seen[1].0, "status is per directory");
    assert_eq!(seen[0].1, seen[1].1, "the account's own facts are the same");
    let r = api.get(&format!("/admin/v2/orgs/{}/directories?accountId={id}", api.org)).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2, "the account is in both directories");

    // Across all directories (`-`) and in the org-wide v1 listing, each account appears once.
    let all = account_ids(&api.users_pages("-", json!({"limit": 100}), 100).await);
    assert_eq!(all.len(), all.iter().collect::<HashSet<_>>().len(), "`-` lists each account once");
    assert!(all.contains(&id));
    let mut v1 = Vec::new();
    let mut path = api.v1("/users");
    loop {
        let r = api.get(&path).await;
        v1.extend(r.body["data"].as_array().unwrap().iter().map(|u| u["account_id"].as_str().unwrap().to_string()));
        match r.body["links"]["next"].as_str() {
            Some(n) => path = api.v1(&format!("/users?cursor={}", n.rsplit("cursor=").next().unwrap())),
            None => break,
        }
    }
    assert_eq!(v1.len(), v1.iter().collect::<HashSet<_>>().len(), "v1 users lists each account once");

    // Same-named groups: one per directory, each with its own id and members.
    let named: Vec<Value> = {
        let mut v = Vec::new();
        for dir in &dirs {
            let r = api
                .post(
                    &api.v2_in(dir, "/groups/search"),
                    json!({"groupNames": ["jira-software-users"], "expand": ["counts.users"]}),
                )
                .await;
            v.extend(r.body["data"].as_array().unwrap().iter().cloned());
        }
        v
    };
    assert_eq!(named.len(), 2);
    assert_ne!(named[0]["id"], named[1]["id"]);
    assert_eq!(named[0]["directoryId"], dirs[0].as_str());
    assert_eq!(named[1]["directoryId"], dirs[1].as_str());
    assert!(named.iter().all(|g| g["counts"]["users"].as_u64().unwrap() > 0));

    // Suspension is per directory; deactivation is account-wide and dated.
    let suspended_in = |d: u16| api.sim.with_state(|s| s.users[s.entry_in(&id, d).unwrap()].membership);
    let active_dir = if suspended_in(0) == Membership::Active { 0 } else { 1 };
    let r = api.call(Method::POST, &api.v2_in(&dirs[active_dir], &format!("/users/{id}/suspend")), None).await;
    assert_eq!(r.status, 204);
    assert_eq!(suspended_in(0), Membership::Suspended);
    assert_eq!(suspended_in(1), Membership::Suspended);
    let managed = api.sim.with_state(|s| {
        s.users
            .iter()
            .filter(|u| u.directory == 1 && u.managed && u.account_status == AccountStatus::Active)
            .find(|u| {
                s.entry_in(&u.account_id, 0).is_some() && u.management_source != Some(SimManagementSource::Synced)
            })
            .unwrap()
            .account_id
            .clone()
    });
    let r = api.post(&format!("/users/{managed}/manage/lifecycle/disable"), json!({})).await;
    assert_eq!(r.status, 204, "{}", r.text);
    for dir in &dirs {
        let r = api.get(&api.v2_in(dir, &format!("/users/{managed}"))).await;
        assert_eq!(r.body["data"]["accountStatus"], "inactive");
        assert_eq!(r.body["data"]["deactivatedOn"], "2026-09-01T12:00:00.000Z");
    }
}

#[tokio::test]
async fn products_seatwarden_does_not_model_are_served_under_their_own_keys() {
    let api = Api::start(two_directory_config(300)).await;
    let pages = api.users_pages(&api.dir.clone(), json!({"limit": 100, "expand": ["productAccess"]}), 10).await;
    let keys: HashSet<String> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap().iter())
        .flat_map(|u| u["productAccess"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap().to_string()))
        .collect();
    for key in ["loom", "townsquare", "rovo", "jira-align", "jira-software", "confluence"] {
        assert!(keys.contains(key), "{key} in productAccess: {keys:?}");
    }
    // A person active on Loom lately and idle for half a year on every modelled product.
    let now: Timestamp = START.parse().unwrap();
    let loom_only = api.sim.with_state(|s| {
        let loom = s.products.iter().position(|p| p.product.v2_key() == "loom").unwrap() as u16;
        s.users
            .iter()
            .find(|u| {
                u.directory == 0
                    && u.last_active_on(loom).is_some_and(|t| now.duration_since(t).as_hours() < 72)
                    && u.activity
                        .iter()
                        .filter(|a| a.instance != loom)
                        .all(|a| now.duration_since(a.last_active).as_hours() > 24 * 180)
            })
            .unwrap()
            .account_id
            .clone()
    });
    let r = api.post(&api.v2("/users/search"), json!({"accountIds": [loom_only], "expand": ["productAccess"]})).await;
    let loom =
        r.body["data"][0]["productAccess"].as_array().unwrap().iter().find(|p| p["key"] == "loom").cloned().unwrap();
    assert!(loom["lastActiveTimestamp"].as_str().unwrap().parse::<Timestamp>().is_ok());
    let r = api.get(&api.v1(&format!("/directory/users/{loom_only}/last-active-dates"))).await;
    assert!(r.body["data"]["product_access"].as_array().unwrap().iter().any(|p| p["key"] == "loom"));
    let gid = api.group_id("loom-users");
    let r = api.get(&api.v2(&format!("/groups/{gid}/role-assignments"))).await;
    assert_eq!(r.body["data"][0]["resourceOwner"], "loom");
    assert!(r.body["data"][0]["resourceId"].as_str().unwrap().starts_with("ari:cloud:loom::site/"));
}

/// Every token of the API Access listing, paged with `limit`.
async fn all_tokens(api: &Api, limit: u32) -> (Vec<Value>, usize) {
    let base = format!("/admin/api-access/v1/orgs/{}/api-tokens", api.org);
    let mut path = format!("{base}?limit={limit}");
    let (mut tokens, mut pages) = (Vec::new(), 0);
    loop {
        let r = api.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages += 1;
        tokens.extend(r.body["data"].as_array().unwrap().iter().cloned());
        match r.body["links"]["next"].as_str() {
            Some(c) if pages < 1000 => path = format!("{base}?cursor={c}"),
            _ => return (tokens, pages),
        }
    }
}

#[tokio::test]
async fn api_tokens_are_listed_with_last_active_at_paged_and_refusable() {
    let api = Api::start(config(600)).await;
    let expected = api.sim.with_state(|s| s.api_tokens.clone());
    assert!(expected.len() > 20, "enough tokens to page through: {}", expected.len());
    let (tokens, pages) = all_tokens(&api, 10).await;
    assert_eq!(pages, expected.len().div_ceil(10));
    assert_eq!(tokens.len(), expected.len());
    for (t, e) in tokens.iter().zip(&expected) {
        assert_eq!(t["id"], e.id.as_str());
        assert_eq!(t["user"]["id"], e.account_id.as_str());
        assert_eq!(t["user"]["orgId"], api.org.as_str());
        assert_eq!(t["status"], "ALLOWED");
        match e.last_active_at {
            Some(at) => assert_eq!(t["lastActiveAt"].as_str().unwrap().parse::<Timestamp>().unwrap(), at),
            None => assert!(t["lastActiveAt"].is_null()),
        }
    }
    // An API-only account: idle on every product, its token used in the last two days.
    let now: Timestamp = START.parse().unwrap();
    let api_only = api.sim.with_state(|s| {
        s.api_tokens.iter().any(|t| {
            t.last_active_at.is_some_and(|at| now.duration_since(at).as_hours() < 48)
                && s.account_activity(&t.account_id)
                    .iter()
                    .all(|(_, a)| a.is_none_or(|a| now.duration_since(a).as_hours() > 24 * 180))
        })
    });
    assert!(api_only, "some accounts are used only through the API");
    let base = format!("/admin/api-access/v1/orgs/{}/api-tokens", api.org);
    assert_eq!(api.get(&format!("{base}?cursor=nonsense")).await.status, 400);
    assert_eq!(api.get(&format!("{base}?limit=0")).await.status, 400);
    assert_eq!(api.send(Method::GET, &base, None, Auth::None).await.status, 401);
    assert_eq!(api.get("/admin/api-access/v1/orgs/nope/api-tokens").await.status, 404);
    let label = expected[0].label.clone();
    let r = api.get(&format!("{base}?q={}&limit=100", label.replace(' ', "%20"))).await;
    let found = r.body["data"].as_array().unwrap();
    assert!(
        !found.is_empty()
            && found.iter().all(|t| t["label"] == label.as_str() || t["user"].to_string().contains(&label))
    );

    api.sim.set_faults(Faults::parse("api-tokens=403").unwrap());
    let r = api.get(&base).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["errors"][0]["status"], "403");
    assert_eq!(api.post(&api.v2("/users/search"), json!({"limit": 1})).await.status, 200, "only the token listing");
}

#[tokio::test]
async fn a_duplicated_page_lists_its_people_twice_and_loses_no_one() {
    let api = Api::start(config(200)).await;
    let dir = api.dir.clone();
    let clean = account_ids(&api.users_pages(&dir, json!({"limit": 20}), 100).await);
    api.sim.set_faults(Faults::parse("duplicate-page=2").unwrap());
    let pages = api.users_pages(&dir, json!({"limit": 20}), 100).await;
    assert_eq!(pages[1]["data"], pages[2]["data"], "page 2 comes twice");
    let listed = account_ids(&pages);
    assert_eq!(listed.len(), clean.len() + 20);
    assert_eq!(listed.iter().collect::<HashSet<_>>(), clean.iter().collect::<HashSet<_>>());
    let (tokens, _) = all_tokens(&api, 5).await;
    let ids: HashSet<&str> = tokens.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(tokens.len(), ids.len() + 5, "the token listing too");
}

#[tokio::test]
async fn a_cycling_cursor_leads_back_to_the_first_page() {
    let api = Api::start(config(200)).await;
    let dir = api.dir.clone();
    api.sim.set_faults(Faults::parse("cycle-cursor=3").unwrap());
    let pages = api.users_pages(&dir, json!({"limit": 20}), 7).await;
    assert_eq!(pages.len(), 7, "paging does not end by itself");
    assert_eq!(pages[2]["links"]["next"], pages[0]["links"]["self"], "page 3 points at page 1");
    assert_eq!(pages[3]["data"], pages[0]["data"]);
    assert_eq!(pages[4]["links"]["self"], pages[1]["links"]["self"], "the same cursors again");
}

#[tokio::test]
async fn a_quietly_empty_directory_answers_nothing_while_its_groups_and_stats_count_members() {
    let api = Api::start(two_directory_config(300)).await;
    let dirs = api.sim.directory_ids();
    let members = api.sim.with_state(|s| s.users.iter().filter(|u| u.directory == 1 && u.is_member()).count());
    assert!(members > 50);
    let stats = api.get(&api.v2_in(&dirs[1], "/users/stats")).await;
    assert_eq!(stats.status, 200);
    admin_spec().check("/v2/orgs/{orgId}/directories/{directoryId}/users/stats", "get", 200, &stats.body);
    let counted: u64 =
        stats.body["accountStatus"].as_array().unwrap().iter().map(|s| s["count"].as_u64().unwrap()).sum();
    assert!(counted > 50, "{}", stats.body);

    api.sim.set_faults(Faults::parse("empty-directory=2").unwrap());
    let r = api.post(&api.v2_in(&dirs[1], "/users/search"), json!({"limit": 100})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"], json!([]));
    assert!(r.body["links"].get("next").is_none());
    let r = api.post(&api.v2_in(&dirs[1], "/groups/search"), json!({"expand": ["counts.users"], "limit": 100})).await;
    let in_groups: u64 =
        r.body["data"].as_array().unwrap().iter().map(|g| g["counts"]["users"].as_u64().unwrap()).sum();
    assert!(in_groups > 50, "its groups still have members");
    assert_eq!(api.get(&api.v2_in(&dirs[1], "/users/stats")).await.body, stats.body, "its stats say otherwise");
    let r = api.post(&api.v2_in(&dirs[0], "/users/search"), json!({"limit": 10})).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 10, "the other directory answers as before");
    // By id as well as by position.
    api.sim.set_faults(Faults::parse(&format!("empty-directory={}", dirs[0])).unwrap());
    let r = api.post(&api.v2_in(&dirs[0], "/users/search"), json!({"limit": 10})).await;
    assert_eq!(r.body["data"], json!([]));
}
