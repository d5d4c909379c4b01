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
    /// A `Retry-After` or reset longer than the configured cap was cut to the cap.
    fn on_wait_capped(&self, operation: &'static str, requested: Duration, capped_to: Duration) {
        let _ = (operation, requested, capped_to);
    }
}

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
}
