//! The shared vocabulary of writes: what an action is ([`ActionKind`]), what the planner saw when it
//! planned one ([`ActionBasis`]), a planned write ([`PlannedAction`]) and a planned notice
//! ([`PlannedNotice`]). Below both the planner (which makes them) and the ledger (which remembers
//! them), so imports run one way: policy → ledger → action.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::crd::Duration;
use crate::product::Product;
use crate::snapshot::{ManagementSource, UserStatus};

/// One write to Atlassian.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ActionKind {
    /// Suspend the user's access in the directory (not billed; groups kept).
    Suspend,
    /// Lift a suspension seatwarden made (reactivation).
    Restore,
    /// Deactivate a managed account (blocks it in every organization).
    Deactivate,
    /// Re-enable an account seatwarden deactivated (reactivation).
    Enable,
    /// Remove the user from the directory (groups are lost; the user must be re-invited).
    RemoveFromDirectory,
    /// Take the user out of one group.
    #[serde(rename_all = "camelCase")]
    RemoveGroup { group_id: String },
    /// Put the user into one group (reactivation, onboarding).
    #[serde(rename_all = "camelCase")]
    AddGroup { group_id: String },
    /// Re-invite a user seatwarden removed from the directory (reactivation named by an admin).
    Invite,
}

impl ActionKind {
    /// Takes access away. At most one destructive decision per user per run; caps count these.
    pub fn is_destructive(&self) -> bool {
        matches!(
            self,
            ActionKind::Suspend
                | ActionKind::Deactivate
                | ActionKind::RemoveFromDirectory
                | ActionKind::RemoveGroup { .. }
        )
    }

    /// How hard the action is to undo; the lower value wins a conflict (the gentler action goes first).
    pub fn severity(&self) -> u8 {
        match self {
            ActionKind::RemoveGroup { .. } => 1,
            ActionKind::Suspend => 2,
            ActionKind::Deactivate => 3,
            ActionKind::RemoveFromDirectory => 4,
            _ => 0,
        }
    }

    /// Bounded label, as the audit trail and metrics spell it.
    pub fn label(&self) -> &'static str {
        match self {
            ActionKind::Suspend => "suspend",
            ActionKind::Restore => "restore",
            ActionKind::Deactivate => "deactivate",
            ActionKind::Enable => "enable",
            ActionKind::RemoveFromDirectory => "remove-from-directory",
            ActionKind::RemoveGroup { .. } => "remove-group",
            ActionKind::AddGroup { .. } => "add-group",
            ActionKind::Invite => "invite",
        }
    }

    pub fn group_id(&self) -> Option<&str> {
        match self {
            ActionKind::RemoveGroup { group_id } | ActionKind::AddGroup { group_id } => Some(group_id),
            _ => None,
        }
    }
}

/// What the user looked like when the action was planned: `policy::recheck` compares a fresh read
/// against it right before the write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionBasis {
    pub status: UserStatus,
    pub management_source: ManagementSource,
    /// Last activity on any product, as the snapshot had it.
    pub last_active_any: Option<Timestamp>,
    /// Last activity on the rule's product (per-product rules).
    pub last_active_product: Option<Timestamp>,
    /// The product of a per-product rule.
    pub product: Option<Product>,
}

/// One planned write, with everything a person or the executor needs to know about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAction {
    pub account_id: String,
    pub email: Option<String>,
    /// The directory the write goes to.
    pub directory_id: String,
    pub kind: ActionKind,
    pub policy: String,
    /// The rule name; `reactivation` or `onboarding/<name>` for those.
    pub rule: String,
    /// For people: "no Jira activity for 94 days (threshold 60); notice sent 2026-11-10".
    pub reason: String,
    /// Seats this write frees (positive) or takes (negative), per product. For a user leaving
    /// several groups of one product the freed seat sits on the last of those group removals.
    pub seats: BTreeMap<Product, i32>,
    pub destructive: bool,
    /// Whole days without the activity the rule measures; orders actions longest-inactive first.
    pub inactive_days: Option<i64>,
    /// For RemoveFromDirectory: the group ids the user loses, so the ledger can restore them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups_lost: Vec<String>,
    pub basis: ActionBasis,
}

/// A notice to send now, before a destructive action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedNotice {
    pub account_id: String,
    pub email: Option<String>,
    /// Shared by every notice of the policy (a plan can hold hundreds of thousands).
    pub policy: std::sync::Arc<str>,
    pub rule: std::sync::Arc<str>,
    /// Which of the rule's lead times this notice stands for.
    pub lead_time: Duration,
    /// The earliest instant the action may happen if this notice is delivered now.
    pub action_due: Timestamp,
    /// The action that will follow (for the notice text).
    pub action: ActionKind,
    /// The product the user loses, for a per-product rule: with the action, what the notice
    /// announces (and all it counts for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<crate::product::Product>,
    pub reason: String,
}
