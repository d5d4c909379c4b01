//! What `seatwarden plan` shows is what the operator does (invariant 11), end to end: the same
//! simulated organization (`seatwarden sim`, a separate process with a frozen clock), the same
//! manifests — a DryRun and two Enforce policies whose rules compete for the same users, one of
//! them outside its window, one with a name longer than a label value — and the same instant.
//! The writes the operator applies are exactly the actions `plan --format json` marked
//! `appliesNow`.

mod support;

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
};
use seatwarden::crd::{LifecyclePolicy, LifecyclePolicyStatus, RunTrigger};
use serde_json::{Value, json};

/// Monday 09:00 UTC: 10:00 in Berlin.
const T0: &str = "2026-11-02T09:00:00Z";
const API_KEY: &str = "preview-key";
/// Longer than the 63 characters a label value may have.
const ENFORCE: &str = "suspend-accounts-idle-for-ninety-days-across-every-product-of-the-organization";
const DRY_RUN: &str = "report-jira-idle";
const CLOSED: &str = "remove-never-active-after-hours";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_seatwarden")
}

/// `seatwarden sim` as a separate process, killed on drop.
struct SimProc {
    child: Child,
    url: String,
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
        let url = first.split_whitespace().find_map(|w| w.strip_prefix("base_url=")).expect("base_url").to_owned();
        SimProc { child, url }
    }

    /// Every write the simulator applied: (operation, account id, group id).
    async fn applied_writes(&self) -> BTreeSet<(String, String, String)> {
        let v: Value = reqwest::Client::new()
            .get(format!("{}/_sim/events", self.url))
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("control API")
            .json()
            .await
            .expect("events JSON");
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["outcome"]["result"] == "applied")
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
                (s("operation"), s("account_id"), s("group_id"))
            })
            .collect()
    }
}

impl Drop for SimProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The simulator operation a planned action becomes.
fn operation(action: &str) -> &'static str {
    match action {
        "suspend" => "user.suspend",
        "restore" => "user.restore",
        "deactivate" => "user.deactivate",
        "enable" => "user.activate",
        "remove-from-directory" => "user.remove",
        "remove-group" => "group.membership.remove",
        "add-group" => "group.membership.add",
        "invite" => "user.invite",
        other => panic!("unexpected action {other}"),
    }
}

fn manifests(ns: &str, sim: &SimProc) -> Vec<Value> {
    let meta = |name: &str| json!({"name": name, "namespace": ns});
    let policy = |name: &str, mode: &str, schedule: Value, rule: Value, caps: Value| {
        json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy", "metadata": meta(name),
            "spec": {"organizationRef": {"name": "acme"}, "mode": mode, "schedule": schedule, "rules": [rule],
                "caps": caps, "newAccountGracePeriod": "2w", "activityLagMargin": "1d"}})
    };
    vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("org-key"), "stringData": {"api-key": API_KEY}}),
        json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "AtlassianOrganization", "metadata": meta("acme"),
            "spec": {"orgId": "sim-org", "apiBaseUrl": sim.url,
                "credentials": {"apiKeySecretRef": {"name": "org-key", "key": "api-key"}},
                "billing": {"cycle": "Monthly", "currency": "USD",
                    "seatPrices": [{"product": "JiraSoftware", "monthlyPrice": 8.0}, {"product": "Confluence", "monthlyPrice": 6.0}]},
                "requestBudget": {"orgRequestsPerMinute": 100000, "concurrency": 4}}}),
        json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "GroupLicenseMapping", "metadata": meta("jira"),
            "spec": {"organizationRef": {"name": "acme"}, "product": "JiraSoftware", "groups": [{"name": "jira-software-users"}]}}),
        json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "GroupLicenseMapping", "metadata": meta("confluence"),
            "spec": {"organizationRef": {"name": "acme"}, "product": "Confluence", "groups": [{"name": "confluence-users"}]}}),
        json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "ProtectedUser", "metadata": meta("finance"),
            "spec": {"reason": "quarter close", "groups": ["dept-finance"]}}),
        // Enforce, inside its window: suspends the idle, 15 per run (the rest deferred).
        policy(
            ENFORCE,
            "Enforce",
            json!({"interval": "24h", "window": {"start": "08:00", "end": "18:00", "timeZone": "Europe/Berlin"}}),
            json!({"name": "suspend-idle-90d", "accountInactivity": {"inactiveFor": "90d"}, "action": "Suspend"}),
            json!({"maxActionsPerRun": 15, "maxActionPercent": 90}),
        ),
        // DryRun with a gentler action for many of the same users: the Enforce policy goes first,
        // in the preview as in the operator.
        policy(
            DRY_RUN,
            "DryRun",
            json!({"interval": "24h"}),
            json!({"name": "jira-idle-60d", "productInactivity": {"product": "JiraSoftware", "inactiveFor": "60d"},
                "action": "RemoveLicensedGroups"}),
            json!({"maxActionsPerRun": 1000, "maxActionPercent": 90}),
        ),
        // Enforce, but its window is closed at T0: it competes, and writes nothing now.
        policy(
            CLOSED,
            "Enforce",
            json!({"interval": "24h", "window": {"start": "20:00", "end": "22:00", "timeZone": "America/New_York"}}),
            json!({"name": "remove-never-active-30d", "neverActive": {"addedFor": "30d"}, "action": "RemoveFromDirectory"}),
            json!({"maxActionsPerRun": 1000, "maxActionPercent": 90}),
        ),
    ]
}

