//! The executor: applies one policy's part of a plan through the Atlassian client, under the caps
//! the planner already applied and the client's request budget, recording before and after.
//!
//! For each batch of actions: check the leader lease (only the leader writes), record the batch as
//! intended in the ledger and persist it, then for each action re-read the user right before a
//! destructive write and drop the action if the user became active, protected or changed
//! (DESIGN invariant 9), write, record the outcome in the ledger and the audit trail, persist.
//! A crash at any point leaves the intent on record; the next plan settles it from the snapshot.

pub mod atlassian;

use std::{collections::BTreeMap, future::Future, pin::Pin};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::{
    clock::Clock,
    crd::{ActionOutcome, RunAction, RunPhase},
    ledger::{Ledger, Outcome},
    metrics::Metrics,
    notify::{Notice, Notifier},
    policy::{ActionKind, PlannedAction, PlannedNotice, PolicyPlan},
    product::Product,
    record::{AuditSink, LedgerStore, RecordError, RunRecord, ledger_store::LEDGER_SHARDS},
    snapshot::DirectoryUser,
};

/// The result of one write, as the client reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Done,
    /// The user was already in the target state: converged, nothing written.
    AlreadySo,
    /// Atlassian refused (license limit, IdP-synced group, not managed): not retried.
    Refused {
        reason: String,
        message: String,
    },
    Failed {
        message: String,
    },
}

/// One write's result: its index in the batch, the audit outcome, the error, the ledger outcome.
type WriteResult = (usize, ActionOutcome, Option<String>, Outcome);

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The writes and the one-user re-read the executor needs from the Atlassian client.
pub trait DirectoryWriter: Send + Sync {
    /// The user as Atlassian has it now (None: no longer in the directory).
    fn reread<'a>(
        &'a self,
        directory_id: &'a str,
        account_id: &'a str,
    ) -> BoxFut<'a, Result<Option<DirectoryUser>, String>>;
    fn write<'a>(&'a self, action: &'a PlannedAction) -> BoxFut<'a, WriteOutcome>;
    /// A group's name, for the audit trail (None when unknown).
    fn group_name(&self, group_id: &str) -> Option<String> {
        let _ = group_id;
        None
    }
}

/// Decides, from a fresh read, whether a planned destructive action still applies. Returns why not.
pub type Recheck<'a> = dyn Fn(&PlannedAction, &DirectoryUser) -> Option<String> + Send + Sync + 'a;

/// The notice a planned notice becomes, with the policy's templates (None: no address to send to).
pub type NoticeRenderer<'a> =
    dyn Fn(&PlannedNotice) -> Option<(Notice, Option<crate::crd::NoticeSettings>)> + Send + Sync + 'a;

/// Transient notice failures in a row after which the rest of a run's notices are not attempted.
const MAIL_DOWN_AFTER: u32 = 3;

pub struct ExecuteOptions {
    /// Process-wide --dry-run: nothing is written to Atlassian and no notice is sent.
    pub process_dry_run: bool,
    pub batch_size: usize,
    pub concurrency: usize,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        Self { process_dry_run: false, batch_size: 25, concurrency: 4 }
    }
}

/// What happened in one policy run.
#[derive(Clone, Debug, Default)]
pub struct ExecutionReport {
    pub applied: i64,
    pub already_so: i64,
    pub failed: i64,
    pub skipped: i64,
    pub deferred: i64,
    pub notices_sent: i64,
    pub notices_failed: i64,
    /// Seats freed by applied actions, per product (negative: seats taken by restores/onboarding).
    pub seats: BTreeMap<Product, i64>,
    pub failures: Vec<String>,
    /// True when the run stopped because this replica lost the lease.
    pub lost_leadership: bool,
}

