//! The executor: applies one policy's part of a plan through the Atlassian client, under the caps
//! the planner already applied and the client's request budget, recording before and after.
//!
//! The order of one batch, chosen so a crash at any instant leaves enough to settle every write
//! exactly (DESIGN invariant 5; the instants are [`FailPoint`]s the tests crash at):
//! 1. the run's record lists every action Planned before anything is sent;
//! 2. before each batch the premises are re-read (policy mode, generation, deletion, the
//!    ProtectedUsers, the process dry-run flag: invariant 12); a change stops the remaining writes;
//! 3. the batch's intents are saved in the ledger, each keyed by account, directory, action and
//!    target group;
//! 4. per write: a fresh read right before a destructive write (invariant 9; without activity data
//!    the action is deferred, never guessed), the lease confirmed with a margin (invariant 10), the
//!    write; its outcome is Applied, NotApplied, Failed or Unknown (sent, no answer);
//! 5. the outcomes are saved in the ledger (applied effects in place, each entry kept with its
//!    outcome), then in the audit trail; then the ledger lets go of the settled entries.
//!
//! A later run settles whatever a crash left open from a fresh read of each user
//! ([`crate::engine`]). Notices are saved in the ledger one by one as they are delivered, so a
//! crash never sends one twice.

pub mod atlassian;
pub mod failpoint;

use std::{collections::BTreeMap, future::Future, pin::Pin};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub use failpoint::{FailPoint, FailPoints};

use crate::{
    clock::Clock,
    crd::{ActionOutcome, RunAction, RunPhase},
    ledger::{Ledger, Outcome},
    metrics::Metrics,
    notify::{Notice, Notifier},
    policy::{ActionKind, PlannedAction, PlannedNotice, PolicyPlan},
    product::Product,
    record::{AuditSink, Fence, LedgerStore, Put, RecordError, RunRecord, Stored, ledger_store::LEDGER_SHARDS},
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
    /// Sent and answered: not applied.
    Failed {
        message: String,
    },
    /// Sent, no answer (a timeout or 5xx after sending, retries spent): Atlassian may have applied it.
    Unknown {
        message: String,
    },
}

/// A fresh read of one user right before a write.
#[derive(Clone, Debug, PartialEq)]
pub struct FreshRead {
    /// `groups` index the snapshot's group table.
    pub user: DirectoryUser,
    /// False when the read carried no activity data (the v2 fallback): the user's product access
    /// is empty for lack of data, not for lack of activity.
    pub activity_known: bool,
}

/// One write's result: its index in the batch, the audit outcome, the error, the ledger outcome.
type WriteResult = Result<(usize, ActionOutcome, Option<String>, Outcome), RecordError>;

/// One write as [`Executor::apply_one`] classifies it: the audit outcome, the error, the ledger
/// outcome, and Atlassian's message when it refused at a user limit.
type Applied = (ActionOutcome, Option<String>, Outcome, Option<String>);

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The writes and the one-user re-read the executor needs from the Atlassian client.
pub trait DirectoryWriter: Send + Sync {
    /// The user as Atlassian has it now (None: no longer in the directory).
    fn reread<'a>(
        &'a self,
        directory_id: &'a str,
        account_id: &'a str,
    ) -> BoxFut<'a, Result<Option<FreshRead>, String>>;
    fn write<'a>(&'a self, action: &'a PlannedAction) -> BoxFut<'a, WriteOutcome>;
    /// Whether the account is in the directory, by a lookup whose 404 is Atlassian's positive
    /// answer that it is not (`Ok(false)`); any other failure is `Err`. Writers that cannot look
    /// accounts up answer `Err`, so no ledger record ends on their word.
    fn account_in_directory<'a>(
        &'a self,
        directory_id: &'a str,
        account_id: &'a str,
    ) -> BoxFut<'a, Result<bool, String>> {
        let _ = (directory_id, account_id);
        Box::pin(async { Err("this writer cannot look accounts up".to_owned()) })
    }
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

