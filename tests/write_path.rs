//! The write path under failure, in process: the engine and executor against the simulator over
//! real HTTP, with the ledger and audit trail in a folder. A failure point is armed at each step
//! of execution; the run stops there as if the process had crashed, a second run (the restarted
//! operator) settles what it left, and then the simulator's event log, the ledger and the audit
//! trail must agree exactly: no lost record, no double write, no duplicate email.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use seatwarden::{
    atlassian::{AtlassianClient, ClientConfig, Credentials, Secret},
    clock::Clock,
    crd::{ActionOutcome, AtlassianOrganization, LifecyclePolicy, ProtectedUser, RunPhase},
    engine::{CurrentPremises, EngineError, OrgInputs, PolicyRun, PremiseSource, RunDeps, run_due_policies},
    execute::{BoxFut, FailPoint, FailPoints, atlassian::ClientWriter, load_ledger},
    ledger::Ledger,
    notify::MailboxNotifier,
    record::{FolderAudit, FolderLedgerStore, RunRecord, SoleWriter, audit::NOTICE},
    sim::{SimConfig, SimHandle, Simulator},
};
use serde_json::{Value, json};

const T0: &str = "2026-11-02T09:00:00Z";

fn policy(rule: Value) -> LifecyclePolicy {
    serde_json::from_value(json!({
        "apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy",
        "metadata": {"name": "sweep", "namespace": "n", "generation": 1},
        "spec": {"organizationRef": {"name": "acme"}, "mode": "Enforce", "rules": [rule],
                 "caps": {"maxActionsPerRun": 10000, "maxActionPercent": 100}}
    }))
    .unwrap()
}

fn suspend_idle() -> Value {
    json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "90d"}, "action": "Suspend"})
}

fn notice_first() -> Value {
    json!({"name": "suspend-idle", "accountInactivity": {"inactiveFor": "90d"}, "action": "Suspend",
           "noticeLeadTimes": ["3d"]})
}

/// A simulated organization, its client, and a folder for the ledger, audit trail and mail.
struct Bed {
    sim: SimHandle,
    org: AtlassianOrganization,
    policies: Vec<LifecyclePolicy>,
    protections: Vec<ProtectedUser>,
    client: AtlassianClient,
    dir: tempfile::TempDir,
    t0: Timestamp,
    /// Writes in flight at once (2 unless a test needs them one at a time).
    concurrency: usize,
}

impl Bed {
    async fn new(rule: Value, retries: u32) -> Bed {
        Bed::with_sim(rule, retries, |_| {}).await
    }

    /// [`Bed::new`] with the simulated organization's shape changed by `shape`.
    async fn with_sim(rule: Value, retries: u32, shape: impl FnOnce(&mut SimConfig)) -> Bed {
        seatwarden::tls::install_crypto_provider();
        let t0: Timestamp = T0.parse().unwrap();
        let mut config = SimConfig { users: 800, seed: 3, now: t0, frozen: true, ..SimConfig::default() };
        shape(&mut config);
        let sim = Simulator::start(config, "127.0.0.1:0").await.unwrap();
        let org: AtlassianOrganization = serde_json::from_value(json!({
            "apiVersion": "seatwarden.io/v1alpha1", "kind": "AtlassianOrganization",
            "metadata": {"name": "acme", "namespace": "n"},
            // The notices go to a folder (MailboxNotifier): the organization asks for that.
            "spec": {"orgId": sim.org_id(), "apiBaseUrl": sim.base_url(), "localMailbox": true,
                     "credentials": {"apiKeySecretRef": {"name": "k", "key": "k"}}}}))
        .unwrap();
        let mut config = ClientConfig::from_spec(&org.spec).unwrap();
        config.budget.org_requests_per_minute = 100_000;
        config.retry.max_attempts = retries;
        config.budget.timeout = std::time::Duration::from_secs(1);
        config.retry.backoff_base = std::time::Duration::from_millis(5);
        config.retry.backoff_cap = std::time::Duration::from_millis(20);
        let client =
            AtlassianClient::new(config, &Credentials { org_api_key: Secret::new(sim.api_key()), site_user: None })
                .unwrap();
        Bed {
            sim,
            org,
            policies: vec![policy(rule)],
            protections: vec![],
            client,
            dir: tempfile::tempdir().unwrap(),
            t0,
            concurrency: 2,
        }
    }

