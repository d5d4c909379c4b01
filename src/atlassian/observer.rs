//! Hooks for metrics. Every label is from a bounded set: operation names, outcome names, family
//! names. Nothing identifying a user or carrying a secret is ever passed.

use std::time::Duration;

/// One kind of Atlassian call. The set is closed so metric labels stay bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    OrgRead,
    DirectoriesList,
    UsersSearch,
    GroupsSearch,
    GroupRoleAssignments,
    V1UsersList,
    LastActiveDates,
    /// `GET .../directories/{id}/users/stats`: a directory's own member counts (completeness check).
    UserStats,
    /// `GET /admin/api-access/v1/orgs/{id}/api-tokens`: API-token use (API.md §2.10).
    ApiTokensList,
    UserRead,
    UserSuspend,
    UserRestore,
    UserRemove,
    UserManageCheck,
    UserDeactivate,
    UserEnable,
    GroupAddMember,
    GroupRemoveMember,
    JiraGroupAddMember,
    JiraGroupRemoveMember,
    ConfluenceGroupAddMember,
    ConfluenceGroupRemoveMember,
    UsersInvite,
}

impl Operation {
    pub const ALL: [Operation; 23] = [
        Operation::OrgRead,
        Operation::DirectoriesList,
        Operation::UsersSearch,
        Operation::GroupsSearch,
        Operation::GroupRoleAssignments,
        Operation::V1UsersList,
        Operation::LastActiveDates,
        Operation::UserStats,
        Operation::ApiTokensList,
        Operation::UserRead,
        Operation::UserSuspend,
        Operation::UserRestore,
        Operation::UserRemove,
        Operation::UserManageCheck,
        Operation::UserDeactivate,
        Operation::UserEnable,
        Operation::GroupAddMember,
        Operation::GroupRemoveMember,
        Operation::JiraGroupAddMember,
        Operation::JiraGroupRemoveMember,
        Operation::ConfluenceGroupAddMember,
        Operation::ConfluenceGroupRemoveMember,
        Operation::UsersInvite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::OrgRead => "org.read",
            Operation::DirectoriesList => "directories.list",
            Operation::UsersSearch => "users.search",
            Operation::GroupsSearch => "groups.search",
            Operation::GroupRoleAssignments => "groups.role_assignments",
            Operation::V1UsersList => "v1.users.list",
            Operation::LastActiveDates => "users.last_active_dates",
            Operation::UserStats => "users.stats",
            Operation::ApiTokensList => "api_tokens.list",
            Operation::UserRead => "user.read",
            Operation::UserSuspend => "user.suspend",
            Operation::UserRestore => "user.restore",
            Operation::UserRemove => "user.remove",
            Operation::UserManageCheck => "user.manage_check",
            Operation::UserDeactivate => "user.deactivate",
            Operation::UserEnable => "user.enable",
            Operation::GroupAddMember => "group.add_member",
            Operation::GroupRemoveMember => "group.remove_member",
            Operation::JiraGroupAddMember => "jira.group.add_member",
            Operation::JiraGroupRemoveMember => "jira.group.remove_member",
            Operation::ConfluenceGroupAddMember => "confluence.group.add_member",
            Operation::ConfluenceGroupRemoveMember => "confluence.group.remove_member",
            Operation::UsersInvite => "users.invite",
        }
    }

    /// Whether repeating the call can change anything (reads never do).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Operation::OrgRead
                | Operation::DirectoriesList
                | Operation::UsersSearch
                | Operation::GroupsSearch
                | Operation::GroupRoleAssignments
                | Operation::V1UsersList
                | Operation::LastActiveDates
                | Operation::UserStats
                | Operation::ApiTokensList
                | Operation::UserRead
                | Operation::UserManageCheck
        )
    }
}

/// The endpoint behind an operation, with the date Atlassian announced it stops working, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub method: &'static str,
    /// The path with `{placeholders}`, from the API's base (`/admin/...`, `/users/...`, site paths).
    pub path: &'static str,
    /// Announced end of service (`YYYY-MM-DD`); `None` when none is announced.
    pub ends: Option<&'static str>,
}