/// What a re-read of a run's premises found (invariant 12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PremiseCheck {
    Hold,
    /// The remaining writes stop: those of `skip` (index into the plan's actions → why) are
    /// Skipped, the rest Deferred with `reason`.
    Changed {
        reason: String,
        skip: BTreeMap<usize, String>,
    },
}

/// Re-reads the premises of a policy's plan before a batch (invariant 12).
pub trait Premises: Send + Sync {
    /// `remaining` are the indices of the plan's actions not yet started.
    fn check<'a>(&'a self, plan: &'a PolicyPlan, remaining: Vec<usize>) -> BoxFut<'a, PremiseCheck>;
}

/// Premises that never change (the command line, the demo: nothing else edits their inputs).
pub struct Unchanging;

impl Premises for Unchanging {
    fn check<'a>(&'a self, _plan: &'a PolicyPlan, _remaining: Vec<usize>) -> BoxFut<'a, PremiseCheck> {
        Box::pin(async { PremiseCheck::Hold })
    }
}

/// Transient notice failures in a row after which the rest of a run's notices are not attempted.
const MAIL_DOWN_AFTER: u32 = 3;
/// Notices between two audit writes (the ledger is saved after every delivered notice).
const NOTICES_PER_AUDIT_WRITE: usize = 10;

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
    /// Sent without an answer: settled by the next run.
    pub unknown: i64,
    pub notices_sent: i64,
    pub notices_failed: i64,
    /// Seats freed by applied actions, per product (negative: seats taken by restores/onboarding).
    pub seats: BTreeMap<Product, i64>,
    pub failures: Vec<String>,
    /// Why the run stopped before its last write (a premise changed), if it did.
    pub stopped: Option<String>,
    /// Writes Atlassian refused because a product is at its user limit (at most one per product
    /// per run: the rest into that product are deferred without a write).
    pub limit_refusals: Vec<LimitRefusal>,
}

/// Atlassian refused a write because a product is at its user limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitRefusal {
    /// The products the refusal blocks (empty: the message named none the write would take).
    pub products: Vec<Product>,
    /// Atlassian's message.
    pub message: String,
    pub at: Timestamp,
}

/// Products Atlassian said are full during one organization's run: shared by the policies run
/// together, so no write goes into a product Atlassian refused for the rest of the run.
#[derive(Debug, Default)]
pub struct UserLimitGate {
    blocked: std::sync::Mutex<UserLimitsBlocked>,
}

#[derive(Debug, Default)]
struct UserLimitsBlocked {
    products: BTreeMap<Product, String>,
    /// A refusal that named no product seatwarden can tell: every seat-taking write waits.
    unknown: Option<String>,
}

/// Whether a write can take a seat (and so be refused at a user limit).
pub fn takes_seat(a: &PlannedAction) -> bool {
    matches!(a.kind, ActionKind::AddGroup { .. } | ActionKind::Restore | ActionKind::Enable | ActionKind::Invite)
}

fn gained(a: &PlannedAction) -> impl Iterator<Item = Product> + '_ {
    a.seats.iter().filter(|(_, n)| **n < 0).map(|(p, _)| *p)
}

impl UserLimitGate {
    /// Why `a` is not written (a product it takes is full), or None.
    pub fn blocks(&self, a: &PlannedAction) -> Option<String> {
        let b = self.blocked.lock().expect("user limit lock");
        let why = |name: &str, message: &str| {
            format!(
                "{name} answered earlier in this run that it is at its user limit ({message}): not tried again this \
                 run; planned again once seats are freed or a higher limit is declared in spec.userLimits"
            )
        };
        if let Some(m) = &b.unknown {
            return Some(why("a product", m));
        }
        gained(a).find_map(|p| b.products.get(&p).map(|m| why(p.display_name(), m)))
    }