pub struct Executor<'a, D: DirectoryWriter + ?Sized, L: LedgerStore, A: AuditSink> {
    pub directory: &'a D,
    pub ledger_store: &'a L,
    pub audit: &'a A,
    pub notifier: &'a dyn Notifier,
    pub render_notice: &'a NoticeRenderer<'a>,
    pub recheck: &'a Recheck<'a>,
    pub is_leader: &'a (dyn Fn() -> bool + Send + Sync),
    pub clock: &'a Clock,
    pub metrics: Option<&'a Metrics>,
    pub options: ExecuteOptions,
}

/// Serializes the ledger into its fixed shards (empty shards are not stored).
pub async fn save_ledger<L: LedgerStore>(store: &L, ledger: &Ledger) -> Result<(), RecordError> {
    let shards = ledger
        .shards(LEDGER_SHARDS as u32)
        .map_err(|e| RecordError::Corrupt { name: "ledger".into(), message: e.to_string() })?;
    let map: BTreeMap<usize, String> =
        shards.into_iter().enumerate().filter(|(_, s)| !s.users.is_empty()).map(|(i, s)| (i, s.to_json())).collect();
    store.save(map).await
}

/// Loads the ledger of `org_id` from its shards (an empty ledger when none are stored).
pub async fn load_ledger<L: LedgerStore>(store: &L, org_id: &str) -> Result<Ledger, RecordError> {
    let stored = store.load().await?;
    if stored.is_empty() {
        return Ok(Ledger::new(org_id));
    }
    let mut shards = vec![];
    for (i, json) in stored {
        shards.push(
            Ledger::from_json(&json)
                .map_err(|e| RecordError::Corrupt { name: format!("ledger shard {i}"), message: e.to_string() })?,
        );
    }
    let mut ledger =
        Ledger::merge(shards).map_err(|e| RecordError::Corrupt { name: "ledger".into(), message: e.to_string() })?;
    if ledger.org_id.is_empty() {
        ledger.org_id = org_id.to_owned();
    }
    Ok(ledger)
}

fn run_action(
    a: &PlannedAction,
    group_name: Option<String>,
    at: Timestamp,
    outcome: ActionOutcome,
    error: Option<String>,
) -> RunAction {
    RunAction {
        group_name,
        time: Time(at),
        account_id: a.account_id.clone(),
        email: a.email.clone(),
        action: a.kind.label().to_owned(),
        group: a.kind.group_id().map(str::to_owned),
        rule: a.rule.clone(),
        reason: a.reason.clone(),
        outcome,
        error,
    }
}

