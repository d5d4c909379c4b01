//! Onboarding at a product's user limit, through the engine and executor against the simulator over
//! real HTTP (ledger and audit trail in a folder): Atlassian's first refusal stops every further
//! write into the product for the run (deferred, not failed again and again), the ledger remembers
//! how many held it, later runs don't try again until seats are freed, and then resume within the
//! room the freed seats make.

use jiff::Timestamp;
use seatwarden::{
    atlassian::{AtlassianClient, ClientConfig, Credentials, Secret},
    clock::Clock,
    controller::status,
    crd::{ActionOutcome, AtlassianOrganization, LifecyclePolicy},
    engine::{OrgInputs, PolicyRun, RunDeps, run_due_policies},
    execute::{FailPoints, atlassian::ClientWriter, load_ledger},
    ledger::Ledger,
    notify::MailboxNotifier,
    product::Product,
    record::{FolderAudit, FolderLedgerStore, SoleWriter},
    sim::{SimConfig, SimHandle, SimOutcome, Simulator},
};
use serde_json::json;

const JSM_GROUP: &str = "jira-servicemanagement-users";

struct Bed {
    sim: SimHandle,
    org: AtlassianOrganization,
    policies: Vec<LifecyclePolicy>,
    client: AtlassianClient,
    dir: tempfile::TempDir,
    t0: Timestamp,
}

impl Bed {
    async fn new() -> Bed {
        seatwarden::tls::install_crypto_provider();
        let t0: Timestamp = "2026-11-02T09:00:00Z".parse().unwrap();
        let sim = Simulator::start(
            SimConfig { users: 800, seed: 3, now: t0, frozen: true, ..SimConfig::default() },
            "127.0.0.1:0",
        )
        .await
        .unwrap();
        let org: AtlassianOrganization = serde_json::from_value(json!({
            "apiVersion": "seatwarden.io/v1alpha1", "kind": "AtlassianOrganization",
            "metadata": {"name": "acme", "namespace": "n"},
            "spec": {"orgId": sim.org_id(), "apiBaseUrl": sim.base_url(), "localMailbox": true,
                     "credentials": {"apiKeySecretRef": {"name": "k", "key": "k"}}}}))
        .unwrap();
        let policy: LifecyclePolicy = serde_json::from_value(json!({
            "apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy",
            "metadata": {"name": "welcome", "namespace": "n", "generation": 1},
            "spec": {"organizationRef": {"name": "acme"}, "mode": "Enforce", "rules": [],
                     "onboarding": [{"name": "support-gets-jsm",
                                     "selector": {"groups": ["dept-support"], "accountTypes": ["Managed"]},
                                     "groups": [JSM_GROUP]}],
                     "caps": {"maxActionsPerRun": 10000, "maxActionPercent": 100}}
        }))
        .unwrap();
        let mut config = ClientConfig::from_spec(&org.spec).unwrap();
        config.budget.org_requests_per_minute = 100_000;
        let client =
            AtlassianClient::new(config, &Credentials { org_api_key: Secret::new(sim.api_key()), site_user: None })
                .unwrap();
        Bed { sim, org, policies: vec![policy], client, dir: tempfile::tempdir().unwrap(), t0 }
    }

    async fn run(&self) -> (seatwarden::policy::Plan, PolicyRun) {
        let snapshot = self.client.snapshot(self.t0).await.unwrap();
        let writer = ClientWriter::new(&self.client, &snapshot);
        let ledger = FolderLedgerStore::new(self.dir.path().join("ledger"));
        let audit = FolderAudit::new(self.dir.path());
        let mailbox = MailboxNotifier::new(self.dir.path().join("mail")).unwrap();
        let clock = Clock::manual(self.t0);
        let deps = RunDeps {
            directory: &writer,
            ledger_store: &ledger,
            audit: &audit,
            notifier: &mailbox,
            clock: &clock,
            fence: &SoleWriter,
            premises: None,
            fail: &FailPoints::none(),
            metrics: None,
            process_dry_run: false,
            concurrency: 4,
            summary_recipients: None,
        };
        let inputs = OrgInputs { organization: &self.org, policies: &self.policies, protections: &[], mappings: &[] };
        let (plan, mut runs) = run_due_policies(&inputs, &["welcome".to_owned()], &snapshot, &deps).await.unwrap();
        (plan, runs.remove(0))
    }

    async fn ledger(&self) -> Ledger {
        load_ledger(&FolderLedgerStore::new(self.dir.path().join("ledger")), &self.sim.org_id()).await.unwrap()
    }

    /// Adds to the JSM group the simulator received: (applied, refused at the license limit).
    fn jsm_adds(&self) -> (usize, usize) {
        let group = self.sim.with_state(|s| s.groups.iter().find(|g| g.name == JSM_GROUP).unwrap().id.clone());
        let adds: Vec<SimOutcome> = self
            .sim
            .events()
            .into_iter()
            .filter(|e| e.operation == "group.membership.add" && e.group_id.as_deref() == Some(group.as_str()))
            .map(|e| e.outcome)
            .collect();
        let refused = adds
            .iter()
            .filter(|o| matches!(o, SimOutcome::Refused { code, .. } if code.as_str() == "ADMIN-409-3"))
            .count();
        (adds.iter().filter(|o| matches!(o, SimOutcome::Applied)).count(), refused)
    }
}