    /// Records Atlassian's refusal of `a`; returns the products it blocks.
    pub fn refused(&self, a: &PlannedAction, message: &str) -> Vec<Product> {
        let named = Product::named_in(message);
        let taken: Vec<Product> = gained(a).collect();
        let mut products: Vec<Product> = taken.iter().copied().filter(|p| named.contains(p)).collect();
        if products.is_empty() {
            products = if taken.is_empty() { named } else { taken };
        }
        let mut b = self.blocked.lock().expect("user limit lock");
        if products.is_empty() {
            b.unknown = Some(message.to_owned());
        }
        for p in &products {
            b.products.insert(*p, message.to_owned());
        }
        products
    }
}

pub struct Executor<'a, D: DirectoryWriter + ?Sized, L: LedgerStore, A: AuditSink> {
    pub directory: &'a D,
    pub ledger_store: &'a L,
    pub audit: &'a A,
    pub notifier: &'a dyn Notifier,
    pub render_notice: &'a NoticeRenderer<'a>,
    pub recheck: &'a Recheck<'a>,
    pub premises: &'a dyn Premises,
    pub fence: &'a dyn Fence,
    pub fail: &'a FailPoints,
    pub clock: &'a Clock,
    pub metrics: Option<&'a Metrics>,
    pub options: ExecuteOptions,
    /// Products Atlassian refused at their user limit this run (shared by the organization's
    /// policies run together).
    pub user_limits: &'a UserLimitGate,
}

