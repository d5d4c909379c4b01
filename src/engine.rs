//! One run of an organization's due policies, without Kubernetes: snapshot in, plan, execute,
//! record. The operator's reconcile and `seatwarden demo` both call this, so the demo exercises the
//! same path the operator takes.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::{
    clock::Clock,
    crd::{
        ActionOutcome, AtlassianOrganization, GroupLicenseMapping, LifecyclePolicy, NoticeSettings, ProtectedUser,
        RunPhase,
    },
    execute::{
        BoxFut, DirectoryWriter, ExecuteOptions, ExecutionReport, Executor, FailPoint, FailPoints, PremiseCheck,
        Premises, load_ledger, save_ledger,
    },
    ledger::{Ledger, Outcome, WriteKey},
    metrics::Metrics,
    notify::{Notice, Notifier},
    policy::{self, ActionKind, Plan, PlanInput, PlannedNotice, PolicyPlan},
    record::{AuditSink, Fence, LedgerStore, RecordError, RunRecord, audit::run_id},
    snapshot::{DirectorySnapshot, DirectoryUser, UserStatus},
};

/// Everything one organization's run reads from the cluster (or the manifests, without one).
pub struct OrgInputs<'a> {
    pub organization: &'a AtlassianOrganization,
    pub policies: &'a [LifecyclePolicy],
    pub protections: &'a [ProtectedUser],
    pub mappings: &'a [GroupLicenseMapping],
}

/// Where a run writes and what it may do.
pub struct RunDeps<'a, D: DirectoryWriter + ?Sized, L: LedgerStore, A: AuditSink> {
    pub directory: &'a D,
    pub ledger_store: &'a L,
    pub audit: &'a A,
    pub notifier: &'a dyn Notifier,
    pub clock: &'a Clock,
    /// Confirmed before every write to Atlassian, the ledger and the audit trail (the stores
    /// confirm it themselves for theirs).
    pub fence: &'a dyn Fence,
    /// Where the premises of a run are re-read before each batch (None: they cannot change).
    pub premises: Option<&'a dyn PremiseSource>,
    pub fail: &'a FailPoints,
    pub metrics: Option<&'a Metrics>,
    pub process_dry_run: bool,
    pub concurrency: usize,
    /// Admins who receive a summary after each run that planned or took actions (None: no summary).
    pub summary_recipients: Option<&'a [String]>,
}

/// The premises of a run as they are now (invariant 12).
#[derive(Clone, Debug, Default)]
pub struct CurrentPremises {
    /// None: the policy was deleted.
    pub policy: Option<LifecyclePolicy>,
    pub protections: Vec<ProtectedUser>,
    pub process_dry_run: bool,
    /// The process was asked to stop: no further batch starts.
    pub shutting_down: bool,
}

/// Re-reads a run's premises from where they are kept (the API server, for the operator).
pub trait PremiseSource: Send + Sync {
    fn current<'a>(&'a self, policy: &'a str) -> BoxFut<'a, Result<CurrentPremises, String>>;
}

/// Compares the premises as they are now with those a plan was made from.
struct PlanPremises<'a> {
    source: &'a dyn PremiseSource,
    input: &'a PlanInput<'a>,
    process_dry_run: bool,
}