/// Endpoints Atlassian announced an end date for (API.md §2, §13 item 12): the client must not call
/// any of them. `tests`: no [`Operation::endpoint`] is one of these.
pub const DOOMED_ENDPOINTS: [Endpoint; 11] = {
    const fn ends(method: &'static str, path: &'static str, date: &'static str) -> Endpoint {
        Endpoint { method, path, ends: Some(date) }
    }
    const V1: &str = "2026-06-30";
    const V2: &str = "2027-06-30";
    [
        ends("GET", "/admin/v2/orgs/{orgId}/directories/{directoryId}/users", V2),
        ends("GET", "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups", V2),
        ends("POST", "/admin/v1/orgs/{orgId}/users/search", V1),
        ends("POST", "/admin/v1/orgs/{orgId}/groups/search", V1),
        ends("POST", "/admin/v1/orgs/{orgId}/directory/users/{accountId}/suspend-access", V1),
        ends("POST", "/admin/v1/orgs/{orgId}/directory/users/{accountId}/restore-access", V1),
        ends("DELETE", "/admin/v1/orgs/{orgId}/directory/users/{accountId}", V1),
        ends("POST", "/admin/v1/orgs/{orgId}/directory/groups", V1),
        ends("DELETE", "/admin/v1/orgs/{orgId}/directory/groups/{groupId}", V1),
        ends("POST", "/admin/v1/orgs/{orgId}/directory/groups/{groupId}/memberships", V1),
        ends("DELETE", "/admin/v1/orgs/{orgId}/directory/groups/{groupId}/memberships/{accountId}", V1),
    ]
};