async fn apply(client: &Client, objects: &[Value]) {
    for obj in objects {
        let (group, version) = match obj["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", "v1"),
        };
        let gvk = GroupVersionKind::gvk(group, version, obj["kind"].as_str().unwrap());
        let lower = gvk.kind.to_lowercase();
        let plural = match lower.strip_suffix('y') {
            Some(stem) => format!("{stem}ies"),
            None => format!("{lower}s"),
        };
        let ar = ApiResource::from_gvk_with_plural(&gvk, &plural);
        let ns = obj["metadata"]["namespace"].as_str().unwrap();
        let name = obj["metadata"]["name"].as_str().unwrap();
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        api.patch(name, &PatchParams::apply("preview-e2e").force(), &Patch::Apply(obj))
            .await
            .unwrap_or_else(|e| panic!("apply {} {name}: {e}", gvk.kind));
    }
}

async fn policy_status(client: &Client, ns: &str, name: &str) -> Option<LifecyclePolicyStatus> {
    Api::<LifecyclePolicy>::namespaced(client.clone(), ns).get(name).await.ok()?.status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_writes_exactly_what_plan_showed() {
    let Some(client) = support::kube_client().await else { return };
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "preview").await;
    let sim = SimProc::start(300, 21);
    let objects = manifests(&ns, &sim);

    // 1. The preview, from the manifests, of the same organization at the same instant.
    let dir = tempfile::tempdir().unwrap();
    let yaml: String =
        objects.iter().map(|o| format!("---\n{}", serde_yaml::to_string(o).unwrap())).collect::<Vec<_>>().join("");
    std::fs::write(dir.path().join("manifests.yaml"), yaml).unwrap();
    let out = Command::new(bin())
        .args(["plan", "-f", dir.path().join("manifests.yaml").to_str().unwrap(), "--now", T0, "--format", "json"])
        .args(["--api-key-env", "PREVIEW_API_KEY"])
        .env("PREVIEW_API_KEY", API_KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "plan failed: {}", String::from_utf8_lossy(&out.stderr));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions = plan["actions"].as_array().unwrap();
    let previewed: BTreeSet<(String, String, String)> = actions
        .iter()
        .filter(|a| a["appliesNow"] == true)
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap_or("").to_owned();
            (operation(&s("action")).to_owned(), s("accountId"), s("group"))
        })
        .collect();
    // The scenario is what it says: the Enforce policy acts and defers, the DryRun policy loses
    // users to it, the closed-window policy plans actions that don't apply now.
    let policy = |name: &str| plan["policies"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
    assert_eq!(previewed.len(), 15, "maxActionsPerRun of the Enforce policy: {previewed:?}");
    assert!(policy(ENFORCE)["deferred"].as_u64().unwrap() > 0);
    assert!(policy(DRY_RUN)["heldBack"].as_u64().unwrap() > 0, "the DryRun policy competes for the same users");
    assert_eq!(policy(CLOSED)["schedule"]["runsNow"], false);
    assert_eq!(policy(CLOSED)["schedule"]["nextRun"], "2026-11-03T01:00:00Z", "20:00 EST");
    // When a policy runs is its schedule, not a condition of its plan (consumers count those).
    for p in plan["policies"].as_array().unwrap() {
        let reasons: Vec<&str> =
            p["conditions"].as_array().unwrap().iter().filter_map(|c| c["reason"].as_str()).collect();
        assert!(!reasons.iter().any(|r| ["RunsNow", "Waiting", "NeverRuns"].contains(r)), "{}: {reasons:?}", p["name"]);
    }
    assert!(actions.iter().any(|a| a["policy"] == CLOSED), "the closed-window policy plans (for later)");
    assert!(actions.iter().filter(|a| a["policy"] != ENFORCE).all(|a| a["appliesNow"] == false));

    // 2. The operator on the same state, at the same (frozen) instant.
    apply(&client, &objects).await;
    let mailbox = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut operator = Command::new(bin())
        .args(["run", "--watch-namespace", &ns, "--metrics-addr", &format!("127.0.0.1:{port}")])
        .args(["--clock-from", &sim.url, "--mailbox-dir", mailbox.path().to_str().unwrap()])
        .env("SEATWARDEN_SIM_API_KEY", API_KEY)
        .env("RUST_LOG", "info,kube=warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(mailbox.path().join("operator.log")).unwrap())
        .spawn()
        .expect("start seatwarden run");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let ran = |s: &Option<LifecyclePolicyStatus>| s.as_ref().is_some_and(|s| s.last_run.is_some());
    loop {
        let (e, d) = (policy_status(&client, &ns, ENFORCE).await, policy_status(&client, &ns, DRY_RUN).await);
        if ran(&e) && ran(&d) {
            let e = e.unwrap();
            let last = e.last_run.as_ref().unwrap();
            assert_eq!(last.trigger, Some(RunTrigger::FirstRun));
            assert!(!last.outside_window);
            assert_eq!(last.applied, 15, "{last:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the policies did not run in time; operator log:\n{}",
            std::fs::read_to_string(mailbox.path().join("operator.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The closed-window policy waits, and its status says until when: 20:00 in New York (EST).
    let closed = loop {
        if let Some(s) = policy_status(&client, &ns, CLOSED).await
            && s.next_run_time.is_some()
        {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "the closed-window policy has no next run time");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(closed.last_run.is_none(), "no run outside the window");
    assert_eq!(closed.next_run_time.unwrap().0, "2026-11-03T01:00:00Z".parse().unwrap(), "20:00 EST");
    let written = sim.applied_writes().await;
    let extra: Vec<_> = written.difference(&previewed).collect();
    let missing: Vec<_> = previewed.difference(&written).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "writes not previewed: {extra:?}; previewed, not written: {missing:?}"
    );

    // 3. The run-now annotation is the one override of the window, and the status says so.
    let patch = json!({"metadata": {"annotations": {"seatwarden.io/run-now": "1"}}});
    Api::<LifecyclePolicy>::namespaced(client.clone(), &ns)
        .patch(CLOSED, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let last = loop {
        if let Some(last) = policy_status(&client, &ns, CLOSED).await.and_then(|s| s.last_run) {
            break last;
        }
        assert!(std::time::Instant::now() < deadline, "the run-now annotation did not start a run");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(last.trigger, Some(RunTrigger::RunNowAnnotation));
    assert!(last.outside_window, "{last:?}");
    let _ = operator.kill();
    let _ = operator.wait();
}