impl Premises for PlanPremises<'_> {
    fn check<'a>(&'a self, plan: &'a PolicyPlan, remaining: Vec<usize>) -> BoxFut<'a, PremiseCheck> {
        Box::pin(async move {
            let changed = |reason: String| PremiseCheck::Changed { reason, skip: Default::default() };
            let now = match self.source.current(&plan.policy).await {
                Ok(n) => n,
                Err(e) => return changed(format!("the run's premises could not be re-read ({e})")),
            };
            if now.shutting_down {
                return changed("the operator is shutting down: the rest waits for the next run".into());
            }
            if now.process_dry_run && !self.process_dry_run {
                return changed("the process dry-run flag was set".into());
            }
            let planned = self.input.policies.iter().find(|p| p.metadata.name.as_deref() == Some(plan.policy.as_str()));
            let Some(policy) = now.policy else { return changed("the policy was deleted".into()) };
            if policy.metadata.deletion_timestamp.is_some() {
                return changed("the policy is being deleted".into());
            }
            if policy.spec.mode != plan.mode {
                return changed(format!("the policy's mode changed to {:?}", policy.spec.mode));
            }
            let planned_generation = planned.and_then(|p| p.metadata.generation);
            if policy.metadata.generation != planned_generation {
                return changed(format!(
                    "the policy changed (generation {} → {})",
                    planned_generation.unwrap_or_default(),
                    policy.metadata.generation.unwrap_or_default()
                ));
            }
            let key = |ps: &[ProtectedUser]| -> Vec<(Option<String>, String)> {
                let mut v: Vec<_> = ps
                    .iter()
                    .map(|p| (p.metadata.name.clone(), serde_json::to_string(&p.spec).unwrap_or_default()))
                    .collect();
                v.sort();
                v
            };
            if key(&now.protections) == key(self.input.protections) {
                return PremiseCheck::Hold;
            }
            // Who the new ProtectedUsers cover among the writes not yet made: the planner's own
            // recheck, against the users as the plan saw them, with the new protections.
            let input = PlanInput { protections: &now.protections, ..*self.input };
            let mut skip = std::collections::BTreeMap::new();
            for i in remaining {
                let a = &plan.actions[i];
                let Some(user) = directory_user(self.input.snapshot, &a.account_id, &a.directory_id) else { continue };
                if let policy::Recheck::Drop(why) = policy::recheck(&input, a, &user)
                    && why.contains("ProtectedUser")
                {
                    skip.insert(i, why);
                }
            }
            PremiseCheck::Changed { reason: "the ProtectedUsers changed during the run".into(), skip }
        })
    }
}