    /// One run of the policy, as the restarted operator does it: a fresh snapshot, then the engine.
    async fn run(
        &self,
        fail: &FailPoints,
        premises: Option<&dyn PremiseSource>,
    ) -> Result<Vec<PolicyRun>, EngineError> {
        self.run_after(fail, premises, || {}).await
    }

    /// [`Bed::run`], calling `after_snapshot` between the snapshot and the engine.
    async fn run_after(
        &self,
        fail: &FailPoints,
        premises: Option<&dyn PremiseSource>,
        after_snapshot: impl FnOnce(),
    ) -> Result<Vec<PolicyRun>, EngineError> {
        let snapshot = self.client.snapshot(self.t0).await.unwrap();
        after_snapshot();
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
            premises,
            fail,
            metrics: None,
            process_dry_run: false,
            concurrency: self.concurrency,
            summary_recipients: None,
        };
        let inputs = OrgInputs {
            organization: &self.org,
            policies: &self.policies,
            protections: &self.protections,
            mappings: &[],
        };
        run_due_policies(&inputs, &["sweep".to_owned()], &snapshot, &deps).await.map(|(_, runs)| runs)
    }

    /// Applied writes in the simulator's event log, per (operation, account).
    fn applied(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for e in self.sim.events() {
            if matches!(e.outcome, seatwarden::sim::SimOutcome::Applied) {
                *out.entry((e.operation.clone(), e.account_id.clone().unwrap_or_default())).or_default() += 1;
            }
        }
        out
    }

    fn records(&self) -> Vec<RunRecord> {
        FolderAudit::new(self.dir.path()).list(Some("sweep")).unwrap()
    }

    async fn ledger(&self) -> Ledger {
        load_ledger(&FolderLedgerStore::new(self.dir.path().join("ledger")), &self.sim.org_id()).await.unwrap()
    }

    fn mail_per_recipient(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        let Ok(mailbox) = MailboxNotifier::new(self.dir.path().join("mail")) else { return out };
        for m in mailbox.messages().unwrap() {
            for to in m.to {
                *out.entry(to).or_default() += 1;
            }
        }
        out
    }
}

/// What a clean run suspends (the same seed makes the same organization), in the order it does.
async fn clean_run() -> (BTreeSet<String>, Vec<String>) {
    let bed = Bed::new(suspend_idle(), 3).await;
    bed.run(&FailPoints::none(), None).await.unwrap();
    let targets: BTreeSet<String> = bed.applied().into_keys().map(|(_, a)| a).collect();
    assert!(targets.len() > 50, "enough targets for several batches of 25: {}", targets.len());
    let order = bed.records()[0].actions.iter().map(|a| a.account_id.clone()).collect();
    (targets, order)
}

async fn clean_targets() -> BTreeSet<String> {
    clean_run().await.0
}

/// The simulator, the ledger and the audit trail agree exactly on `targets`: each suspended once,
/// each recorded Applied once, each suspension in the ledger once, nothing left open anywhere.
async fn assert_agree(bed: &Bed, targets: &BTreeSet<String>) {
    let applied = bed.applied();
    let suspended: BTreeSet<String> = applied.keys().map(|(_, a)| a.clone()).collect();
    assert!(applied.keys().all(|(op, _)| op == "user.suspend"), "only suspensions: {applied:?}");
    let twice: Vec<_> = applied.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "no double write: {twice:?}");
    assert_eq!(&suspended, targets, "every target suspended");

    let records = bed.records();
    let mut recorded: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        assert_ne!(r.phase, Some(RunPhase::Running), "no record left Running: {}", r.run_id);
        for a in r.actions.iter().filter(|a| a.action != NOTICE) {
            assert!(!a.outcome.is_open(), "no action left {:?}: {a:?}", a.outcome);
            if a.outcome == ActionOutcome::Applied {
                *recorded.entry(a.account_id.clone()).or_default() += 1;
            }
        }
    }
    let recorded_twice: Vec<_> = recorded.iter().filter(|(_, n)| **n > 1).collect();
    assert!(recorded_twice.is_empty(), "no write recorded Applied twice: {recorded_twice:?}");
    assert_eq!(&recorded.keys().cloned().collect::<BTreeSet<_>>(), targets, "the audit trail has every write");

    let ledger = bed.ledger().await;
    assert_eq!(ledger.writes().count(), 0, "no write left in flight in the ledger");
    for id in targets {
        let rec = ledger.record(id).unwrap_or_else(|| panic!("ledger record of {id}"));
        assert!(rec.suspension.as_ref().is_some_and(|s| s.by_seatwarden), "{id}: suspension by seatwarden");
        assert_eq!(rec.taken_out.len(), 1, "{id}: the suspension recorded once");
    }
}

