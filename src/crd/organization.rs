use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{SecretKeyRef, condition::conditions_schema};
use crate::product::Product;

/// The connection to one Atlassian Cloud organization: where its APIs are, which credentials to
/// use, what seats cost, how fast seatwarden may call it and how it sends mail.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seatwarden.io",
    version = "v1alpha1",
    kind = "AtlassianOrganization",
    namespaced,
    cel,
    status = "AtlassianOrganizationStatus",
    shortname = "atlorg",
    category = "seatwarden",
    printcolumn(name = "Org", type_ = "string", json_path = ".spec.orgId"),
    printcolumn(
        name = "Connected",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Connected\")].status"
    ),
    printcolumn(name = "Users", type_ = "integer", json_path = ".status.users.total"),
    printcolumn(name = "Last Sync", type_ = "date", json_path = ".status.lastSyncTime"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.mail) || !has(self.localMailbox) || !self.localMailbox",
     "message": "notices go by mail or into the local mailbox folder, not both: remove localMailbox or mail"}
]))]
pub struct AtlassianOrganizationSpec {
    /// The organization id shown in admin.atlassian.com (Settings → API keys).
    #[schemars(length(min = 1, max = 128))]
    pub org_id: String,
    /// Directories to manage. Empty means every directory the organization has; seatwarden never
    /// silently picks one of several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directories: Vec<String>,
    /// Base URL of the Organizations and User management APIs.
    #[serde(default = "default_api_base_url")]
    #[schemars(length(min = 8))]
    pub api_base_url: String,
    /// Product sites (Jira, Confluence). Each URL is overridable, so one simulator can serve all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<Site>,
    /// Bitbucket Cloud workspace (read-only: members for seat accounting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitbucket: Option<Bitbucket>,
    /// Where the credentials are. They are read from Secrets, never from the spec.
    pub credentials: Credentials,
    /// Which API changes group memberships: the Organizations API (default), or the Jira or
    /// Confluence group endpoints of the first site (needs site-user credentials).
    #[serde(default)]
    pub membership_api: MembershipApi,
    /// What seats cost, for savings accounting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Billing>,
    /// Each product's user limit (the user tier of its subscription, shown in admin.atlassian.com →
    /// Billing), where you know it. No Atlassian API publishes it, and Atlassian refuses restores,
    /// group adds and invitations past it. Declared, it lets onboarding plan only the adds that fit
    /// (the rest held back with the reason) and lets `users import`/`users activate` show in their
    /// dry run which rows would be refused. Undeclared, seatwarden learns a product is full from
    /// Atlassian's first refusal and waits for freed seats (or a declared, higher limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["product"]))]
    pub user_limits: Vec<UserLimit>,
    /// Client-side pacing of Atlassian calls.
    #[serde(default)]
    pub request_budget: RequestBudget,
    /// SMTP settings for notices and admin summaries. Without them (and without `localMailbox`)
    /// notices can't reach anyone, so rules with notice lead times act on no one and the policies
    /// carry the condition NoticeDeliveryUnavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<MailSettings>,
    /// Write notices as files into the operator's local mailbox folder (`--mailbox-dir`) instead of
    /// mailing them — for trials against the simulator. Nobody receives them, yet they count as
    /// delivered, so the actions they announce follow: only where this is asked for explicitly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local_mailbox: bool,
    /// At most this many actions per day across every policy of this organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub max_actions_per_day: Option<i32>,
}

/// How an organization's notices reach people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeDelivery {
    /// By SMTP (`spec.mail`).
    Mail,
    /// Into the local mailbox folder (`spec.localMailbox`, or `seatwarden demo`).
    LocalFolder,
    /// Nowhere: rules with notice lead times act on no one.
    Unavailable,
}

impl AtlassianOrganizationSpec {
    pub fn notice_delivery(&self) -> NoticeDelivery {
        match (&self.mail, self.local_mailbox) {
            (Some(_), _) => NoticeDelivery::Mail,
            (None, true) => NoticeDelivery::LocalFolder,
            (None, false) => NoticeDelivery::Unavailable,
        }
    }
}

/// Why notices can't be delivered, for conditions, Events and the plan.
pub const NO_NOTICE_DELIVERY: &str = "the organization has no mail transport (spec.mail) and did not ask for the \
    local mailbox folder (spec.localMailbox): notices can't reach anyone, so rules with notice lead times act on no \
    one until one is configured";

pub fn default_api_base_url() -> String {
    "https://api.atlassian.com".to_owned()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    /// A short name, e.g. `acme`.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The site's base URL, e.g. `https://acme.atlassian.net`.
    #[schemars(length(min = 8))]
    pub url: String,
    /// Products served on this site.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<Product>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bitbucket {
    /// Bitbucket API base URL.
    #[serde(default = "default_bitbucket_url")]
    pub api_url: String,
    /// Workspace slug.
    #[schemars(length(min = 1, max = 128))]
    pub workspace: String,
}