/// One policy's run.
#[derive(Clone, Debug)]
pub struct PolicyRun {
    pub policy: String,
    pub plan: PolicyPlan,
    pub report: ExecutionReport,
    /// The record (None when the run planned nothing, so no LifecycleRun was written).
    pub record: Option<RunRecord>,
    pub record_names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("clock: {0}")]
    Clock(#[from] crate::clock::ClockError),
    #[error("record: {0}")]
    Record(#[from] RecordError),
}

/// Plans every policy of the organization (conflicts between policies resolve across all of
/// them) and executes those named in `due`.
pub async fn run_due_policies<D, L, A>(
    inputs: &OrgInputs<'_>,
    due: &[String],
    snapshot: &DirectorySnapshot,
    deps: &RunDeps<'_, D, L, A>,
) -> Result<(Plan, Vec<PolicyRun>), EngineError>
where
    D: DirectoryWriter + ?Sized,
    L: LedgerStore,
    A: AuditSink,
{
    let now = deps.clock.now().await?;
    let org_id = inputs.organization.spec.org_id.clone();
    let mut ledger: Ledger = load_ledger(deps.ledger_store, &org_id).await?;
    // Writes a crash or a missing answer left open are settled first, from a fresh read of each
    // user, so the plan starts from what really happened (invariant 5).
    settle_open_writes(due, snapshot, &mut ledger, deps, now).await?;
    // A record ends only when Atlassian shows the account gone: a lookup that answers 404.
    let all_directories = inputs.organization.spec.directories.is_empty();
    end_records_of_gone_accounts(snapshot, all_directories, &mut ledger, deps, now).await?;
    let planned_from = ledger.clone();
    let input = PlanInput {
        snapshot,
        organization: inputs.organization,
        policies: inputs.policies,
        protections: inputs.protections,
        mappings: inputs.mappings,
        ledger: &planned_from,
        now,
        daily_actions_remaining: policy::daily_remaining(inputs.organization, now),
    };
    let plan = policy::plan(&input);
    // Observations hold in every mode: they describe the organization, not our actions.
    if !plan.ledger_updates.is_empty() {
        ledger.apply_updates(&plan.ledger_updates);
        save_ledger(deps.ledger_store, &mut ledger).await?;
    }
    let premises_now: Box<dyn Premises + '_> = match deps.premises {
        Some(source) => Box::new(PlanPremises { source, input: &input, process_dry_run: deps.process_dry_run }),
        None => Box::new(crate::execute::Unchanging),
    };

    let org_name = inputs.organization.metadata.name.clone().unwrap_or_else(|| org_id.clone());
    let render = |n: &PlannedNotice| -> Option<(Notice, Option<NoticeSettings>)> {
        let settings = inputs
            .policies
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(&*n.policy))
            .and_then(|p| p.spec.notices.clone());
        notice_for(n, snapshot, &org_name, inputs).map(|notice| (notice, settings))
    };
    let recheck = |a: &policy::PlannedAction, fresh: &crate::snapshot::DirectoryUser| -> Option<String> {
        match policy::recheck(&input, a, fresh) {
            policy::Recheck::Proceed => None,
            policy::Recheck::Drop(why) => Some(why),
        }
    };
    let mut runs = vec![];
    let mut due: Vec<&String> = due.iter().collect();
    due.sort();
    let user_limits = crate::execute::UserLimitGate::default();
    // Seats the policies run so far freed (positive) or took (negative), per product: with the
    // snapshot's count, how many held a product when Atlassian refused a write into it.
    let mut seats_applied: BTreeMap<crate::product::Product, i64> = BTreeMap::new();
    let mut licensed_at_snapshot: Option<BTreeMap<crate::product::Product, u32>> = None;
    for name in due {
        let Some(pp) = plan.policy(name) else { continue };
        let executor = Executor {
            directory: deps.directory,
            ledger_store: deps.ledger_store,
            audit: deps.audit,
            notifier: deps.notifier,
            render_notice: &render,
            recheck: &recheck,
            premises: premises_now.as_ref(),
            fence: deps.fence,
            fail: deps.fail,
            clock: deps.clock,
            metrics: deps.metrics,
            options: ExecuteOptions {
                process_dry_run: deps.process_dry_run,
                batch_size: 25,
                concurrency: deps.concurrency.max(1),
            },
            user_limits: &user_limits,
        };
        let nothing = pp.actions.is_empty() && pp.deferred.is_empty() && pp.notices.is_empty();
        if nothing {
            runs.push(PolicyRun {
                policy: name.clone(),
                plan: pp.clone(),
                report: ExecutionReport::default(),
                record: None,
                record_names: vec![],
            });
            continue;
        }
        let start = deps.clock.now().await?;
        let mut record = RunRecord {
            run_id: run_id(start),
            policy: name.clone(),
            organization: org_name.clone(),
            mode: pp.mode,
            start_time: start,
            end_time: None,
            phase: Some(RunPhase::Running),
            actor: None,
            actions: vec![],
        };
        let report = executor.execute(pp, &mut ledger, &mut record).await?;
        for (p, n) in &report.seats {
            *seats_applied.entry(*p).or_default() += n;
        }
        if !report.limit_refusals.is_empty() {
            let counted = licensed_at_snapshot
                .get_or_insert_with(|| policy::licensed_accounts(snapshot, &inputs.organization.spec, inputs.mappings));
            let declared = inputs.organization.spec.declared_user_limits();
            for refusal in &report.limit_refusals {
                for p in &refusal.products {
                    let held =
                        i64::from(counted.get(p).copied().unwrap_or(0)) - seats_applied.get(p).copied().unwrap_or(0);
                    let hit = crate::ledger::UserLimitHit {
                        licensed: held.max(0) as u32,
                        declared_limit: declared.get(p).copied(),
                        at: refusal.at,
                        message: refusal.message.clone(),
                    };
                    tracing::info!(policy = %name, product = %p, licensed = hit.licensed, "a product is at its user limit: onboarding into it waits for freed seats");
                    ledger.record_user_limit(*p, hit);
                }
            }
        }
        deps.fail.pass(FailPoint::BeforeAuditWrite)?;
        record.end_time = Some(deps.clock.now().await?);
        record.phase = Some(if pp.halt.is_some() {
            RunPhase::Halted
        } else if report.failed > 0 && report.applied == 0 {
            RunPhase::Failed
        } else {
            RunPhase::Completed
        });
        let record_names = deps.audit.write(&record).await?;
        ledger.forget_recorded(&record.run_id);
        save_ledger(deps.ledger_store, &mut ledger).await?;
        if let Some(admins) = deps.summary_recipients {
            let summary = summary_of(&org_name, pp, &report, &record, record_names.first());
            // Summaries tell admins; they never hold up a run, and DryRun sends nothing to users only.
            let delivery = crate::notify::send_summary(deps.notifier, &summary, admins).await;
            if let crate::notify::Delivery::Failed { error, .. } = delivery {
                tracing::warn!(policy = %name, error, "run summary not delivered");
            }
        }
        runs.push(PolicyRun { policy: name.clone(), plan: pp.clone(), report, record: Some(record), record_names });
    }
    Ok((plan, runs))
}

