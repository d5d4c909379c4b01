//! The operator end to end: the real `seatwarden` binary (`run`) as a separate process against the
//! real kube-apiserver that `make test` starts, and `seatwarden sim` as a separate process whose
//! clock the test drives through its control API (the operator reads the same clock with
//! `--clock-from`). Plus one in-process test of the re-read before a write.

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
};
use seatwarden::{
    atlassian::{AtlassianClient, ClientConfig, Credentials, Secret as ApiSecret},
    crd::*,
    snapshot::{AccountType, DirectorySnapshot, ManagementSource, UserStatus},
};
use serde_json::{Value, json};

const T0: &str = "2026-11-02T09:00:00Z";
const API_KEY: &str = "e2e-key";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_seatwarden")
}

/// `seatwarden sim` as a separate process, killed on drop.
struct SimProc {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl SimProc {
    fn start(users: u32, seed: u64) -> SimProc {
        let mut child = Command::new(bin())
            .args(["sim", "--port", "0", "--users", &users.to_string(), "--seed", &seed.to_string()])
            .args(["--now", T0, "--frozen", "--api-key", API_KEY])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start seatwarden sim");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).expect("sim prints its address");
        assert!(first.starts_with("seatwarden sim listening"), "unexpected first line: {first}");
        let url = first.split_whitespace().find_map(|w| w.strip_prefix("base_url=")).expect("base_url").to_owned();
        SimProc { child, url, http: reqwest::Client::new() }
    }

    async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}/_sim/{path}", self.url)).bearer_auth(API_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("control API");
        assert!(resp.status().is_success(), "control {path}: {}", resp.status());
        resp.json().await.expect("control JSON")
    }

    async fn advance(&self, by: &str) {
        self.control(reqwest::Method::POST, "clock", Some(json!({"advance": by}))).await;
    }

    async fn faults(&self, spec: &str) {
        self.control(reqwest::Method::POST, "faults", Some(json!({"spec": spec}))).await;
    }

    /// Every write the simulator applied: (operation, account id).
    async fn applied_writes(&self) -> Vec<(String, String)> {
        let v = self.control(reqwest::Method::GET, "events", None).await;
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["outcome"]["result"] == "applied")
            .map(|e| (e["operation"].as_str().unwrap().to_owned(), e["account_id"].as_str().unwrap_or("").to_owned()))
            .collect()
    }

    /// Requests the simulator received on Atlassian's APIs (its control API aside).
    async fn atlassian_requests(&self) -> u64 {
        self.control(reqwest::Method::GET, "requests", None).await["atlassian"].as_u64().unwrap()
    }

    async fn snapshot(&self, at: &str) -> DirectorySnapshot {
        let mut config = ClientConfig::new("sim-org", &self.url).unwrap();
        config.budget.org_requests_per_minute = 100_000;
        let client =
            AtlassianClient::new(config, &Credentials { org_api_key: ApiSecret::new(API_KEY), site_user: None })
                .unwrap();
        client.snapshot(at.parse().unwrap()).await.expect("snapshot of the simulator")
    }
}

impl Drop for SimProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `seatwarden run` as a separate process, killed on drop.
struct OperatorProc {
    child: Child,
    metrics_url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl OperatorProc {
    fn start(ns: &str, sim: &SimProc, mailbox: &std::path::Path, extra: &[&str]) -> OperatorProc {
        Self::start_env(ns, sim, mailbox, extra, &[])
    }

    fn start_env(
        ns: &str,
        sim: &SimProc,
        mailbox: &std::path::Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> OperatorProc {
        Self::start_at(ns, &sim.url, mailbox, extra, env)
    }

    /// Against the simulator at `sim_url` (a separate process, or one served in-process).
    fn start_at(
        ns: &str,
        sim_url: &str,
        mailbox: &std::path::Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> OperatorProc {
        let port = free_port();
        let child = Command::new(bin())
            .envs(env.iter().copied())
            .args(["run", "--watch-namespace", ns, "--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(["--clock-from", sim_url, "--mailbox-dir", mailbox.to_str().unwrap()])
            .args(extra)
            .env("SEATWARDEN_SIM_API_KEY", API_KEY)
            .env("RUST_LOG", "info,kube=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(mailbox.join(format!("operator-{port}.log"))).unwrap())
            .spawn()
            .expect("start seatwarden run");
        OperatorProc { child, metrics_url: format!("http://127.0.0.1:{port}/metrics") }
    }

    async fn metrics(&self) -> Option<String> {
        reqwest::get(&self.metrics_url).await.ok()?.text().await.ok()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OperatorProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The sum of a metric's samples whose labels include every `want` pair.
fn metric_sum(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' ')))
        .filter(|l| want.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn apply(client: &Client, ns: &str, objects: Vec<Value>) {
    for obj in objects {
        let kind = obj["kind"].as_str().unwrap();
        let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
        let pp = PatchParams::apply("e2e").force();
        match kind {
            "Secret" => {
                Api::<Secret>::namespaced(client.clone(), ns).patch(&name, &pp, &Patch::Apply(&obj)).await.unwrap();
            }
            "AtlassianOrganization" => {
                Api::<AtlassianOrganization>::namespaced(client.clone(), ns)
                    .patch(&name, &pp, &Patch::Apply(&obj))
                    .await
                    .unwrap();
            }
            "ProtectedUser" => {
                Api::<ProtectedUser>::namespaced(client.clone(), ns)
                    .patch(&name, &pp, &Patch::Apply(&obj))
                    .await
                    .unwrap();
            }
            "GroupLicenseMapping" => {
                Api::<GroupLicenseMapping>::namespaced(client.clone(), ns)
                    .patch(&name, &pp, &Patch::Apply(&obj))
                    .await
                    .unwrap();
            }
            "LifecyclePolicy" => {
                Api::<LifecyclePolicy>::namespaced(client.clone(), ns)
                    .patch(&name, &pp, &Patch::Apply(&obj))
                    .await
                    .unwrap();
            }
            other => panic!("unexpected kind {other}"),
        }
    }
}

fn organization(sim: &SimProc) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "org-key"}, "stringData": {"api-key": API_KEY}}),
        json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "AtlassianOrganization", "metadata": {"name": "acme"},
            "spec": {"orgId": "sim-org", "apiBaseUrl": sim.url,
                "credentials": {"apiKeySecretRef": {"name": "org-key", "key": "api-key"}},
                "billing": {"cycle": "Monthly", "currency": "USD", "seatPrices": [{"product": "JiraSoftware", "monthlyPrice": 8.0}]},
                "requestBudget": {"orgRequestsPerMinute": 100000, "concurrency": 4},
                // Notices into the --mailbox-dir folder, which the tests read.
                "localMailbox": true}}),
        json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "GroupLicenseMapping", "metadata": {"name": "jira"},
            "spec": {"organizationRef": {"name": "acme"}, "product": "JiraSoftware", "groups": [{"name": "jira-software-users"}]}}),
        json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "ProtectedUser", "metadata": {"name": "finance"},
            "spec": {"reason": "quarter close", "groups": ["dept-finance"]}}),
    ]
}

/// One end-to-end scenario's ground: the API server (None: skip, outside CI), the CRDs, a fresh
/// namespace, a simulator of `users` users and a mailbox folder.
async fn scenario(prefix: &str, users: u32, seed: u64) -> Option<(Client, String, SimProc, tempfile::TempDir)> {
    let client = support::kube_client().await?;
    support::install_crds(&client).await;
    let ns = support::namespace(&client, prefix).await;
    Some((client, ns, SimProc::start(users, seed), tempfile::tempdir().unwrap()))
}

fn policy(name: &str, mode: &str, rule: Value, caps: Value) -> Value {
    json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": name},
        "spec": {"organizationRef": {"name": "acme"}, "mode": mode, "schedule": {"interval": "24h"},
            "rules": [rule], "caps": caps, "newAccountGracePeriod": "14d", "activityLagMargin": "1d"}})
}

/// An independent oracle for "account inactive for N days → suspend": who a correct planner acts on.
/// A user who never used any product counts as inactive since they were added (API.md §10).
fn expected_inactive(
    snap: &DirectorySnapshot,
    at: Timestamp,
    days: i64,
    protected_group: Option<&str>,
) -> BTreeSet<String> {
    let finance = protected_group.and_then(|g| snap.find_group(g)).map(|(i, _)| i);
    let threshold = at.checked_sub(SignedDuration::from_hours(24 * (days + 1))).unwrap();
    let grace = at.checked_sub(SignedDuration::from_hours(24 * 14)).unwrap();
    snap.accounts
        .iter()
        .filter(|u| matches!(u.status(), UserStatus::Active | UserStatus::InvitedNeverActive))
        .filter(|u| u.account_type == AccountType::Atlassian)
        .filter(|u| !u.org_admin && !u.site_admin && u.management_source != ManagementSource::Synced)
        .filter(|u| snap.api_key_owner.as_deref() != Some(u.account_id.as_str()))
        .filter(|u| finance.is_none_or(|f| !u.in_group(f)))
        .filter(|u| u.added_to_org.is_some_and(|a| a < grace))
        .filter(|u| u.last_activity().or(u.added_to_org).is_some_and(|t| t < threshold))
        .map(|u| u.account_id.clone())
        .collect()
}