async fn crash_then_restart(point: FailPoint, nth: u32) {
    let targets = clean_targets().await;
    let bed = Bed::new(suspend_idle(), 3).await;
    let fail = FailPoints::arm(point, nth);
    let crashed = bed.run(&fail, None).await;
    assert!(fail.fired(), "the failure point {point:?} was reached");
    assert!(crashed.is_err() || point == FailPoint::BeforeAuditWrite, "the run stopped there");
    let before = bed.applied().len();
    assert!(before < targets.len() || point == FailPoint::BeforeAuditWrite, "crashed mid-run");
    bed.run(&FailPoints::none(), None).await.unwrap();
    assert_agree(&bed, &targets).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_intent_loses_nothing_and_writes_nothing_twice() {
    crash_then_restart(FailPoint::AfterIntent, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_write_loses_nothing_and_writes_nothing_twice() {
    crash_then_restart(FailPoint::AfterWrite, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_ledger_save_loses_nothing_and_writes_nothing_twice() {
    crash_then_restart(FailPoint::AfterLedgerSave, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_the_closing_audit_write_loses_nothing_and_writes_nothing_twice() {
    crash_then_restart(FailPoint::BeforeAuditWrite, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_notices_sends_none_twice_and_loses_no_record() {
    let bed = Bed::new(notice_first(), 3).await;
    let fail = FailPoints::arm(FailPoint::BetweenNotices, 3);
    assert!(bed.run(&fail, None).await.is_err());
    assert!(fail.fired());
    assert_eq!(bed.mail_per_recipient().len(), 3, "three notices out before the crash");
    bed.run(&FailPoints::none(), None).await.unwrap();

    let mail = bed.mail_per_recipient();
    assert!(mail.len() > 50, "every idle user warned: {}", mail.len());
    let twice: Vec<_> = mail.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "no duplicate email: {twice:?}");
    let ledger = bed.ledger().await;
    let mut in_audit: BTreeMap<String, usize> = BTreeMap::new();
    for r in bed.records() {
        assert_ne!(r.phase, Some(RunPhase::Running));
        for a in r.actions.iter().filter(|a| a.action == NOTICE && a.outcome == ActionOutcome::Applied) {
            *in_audit.entry(a.email.clone().unwrap_or_default()).or_default() += 1;
        }
    }
    assert_eq!(in_audit, mail, "the audit trail lists every delivered notice once");
    let noticed: usize = ledger.users.values().map(|r| r.notices.len()).sum();
    assert_eq!(noticed, mail.len(), "the ledger holds every delivered notice once");
    assert!(bed.applied().is_empty(), "nothing acted on before the lead time");
}

/// A premise source the test changes mid-run: it flips after `after` re-reads.
struct Changing {
    after: std::sync::atomic::AtomicU32,
    change: Box<dyn Fn(&mut CurrentPremises) + Send + Sync>,
    base: CurrentPremises,
}

impl PremiseSource for Changing {
    fn current<'a>(&'a self, _policy: &'a str) -> BoxFut<'a, Result<CurrentPremises, String>> {
        Box::pin(async move {
            let mut now = self.base.clone();
            if self.after.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                self.after.store(0, std::sync::atomic::Ordering::SeqCst);
                (self.change)(&mut now);
            }
            Ok(now)
        })
    }
}

async fn stop_when(change: impl Fn(&mut CurrentPremises) + Send + Sync + 'static, reason: &str) -> (Bed, PolicyRun) {
    let bed = Bed::new(suspend_idle(), 3).await;
    let source = Changing {
        after: 2.into(),
        change: Box::new(change),
        base: CurrentPremises { policy: Some(bed.policies[0].clone()), protections: vec![], ..Default::default() },
    };
    let runs = bed.run(&FailPoints::none(), Some(&source)).await.unwrap();
    let run = runs.into_iter().next().unwrap();
    assert!(run.report.stopped.as_deref().is_some_and(|s| s.contains(reason)), "{:?}", run.report.stopped);
    assert_eq!(run.report.applied, 50, "two batches of 25 before the change");
    assert_eq!(bed.applied().len(), 50, "nothing written after the change");
    let record = run.record.clone().unwrap();
    let stopped: Vec<_> = record.actions.iter().filter(|a| a.outcome != ActionOutcome::Applied).collect();
    assert!(!stopped.is_empty());
    assert!(
        stopped.iter().all(|a| matches!(a.outcome, ActionOutcome::Deferred | ActionOutcome::Skipped)
            && a.error.as_deref().is_some_and(|e| !e.is_empty())),
        "the rest recorded Deferred or Skipped with the reason"
    );
    assert_eq!(bed.ledger().await.writes().count(), 0, "nothing left in flight");
    (bed, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_the_policy_to_paused_stops_the_run_in_progress() {
    let (_, run) = stop_when(
        |p| p.policy.as_mut().unwrap().spec.mode = seatwarden::crd::PolicyMode::Paused,
        "mode changed to Paused",
    )
    .await;
    let record = run.record.unwrap();
    assert!(
        record.actions.iter().filter(|a| a.outcome == ActionOutcome::Deferred).all(|a| a
            .error
            .as_deref()
            .unwrap()
            .contains("Paused"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_policy_stops_the_run_in_progress() {
    stop_when(|p| p.policy = None, "the policy was deleted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setting_the_process_dry_run_flag_stops_the_run_in_progress() {
    stop_when(|p| p.process_dry_run = true, "dry-run flag").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_stops_the_run_in_progress() {
    stop_when(|p| p.shutting_down = true, "shutting down").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_protected_user_is_skipped_and_the_run_stops() {
    // Protect the last user the run would reach.
    let (_, order) = clean_run().await;
    let bed = Bed::new(suspend_idle(), 3).await;
    let snapshot = bed.client.snapshot(bed.t0).await.unwrap();
    let email = |id: &str| snapshot.account(id).and_then(|u| u.email.clone()).unwrap();
    let victim = order.last().unwrap().clone();
    let protection: ProtectedUser = serde_json::from_value(json!({
        "apiVersion": "seatwarden.io/v1alpha1", "kind": "ProtectedUser",
        "metadata": {"name": "vip", "namespace": "n"},
        "spec": {"emails": [email(&victim)], "reason": "board member"}}))
    .unwrap();
    drop(bed);
    let (bed, run) = stop_when(move |p| p.protections = vec![protection.clone()], "ProtectedUsers changed").await;
    let record = run.record.unwrap();
    let a = record.actions.iter().find(|a| a.account_id == victim).unwrap();
    assert_eq!(a.outcome, ActionOutcome::Skipped, "{a:?}");
    assert!(a.error.as_deref().unwrap().contains("ProtectedUser vip"), "{a:?}");
    assert!(!bed.applied().contains_key(&("user.suspend".to_owned(), victim)));
}

/// A bed whose writes are affected by `faults`, limited to `cap` actions per run.
async fn unknown_bed(faults: &str, cap: i32) -> Bed {
    let mut bed = Bed::new(suspend_idle(), 2).await;
    bed.policies[0].spec.caps.max_actions_per_run = cap;
    bed.sim.set_faults(seatwarden::sim::Faults::parse(faults).unwrap());
    bed
}

/// Unknown outcomes: run 1's writes get no answer; run 2 settles them from a fresh read.
async fn unknown_then_settled(faults: &str) {
    // The write lands and loses its answer; the outage that follows swallows the client's re-reads.
    let bed = unknown_bed(faults, 1).await;
    let runs = bed.run(&FailPoints::none(), None).await.unwrap();
    let report = &runs[0].report;
    assert_eq!(report.unknown, 1, "the write went unanswered: {report:?}");
    assert_eq!((report.applied, report.failed), (0, 0));
    let first = runs[0].record.clone().unwrap();
    assert_eq!(first.counts()[5], 1, "the audit trail shows it Unknown");
    let ledger = bed.ledger().await;
    assert_eq!(ledger.in_flight().count(), 1, "the ledger keeps its intent open");
    let landed: BTreeSet<String> = bed.applied().into_keys().map(|(_, a)| a).collect();
    assert_eq!(landed.len(), 1, "the write landed");

    // The outage ends; the next run re-reads those users first and settles each write.
    bed.sim.set_faults(seatwarden::sim::Faults::none());
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    bed.run(&FailPoints::none(), None).await.unwrap();
    let settled = bed.records().into_iter().find(|r| r.run_id == first.run_id).unwrap();
    let was_unknown: BTreeSet<&str> =
        first.actions.iter().filter(|a| a.outcome == ActionOutcome::Unknown).map(|a| a.account_id.as_str()).collect();
    for a in settled.actions.iter().filter(|a| was_unknown.contains(a.account_id.as_str())) {
        let want = if landed.contains(&a.account_id) { ActionOutcome::Applied } else { ActionOutcome::Failed };
        assert_eq!(a.outcome, want, "{a:?}");
        assert!(a.error.as_deref().unwrap().contains("sent, no answer"), "the record keeps why: {a:?}");
    }
    let ledger = bed.ledger().await;
    assert_eq!(ledger.writes().count(), 0, "nothing left open");
    for id in &landed {
        assert!(ledger.record(id).unwrap().suspension.as_ref().is_some_and(|s| s.by_seatwarden), "{id}");
    }
    // The simulator, the ledger and the audit trail agree: each landed write once, recorded once.
    let applied = bed.applied();
    assert!(applied.values().all(|n| *n == 1), "no double write: {applied:?}");
    let mut recorded: BTreeMap<String, usize> = BTreeMap::new();
    for r in bed.records() {
        for a in r.actions.iter().filter(|a| a.outcome == ActionOutcome::Applied) {
            *recorded.entry(a.account_id.clone()).or_default() += 1;
        }
    }
    let in_sim: BTreeMap<String, usize> = applied.into_iter().map(|((_, a), n)| (a, n)).collect();
    assert_eq!(recorded, in_sim, "the audit trail's Applied writes are the simulator's, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_is_dropped_is_unknown_until_the_next_run_settles_it() {
    unknown_then_settled("drop-after-write=1,outage=5s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_answered_5xx_after_applying_is_unknown_until_the_next_run_settles_it() {
    unknown_then_settled("500-after-write=1,outage=5s").await;
}

/// Re-reads without activity data, as the v2 fallback returns them.
struct NoActivityOnReread<'a>(ClientWriter<'a>);

impl seatwarden::execute::DirectoryWriter for NoActivityOnReread<'_> {
    fn reread<'a>(
        &'a self,
        d: &'a str,
        id: &'a str,
    ) -> BoxFut<'a, Result<Option<seatwarden::execute::FreshRead>, String>> {
        Box::pin(async move {
            Ok(self.0.reread(d, id).await?.map(|mut f| {
                f.user.product_access.clear();
                f.activity_known = false;
                f
            }))
        })
    }
    fn write<'a>(&'a self, a: &'a seatwarden::policy::PlannedAction) -> BoxFut<'a, seatwarden::execute::WriteOutcome> {
        self.0.write(a)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_read_without_activity_data_defers_the_action_and_says_why() {
    let bed = Bed::new(suspend_idle(), 3).await;
    let snapshot = bed.client.snapshot(bed.t0).await.unwrap();
    let writer = NoActivityOnReread(ClientWriter::new(&bed.client, &snapshot));
    let ledger = FolderLedgerStore::new(bed.dir.path().join("ledger"));
    let audit = FolderAudit::new(bed.dir.path());
    let mailbox = MailboxNotifier::new(bed.dir.path().join("mail")).unwrap();
    let clock = Clock::manual(bed.t0);
    let fail = FailPoints::none();
    let deps = RunDeps {
        directory: &writer,
        ledger_store: &ledger,
        audit: &audit,
        notifier: &mailbox,
        clock: &clock,
        fence: &SoleWriter,
        premises: None,
        fail: &fail,
        metrics: None,
        process_dry_run: false,
        concurrency: 2,
        summary_recipients: None,
    };
    let inputs = OrgInputs { organization: &bed.org, policies: &bed.policies, protections: &[], mappings: &[] };
    let (_, runs) = run_due_policies(&inputs, &["sweep".to_owned()], &snapshot, &deps).await.unwrap();
    assert!(bed.applied().is_empty(), "no write on a guess");
    let record = runs[0].record.as_ref().unwrap();
    assert!(!record.actions.is_empty());
    for a in &record.actions {
        assert_eq!(a.outcome, ActionOutcome::Deferred, "{a:?}");
        assert!(a.error.as_deref().unwrap().contains("no activity data"), "{a:?}");
    }
    assert_eq!(runs[0].report.deferred as usize, record.actions.len());
}

/// A ledger record ends only when Atlassian shows the account gone: its user-details lookup
/// answers 404 in every directory. A lookup that fails keeps the record; an account seatwarden
/// removed from the directory keeps it (re-invitation restores from it) and is not looked up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_ends_when_the_lookup_answers_404_and_only_then() {
    use seatwarden::ledger::{TakenOut, TakenOutKind, UserRecord};
    let mut bed = Bed::new(suspend_idle(), 2).await;
    bed.policies[0].spec.rules.clear(); // nothing to plan: the lookups are the only calls after the listing
    let store = FolderLedgerStore::new(bed.dir.path().join("ledger"));
    let mut ledger = Ledger::new(bed.sim.org_id());
    let remembered =
        |email: &str| UserRecord { email: Some(email.into()), first_seen: Some(bed.t0), ..Default::default() };
    ledger.users.insert("gone-account".into(), remembered("gone@example.com"));
    let mut removed = remembered("removed@example.com");
    removed.taken_out.push(TakenOut {
        kind: TakenOutKind::RemovedFromDirectory,
        policy: "sweep".into(),
        rule: "never".into(),
        at: bed.t0,
        directory_id: bed.sim.directory_ids()[0].clone(),
    });
    ledger.users.insert("removed-account".into(), removed);
    seatwarden::execute::save_ledger(&store, &mut ledger).await.unwrap();
    let lookups = |bed: &Bed, id: &str| {
        bed.sim.request_log().iter().filter(|r| r.method == "GET" && r.path.ends_with(&format!("/users/{id}"))).count()
    };

    // Run 1: every lookup answers 500 (after the listing): no answer, so the record is kept.
    let sim = &bed.sim;
    bed.run_after(&FailPoints::none(), None, || sim.set_faults(seatwarden::sim::Faults::parse("500=1").unwrap()))
        .await
        .unwrap();
    assert!(lookups(&bed, "gone-account") >= 1, "the absent account was looked up");
    let l = bed.ledger().await;
    assert!(l.record("gone-account").is_some(), "a failed lookup is no answer: the record stays");

    // Run 2: the lookup answers 404 in the directory: the record ends; the removed one stays.
    bed.sim.set_faults(seatwarden::sim::Faults::none());
    let log_before = bed.sim.request_log().len();
    bed.run(&FailPoints::none(), None).await.unwrap();
    let l = bed.ledger().await;
    assert!(l.record("gone-account").is_none(), "404: Atlassian shows the account gone");
    assert!(l.record("removed-account").is_some(), "what seatwarden removed stays for re-invitation");
    assert_eq!(lookups(&bed, "removed-account"), 0, "and is never looked up");
    let log = bed.sim.request_log();
    let statuses: Vec<u16> = log[log_before..]
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/users/gone-account"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![404], "one lookup per directory read, answered 404");
}

/// Applied suspensions in the simulator's event log, per (account, directory).
fn suspended_pairs(bed: &Bed) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for e in bed.sim.events() {
        if e.operation == "user.suspend" && matches!(e.outcome, seatwarden::sim::SimOutcome::Applied) {
            let key = (e.account_id.clone().unwrap_or_default(), e.directory_id.clone().unwrap_or_default());
            *out.entry(key).or_default() += 1;
        }
    }
    out
}

/// Two directories sharing accounts: a crash between the two suspensions of one account (one in
/// each directory) is settled write by write, so the audit trail and the ledger agree with the
/// simulator directory for directory: no write lost, none twice, none recorded for the wrong one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_an_accounts_two_directory_writes_is_settled_per_directory() {
    let shape = |c: &mut SimConfig| {
        c.directories = 2;
        c.shared_accounts = 0.3;
    };
    let clean = Bed::with_sim(suspend_idle(), 3, shape).await;
    clean.run(&FailPoints::none(), None).await.unwrap();
    let all = suspended_pairs(&clean);
    let per_account = |pairs: &BTreeMap<(String, String), usize>| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for (a, _) in pairs.keys() {
            *m.entry(a.clone()).or_default() += 1;
        }
        m
    };
    let twice: BTreeSet<String> = per_account(&all).into_iter().filter(|(_, n)| *n == 2).map(|(a, _)| a).collect();
    assert!(!twice.is_empty(), "accounts idle in both directories are suspended in both: {all:?}");
    // The run stops with the first batch's intents recorded (both directories' suspensions of the
    // account among them) and nothing sent; then one of the two lands, as if the crashed process
    // had sent it just before dying.
    let order: Vec<(String, String)> = clean.records()[0]
        .actions
        .iter()
        .map(|a| (a.account_id.clone(), a.directory.clone().unwrap_or_default()))
        .collect();
    let first_pair = order.iter().position(|(a, _)| twice.contains(a)).expect("a two-directory account");
    assert!(first_pair + 1 < 25, "in the first batch");
    let (account, directory) = order[first_pair].clone();
    let bed = Bed::with_sim(suspend_idle(), 3, shape).await;
    let fail = FailPoints::arm(FailPoint::AfterIntent, 1);
    assert!(bed.run(&fail, None).await.is_err() && fail.fired(), "crashed after the intents");
    assert!(suspended_pairs(&bed).is_empty(), "nothing sent");
    bed.sim.with_state_mut(|s| {
        let d = s.directory_idx(&directory).unwrap();
        let result = s.suspend(Some(d), &account).map(|o| ((), o));
        s.record_result(bed.t0, "user.suspend", "admin-v2", Some(&account), None, result).unwrap();
        s.name_directory_of_last_event(Some(d));
    });
    assert_eq!(per_account(&suspended_pairs(&bed)).get(&account), Some(&1), "{account} is half done");
    bed.run(&FailPoints::none(), None).await.unwrap();
    let after = suspended_pairs(&bed);
    assert!(after.values().all(|n| *n == 1), "no directory suspended twice: {after:?}");
    assert_eq!(after.keys().collect::<Vec<_>>(), all.keys().collect::<Vec<_>>(), "every directory suspended");
    let mut recorded: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in bed.records() {
        for a in r.actions.iter().filter(|a| a.action != NOTICE) {
            assert!(!a.outcome.is_open(), "no action left {:?}: {a:?}", a.outcome);
            if a.outcome == ActionOutcome::Applied {
                *recorded.entry((a.account_id.clone(), a.directory.clone().unwrap_or_default())).or_default() += 1;
            }
        }
    }
    assert_eq!(recorded, after, "the audit trail records each directory's write Applied once");
    let ledger = bed.ledger().await;
    assert_eq!(ledger.writes().count(), 0, "nothing left in flight");
    for account in &twice {
        let rec = ledger.record(account).unwrap();
        let mut dirs = rec.suspension.as_ref().unwrap().directory_ids.clone();
        dirs.sort();
        let want: Vec<String> = after.keys().filter(|(a, _)| a == account).map(|(_, d)| d.clone()).collect();
        assert_eq!(dirs, want, "{account}: the ledger's suspension names both directories");
        assert_eq!(rec.taken_out.len(), 2, "{account}: one suspension per directory");
    }
}
