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

/// What the demo did, for the report and for tests. The action counts are read back from the audit
/// trail (one row per action's final outcome, as `audit export` gives it), so report and trail agree.
#[derive(Clone, Debug, Default)]
pub struct DemoReport {
    /// People (accounts) in the simulated organization at the start.
    pub users_evaluated: usize,
    /// Accounts at the end (new hires included).
    pub users_at_end: usize,
    /// New hires who arrived during the simulated days.
    pub hires: usize,
    /// Accounts onboarded (an onboarding rule's add-group applied).
    pub onboarded: usize,
    /// Of the people who came back, those given their removed groups back (reactivation).
    pub restored: usize,
    /// Accounts given access back by reactivation in all (returners and others active again).
    pub reactivated: usize,
    /// Of the people who came back, how many have exactly the groups they lost back, in the
    /// directories they lost them from (see [`Returner::exactly`]).
    pub restored_exactly: usize,
    /// The people who came back, as the simulator saw them.
    pub returners: Vec<Returner>,
    /// People who came back after losing groups (the simulation made them active again).
    pub returned: usize,
    /// Warned people who used the product again before the deadline and were spared.
    pub spared: usize,
    /// Warned people the simulation made active again before their deadline.
    pub warned_then_active: usize,
    /// Accounts suspended, deactivated (escalation after the suspension), removed from the directory.
    pub suspended: usize,
    pub deactivated: usize,
    pub removed: usize,
    /// Group (license) removals applied.
    pub groups_removed: usize,
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
    /// Per product at its user limit, from the audit trail's rows: (adds Atlassian refused, adds
    /// held back without a write), and the seats in use when Atlassian refused (the ledger's).
    pub user_limits: BTreeMap<Product, (usize, usize, Option<u32>)>,
}

/// A group of one directory: (directory id, group id). Group ids are unique per directory only.
pub type DirectoryGroup = (String, String);

/// A person who came back after seatwarden removed groups, as the simulator saw it: its event log
/// (the writes Atlassian received) and its state at the end, not seatwarden's own records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Returner {
    pub account_id: String,
    /// Groups taken from the account (applied membership removals).
    pub removed: std::collections::BTreeSet<DirectoryGroup>,
    /// Groups given to the account after its first removal (applied membership additions).
    pub added_after: std::collections::BTreeSet<DirectoryGroup>,
    /// Of the removed groups, those the account is a member of at the end, in that directory.
    pub holds_at_end: std::collections::BTreeSet<DirectoryGroup>,
}

impl Returner {
    /// Got back exactly what was taken: every removed group added again and held at the end, in
    /// the directory it was removed from, and nothing else given.
    pub fn exactly(&self) -> bool {
        !self.removed.is_empty() && self.added_after == self.removed && self.holds_at_end == self.removed
    }
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
    // The demo's notices go into its mailbox folder, the one place a local folder counts as delivery.
    org.spec.mail = None;
    org.spec.local_mailbox = true;
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
    let own_policies: Vec<String> = policies.iter().filter_map(|p| p.metadata.name.clone()).collect();

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
    // A fresh start: an earlier demo's ledger, notices and runs would mix into this one's numbers.
    // The command line's own records (cli-import, cli-activate) in the shared folder stay.
    for dir in [&ledger_dir, &mailbox_dir] {
        if dir.is_dir() {
            std::fs::remove_dir_all(dir).map_err(|e| setup(&dir.display().to_string(), &e))?;
        }
    }
    for old in FolderAudit::new(&opts.out).list(None).map_err(|e| setup("audit", &e))? {
        if own_policies.contains(&old.policy) {
            let path = opts.out.join("runs").join(format!("{}-{}.json", old.policy, old.run_id));
            let _ = std::fs::remove_file(path);
        }
    }
    let ledger_store = FolderLedgerStore::new(&ledger_dir);
    let audit = FolderAudit::new(&opts.out);
    let notifier = MailboxNotifier::new(&mailbox_dir).map_err(|e| setup("mailbox", &e))?;
    let clock = Clock::manual(opts.start);