/// Saves the ledger's changed shards, each conditionally on the version last read or written. On
/// a conflict (another writer changed a shard) the shard is re-read and merged per account —
/// an account only one side changed takes that side — and written again; `ledger` learns what
/// the other writer recorded. An account both changed differently is an error, never overwritten.
pub async fn save_ledger<L: LedgerStore>(store: &L, ledger: &mut Ledger) -> Result<(), RecordError> {
    let corrupt = |name: String, e: crate::ledger::LedgerError| RecordError::Corrupt { name, message: e.to_string() };
    let shards = ledger.shards(LEDGER_SHARDS as u32).map_err(|e| corrupt("ledger".into(), e))?;
    for (index, shard) in shards.into_iter().enumerate() {
        let mut ours = shard;
        let mut base = store.base(index);
        for attempt in 1.. {
            let json = (!ours.is_empty()).then(|| ours.to_json());
            if json.as_deref() == base.as_ref().map(|b| b.json.as_str()) || (json.is_none() && base.is_none()) {
                break;
            }
            match store.put(index, json.as_deref(), base.as_ref().map(|b| b.version.as_str())).await? {
                Put::Written => break,
                Put::Conflict if attempt < 5 => {
                    let theirs = store.load_shard(index).await?;
                    let parse = |s: &Option<Stored>| -> Result<Ledger, RecordError> {
                        match s {
                            Some(s) if !s.json.is_empty() => {
                                Ledger::from_json(&s.json).map_err(|e| corrupt(format!("ledger shard {index}"), e))
                            }
                            _ => Ok(Ledger::new(ledger.org_id.clone())),
                        }
                    };
                    let merged = merge_shard(index, &parse(&base)?, &ours, &parse(&theirs)?)?;
                    tracing::warn!(shard = index, "ledger shard changed by another writer; merged");
                    for id in ours.users.keys().chain(merged.users.keys()).cloned().collect::<Vec<_>>() {
                        match merged.users.get(&id) {
                            Some(r) => ledger.users.insert(id, r.clone()),
                            None => ledger.users.remove(&id),
                        };
                    }
                    ours = merged;
                    base = theirs;
                }
                Put::Conflict => {
                    return Err(RecordError::Conflict {
                        name: format!("ledger shard {index}"),
                        detail: "still changing after 5 attempts".into(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Three-way merge of one shard, per account: `base` is what this writer last saw.
fn merge_shard(index: usize, base: &Ledger, ours: &Ledger, theirs: &Ledger) -> Result<Ledger, RecordError> {
    let mut merged = Ledger::new(if ours.org_id.is_empty() { theirs.org_id.clone() } else { ours.org_id.clone() });
    // The organization-wide facts as one: ours when this writer changed them, else theirs.
    merged.user_limits =
        if ours.user_limits == base.user_limits { theirs.user_limits.clone() } else { ours.user_limits.clone() };
    let ids: std::collections::BTreeSet<&String> =
        base.users.keys().chain(ours.users.keys()).chain(theirs.users.keys()).collect();
    for id in ids {
        let (b, o, t) = (base.users.get(id), ours.users.get(id), theirs.users.get(id));
        let pick = if o == b {
            t
        } else if t == b || o == t {
            o
        } else {
            return Err(RecordError::Conflict {
                name: format!("ledger shard {index}"),
                detail: format!("both writers changed the record of account {id}"),
            });
        };
        if let Some(r) = pick {
            merged.users.insert(id.clone(), r.clone());
        }
    }
    Ok(merged)
}

/// Loads the ledger of `org_id` from its shards (an empty ledger when none are stored).
pub async fn load_ledger<L: LedgerStore>(store: &L, org_id: &str) -> Result<Ledger, RecordError> {
    let stored = store.load().await?;
    if stored.is_empty() {
        return Ok(Ledger::new(org_id));
    }
    let mut shards = vec![];
    for (i, s) in stored {
        shards.push(
            Ledger::from_json(&s.json)
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

pub fn run_action(
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
        directory: Some(a.directory_id.clone()).filter(|d| !d.is_empty()),
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

        let actions = plan.actions_to_apply();
        let all: Vec<usize> = (0..actions.len()).collect();
        if !plan.notices_to_send().is_empty() {
            if let PremiseCheck::Changed { reason, skip } = self.premises.check(plan, all.clone()).await {
                return self.stop(plan, &all, first_action, reason, skip, record, report).await;
            }
            self.send_notices(plan, ledger, record, &mut report).await?;
        }

        let batch_size = self.options.batch_size.max(1);
        for (batch_no, batch) in actions.chunks(batch_size).enumerate() {
            let offset = batch_no * batch_size;
            let remaining: Vec<usize> = (offset..actions.len()).collect();
            if let PremiseCheck::Changed { reason, skip } = self.premises.check(plan, remaining.clone()).await {
                return self.stop(plan, &remaining, first_action, reason, skip, record, report).await;
            }
            // Recorded as intended before any write of the batch (crash safety).
            let at = self.now().await;
            for a in batch {
                ledger.record_intended(a, &record.run_id, at);
            }
            save_ledger(self.ledger_store, ledger).await?;
            self.fail.pass(FailPoint::AfterIntent)?;

            // Futures are built up front (not in a stream closure), which keeps the whole run
            // future Send for the controller. Writes that can take a seat go one at a time, after
            // the others: the first refusal at a user limit stops the rest into that product, and
            // none is in flight beside it.
            let writes: Vec<BoxFut<'_, WriteResult>> = batch
                .iter()
                .enumerate()
                .filter(|(_, a)| !takes_seat(a))
                .map(|(i, a)| -> BoxFut<'_, _> {
                    Box::pin(async move {
                        let (outcome, error, ledger_outcome, _) = self.apply_one(a).await?;
                        self.fail.pass(FailPoint::AfterWrite)?;
                        Ok((i, outcome, error, ledger_outcome))
                    })
                })
                .collect();
            let mut results: Vec<WriteResult> =
                futures::stream::iter(writes).buffer_unordered(self.options.concurrency.max(1)).collect().await;
            for (i, a) in batch.iter().enumerate().filter(|(_, a)| takes_seat(a)) {
                if results.iter().any(Result::is_err) {
                    break;
                }
                if let Some(why) = self.user_limits.blocks(a) {
                    results.push(Ok((i, ActionOutcome::Deferred, Some(why), Outcome::NotApplied)));
                    continue;
                }
                let written = self.apply_one(a).await;
                if let Ok((_, _, _, Some(message))) = &written {
                    let products = self.user_limits.refused(a, message);
                    tracing::info!(policy = %plan.policy, ?products, message, "refused at a user limit: no more writes into it this run");
                    report.limit_refusals.push(LimitRefusal {
                        products,
                        message: message.clone(),
                        at: self.now().await,
                    });
                }
                results.push(match written {
                    Ok((outcome, error, ledger_outcome, _)) => {
                        self.fail.pass(FailPoint::AfterWrite).map(|()| (i, outcome, error, ledger_outcome))
                    }
                    Err(e) => Err(e),
                });
            }
            // A refused fence or a crash: nothing more is recorded here; the next leader settles the
            // batch's intents from what Atlassian shows.
            let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
            let at = self.now().await;
            for (i, outcome, error, ledger_outcome) in results {
                let a = &batch[i];
                ledger.record_result(a, &record.run_id, ledger_outcome, at);
                let ra = &mut record.actions[first_action + offset + i];
                ra.time = Time(at);
                ra.outcome = outcome;
                ra.error = error.clone();
                self.count(plan, a, outcome, error.as_deref(), &mut report);
            }
            save_ledger(self.ledger_store, ledger).await?;
            self.fail.pass(FailPoint::AfterLedgerSave)?;
            self.audit.write(record).await?;
            // The audit trail has the outcomes: the ledger lets go of the settled entries (saved
            // with the next batch's intents, or at the end of the run).
            ledger.forget_recorded(&record.run_id);
        }
        record.phase = Some(RunPhase::Completed);
        Ok(report)
    }

    fn count(
        &self,
        plan: &PolicyPlan,
        a: &PlannedAction,
        outcome: ActionOutcome,
        error: Option<&str>,
        report: &mut ExecutionReport,
    ) {
        match outcome {
            ActionOutcome::Applied => {
                report.applied += 1;
                for (p, n) in &a.seats {
                    *report.seats.entry(*p).or_default() += *n as i64;
                }
            }
            ActionOutcome::Failed | ActionOutcome::Unknown => {
                if outcome == ActionOutcome::Failed {
                    report.failed += 1;
                } else {
                    report.unknown += 1;
                }
                report.failures.push(format!(
                    "{} {}: {}",
                    a.kind.label(),
                    a.email.as_deref().unwrap_or(&a.account_id),
                    error.unwrap_or("failed")
                ));
            }
            ActionOutcome::Skipped => report.skipped += 1,
            ActionOutcome::Deferred => report.deferred += 1,
            ActionOutcome::Planned => {}
        }
        if let Some(m) = self.metrics {
            m.actions.with_label_values(&[&plan.policy, a.kind.label(), plan.mode.label(), outcome.label()]).inc();
            if outcome == ActionOutcome::Applied {
                for (p, n) in &a.seats {
                    if *n > 0 {
                        m.seats_reclaimed.with_label_values(&[&plan.policy, p.label()]).inc_by(*n as u64);
                    }
                }
            }
        }
    }

    /// A premise changed: the remaining actions are recorded Skipped (those `skip` names) or
    /// Deferred with the reason, and nothing more is written to Atlassian.
    #[allow(clippy::too_many_arguments)]
    async fn stop(
        &self,
        plan: &PolicyPlan,
        remaining: &[usize],
        first_action: usize,
        reason: String,
        skip: BTreeMap<usize, String>,
        record: &mut RunRecord,
        mut report: ExecutionReport,
    ) -> Result<ExecutionReport, RecordError> {
        tracing::warn!(policy = %plan.policy, reason, left = remaining.len(), "run stopped: a premise changed");
        let at = self.now().await;
        for &i in remaining {
            let a = &plan.actions[i];
            let (outcome, why) = match skip.get(&i) {
                Some(why) => (ActionOutcome::Skipped, why.clone()),
                None => (ActionOutcome::Deferred, format!("{reason}; the run stopped before this write")),
            };
            let ra = &mut record.actions[first_action + i];
            ra.time = Time(at);
            ra.outcome = outcome;
            ra.error = Some(why.clone());
            self.count(plan, a, outcome, Some(&why), &mut report);
        }
        report.stopped = Some(reason);
        record.phase = Some(RunPhase::Completed);
        self.audit.write(record).await?;
        Ok(report)
    }

    /// Sends the plan's notices, saving each delivered one in the ledger before the next is sent.
    async fn send_notices(
        &self,
        plan: &PolicyPlan,
        ledger: &mut Ledger,
        record: &mut RunRecord,
        report: &mut ExecutionReport,
    ) -> Result<(), RecordError> {
        // Only a delivered notice counts toward a lead time. After a few transient failures in a
        // row the mail server is taken as down for this run: the remaining notices wait for the
        // next run instead of each waiting out its retries.
        let mut consecutive_transient = 0;
        let mut unwritten = 0;
        for notice in plan.notices_to_send() {
            let Some((message, settings)) = (self.render_notice)(notice) else { continue };
            let delivery = if consecutive_transient >= MAIL_DOWN_AFTER {
                crate::notify::Delivery::Failed {
                    error: format!("not sent: the last {MAIL_DOWN_AFTER} notices failed; the mail server looks down"),
                    transient: true,
                }
            } else {
                self.fence.confirm().await.map_err(RecordError::Fenced)?;
                crate::notify::send_notice(self.notifier, &message, settings.as_ref()).await
            };
            let at = self.now().await;
            match &delivery {
                crate::notify::Delivery::Failed { transient: true, .. } => consecutive_transient += 1,
                _ => consecutive_transient = 0,
            }
            let (outcome, error) = match delivery {
                crate::notify::Delivery::Delivered => {
                    ledger.record_notice_delivered(notice, at);
                    // Saved before the next notice goes out: a crash never sends one twice.
                    save_ledger(self.ledger_store, ledger).await?;
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
            record.actions.push(notice_action(notice, at, outcome, error));
            unwritten += 1;
            if unwritten >= NOTICES_PER_AUDIT_WRITE {
                self.audit.write(record).await?;
                unwritten = 0;
            }
            if outcome == ActionOutcome::Applied {
                self.fail.pass(FailPoint::BetweenNotices)?;
            }
        }
        if unwritten > 0 {
            self.audit.write(record).await?;
        }
        Ok(())
    }

    /// One write: re-read first when destructive; classify the outcome for the record and ledger.
    /// The last element is Atlassian's message when it refused at a user limit.
    async fn apply_one(&self, a: &PlannedAction) -> Result<Applied, RecordError> {
        if a.destructive {
            match self.directory.reread(&a.directory_id, &a.account_id).await {
                Ok(Some(fresh)) => {
                    if !fresh.activity_known {
                        // Empty product access here means "not read", not "inactive" (invariant 2).
                        return Ok((
                            ActionOutcome::Deferred,
                            Some(
                                "the fresh read before the write carried no activity data; deferred rather than \
                                 guessed"
                                    .into(),
                            ),
                            Outcome::NotApplied,
                            None,
                        ));
                    }
                    if let Some(why) = (self.recheck)(a, &fresh.user) {
                        return Ok((ActionOutcome::Skipped, Some(why), Outcome::NotApplied, None));
                    }
                }
                Ok(None) => {
                    return Ok((
                        ActionOutcome::Skipped,
                        Some("the user is no longer in the directory".into()),
                        Outcome::NotApplied,
                        None,
                    ));
                }
                Err(e) => {
                    // Without a fresh read there is no write (invariant 9).
                    return Ok((
                        ActionOutcome::Failed,
                        Some(format!("re-read before write failed: {e}")),
                        Outcome::NotApplied,
                        None,
                    ));
                }
            }
        }
        // Only the leader writes: the lease is confirmed, with a margin, right before each write.
        self.fence.confirm().await.map_err(RecordError::Fenced)?;
        Ok(match self.directory.write(a).await {
            WriteOutcome::Done | WriteOutcome::AlreadySo => (ActionOutcome::Applied, None, Outcome::Applied, None),
            WriteOutcome::Refused { reason, message } => {
                let limit = (reason == crate::atlassian::RefusalReason::LicenseLimit.label()).then(|| message.clone());
                (ActionOutcome::Failed, Some(format!("refused ({reason}): {message}")), Outcome::Failed, limit)
            }
            WriteOutcome::Failed { message } => (ActionOutcome::Failed, Some(message), Outcome::Failed, None),
            WriteOutcome::Unknown { message } => (
                ActionOutcome::Unknown,
                Some(format!("sent, no answer ({message}); the next run settles it from a fresh read")),
                Outcome::Unknown,
                None,
            ),
        })
    }
}

/// A notice as the audit trail lists it.
pub fn notice_action(
    notice: &PlannedNotice,
    at: Timestamp,
    outcome: ActionOutcome,
    error: Option<String>,
) -> RunAction {
    RunAction {
        time: Time(at),
        account_id: notice.account_id.clone(),
        email: notice.email.clone(),
        action: crate::record::audit::NOTICE.into(),
        group: None,
        group_name: None,
        directory: None,
        rule: notice.rule.to_string(),
        reason: format!("{} (action due {})", notice.reason, notice.action_due.strftime("%Y-%m-%d")),
        outcome,
        error,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::ActionBasis;
    use crate::snapshot::{ManagementSource, UserStatus};

    fn add(seats: &[Product]) -> PlannedAction {
        PlannedAction {
            account_id: "acc".into(),
            email: None,
            directory_id: "dir".into(),
            kind: ActionKind::AddGroup { group_id: "g".into() },
            policy: "p".into(),
            rule: "onboarding/x".into(),
            reason: String::new(),
            seats: seats.iter().map(|p| (*p, -1)).collect(),
            destructive: false,
            inactive_days: None,
            groups_lost: vec![],
            basis: ActionBasis {
                status: UserStatus::Active,
                management_source: ManagementSource::Invited,
                last_active_any: None,
                last_active_product: None,
                product: None,
            },
        }
    }

    #[test]
    fn a_refusal_blocks_the_products_it_names_among_those_the_write_takes() {
        use Product::*;
        let gate = UserLimitGate::default();
        assert_eq!(gate.blocks(&add(&[JiraServiceManagement])), None);
        // The write takes Jira and JSM; Atlassian names JSM: only JSM is full.
        let refused = gate.refused(&add(&[JiraSoftware, JiraServiceManagement]), "Jira Service Management is full");
        assert_eq!(refused, [JiraServiceManagement]);
        assert!(gate.blocks(&add(&[JiraServiceManagement])).unwrap().starts_with("Jira Service Management answered"));
        assert_eq!(gate.blocks(&add(&[JiraSoftware])), None);
        assert_eq!(gate.blocks(&add(&[])), None, "a write that takes no seat is not held");
        // A message that names nothing: the products the write takes.
        assert_eq!(gate.refused(&add(&[Confluence]), "the number of licensed users is exceeded"), [Confluence]);
        // Neither the message nor the write names one: every seat-taking write waits.
        assert_eq!(gate.refused(&add(&[]), "limit exceeded"), []);
        assert!(gate.blocks(&add(&[Bitbucket])).unwrap().starts_with("a product answered"));
        assert!(takes_seat(&add(&[])) && !takes_seat(&PlannedAction { kind: ActionKind::Suspend, ..add(&[]) }));
    }
}
