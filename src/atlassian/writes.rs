//! The writes the rules need, each with a typed outcome, and the re-read of one user that precedes
//! every destructive write. Only v2, User management and (when configured) Jira/Confluence group
//! endpoints: the v1 writes are switched off.

use reqwest::{Method, Url};
use serde_json::{Value, json};

use super::AtlassianClient;
use super::config::ApiFamily;
use super::error::{AtlassianError, CallSite, ErrorBody};
use super::http::{Reply, Request, WriteReply};
use super::observer::Operation;
use super::wire::{self, ConversionNotes, GroupInterner, Page, RawUser};
use crate::crd::MembershipApi;
use crate::snapshot::{DirectorySnapshot, DirectoryUser, GroupIdx, UserStatus};

/// What a write achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Changed as asked.
    Done,
    /// Nothing to do: it already was so.
    AlreadySo,
    /// Atlassian said no, for a reason retrying won't fix.
    Refused { reason: RefusalReason, message: String },
    /// Could not be done (retries exhausted, credentials refused). `maybe_applied` when an attempt's
    /// outcome stayed unknown: the next run must re-read before counting on either.
    Failed { message: String, status: Option<u16>, maybe_applied: bool },
}

impl WriteOutcome {
    /// Done or already so: the state is as asked.
    pub fn is_converged(&self) -> bool {
        matches!(self, WriteOutcome::Done | WriteOutcome::AlreadySo)
    }

    /// A bounded label for metrics and records.
    pub fn label(&self) -> &'static str {
        match self {
            WriteOutcome::Done => "done",
            WriteOutcome::AlreadySo => "already_so",
            WriteOutcome::Refused { reason, .. } => reason.label(),
            WriteOutcome::Failed { .. } => "failed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// A product is at its user limit (restore, add to group, invite).
    LicenseLimit,
    /// The group or user is managed by an identity provider: change it there.
    IdpSynced,
    /// Deactivate/enable need a managed account (the organization's claimed domain).
    NotManaged,
    Other,
}

impl RefusalReason {
    pub fn label(self) -> &'static str {
        match self {
            RefusalReason::LicenseLimit => "refused_license_limit",
            RefusalReason::IdpSynced => "refused_idp_synced",
            RefusalReason::NotManaged => "refused_not_managed",
            RefusalReason::Other => "refused_other",
        }
    }
}

/// Classifies a final non-2xx answer to a write (pure).
pub fn classify_refusal(operation: Operation, status: u16, body: &ErrorBody) -> WriteOutcome {
    let text = body.message.to_ascii_lowercase();
    let message = body.message.clone();
    let refused = |reason| WriteOutcome::Refused { reason, message: message.clone() };
    let removal = matches!(
        operation,
        Operation::UserRemove
            | Operation::GroupRemoveMember
            | Operation::JiraGroupRemoveMember
            | Operation::ConfluenceGroupRemoveMember
    );
    if removal && status == 404 && (body.has_code("ADMIN-404-8") || text.contains("not a member")) {
        return WriteOutcome::AlreadySo;
    }
    if text.contains("already") || body.has_code_prefix("ALREADY") || (removal && text.contains("not a member")) {
        return WriteOutcome::AlreadySo;
    }
    if status == 401 {
        return WriteOutcome::Failed {
            message: format!("credentials refused: {message}"),
            status: Some(status),
            maybe_applied: false,
        };
    }
    let license_codes = ["ADMIN-409-3", "ADMIN-400-32", "ADMIN-UAM-409-3", "conflict.licenseLimit"];
    if license_codes.iter().any(|c| body.has_code(c))
        || status == 402
        || (text.contains("licen") && (text.contains("limit") || text.contains("exceed")))
        || text.contains("user limit")
    {
        return refused(RefusalReason::LicenseLimit);
    }
    if body.has_code("ADMIN-403-5")
        || body.has_code_prefix("externalDirectory")
        || text.contains("identity provider")
        || text.contains("scim")
    {
        return refused(RefusalReason::IdpSynced);
    }
    if body.has_code("forbidden.unclaimedDomain")
        || text.contains("not managed")
        || text.contains("unmanaged")
        || text.contains("managed account")
    {
        return refused(RefusalReason::NotManaged);
    }
    refused(RefusalReason::Other)
}