    let mut report = DemoReport { days: opts.days, forced_enforce: forced, ..Default::default() };
    report.users_evaluated = sim.with_state(distinct_accounts);
    let opt_in_group =
        policies.iter().filter_map(|p| p.spec.reactivation.as_ref()).find_map(|r| r.opt_in_groups.first().cloned());
    let mut life = Life::new(opts.seed, opt_in_group);
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
        // The organization lives: people join, warned people log in again, people come back.
        sim.with_state_mut(|s| life.day(s, day, now));
        let due: Vec<String> = policies
            .iter()
            .filter(|p| matches!(schedule::due(p, now), schedule::Due::Now(_)))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if due.is_empty() {
            continue;
        }
        let snapshot = client.snapshot(now).await.map_err(|e| setup("snapshot", &e))?;
        let writer = ClientWriter::new(&client, &snapshot);
        let deps = RunDeps {
            directory: &writer,
            ledger_store: &ledger_store,
            audit: &audit,
            notifier: &notifier,
            clock: &clock,
            fence: &crate::record::SoleWriter,
            premises: None,
            fail: &crate::execute::FailPoints::none(),
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
                life.observe(rec, day);
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

    let records: Vec<crate::record::RunRecord> = audit
        .list(None)
        .map_err(|e| setup("audit", &e))?
        .into_iter()
        .filter(|r| own_policies.contains(&r.policy))
        .collect();
    report.users_at_end = sim.with_state(distinct_accounts);
    report.hires = life.hires.len();
    life.tally(&records, &mut report);
    let ledger = crate::execute::load_ledger(&ledger_store, &org.spec.org_id).await.map_err(|e| setup("ledger", &e))?;
    report.user_limits = user_limit_tally(&records, &ledger);
    let events = sim.events();
    report.returners = sim.with_state(|s| life.returners(s, &events));
    report.restored_exactly = report.returners.iter().filter(|r| r.exactly()).count();
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
        "seatwarden demo: {} simulated people ({} at the end), {} simulated days, {} policy runs",
        r.users_evaluated, r.users_at_end, r.days, r.runs
    );
    if !r.forced_enforce.is_empty() {
        let _ = writeln!(s, "  policies run as Enforce for the demo: {}", r.forced_enforce.join(", "));
    }
    let _ = writeln!(s, "  notices sent:        {}", r.notices_sent);
    let _ = writeln!(s, "  actions applied:     {} ({} failed)", r.applied, r.failed);
    let _ = writeln!(s, "  deferred by caps:    {} (still waiting at the end, longest-inactive first)", r.deferred);
    let _ = writeln!(s, "  protected users:     {} (never acted on)", r.protected_skipped);
    let _ = writeln!(s, "\nthe lifecycle (people; the same numbers as the audit trail):");
    let _ = writeln!(s, "  new hires:           {} arrived, {} onboarded within the seat cap", r.hires, r.onboarded);
    let _ = writeln!(
        s,
        "  spared:              {} of {} warned people used their products again before the deadline",
        r.spared, r.warned_then_active
    );
    let _ = writeln!(
        s,
        "  came back:           {} of {} who lost groups got them back ({} exactly the groups they lost)",
        r.restored, r.returned, r.restored_exactly
    );
    let _ = writeln!(
        s,
        "  access given back:   {} in all (reactivation: activity again, or an access request)",
        r.reactivated
    );
    let _ = writeln!(s, "  license groups removed: {}", r.groups_removed);
    let _ = writeln!(s, "  suspended:           {}", r.suspended);
    let _ = writeln!(
        s,
        "  deactivated:         {} (suspended long enough to escalate; a longer --days shows more)",
        r.deactivated
    );
    let _ = writeln!(s, "  removed (never active): {}", r.removed);
    for (p, (refused, held, seats)) in &r.user_limits {
        let _ = writeln!(
            s,
            "  held at user limit:  {}: {refused} add(s) refused by Atlassian (at most one per run), {held} held back \
             until seats are freed{}",
            p.display_name(),
            seats.map(|n| format!(" (Atlassian refused at {n} seats)")).unwrap_or_default()
        );
    }
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

/// Writes into a product at its user limit, from the audit trail's final rows: refused by
/// Atlassian (Failed, refused_license_limit), and held back without a write (Deferred: by the
/// planner at a known limit, or by the executor after the run's refusal).
fn user_limit_tally(
    records: &[crate::record::RunRecord],
    ledger: &crate::ledger::Ledger,
) -> BTreeMap<Product, (usize, usize, Option<u32>)> {
    let mut out: BTreeMap<Product, (usize, usize, Option<u32>)> = BTreeMap::new();
    for row in crate::record::audit::final_outcomes(records) {
        let a = row.action;
        let error = a.error.as_deref().unwrap_or_default();
        let refused = a.outcome == ActionOutcome::Failed && error.contains("refused_license_limit");
        let held = a.outcome == ActionOutcome::Deferred && error.contains("at its user limit");
        if !(refused || held) {
            continue;
        }
        for p in Product::named_in(error).into_iter().take(1) {
            let e = out.entry(p).or_default();
            if refused { e.0 += 1 } else { e.1 += 1 }
        }
    }
    for (p, e) in out.iter_mut() {
        e.2 = ledger.user_limits.get(p).map(|h| h.licensed);
    }
    out
}

/// Accounts in the simulated organization (an account in two directories counts once).
fn distinct_accounts(s: &crate::sim::state::SimState) -> usize {
    s.users.iter().map(|u| u.account_id.as_str()).collect::<std::collections::BTreeSet<_>>().len()
}

/// The simulated organization's life between runs, driven through the simulator's state: new hires
/// arrive (to be onboarded), some warned people use their products again before the deadline (to
/// be spared), some people whose groups were removed come back (to get exactly those groups back).
/// Deterministic for a seed.
struct Life {
    rng: u64,
    /// Account ids of the new hires.
    hires: Vec<String>,
    /// Warned people to make active again: (day, account).
    wake_warned: Vec<(u32, String)>,
    /// Warned people made active again, and when.
    warned_active: BTreeMap<String, Timestamp>,
    /// People whose groups were removed who come back: (day, account, a group id removed).
    wake_returners: Vec<(u32, String, String)>,
    /// The policies' opt-in group (an access-request workflow fills it): a returner left without
    /// any product cannot show activity, so they ask for their access back there.
    opt_in_group: Option<String>,
    returned: std::collections::BTreeSet<String>,
    chosen: std::collections::BTreeSet<String>,
}

/// New hires every third day, two at a time, in the support department (the examples onboard it).
const HIRES_EVERY_DAYS: u32 = 3;
const HIRES_PER_WAVE: u32 = 2;
/// One warned person in this many logs in again two days after the notice.
const WARNED_WHO_RETURN: u64 = 6;
/// One person in this many who lost a group comes back three days later.
const REMOVED_WHO_RETURN: u64 = 5;

impl Life {
    fn new(seed: u64, opt_in_group: Option<String>) -> Self {
        Self {
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
            hires: vec![],
            wake_warned: vec![],
            warned_active: BTreeMap::new(),
            wake_returners: vec![],
            opt_in_group,
            returned: Default::default(),
            chosen: Default::default(),
        }
    }

