//! The plan: what the planner decided, for whom, why, and what it saves. Built by [`super::plan`],
//! read by the executor, the status writer, the audit trail and `seatwarden plan`.
//!
//! How the executor uses a [`PolicyPlan`]:
//! 1. apply [`Plan::ledger_updates`] to the ledger (observations: safe in every mode);
//! 2. if [`PolicyPlan::applies`] is false (DryRun, Paused, halted), write nothing and send nothing;
//! 3. send [`PolicyPlan::notices`], recording each *delivered* one with `Ledger::record_notice_delivered`;
//! 4. for each action of [`PolicyPlan::actions`] (already capped and conflict-free, longest-inactive
//!    first): `Ledger::record_intended`, re-read the user, [`super::recheck`], write, then
//!    `Ledger::record_outcome`.
//!
//! Deferred, held back, skipped and IdP items are for people: they are never applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use crate::action::{ActionBasis, ActionKind, PlannedAction, PlannedNotice};
use crate::crd::PolicyMode;
use crate::ledger::LedgerUpdate;
use crate::product::Product;

/// An action the caps pushed to a later run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeferredAction {
    pub action: PlannedAction,
    pub why: String,
}

/// A rule's decision that lost to another decision about the same user in this run (one
/// destructive decision per user per run). It returns in a later run if it still applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldBack {
    pub account_id: String,
    pub email: Option<String>,
    /// Names and reasons are shared across the entries of a policy (a plan can hold hundreds of
    /// thousands of them).
    pub policy: Arc<str>,
    pub rule: Arc<str>,
    pub kind: ActionKind,
    /// Which policy and rule won, and why.
    pub why: Arc<str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SkipKind {
    Protected,
    OrgAdmin,
    SiteAdmin,
    ApiKeyOwner,
    AppAccount,
    CustomerAccount,
    GracePeriod,
    /// Synced from an identity provider: reported for action there instead.
    IdpSynced,
    /// The rule's action doesn't apply to this account (e.g. deactivate an external account).
    NotApplicable,
    /// Asked to keep access (opt-in group or named for reactivation by an admin).
    OptedIn,
    /// Activity data for this user is missing or unreliable.
    NoActivityData,
    /// The account's type is missing or not one Atlassian documents: never acted on.
    UnknownAccountType,
    /// No email address: the user can't be warned, so rules with notice lead times don't act.
    NoEmail,
    /// Idle on every product but using an API token (integration, CI): not inactive.
    ApiTokenActive,
    /// Idle on every product seatwarden models but active on one it doesn't (Loom, Atlas, ...).
    UnmodelledProductActive,
    /// A group no GroupLicenseMapping names still grants the product: removing the mapped groups
    /// would take nothing and free no seat (unless the policy sets `removeWhenNoSeatFreed`).
    StillGranted,
}

impl SkipKind {
    pub fn label(self) -> &'static str {
        match self {
            SkipKind::Protected => "protected",
            SkipKind::OrgAdmin => "org-admin",
            SkipKind::SiteAdmin => "site-admin",
            SkipKind::ApiKeyOwner => "api-key-owner",
            SkipKind::AppAccount => "app-account",
            SkipKind::CustomerAccount => "customer-account",
            SkipKind::GracePeriod => "grace-period",
            SkipKind::IdpSynced => "idp-synced",
            SkipKind::NotApplicable => "not-applicable",
            SkipKind::OptedIn => "opted-in",
            SkipKind::NoActivityData => "no-activity-data",
            SkipKind::UnknownAccountType => "unknown-account-type",
            SkipKind::NoEmail => "no-email",
            SkipKind::ApiTokenActive => "api-token-active",
            SkipKind::UnmodelledProductActive => "unmodelled-product-active",
            SkipKind::StillGranted => "still-granted",
        }
    }
}

/// A user a rule would have acted on (or warned), and why it did not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedUser {
    pub account_id: String,
    pub email: Option<String>,
    pub kind: SkipKind,
    /// The rule that would have fired, when one would have.
    pub rule: Option<String>,
    pub why: String,
}

/// The whole run is halted: nothing of this policy is applied, no notice sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Halt {
    /// The condition reason, e.g. `MaxActionPercentExceeded`.
    pub reason: String,
    pub message: String,
}

/// Something people must know about the run (becomes a status condition or an event).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanCondition {
    /// CamelCase reason, e.g. `NoActivityData`, `IncompleteListing`, `UnresolvedGroup`.
    pub reason: String,
    pub message: String,
}