/// Asserts two sets are equal, showing only what differs.
#[track_caller]
fn assert_same(actual: &BTreeSet<String>, expected: &BTreeSet<String>, what: &str) {
    let extra: Vec<_> = actual.difference(expected).collect();
    let missing: Vec<_> = expected.difference(actual).collect();
    assert!(extra.is_empty() && missing.is_empty(), "{what}: unexpected {extra:?}, missing {missing:?}");
}

async fn policy_status(client: &Client, ns: &str, name: &str) -> Option<LifecyclePolicyStatus> {
    Api::<LifecyclePolicy>::namespaced(client.clone(), ns).get(name).await.ok()?.status
}

/// Waits until `check` holds on the policy's status (or panics after `secs`).
async fn wait_status(
    client: &Client,
    ns: &str,
    name: &str,
    secs: u64,
    check: impl Fn(&LifecyclePolicyStatus) -> bool,
) -> LifecyclePolicyStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = policy_status(client, ns, name).await
            && check(&s)
        {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "policy {ns}/{name} did not reach the expected status in {secs} s: {:#?}",
            policy_status(client, ns, name).await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn run_now(client: &Client, ns: &str, name: &str, value: &str) {
    let patch = json!({"metadata": {"annotations": {"seatwarden.io/run-now": value}}});
    Api::<LifecyclePolicy>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// Every action of every LifecycleRun in the namespace.
/// The first Event in `ns` with this reason, waited for up to `secs` seconds.
async fn wait_event(client: &Client, ns: &str, reason: &str, secs: u64) -> k8s_openapi::api::events::v1::Event {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let list = events.list(&ListParams::default()).await.unwrap();
        if let Some(e) = list.items.into_iter().find(|e| e.reason.as_deref() == Some(reason)) {
            return e;
        }
        assert!(std::time::Instant::now() < deadline, "no {reason} event within {secs} s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn audit_actions(client: &Client, ns: &str) -> Vec<RunAction> {
    let runs = Api::<LifecycleRun>::namespaced(client.clone(), ns).list(&ListParams::default()).await.unwrap();
    runs.items.into_iter().flat_map(|r| r.spec.actions).collect()
}

fn condition<'a>(
    s: &'a LifecyclePolicyStatus,
    t: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    s.conditions.iter().find(|c| c.type_ == t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing_and_enforce_acts_after_the_notice_lead_time() {
    let Some((client, ns, sim, mailbox)) = scenario("e2e-enforce", 240, 21).await else { return };
    let mut objects = organization(&sim);
    objects.push(policy(
        "report",
        "DryRun",
        json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "150d"}, "action": "Suspend"}),
        json!({"maxActionsPerRun": 10000, "maxActionPercent": 100}),
    ));
    objects.push(policy(
        "enforce",
        "Enforce",
        json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "150d"}, "action": "Suspend", "noticeLeadTimes": ["3d"]}),
        json!({"maxActionsPerRun": 10000, "maxActionPercent": 100}),
    ));
    apply(&client, &ns, objects).await;
    let expected = expected_inactive(&sim.snapshot(T0).await, T0.parse().unwrap(), 150, Some("dept-finance"));
    assert!(
        expected.len() >= 5,
        "the generated organization should have idle users to act on, found {}",
        expected.len()
    );

    let op = OperatorProc::start(&ns, &sim, mailbox.path(), &[]);
    let t0: Timestamp = T0.parse().unwrap();
    let dry = wait_status(&client, &ns, "report", 90, |s| s.last_run_time.as_ref().is_some_and(|t| t.0 == t0)).await;
    let enforce =
        wait_status(&client, &ns, "enforce", 90, |s| s.last_run_time.as_ref().is_some_and(|t| t.0 == t0)).await;

    // DryRun: Ready, says so, shows what it would do, and wrote nothing to Atlassian.
    let ready = condition(&dry, "Ready").expect("Ready condition");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "DryRun"));
    assert_eq!(ready.observed_generation, Some(1));
    // Day 0: the enforcing policy warned everyone past the threshold and acted on no one yet.
    assert!(sim.applied_writes().await.is_empty(), "no write before the lead time has passed");
    let notified: BTreeSet<String> = audit_actions(&client, &ns)
        .await
        .into_iter()
        .filter(|a| a.action == "notice" && a.outcome == ActionOutcome::Applied)
        .map(|a| a.account_id)
        .collect();
    assert_same(&notified, &expected, "notices go to exactly the users past the threshold");
    let mail = std::fs::read_dir(mailbox.path().join(&ns).join("acme")).unwrap().count();
    assert_eq!(mail, expected.len(), "one notice per user in the mailbox");
    assert_eq!(enforce.last_run.as_ref().unwrap().notices_sent, expected.len() as i64);
    assert!(
        dry.last_run.as_ref().unwrap().would_notify.len() <= 10,
        "DryRun shows a bounded sample of the notices it would send"
    );

    // Day 1: the lead time hasn't passed; a run now still acts on no one.
    sim.advance("1d").await;
    run_now(&client, &ns, "enforce", "day1").await;
    wait_status(&client, &ns, "enforce", 60, |s| s.last_handled_run_now.as_deref() == Some("day1")).await;
    assert!(sim.applied_writes().await.is_empty(), "still inside the lead time");

    // Day 4: the lead time has passed: exactly the warned users are suspended; protected untouched.
    sim.advance("3d").await;
    run_now(&client, &ns, "enforce", "day4").await;
    let after = wait_status(&client, &ns, "enforce", 60, |s| s.last_handled_run_now.as_deref() == Some("day4")).await;
    let writes = sim.applied_writes().await;
    let suspended: BTreeSet<String> =
        writes.iter().filter(|(op, _)| op == "user.suspend").map(|(_, a)| a.clone()).collect();
    assert_eq!(writes.len(), suspended.len(), "only suspensions, each once: {writes:?}");
    assert_same(&suspended, &expected, "exactly the warned users past the threshold are suspended");
    let snap = sim.snapshot(T0).await;
    let finance = snap.find_group("dept-finance").unwrap().0;
    assert!(
        snap.accounts.iter().filter(|u| u.in_group(finance)).all(|u| !suspended.contains(&u.account_id)),
        "protected users untouched"
    );
    assert_eq!(after.last_run.as_ref().unwrap().applied, expected.len() as i64);
    assert!(after.seats_reclaimed.unwrap_or(0) > 0, "suspended users stop being billed: seats are reclaimed");

    // The audit trail, the simulator's event log and /metrics agree.
    let applied: BTreeSet<String> = audit_actions(&client, &ns)
        .await
        .into_iter()
        .filter(|a| a.action == "suspend" && a.outcome == ActionOutcome::Applied)
        .map(|a| a.account_id)
        .collect();
    assert_same(&applied, &suspended, "audit trail == simulator event log");
    let metrics = op.metrics().await.expect("/metrics");
    let counted = metric_sum(
        &metrics,
        "seatwarden_actions_total",
        &[("policy", "enforce"), ("outcome", "applied"), ("action", "suspend")],
    );
    assert_eq!(counted as usize, suspended.len(), "/metrics agrees with what happened");
    assert_eq!(metric_sum(&metrics, "seatwarden_actions_total", &[("policy", "report"), ("outcome", "applied")]), 0.0);
    assert!(!metrics.contains("@acme.example"), "no email in metrics");
    assert!(!metrics.contains(API_KEY), "no secret in metrics");

    // Health endpoints, then a graceful shutdown on SIGTERM.
    let base = op.metrics_url.trim_end_matches("/metrics").to_owned();
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(format!("{base}/readyz")).await.unwrap().status(), 200);
    let mut op = op;
    let pid = op.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(status) = op.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "no exit within 15 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "SIGTERM ends the operator cleanly: {exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percentage_cap_halts_the_run_and_says_so() {
    let Some((client, ns, sim, mailbox)) = scenario("e2e-halt", 200, 5).await else { return };
    let mut objects = organization(&sim);
    objects.push(policy(
        "aggressive",
        "Enforce",
        json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "30d"}, "action": "Suspend"}),
        json!({"maxActionsPerRun": 10000, "maxActionPercent": 1}),
    ));
    apply(&client, &ns, objects).await;
    let _op = OperatorProc::start(&ns, &sim, mailbox.path(), &[]);
    let s = wait_status(&client, &ns, "aggressive", 90, |s| s.last_run_time.is_some()).await;
    let halted = condition(&s, "SafetyHalted").expect("SafetyHalted condition");
    assert_eq!(halted.status, "True");
    assert!(halted.message.contains("maxActionPercent"), "the message says what to do: {}", halted.message);
    assert!(sim.applied_writes().await.is_empty(), "a halted run applies nothing");
    // Between scheduled runs the operator calls Atlassian not at all, whatever its own status writes
    // and watch events wake it for.
    let before = sim.atlassian_requests().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(sim.atlassian_requests().await, before, "no Atlassian call between scheduled runs");
    // An Event says so too.
    wait_event(&client, &ns, "SafetyHalted", 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_run_the_restarted_operator_finishes_without_double_action_or_lost_record() {
    let Some((client, ns, sim, mailbox)) = scenario("e2e-crash", 400, 9).await else { return };
    let objects = sweep_objects(&sim);
    apply(&client, &ns, objects).await;
    let expected = sweep_targets(&sim).await;
    assert!(expected.len() >= 30, "need enough targets to crash mid-run, found {}", expected.len());
    // Slow Atlassian down so the run is long enough to be killed in the middle.
    sim.faults("latency=150ms").await;
    let mut op = OperatorProc::start(&ns, &sim, mailbox.path(), &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let n = sim.applied_writes().await.len();
        if n >= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the run never started writing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    op.kill();
    let at_kill = sim.applied_writes().await.len();
    assert!(at_kill < expected.len(), "killed mid-run ({at_kill} of {} written)", expected.len());
    sim.faults("").await;

    let _op2 = OperatorProc::start(&ns, &sim, mailbox.path(), &[]);
    let t0: Timestamp = T0.parse().unwrap();
    wait_status(&client, &ns, "sweep", 120, |s| s.last_run_time.as_ref().is_some_and(|t| t.0 == t0)).await;
    let writes = sim.applied_writes().await;
    let mut per_user: BTreeMap<String, usize> = BTreeMap::new();
    for (op, account) in &writes {
        assert_eq!(op, "user.suspend");
        *per_user.entry(account.clone()).or_default() += 1;
    }
    assert!(per_user.values().all(|n| *n == 1), "no user suspended twice: {per_user:?}");
    assert_same(&per_user.keys().cloned().collect(), &expected, "every target suspended once");
    // No lost record: every write in the simulator is an Applied action in the audit trail, and no
    // action is left Planned.
    let actions = audit_actions(&client, &ns).await;
    let applied: BTreeSet<String> = actions
        .iter()
        .filter(|a| a.action == "suspend" && a.outcome == ActionOutcome::Applied)
        .map(|a| a.account_id.clone())
        .collect();
    let missing: Vec<&RunAction> =
        actions.iter().filter(|a| !applied.contains(&a.account_id) && expected.contains(&a.account_id)).collect();
    assert!(missing.is_empty(), "writes without an Applied record: {missing:#?}");
    assert_same(&applied, &expected, "the audit trail records every applied write");
    assert!(actions.iter().all(|a| a.outcome != ActionOutcome::Planned), "no action left Planned after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_both_write() {
    let Some((client, ns, sim, mailbox)) = scenario("e2e-leader", 200, 13).await else { return };
    let mut objects = organization(&sim);
    objects.push(policy(
        "sweep",
        "Enforce",
        json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "90d"}, "action": "Suspend"}),
        json!({"maxActionsPerRun": 10000, "maxActionPercent": 100}),
    ));
    let expected = expected_inactive(&sim.snapshot(T0).await, T0.parse().unwrap(), 90, Some("dept-finance"));
    let lease = ["--leader-election", "--lease-namespace", &ns, "--lease-name", "seatwarden"];
    let mut a = OperatorProc::start(&ns, &sim, mailbox.path(), &lease);
    let mut b = OperatorProc::start(&ns, &sim, mailbox.path(), &lease);
    // Exactly one leader.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let leaders = loop {
        let la = a.metrics().await.map(|m| metric_sum(&m, "seatwarden_leader", &[]) as i64);
        let lb = b.metrics().await.map(|m| metric_sum(&m, "seatwarden_leader", &[]) as i64);
        if let (Some(la), Some(lb)) = (la, lb)
            && la + lb == 1
        {
            break (la, lb);
        }
        assert!(std::time::Instant::now() < deadline, "no single leader emerged: {la:?} {lb:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    apply(&client, &ns, objects).await;
    let t0: Timestamp = T0.parse().unwrap();
    wait_status(&client, &ns, "sweep", 90, |s| s.last_run_time.as_ref().is_some_and(|t| t.0 == t0)).await;
    let writes = sim.applied_writes().await;
    let accounts: BTreeSet<String> = writes.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(writes.len(), accounts.len(), "each write once");
    assert_same(&accounts, &expected, "the leader suspends exactly the targets");
    let (ma, mb) = (a.metrics().await.unwrap(), b.metrics().await.unwrap());
    let applied_a = metric_sum(&ma, "seatwarden_actions_total", &[("outcome", "applied")]);
    let applied_b = metric_sum(&mb, "seatwarden_actions_total", &[("outcome", "applied")]);
    assert!(applied_a == 0.0 || applied_b == 0.0, "both replicas wrote: {applied_a} and {applied_b}");
    assert_eq!(
        if leaders.0 == 1 { applied_a } else { applied_b } as usize,
        expected.len(),
        "the leader did the writing"
    );

    // The leader goes away: the standby takes over.
    let (standby, killed) = if leaders.0 == 1 { (&b, &mut a) } else { (&a, &mut b) };
    killed.kill();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if standby.metrics().await.is_some_and(|m| metric_sum(&m, "seatwarden_leader", &[]) == 1.0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the standby never took over");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// In process: a user who becomes active between the snapshot and the write is left alone.
#[tokio::test]
async fn a_user_active_again_before_the_write_is_left_alone() {
    use seatwarden::{
        clock::Clock,
        engine::{OrgInputs, RunDeps, run_due_policies},
        execute::{BoxFut, DirectoryWriter, FreshRead, WriteOutcome, atlassian::ClientWriter},
        notify::MailboxNotifier,
        policy::PlannedAction,
        record::{FolderAudit, FolderLedgerStore},
        sim::{SimConfig, Simulator},
    };
    seatwarden::tls::install_crypto_provider();
    let t0: Timestamp = T0.parse().unwrap();
    let sim = Simulator::start(
        SimConfig { users: 200, seed: 3, now: t0, frozen: true, ..SimConfig::default() },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let org: AtlassianOrganization = serde_json::from_value(json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "AtlassianOrganization",
        "metadata": {"name": "acme", "namespace": "n"},
        "spec": {"orgId": sim.org_id(), "apiBaseUrl": sim.base_url(), "credentials": {"apiKeySecretRef": {"name": "k", "key": "k"}}}}))
    .unwrap();
    let mut p: LifecyclePolicy = serde_json::from_value(policy(
        "sweep",
        "Enforce",
        json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "90d"}, "action": "Suspend"}),
        json!({"maxActionsPerRun": 10000, "maxActionPercent": 100}),
    ))
    .unwrap();
    p.metadata.namespace = Some("n".into());
    let mut config = ClientConfig::from_spec(&org.spec).unwrap();
    config.budget.org_requests_per_minute = 100_000;
    let client =
        AtlassianClient::new(config, &Credentials { org_api_key: ApiSecret::new(sim.api_key()), site_user: None })
            .unwrap();
    let snapshot = client.snapshot(t0).await.unwrap();
    let expected = expected_inactive(&snapshot, t0, 90, None);
    let returning = expected.iter().next().expect("an idle user").clone();

    /// Logs the returning user in (in the simulator) right before the executor re-reads them.
    struct LoginBeforeReread<'a> {
        inner: ClientWriter<'a>,
        sim: &'a seatwarden::sim::SimHandle,
        returning: String,
        now: Timestamp,
    }
    impl DirectoryWriter for LoginBeforeReread<'_> {
        fn reread<'a>(&'a self, d: &'a str, id: &'a str) -> BoxFut<'a, Result<Option<FreshRead>, String>> {
            if id == self.returning {
                self.sim.with_state_mut(|s| {
                    let u = s.users.iter_mut().find(|u| u.account_id == id).unwrap();
                    for a in &mut u.activity {
                        a.last_active = self.now;
                    }
                });
            }
            self.inner.reread(d, id)
        }
        fn write<'a>(&'a self, a: &'a PlannedAction) -> BoxFut<'a, WriteOutcome> {
            self.inner.write(a)
        }
    }
    let writer = LoginBeforeReread {
        inner: ClientWriter::new(&client, &snapshot),
        sim: &sim,
        returning: returning.clone(),
        now: t0,
    };
    let dir = tempfile::tempdir().unwrap();
    let ledger = FolderLedgerStore::new(dir.path().join("ledger"));
    let audit = FolderAudit::new(dir.path());
    let mailbox = MailboxNotifier::new(dir.path().join("mail")).unwrap();
    let clock = Clock::manual(t0);
    let fail = seatwarden::execute::FailPoints::none();
    let deps = RunDeps {
        directory: &writer,
        ledger_store: &ledger,
        audit: &audit,
        notifier: &mailbox,
        clock: &clock,
        fence: &seatwarden::record::SoleWriter,
        premises: None,
        fail: &fail,
        metrics: None,
        process_dry_run: false,
        concurrency: 2,
        summary_recipients: None,
    };
    let policies = vec![p];
    let inputs = OrgInputs { organization: &org, policies: &policies, protections: &[], mappings: &[] };
    let (_plan, runs) = run_due_policies(&inputs, &["sweep".to_owned()], &snapshot, &deps).await.unwrap();
    let suspended: BTreeSet<String> =
        sim.events().iter().filter(|e| e.operation == "user.suspend").filter_map(|e| e.account_id.clone()).collect();
    let mut others = expected.clone();
    others.remove(&returning);
    assert_same(&suspended, &others, "everyone else is suspended; the returning user is not");
    let record = runs[0].record.as_ref().unwrap();
    let skipped = record.actions.iter().find(|a| a.account_id == returning).unwrap();
    assert_eq!(skipped.outcome, ActionOutcome::Skipped);
    assert!(skipped.error.as_deref().unwrap_or("").contains("active"), "the record says why: {:?}", skipped.error);
    sim.shutdown().await.unwrap();
}