impl<D: DirectoryWriter + ?Sized, L: LedgerStore, A: AuditSink> Executor<'_, D, L, A> {
    async fn now(&self) -> Timestamp {
        self.clock.now().await.unwrap_or_else(|_| Timestamp::now())
    }

    /// Applies `plan` (one policy's part), updating `ledger` and `record` as it goes. The record must
    /// already hold this policy's run metadata; actions and notices are appended here.
    pub async fn execute(
        &self,
        plan: &PolicyPlan,
        ledger: &mut Ledger,
        record: &mut RunRecord,
    ) -> Result<ExecutionReport, RecordError> {
        let mut report = ExecutionReport::default();
        let mode_label = plan.mode.label();
        let writes_allowed = plan.applies && !self.options.process_dry_run;

        // The record is written before anything is applied: every action as Planned (or, when the
        // policy does not apply, as what it is: planned but not applied).
        let start = self.now().await;
        for a in &plan.actions {
            let group_name = a.kind.group_id().and_then(|g| self.directory.group_name(g));
            record.actions.push(run_action(a, group_name, start, ActionOutcome::Planned, None));
        }
        for d in &plan.deferred {
            let group_name = d.action.kind.group_id().and_then(|g| self.directory.group_name(g));
            record.actions.push(run_action(&d.action, group_name, start, ActionOutcome::Deferred, Some(d.why.clone())));
            report.deferred += 1;
        }
        let first_action = record.actions.len() - plan.actions.len() - plan.deferred.len();
        self.audit.write(record).await?;
        if let Some(m) = self.metrics {
            for a in &plan.actions {
                m.actions.with_label_values(&[&plan.policy, a.kind.label(), mode_label, "planned"]).inc();
            }
            for d in &plan.deferred {
                m.actions.with_label_values(&[&plan.policy, d.action.kind.label(), mode_label, "deferred"]).inc();
            }
        }
        if !writes_allowed {
            return Ok(report);
        }

        // Notices first: only a delivered notice counts toward a lead time. After a few transient
        // failures in a row the mail server is taken as down for this run: the remaining notices
        // wait for the next run instead of each waiting out its retries.
        let mut consecutive_transient = 0;
        for notice in plan.notices_to_send() {
            if !(self.is_leader)() {
                report.lost_leadership = true;
                break;
            }
            let Some((message, settings)) = (self.render_notice)(notice) else { continue };
            let at = self.now().await;
            let delivery = if consecutive_transient >= MAIL_DOWN_AFTER {
                crate::notify::Delivery::Failed {
                    error: format!("not sent: the last {MAIL_DOWN_AFTER} notices failed; the mail server looks down"),
                    transient: true,
                }
            } else {
                crate::notify::send_notice(self.notifier, &message, settings.as_ref()).await
            };
            match &delivery {
                crate::notify::Delivery::Failed { transient: true, .. } => consecutive_transient += 1,
                _ => consecutive_transient = 0,
            }
            let (outcome, error) = match delivery {
                crate::notify::Delivery::Delivered => {
                    ledger.record_notice_delivered(notice, at);
                    report.notices_sent += 1;
                    (ActionOutcome::Applied, None)
                }
                crate::notify::Delivery::Failed { error, .. } => {
                    report.notices_failed += 1;
                    (ActionOutcome::Failed, Some(error))
                }
            };
            if let Some(m) = self.metrics {
                let label = if outcome == ActionOutcome::Applied { "delivered" } else { "failed" };
                m.notices.with_label_values(&[&plan.policy, label]).inc();
            }
            record.actions.push(RunAction {
                time: Time(at),
                account_id: notice.account_id.clone(),
                email: notice.email.clone(),
                action: crate::record::audit::NOTICE.into(),
                group: None,
                group_name: None,
                rule: notice.rule.clone(),
                reason: format!("{} (action due {})", notice.reason, notice.action_due.strftime("%Y-%m-%d")),
                outcome,
                error,
            });
        }
        if !plan.notices_to_send().is_empty() {
            save_ledger(self.ledger_store, ledger).await?;
            self.audit.write(record).await?;
        }

        let actions = plan.actions_to_apply();
        for (batch_no, batch) in actions.chunks(self.options.batch_size.max(1)).enumerate() {
            let offset = first_action + batch_no * self.options.batch_size.max(1);
            // Only the leader writes: the lease is checked before each batch.
            if report.lost_leadership || !(self.is_leader)() {
                report.lost_leadership = true;
                for (i, _) in batch.iter().enumerate() {
                    let ra = &mut record.actions[offset + i];
                    ra.outcome = ActionOutcome::Deferred;
                    ra.error = Some("this replica lost the leader lease; the next leader's run takes it up".into());
                    report.deferred += 1;
                }
                continue;
            }
            // Recorded as intended before any write of the batch (crash safety).
            let at = self.now().await;
            for a in batch {
                ledger.record_intended(a, &record.run_id, at);
            }
            save_ledger(self.ledger_store, ledger).await?;

            // Futures are built up front (not in a stream closure), which keeps the whole run
            // future Send for the controller.
            let writes: Vec<BoxFut<'_, WriteResult>> = batch
                .iter()
                .enumerate()
                .map(|(i, a)| -> BoxFut<'_, _> {
                    Box::pin(async move {
                        let (outcome, error, ledger_outcome) = self.apply_one(a).await;
                        (i, outcome, error, ledger_outcome)
                    })
                })
                .collect();
            let results: Vec<WriteResult> =
                futures::stream::iter(writes).buffer_unordered(self.options.concurrency.max(1)).collect().await;
            let at = self.now().await;
            for (i, outcome, error, ledger_outcome) in results {
                let a = &batch[i];
                ledger.record_outcome(a, ledger_outcome, at);
                let ra = &mut record.actions[offset + i];
                ra.time = Time(at);
                ra.outcome = outcome;
                ra.error = error.clone();
                match outcome {
                    ActionOutcome::Applied => {
                        report.applied += 1;
                        for (p, n) in &a.seats {
                            *report.seats.entry(*p).or_default() += *n as i64;
                        }
                    }
                    ActionOutcome::Failed => {
                        report.failed += 1;
                        report.failures.push(format!(
                            "{} {}: {}",
                            a.kind.label(),
                            a.email.as_deref().unwrap_or(&a.account_id),
                            error.as_deref().unwrap_or("failed")
                        ));
                    }
                    ActionOutcome::Skipped => report.skipped += 1,
                    ActionOutcome::Deferred => report.deferred += 1,
                    ActionOutcome::Planned => {}
                }
                if let Some(m) = self.metrics {
                    m.actions.with_label_values(&[&plan.policy, a.kind.label(), mode_label, outcome.label()]).inc();
                    if outcome == ActionOutcome::Applied {
                        for (p, n) in &a.seats {
                            if *n > 0 {
                                m.seats_reclaimed.with_label_values(&[&plan.policy, p.label()]).inc_by(*n as u64);
                            }
                        }
                    }
                }
            }
            save_ledger(self.ledger_store, ledger).await?;
            self.audit.write(record).await?;
        }
        record.phase = Some(RunPhase::Completed);
        Ok(report)
    }

    /// One write: re-read first when destructive; classify the outcome for the record and ledger.
    async fn apply_one(&self, a: &PlannedAction) -> (ActionOutcome, Option<String>, Outcome) {
        if a.destructive {
            match self.directory.reread(&a.directory_id, &a.account_id).await {
                Ok(Some(fresh)) => {
                    if let Some(why) = (self.recheck)(a, &fresh) {
                        return (ActionOutcome::Skipped, Some(why), Outcome::NotApplied);
                    }
                }
                Ok(None) => {
                    return (
                        ActionOutcome::Skipped,
                        Some("the user is no longer in the directory".into()),
                        Outcome::NotApplied,
                    );
                }
                Err(e) => {
                    // Without a fresh read there is no write (invariant 9).
                    return (
                        ActionOutcome::Failed,
                        Some(format!("re-read before write failed: {e}")),
                        Outcome::NotApplied,
                    );
                }
            }
        }
        match self.directory.write(a).await {
            WriteOutcome::Done | WriteOutcome::AlreadySo => (ActionOutcome::Applied, None, Outcome::Applied),
            WriteOutcome::Refused { reason, message } => {
                (ActionOutcome::Failed, Some(format!("refused ({reason}): {message}")), Outcome::NotApplied)
            }
            WriteOutcome::Failed { message } => (ActionOutcome::Failed, Some(message), Outcome::NotApplied),
        }
    }
}

/// The label a person reads for what an action does to them, for notices.
pub fn describe_for_person(kind: &ActionKind, product: Option<Product>) -> String {
    match kind {
        ActionKind::Suspend => "your access to Atlassian products will be suspended".into(),
        ActionKind::Deactivate => "your Atlassian account will be deactivated".into(),
        ActionKind::RemoveFromDirectory => "your account will be removed from the organization".into(),
        ActionKind::RemoveGroup { .. } => match product {
            Some(p) => format!("your {p} license will be removed"),
            None => "a product license will be removed from your account".into(),
        },
        other => other.label().to_owned(),
    }
}
