use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{PolicyMode, condition::conditions_schema};

/// The audit trail for people: one object per policy run that planned or took actions (split into
/// pages when large, so none nears the 1 MiB object limit). Written by the operator.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seatwarden.io",
    version = "v1alpha1",
    kind = "LifecycleRun",
    namespaced,
    cel,
    status = "LifecycleRunStatus",
    shortname = "lcr",
    category = "seatwarden",
    printcolumn(name = "Policy", type_ = "string", json_path = ".spec.policy"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Page", type_ = "integer", json_path = ".spec.page"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Applied", type_ = "integer", json_path = ".status.applied"),
    printcolumn(name = "Notices", type_ = "integer", json_path = ".status.noticesSent"),
    printcolumn(name = "Started", type_ = "date", json_path = ".spec.startTime")
)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRunSpec {
    /// The LifecyclePolicy that ran.
    pub policy: String,
    /// The AtlassianOrganization it ran against.
    pub organization: String,
    /// Identifies the run; shared by all pages of one run.
    #[schemars(length(min = 1, max = 128))]
    pub run_id: String,
    /// Page number, from 1, when one run spans several objects.
    #[schemars(range(min = 1, max = 100000))]
    pub page: i32,
    pub mode: PolicyMode,
    pub start_time: Time,
    /// Who ran it, for command-line runs (`--actor`, default the operating-system user); the
    /// operator's own runs leave it empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default)]
    pub actions: Vec<RunAction>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunAction {
    pub time: Time,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// suspend, deactivate, remove-from-directory, remove-group, add-group, restore, notice, ...
    pub action: String,
    /// Group id, for group actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The directory the write went to (with the account, action and group it identifies the
    /// write, so a later run settles exactly this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// The group's name as it was when the action was recorded, for people reading the trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    pub rule: String,
    pub reason: String,
    pub outcome: ActionOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ActionOutcome {
    Planned,
    Applied,
    Failed,
    Deferred,
    Skipped,
    /// Sent, no answer (a timeout or 5xx after sending): Atlassian may have applied it. The ledger
    /// keeps the intent and the next run settles it from a fresh read of the user.
    Unknown,
}

impl ActionOutcome {
    pub fn label(self) -> &'static str {
        match self {
            ActionOutcome::Planned => "planned",
            ActionOutcome::Applied => "applied",
            ActionOutcome::Failed => "failed",
            ActionOutcome::Deferred => "deferred",
            ActionOutcome::Skipped => "skipped",
            ActionOutcome::Unknown => "unknown",
        }
    }

    /// Whether the action still waits for an outcome (never started, or sent without an answer).
    pub fn is_open(self) -> bool {
        matches!(self, ActionOutcome::Planned | ActionOutcome::Unknown)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleRunStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RunPhase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    #[serde(default)]
    pub planned: i64,
    #[serde(default)]
    pub applied: i64,
    #[serde(default)]
    pub failed: i64,
    #[serde(default)]
    pub deferred: i64,
    #[serde(default)]
    pub skipped: i64,
    /// Writes sent without an answer, until a later run settles them.
    #[serde(default)]
    pub unknown: i64,
    /// Notices delivered in this run (listed among the actions as `notice`).
    #[serde(default)]
    pub notices_sent: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RunPhase {
    Running,
    Completed,
    Halted,
    Failed,
}