    /// splitmix64: small, deterministic, good enough to pick people.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// What happens in the organization on `day` before the policies run.
    fn day(&mut self, s: &mut crate::sim::state::SimState, day: u32, now: Timestamp) {
        use crate::sim::state::{AccountStatus, Membership, SimAccountType};
        if day % HIRES_EVERY_DAYS == 1 {
            let template = s.users.iter().position(|u| {
                u.directory == 0
                    && u.account_type == SimAccountType::Atlassian
                    && u.managed
                    && u.account_status == AccountStatus::Active
                    && u.membership == Membership::Active
                    && !u.org_admin
                    && u.email.as_deref().is_some_and(|e| e.ends_with("@acme.example"))
            });
            let support = s.groups.iter().position(|g| g.directory == 0 && g.name == "dept-support");
            if let (Some(t), Some(support)) = (template, support) {
                for k in 0..HIRES_PER_WAVE {
                    let mut u = s.users[t].clone();
                    u.account_id = format!("{:024x}", self.next() as u128 & ((1u128 << 96) - 1));
                    u.email = Some(format!("new.hire.d{day}.{k}@acme.example"));
                    u.name = format!("New Hire {day}-{k}");
                    u.added_to_org = now;
                    u.department = Some("support".into());
                    u.groups = vec![support as crate::sim::state::SimGroupIdx];
                    u.activity = vec![];
                    u.deactivated_on = None;
                    self.hires.push(u.account_id.clone());
                    s.users.push(u);
                }
                s.reindex();
            }
        }
        // Everyone at work uses their products: the new hires, the warned who came back, the returners.
        let instances: Vec<crate::sim::state::InstanceIdx> =
            (0..s.products.len()).map(|i| i as crate::sim::state::InstanceIdx).collect();
        let wake_warned: Vec<String> =
            self.wake_warned.iter().filter(|(d, _)| *d == day).map(|(_, a)| a.clone()).collect();
        let wake_returners: Vec<(String, String)> =
            self.wake_returners.iter().filter(|(d, _, _)| *d == day).map(|(_, a, g)| (a.clone(), g.clone())).collect();
        for a in &wake_warned {
            self.warned_active.insert(a.clone(), now);
        }
        for (account, group_id) in &wake_returners {
            self.returned.insert(account.clone());
            // Someone whose removed group was their only license has nothing to be active on
            // (Atlassian shows no activity for a product one has no access to): they ask for
            // their access back through the opt-in group of the directory it was removed from.
            let has_product = s.entries_of(account).any(|i| {
                let u = &s.users[i];
                u.account_status == AccountStatus::Active
                    && u.membership == Membership::Active
                    && !s.access_of(u).is_empty()
            });
            if !has_product && let Some(opt_in) = self.opt_in_group.as_deref() {
                ask_for_access(s, account, group_id, opt_in);
            }
        }
        let active: Vec<String> =
            self.hires.iter().chain(self.warned_active.keys()).chain(self.returned.iter()).cloned().collect();
        let seen = now - SignedDuration::from_hours(1);
        for account in active {
            let entries: Vec<usize> = s.entries_of(&account).collect();
            for i in entries {
                let u = &mut s.users[i];
                if u.account_status != AccountStatus::Active || u.membership != Membership::Active {
                    continue;
                }
                for &inst in &instances {
                    u.set_last_active(inst, Some(seen));
                }
            }
        }
    }