fn outcomes(run: &PolicyRun) -> Vec<(ActionOutcome, String)> {
    let record = run.record.as_ref().expect("the run is recorded");
    record.actions.iter().map(|a| (a.outcome, a.error.clone().unwrap_or_default())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_refusal_at_a_user_limit_stops_onboarding_into_the_product_until_seats_are_freed() {
    let bed = Bed::new().await;
    // Eight support people without a Jira Service Management seat (the onboarding's newcomers), and
    // two seats left on it, no limit declared: Atlassian has the last word.
    let (limit, jsm) = bed.sim.with_state_mut(|s| {
        let g = s.groups.iter().position(|g| g.name == JSM_GROUP).unwrap() as u32;
        let support = s.groups.iter().position(|g| g.name == "dept-support").unwrap() as u32;
        let mut newcomers = 0;
        for u in s.users.iter_mut() {
            if newcomers < 8 && u.is_billable() && u.managed && u.groups.contains(&support) && u.groups.contains(&g) {
                u.groups.retain(|x| *x != g);
                newcomers += 1;
            }
        }
        assert_eq!(newcomers, 8);
        let jsm = s.products.iter().position(|p| p.product.known() == Some(Product::JiraServiceManagement)).unwrap();
        let limit = s.seats_used(jsm as _) + 2;
        s.products[jsm].license_limit = limit;
        (limit, jsm)
    });

    // Run 1: two adds land, the third is refused, every later one is deferred without a write.
    let (plan, run) = bed.run().await;
    let planned = plan.policy("welcome").unwrap().actions.len();
    assert!(planned >= 6, "enough newcomers to pass the limit: {planned}");
    assert_eq!(bed.jsm_adds(), (2, 1), "two applied, one refused, no other attempt");
    let o = outcomes(&run);
    assert_eq!(o.iter().filter(|(x, _)| *x == ActionOutcome::Applied).count(), 2);
    let failed: Vec<&String> = o.iter().filter(|(x, _)| *x == ActionOutcome::Failed).map(|(_, e)| e).collect();
    assert_eq!(failed.len(), 1, "{o:?}");
    assert!(failed[0].contains("refused_license_limit"), "{}", failed[0]);
    let deferred: Vec<&String> = o.iter().filter(|(x, _)| *x == ActionOutcome::Deferred).map(|(_, e)| e).collect();
    assert_eq!(deferred.len(), planned - 3);
    assert!(
        deferred.iter().all(|e| e.starts_with("Jira Service Management answered earlier in this run")),
        "{deferred:?}"
    );
    assert_eq!(run.report.limit_refusals.len(), 1);
    assert_eq!(run.report.limit_refusals[0].products, vec![Product::JiraServiceManagement]);
    // The ledger remembers how many held it when Atlassian refused: exactly the simulator's limit.
    let hit = bed.ledger().await.user_limits.get(&Product::JiraServiceManagement).cloned().expect("remembered");
    assert_eq!(hit.licensed, limit, "seatwarden's count matches Atlassian's");
    let st = status::after_run(&bed.policies[0], &run, bed.t0, bed.t0, false, None);
    let c = st.conditions.iter().find(|c| c.type_ == "ProductUserLimitReached").expect("condition");
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "RefusedAtUserLimit"));
    assert!(c.message.contains("Jira Service Management"), "{}", c.message);

    // Run 2: nothing changed, nothing is tried; the plan says why.
    let (plan, run) = bed.run().await;
    assert_eq!(bed.jsm_adds(), (2, 1), "no write into the full product");
    let p = plan.policy("welcome").unwrap();
    assert!(p.actions.is_empty());
    assert_eq!(p.deferred.len(), planned - 2);
    assert!(p.deferred.iter().all(|d| d.why.contains("Atlassian refused at")), "{:?}", p.deferred[0].why);
    assert!(p.conditions.iter().any(|c| c.reason == "ProductUserLimitReached"));
    let st = status::after_run(&bed.policies[0], &run, bed.t0, bed.t0, false, None);
    let c = st.conditions.iter().find(|c| c.type_ == "ProductUserLimitReached").unwrap();
    assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "HeldAtUserLimit"));
    let degraded = st.conditions.iter().find(|c| c.type_ == "Degraded").unwrap();
    assert_eq!(degraded.status, "False", "a full product is the organization's state, not a fault: {degraded:?}");

    // Three seats freed (people outside the onboarding's selector leave the group): three adds.
    bed.sim.with_state_mut(|s| {
        let g = s.groups.iter().position(|g| g.name == JSM_GROUP).unwrap() as u32;
        let support = s.groups.iter().position(|g| g.name == "dept-support").unwrap() as u32;
        let mut freed = 0;
        for u in s.users.iter_mut() {
            if freed < 3 && u.is_billable() && u.groups.contains(&g) && !u.groups.contains(&support) {
                u.groups.retain(|x| *x != g);
                freed += 1;
            }
        }
        assert_eq!(freed, 3);
        assert_eq!(s.seats_used(jsm as _), limit - 3);
    });
    let (plan, run) = bed.run().await;
    assert_eq!(plan.policy("welcome").unwrap().actions.len(), 3, "room for the three freed seats");
    assert_eq!(bed.jsm_adds(), (5, 1), "three more applied, no refusal");
    assert!(run.report.limit_refusals.is_empty());
}
