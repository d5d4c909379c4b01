//! A full run of the operator's path on a 100,000-user simulated organization: snapshot through the
//! real client over HTTP, plan, execute (with the re-read before each destructive write), record.
//! Reports Atlassian calls against the minimum (pages needed + writes + one re-read per destructive
//! write), wall time against the floor the request budget allows, and resident memory.
//!
//! Run: `cargo bench --bench reconcile` (release). `SEATWARDEN_BENCH_USERS` changes the size. Under
//! `cargo test` it runs on 2,000 users as a smoke check.

use std::{sync::Arc, time::Instant};

use jiff::Timestamp;
use seatwarden::{
    atlassian::{AtlassianClient, ClientConfig, Credentials, NoopObserver, Secret},
    clock::Clock,
    crd::*,
    engine::{OrgInputs, RunDeps, run_due_policies},
    execute::atlassian::ClientWriter,
    notify::MailboxNotifier,
    record::{FolderAudit, FolderLedgerStore},
    sim::{SimConfig, Simulator},
};
use serde_json::json;

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let users: u32 = std::env::var("SEATWARDEN_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench_mode { 100_000 } else { 2_000 });
    seatwarden::tls::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let t0: Timestamp = "2026-11-02T09:00:00Z".parse().unwrap();
        let before_sim = rss_kib("VmRSS:");
        let sim = Simulator::start(SimConfig { users, seed: 7, now: t0, frozen: true, ..SimConfig::default() }, "127.0.0.1:0")
            .await
            .unwrap();
        let with_sim = rss_kib("VmRSS:");

        let org: AtlassianOrganization = serde_json::from_value(json!({"apiVersion": "seatwarden.io/v1alpha1",
            "kind": "AtlassianOrganization", "metadata": {"name": "acme", "namespace": "bench"},
            "spec": {"orgId": sim.org_id(), "apiBaseUrl": sim.base_url(),
                "credentials": {"apiKeySecretRef": {"name": "k", "key": "k"}},
                "requestBudget": {"orgRequestsPerMinute": 12000, "concurrency": 4}}}))
        .unwrap();
        let policy: LifecyclePolicy = serde_json::from_value(json!({"apiVersion": "seatwarden.io/v1alpha1",
            "kind": "LifecyclePolicy", "metadata": {"name": "sweep", "namespace": "bench", "generation": 1},
            "spec": {"organizationRef": {"name": "acme"}, "mode": "Enforce",
                "rules": [{"name": "suspend-idle", "accountInactivity": {"inactiveFor": "120d"}, "action": "Suspend"}],
                "caps": {"maxActionsPerRun": 500, "maxActionPercent": 100}}}))
        .unwrap();
        let config = ClientConfig::from_spec(&org.spec).unwrap();
        let rpm = config.budget.org_requests_per_minute;
        let client = AtlassianClient::with_observer(
            config,
            &Credentials { org_api_key: Secret::new(sim.api_key()), site_user: None },
            Arc::new(NoopObserver),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ledger = FolderLedgerStore::new(dir.path().join("ledger"));
        let audit = FolderAudit::new(dir.path());
        let mailbox = MailboxNotifier::new(dir.path().join("mail")).unwrap();
        let clock = Clock::manual(t0);
        let leader = || true;

        let calls_before = sim.request_count();
        let started = Instant::now();
        let snapshot = client.snapshot(t0).await.unwrap();
        let snapshot_secs = started.elapsed().as_secs_f64();
        let snapshot_calls = sim.request_count() - calls_before;
        let writer = ClientWriter::new(&client, &snapshot);
        let deps = RunDeps {
            directory: &writer,
            ledger_store: &ledger,
            audit: &audit,
            notifier: &mailbox,
            clock: &clock,
            is_leader: &leader,
            metrics: None,
            process_dry_run: false,
            concurrency: 4,
            summary_recipients: None,
        };
        let policies = vec![policy];
        let inputs = OrgInputs { organization: &org, policies: &policies, protections: &[], mappings: &[] };
        let (_plan, runs) = run_due_policies(&inputs, &["sweep".to_owned()], &snapshot, &deps).await.unwrap();
        let total_secs = started.elapsed().as_secs_f64();
        let calls = sim.request_count() - calls_before;
        let report = &runs[0].report;
        let writes = (report.applied + report.failed) as u64;
        let directories = snapshot.directories.len() as u64;
        let groups = snapshot.groups.len() as u64;
        // The least a complete run can do: list directories, every page of users (100 per page) per
        // directory, every page of groups (100 per page) and each group's role assignments, then one
        // re-read and one write per destructive action.
        let user_pages = (snapshot.entries().count() as u64).div_ceil(100).max(1);
        let group_pages = groups.div_ceil(100).max(1) * directories;
        let minimum = 1 + user_pages + group_pages + groups + 2 * writes;
        let floor_secs = minimum as f64 * 60.0 / rpm as f64;
        let peak = rss_kib("VmHWM:");
        println!("reconcile benchmark: {} users, one Enforce policy (suspend after 120d, 500 per run)", snapshot.accounts.len());
        println!("  snapshot: {snapshot_calls} calls in {snapshot_secs:.2} s");
        println!("  actions applied: {} (failed {}), {} writes", report.applied, report.failed, writes);
        println!(
            "  Atlassian calls: {calls} vs minimum {minimum} ({} pages of users, {groups} groups) = {:.3}x (target <= 1.05x)",
            user_pages,
            calls as f64 / minimum as f64
        );
        println!(
            "  wall time: {total_secs:.2} s vs budget floor {floor_secs:.2} s at {rpm}/min = {:.3}x (target <= 1.2x)",
            total_secs / floor_secs
        );
        println!(
            "  resident memory: {:.1} MiB peak for the process; simulator alone {:.1} MiB; run path ~{:.1} MiB above it (target < 200 MB)",
            peak as f64 / 1024.0,
            (with_sim - before_sim) as f64 / 1024.0,
            (peak.saturating_sub(with_sim)) as f64 / 1024.0
        );
        assert_eq!(report.failed, 0, "no write fails against the simulator");
        sim.shutdown().await.unwrap();
    });
}