/// The row of `account_id` in the directory `directory_id` as the snapshot has it.
fn directory_user(snapshot: &DirectorySnapshot, account_id: &str, directory_id: &str) -> Option<DirectoryUser> {
    let account = snapshot.account(account_id)?;
    let membership = match snapshot.directory_index(directory_id) {
        Some(d) => account.membership(d)?,
        None => account.memberships.first()?,
    };
    Some(account.directory_user(membership))
}

/// Whether a write took effect, from the user as Atlassian shows it now (None: not in the
/// directory). `snapshot` gives the group table `user.groups` indexes.
pub fn took_effect(kind: &ActionKind, user: Option<&DirectoryUser>, snapshot: &DirectorySnapshot) -> bool {
    // The group of the user's directory (the one written to): ids are unique per directory only.
    let member = |u: &DirectoryUser, group_id: &str| {
        snapshot.group_in(u.directory, group_id).is_some_and(|(i, _)| u.groups.contains(&i))
    };
    match (kind, user) {
        (ActionKind::RemoveFromDirectory, u) => u.is_none(),
        (_, None) => false,
        (ActionKind::RemoveGroup { group_id }, Some(u)) => !member(u, group_id),
        (ActionKind::AddGroup { group_id }, Some(u)) => member(u, group_id),
        (ActionKind::Suspend, Some(u)) => u.status == UserStatus::Suspended,
        (ActionKind::Deactivate, Some(u)) => u.status == UserStatus::Deactivated,
        (ActionKind::Restore, Some(u)) => u.status != UserStatus::Suspended,
        (ActionKind::Enable, Some(u)) => u.status != UserStatus::Deactivated,
        (ActionKind::Invite, Some(_)) => true,
    }
}

/// Looks up (a bounded number of) accounts the ledger remembers and a complete snapshot lacks, in
/// every directory read, and ends the records of those every lookup answers 404 for. Any other
/// answer keeps the record (DESIGN.md, "The ledger": never because a snapshot lacked the user).
async fn end_records_of_gone_accounts<D, L, A>(
    snapshot: &DirectorySnapshot,
    all_directories: bool,
    ledger: &mut Ledger,
    deps: &RunDeps<'_, D, L, A>,
    now: jiff::Timestamp,
) -> Result<(), EngineError>
where
    D: DirectoryWriter + ?Sized,
    L: LedgerStore,
    A: AuditSink,
{
    let absent = ledger.absent_accounts(
        snapshot,
        all_directories,
        crate::ledger::GONE_LOOKUPS_PER_RUN,
        now.as_second().unsigned_abs(),
    );
    let mut gone = Vec::new();
    for id in absent {
        let mut answers = Vec::with_capacity(snapshot.directories.len());
        for d in &snapshot.directories {
            let answer = deps.directory.account_in_directory(&d.id, &id).await;
            let stop = !matches!(answer, Ok(false));
            answers.push(answer);
            if stop {
                break; // one answer other than 404 keeps the record: no need to ask further
            }
        }
        if crate::ledger::shows_gone(&answers) {
            tracing::info!(account = %id, "Atlassian answers 404 for the account in every directory: its ledger record ends");
            gone.push(crate::ledger::LedgerUpdate::Forget { account_id: id });
        } else if let Some(Err(e)) = answers.last() {
            tracing::warn!(account = %id, error = %e, "an absent account's lookup failed: its ledger record is kept");
        }
    }
    if !gone.is_empty() {
        ledger.apply_updates(&gone);
        save_ledger(deps.ledger_store, ledger).await?;
    }
    Ok(())
}

