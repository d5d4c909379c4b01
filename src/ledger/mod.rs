//! The ledger: per organization and per user, what seatwarden did and must remember, because the
//! Atlassian APIs do not expose it: notices delivered, groups it removed, suspensions it made or
//! first saw, accounts it took out, writes in flight, and when a user was first seen.
//!
//! This module holds the types and pure operations only; persisting (ConfigMaps in the cluster, a
//! local folder for `plan`/`demo`) is the caller's. [`Ledger::shards`] splits it by account id so
//! each stored piece stays far below the 1 MiB object limit; [`Ledger::merge`] joins the pieces.
//!
//! Records are kept only while they matter: a user with nothing left to remember is dropped.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::action::{ActionKind, PlannedAction, PlannedNotice};
use crate::crd::{Duration, RuleAction};
use crate::product::Product;
use crate::snapshot::DirectorySnapshot;

/// The ledger of one organization, keyed by account id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    #[serde(default)]
    pub org_id: String,
    #[serde(default)]
    pub users: BTreeMap<String, UserRecord>,
    /// Products Atlassian answered are at their user limit, and how many accounts held them then:
    /// an organization-wide fact (kept in the first shard). Onboarding plans no add into such a
    /// product until seats are freed below that count, or a declared limit above it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_limits: BTreeMap<Product, UserLimitHit>,
}

/// Atlassian refused a write because a product is at its user limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserLimitHit {
    /// Accounts holding the product (as seatwarden counts them from the snapshot, with the run's
    /// applied writes) when Atlassian refused: the limit is at most this.
    pub licensed: u32,
    /// The limit declared in the AtlassianOrganization then, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_limit: Option<u32>,
    pub at: Timestamp,
    /// Atlassian's answer, for people.
    pub message: String,
}

/// What seatwarden remembers about one account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// Kept so a user removed from the directory can be re-invited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// When seatwarden first saw the account. Recorded only for accounts whose snapshot lacks the
    /// date they were added (it stands in for it, for the grace period and never-active rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<Timestamp>,
    /// The suspension escalation rules count from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspension: Option<Suspension>,
    /// Delivered notices only: a notice that was not delivered does not count toward a lead time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<NoticeRecord>,
    /// Groups seatwarden took the user out of, for exact restoration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_groups: Vec<RemovedGroup>,
    /// Account-level actions seatwarden applied (suspend, deactivate, remove), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken_out: Vec<TakenOut>,
    /// The last time seatwarden restored this user or granted a group (onboarding): inactivity is
    /// measured from here, so a user who came back through an opt-in group, or was just given a
    /// product, is not taken out again at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_at: Option<Timestamp>,
    /// Writes recorded as intended and not yet settled (invariant 5: recorded before applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_flight: Vec<InFlight>,
}

impl UserRecord {
    fn is_empty(&self) -> bool {
        self.first_seen.is_none()
            && self.suspension.is_none()
            && self.notices.is_empty()
            && self.removed_groups.is_empty()
            && self.taken_out.is_empty()
            && self.restored_at.is_none()
            && self.in_flight.is_empty()
    }

    /// The latest activity seatwarden saw before it took groups away (see [`RemovedGroup::last_active`]).
    pub fn last_active_seen(&self) -> Option<Timestamp> {
        self.removed_groups.iter().filter_map(|g| g.last_active).max()
    }

    /// Whether seatwarden took something from this user for inactivity that it has not given back.
    pub fn holds_removals(&self) -> bool {
        !self.removed_groups.is_empty() || !self.taken_out.is_empty()
    }

    /// The delivered notice of `policy`/`rule` for `lead_time` that announced `action` (on
    /// `product`), delivered at or after `since` (invariant 4: a notice counts only for what it
    /// announced).
    pub fn delivered_notice(
        &self,
        policy: &str,
        rule: &str,
        lead_time: Duration,
        announced: (RuleAction, Option<Product>),
        since: Timestamp,
    ) -> Option<&NoticeRecord> {
        self.notices_since(policy, rule, lead_time, since)
            .filter(|n| n.action == Some(announced.0) && n.product == announced.1)
            .max_by_key(|n| n.delivered_at)
    }

