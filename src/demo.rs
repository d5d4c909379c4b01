//! `seatwarden demo`: a simulated organization run through the example policies over simulated
//! days, on the same path the operator takes (engine → executor → ledger, audit, mailbox), with the
//! simulator's and seatwarden's clocks advanced together, so notices go out, lead times pass and
//! actions land.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use jiff::{SignedDuration, Timestamp};

use crate::{
    atlassian::{AtlassianClient, ClientConfig, Credentials, Secret},
    clock::Clock,
    controller::{schedule, status},
    crd::{ActionOutcome, LifecyclePolicy, PolicyMode},
    engine::{OrgInputs, RunDeps, run_due_policies},
    execute::atlassian::ClientWriter,
    manifests::Manifests,
    metrics::Metrics,
    notify::MailboxNotifier,
    product::Product,
    record::{FolderAudit, FolderLedgerStore, audit::write_csv},
    sim::{SimConfig, Simulator},
};

/// The folder `demo` writes and `audit export` (and the command line's audit) read by default.
pub const DEFAULT_DIR: &str = "./seatwarden-audit";

/// The repository's examples, built into the binary so `demo` runs from any folder.
pub const BUILT_IN_EXAMPLES: [(&str, &str); 5] = [
    ("01-organization.yaml", include_str!("../examples/01-organization.yaml")),
    ("02-license-mappings.yaml", include_str!("../examples/02-license-mappings.yaml")),
    ("03-protected-users.yaml", include_str!("../examples/03-protected-users.yaml")),
    ("04-policy-dryrun.yaml", include_str!("../examples/04-policy-dryrun.yaml")),
    ("05-policy-enforce.yaml", include_str!("../examples/05-policy-enforce.yaml")),
];

/// The built-in examples as manifests (files named `examples/<name>` in errors).
pub fn built_in_examples() -> Result<Manifests, crate::manifests::ManifestError> {
    let mut all = Manifests::default();
    for (name, text) in BUILT_IN_EXAMPLES {
        let m = Manifests::from_str(&Path::new("examples").join(name), text)?;
        all.organizations.extend(m.organizations);
        all.policies.extend(m.policies);
        all.protections.extend(m.protections);
        all.mappings.extend(m.mappings);
        all.ignored.extend(m.ignored);
    }
    Ok(all)
}

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub seed: u64,
    pub users: u32,
    pub days: u32,
    pub out: PathBuf,
    /// A folder of manifests; None: the examples built into the binary.
    pub examples: Option<PathBuf>,
    /// Where the simulated time starts (a Monday morning, so weekday windows are open).
    pub start: Timestamp,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            seed: 7,
            users: 5000,
            days: 30,
            out: PathBuf::from(DEFAULT_DIR),
            examples: None,
            start: "2026-11-02T09:00:00Z".parse().expect("valid instant"),
        }
    }
}

/// What the demo did, for the report and for tests.
#[derive(Clone, Debug, Default)]
pub struct DemoReport {
    pub users_evaluated: usize,
    pub days: u32,
    pub runs: u32,
    pub notices_sent: i64,
    pub applied: i64,
    pub failed: i64,
    pub deferred: i64,
    pub halts: Vec<String>,
    /// Deferred by caps and protected users skipped, in the last run.
    ///
    /// Per `policy/rule`: applied actions and the first few reasons.
    pub by_rule: BTreeMap<String, (i64, Vec<String>)>,
    pub protected_skipped: u64,
    pub seats_reclaimed: BTreeMap<Product, i64>,
    pub projected_monthly_savings: f64,
    pub currency: String,
    pub forced_enforce: Vec<String>,
    pub audit_csv: PathBuf,
    pub mailbox: PathBuf,
    pub ledger: PathBuf,
    pub atlassian_calls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Manifests(#[from] crate::manifests::ManifestError),
    #[error("{0}")]
    Setup(String),
}

/// Runs the demo; `metrics` receives everything the operator would export.
pub async fn run(opts: &DemoOptions, metrics: &Metrics) -> Result<DemoReport, DemoError> {
    run_with_progress(opts, metrics, &|_, _| {}).await
}

/// [`run`], calling `on_day(day, what)` as the simulated days pass (for a progress bar).
pub async fn run_with_progress(
    opts: &DemoOptions,
    metrics: &Metrics,
    on_day: &(dyn Fn(u32, &str) + Sync),
) -> Result<DemoReport, DemoError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| DemoError::Setup(format!("{what}: {e}"));
    let (manifests, source) = match &opts.examples {
        Some(dir) => (Manifests::load(dir)?, dir.display().to_string()),
        None => (built_in_examples()?, "the built-in examples".to_owned()),
    };
    let mut org = manifests
        .organizations
        .first()
        .cloned()
        .ok_or_else(|| DemoError::Setup(format!("{source}: no AtlassianOrganization")))?;
    let sim = Simulator::start(
        SimConfig { users: opts.users, seed: opts.seed, now: opts.start, frozen: true, ..SimConfig::two_directories() },
        "127.0.0.1:0",
    )
    .await
    .map_err(|e| setup("simulator", &e))?;