/// A success whose body says nothing changed is "already so" (a 2xx with "already" in its message).
pub fn classify_success(reply_body: &[u8]) -> WriteOutcome {
    let Ok(value) = serde_json::from_slice::<Value>(reply_body) else { return WriteOutcome::Done };
    let says = |k: &str| value.get(k).and_then(Value::as_str).map(|s| s.to_ascii_lowercase());
    let unchanged = says("message").is_some_and(|m| m.contains("already") || m.contains("unchanged"))
        || says("result").is_some_and(|r| r == "unchanged")
        || value.get("changed").and_then(Value::as_bool) == Some(false);
    if unchanged { WriteOutcome::AlreadySo } else { WriteOutcome::Done }
}

/// A fresh reading of one user, for the check before a destructive write.
#[derive(Clone, Debug, PartialEq)]
pub struct UserReading {
    /// `user.groups` is empty and `user.directory` is 0: see [`UserReading::to_snapshot_user`].
    pub user: DirectoryUser,
    /// The directory the user was read in (`-` when read across directories).
    pub directory_id: String,
    pub group_ids: Vec<String>,
    /// v2 returned productAccess for the user (if not, `user.product_access` is empty for lack of
    /// data, not for lack of activity).
    pub activity_known: bool,
}

impl UserReading {
    /// The user's groups as indices into `snapshot` (groups the snapshot doesn't know are left out).
    pub fn groups_in(&self, snapshot: &DirectorySnapshot) -> Vec<GroupIdx> {
        let directory = self.directory_in(snapshot);
        let mut out: Vec<GroupIdx> = self
            .group_ids
            .iter()
            .filter_map(|id| {
                snapshot
                    .groups
                    .iter()
                    .position(|g| &g.id == id && directory.is_none_or(|d| g.directory == d))
                    .map(|i| i as GroupIdx)
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn directory_in(&self, snapshot: &DirectorySnapshot) -> Option<u16> {
        snapshot.directories.iter().position(|d| d.id == self.directory_id).map(|i| i as u16)
    }

    /// The reading as a snapshot user, comparable with `snapshot`'s record of the same account
    /// (directory and group indices resolved against it; site-admin from its groups too).
    pub fn to_snapshot_user(&self, snapshot: &DirectorySnapshot) -> DirectoryUser {
        let mut user = self.user.clone();
        user.directory = self.directory_in(snapshot).unwrap_or(0);
        user.groups = self.groups_in(snapshot);
        user.site_admin |= user.groups.iter().any(|g| snapshot.groups[*g as usize].site_admin);
        user
    }

    pub fn in_group(&self, group_id: &str) -> bool {
        self.group_ids.iter().any(|g| g == group_id)
    }
}

/// The check before a write, as [`AtlassianClient::read_user`] returned it: `Some(None)` means the
/// user was not in the directory; `None` means no reading was taken.
pub type Prior<'a> = Option<&'a Option<UserReading>>;

/// Whether a prior reading shows the change already in place.
fn already<'a>(prior: Prior<'a>, in_place: impl Fn(Option<&'a UserReading>) -> bool) -> bool {
    prior.is_some_and(|r| in_place(r.as_ref()))
}

/// Whether deactivate/enable is allowed for an account (`GET /users/{id}/manage`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecyclePermission {
    Allowed,
    /// Not allowed, with Atlassian's reason key (`externalDirectory.scim`, ...).
    Denied {
        reason: String,
    },
}

/// An invitation (v2 invite).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invitation {
    pub email: String,
    /// Group ids to add the invitee to.
    pub groups: Vec<String>,
    /// `(resource id, role id)` pairs, e.g. `("ari:cloud:jira-software::site/1", "atlassian/user")`.
    pub roles: Vec<(String, String)>,
    pub send_notification: bool,
    pub notification_text: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteResult {
    pub outcome: WriteOutcome,
    /// The invitee's account id, when Atlassian returned it.
    pub account_id: Option<String>,
}

impl AtlassianClient {
    fn directory_user_url(&self, directory_id: &str, account_id: &str, action: Option<&str>) -> Url {
        let org = self.http.config.org_id.as_str();
        let mut segments = vec!["v2", "orgs", org, "directories", directory_id, "users", account_id];
        segments.extend(action);
        self.http.admin_url(&segments)
    }

    /// Whether the account is in the directory, by the user-details lookup (`GET
    /// .../directories/{id}/users/{accountId}`): `Ok(false)` only when Atlassian answers 404, the
    /// positive sign that the account is gone from it; any other failure is an error, never "gone".
    pub async fn account_in_directory(&self, directory_id: &str, account_id: &str) -> Result<bool, AtlassianError> {
        let url = self.directory_user_url(directory_id, account_id, None);
        let call = CallSite::new(Operation::UserRead).directory(directory_id).subject(account_id);
        let req = Request::new(call, ApiFamily::Org, Method::GET, url);
        match self.http.read_json::<Value>(&req, None).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Re-reads one user of a directory (v2 search by account id, everything expanded).
    /// `Ok(None)`: the user is not in the directory.
    pub async fn read_user(&self, directory_id: &str, account_id: &str) -> Result<Option<UserReading>, AtlassianError> {
        let org = self.http.config.org_id.as_str();
        let url = self.http.admin_url(&["v2", "orgs", org, "directories", directory_id, "users", "search"]);
        let call = CallSite::new(Operation::UserRead).directory(directory_id).subject(account_id);
        let body =
            json!({"accountIds": [account_id], "limit": 1, "expand": ["productAccess", "groups", "platformRoles"]});
        let req = Request::new(call.clone(), ApiFamily::Org, Method::POST, url).json(&body);
        let page: Page<RawUser> = self.http.read_json(&req, None).await?;
        let Some(raw) = page.data.into_iter().find(|u| u.account_id == account_id) else { return Ok(None) };
        let mut interner = GroupInterner::default();
        let mut notes = ConversionNotes::default();
        let directory_idx = 0;
        let Some(mut pending) = wire::convert_user(raw, directory_idx, &mut interner, &mut notes)
            .map_err(|message| AtlassianError::Parse { call, message })?
        else {
            return Ok(None);
        };
        wire::finish_status(&mut pending);
        pending.user.site_admin = pending.site_admin_role;
        pending.user.groups = Vec::new();
        Ok(Some(UserReading {
            user: pending.user,
            directory_id: directory_id.to_owned(),
            group_ids: interner.ids,
            activity_known: pending.activity_known,
        }))
    }

    async fn user_status_is(
        &self,
        directory_id: &str,
        account_id: &str,
        wanted: &[UserStatus],
    ) -> Result<bool, AtlassianError> {
        Ok(self.read_user(directory_id, account_id).await?.is_some_and(|r| wanted.contains(&r.user.status)))
    }

    async fn run_write<F, Fut>(&self, req: Request, verify: F) -> WriteOutcome
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool, AtlassianError>>,
    {
        let operation = req.call.operation;
        let outcome = match self.http.write(&req, verify).await {
            WriteReply::Reply(reply) => self.outcome_of(operation, &reply),
            WriteReply::VerifiedApplied => WriteOutcome::Done,
            WriteReply::Failed { error, maybe_applied } => {
                WriteOutcome::Failed { message: error.to_string(), status: error.status(), maybe_applied }
            }
        };
        tracing::info!(call = %req.call, outcome = outcome.label(), "Atlassian write");
        outcome
    }

    fn outcome_of(&self, operation: Operation, reply: &Reply) -> WriteOutcome {
        if reply.is_success() {
            return classify_success(&reply.body);
        }
        let mut body = reply.error_body();
        body.message = self.http.scrub(body.message);
        classify_refusal(operation, reply.status, &body)
    }

    /// Suspends a user's access in a directory (not billed; groups kept for restore). Pass the
    /// reading from the check before the write as `prior`: when it shows the user already suspended
    /// (or gone) the answer is `AlreadySo` without a call. Atlassian answers 204 either way.
    pub async fn suspend(&self, directory_id: &str, account_id: &str, prior: Prior<'_>) -> WriteOutcome {
        if already(prior, |r| r.is_some_and(|r| r.user.status == UserStatus::Suspended)) {
            return WriteOutcome::AlreadySo;
        }
        if already(prior, |r| r.is_none()) {
            return not_in_directory(account_id, directory_id);
        }
        let call = CallSite::new(Operation::UserSuspend).directory(directory_id).subject(account_id);
        let url = self.directory_user_url(directory_id, account_id, Some("suspend"));
        let req = Request::new(call, ApiFamily::Org, Method::POST, url);
        self.run_write(req, || self.user_status_is(directory_id, account_id, &[UserStatus::Suspended])).await
    }

    /// Restores a suspended user's access (may be refused at a license limit).
    pub async fn restore(&self, directory_id: &str, account_id: &str, prior: Prior<'_>) -> WriteOutcome {
        const RESTORED: [UserStatus; 2] = [UserStatus::Active, UserStatus::InvitedNeverActive];
        if already(prior, |r| r.is_some_and(|r| RESTORED.contains(&r.user.status))) {
            return WriteOutcome::AlreadySo;
        }
        if already(prior, |r| r.is_none()) {
            return not_in_directory(account_id, directory_id);
        }
        let call = CallSite::new(Operation::UserRestore).directory(directory_id).subject(account_id);
        let url = self.directory_user_url(directory_id, account_id, Some("restore"));
        let req = Request::new(call, ApiFamily::Org, Method::POST, url);
        self.run_write(req, || self.user_status_is(directory_id, account_id, &RESTORED)).await
    }

    /// Removes a user from a directory (loses groups and roles; must be invited to return).
    pub async fn remove_from_directory(&self, directory_id: &str, account_id: &str, prior: Prior<'_>) -> WriteOutcome {
        if already(prior, |r| r.is_none()) {
            return WriteOutcome::AlreadySo;
        }
        let call = CallSite::new(Operation::UserRemove).directory(directory_id).subject(account_id);
        let url = self.directory_user_url(directory_id, account_id, None);
        let req = Request::new(call, ApiFamily::Org, Method::DELETE, url);
        self.run_write(req, || async { Ok(self.read_user(directory_id, account_id).await?.is_none()) }).await
    }

    /// Whether the User management API lets us deactivate/enable this account.
    pub async fn lifecycle_permission(&self, account_id: &str) -> Result<LifecyclePermission, AtlassianError> {
        let mut url = self.http.api_url(&["users", account_id, "manage"]);
        url.query_pairs_mut().append_pair("privileges", "lifecycle.enablement");
        let call = CallSite::new(Operation::UserManageCheck).subject(account_id);
        let req = Request::new(call, ApiFamily::Org, Method::GET, url);
        let value: Value = self.http.read_json(&req, None).await?;
        Ok(lifecycle_permission_of(&value))
    }

    /// Deactivates a managed account everywhere, after checking `lifecycle.enablement` (IdP-managed
    /// and external accounts are refused before any write).
    pub async fn deactivate(&self, account_id: &str, message: Option<&str>, prior: Prior<'_>) -> WriteOutcome {
        if already(prior, |r| r.is_some_and(|r| r.user.status == UserStatus::Deactivated)) {
            return WriteOutcome::AlreadySo;
        }
        self.lifecycle(account_id, Operation::UserDeactivate, "disable", message).await
    }

    /// Re-enables a deactivated managed account, after checking `lifecycle.enablement`.
    pub async fn enable(&self, account_id: &str, prior: Prior<'_>) -> WriteOutcome {
        if already(prior, |r| r.is_some_and(|r| r.user.status != UserStatus::Deactivated)) {
            return WriteOutcome::AlreadySo;
        }
        self.lifecycle(account_id, Operation::UserEnable, "enable", None).await
    }

    async fn lifecycle(
        &self,
        account_id: &str,
        operation: Operation,
        action: &str,
        message: Option<&str>,
    ) -> WriteOutcome {
        match self.lifecycle_permission(account_id).await {
            Ok(LifecyclePermission::Allowed) => {}
            Ok(LifecyclePermission::Denied { reason }) => {
                let kind = if reason.starts_with("externalDirectory") {
                    RefusalReason::IdpSynced
                } else if reason == "managedAccount" || reason.contains("unclaimed") {
                    RefusalReason::NotManaged
                } else {
                    RefusalReason::Other
                };
                return WriteOutcome::Refused {
                    reason: kind,
                    message: format!("lifecycle.enablement not allowed: {reason}"),
                };
            }
            // The User management API answers 403/404 for accounts the organization doesn't manage.
            Err(AtlassianError::Status { status: status @ (403 | 404), code, message, .. }) => {
                let body = ErrorBody { code, detail_codes: Vec::new(), message };
                return match classify_refusal(operation, status, &body) {
                    WriteOutcome::Refused { reason: RefusalReason::Other, message } => {
                        WriteOutcome::Refused { reason: RefusalReason::NotManaged, message }
                    }
                    other => other,
                };
            }
            Err(e) => return WriteOutcome::Failed { message: e.to_string(), status: e.status(), maybe_applied: false },
        }
        let call = CallSite::new(operation).subject(account_id);
        let url = self.http.api_url(&["users", account_id, "manage", "lifecycle", action]);
        let mut req = Request::new(call, ApiFamily::Org, Method::POST, url);
        if let Some(m) = message {
            req = req.json(&json!({ "message": m }));
        }
        let deactivating = operation == Operation::UserDeactivate;
        // Deactivation shows in v2 as status `deactivated`, in whichever directory: read across all.
        self.run_write(req, || async move {
            let reading = self.read_user("-", account_id).await?;
            Ok(reading.is_some_and(|r| (r.user.status == UserStatus::Deactivated) == deactivating))
        })
        .await
    }

    /// Adds a user to a group, through the API the organization is configured for.
    pub async fn add_to_group(
        &self,
        directory_id: &str,
        group_id: &str,
        account_id: &str,
        prior: Prior<'_>,
    ) -> WriteOutcome {
        if already(prior, |r| r.is_some_and(|r| r.in_group(group_id))) {
            return WriteOutcome::AlreadySo;
        }
        if already(prior, |r| r.is_none()) {
            return not_in_directory(account_id, directory_id);
        }
        let (operation, family, url) = match self.http.config.membership_api {
            MembershipApi::Organization => {
                let org = self.http.config.org_id.as_str();
                let segments = ["v2", "orgs", org, "directories", directory_id, "groups", group_id, "memberships"];
                (Operation::GroupAddMember, ApiFamily::Org, Ok(self.http.admin_url(&segments)))
            }
            MembershipApi::Jira => {
                let url = self.http.site_url(&["rest", "api", "3", "group", "user"]).map(|mut u| {
                    u.query_pairs_mut().append_pair("groupId", group_id);
                    u
                });
                (Operation::JiraGroupAddMember, ApiFamily::Site, url)
            }
            MembershipApi::Confluence => {
                let url = self.http.site_url(&["wiki", "rest", "api", "group", "userByGroupId"]).map(|mut u| {
                    u.query_pairs_mut().append_pair("groupId", group_id);
                    u
                });
                (Operation::ConfluenceGroupAddMember, ApiFamily::Site, url)
            }
        };
        let url = match url {
            Ok(u) => u,
            Err(e) => return WriteOutcome::Failed { message: e.to_string(), status: None, maybe_applied: false },
        };
        let call = CallSite::new(operation).directory(directory_id).subject(account_id);
        let req = Request::new(call, family, Method::POST, url).json(&json!({ "accountId": account_id }));
        self.run_write(req, || async {
            Ok(self.read_user(directory_id, account_id).await?.is_some_and(|r| r.in_group(group_id)))
        })
        .await
    }

    /// Removes a user from a group, through the API the organization is configured for.
    pub async fn remove_from_group(
        &self,
        directory_id: &str,
        group_id: &str,
        account_id: &str,
        prior: Prior<'_>,
    ) -> WriteOutcome {
        if already(prior, |r| r.is_none_or(|r| !r.in_group(group_id))) {
            return WriteOutcome::AlreadySo;
        }
        let built = match self.http.config.membership_api {
            MembershipApi::Organization => {
                let org = self.http.config.org_id.as_str();
                let segments =
                    ["v2", "orgs", org, "directories", directory_id, "groups", group_id, "memberships", account_id];
                Ok((Operation::GroupRemoveMember, ApiFamily::Org, self.http.admin_url(&segments)))
            }
            MembershipApi::Jira => self.http.site_url(&["rest", "api", "3", "group", "user"]).map(|mut u| {
                u.query_pairs_mut().append_pair("groupId", group_id).append_pair("accountId", account_id);
                (Operation::JiraGroupRemoveMember, ApiFamily::Site, u)
            }),
            MembershipApi::Confluence => {
                self.http.site_url(&["wiki", "rest", "api", "group", "userByGroupId"]).map(|mut u| {
                    u.query_pairs_mut().append_pair("groupId", group_id).append_pair("accountId", account_id);
                    (Operation::ConfluenceGroupRemoveMember, ApiFamily::Site, u)
                })
            }
        };
        let (operation, family, url) = match built {
            Ok(b) => b,
            Err(e) => return WriteOutcome::Failed { message: e.to_string(), status: None, maybe_applied: false },
        };
        let call = CallSite::new(operation).directory(directory_id).subject(account_id);
        let req = Request::new(call, family, Method::DELETE, url);
        self.run_write(req, || async {
            Ok(self.read_user(directory_id, account_id).await?.is_none_or(|r| !r.in_group(group_id)))
        })
        .await
    }

    /// Invites a person (new or returning) with groups and roles (v2 invite).
    pub async fn invite(&self, invitation: &Invitation) -> InviteResult {
        let org = self.http.config.org_id.as_str();
        let url = self.http.admin_url(&["v2", "orgs", org, "users", "invite"]);
        let mut body = json!({
            "emails": [invitation.email],
            "sendNotification": invitation.send_notification,
        });
        if !invitation.groups.is_empty() {
            body["additionalGroups"] = json!(invitation.groups);
        }
        if !invitation.roles.is_empty() {
            body["permissionRules"] = json!(
                invitation.roles.iter().map(|(r, role)| json!({"resource": r, "role": role})).collect::<Vec<_>>()
            );
        }
        if let Some(text) = &invitation.notification_text {
            body["notificationText"] = json!(text);
        }
        let call = CallSite::new(Operation::UsersInvite).subject(&invitation.email);
        let req = Request::new(call, ApiFamily::Org, Method::POST, url).json(&body);
        let email = invitation.email.as_str();
        let found = std::sync::Mutex::new(None::<String>);
        let verify = || async {
            let id = self.find_by_email(email).await?;
            let exists = id.is_some();
            *found.lock().expect("lock") = id;
            Ok(exists)
        };
        let outcome = match self.http.write(&req, verify).await {
            WriteReply::Reply(reply) => {
                let account_id = reply.is_success().then(|| invited_account_id(&reply.body, email)).flatten();
                let outcome = self.outcome_of(Operation::UsersInvite, &reply);
                tracing::info!(call = %req.call, outcome = outcome.label(), "Atlassian write");
                return InviteResult { outcome, account_id };
            }
            WriteReply::VerifiedApplied => WriteOutcome::Done,
            WriteReply::Failed { error, maybe_applied } => {
                WriteOutcome::Failed { message: error.to_string(), status: error.status(), maybe_applied }
            }
        };
        tracing::info!(call = %req.call, outcome = outcome.label(), "Atlassian write");
        InviteResult { outcome, account_id: found.into_inner().expect("lock") }
    }

    /// The account id of the person with this email, in any directory.
    async fn find_by_email(&self, email: &str) -> Result<Option<String>, AtlassianError> {
        let org = self.http.config.org_id.as_str();
        let url = self.http.admin_url(&["v2", "orgs", org, "directories", "-", "users", "search"]);
        let call = CallSite::new(Operation::UserRead).subject(email);
        let req = Request::new(call, ApiFamily::Org, Method::POST, url).json(&json!({"emails": [email], "limit": 1}));
        let page: Page<RawUser> = self.http.read_json(&req, None).await?;
        Ok(page
            .data
            .into_iter()
            .find(|u| u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)))
            .map(|u| u.account_id))
    }
}

fn not_in_directory(account_id: &str, directory_id: &str) -> WriteOutcome {
    WriteOutcome::Refused {
        reason: RefusalReason::Other,
        message: format!("{account_id} is not in directory {directory_id} (per the check before the write)"),
    }
}

/// `{"lifecycle.enablement": {"allowed": false, "reason": {"key": "..."}}}`, at the top level or
/// nested one level (`{"privileges": {...}}`).
pub fn lifecycle_permission_of(value: &Value) -> LifecyclePermission {
    let rule = value
        .get("lifecycle.enablement")
        .or_else(|| value.as_object().and_then(|m| m.values().find_map(|v| v.get("lifecycle.enablement"))));
    match rule {
        Some(rule) if rule.get("allowed").and_then(Value::as_bool) == Some(true) => LifecyclePermission::Allowed,
        Some(rule) => LifecyclePermission::Denied {
            reason: rule
                .pointer("/reason/key")
                .or_else(|| rule.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("unspecified")
                .to_owned(),
        },
        None => LifecyclePermission::Denied { reason: "lifecycle.enablement missing from the answer".to_owned() },
    }
}

fn invited_account_id(body: &[u8], email: &str) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let data = value.get("data")?.as_array()?;
    let entry = data
        .iter()
        .find(|d| d.get("email").and_then(Value::as_str).is_some_and(|e| e.eq_ignore_ascii_case(email)))
        .or_else(|| data.first())?;
    entry.get("id").or_else(|| entry.get("accountId")).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(status: u16, json: &str) -> ErrorBody {
        ErrorBody::parse(status, json.as_bytes())
    }

    #[test]
    fn refusals_are_classified() {
        let license = body(
            409,
            r#"{"errors":[{"code":"ADMIN-409-3","title":"License limit exceeded","detail":"Jira is full"}]}"#,
        );
        assert_eq!(
            classify_refusal(Operation::GroupAddMember, 409, &license),
            WriteOutcome::Refused {
                reason: RefusalReason::LicenseLimit,
                message: "License limit exceeded: Jira is full".into()
            }
        );
        let jira = body(400, r#"{"errorMessages":["The number of licensed users is exceeded"]}"#);
        assert!(matches!(
            classify_refusal(Operation::JiraGroupAddMember, 400, &jira),
            WriteOutcome::Refused { reason: RefusalReason::LicenseLimit, .. }
        ));
        let idp = body(403, r#"{"errors":[{"code":"ADMIN-403-5","title":"Not allowed to manage the group"}]}"#);
        assert!(matches!(
            classify_refusal(Operation::GroupRemoveMember, 403, &idp),
            WriteOutcome::Refused { reason: RefusalReason::IdpSynced, .. }
        ));
        let scim = body(403, r#"{"key":"forbidden.action","context":{"reason":{"key":"externalDirectory.scim"}}}"#);
        assert!(matches!(
            classify_refusal(Operation::UserDeactivate, 403, &scim),
            WriteOutcome::Refused { reason: RefusalReason::IdpSynced, .. }
        ));
        let unclaimed = body(403, r#"{"key":"forbidden.unclaimedDomain","context":{"message":"domain not claimed"}}"#);
        assert!(matches!(
            classify_refusal(Operation::UserDeactivate, 403, &unclaimed),
            WriteOutcome::Refused { reason: RefusalReason::NotManaged, .. }
        ));
        let other = body(400, r#"{"errors":[{"code":"ADMIN-400-24","title":"Invalid request body"}]}"#);
        assert!(matches!(
            classify_refusal(Operation::UserSuspend, 400, &other),
            WriteOutcome::Refused { reason: RefusalReason::Other, .. }
        ));
        let auth = body(401, r#"{"code":401,"message":"Unauthorized"}"#);
        assert!(matches!(
            classify_refusal(Operation::UserSuspend, 401, &auth),
            WriteOutcome::Failed { status: Some(401), .. }
        ));
    }

    #[test]
    fn already_so_is_recognised() {
        let gone = body(404, r#"{"errors":[{"code":"ADMIN-404-8","title":"User not found"}]}"#);
        assert_eq!(classify_refusal(Operation::UserRemove, 404, &gone), WriteOutcome::AlreadySo);
        assert_eq!(classify_refusal(Operation::GroupRemoveMember, 404, &gone), WriteOutcome::AlreadySo);
        // ...but a missing user is not "already suspended".
        assert!(matches!(classify_refusal(Operation::UserSuspend, 404, &gone), WriteOutcome::Refused { .. }));
        let member = body(400, r#"{"errorMessages":["User is already a member of 'jira-users'"]}"#);
        assert_eq!(classify_refusal(Operation::JiraGroupAddMember, 400, &member), WriteOutcome::AlreadySo);
        let conflict = body(
            409,
            r#"{"key":"conflict.lifecycleErrors","context":{"message":"x","errorCodes":["ALREADY_DEACTIVATED"]}}"#,
        );
        assert_eq!(classify_refusal(Operation::UserDeactivate, 409, &conflict), WriteOutcome::AlreadySo);
        assert_eq!(classify_success(br#"{"message":"User is already suspended"}"#), WriteOutcome::AlreadySo);
        assert_eq!(classify_success(br#"{"result":"unchanged"}"#), WriteOutcome::AlreadySo);
        assert_eq!(classify_success(b""), WriteOutcome::Done);
        assert_eq!(classify_success(br#"{"message":"User suspended"}"#), WriteOutcome::Done);
    }

    #[test]
    fn lifecycle_permission_shapes() {
        let allowed: Value = serde_json::from_str(r#"{"lifecycle.enablement":{"allowed":true}}"#).unwrap();
        assert_eq!(lifecycle_permission_of(&allowed), LifecyclePermission::Allowed);
        let denied: Value = serde_json::from_str(
            r#"{"privileges":{"lifecycle.enablement":{"allowed":false,"reason":{"key":"externalDirectory.scim"}}}}"#,
        )
        .unwrap();
        assert_eq!(
            lifecycle_permission_of(&denied),
            LifecyclePermission::Denied { reason: "externalDirectory.scim".into() }
        );
        assert!(matches!(lifecycle_permission_of(&json!({})), LifecyclePermission::Denied { .. }));
    }

    #[test]
    fn invite_answer_gives_the_account_id() {
        let body = br#"{"data":[{"id":"acc-9","email":"Jane@X.io","results":[]}]}"#;
        assert_eq!(invited_account_id(body, "jane@x.io").as_deref(), Some("acc-9"));
        assert_eq!(invited_account_id(b"{}", "jane@x.io"), None);
    }
}