/// A minimal real SMTP server (aiosmtpd, installed by `make deps`) on a given port: each message is
/// written as one JSON file. None (skip) outside CI when aiosmtpd is missing.
struct Smtpd {
    child: Child,
    dir: tempfile::TempDir,
}

const SMTPD: &str = r#"
import asyncio, email, email.policy, json, os, sys, warnings
from aiosmtpd.smtp import SMTP
warnings.simplefilter("ignore")
out, port = sys.argv[1], int(sys.argv[2])
class H:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        m = email.message_from_bytes(envelope.content, policy=email.policy.default)
        H.n += 1
        rec = {"to": envelope.rcpt_tos, "subject": str(m["Subject"]), "body": m.get_content()}
        with open(os.path.join(out, "%06d.json" % H.n), "w") as f:
            json.dump(rec, f)
        return "250 OK"
async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: SMTP(H(), hostname="localhost", loop=loop), "127.0.0.1", port)
    print("READY", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"#;

impl Smtpd {
    fn start(port: u16) -> Option<Smtpd> {
        let python = std::env::var("SEATWARDEN_SMTPD_PYTHON")
            .unwrap_or_else(|_| "/var/cache/seatwarden-ci/aiosmtpd-venv/bin/python".to_owned());
        let ok = Command::new(&python).args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but {python} has no aiosmtpd: `make deps` installs it"
            );
            eprintln!("skipping: no aiosmtpd");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtpd.py");
        std::fs::write(&script, SMTPD).unwrap();
        let mail = dir.path().join("mail");
        std::fs::create_dir(&mail).unwrap();
        let mut child = Command::new(python)
            .arg(&script)
            .arg(&mail)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "READY", "aiosmtpd did not start");
        Some(Smtpd { child, dir })
    }

    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<_> =
            std::fs::read_dir(self.dir.path().join("mail")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_wait_for_a_delivered_notice_and_the_ledger_survives_a_restart() {
    let Some(client) = support::kube_client().await else { return };
    if Smtpd::start(free_port()).is_none() {
        return;
    }
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "e2e-smtp").await;
    let sim = SimProc::start(240, 21);
    let mailbox = tempfile::Builder::new().prefix("smtp-e2e").tempdir_in("/tmp").unwrap();
    let mailbox = mailbox.keep();
    // The mail server's port is known, but nothing listens there yet: SMTP is down.
    let smtp_port = free_port();
    let mut objects = organization(&sim);
    objects[1]["spec"]["mail"] = json!({"host": "127.0.0.1", "port": smtp_port, "tls": "None",
        "from": "Acme IT <it@acme.example>", "replyTo": "helpdesk@acme.example"});
    objects.push(policy(
        "enforce",
        "Enforce",
        json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "150d"}, "action": "Suspend", "noticeLeadTimes": ["3d"]}),
        json!({"maxActionsPerRun": 10000, "maxActionPercent": 100}),
    ));
    apply(&client, &ns, objects).await;
    let snapshot = sim.snapshot(T0).await;
    let expected = expected_inactive(&snapshot, T0.parse().unwrap(), 150, Some("dept-finance"));
    let emails: BTreeMap<String, String> = snapshot
        .accounts
        .iter()
        .filter(|u| expected.contains(&u.account_id))
        .map(|u| (u.email.clone().unwrap(), u.account_id.clone()))
        .collect();

    // Day 0, SMTP down: no notice is delivered, so nothing may happen; status says why.
    let mut op = OperatorProc::start(&ns, &sim, &mailbox, &[]);
    let t0: Timestamp = T0.parse().unwrap();
    let s = wait_status(&client, &ns, "enforce", 120, |s| s.last_run_time.as_ref().is_some_and(|t| t.0 == t0)).await;
    assert_eq!(s.last_run.as_ref().unwrap().notices_sent, 0);
    let degraded = condition(&s, "Degraded").unwrap();
    assert_eq!(degraded.status, "True", "undelivered notices show in status: {degraded:?}");
    assert!(degraded.message.contains("notices"), "{}", degraded.message);

    // Day 4 (past the lead time counted from day 0), SMTP still down: still nothing, because no
    // notice was ever delivered.
    sim.advance("4d").await;
    run_now(&client, &ns, "enforce", "day4-down").await;
    wait_status(&client, &ns, "enforce", 90, |s| s.last_handled_run_now.as_deref() == Some("day4-down")).await;
    assert!(sim.applied_writes().await.is_empty(), "no action without a delivered notice");

    // Day 5, SMTP up: notices are delivered, with recipient, subject, lead time and reason.
    let smtpd = Smtpd::start(smtp_port).expect("aiosmtpd");
    sim.advance("1d").await;
    run_now(&client, &ns, "enforce", "day5-up").await;
    wait_status(&client, &ns, "enforce", 90, |s| s.last_handled_run_now.as_deref() == Some("day5-up")).await;
    assert!(sim.applied_writes().await.is_empty(), "the lead time starts at delivery");
    let received = smtpd.messages();
    let recipients: BTreeSet<String> = received
        .iter()
        .flat_map(|m| m["to"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()))
        .collect();
    let expected_emails: BTreeSet<String> = emails.keys().cloned().collect();
    assert!(expected_emails.is_subset(&recipients), "every user past the threshold is warned by mail");
    assert_eq!(received.len(), recipients.len(), "one notice per person");
    for m in &received {
        let body = m["body"].as_str().unwrap();
        assert!(body.contains("no activity") || body.contains("never active"), "the reason is in the notice: {body}");
        assert!(body.contains("2026-11-10"), "the notice says when (delivered day 5 + 3 days): {body}");
        assert!(!m["subject"].as_str().unwrap().is_empty());
    }

    // The operator restarts: the ledger of delivered notices lives in the cluster, so day 8 acts
    // on exactly the warned users, without warning them again.
    op.kill();
    let _op2 = OperatorProc::start(&ns, &sim, &mailbox, &[]);
    sim.advance("3d").await;
    run_now(&client, &ns, "enforce", "day8").await;
    wait_status(&client, &ns, "enforce", 120, |s| s.last_handled_run_now.as_deref() == Some("day8")).await;
    let suspended: BTreeSet<String> =
        sim.applied_writes().await.into_iter().filter(|(op, _)| op == "user.suspend").map(|(_, a)| a).collect();
    assert_same(&suspended, &expected, "after the restart, exactly the warned users are suspended");
    let again = smtpd.messages().len() - received.len();
    let warned_again = smtpd.messages()[received.len()..]
        .iter()
        .flat_map(|m| m["to"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect::<Vec<_>>())
        .filter(|e| expected_emails.contains(e))
        .count();
    assert_eq!(warned_again, 0, "no one is warned twice after a restart ({again} new notices to others)");
    let ledger = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels("app.kubernetes.io/component=ledger"))
        .await
        .unwrap();
    assert!(!ledger.items.is_empty(), "the ledger is kept in ConfigMaps");
}