    /// Picks, from what a run did, who comes back: some of the warned, some who lost groups.
    fn observe(&mut self, record: &crate::record::RunRecord, day: u32) {
        for a in record.actions.iter().filter(|a| a.outcome == ActionOutcome::Applied) {
            if self.chosen.contains(&a.account_id) {
                continue;
            }
            let pick = if a.action == crate::record::audit::NOTICE {
                self.next()
                    .is_multiple_of(WARNED_WHO_RETURN)
                    .then(|| self.wake_warned.push((day + 2, a.account_id.clone())))
            } else if a.action == "remove-group" && !is_giving_rule(&a.rule) {
                self.next().is_multiple_of(REMOVED_WHO_RETURN).then(|| {
                    let group = a.group.clone().unwrap_or_default();
                    self.wake_returners.push((day + 3, a.account_id.clone(), group))
                })
            } else {
                None
            };
            if pick.is_some() {
                self.chosen.insert(a.account_id.clone());
            }
        }
    }

    /// The report's counts, from the audit trail's final outcomes.
    fn tally(&self, records: &[crate::record::RunRecord], r: &mut DemoReport) {
        use std::collections::BTreeSet;
        let rows = crate::record::audit::final_outcomes(records);
        let (mut onboarded, mut restored, mut suspended, mut deactivated, mut removed) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        r.notices_sent = 0;
        r.applied = 0;
        r.failed = 0;
        r.deferred = 0;
        r.groups_removed = 0;
        for row in &rows {
            let a = row.action;
            match a.outcome {
                ActionOutcome::Applied if a.action == crate::record::audit::NOTICE => r.notices_sent += 1,
                ActionOutcome::Applied => {
                    r.applied += 1;
                    let who = a.account_id.as_str();
                    match a.action.as_str() {
                        _ if a.rule.starts_with("onboarding/") => {
                            onboarded.insert(who);
                        }
                        _ if a.rule == "reactivation" => {
                            restored.insert(who);
                        }
                        "suspend" => {
                            suspended.insert(who);
                        }
                        "deactivate" => {
                            deactivated.insert(who);
                        }
                        "remove-from-directory" => {
                            removed.insert(who);
                        }
                        "remove-group" => r.groups_removed += 1,
                        _ => {}
                    }
                }
                ActionOutcome::Failed => r.failed += 1,
                ActionOutcome::Deferred => r.deferred += 1,
                _ => {}
            }
        }
        r.onboarded = onboarded.len();
        r.reactivated = restored.len();
        r.restored = restored.iter().filter(|a| self.returned.contains(**a)).count();
        r.suspended = suspended.len();
        r.deactivated = deactivated.len();
        r.removed = removed.len();
        r.returned = self.returned.len();
        r.warned_then_active = self.warned_active.len();
        // Spared: made active after a notice, and no destructive action applied to them since.
        r.spared = self
            .warned_active
            .iter()
            .filter(|(account, since)| {
                !rows.iter().any(|row| {
                    row.action.account_id == **account
                        && row.action.outcome == ActionOutcome::Applied
                        && row.action.action != crate::record::audit::NOTICE
                        && !is_giving_rule(&row.action.rule)
                        && row.action.time.0 >= **since
                })
            })
            .count();
    }