pub fn default_bitbucket_url() -> String {
    "https://api.bitbucket.org".to_owned()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The organization API key (unscoped: the User management API refuses scoped keys).
    pub api_key_secret_ref: SecretKeyRef,
    /// A site user's email and API token, for the Jira/Confluence/Bitbucket endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_user: Option<SiteUserCredentials>,
    /// The account that owns the API key. No Atlassian API tells who owns a key, and acting on that
    /// account would cut seatwarden off, so it is never acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_owner_account_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteUserCredentials {
    /// The site user's email address.
    #[schemars(length(min = 3, max = 254))]
    pub email: String,
    /// The site user's API token.
    pub api_token_secret_ref: SecretKeyRef,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MembershipApi {
    #[default]
    Organization,
    Jira,
    Confluence,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Billing {
    /// Monthly plans realize savings from the next cycle; annual plans at renewal.
    #[serde(default)]
    pub cycle: BillingCycle,
    /// Next renewal (annual) or cycle start (monthly), as YYYY-MM-DD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))]
    pub renewal_date: Option<String>,
    /// ISO 4217 currency code.
    #[serde(default = "default_currency")]
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
    /// Price of one seat per month, per product.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seat_prices: Vec<SeatPrice>,
}

pub fn default_currency() -> String {
    "USD".to_owned()
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BillingCycle {
    #[default]
    Monthly,
    Annual,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatPrice {
    pub product: Product,
    /// Price per seat per month in the billing currency.
    #[schemars(range(min = 0.0, max = 100000.0))]
    pub monthly_price: f64,
}

/// One product's user limit: how many accounts its subscription licenses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserLimit {
    pub product: Product,
    /// Accounts the product is licensed for (e.g. 500 for a 500-user tier).
    #[schemars(range(min = 0, max = 10000000))]
    pub limit: i32,
}

impl AtlassianOrganizationSpec {
    /// The declared user limits by product (the first entry of a product wins; the manifest loader
    /// and the API server refuse a product listed twice).
    pub fn declared_user_limits(&self) -> std::collections::BTreeMap<Product, u32> {
        let mut out = std::collections::BTreeMap::new();
        for l in &self.user_limits {
            out.entry(l.product).or_insert(l.limit.max(0) as u32);
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestBudget {
    /// Requests per minute to the Organizations and User management APIs.
    #[serde(default = "default_org_rpm")]
    #[schemars(range(min = 1, max = 100000))]
    pub org_requests_per_minute: i32,
    /// Requests per minute to the Jira/Confluence site APIs.
    #[serde(default = "default_site_rpm")]
    #[schemars(range(min = 1, max = 100000))]
    pub site_requests_per_minute: i32,
    /// Requests per minute to Bitbucket (its documented limit is 1,000 per hour).
    #[serde(default = "default_bitbucket_rpm")]
    #[schemars(range(min = 1, max = 100000))]
    pub bitbucket_requests_per_minute: i32,
    /// Calls in flight at once.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: i32,
    /// Timeout of one call, in seconds.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 600))]
    pub timeout_seconds: i32,
}

fn default_org_rpm() -> i32 {
    600
}
fn default_site_rpm() -> i32 {
    300
}
fn default_bitbucket_rpm() -> i32 {
    16
}
fn default_concurrency() -> i32 {
    4
}
fn default_timeout() -> i32 {
    30
}

impl Default for RequestBudget {
    fn default() -> Self {
        Self {
            org_requests_per_minute: default_org_rpm(),
            site_requests_per_minute: default_site_rpm(),
            bitbucket_requests_per_minute: default_bitbucket_rpm(),
            concurrency: default_concurrency(),
            timeout_seconds: default_timeout(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailSettings {
    /// SMTP server host name.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// SMTP port.
    #[serde(default = "default_smtp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Transport security: StartTls (port 587), Tls (implicit, port 465) or None (tests only).
    #[serde(default)]
    pub tls: SmtpTls,
    /// Sender address, e.g. `Seatwarden <it@example.com>`.
    #[schemars(length(min = 3, max = 320))]
    pub from: String,
    /// Where replies go (a person or a ticket queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Admins who receive run summaries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_recipients: Vec<String>,
    /// Secret with the SMTP user name and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SmtpCredentialsRef>,
    /// Slack-compatible incoming webhook for run summaries (URL held in a Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_webhook_secret_ref: Option<SecretKeyRef>,
}

fn default_smtp_port() -> i32 {
    587
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SmtpTls {
    #[default]
    StartTls,
    Tls,
    None,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SmtpCredentialsRef {
    /// Secret name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default = "default_username_key")]
    pub username_key: String,
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_username_key() -> String {
    "username".to_owned()
}
fn default_password_key() -> String {
    "password".to_owned()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AtlassianOrganizationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Connected: the last snapshot succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<UserCounts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// Directories found in the organization.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directories: Vec<String>,
    /// Actions applied today across all policies, for the daily cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions_today: Option<DailyActions>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserCounts {
    pub total: i64,
    pub active: i64,
    pub suspended: i64,
    pub deactivated: i64,
    pub invited: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyActions {
    /// UTC day, YYYY-MM-DD.
    pub day: String,
    pub count: i64,
}