#[tokio::test]
async fn lifecycle_runs_are_kept_by_count_and_age() {
    use seatwarden::record::{AuditSink, ClusterAudit, RunRecord};
    let Some(client) = support::kube_client().await else { return };
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "e2e-retention").await;
    let audit = ClusterAudit::new(client.clone(), &ns);
    let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
    // Five runs of one policy: 1, 2, 3, 40 and 50 days old.
    for days in [1i64, 2, 3, 40, 50] {
        let start = now.checked_sub(SignedDuration::from_hours(24 * days)).unwrap();
        let record = RunRecord {
            run_id: seatwarden::record::audit::run_id(start),
            policy: "p".into(),
            organization: "acme".into(),
            mode: PolicyMode::Enforce,
            start_time: start,
            end_time: Some(start),
            phase: Some(RunPhase::Completed),
            actor: None,
            actions: vec![],
        };
        audit.write(&record).await.unwrap();
    }
    let deleted = audit.prune(2, SignedDuration::from_hours(24 * 30), now).await.unwrap();
    assert_eq!(deleted, 3, "the 3-day-old run is beyond the count, the 40 and 50-day-old ones beyond the age");
    let left: Vec<i64> =
        audit.list(Some("p")).await.unwrap().iter().map(|r| now.duration_since(r.start_time).as_hours() / 24).collect();
    assert_eq!(left, vec![1, 2], "the two newest remain");
}