/// A change that must be made in the identity provider, because the user or group is synced from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdpAction {
    pub account_id: String,
    pub email: Option<String>,
    pub kind: ActionKind,
    pub rule: String,
    /// The synced group, when the change is a membership.
    pub group_name: Option<String>,
    pub reason: String,
}

/// Seats and money: what the applied actions would free (and reactivation/onboarding take).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Destructive actions (writes) planned, not counting deferred ones.
    pub destructive_actions: u32,
    /// Distinct users those actions touch.
    pub users_acted_on: u32,
    pub restorations: u32,
    pub onboardings: u32,
    pub notices: u32,
    /// Users warned earlier who are waiting out a notice lead time.
    pub waiting: u32,
    pub deferred: u32,
    pub skipped: u32,
    pub held_back: u32,
    pub idp_actions: u32,
    /// Seats freed per product (only writes that stop billing count).
    pub seats_freed: BTreeMap<Product, u32>,
    /// Seats taken again by restorations and onboarding, per product.
    pub seats_added: BTreeMap<Product, u32>,
    pub savings: Savings,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Savings {
    /// ISO 4217 code; None when the organization has no billing section.
    pub currency: Option<String>,
    /// Projected monthly saving of the freed seats, net of seats added, in `currency`.
    pub projected_monthly: f64,
    /// Per product, in `currency` (freed minus added).
    pub by_product: BTreeMap<Product, f64>,
    /// Products with freed seats but no price configured: their saving is not counted.
    pub unpriced_products: Vec<Product>,
    /// When the saving shows on the bill: the next cycle (monthly, maximum quantity billing gives
    /// no mid-cycle credit) or the renewal (annual). None when unknown.
    pub realized_from: Option<jiff::civil::Date>,
    /// How `realized_from` was obtained, for people.
    pub realized_note: String,
}

/// One policy's part of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyPlan {
    pub policy: String,
    pub mode: PolicyMode,
    /// True when the executor should write: Enforce, not halted, listing complete. DryRun and
    /// Paused policies never apply, whatever the plan shows.
    pub applies: bool,
    /// Human accounts passing the policy's scope (the base of `maxActionPercent`).
    pub in_scope: u32,
    /// Ordered longest-inactive first (destructive), then restorations, then onboarding.
    pub actions: Vec<PlannedAction>,
    pub notices: Vec<PlannedNotice>,
    pub deferred: Vec<DeferredAction>,
    pub held_back: Vec<HeldBack>,
    /// Users a rule would have targeted but a safety rule kept out, with why.
    pub skipped: Vec<SkippedUser>,
    /// Every in-scope user kept out of the policy's actions, by why (not only those a rule targeted).
    pub skipped_counts: BTreeMap<SkipKind, u32>,
    pub halt: Option<Halt>,
    pub conditions: Vec<PlanCondition>,
    pub idp_actions: Vec<IdpAction>,
    pub totals: Totals,
}

impl PolicyPlan {
    /// What the executor may write: nothing unless the policy applies.
    pub fn actions_to_apply(&self) -> &[PlannedAction] {
        if self.applies { &self.actions } else { &[] }
    }

    /// What the executor may send: nothing unless the policy applies.
    pub fn notices_to_send(&self) -> &[PlannedNotice] {
        if self.applies { &self.notices } else { &[] }
    }
}

/// The plan for one organization at one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub org_id: String,
    pub now: Timestamp,
    pub snapshot_taken_at: Timestamp,
    /// Every policy given, sorted by name (the order the organization's daily cap is spent in).
    pub policies: Vec<PolicyPlan>,
    /// Facts about the snapshot that hold for every policy (missing activity data, incomplete listing).
    pub conditions: Vec<PlanCondition>,
    /// Observations for the ledger (first seen, suspension first seen, settled in-flight writes).
    pub ledger_updates: Vec<LedgerUpdate>,
    /// Actions left of the organization's daily cap after this plan's applying policies.
    pub daily_cap_remaining: Option<u32>,
    /// Sums over every policy.
    pub totals: Totals,
    /// Products with a user limit in force (declared, or Atlassian refused at it): seats in use
    /// and the limit, as the plan saw them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_limits: Vec<super::limits::ProductSeats>,
}

impl Plan {
    pub fn policy(&self, name: &str) -> Option<&PolicyPlan> {
        self.policies.iter().find(|p| p.policy == name)
    }

    /// Every action of every policy, in plan order (including those of policies that don't apply).
    pub fn all_actions(&self) -> impl Iterator<Item = &PlannedAction> {
        self.policies.iter().flat_map(|p| p.actions.iter())
    }
}
