use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Duration, LocalRef, condition::conditions_schema, duration};
use crate::product::Product;

/// What to do about inactive, never-active, returning and new users of one organization, and how
/// carefully. DryRun (the default) plans and reports; Enforce acts; Paused does nothing.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seatwarden.io",
    version = "v1alpha1",
    kind = "LifecyclePolicy",
    namespaced,
    cel,
    status = "LifecyclePolicyStatus",
    shortname = "lcp",
    category = "seatwarden",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(
        name = "Halted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"SafetyHalted\")].status",
        priority = 1
    ),
    printcolumn(name = "Last Run", type_ = "date", json_path = ".status.lastRunTime"),
    printcolumn(name = "Reclaimed", type_ = "integer", json_path = ".status.seatsReclaimed"),
    printcolumn(name = "Savings/mo", type_ = "string", json_path = ".status.projectedMonthlySavings", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicySpec {
    /// The AtlassianOrganization this policy acts on.
    pub organization_ref: LocalRef,
    /// DryRun (default) plans and reports without acting; Enforce acts; Paused does nothing.
    #[serde(default)]
    pub mode: PolicyMode,
    #[serde(default)]
    pub schedule: Schedule,
    /// Who this policy looks at at all.
    #[serde(default)]
    pub scope: Scope,
    /// Rules, evaluated in order; a user receives at most one destructive action per run.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub rules: Vec<Rule>,
    /// Give back what seatwarden took when people return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactivation: Option<Reactivation>,
    /// Put new people in the right groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub onboarding: Vec<Onboarding>,
    /// Notice templates and reply address for this policy's notices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notices: Option<NoticeSettings>,
    #[serde(default)]
    pub caps: Caps,
    /// Accounts added to the organization more recently than this are never acted on. Days or
    /// weeks (`14d`, `2w`).
    #[serde(default = "default_grace_period", with = "duration::days")]
    #[schemars(schema_with = "duration::days::schema")]
    pub new_account_grace_period: Duration,
    /// Added to every inactivity threshold, because activity data lags up to 24 hours. Days, weeks
    /// or hours (`1d`, `12h`).
    #[serde(default = "default_activity_lag_margin", with = "duration::hours")]
    #[schemars(schema_with = "duration::hours::schema")]
    pub activity_lag_margin: Duration,
}

pub fn default_grace_period() -> Duration {
    Duration::from_days(14)
}

pub fn default_activity_lag_margin() -> Duration {
    Duration::from_days(1)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PolicyMode {
    #[default]
    DryRun,
    Enforce,
    Paused,
}

impl PolicyMode {
    /// Bounded metric label.
    pub fn label(self) -> &'static str {
        match self {
            PolicyMode::DryRun => "dry_run",
            PolicyMode::Enforce => "enforce",
            PolicyMode::Paused => "paused",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Time between runs, e.g. `24h`, `6h`, `30m` (here `m` means minutes).
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Runs start only inside this daily window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

fn default_interval() -> Duration {
    Duration::from_hours(24)
}

impl Default for Schedule {
    fn default() -> Self {
        Self { interval: default_interval(), window: None }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// Start of the window, HH:MM, in `timeZone`.
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: String,
    /// End of the window, HH:MM, in `timeZone`; before `start` means the window spans midnight.
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub end: String,
    /// IANA time zone, e.g. `Europe/Berlin`, `America/New_York` (default UTC). An unknown zone
    /// makes the policy invalid (condition Ready False, reason InvalidSpec); it never means
    /// "always open". Across daylight-saving changes a start or end the clock skips falls on the
    /// change, and one it reads twice is its first reading.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$"))]
    pub time_zone: String,
    /// Days of the week the window is open; empty means every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<Weekday>,
}

fn default_time_zone() -> String {
    "UTC".to_owned()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// Managed (the organization's claimed domains) and/or External accounts.
    #[serde(default = "default_account_types")]
    #[schemars(length(min = 1))]
    pub account_types: Vec<AccountScope>,
    /// Only members of these groups (names or ids); empty means everyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_groups: Vec<String>,
    /// Never members of these groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_groups: Vec<String>,
    /// Only these email domains; empty means every domain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_email_domains: Vec<String>,
    /// Never these email domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_email_domains: Vec<String>,
}

fn default_account_types() -> Vec<AccountScope> {
    vec![AccountScope::Managed, AccountScope::External]
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            account_types: default_account_types(),
            include_groups: vec![],
            exclude_groups: vec![],
            include_email_domains: vec![],
            exclude_email_domains: vec![],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AccountScope {
    Managed,
    External,
}

/// One rule: a trigger, an action and optional notice lead times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "(has(self.productInactivity) ? 1 : 0) + (has(self.accountInactivity) ? 1 : 0) + (has(self.neverActive) ? 1 : 0) + (has(self.suspendedFor) ? 1 : 0) == 1",
     "message": "a rule needs exactly one trigger: productInactivity, accountInactivity, neverActive or suspendedFor"},
    {"rule": "has(self.productInactivity) == (self.action == 'RemoveLicensedGroups')",
     "message": "productInactivity goes with action RemoveLicensedGroups, and RemoveLicensedGroups only with productInactivity"},
    {"rule": "!has(self.suspendedFor) || self.action == 'Deactivate' || self.action == 'RemoveFromDirectory'",
     "message": "an escalation (suspendedFor) deactivates or removes from the directory"}
]))]
pub struct Rule {
    /// A name unique in the policy; it appears in reasons, the audit trail and metrics.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Not active on one product for a while → remove from that product's licensed groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_inactivity: Option<ProductInactivity>,
    /// Not active on any product for a while → suspend, deactivate or remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_inactivity: Option<AccountInactivity>,
    /// Added a while ago and never active on any product (typically invitees) → suspend or remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub never_active: Option<NeverActive>,
    /// Suspended (by seatwarden or found suspended) for a while → deactivate or remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_for: Option<SuspendedFor>,
    pub action: RuleAction,
    /// Notices sent this long before the action, in days or weeks, e.g. `[2w, 3d]`. Empty: act
    /// without notice.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "duration::days_list")]
    #[schemars(schema_with = "duration::days_list::schema")]
    #[schemars(length(max = 5))]
    pub notice_lead_times: Vec<Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductInactivity {
    pub product: Product,
    /// Days or weeks, e.g. `60d`, `12w`.
    #[serde(with = "duration::days")]
    #[schemars(schema_with = "duration::days::schema")]
    pub inactive_for: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountInactivity {
    /// Days or weeks, e.g. `90d`, `12w`.
    #[serde(with = "duration::days")]
    #[schemars(schema_with = "duration::days::schema")]
    pub inactive_for: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NeverActive {
    /// Added to the organization at least this long ago, in days or weeks.
    #[serde(with = "duration::days")]
    #[schemars(schema_with = "duration::days::schema")]
    pub added_for: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SuspendedFor {
    /// Days or weeks, e.g. `90d`, `12w`.
    #[serde(with = "duration::days")]
    #[schemars(schema_with = "duration::days::schema")]
    pub duration: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RuleAction {
    /// Take the user out of the product's licensed groups (GroupLicenseMapping).
    RemoveLicensedGroups,
    /// Suspend in the directory: no billing, groups kept, reversible by restore.
    Suspend,
    /// Deactivate the account everywhere (managed accounts only; never a default).
    Deactivate,
    /// Remove from the directory: no billing; groups are lost and the user must be re-invited.
    RemoveFromDirectory,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reactivation {
    /// Restore what seatwarden removed when the user shows activity again on any product.
    #[serde(default = "default_true")]
    pub on_activity: bool,
    /// Restore when the user joins one of these groups (e.g. one an access-request workflow fills).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opt_in_groups: Vec<String>,
    /// Restore these accounts now (named by an admin).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_ids: Vec<String>,
    /// Also restore users seatwarden suspended (through the opt-in group or admin routes).
    #[serde(default = "default_true")]
    pub restore_suspended: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Onboarding {
    /// A name unique in the policy.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Who gets the groups.
    pub selector: OnboardingSelector,
    /// Groups (names or ids) to ensure membership in.
    #[schemars(length(min = 1, max = 50))]
    pub groups: Vec<String>,
    /// At most this many additions per run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub seat_cap: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingSelector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_types: Vec<AccountScope>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NoticeSettings {
    /// Subject template (minijinja).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_template: Option<String>,
    /// Body template (minijinja).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_template: Option<String>,
    /// Replies go here; overrides the organization's mail replyTo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Caps {
    /// At most this many actions per run, longest-inactive first; the rest wait for the next run.
    #[serde(default = "default_max_actions")]
    #[schemars(range(min = 0, max = 100000))]
    pub max_actions_per_run: i32,
    /// Halt the whole run, applying nothing, when the plan would touch more than this percentage
    /// of in-scope users: that is a misconfiguration or bad data, not a throttle.
    #[serde(default = "default_max_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub max_action_percent: i32,
}

fn default_max_actions() -> i32 {
    50
}
fn default_max_percent() -> i32 {
    10
}

impl Default for Caps {
    fn default() -> Self {
        Self { max_actions_per_run: default_max_actions(), max_action_percent: default_max_percent() }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecyclePolicyStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Synced, SafetyHalted, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunSummary>,
    /// Seats reclaimed by this policy since it was created (Enforce only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats_reclaimed: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seats_reclaimed_by_product: BTreeMap<String, i64>,
    /// Projected monthly savings from the seats reclaimed, e.g. `1234.50 USD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected_monthly_savings: Option<String>,
    /// The `seatwarden.io/run-now` annotation value last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_run_now: Option<String>,
}

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RunTrigger {
    /// The policy had never run.
    FirstRun,
    /// Its spec changed since the last run (un-pausing included).
    SpecChanged,
    /// The schedule's interval had passed.
    IntervalElapsed,
    /// The `seatwarden.io/run-now` annotation: the one reason that runs outside the window.
    RunNowAnnotation,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// The LifecycleRun holding this run's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    /// What started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<RunTrigger>,
    /// The run started outside the schedule's window (only the run-now annotation does that).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outside_window: bool,
    pub mode: PolicyMode,
    pub users_evaluated: i64,
    pub in_scope: i64,
    pub planned: i64,
    pub applied: i64,
    pub failed: i64,
    pub deferred: i64,
    pub skipped: i64,
    pub notices_sent: i64,
    pub protected_skipped: i64,
    /// Notices DryRun would send, first few.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub would_notify: Vec<String>,
    /// First few planned actions with their reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_actions: Vec<String>,
    /// IdP-synced groups or users that need action in the identity provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idp_actions_needed: Vec<String>,
}