#[tokio::test]
async fn the_ledger_of_100000_users_is_sharded_well_under_the_object_limit() {
    use seatwarden::{
        execute::{load_ledger, save_ledger},
        ledger::{Ledger, NoticeRecord, UserRecord},
        record::ConfigMapLedgerStore,
    };
    let Some(client) = support::kube_client().await else { return };
    let ns = support::namespace(&client, "e2e-ledger").await;
    let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
    let mut ledger = Ledger::new("sim-org");
    for i in 0..100_000u32 {
        let record = UserRecord {
            email: Some(format!("first.last{i}@acme.example")),
            first_seen: Some(now),
            notices: vec![NoticeRecord {
                policy: "reclaim-inactive".into(),
                rule: "suspend-idle-120d".into(),
                lead_time: "14d".parse().unwrap(),
                action: Some(RuleAction::Suspend),
                product: None,
                delivered_at: now,
            }],
            ..Default::default()
        };
        ledger.users.insert(format!("{:024x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15), record);
    }
    let store = ConfigMapLedgerStore::new(client.clone(), &ns, "acme");
    save_ledger(&store, &mut ledger.clone()).await.unwrap();
    let maps = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels("app.kubernetes.io/component=ledger"))
        .await
        .unwrap();
    let largest = maps.items.iter().map(|m| m.data.as_ref().unwrap()["ledger.json"].len()).max().unwrap();
    assert!(largest < 512 * 1024, "the largest shard is {largest} bytes: well under 1 MiB");
    let back = load_ledger(&store, "sim-org").await.unwrap();
    assert_eq!(back.users.len(), 100_000);
    assert_eq!(back, ledger, "the ledger reads back as written");
}

/// The organization and one Enforce policy that suspends everyone idle for 60 days, uncapped: the
/// scenario of the crash, pause and shutdown tests.
fn sweep_objects(sim: &SimProc) -> Vec<Value> {
    let mut objects = organization(sim);
    objects.push(policy(
        "sweep",
        "Enforce",
        json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "60d"}, "action": "Suspend"}),
        json!({"maxActionsPerRun": 10000, "maxActionPercent": 100}),
    ));
    objects
}

/// Whom [`sweep_objects`]' policy suspends: idle for 60 days, outside the protected department.
async fn sweep_targets(sim: &SimProc) -> BTreeSet<String> {
    expected_inactive(&sim.snapshot(T0).await, T0.parse().unwrap(), 60, Some("dept-finance"))
}

/// After a scenario: the simulator's event log, the ledger and the audit trail agree exactly on
/// `expected` — each suspended once, recorded Applied once, its suspension in the ledger once,
/// nothing left open. Returns the figures (writes, records, open actions).
async fn assert_log_ledger_audit_agree(client: &Client, ns: &str, sim: &SimProc, expected: &BTreeSet<String>) {
    let writes = sim.applied_writes().await;
    let mut per_user: BTreeMap<String, usize> = BTreeMap::new();
    for (op, account) in &writes {
        assert_eq!(op, "user.suspend");
        *per_user.entry(account.clone()).or_default() += 1;
    }
    assert!(per_user.values().all(|n| *n == 1), "no user suspended twice: {per_user:?}");
    assert_same(&per_user.keys().cloned().collect(), expected, "the simulator: every target suspended once");
    let runs = Api::<LifecycleRun>::namespaced(client.clone(), ns).list(&ListParams::default()).await.unwrap();
    let mut recorded: BTreeMap<String, usize> = BTreeMap::new();
    for r in &runs.items {
        let phase = r.status.as_ref().and_then(|s| s.phase);
        assert_ne!(phase, Some(RunPhase::Running), "no LifecycleRun left Running: {}", r.spec.run_id);
        for a in r.spec.actions.iter().filter(|a| a.action != "notice") {
            assert!(!a.outcome.is_open(), "no action left {:?}: {a:?}", a.outcome);
            if a.outcome == ActionOutcome::Applied {
                *recorded.entry(a.account_id.clone()).or_default() += 1;
            }
        }
    }
    assert!(recorded.values().all(|n| *n == 1), "no write recorded twice: {recorded:?}");
    assert_same(&recorded.keys().cloned().collect(), expected, "the audit trail: every write recorded Applied");
    let store = seatwarden::record::ConfigMapLedgerStore::new(client.clone(), ns, "acme");
    let ledger = seatwarden::execute::load_ledger(&store, "sim-org").await.unwrap();
    assert_eq!(ledger.writes().count(), 0, "the ledger holds no write in flight");
    for id in expected {
        let rec = ledger.record(id).unwrap_or_else(|| panic!("no ledger record for {id}"));
        assert!(rec.suspension.as_ref().is_some_and(|s| s.by_seatwarden), "{id}: the ledger has the suspension");
        assert_eq!(rec.taken_out.len(), 1, "{id}: recorded once in the ledger");
    }
    eprintln!(
        "figures {ns}: {} writes in the simulator, {} LifecycleRun objects, {} Applied records, {} ledger records",
        writes.len(),
        runs.items.len(),
        recorded.len(),
        ledger.users.len()
    );
}