impl Operation {
    /// The endpoint this operation calls. Exhaustive on purpose: a new operation does not build
    /// until its endpoint (and whether Atlassian announced an end for it) is written down here.
    pub fn endpoint(self) -> Endpoint {
        macro_rules! dir {
            ($rest:literal) => {
                concat!("/admin/v2/orgs/{orgId}/directories/{directoryId}", $rest)
            };
        }
        let (method, path) = match self {
            Operation::OrgRead => ("GET", "/admin/v1/orgs/{orgId}"),
            Operation::DirectoriesList => ("GET", "/admin/v2/orgs/{orgId}/directories"),
            Operation::UsersSearch | Operation::UserRead => ("POST", dir!("/users/search")),
            Operation::GroupsSearch => ("POST", dir!("/groups/search")),
            Operation::GroupRoleAssignments => ("GET", dir!("/groups/{groupId}/role-assignments")),
            Operation::V1UsersList => ("GET", "/admin/v1/orgs/{orgId}/users"),
            Operation::LastActiveDates => {
                ("GET", "/admin/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates")
            }
            Operation::UserStats => ("GET", dir!("/users/stats")),
            Operation::ApiTokensList => ("GET", "/admin/api-access/v1/orgs/{orgId}/api-tokens"),
            Operation::UserSuspend => ("POST", dir!("/users/{accountId}/suspend")),
            Operation::UserRestore => ("POST", dir!("/users/{accountId}/restore")),
            Operation::UserRemove => ("DELETE", dir!("/users/{accountId}")),
            Operation::UserManageCheck => ("GET", "/users/{accountId}/manage"),
            Operation::UserDeactivate => ("POST", "/users/{accountId}/manage/lifecycle/disable"),
            Operation::UserEnable => ("POST", "/users/{accountId}/manage/lifecycle/enable"),
            Operation::GroupAddMember => ("POST", dir!("/groups/{groupId}/memberships")),
            Operation::GroupRemoveMember => ("DELETE", dir!("/groups/{groupId}/memberships/{accountId}")),
            Operation::JiraGroupAddMember => ("POST", "/rest/api/3/group/user"),
            Operation::JiraGroupRemoveMember => ("DELETE", "/rest/api/3/group/user"),
            Operation::ConfluenceGroupAddMember => ("POST", "/wiki/rest/api/group/userByGroupId"),
            Operation::ConfluenceGroupRemoveMember => ("DELETE", "/wiki/rest/api/group/userByGroupId"),
            Operation::UsersInvite => ("POST", "/admin/v2/orgs/{orgId}/users/invite"),
        };
        Endpoint { method, path, ends: None }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome label of one HTTP attempt.
pub mod outcome {
    pub const OK: &str = "ok";
    pub const CLIENT_ERROR: &str = "client_error";
    pub const SERVER_ERROR: &str = "server_error";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const TIMEOUT: &str = "timeout";
    pub const TRANSPORT_ERROR: &str = "transport_error";
    pub const ALL: [&str; 6] = [OK, CLIENT_ERROR, SERVER_ERROR, RATE_LIMITED, TIMEOUT, TRANSPORT_ERROR];
}

/// Receives one call per HTTP attempt, retry and rate-limit wait. Implementations must be cheap
/// and must not block (they run on the request path).
pub trait ClientObserver: Send + Sync {
    /// One HTTP attempt finished. `outcome` is one of [`outcome::ALL`].
    fn on_request(&self, operation: &'static str, outcome: &'static str, latency: Duration) {
        let _ = (operation, outcome, latency);
    }
    /// A call is about to be attempted again.
    fn on_retry(&self, operation: &'static str) {
        let _ = operation;
    }
    /// The family was paused because Atlassian said so (429/503, or the rate-limit headers).
    fn on_rate_limit_wait(&self, family: &'static str, duration: Duration) {
        let _ = (family, duration);
    }
    /// A request waits `duration` for its slot in the client's own request budget (only waits
    /// of [`BUDGET_WAIT_WORTH_TELLING`] or more are reported; a rate-limit pause is reported by
    /// [`ClientObserver::on_rate_limit_wait`] when it begins).
    fn on_budget_wait(&self, family: &'static str, duration: Duration) {
        let _ = (family, duration);
    }
    /// A `Retry-After` or reset longer than the configured cap was cut to the cap.
    fn on_wait_capped(&self, operation: &'static str, requested: Duration, capped_to: Duration) {
        let _ = (operation, requested, capped_to);
    }
}

/// Budget waits shorter than this are the ordinary spacing of requests, not worth telling anyone.
pub const BUDGET_WAIT_WORTH_TELLING: Duration = Duration::from_secs(1);

/// The default observer: does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl ClientObserver for NoopObserver {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_unique_and_cover_every_variant() {
        let mut names: Vec<_> = Operation::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Operation::ALL.len());
        assert!(Operation::UsersSearch.is_read());
        assert!(!Operation::UserSuspend.is_read());
    }

    /// Every endpoint the client calls, with its deprecation status. A call to an endpoint with an
    /// announced end date fails here; a new operation fails to build until `endpoint` lists it.
    #[test]
    fn the_client_calls_no_endpoint_with_an_announced_end() {
        for op in Operation::ALL {
            let e = op.endpoint();
            assert_eq!(e.ends, None, "{op} calls {} {}, which stops working on {:?}", e.method, e.path, e.ends);
            for doomed in DOOMED_ENDPOINTS {
                assert!(
                    (e.method, e.path) != (doomed.method, doomed.path),
                    "{op} calls {} {}, which Atlassian switches off on {}",
                    e.method,
                    e.path,
                    doomed.ends.unwrap_or("?")
                );
            }
        }
        // The list of doomed endpoints is what API.md announces: the v2 listings end 2027-06-30.
        assert!(
            DOOMED_ENDPOINTS.iter().any(|d| d.path.ends_with("{directoryId}/users") && d.ends == Some("2027-06-30"))
        );
        assert!(
            DOOMED_ENDPOINTS.iter().any(|d| d.path.ends_with("{directoryId}/groups") && d.ends == Some("2027-06-30"))
        );
    }
}