/// Settles every write the ledger holds open (recorded and maybe sent before a crash, or sent
/// without an answer) from a fresh read of its user — the snapshot when the read fails — then
/// brings the audit trail in line, per write (account, directory, action, target group): the
/// interrupted runs' records get each write's real outcome, actions never started become
/// Deferred, delivered notices the record missed are added from the ledger, and the run closes.
async fn settle_open_writes<D, L, A>(
    due: &[String],
    snapshot: &DirectorySnapshot,
    ledger: &mut Ledger,
    deps: &RunDeps<'_, D, L, A>,
    now: jiff::Timestamp,
) -> Result<(), EngineError>
where
    D: DirectoryWriter + ?Sized,
    L: LedgerStore,
    A: AuditSink,
{
    let open: Vec<(WriteKey, ActionKind)> = ledger.in_flight().map(|(id, f)| (f.key(id), f.kind.clone())).collect();
    let mut changed = false;
    for (key, kind) in open {
        let directory = if key.directory_id.is_empty() {
            snapshot
                .account(&key.account_id)
                .and_then(|a| a.memberships.first())
                .map(|m| snapshot.directory_id(m.directory).to_owned())
                .or(snapshot.directories.first().map(|d| d.id.clone()))
                .unwrap_or_default()
        } else {
            key.directory_id.clone()
        };
        let user: Option<DirectoryUser> = match deps.directory.reread(&directory, &key.account_id).await {
            Ok(fresh) => fresh.map(|f| f.user),
            Err(e) => {
                let listed = directory_user(snapshot, &key.account_id, &directory);
                if snapshot.incomplete.is_some() && listed.is_none() {
                    tracing::warn!(account = %key.account_id, error = %e, "an open write stays open: no fresh read");
                    continue;
                }
                listed
            }
        };
        let applied = took_effect(&kind, user.as_ref(), snapshot);
        changed |= ledger.settle(&key, applied);
        tracing::info!(account = %key.account_id, action = %key.action, applied, "settled an open write");
    }
    if changed {
        save_ledger(deps.ledger_store, ledger).await?;
    }

    // The records to bring in line: runs left Running, and runs whose writes the ledger still holds.
    let mut runs: std::collections::BTreeSet<(String, String)> = Default::default();
    for (_, f) in ledger.writes() {
        if !f.run_id.is_empty() {
            runs.insert((f.policy.clone(), f.run_id.clone()));
        }
    }
    let mut records = vec![];
    for policy in due {
        for r in deps.audit.running(policy).await? {
            runs.remove(&(r.policy.clone(), r.run_id.clone()));
            records.push(r);
        }
    }
    for (policy, run) in runs {
        if let Some(r) = deps.audit.read(&policy, &run).await? {
            records.push(r);
        }
    }
    for mut record in records {
        let interrupted = record.phase == Some(RunPhase::Running);
        // By the write's directory too (an account suspended in two directories is two writes);
        // records or ledger entries kept before directories were match on the rest alone.
        let writes: Vec<(WriteKey, Option<Outcome>)> =
            ledger.writes().filter(|(_, f)| f.run_id == record.run_id).map(|(id, f)| (f.key(id), f.outcome)).collect();
        let blank = |k: &WriteKey| WriteKey { directory_id: String::new(), ..k.clone() };
        let exact: std::collections::HashMap<WriteKey, Option<Outcome>> = writes.iter().cloned().collect();
        let loose: std::collections::HashMap<WriteKey, Option<Outcome>> =
            writes.iter().map(|(k, o)| (blank(k), *o)).collect();
        let mut never_started = false;
        for a in record.actions.iter_mut().filter(|a| a.action != crate::record::audit::NOTICE && a.outcome.is_open()) {
            let key = WriteKey {
                account_id: a.account_id.clone(),
                directory_id: a.directory.clone().unwrap_or_default(),
                action: a.action.clone(),
                group: a.group.clone(),
            };
            let found = exact.get(&key).or_else(|| {
                let unpinned = key.directory_id.is_empty() || writes.iter().any(|(k, _)| k.directory_id.is_empty());
                unpinned.then(|| loose.get(&blank(&key))).flatten()
            });
            let (outcome, why) = match found {
                Some(Some(Outcome::Applied)) => {
                    (ActionOutcome::Applied, "a fresh read after the interruption shows it applied")
                }
                Some(Some(Outcome::Failed)) => {
                    (ActionOutcome::Failed, "sent without an answer; a fresh read shows it not applied")
                }
                Some(Some(Outcome::NotApplied)) => (
                    ActionOutcome::Deferred,
                    "interrupted before the write took effect; later runs plan it again if it still applies",
                ),
                // Still open (no fresh read was possible): stays as it is until a later run.
                Some(None | Some(Outcome::Unknown)) => continue,
                None if interrupted && a.outcome == ActionOutcome::Planned => {
                    never_started = true;
                    (
                        ActionOutcome::Deferred,
                        "the run was interrupted before this action; later runs plan it again if it still applies",
                    )
                }
                None => continue,
            };
            if a.outcome == ActionOutcome::Unknown {
                a.error = Some(format!("{}; {why}", a.error.as_deref().unwrap_or("sent, no answer")));
            } else {
                a.error = Some(why.to_owned());
            }
            a.outcome = outcome;
        }
        if interrupted {
            // Notices delivered (saved in the ledger) after the record's last audit write.
            let listed: std::collections::HashSet<(String, String)> = record
                .actions
                .iter()
                .filter(|a| a.action == crate::record::audit::NOTICE && a.outcome == ActionOutcome::Applied)
                .map(|a| (a.account_id.clone(), a.rule.clone()))
                .collect();
            for (id, rec) in &ledger.users {
                for n in rec.notices.iter().filter(|n| n.policy == record.policy && n.delivered_at >= record.start_time)
                {
                    if !listed.contains(&(id.clone(), n.rule.clone())) {
                        record.actions.push(crate::crd::RunAction {
                            time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(n.delivered_at),
                            account_id: id.clone(),
                            email: rec.email.clone(),
                            action: crate::record::audit::NOTICE.into(),
                            group: None,
                            group_name: None,
                            directory: None,
                            rule: n.rule.clone(),
                            reason: "delivered; listed from the ledger after the run was interrupted".into(),
                            outcome: ActionOutcome::Applied,
                            error: None,
                        });
                    }
                }
            }
            record.phase = Some(if never_started { RunPhase::Failed } else { RunPhase::Completed });
            record.end_time = Some(now);
            tracing::warn!(policy = %record.policy, run = %record.run_id, "settled the record of an interrupted run");
        }
        deps.audit.write(&record).await?;
        ledger.forget_recorded(&record.run_id);
    }
    save_ledger(deps.ledger_store, ledger).await?;
    Ok(())
}