/// The operator process aborts at an armed failure point mid-run; restarted, it settles and
/// finishes, and the event log, the ledger and the audit trail agree exactly.
async fn crash_point_end_to_end(prefix: &str, point: &str) {
    let Some((client, ns, sim, mailbox)) = scenario(prefix, 400, 9).await else { return };
    let objects = sweep_objects(&sim);
    apply(&client, &ns, objects).await;
    let expected = sweep_targets(&sim).await;
    assert!(expected.len() > 50, "targets for more than two batches: {}", expected.len());
    let mut op = OperatorProc::start_env(&ns, &sim, mailbox.path(), &[], &[("SEATWARDEN_FAIL_AT", point)]);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let exit = loop {
        if let Some(status) = op.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the operator never reached {point}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!exit.success(), "aborted at the failure point: {exit:?}");
    let at_crash = sim.applied_writes().await.len();
    assert!(at_crash > 0 && at_crash < expected.len(), "crashed mid-run: {at_crash} of {} written", expected.len());

    let _op2 = OperatorProc::start(&ns, &sim, mailbox.path(), &[]);
    let t0: Timestamp = T0.parse().unwrap();
    wait_status(&client, &ns, "sweep", 120, |s| s.last_run_time.as_ref().is_some_and(|t| t.0 == t0)).await;
    eprintln!("figures {ns}: crash at {point} after {at_crash} of {} writes", expected.len());
    assert_log_ledger_audit_agree(&client, &ns, &sim, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_aborted_right_after_a_write_settles_it_exactly_on_restart() {
    crash_point_end_to_end("e2e-crash-write", "after-write:30").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_aborted_between_the_ledger_and_the_audit_write_settles_it_exactly_on_restart() {
    crash_point_end_to_end("e2e-crash-ledger", "after-ledger-save:1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_never_came_is_unknown_then_settled_by_the_next_run() {
    let Some((client, ns, sim, mailbox)) = scenario("e2e-unknown", 200, 13).await else { return };
    let mut objects = organization(&sim);
    objects[1]["spec"]["requestBudget"]["timeoutSeconds"] = json!(1);
    objects.push(policy(
        "sweep",
        "Enforce",
        json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "90d"}, "action": "Suspend"}),
        json!({"maxActionsPerRun": 1, "maxActionPercent": 100}),
    ));
    // The write lands, its answer is lost, and Atlassian goes dark long enough that the client's
    // own verification cannot tell either.
    sim.faults("drop-after-write=1,outage=45s").await;
    let outage_from = std::time::Instant::now();
    apply(&client, &ns, objects).await;
    let op = OperatorProc::start(&ns, &sim, mailbox.path(), &[]);
    let t0: Timestamp = T0.parse().unwrap();
    wait_status(&client, &ns, "sweep", 120, |s| s.last_run_time.as_ref().is_some_and(|t| t.0 == t0)).await;
    let writes = sim.applied_writes().await;
    assert_eq!(writes.len(), 1, "the one write landed: {writes:?}");
    let target = writes[0].1.clone();
    let actions = audit_actions(&client, &ns).await;
    let unknown: Vec<&RunAction> = actions.iter().filter(|a| a.outcome == ActionOutcome::Unknown).collect();
    assert_eq!(unknown.len(), 1, "the audit trail shows it Unknown: {actions:#?}");
    assert_eq!(unknown[0].account_id, target);
    let store = seatwarden::record::ConfigMapLedgerStore::new(client.clone(), &ns, "acme");
    let ledger = seatwarden::execute::load_ledger(&store, "sim-org").await.unwrap();
    assert_eq!(ledger.in_flight().map(|(id, _)| id.to_owned()).collect::<Vec<_>>(), vec![target.clone()]);
    assert!(ledger.record(&target).unwrap().suspension.is_none(), "not counted as done before it is known");
    let metrics = op.metrics().await.unwrap();
    assert_eq!(metric_sum(&metrics, "seatwarden_actions_total", &[("outcome", "unknown")]), 1.0);
    assert_eq!(metric_sum(&metrics, "seatwarden_actions_total", &[("outcome", "applied")]), 0.0);

    // The outage ends; the next run re-reads the user first and settles the write as applied.
    sim.faults("").await;
    tokio::time::sleep(Duration::from_secs(46).saturating_sub(outage_from.elapsed())).await;
    run_now(&client, &ns, "sweep", "settle").await;
    wait_status(&client, &ns, "sweep", 120, |s| s.last_handled_run_now.as_deref() == Some("settle")).await;
    let actions = audit_actions(&client, &ns).await;
    let settled = actions
        .iter()
        .find(|a| a.account_id == target && a.error.as_deref().is_some_and(|e| e.contains("sent, no answer")))
        .unwrap();
    assert_eq!(settled.outcome, ActionOutcome::Applied, "{settled:?}");
    let all_writes = sim.applied_writes().await;
    let suspended: BTreeSet<String> = all_writes.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(suspended.len(), all_writes.len(), "no double write");
    assert_eq!(suspended.len(), 2, "the settled write, and the next run's one");
    assert_log_ledger_audit_agree(&client, &ns, &sim, &suspended).await;
}

/// Invariant 12: SIGTERM (a `helm upgrade` that sets dryRun, a rollout, a drain) mid-run stops the
/// run before its next batch: the process exits cleanly at once, what it wrote is recorded Applied,
/// the rest Deferred with the reason, nothing in flight; the next process finishes the work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_mid_run_stops_before_the_next_batch_and_the_next_process_finishes() {
    let Some((client, ns, sim, mailbox)) = scenario("e2e-sigterm", 400, 9).await else { return };
    let objects = sweep_objects(&sim);
    let expected = sweep_targets(&sim).await;
    assert!(expected.len() > 50, "targets for more than two batches: {}", expected.len());
    // Slow Atlassian down so the run is mid-way when the signal comes.
    sim.faults("latency=150ms").await;
    apply(&client, &ns, objects).await;
    let mut op = OperatorProc::start(&ns, &sim, mailbox.path(), &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while sim.applied_writes().await.len() < 3 {
        assert!(std::time::Instant::now() < deadline, "the operator never started writing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let signalled = std::time::Instant::now();
    let pid = op.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exit = loop {
        if let Some(status) = op.child.try_wait().unwrap() {
            break status;
        }
        assert!(signalled.elapsed() < Duration::from_secs(20), "no exit within 20 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = signalled.elapsed();
    assert!(exit.success(), "SIGTERM mid-run ends the operator cleanly: {exit:?}");
    sim.faults("").await;
    let at_stop = sim.applied_writes().await;
    assert!(
        !at_stop.is_empty() && at_stop.len() < expected.len(),
        "stopped mid-run: {} of {} written",
        at_stop.len(),
        expected.len()
    );
    let actions: Vec<RunAction> =
        audit_actions(&client, &ns).await.into_iter().filter(|a| a.action != "notice").collect();
    let applied = actions.iter().filter(|a| a.outcome == ActionOutcome::Applied).count();
    assert_eq!(applied, at_stop.len(), "every write it made is recorded Applied");
    let deferred: Vec<&RunAction> = actions.iter().filter(|a| a.outcome == ActionOutcome::Deferred).collect();
    assert_eq!(applied + deferred.len(), expected.len(), "the rest recorded, none lost: {actions:#?}");
    assert!(
        deferred.iter().all(|a| a.error.as_deref().is_some_and(|e| e.contains("shutting down"))),
        "the rest Deferred, saying why"
    );
    let store = seatwarden::record::ConfigMapLedgerStore::new(client.clone(), &ns, "acme");
    let ledger = seatwarden::execute::load_ledger(&store, "sim-org").await.unwrap();
    assert_eq!(ledger.writes().count(), 0, "nothing left in flight");

    let _op2 = OperatorProc::start(&ns, &sim, mailbox.path(), &[]);
    run_now(&client, &ns, "sweep", "resume").await;
    wait_status(&client, &ns, "sweep", 120, |s| s.last_handled_run_now.as_deref() == Some("resume")).await;
    eprintln!(
        "figures {ns}: SIGTERM after {} of {} writes, exit {:.1} s later, {} deferred",
        at_stop.len(),
        expected.len(),
        took.as_secs_f64(),
        deferred.len()
    );
    assert_log_ledger_audit_agree(&client, &ns, &sim, &expected).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_writes_nothing_after_it_resumes() {
    let Some((client, ns, sim, mailbox)) = scenario("e2e-pause", 400, 9).await else { return };
    let objects = sweep_objects(&sim);
    let expected = sweep_targets(&sim).await;
    let lease = ["--leader-election", "--lease-namespace", &ns, "--lease-name", "seatwarden"];
    let a = OperatorProc::start(&ns, &sim, mailbox.path(), &lease);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while a.metrics().await.is_none_or(|m| metric_sum(&m, "seatwarden_leader", &[]) != 1.0) {
        assert!(std::time::Instant::now() < deadline, "the first replica never led");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let b = OperatorProc::start(&ns, &sim, mailbox.path(), &lease);
    // Slow Atlassian down so the leader is mid-run when it is paused.
    sim.faults("latency=150ms").await;
    apply(&client, &ns, objects).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while sim.applied_writes().await.len() < 5 {
        assert!(std::time::Instant::now() < deadline, "the leader never started writing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = a.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let at_pause = sim.applied_writes().await.len();
    sim.faults("").await;

    // Past the lease (15 s): the other replica takes over, settles what the paused one left and
    // finishes the run.
    let t0: Timestamp = T0.parse().unwrap();
    wait_status(&client, &ns, "sweep", 150, |s| s.last_run_time.as_ref().is_some_and(|t| t.0 == t0)).await;
    assert!(b.metrics().await.is_some_and(|m| metric_sum(&m, "seatwarden_leader", &[]) == 1.0), "b leads");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let versions = |items: Vec<(String, String)>| items.into_iter().collect::<BTreeMap<String, String>>();
    let cms = || async {
        let maps = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().labels("app.kubernetes.io/component=ledger"))
            .await
            .unwrap();
        versions(
            maps.items
                .iter()
                .map(|m| (m.metadata.name.clone().unwrap(), m.metadata.resource_version.clone().unwrap()))
                .collect(),
        )
    };
    let lrs = || async {
        let runs = Api::<LifecycleRun>::namespaced(client.clone(), &ns).list(&ListParams::default()).await.unwrap();
        versions(
            runs.items
                .iter()
                .map(|m| (m.metadata.name.clone().unwrap(), m.metadata.resource_version.clone().unwrap()))
                .collect(),
        )
    };
    let (writes_before, ledger_before, audit_before) = (sim.applied_writes().await, cms().await, lrs().await);

    // Resumed, the old leader finds its lease gone and writes nothing anywhere.
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(sim.applied_writes().await, writes_before, "no Atlassian write after resuming");
    assert_eq!(cms().await, ledger_before, "no ledger write after resuming");
    assert_eq!(lrs().await, audit_before, "no audit write after resuming");
    assert!(a.metrics().await.is_some_and(|m| metric_sum(&m, "seatwarden_leader", &[]) == 0.0), "a follows");
    let log = std::fs::read_dir(mailbox.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("operator-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    eprintln!(
        "figures {ns}: paused after {at_pause} of {} writes; {} writes in all",
        expected.len(),
        writes_before.len()
    );
    assert!(log.contains("write refused"), "the resumed replica refused to write");
    assert_log_ledger_audit_agree(&client, &ns, &sim, &expected).await;
}

/// Invariant 4 / issue 14: outside `demo`, rules with lead times act only with a real transport.
/// An organization with neither `mail` nor `localMailbox`: the policy says so (condition and a
/// Warning Event), nobody is warned and nobody is acted on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_notice_transport_lead_time_rules_act_on_no_one_and_the_policy_says_why() {
    let Some((client, ns, sim, mailbox)) = scenario("e2e-nomail", 200, 8).await else { return };
    let mut objects = organization(&sim);
    objects[1]["spec"].as_object_mut().unwrap().remove("localMailbox");
    objects.push(policy(
        "warned",
        "Enforce",
        json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "60d"}, "action": "Suspend",
            "noticeLeadTimes": ["7d"]}),
        json!({"maxActionsPerRun": 10000, "maxActionPercent": 100}),
    ));
    apply(&client, &ns, objects).await;
    let _op = OperatorProc::start(&ns, &sim, mailbox.path(), &[]);
    let s = wait_status(&client, &ns, "warned", 90, |s| {
        s.last_run_time.is_some() && condition(s, "NoticeDeliveryUnavailable").is_some()
    })
    .await;
    let c = condition(&s, "NoticeDeliveryUnavailable").unwrap();
    assert_eq!(c.status, "True", "{c:?}");
    assert!(c.message.contains("mail") || c.message.contains("localMailbox"), "says what to set: {}", c.message);
    assert!(sim.applied_writes().await.is_empty(), "no action without a delivered notice");
    // Notices are files `<n>-<recipient>.json`, anywhere under the --mailbox-dir folder.
    fn notices_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
        entries
            .flatten()
            .flat_map(|e| {
                let p = e.path();
                if p.is_dir() { notices_under(&p) } else { vec![p] }
            })
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect()
    }
    let mail = notices_under(mailbox.path());
    assert!(mail.is_empty(), "nothing dropped into a folder nobody asked for: {mail:?}");
    let event = wait_event(&client, &ns, "NoticeDeliveryUnavailable", 20).await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
}

/// Onboarding into Jira Service Management, which has one seat left (the generated organization's
/// limit): the operator's first run adds one newcomer, Atlassian refuses the next, and the rest wait
/// without a write; the policy carries ProductUserLimitReached (with one Warning Event); the next
/// run tries nothing into the product.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_stops_at_a_products_user_limit_and_says_so() {
    let Some((client, ns, sim, mailbox)) = scenario("e2e-limit", 240, 21).await else { return };
    // Four new support people (in no group that grants a product).
    let snap = sim.snapshot(T0).await;
    let support = snap.find_group("dept-support").expect("dept-support").1.id.clone();
    let mut config = ClientConfig::new("sim-org", &sim.url).unwrap();
    config.budget.org_requests_per_minute = 100_000;
    let atlassian =
        AtlassianClient::new(config, &Credentials { org_api_key: ApiSecret::new(API_KEY), site_user: None }).unwrap();
    for i in 0..4 {
        let invitation = seatwarden::atlassian::Invitation {
            email: format!("support.hire.{i}@acme.example"),
            groups: vec![support.clone()],
            send_notification: false,
            ..Default::default()
        };
        assert!(atlassian.invite(&invitation).await.outcome.is_converged(), "invited");
    }
    let jsm = snap.find_group("jira-servicemanagement-users").expect("the JSM group").1.id.clone();
    let jsm_adds = || async {
        let v = sim.control(reqwest::Method::GET, "events", None).await;
        let adds: Vec<String> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["operation"] == "group.membership.add" && e["group_id"] == jsm.as_str())
            .map(|e| e["outcome"]["result"].as_str().unwrap_or_default().to_owned())
            .collect();
        adds
    };
    let mut objects = organization(&sim);
    objects.push(json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": "welcome"},
        "spec": {"organizationRef": {"name": "acme"}, "mode": "Enforce", "schedule": {"interval": "24h"}, "rules": [],
            "onboarding": [{"name": "support-gets-jsm", "selector": {"groups": ["dept-support"], "accountTypes": ["Managed"]},
                            "groups": ["jira-servicemanagement-users"]}],
            "caps": {"maxActionsPerRun": 10000, "maxActionPercent": 100}}}));
    apply(&client, &ns, objects).await;

    let _op = OperatorProc::start(&ns, &sim, mailbox.path(), &[]);
    let t0: Timestamp = T0.parse().unwrap();
    let first = wait_status(&client, &ns, "welcome", 90, |s| s.last_run_time.as_ref().is_some_and(|t| t.0 == t0)).await;
    let adds = jsm_adds().await;
    assert_eq!(adds.iter().filter(|r| *r == "applied").count(), 1, "one seat was left: {adds:?}");
    assert_eq!(adds.iter().filter(|r| *r == "refused").count(), 1, "one refusal, no retry: {adds:?}");
    assert_eq!(adds.len(), 2, "{adds:?}");
    let c = condition(&first, "ProductUserLimitReached").expect("condition");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "RefusedAtUserLimit"));
    assert!(c.message.contains("Jira Service Management"), "{}", c.message);
    let actions = audit_actions(&client, &ns).await;
    let deferred = actions.iter().filter(|a| a.outcome == ActionOutcome::Deferred).count();
    assert!(deferred >= 2, "the other newcomers wait: {actions:?}");
    assert!(
        actions.iter().filter(|a| a.outcome == ActionOutcome::Deferred).all(|a| a
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("at its user limit"))
    );

    // The next run: nothing into the full product, and the status still says why.
    run_now(&client, &ns, "welcome", "again").await;
    let again = wait_status(&client, &ns, "welcome", 60, |s| s.last_handled_run_now.as_deref() == Some("again")).await;
    assert_eq!(jsm_adds().await.len(), 2, "no write into the full product");
    let c = condition(&again, "ProductUserLimitReached").unwrap();
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "HeldAtUserLimit"));
    assert!(c.message.contains("Atlassian refused at"), "{}", c.message);
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    let list = events.list(&ListParams::default()).await.unwrap();
    let warned = list.items.iter().filter(|e| e.reason.as_deref() == Some("ProductUserLimitReached")).count();
    assert_eq!(warned, 1, "one Warning Event, not one per run");
}