    // Point the organization at the simulator; everything else is the example's.
    sim.point_organization(&mut org.spec);
    let mut policies: Vec<LifecyclePolicy> = manifests
        .policies
        .iter()
        .filter(|p| p.spec.organization_ref.name == org.metadata.name.clone().unwrap_or_default())
        .cloned()
        .collect();
    let mut forced = vec![];
    for p in &mut policies {
        if p.spec.mode != PolicyMode::Enforce {
            forced.push(format!("{} ({:?} → Enforce)", p.metadata.name.clone().unwrap_or_default(), p.spec.mode));
            p.spec.mode = PolicyMode::Enforce;
        }
        p.metadata.generation = Some(1);
    }
    let protections = manifests.protections.clone();
    let mappings = manifests.mappings.clone();

    let mut config = ClientConfig::from_spec(&org.spec).map_err(|e| setup("organization", &e))?;
    // The simulator runs in this process: the demo lifts Atlassian's pacing so 30 days take seconds.
    config.budget.org_requests_per_minute = 1_000_000;
    config.budget.site_requests_per_minute = 1_000_000;
    config.budget.bitbucket_requests_per_minute = 1_000_000;
    config.api_key_owner = org.spec.credentials.api_key_owner_account_id.clone();
    let credentials = Credentials { org_api_key: Secret::new(sim.api_key()), site_user: None };
    let client = AtlassianClient::with_observer(config, &credentials, Arc::new(metrics.clone()))
        .map_err(|e| setup("client", &e))?;

    std::fs::create_dir_all(&opts.out).map_err(|e| setup(&opts.out.display().to_string(), &e))?;
    let ledger_dir = opts.out.join("ledger");
    let mailbox_dir = opts.out.join("mailbox");
    let ledger_store = FolderLedgerStore::new(&ledger_dir);
    let audit = FolderAudit::new(&opts.out);
    let notifier = MailboxNotifier::new(&mailbox_dir).map_err(|e| setup("mailbox", &e))?;
    let clock = Clock::manual(opts.start);
    let always_leader = || true;

    let mut report = DemoReport { days: opts.days, forced_enforce: forced, ..Default::default() };
    let mut price: BTreeMap<Product, f64> = BTreeMap::new();
    if let Some(b) = &org.spec.billing {
        report.currency = b.currency.clone();
        for sp in &b.seat_prices {
            price.insert(sp.product, sp.monthly_price);
        }
    }
    for m in &mappings {
        if let Some(p) = m.spec.seat_price {
            price.insert(m.spec.product, p);
        }
    }

