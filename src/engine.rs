//! One run of an organization's due policies, without Kubernetes: snapshot in, plan, execute,
//! record. The operator's reconcile and `seatwarden demo` both call this, so the demo exercises the
//! same path the operator takes.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::{
    clock::Clock,
    crd::{AtlassianOrganization, GroupLicenseMapping, LifecyclePolicy, NoticeSettings, ProtectedUser, RunPhase},
    execute::{DirectoryWriter, ExecuteOptions, ExecutionReport, Executor, load_ledger, save_ledger},
    ledger::Ledger,
    metrics::Metrics,
    notify::{Notice, Notifier},
    policy::{self, Plan, PlanInput, PlannedNotice, PolicyPlan},
    record::{AuditSink, LedgerStore, RecordError, RunRecord, audit::run_id},
    snapshot::DirectorySnapshot,
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
    pub is_leader: &'a (dyn Fn() -> bool + Send + Sync),
    pub metrics: Option<&'a Metrics>,
    pub process_dry_run: bool,
    pub concurrency: usize,
    /// Admins who receive a summary after each run that planned or took actions (None: no summary).
    pub summary_recipients: Option<&'a [String]>,
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
    // A crash may have left runs Running with writes in flight: settle their records from what the
    // snapshot shows (the planner already decided, per in-flight write, whether it took effect).
    settle_interrupted_runs(due, &ledger, &plan, deps.audit).await?;
    // Observations hold in every mode: they describe the organization, not our actions.
    if !plan.ledger_updates.is_empty() {
        ledger.apply_updates(&plan.ledger_updates);
        save_ledger(deps.ledger_store, &ledger).await?;
    }

    let org_name = inputs.organization.metadata.name.clone().unwrap_or_else(|| org_id.clone());
    let render = |n: &PlannedNotice| -> Option<(Notice, Option<NoticeSettings>)> {
        let settings = inputs
            .policies
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(n.policy.as_str()))
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
    for name in due {
        let Some(pp) = plan.policy(name) else { continue };
        let executor = Executor {
            directory: deps.directory,
            ledger_store: deps.ledger_store,
            audit: deps.audit,
            notifier: deps.notifier,
            render_notice: &render,
            recheck: &recheck,
            is_leader: deps.is_leader,
            clock: deps.clock,
            metrics: deps.metrics,
            options: ExecuteOptions {
                process_dry_run: deps.process_dry_run,
                batch_size: 25,
                concurrency: deps.concurrency.max(1),
            },
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
        record.end_time = Some(deps.clock.now().await?);
        record.phase = Some(if pp.halt.is_some() {
            RunPhase::Halted
        } else if report.failed > 0 && report.applied == 0 {
            RunPhase::Failed
        } else {
            RunPhase::Completed
        });
        let record_names = deps.audit.write(&record).await?;
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

/// Closes the records of runs a crash interrupted: each write that was in flight becomes Applied
/// or Failed as the snapshot shows, every action never started becomes Deferred, and the run Failed.
async fn settle_interrupted_runs<A: AuditSink>(
    due: &[String],
    ledger: &Ledger,
    plan: &Plan,
    audit: &A,
) -> Result<(), EngineError> {
    use crate::{crd::ActionOutcome, ledger::LedgerUpdate};
    // (run id, account id, action label) → applied?
    let mut settled: std::collections::HashMap<(String, String, &'static str), bool> = Default::default();
    for u in &plan.ledger_updates {
        let (account, kind, applied) = match u {
            LedgerUpdate::InFlightApplied { account_id, kind } => (account_id, kind, true),
            LedgerUpdate::InFlightNotApplied { account_id, kind } => (account_id, kind, false),
            _ => continue,
        };
        for (id, flight) in ledger.in_flight() {
            if id == account && &flight.kind == kind {
                settled.insert((flight.run_id.clone(), account.clone(), kind.label()), applied);
            }
        }
    }
    for policy in due {
        for mut record in audit.running(policy).await? {
            for a in record.actions.iter_mut().filter(|a| a.outcome == ActionOutcome::Planned) {
                let key = (record.run_id.clone(), a.account_id.clone(), label_of(&a.action));
                match settled.get(&key) {
                    Some(true) => {
                        a.outcome = ActionOutcome::Applied;
                        a.error =
                            Some("in flight when the run was interrupted; the next snapshot shows it applied".into());
                    }
                    Some(false) => {
                        a.outcome = ActionOutcome::Failed;
                        a.error = Some(
                            "in flight when the run was interrupted; the next snapshot shows it not applied".into(),
                        );
                    }
                    None => {
                        a.outcome = ActionOutcome::Deferred;
                        a.error = Some(
                            "the run was interrupted before this action; later runs plan it again if it still applies"
                                .into(),
                        );
                    }
                }
            }
            record.phase = Some(RunPhase::Failed);
            tracing::warn!(policy, run = %record.run_id, "settled the record of an interrupted run");
            audit.write(&record).await?;
        }
    }
    Ok(())
}

/// The static label of an action as the audit trail spells it.
fn label_of(action: &str) -> &'static str {
    const LABELS: [&str; 8] =
        ["suspend", "restore", "deactivate", "enable", "remove-from-directory", "remove-group", "add-group", "invite"];
    LABELS.iter().find(|l| **l == action).copied().unwrap_or("other")
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
            .find(|p| p.metadata.name.as_deref() == Some(n.policy.as_str()))
            .and_then(|p| p.spec.rules.iter().find(|r| r.name == n.rule))
            .and_then(|r| r.product_inactivity.as_ref().map(|pi| pi.product)),
        _ => None,
    };
    let reply_to = inputs
        .policies
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(n.policy.as_str()))
        .and_then(|p| p.spec.notices.as_ref().and_then(|s| s.reply_to.clone()))
        .or_else(|| inputs.organization.spec.mail.as_ref().and_then(|m| m.reply_to.clone()));
    Some(Notice {
        account_id: n.account_id.clone(),
        email,
        display_name: user.map(|u| u.name.clone()).unwrap_or_default(),
        organization: org_name.to_owned(),
        policy: n.policy.clone(),
        rule: n.rule.clone(),
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
