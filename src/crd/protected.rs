use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::condition::conditions_schema;

/// People who must never be touched: break-glass admins, service accounts, people on leave.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seatwarden.io",
    version = "v1alpha1",
    kind = "ProtectedUser",
    namespaced,
    cel,
    status = "ProtectedUserStatus",
    shortname = "pu",
    category = "seatwarden",
    printcolumn(name = "Reason", type_ = "string", json_path = ".spec.reason"),
    printcolumn(name = "Matched", type_ = "integer", json_path = ".status.matchedUsers"),
    printcolumn(name = "State", type_ = "string", json_path = ".status.state"),
    printcolumn(name = "Expires", type_ = "string", json_path = ".spec.expiresAt"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.accountIds) && size(self.accountIds) > 0) || (has(self.emails) && size(self.emails) > 0) || (has(self.emailPatterns) && size(self.emailPatterns) > 0) || (has(self.groups) && size(self.groups) > 0)",
    "message": "name at least one account id, email, email pattern or group"
}]))]
pub struct ProtectedUserSpec {
    /// Why these people are protected; shown wherever a protection skips an action.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// Atlassian account ids.
    #[serde(default)]
    pub account_ids: Vec<String>,
    /// Exact email addresses (case-insensitive).
    #[serde(default)]
    pub emails: Vec<String>,
    /// Email glob patterns, `*` and `?`, e.g. `svc-*@example.com`.
    #[serde(default)]
    pub email_patterns: Vec<String>,
    /// Members of these groups (names or ids).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The protection ends at this instant (e.g. the end of parental leave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// Policies (names, same namespace) this applies to. Empty means every policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProtectedUserStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Users in the organization this protection matches now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_users: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ProtectionState>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProtectionState {
    Active,
    Expired,
}