    /// A notice of `policy`/`rule` for `lead_time` delivered since `since` that announced something
    /// else than `announced` (the rule's action or product changed since): it doesn't count, and
    /// the plan says why a new notice goes out.
    pub fn notice_announcing_otherwise(
        &self,
        policy: &str,
        rule: &str,
        lead_time: Duration,
        announced: (RuleAction, Option<Product>),
        since: Timestamp,
    ) -> Option<&NoticeRecord> {
        self.notices_since(policy, rule, lead_time, since)
            .filter(|n| n.action != Some(announced.0) || n.product != announced.1)
            .max_by_key(|n| n.delivered_at)
    }

    /// The delivered notices of `policy`/`rule` for `lead_time`, delivered at or after `since`.
    fn notices_since<'a, 'p>(
        &'a self,
        policy: &'p str,
        rule: &'p str,
        lead_time: Duration,
        since: Timestamp,
    ) -> impl Iterator<Item = &'a NoticeRecord> + use<'a, 'p> {
        self.notices.iter().filter(move |n| {
            n.policy == policy && n.rule == rule && n.lead_time == lead_time && n.delivered_at >= since
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suspension {
    /// The earliest suspension still in force: escalation counts from here.
    pub since: Timestamp,
    /// True when seatwarden suspended the user; false when it found the user suspended.
    pub by_seatwarden: bool,
    /// The directories the account is suspended in (a suspension is per directory in Atlassian).
    /// Empty in records kept before directories were: inferred from the snapshot then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeRecord {
    pub policy: String,
    pub rule: String,
    pub lead_time: Duration,
    /// What the notice announced: the rule's action when it was sent. A notice counts only for
    /// that action; a record without it (kept before seatwarden recorded it) counts for nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RuleAction>,
    /// The product it announced losing, for a per-product rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    pub delivered_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedGroup {
    pub group_id: String,
    /// The directory of the group (group ids are unique per directory only). Empty in records
    /// kept before directories were: inferred from the snapshot then.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub directory_id: String,
    /// The product the group granted, when a mapping said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    pub policy: String,
    pub rule: String,
    pub at: Timestamp,
    /// The user's last activity (on the group's product, or any) when it was removed: the snapshot
    /// stops showing activity on a product once access is gone, and a user who lost their only
    /// product must not look "never active" afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TakenOutKind {
    Suspended,
    Deactivated,
    RemovedFromDirectory,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TakenOut {
    pub kind: TakenOutKind,
    pub policy: String,
    pub rule: String,
    pub at: Timestamp,
    /// The directory of a suspension or a removal from the directory (empty for a deactivation,
    /// which is account-wide, and in records kept before directories were: inferred then).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub directory_id: String,
}

/// One write seatwarden recorded before sending it (invariant 5), until its outcome is known and
/// written to the audit trail too. Identified by [`InFlight::key`]: account, directory, action and
/// target group, so two group removals of one user are two writes, settled apart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    pub run_id: String,
    pub kind: ActionKind,
    pub policy: String,
    pub rule: String,
    pub at: Timestamp,
    /// The directory the write goes to (empty in records written before it was kept: the user's
    /// directory in the snapshot then).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub directory_id: String,
    /// Product of the group (group removals), carried into `removed_groups` on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    /// Groups the user loses (removal from the directory), carried into `removed_groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups_lost: Vec<String>,
    /// Last activity the plan saw (see [`RemovedGroup::last_active`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active: Option<Timestamp>,
    /// None: recorded, maybe sent, no outcome yet (a crash came first). `Unknown`: sent, no answer.
    /// A final outcome: its effect is already in this record, and the entry stays only until the
    /// audit trail has the outcome too ([`Ledger::forget_recorded`]), so a crash between the two
    /// writes still settles the audit trail exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// What identifies one write: directory, action label and target group (with the account).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WriteKey {
    pub account_id: String,
    pub directory_id: String,
    pub action: String,
    pub group: Option<String>,
}

impl WriteKey {
    pub fn of_action(a: &PlannedAction) -> Self {
        WriteKey {
            account_id: a.account_id.clone(),
            directory_id: a.directory_id.clone(),
            action: a.kind.label().to_owned(),
            group: a.kind.group_id().map(str::to_owned),
        }
    }
}

impl InFlight {
    pub fn key(&self, account_id: &str) -> WriteKey {
        WriteKey {
            account_id: account_id.to_owned(),
            directory_id: self.directory_id.clone(),
            action: self.kind.label().to_owned(),
            group: self.kind.group_id().map(str::to_owned),
        }
    }

    /// Still to be settled from what Atlassian shows: no outcome, or sent without an answer.
    pub fn is_open(&self) -> bool {
        matches!(self.outcome, None | Some(Outcome::Unknown))
    }

    /// This write: `kind` in `directory_id` (an empty id on either side matches any directory).
    fn is(&self, kind: &ActionKind, directory_id: &str) -> bool {
        &self.kind == kind
            && (self.directory_id.is_empty() || directory_id.is_empty() || self.directory_id == directory_id)
    }

    fn same_write(&self, a: &PlannedAction) -> bool {
        self.kind == a.kind && (self.directory_id.is_empty() || self.directory_id == a.directory_id)
    }
}

/// The outcome of one write, as the executor saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Applied,
    /// Nothing was sent (the recheck dropped it, a premise changed, the run stopped).
    NotApplied,
    /// Sent and answered: Atlassian did not apply it.
    Failed,
    /// Sent, no answer: Atlassian may have applied it. Settled by a later run's re-read.
    Unknown,
}

/// An observation the plan makes for the ledger. Apply them in every mode: they describe the
/// organization, not seatwarden's actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum LedgerUpdate {
    /// First sight of an account whose snapshot lacks the date it was added.
    #[serde(rename_all = "camelCase")]
    FirstSeen { account_id: String, at: Timestamp },
    /// Found suspended with no suspension on record: escalation counts from now.
    #[serde(rename_all = "camelCase")]
    SuspensionSeen {
        account_id: String,
        at: Timestamp,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        directory_ids: Vec<String>,
    },
    /// The account is suspended in other directories than the record says (someone lifted or
    /// added a suspension in one directory; or a record kept before directories were): the record
    /// now names these, and seatwarden's suspensions in the directories lifted are no longer held.
    #[serde(rename_all = "camelCase")]
    SuspensionDirectories { account_id: String, directory_ids: Vec<String> },
    /// The record says suspended but the user is not any more, in any directory read (someone
    /// restored them).
    #[serde(rename_all = "camelCase")]
    SuspensionEnded { account_id: String },
    /// Notices of one rule delivered before the user's latest relevant activity or return: they
    /// no longer count.
    #[serde(rename_all = "camelCase")]
    NoticesStale { account_id: String, policy: String, rule: String, before: Timestamp },
    /// An in-flight write the snapshot shows as done: settle it as applied.
    #[serde(rename_all = "camelCase")]
    InFlightApplied {
        account_id: String,
        kind: ActionKind,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        directory_id: String,
    },
    /// An in-flight write the snapshot shows as not done: drop it (the plan decides afresh).
    #[serde(rename_all = "camelCase")]
    InFlightNotApplied {
        account_id: String,
        kind: ActionKind,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        directory_id: String,
    },
    /// Activity on every product since the restoration: inactivity counts from the activity again.
    #[serde(rename_all = "camelCase")]
    ReturnSuperseded { account_id: String },
    /// Seatwarden's removals no longer apply (the user is back in the group, or restored by someone).
    #[serde(rename_all = "camelCase")]
    RemovalsSettled { account_id: String },
    /// Atlassian shows the account gone (a lookup answered 404, or seatwarden's removal was
    /// confirmed): nothing about it is worth keeping.
    #[serde(rename_all = "camelCase")]
    Forget { account_id: String },
    /// A product Atlassian said was full has room again (a higher limit was declared, or more
    /// accounts hold it now than when it refused): forget the refusal.
    #[serde(rename_all = "camelCase")]
    UserLimitLifted { product: Product, why: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LedgerError {
    #[error("ledger shards belong to different organizations: {first:?} and {other:?}")]
    MixedOrganizations { first: String, other: String },
    #[error("account {account_id} appears in two ledger shards with different records (a stale shard left behind?)")]
    ConflictingShards { account_id: String },
    #[error("a ledger needs at least one shard")]
    ZeroShards,
    #[error("ledger JSON does not parse: {0}")]
    Parse(String),
}

impl Ledger {
    pub fn new(org_id: impl Into<String>) -> Self {
        Self { org_id: org_id.into(), users: BTreeMap::new(), user_limits: BTreeMap::new() }
    }

    /// Nothing to store: no user record and no organization-wide fact.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.user_limits.is_empty()
    }

    /// Remembers that Atlassian refused a write into `product` at its user limit.
    pub fn record_user_limit(&mut self, product: Product, hit: UserLimitHit) {
        self.user_limits.insert(product, hit);
    }

    pub fn record(&self, account_id: &str) -> Option<&UserRecord> {
        self.users.get(account_id)
    }

    fn entry(&mut self, account_id: &str) -> &mut UserRecord {
        self.users.entry(account_id.to_owned()).or_default()
    }

    fn tidy(&mut self, account_id: &str) {
        if self.users.get(account_id).is_some_and(|r| r.is_empty()) {
            self.users.remove(account_id);
        }
    }

    /// Applies the plan's observations.
    pub fn apply_updates(&mut self, updates: &[LedgerUpdate]) {
        for update in updates {
            match update {
                LedgerUpdate::FirstSeen { account_id, at } => {
                    let rec = self.entry(account_id);
                    rec.first_seen.get_or_insert(*at);
                }
                LedgerUpdate::SuspensionSeen { account_id, at, directory_ids } => {
                    let rec = self.entry(account_id);
                    rec.suspension.get_or_insert(Suspension {
                        since: *at,
                        by_seatwarden: false,
                        directory_ids: directory_ids.clone(),
                    });
                }
                LedgerUpdate::SuspensionDirectories { account_id, directory_ids } => {
                    if let Some(rec) = self.users.get_mut(account_id)
                        && let Some(s) = rec.suspension.as_mut()
                    {
                        s.directory_ids.clone_from(directory_ids);
                        // Seatwarden's suspension of a directory no longer suspended is not held.
                        rec.taken_out.retain(|t| {
                            t.kind != TakenOutKind::Suspended
                                || t.directory_id.is_empty()
                                || directory_ids.contains(&t.directory_id)
                        });
                    }
                }
                LedgerUpdate::SuspensionEnded { account_id } => {
                    if let Some(rec) = self.users.get_mut(account_id) {
                        rec.suspension = None;
                        rec.taken_out.retain(|t| t.kind != TakenOutKind::Suspended);
                    }
                    self.tidy(account_id);
                }
                LedgerUpdate::NoticesStale { account_id, policy, rule, before } => {
                    if let Some(rec) = self.users.get_mut(account_id) {
                        rec.notices.retain(|n| &n.policy != policy || &n.rule != rule || n.delivered_at >= *before);
                    }
                    self.tidy(account_id);
                }
                LedgerUpdate::InFlightApplied { account_id, kind, directory_id } => {
                    if let Some(rec) = self.users.get_mut(account_id)
                        && let Some(pos) = rec.in_flight.iter().position(|f| f.is_open() && f.is(kind, directory_id))
                    {
                        let flight = rec.in_flight.remove(pos);
                        settle_applied(rec, &flight, account_id);
                    }
                    self.tidy(account_id);
                }
                LedgerUpdate::InFlightNotApplied { account_id, kind, directory_id } => {
                    if let Some(rec) = self.users.get_mut(account_id) {
                        rec.in_flight.retain(|f| !f.is_open() || !f.is(kind, directory_id));
                    }
                    self.tidy(account_id);
                }
                LedgerUpdate::ReturnSuperseded { account_id } => {
                    if let Some(rec) = self.users.get_mut(account_id) {
                        rec.restored_at = None;
                    }
                    self.tidy(account_id);
                }
                LedgerUpdate::RemovalsSettled { account_id } => {
                    if let Some(rec) = self.users.get_mut(account_id) {
                        rec.removed_groups.clear();
                        rec.taken_out.clear();
                    }
                    self.tidy(account_id);
                }
                LedgerUpdate::Forget { account_id } => {
                    self.users.remove(account_id);
                }
                LedgerUpdate::UserLimitLifted { product, .. } => {
                    self.user_limits.remove(product);
                }
            }
        }
    }

    /// Records a notice the mail server accepted. Only delivered notices count toward lead times.
    pub fn record_notice_delivered(&mut self, notice: &PlannedNotice, delivered_at: Timestamp) {
        let rec = self.entry(&notice.account_id);
        if rec.email.is_none() {
            rec.email.clone_from(&notice.email);
        }
        rec.notices.push(NoticeRecord {
            policy: notice.policy.to_string(),
            rule: notice.rule.to_string(),
            lead_time: notice.lead_time,
            action: announced(&notice.action),
            product: notice.product,
            delivered_at,
        });
    }

    /// Records a write before it is applied (invariant 5). Recording the same write again (a later
    /// run planning it anew) keeps one entry, the newest.
    pub fn record_intended(&mut self, action: &PlannedAction, run_id: &str, at: Timestamp) {
        let rec = self.entry(&action.account_id);
        if rec.email.is_none() {
            rec.email.clone_from(&action.email);
        }
        rec.in_flight.retain(|f| !(f.is_open() && f.same_write(action)));
        rec.in_flight.push(InFlight {
            run_id: run_id.to_owned(),
            kind: action.kind.clone(),
            policy: action.policy.clone(),
            rule: action.rule.clone(),
            at,
            directory_id: action.directory_id.clone(),
            product: action.basis.product.filter(|_| matches!(action.kind, ActionKind::RemoveGroup { .. })),
            groups_lost: action.groups_lost.clone(),
            last_active: seen_active(action),
            outcome: None,
        });
    }

    /// Records the outcome of a write whose audit record is written separately or not at all
    /// (the entry is not kept for the audit trail).
    pub fn record_outcome(&mut self, action: &PlannedAction, outcome: Outcome, at: Timestamp) {
        self.record_result(action, "", outcome, at);
        let account_id = action.account_id.clone();
        if let Some(rec) = self.users.get_mut(&account_id) {
            rec.in_flight.retain(|f| f.is_open() || !f.same_write(action));
        }
        self.tidy(&account_id);
    }

    /// Records the outcome of a write recorded with [`Ledger::record_intended`] (or, if it was not,
    /// records it directly). An applied write takes effect in the record now; the entry itself
    /// stays (with its outcome) until [`Ledger::forget_recorded`] says the audit trail has it; an
    /// unknown outcome stays open until a later run settles it.
    pub fn record_result(&mut self, action: &PlannedAction, run_id: &str, outcome: Outcome, at: Timestamp) {
        let account_id = action.account_id.clone();
        let rec = self.entry(&account_id);
        let mut flight = match rec.in_flight.iter().position(|f| f.is_open() && f.same_write(action)) {
            Some(pos) => rec.in_flight.remove(pos),
            None => InFlight {
                run_id: run_id.to_owned(),
                kind: action.kind.clone(),
                policy: action.policy.clone(),
                rule: action.rule.clone(),
                at,
                directory_id: action.directory_id.clone(),
                product: action.basis.product.filter(|_| matches!(action.kind, ActionKind::RemoveGroup { .. })),
                groups_lost: action.groups_lost.clone(),
                last_active: seen_active(action),
                outcome: None,
            },
        };
        if outcome == Outcome::Applied {
            flight.at = at;
            settle_applied(rec, &flight, &account_id);
        }
        flight.outcome = Some(outcome);
        rec.in_flight.push(flight);
    }

    /// Settles an open write (no outcome, or unknown) from what Atlassian shows now: `applied` when
    /// a fresh read finds it in effect. The entry keeps its final outcome until the audit trail
    /// has it. Returns false when no open write has that key.
    pub fn settle(&mut self, key: &WriteKey, applied: bool) -> bool {
        let Some(rec) = self.users.get_mut(&key.account_id) else { return false };
        let Some(pos) = rec.in_flight.iter().position(|f| f.is_open() && f.key(&key.account_id) == *key) else {
            return false;
        };
        let mut flight = rec.in_flight.remove(pos);
        let was_sent = flight.outcome == Some(Outcome::Unknown);
        if applied {
            settle_applied(rec, &flight, &key.account_id);
            flight.outcome = Some(Outcome::Applied);
        } else {
            flight.outcome = Some(if was_sent { Outcome::Failed } else { Outcome::NotApplied });
        }
        rec.in_flight.push(flight);
        true
    }

    /// Drops the settled entries of `run_id` once the audit trail records their outcomes.
    pub fn forget_recorded(&mut self, run_id: &str) {
        let ids: Vec<String> = self
            .users
            .iter()
            .filter(|(_, r)| r.in_flight.iter().any(|f| !f.is_open() && f.run_id == run_id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(rec) = self.users.get_mut(&id) {
                rec.in_flight.retain(|f| f.is_open() || f.run_id != run_id);
            }
            self.tidy(&id);
        }
    }

    /// Writes recorded as intended (or sent without an answer) and not yet settled: what a crashed
    /// run left in flight, and unknown outcomes.
    pub fn in_flight(&self) -> impl Iterator<Item = (&str, &InFlight)> {
        self.writes().filter(|(_, f)| f.is_open())
    }

    /// Every recorded write: open ones and settled ones the audit trail may not have yet.
    pub fn writes(&self) -> impl Iterator<Item = (&str, &InFlight)> {
        self.users.iter().flat_map(|(id, r)| r.in_flight.iter().map(move |f| (id.as_str(), f)))
    }

    /// Which of `shard_count` shards holds `account_id`: FNV-1a, stable across builds and versions.
    pub fn shard_index(account_id: &str, shard_count: u32) -> u32 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in account_id.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash % u64::from(shard_count.max(1))) as u32
    }

    /// Splits the ledger into `shard_count` ledgers of the same organization, by account id.
    pub fn shards(&self, shard_count: u32) -> Result<Vec<Ledger>, LedgerError> {
        if shard_count == 0 {
            return Err(LedgerError::ZeroShards);
        }
        let mut shards: Vec<Ledger> = (0..shard_count).map(|_| Ledger::new(self.org_id.clone())).collect();
        for (id, rec) in &self.users {
            shards[Self::shard_index(id, shard_count) as usize].users.insert(id.clone(), rec.clone());
        }
        shards[0].user_limits = self.user_limits.clone();
        Ok(shards)
    }

    /// How many shards keep each serialized shard under `max_bytes`, with a 25% margin for growth
    /// and uneven hashing.
    pub fn shard_count_for(&self, max_bytes: usize) -> u32 {
        let size = self.to_json().len();
        let budget = (max_bytes * 3 / 4).max(1);
        (size.div_ceil(budget)).max(1) as u32
    }

    /// Joins shards back into one ledger. Identical duplicates are tolerated; differing ones are an
    /// error rather than a silent pick.
    pub fn merge(shards: impl IntoIterator<Item = Ledger>) -> Result<Ledger, LedgerError> {
        let mut merged: Option<Ledger> = None;
        for shard in shards {
            let Some(acc) = merged.as_mut() else {
                merged = Some(shard);
                continue;
            };
            if acc.org_id != shard.org_id {
                if acc.org_id.is_empty() {
                    acc.org_id = shard.org_id.clone();
                } else if !shard.org_id.is_empty() {
                    return Err(LedgerError::MixedOrganizations { first: acc.org_id.clone(), other: shard.org_id });
                }
            }
            for (product, hit) in shard.user_limits {
                // Only the first shard carries them; should two, the later refusal is the news.
                match acc.user_limits.get(&product) {
                    Some(known) if known.at >= hit.at => {}
                    _ => {
                        acc.user_limits.insert(product, hit);
                    }
                }
            }
            for (id, rec) in shard.users {
                match acc.users.get(&id) {
                    Some(existing) if *existing != rec => {
                        return Err(LedgerError::ConflictingShards { account_id: id });
                    }
                    Some(_) => {}
                    None => {
                        acc.users.insert(id, rec);
                    }
                }
            }
        }
        merged.ok_or(LedgerError::ZeroShards)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a ledger always serializes")
    }

    pub fn from_json(json: &str) -> Result<Ledger, LedgerError> {
        serde_json::from_str(json).map_err(|e| LedgerError::Parse(e.to_string()))
    }
}

/// At most this many absent accounts are looked up per run (each lookup costs one call per
/// directory read, paced by the request budget like every other call).
pub const GONE_LOOKUPS_PER_RUN: usize = 20;

impl Ledger {
    /// The accounts whose records may end this run if Atlassian answers that they are gone: absent
    /// from a complete snapshot, nothing in flight (settled first), and not removed from the
    /// directory by seatwarden (that record is what a re-invitation restores from: its absence is
    /// seatwarden's own confirmed removal). When the snapshot did not read every directory of the
    /// organization (`all_directories` false), only records whose every fact names a directory
    /// read this run: facts of directories not read are kept. At most `limit`, starting at an
    /// offset that moves with `rotate` so no record waits forever behind others.
    pub fn absent_accounts(
        &self,
        snapshot: &DirectorySnapshot,
        all_directories: bool,
        limit: usize,
        rotate: u64,
    ) -> Vec<String> {
        if snapshot.incomplete.is_some() || snapshot.directories.is_empty() || limit == 0 {
            return Vec::new();
        }
        let read = |d: &str| if d.is_empty() { all_directories } else { snapshot.read_directory(d) };
        let candidates: Vec<&String> = self
            .users
            .iter()
            .filter(|(id, rec)| {
                snapshot.account(id).is_none()
                    && rec.in_flight.is_empty()
                    && !rec.taken_out.iter().any(|t| t.kind == TakenOutKind::RemovedFromDirectory)
                    && rec.removed_groups.iter().all(|g| read(&g.directory_id))
                    && rec.taken_out.iter().all(|t| read(&t.directory_id))
                    && rec.suspension.as_ref().is_none_or(|s| {
                        if s.directory_ids.is_empty() {
                            all_directories
                        } else {
                            s.directory_ids.iter().all(|d| read(d))
                        }
                    })
            })
            .map(|(id, _)| id)
            .collect();
        if candidates.is_empty() {
            return Vec::new();
        }
        let start = (rotate % candidates.len() as u64) as usize;
        candidates.iter().cycle().skip(start).take(limit.min(candidates.len())).map(|id| (*id).clone()).collect()
    }
}

/// Whether lookups of an account show it gone: every directory looked in answered 404
/// (`Ok(false)`). Any other answer — present, refused, failed, no lookup at all — keeps the record.
pub fn shows_gone(answers: &[Result<bool, String>]) -> bool {
    !answers.is_empty() && answers.iter().all(|a| matches!(a, Ok(false)))
}

/// The rule action a notice of this write announces (notices precede destructive writes only).
fn announced(kind: &ActionKind) -> Option<RuleAction> {
    match kind {
        ActionKind::RemoveGroup { .. } => Some(RuleAction::RemoveLicensedGroups),
        ActionKind::Suspend => Some(RuleAction::Suspend),
        ActionKind::Deactivate => Some(RuleAction::Deactivate),
        ActionKind::RemoveFromDirectory => Some(RuleAction::RemoveFromDirectory),
        _ => None,
    }
}

/// The last activity an action's plan saw: on the rule's product for group removals, else any.
fn seen_active(action: &PlannedAction) -> Option<Timestamp> {
    match action.kind {
        ActionKind::RemoveGroup { .. } => action.basis.last_active_product.or(action.basis.last_active_any),
        _ => action.basis.last_active_any,
    }
}

/// The effect of an applied write on the record. Facts are per directory: the write's directory
/// (`flight.directory_id`; empty in records kept before it was: then it matches every directory).
fn settle_applied(rec: &mut UserRecord, flight: &InFlight, _account_id: &str) {
    let dir = flight.directory_id.as_str();
    let here = |d: &str| dir.is_empty() || d.is_empty() || d == dir;
    let taken = |kind| TakenOut {
        kind,
        policy: flight.policy.clone(),
        rule: flight.rule.clone(),
        at: flight.at,
        directory_id: if kind == TakenOutKind::Deactivated { String::new() } else { dir.to_owned() },
    };
    let removed = |group_id: &str, product| RemovedGroup {
        group_id: group_id.to_owned(),
        directory_id: dir.to_owned(),
        product,
        policy: flight.policy.clone(),
        rule: flight.rule.clone(),
        at: flight.at,
        last_active: flight.last_active,
    };
    // The suspension of this directory ends; the record's ends when no directory is left.
    let lift = |rec: &mut UserRecord| {
        if let Some(s) = rec.suspension.as_mut() {
            s.directory_ids.retain(|d| !here(d));
            if s.directory_ids.is_empty() || dir.is_empty() {
                rec.suspension = None;
            }
        }
    };
    match &flight.kind {
        ActionKind::RemoveGroup { group_id } => {
            if !rec.removed_groups.iter().any(|g| &g.group_id == group_id && g.directory_id == dir) {
                rec.removed_groups.push(removed(group_id, flight.product));
            }
        }
        ActionKind::Suspend => {
            match rec.suspension.as_mut() {
                None => {
                    rec.suspension = Some(Suspension {
                        since: flight.at,
                        by_seatwarden: true,
                        directory_ids: if dir.is_empty() { vec![] } else { vec![dir.to_owned()] },
                    })
                }
                Some(s) => {
                    // Suspended elsewhere already: escalation keeps counting from the earliest.
                    s.by_seatwarden = true;
                    s.since = s.since.min(flight.at);
                    if !dir.is_empty() && !s.directory_ids.iter().any(|d| d == dir) {
                        s.directory_ids.push(dir.to_owned());
                    }
                }
            }
            rec.taken_out.push(taken(TakenOutKind::Suspended));
        }
        ActionKind::Deactivate => rec.taken_out.push(taken(TakenOutKind::Deactivated)),
        ActionKind::RemoveFromDirectory => {
            lift(rec);
            rec.taken_out.push(taken(TakenOutKind::RemovedFromDirectory));
            for group_id in &flight.groups_lost {
                if !rec.removed_groups.iter().any(|g| &g.group_id == group_id && g.directory_id == dir) {
                    rec.removed_groups.push(removed(group_id, None));
                }
            }
        }
        ActionKind::AddGroup { group_id } => {
            rec.removed_groups.retain(|g| !(&g.group_id == group_id && here(&g.directory_id)));
            // Restored or newly granted: inactivity on what the group grants counts from now, not
            // from the date the user joined the organization.
            rec.restored_at = Some(flight.at);
            // Back in a directory it was removed from once every group it lost there is back.
            let removed_groups = &rec.removed_groups;
            let lost_in = |d: &str| match d {
                "" => !removed_groups.is_empty(),
                d => removed_groups.iter().any(|g| g.directory_id == d || g.directory_id.is_empty()),
            };
            let back: Vec<bool> = rec
                .taken_out
                .iter()
                .map(|t| {
                    t.kind == TakenOutKind::RemovedFromDirectory && here(&t.directory_id) && !lost_in(&t.directory_id)
                })
                .collect();
            let mut back = back.into_iter();
            rec.taken_out.retain(|_| !back.next().unwrap_or(false));
        }
        ActionKind::Restore => {
            lift(rec);
            let whole = rec.suspension.is_none();
            rec.taken_out.retain(|t| {
                t.kind != TakenOutKind::Suspended
                    || !(t.directory_id == dir || dir.is_empty() || (t.directory_id.is_empty() && whole))
            });
            rec.restored_at = Some(flight.at);
        }
        ActionKind::Enable => {
            rec.taken_out.retain(|t| t.kind != TakenOutKind::Deactivated);
            rec.restored_at = Some(flight.at);
        }
        ActionKind::Invite => {
            // Back in the directory; the groups it lost are restored by the next run's AddGroup
            // actions. The removal stays on record until they are (the last AddGroup, or the
            // snapshot showing them back, settles it): it is what tells the next run this is a
            // returner, whether or not an admin still names the account.
            rec.restored_at = Some(flight.at);
        }
    }
}

#[cfg(test)]
mod tests;
