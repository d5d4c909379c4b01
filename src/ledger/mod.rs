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
use crate::crd::Duration;
use crate::product::Product;

/// The ledger of one organization, keyed by account id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    #[serde(default)]
    pub org_id: String,
    #[serde(default)]
    pub users: BTreeMap<String, UserRecord>,
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

    /// The delivered notice of `policy`/`rule` for `lead_time`, delivered at or after `since`.
    pub fn delivered_notice(
        &self,
        policy: &str,
        rule: &str,
        lead_time: Duration,
        since: Timestamp,
    ) -> Option<&NoticeRecord> {
        self.notices
            .iter()
            .filter(|n| n.policy == policy && n.rule == rule && n.lead_time == lead_time && n.delivered_at >= since)
            .max_by_key(|n| n.delivered_at)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suspension {
    pub since: Timestamp,
    /// True when seatwarden suspended the user; false when it found the user suspended.
    pub by_seatwarden: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoticeRecord {
    pub policy: String,
    pub rule: String,
    pub lead_time: Duration,
    pub delivered_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovedGroup {
    pub group_id: String,
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InFlight {
    pub run_id: String,
    pub kind: ActionKind,
    pub policy: String,
    pub rule: String,
    pub at: Timestamp,
    /// Product of the group (group removals), carried into `removed_groups` on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Product>,
    /// Groups the user loses (removal from the directory), carried into `removed_groups`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups_lost: Vec<String>,
    /// Last activity the plan saw (see [`RemovedGroup::last_active`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active: Option<Timestamp>,
}

/// The outcome of one write, as the executor saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Applied,
    /// Nothing changed (error, or the recheck dropped it).
    NotApplied,
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
    SuspensionSeen { account_id: String, at: Timestamp },
    /// The record says suspended but the user is not any more (someone restored them).
    #[serde(rename_all = "camelCase")]
    SuspensionEnded { account_id: String },
    /// Notices of one rule delivered before the user's latest relevant activity or return: they
    /// no longer count.
    #[serde(rename_all = "camelCase")]
    NoticesStale { account_id: String, policy: String, rule: String, before: Timestamp },
    /// An in-flight write the snapshot shows as done: settle it as applied.
    #[serde(rename_all = "camelCase")]
    InFlightApplied { account_id: String, kind: ActionKind },
    /// An in-flight write the snapshot shows as not done: drop it (the plan decides afresh).
    #[serde(rename_all = "camelCase")]
    InFlightNotApplied { account_id: String, kind: ActionKind },
    /// Activity on every product since the restoration: inactivity counts from the activity again.
    #[serde(rename_all = "camelCase")]
    ReturnSuperseded { account_id: String },
    /// Seatwarden's removals no longer apply (the user is back in the group, or restored by someone).
    #[serde(rename_all = "camelCase")]
    RemovalsSettled { account_id: String },
    /// The account is gone from the organization and nothing about it is worth keeping.
    #[serde(rename_all = "camelCase")]
    Forget { account_id: String },
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
        Self { org_id: org_id.into(), users: BTreeMap::new() }
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
                LedgerUpdate::SuspensionSeen { account_id, at } => {
                    let rec = self.entry(account_id);
                    rec.suspension.get_or_insert(Suspension { since: *at, by_seatwarden: false });
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
                LedgerUpdate::InFlightApplied { account_id, kind } => {
                    if let Some(rec) = self.users.get_mut(account_id)
                        && let Some(pos) = rec.in_flight.iter().position(|f| &f.kind == kind)
                    {
                        let flight = rec.in_flight.remove(pos);
                        settle_applied(rec, &flight, account_id);
                    }
                    self.tidy(account_id);
                }
                LedgerUpdate::InFlightNotApplied { account_id, kind } => {
                    if let Some(rec) = self.users.get_mut(account_id) {
                        rec.in_flight.retain(|f| &f.kind != kind);
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
            policy: notice.policy.clone(),
            rule: notice.rule.clone(),
            lead_time: notice.lead_time,
            delivered_at,
        });
    }

    /// Records a write before it is applied (invariant 5). Recording the same write twice keeps one.
    pub fn record_intended(&mut self, action: &PlannedAction, run_id: &str, at: Timestamp) {
        let rec = self.entry(&action.account_id);
        if rec.email.is_none() {
            rec.email.clone_from(&action.email);
        }
        if rec.in_flight.iter().any(|f| f.kind == action.kind) {
            return;
        }
        rec.in_flight.push(InFlight {
            run_id: run_id.to_owned(),
            kind: action.kind.clone(),
            policy: action.policy.clone(),
            rule: action.rule.clone(),
            at,
            product: action.basis.product.filter(|_| matches!(action.kind, ActionKind::RemoveGroup { .. })),
            groups_lost: action.groups_lost.clone(),
            last_active: seen_active(action),
        });
    }

    /// Records the outcome of a write recorded with [`Ledger::record_intended`] (or, if it was not,
    /// settles it directly).
    pub fn record_outcome(&mut self, action: &PlannedAction, outcome: Outcome, at: Timestamp) {
        let account_id = action.account_id.clone();
        let rec = self.entry(&account_id);
        let flight = match rec.in_flight.iter().position(|f| f.kind == action.kind) {
            Some(pos) => rec.in_flight.remove(pos),
            None => InFlight {
                run_id: String::new(),
                kind: action.kind.clone(),
                policy: action.policy.clone(),
                rule: action.rule.clone(),
                at,
                product: action.basis.product,
                groups_lost: action.groups_lost.clone(),
                last_active: seen_active(action),
            },
        };
        if outcome == Outcome::Applied {
            let flight = InFlight { at, ..flight };
            settle_applied(rec, &flight, &account_id);
        }
        self.tidy(&account_id);
    }

    /// Writes recorded as intended and never settled: what a crashed run left in flight.
    pub fn in_flight(&self) -> impl Iterator<Item = (&str, &InFlight)> {
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

/// The last activity an action's plan saw: on the rule's product for group removals, else any.
fn seen_active(action: &PlannedAction) -> Option<Timestamp> {
    match action.kind {
        ActionKind::RemoveGroup { .. } => action.basis.last_active_product.or(action.basis.last_active_any),
        _ => action.basis.last_active_any,
    }
}

/// The effect of an applied write on the record.
fn settle_applied(rec: &mut UserRecord, flight: &InFlight, _account_id: &str) {
    let taken = |kind| TakenOut { kind, policy: flight.policy.clone(), rule: flight.rule.clone(), at: flight.at };
    match &flight.kind {
        ActionKind::RemoveGroup { group_id } => {
            if !rec.removed_groups.iter().any(|g| &g.group_id == group_id) {
                rec.removed_groups.push(RemovedGroup {
                    group_id: group_id.clone(),
                    product: flight.product,
                    policy: flight.policy.clone(),
                    rule: flight.rule.clone(),
                    at: flight.at,
                    last_active: flight.last_active,
                });
            }
        }
        ActionKind::Suspend => {
            rec.suspension = Some(Suspension { since: flight.at, by_seatwarden: true });
            rec.taken_out.push(taken(TakenOutKind::Suspended));
        }
        ActionKind::Deactivate => rec.taken_out.push(taken(TakenOutKind::Deactivated)),
        ActionKind::RemoveFromDirectory => {
            rec.suspension = None;
            rec.taken_out.push(taken(TakenOutKind::RemovedFromDirectory));
            for group_id in &flight.groups_lost {
                if !rec.removed_groups.iter().any(|g| &g.group_id == group_id) {
                    rec.removed_groups.push(RemovedGroup {
                        group_id: group_id.clone(),
                        product: None,
                        policy: flight.policy.clone(),
                        rule: flight.rule.clone(),
                        at: flight.at,
                        last_active: flight.last_active,
                    });
                }
            }
        }
        ActionKind::AddGroup { group_id } => {
            rec.removed_groups.retain(|g| &g.group_id != group_id);
            // Restored or newly granted: inactivity on what the group grants counts from now, not
            // from the date the user joined the organization.
            rec.restored_at = Some(flight.at);
            if rec.removed_groups.is_empty() {
                rec.taken_out.retain(|t| t.kind != TakenOutKind::RemovedFromDirectory);
            }
        }
        ActionKind::Restore => {
            rec.suspension = None;
            rec.taken_out.retain(|t| t.kind != TakenOutKind::Suspended);
            rec.restored_at = Some(flight.at);
        }
        ActionKind::Enable => {
            rec.taken_out.retain(|t| t.kind != TakenOutKind::Deactivated);
            rec.restored_at = Some(flight.at);
        }
        ActionKind::Invite => {
            // Back in the directory; the groups it lost are restored by the next run's AddGroup
            // actions, so `removed_groups` stays until then.
            rec.taken_out.retain(|t| t.kind != TakenOutKind::RemovedFromDirectory);
            rec.restored_at = Some(flight.at);
        }
    }
}

#[cfg(test)]
mod tests;