    /// The people who came back, from the simulator's event log and its state at the end.
    fn returners(&self, s: &crate::sim::state::SimState, events: &[crate::sim::state::SimEvent]) -> Vec<Returner> {
        use crate::sim::SimOutcome;
        let of = |group_id: &str| -> Option<DirectoryGroup> {
            let g = &s.groups[s.group_idx(group_id)? as usize];
            Some((s.directories[g.directory as usize].id.clone(), g.id.clone()))
        };
        self.returned
            .iter()
            .map(|account| {
                let mut r = Returner { account_id: account.clone(), ..Default::default() };
                let mine = events
                    .iter()
                    .filter(|e| e.outcome == SimOutcome::Applied && e.account_id.as_deref() == Some(account.as_str()));
                for e in mine {
                    let Some(group) = e.group_id.as_deref().and_then(of) else { continue };
                    match e.operation.as_str() {
                        "group.membership.remove" => {
                            r.removed.insert(group);
                        }
                        "group.membership.add" if !r.removed.is_empty() => {
                            r.added_after.insert(group);
                        }
                        _ => {}
                    }
                }
                r.holds_at_end = r
                    .removed
                    .iter()
                    .filter(|(directory, group_id)| {
                        let (Some(d), Some(g)) = (s.directory_idx(directory), s.group_idx(group_id)) else {
                            return false;
                        };
                        s.entry_in(account, d).is_some_and(|i| s.users[i].groups.contains(&g))
                    })
                    .cloned()
                    .collect();
                r
            })
            .collect()
    }
}

/// A returner asks for access back: joins the opt-in group of the directory `group_id` was
/// removed from (an access-request workflow would put them there).
fn ask_for_access(s: &mut crate::sim::state::SimState, account: &str, group_id: &str, opt_in: &str) {
    let Some(directory) = s.group_idx(group_id).map(|g| s.groups[g as usize].directory) else { return };
    let group = s.groups.iter().position(|g| g.directory == directory && g.name.eq_ignore_ascii_case(opt_in));
    if let (Some(entry), Some(group)) = (s.entry_in(account, directory), group) {
        let group = group as crate::sim::state::SimGroupIdx;
        if !s.users[entry].groups.contains(&group) {
            s.users[entry].groups.push(group);
        }
    }
}

/// Rules that give access (onboarding, reactivation) rather than take it.
fn is_giving_rule(rule: &str) -> bool {
    rule == "reactivation" || rule.starts_with("onboarding/")
}
