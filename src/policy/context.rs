//! What every part of the planner shares: the input ([`PlanInput`]), the facts computed once per
//! plan ([`Ctx`]), one policy's decisions in the making ([`Draft`]), and small helpers to name
//! directories and groups and to record skips.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::crd::{
    AtlassianOrganization, GroupLicenseMapping, LifecyclePolicy, LocalRef, NoticeDelivery, PolicyMode, ProtectedUser,
};
use crate::ledger::{Ledger, LedgerUpdate, UserRecord};
use crate::product::Product;
use crate::snapshot::{Account, DirectorySnapshot, GroupIdx, UserStatus};

use super::eligibility::{AccountGuards, Protections};
use super::resolve::Claim;
use super::safety::ActivityHealth;
use super::savings::Licensing;
use super::types::{ActionBasis, Halt, HeldBack, IdpAction, PlanCondition, PlannedAction, SkipKind, SkippedUser};

/// Everything the planner reads.
pub struct PlanInput<'a> {
    pub snapshot: &'a DirectorySnapshot,
    /// The organization (its name ties policies and mappings to it; its billing prices savings).
    pub organization: &'a AtlassianOrganization,
    /// Policies of this organization (others are ignored with a condition).
    pub policies: &'a [LifecyclePolicy],
    pub protections: &'a [ProtectedUser],
    pub mappings: &'a [GroupLicenseMapping],
    pub ledger: &'a Ledger,
    pub now: Timestamp,
    /// Actions left today under the organization's `maxActionsPerDay` (see [`super::daily_remaining`]);
    /// None: no daily cap.
    pub daily_actions_remaining: Option<u32>,
}

/// Shared, precomputed facts of one plan.
pub(super) struct Ctx<'a> {
    pub(super) snapshot: &'a DirectorySnapshot,
    pub(super) now: i64,
    pub(super) health: ActivityHealth,
    pub(super) licensing: Licensing,
    pub(super) guards: Vec<AccountGuards>,
    pub(super) protections: Protections,
    /// The ledger record of each user (by index), looked up once.
    pub(super) recs: Vec<Option<&'a UserRecord>>,
    pub(super) ledger: &'a Ledger,
    pub(super) incomplete: bool,
    /// How notices reach people; rules with lead times act only when they can (invariant 4).
    pub(super) notice_delivery: NoticeDelivery,
    /// Seats against each product's user limit, for products with a limit in force.
    pub(super) user_limits: BTreeMap<Product, super::limits::ProductSeats>,
}

/// One policy's decisions before cross-policy resolution and caps.
pub(super) struct Draft<'a> {
    pub(super) policy: &'a LifecyclePolicy,
    /// The policy's name and its rules' names (by rule index), shared by every notice and
    /// held-back entry.
    pub(super) name: std::sync::Arc<str>,
    pub(super) rule_names: Vec<std::sync::Arc<str>>,
    pub(super) mode: PolicyMode,
    pub(super) in_scope: u32,
    pub(super) claims: Vec<Claim>,
    pub(super) held_back: Vec<HeldBack>,
    pub(super) restorations: Vec<PlannedAction>,
    pub(super) restored: Vec<u32>,
    pub(super) skipped: Vec<SkippedUser>,
    pub(super) skipped_counts: BTreeMap<SkipKind, u32>,
    pub(super) idp: Vec<IdpAction>,
    pub(super) conditions: Vec<PlanCondition>,
    pub(super) halt: Option<Halt>,
    pub(super) ledger_updates: Vec<LedgerUpdate>,
}

impl Ctx<'_> {
    /// Why account `ui` is never acted on by `policy`, if it is one of those (invariant 1).
    pub(super) fn guard(&self, ui: u32, policy: &str, namespace: Option<&str>) -> Option<(SkipKind, String)> {
        super::eligibility::guard_of(&self.protections, &self.guards, ui, policy, namespace)
    }
}

pub(super) fn belongs(org_name: Option<&str>, r: &LocalRef) -> bool {
    org_name.is_none_or(|n| n == r.name)
}

pub(super) fn name_of<K: kube::Resource>(k: &K) -> String {
    k.meta().name.clone().unwrap_or_default()
}

pub(super) fn directory_id(ctx: &Ctx<'_>, directory: u16) -> String {
    ctx.snapshot.directory_id(directory).to_owned()
}

/// The directory an account-wide write (deactivate, enable) is re-read in: its first.
pub(super) fn home_directory(user: &Account) -> u16 {
    user.memberships.first().map_or(0, |m| m.directory)
}

pub(super) fn group_id(ctx: &Ctx<'_>, g: GroupIdx) -> String {
    ctx.snapshot.groups[g as usize].id.clone()
}

/// What the plan saw, for the recheck; `status` is the status in the directory written to (the
/// account's status for account-wide writes).
pub(super) fn basis(user: &Account, status: UserStatus, product: Option<Product>) -> ActionBasis {
    ActionBasis {
        status,
        management_source: user.management_source,
        last_active_any: user.last_active_any(),
        last_active_product: product.and_then(|p| user.last_active_on(p)),
        product,
    }
}

pub(super) fn skip(d: &mut Draft<'_>, user: &Account, kind: SkipKind, rule: Option<&str>, why: String) {
    d.skipped.push(SkippedUser {
        account_id: user.account_id.clone(),
        email: user.email.clone(),
        kind,
        rule: rule.map(str::to_owned),
        why,
    });
}

pub(super) fn count(d: &mut Draft<'_>, kind: SkipKind) {
    *d.skipped_counts.entry(kind).or_default() += 1;
}