    for day in 0..opts.days {
        on_day(day, "");
        let now = opts.start.checked_add(SignedDuration::from_hours(24 * day as i64)).expect("in range");
        sim.set_now(now);
        clock.set(now);
        let due: Vec<String> = policies
            .iter()
            .filter(|p| matches!(schedule::due(p, now), schedule::Due::Now(_)))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if due.is_empty() {
            continue;
        }
        let snapshot = client.snapshot(now).await.map_err(|e| setup("snapshot", &e))?;
        report.users_evaluated = snapshot.users.len();
        let writer = ClientWriter::new(&client, &snapshot);
        let deps = RunDeps {
            directory: &writer,
            ledger_store: &ledger_store,
            audit: &audit,
            notifier: &notifier,
            clock: &clock,
            is_leader: &always_leader,
            metrics: Some(metrics),
            process_dry_run: false,
            concurrency: org.spec.request_budget.concurrency.max(1) as usize,
            summary_recipients: None,
        };
        let inputs =
            OrgInputs { organization: &org, policies: &policies, protections: &protections, mappings: &mappings };
        let (_plan, runs) = run_due_policies(&inputs, &due, &snapshot, &deps).await.map_err(|e| setup("run", &e))?;
        for run in &runs {
            report.runs += 1;
            report.notices_sent += run.report.notices_sent;
            report.applied += run.report.applied;
            report.failed += run.report.failed;
            report.deferred = run.plan.deferred.len() as i64;
            report.protected_skipped =
                run.plan.skipped_counts.get(&crate::policy::SkipKind::Protected).copied().unwrap_or(0) as u64;
            if let Some(h) = &run.plan.halt {
                report.halts.push(format!("day {day}, {}: {}", run.policy, h.message));
            }
            for (p, n) in &run.report.seats {
                *report.seats_reclaimed.entry(*p).or_default() += n;
            }
            if let Some(rec) = &run.record {
                for a in rec
                    .actions
                    .iter()
                    .filter(|a| a.outcome == ActionOutcome::Applied && a.action != crate::record::audit::NOTICE)
                {
                    let e = report.by_rule.entry(format!("{}/{}", run.policy, a.rule)).or_default();
                    e.0 += 1;
                    if e.1.len() < 3 {
                        e.1.push(format!("{} {}: {}", a.action, a.email.as_deref().unwrap_or(&a.account_id), a.reason));
                    }
                }
            }
            if let Some(p) = policies.iter_mut().find(|p| p.metadata.name.as_deref() == Some(run.policy.as_str())) {
                let next = schedule::next_run(p, now);
                p.status = Some(status::after_run(p, run, now, next, false, None));
            }
        }
        // Atlassian's activity data lags a day: let the simulated people use their products.
        sim.advance(SignedDuration::from_hours(1));
    }
    report.projected_monthly_savings =
        report.seats_reclaimed.iter().map(|(p, n)| price.get(p).copied().unwrap_or(0.0) * (*n).max(0) as f64).sum();
    report.atlassian_calls = sim.request_count();

    let records = audit.list(None).map_err(|e| setup("audit", &e))?;
    report.audit_csv = opts.out.join("audit.csv");
    let file =
        std::fs::File::create(&report.audit_csv).map_err(|e| setup(&report.audit_csv.display().to_string(), &e))?;
    write_csv(&records, file).map_err(|e| setup("audit.csv", &e))?;
    report.mailbox = mailbox_dir;
    report.ledger = ledger_dir;
    let _ = sim.shutdown().await;
    Ok(report)
}

/// The report a person reads.
pub fn render(r: &DemoReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "seatwarden demo: {} simulated users, {} simulated days, {} policy runs",
        r.users_evaluated, r.days, r.runs
    );
    if !r.forced_enforce.is_empty() {
        let _ = writeln!(s, "  policies run as Enforce for the demo: {}", r.forced_enforce.join(", "));
    }
    let _ = writeln!(s, "  notices sent:        {}", r.notices_sent);
    let _ = writeln!(s, "  actions applied:     {} ({} failed)", r.applied, r.failed);
    let _ = writeln!(s, "  deferred by caps:    {} (waiting for the next runs, longest-inactive first)", r.deferred);
    let _ = writeln!(s, "  protected users:     {} (never acted on)", r.protected_skipped);
    for h in &r.halts {
        let _ = writeln!(s, "  SAFETY HALT: {h}");
    }
    let _ = writeln!(s, "\nactions by rule:");
    if r.by_rule.is_empty() {
        let _ = writeln!(s, "  (none)");
    }
    for (rule, (n, reasons)) in &r.by_rule {
        let _ = writeln!(s, "  {rule}: {n}");
        for reason in reasons {
            let _ = writeln!(s, "      {reason}");
        }
    }
    let _ = writeln!(s, "\nseats reclaimed:");
    for (p, n) in &r.seats_reclaimed {
        let _ = writeln!(s, "  {:<26} {n}", p.display_name());
    }
    let _ = writeln!(s, "projected monthly savings: {:.2} {}", r.projected_monthly_savings.max(0.0), r.currency);
    let _ = writeln!(s, "Atlassian API calls: {}", r.atlassian_calls);
    let _ = writeln!(s, "\naudit trail (CSV): {}", r.audit_csv.display());
    let _ = writeln!(s, "mailbox (one file per notice): {}", r.mailbox.display());
    let _ = writeln!(s, "ledger: {}", r.ledger.display());
    s
}