/// The notice a person receives for a planned notice: their name, what happens, when and why.
fn notice_for(
    n: &PlannedNotice,
    snapshot: &DirectorySnapshot,
    org_name: &str,
    inputs: &OrgInputs<'_>,
) -> Option<Notice> {
    let email = n.email.clone()?;
    let user = snapshot.account(&n.account_id);
    let product = match &n.action {
        policy::ActionKind::RemoveGroup { .. } => inputs
            .policies
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(&*n.policy))
            .and_then(|p| p.spec.rules.iter().find(|r| *r.name == *n.rule))
            .and_then(|r| r.product_inactivity.as_ref().map(|pi| pi.product)),
        _ => None,
    };
    let reply_to = inputs
        .policies
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(&*n.policy))
        .and_then(|p| p.spec.notices.as_ref().and_then(|s| s.reply_to.clone()))
        .or_else(|| inputs.organization.spec.mail.as_ref().and_then(|m| m.reply_to.clone()));
    Some(Notice {
        account_id: n.account_id.clone(),
        email,
        display_name: user.map(|u| u.name.clone()).unwrap_or_default(),
        organization: org_name.to_owned(),
        policy: n.policy.to_string(),
        rule: n.rule.to_string(),
        action: crate::execute::describe_for_person(&n.action, product),
        reason: n.reason.clone(),
        due_at: n.action_due,
        lead_time: n.lead_time.to_string(),
        reply_to,
    })
}

/// Seats freed per product label, for status and metrics.
pub fn seats_by_product(report: &ExecutionReport) -> BTreeMap<String, i64> {
    report.seats.iter().map(|(p, n)| (p.label().to_owned(), *n)).collect()
}

/// When the run started, for status (the record's start, or now when nothing was recorded).
pub fn started_at(run: &PolicyRun, fallback: Timestamp) -> Timestamp {
    run.record.as_ref().map(|r| r.start_time).unwrap_or(fallback)
}

fn summary_of(
    org: &str,
    pp: &PolicyPlan,
    r: &ExecutionReport,
    record: &RunRecord,
    run_name: Option<&String>,
) -> crate::notify::RunSummaryMessage {
    let seats: i64 = r.seats.values().filter(|n| **n > 0).sum();
    crate::notify::RunSummaryMessage {
        organization: org.to_owned(),
        policy: pp.policy.clone(),
        mode: pp.mode.label().to_owned(),
        run_name: run_name.cloned().unwrap_or_else(|| format!("{}-{}", record.policy, record.run_id)),
        planned: pp.actions.len() as i64,
        applied: r.applied,
        failed: r.failed,
        deferred: pp.deferred.len() as i64,
        notices_sent: r.notices_sent,
        seats_reclaimed: seats,
        projected_monthly_savings: match &pp.totals.savings.currency {
            Some(c) => format!("{:.2} {c}", pp.totals.savings.projected_monthly),
            None => "no prices configured".to_owned(),
        },
        halted: pp.halt.as_ref().map(|h| h.message.clone()),
        failures: r.failures.iter().take(20).cloned().collect(),
    }
}