/// The organization shapes of issue 12 end to end: a two-directory simulator (served in process,
/// over real HTTP) whose directories share accounts and group names, a ProtectedUser by a group only
/// the second directory has, an account idle in one directory and active in the other, and accounts
/// idle in both. Managed accounts are deactivated (once per account), external ones suspended (in
/// each directory, the event naming it), caps count accounts, and the simulator's event log, the
/// audit trail and the ledger agree exactly. Mapping conditions are written on the real API server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_directories_accounts_are_judged_once_and_written_per_directory() {
    use seatwarden::sim::{
        SimConfig, Simulator,
        generate::{GenerateSpec, generate},
        state::{Activity, Membership as SimMembership, SimAccountType, SimGroup, SimManagementSource, SimState},
    };
    let Some(client) = support::kube_client().await else { return };
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "e2e-two-dirs").await;
    let mailbox = tempfile::tempdir().unwrap();
    let t0: Timestamp = T0.parse().unwrap();
    let days = |n: i64| t0.checked_sub(SignedDuration::from_hours(24 * n)).unwrap();
    let mut state =
        generate(&GenerateSpec { users: 400, seed: 12, now: t0, ..GenerateSpec::default() }.two_directories());

    // Accounts in both directories, plain people with activity in each, no API token.
    let token_owners: BTreeSet<String> = state.api_tokens.iter().map(|t| t.account_id.clone()).collect();
    let plain = |s: &SimState, i: usize| {
        let u = &s.users[i];
        u.account_type == SimAccountType::Atlassian
            && u.membership == SimMembership::Active
            && !u.org_admin
            && u.management_source != Some(SimManagementSource::Synced)
            && !u.activity.is_empty()
            && u.groups
                .iter()
                .all(|g| s.groups[*g as usize].site_admin_of.is_none() && !s.groups[*g as usize].idp_synced)
            && s.api_key_owner.as_deref() != Some(u.account_id.as_str())
    };
    let shared: Vec<(String, bool)> = state
        .users
        .iter()
        .enumerate()
        .filter(|(_, u)| u.directory == 0 && !token_owners.contains(&u.account_id))
        .filter_map(|(i, u)| Some((i, state.entry_in(&u.account_id, 1)?)))
        .filter(|(a, b)| plain(&state, *a) && plain(&state, *b))
        .map(|(a, _)| (state.users[a].account_id.clone(), state.users[a].managed))
        .collect();
    let managed: Vec<&String> = shared.iter().filter(|(_, m)| *m).map(|(id, _)| id).collect();
    let external: Vec<&String> = shared.iter().filter(|(_, m)| !*m).map(|(id, _)| id).collect();
    assert!(managed.len() >= 3 && !external.is_empty(), "shared accounts of both kinds: {shared:?}");
    let (protected, split, idle_both, idle_external) =
        (managed[0].clone(), managed[1].clone(), managed[2].clone(), external[0].clone());
    let set_activity = |s: &mut SimState, id: &str, directory: u16, at: Timestamp| {
        let i = s.entry_in(id, directory).unwrap();
        let u = &mut s.users[i];
        u.added_to_org = u.added_to_org.min(days(900));
        for a in &mut u.activity {
            a.last_active = at;
        }
        if u.activity.is_empty() {
            u.activity.push(Activity { instance: 0, last_active: at });
        }
    };
    for id in [&protected, &idle_both, &idle_external] {
        set_activity(&mut state, id, 0, days(300));
        set_activity(&mut state, id, 1, days(280));
    }
    set_activity(&mut state, &split, 0, days(300));
    set_activity(&mut state, &split, 1, days(2));
    // A group only the second directory has; the protected account is in it there.
    state.groups.push(SimGroup {
        id: "grp-acquired-vips".into(),
        name: "acquired-vips".into(),
        description: "VIPs of the acquired company".into(),
        directory: 1,
        idp_synced: false,
        locked: false,
        grants: vec![],
        site_admin_of: None,
    });
    let vips = (state.groups.len() - 1) as u32;
    let pi = state.entry_in(&protected, 1).unwrap();
    state.users[pi].groups.push(vips);
    let dir_ids: Vec<String> = state.directories.iter().map(|d| d.id.clone()).collect();

    let sim = Simulator::start_with_state(
        SimConfig { api_key: API_KEY.into(), now: t0, frozen: true, ..SimConfig::default() },
        state,
        t0,
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let url = sim.base_url();

    // The oracle, from a snapshot read over HTTP: accounts idle past 150 days everywhere.
    let snap = {
        let mut config = ClientConfig::new(sim.org_id(), &url).unwrap();
        config.budget.org_requests_per_minute = 100_000;
        let c = AtlassianClient::new(config, &Credentials { org_api_key: ApiSecret::new(API_KEY), site_user: None })
            .unwrap();
        c.snapshot(t0).await.expect("snapshot")
    };
    assert!(snap.incomplete.is_none(), "{:?}", snap.incomplete);
    let vips_idx = snap.groups_named("acquired-vips");
    assert_eq!(vips_idx.len(), 1, "the group exists in one directory only");
    let idle = expected_inactive(&snap, t0, 150, Some("acquired-vips"));
    let is_managed = |id: &String| snap.account(id).is_some_and(|a| a.managed);
    let expect_deactivated: BTreeSet<String> = idle.iter().filter(|id| is_managed(id)).cloned().collect();
    let expect_suspended: BTreeSet<String> = idle.iter().filter(|id| !is_managed(id)).cloned().collect();
    assert!(expect_deactivated.contains(&idle_both) && expect_suspended.contains(&idle_external));
    assert!(!idle.contains(&protected) && !idle.contains(&split), "the oracle agrees with the shapes");
    // Where each suspended account is live: it is suspended there, once per directory.
    let expect_suspends: BTreeSet<(String, String)> = expect_suspended
        .iter()
        .flat_map(|id| {
            let a = snap.account(id).unwrap();
            a.memberships
                .iter()
                .filter(|m| m.is_live())
                .map(|m| (id.clone(), snap.directory_id(m.directory).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        dir_ids.iter().all(|d| expect_suspends.contains(&(idle_external.clone(), d.clone()))),
        "the external account idle in both directories is suspended in both"
    );

    let scoped = |name: &str, kind: &str, action: &str, cap: usize| {
        json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy", "metadata": {"name": name},
            "spec": {"organizationRef": {"name": "acme"}, "mode": "Enforce", "schedule": {"interval": "24h"},
                "scope": {"accountTypes": [kind]},
                "rules": [{"name": "idle", "accountInactivity": {"inactiveFor": "150d"}, "action": action}],
                "caps": {"maxActionsPerRun": cap, "maxActionPercent": 100},
                "newAccountGracePeriod": "14d", "activityLagMargin": "1d"}})
    };
    let mapping = |name: &str, product: &str, groups: Value| {
        json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "GroupLicenseMapping", "metadata": {"name": name},
            "spec": {"organizationRef": {"name": "acme"}, "product": product, "groups": groups}})
    };
    apply(
        &client,
        &ns,
        vec![
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "org-key"}, "stringData": {"api-key": API_KEY}}),
            json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "AtlassianOrganization", "metadata": {"name": "acme"},
                "spec": {"orgId": sim.org_id(), "apiBaseUrl": url,
                    "credentials": {"apiKeySecretRef": {"name": "org-key", "key": "api-key"}},
                    "requestBudget": {"orgRequestsPerMinute": 100000, "concurrency": 4}, "localMailbox": true}}),
            json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "ProtectedUser", "metadata": {"name": "vips"},
                "spec": {"reason": "acquired-company leadership", "groups": ["acquired-vips"]}}),
            // Jira's group name is in both directories and both grant Jira: taken for both.
            mapping("jira", "JiraSoftware", json!([{"name": "jira-software-users"}])),
            // The same name for Confluence: Atlassian says neither grants it: ambiguous, no guess.
            mapping("confluence", "Confluence", json!([{"name": "jira-software-users"}])),
            mapping("pinned", "JiraSoftware", json!([{"name": "jira-software-users", "directory": "no-such-directory"}])),
            scoped("deactivate-managed", "Managed", "Deactivate", 10_000),
            // Capped at exactly the number of accounts: an account in two directories counts once.
            scoped("suspend-external", "External", "Suspend", expect_suspended.len()),
        ],
    )
    .await;

    let _op = OperatorProc::start_at(&ns, &url, mailbox.path(), &[], &[]);
    for p in ["deactivate-managed", "suspend-external"] {
        wait_status(&client, &ns, p, 120, |s| s.last_run_time.as_ref().is_some_and(|t| t.0 == t0)).await;
    }

    // The simulator's event log.
    let events: Vec<seatwarden::sim::SimEvent> =
        sim.events().into_iter().filter(|e| matches!(e.outcome, seatwarden::sim::SimOutcome::Applied)).collect();
    let mut deactivations: BTreeMap<String, usize> = BTreeMap::new();
    let mut suspends: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in &events {
        let account = e.account_id.clone().unwrap_or_default();
        match e.operation.as_str() {
            "user.deactivate" => *deactivations.entry(account).or_default() += 1,
            "user.suspend" => {
                let dir = e.directory_id.clone().expect("a suspension names its directory");
                *suspends.entry((account, dir)).or_default() += 1;
            }
            other => panic!("unexpected write {other}: {e:?}"),
        }
    }
    assert!(deactivations.values().all(|n| *n == 1), "deactivate once per account: {deactivations:?}");
    assert_same(&deactivations.keys().cloned().collect(), &expect_deactivated, "deactivated accounts");
    assert!(suspends.values().all(|n| *n == 1), "each directory suspended once: {suspends:?}");
    let suspended_pairs: BTreeSet<(String, String)> = suspends.keys().cloned().collect();
    assert_eq!(suspended_pairs, expect_suspends, "suspensions, per directory");
    let touched: BTreeSet<&str> = events.iter().filter_map(|e| e.account_id.as_deref()).collect();
    assert!(!touched.contains(protected.as_str()), "protected by a group of the second directory: untouched");
    assert!(!touched.contains(split.as_str()), "active in the other directory: untouched");

    // The audit trail agrees exactly with the event log.
    let audit = audit_actions(&client, &ns).await;
    let applied: Vec<&RunAction> = audit.iter().filter(|a| a.outcome == ActionOutcome::Applied).collect();
    let audit_deact: BTreeMap<String, usize> =
        applied.iter().filter(|a| a.action == "deactivate").fold(BTreeMap::new(), |mut m, a| {
            *m.entry(a.account_id.clone()).or_default() += 1;
            m
        });
    assert_eq!(audit_deact, deactivations, "the audit trail's deactivations are the simulator's");
    let audit_susp: BTreeMap<(String, String), usize> =
        applied.iter().filter(|a| a.action == "suspend").fold(BTreeMap::new(), |mut m, a| {
            *m.entry((a.account_id.clone(), a.directory.clone().unwrap_or_default())).or_default() += 1;
            m
        });
    assert_eq!(audit_susp, suspends, "the audit trail's suspensions are the simulator's, directory for directory");
    assert_eq!(applied.len(), events.len(), "nothing else applied: {applied:?}");
    assert!(audit.iter().all(|a| a.outcome != ActionOutcome::Deferred), "the cap counts accounts: nothing deferred");

    // The ledger agrees too: one deactivation per account, a suspension per directory.
    let store = seatwarden::record::ConfigMapLedgerStore::new(client.clone(), &ns, "acme");
    let ledger = seatwarden::execute::load_ledger(&store, &sim.org_id()).await.unwrap();
    assert_eq!(ledger.writes().count(), 0, "nothing in flight");
    for id in &expect_deactivated {
        let rec = ledger.record(id).unwrap_or_else(|| panic!("ledger record of {id}"));
        let kinds: Vec<_> = rec.taken_out.iter().map(|t| t.kind).collect();
        assert_eq!(kinds, vec![seatwarden::ledger::TakenOutKind::Deactivated], "{id}");
    }
    for id in &expect_suspended {
        let rec = ledger.record(id).unwrap_or_else(|| panic!("ledger record of {id}"));
        let mut dirs: Vec<String> = rec.taken_out.iter().map(|t| t.directory_id.clone()).collect();
        dirs.sort();
        let want: Vec<String> = expect_suspends.iter().filter(|(a, _)| a == id).map(|(_, d)| d.clone()).collect();
        assert_eq!(dirs, want, "{id}: one suspension per directory");
        let mut recorded = rec.suspension.as_ref().expect("suspension").directory_ids.clone();
        recorded.sort();
        assert_eq!(recorded, want, "{id}: the suspension names its directories");
    }
    for id in [&protected, &split] {
        assert!(ledger.record(id).is_none_or(|r| r.taken_out.is_empty()), "{id}: nothing taken");
    }

    // GroupLicenseMapping status, by server-side apply, with conditions and observedGeneration.
    let mappings: Api<GroupLicenseMapping> = Api::namespaced(client.clone(), &ns);
    let ready = |m: &GroupLicenseMapping| {
        m.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned())
    };
    let jira = mappings.get("jira").await.unwrap();
    let c = ready(&jira).expect("jira Ready");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "GroupsResolved"), "{c:?}");
    let st = jira.status.unwrap();
    assert_eq!(st.resolved_group_count, Some(2), "the name in both directories, both granting Jira");
    let resolved_dirs: BTreeSet<String> = st.resolved_groups.iter().filter_map(|g| g.directory.clone()).collect();
    assert_eq!(resolved_dirs, dir_ids.iter().cloned().collect(), "the status names each group's directory");
    let conf = mappings.get("confluence").await.unwrap();
    let c = ready(&conf).expect("confluence Ready");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "AmbiguousGroup"), "{c:?}");
    assert!(c.message.contains(&dir_ids.join(", ")) && c.message.contains("set spec.groups[0].directory"), "{c:?}");
    assert_eq!(c.observed_generation, conf.metadata.generation);
    assert_eq!(conf.status.as_ref().unwrap().resolved_group_count, Some(0), "no guess");
    let pinned = mappings.get("pinned").await.unwrap();
    let c = ready(&pinned).expect("pinned Ready");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "UnknownDirectory"), "{c:?}");
    assert!(c.message.contains("spec.groups[0].directory is \"no-such-directory\""), "{c:?}");

    // Pinned to the directory meant, the ambiguous mapping resolves to that directory's group.
    let fix = mapping("confluence", "Confluence", json!([{"name": "jira-software-users", "directory": dir_ids[1]}]));
    apply(&client, &ns, vec![fix]).await;
    sim.advance(SignedDuration::from_hours(1));
    run_now(&client, &ns, "suspend-external", "pinned").await;
    wait_status(&client, &ns, "suspend-external", 60, |s| s.last_handled_run_now.as_deref() == Some("pinned")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let conf = mappings.get("confluence").await.unwrap();
        if let Some(c) =
            ready(&conf).filter(|c| c.observed_generation == conf.metadata.generation && c.status == "True")
        {
            let st = conf.status.unwrap();
            assert_eq!(
                st.resolved_groups.iter().filter_map(|g| g.directory.clone()).collect::<Vec<_>>(),
                vec![dir_ids[1].clone()]
            );
            assert_eq!(c.reason, "GroupsResolved");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the pinned mapping never became Ready: {:?}", conf.status);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!(
        "figures {ns}: {} deactivations, {} suspensions over {} accounts, {} audit actions",
        deactivations.len(),
        suspends.len(),
        expect_suspended.len(),
        audit.len()
    );
}
