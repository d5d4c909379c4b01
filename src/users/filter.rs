//! Which users `users list` shows: status, inactivity (overall or on one product), group, email
//! domain, managed or external. Pure: a filter and a snapshot in, accounts out (one per account,
//! whatever the number of directories it is in).

use jiff::Timestamp;

use crate::crd::Duration;
use crate::product::Product;
use crate::product::ProductKey;
use crate::snapshot::{Account, DirectorySnapshot, GroupIdx, UserStatus};

/// Inactivity: no activity for at least `for_at_least`, on `product` or (None) on any product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivityFilter {
    pub for_at_least: Duration,
    pub product: Option<Product>,
}

/// Every condition must hold; an empty list (statuses, groups, domains) means any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub statuses: Vec<UserStatus>,
    pub inactive: Option<ActivityFilter>,
    /// With no `inactive`: users with access to this product.
    pub product: Option<Product>,
    /// Group ids or names (case-insensitive); a user in any of them matches.
    pub groups: Vec<String>,
    /// Email domains (case-insensitive); a user in any of them matches.
    pub domains: Vec<String>,
    /// `Some(true)`: managed accounts only; `Some(false)`: external only.
    pub managed: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("--group {0:?}: no group with that name or id in the organization")]
    UnknownGroup(String),
    #[error(
        "--inactive on {0}: the organization delivered no activity data for it, and missing data never counts as inactivity"
    )]
    NoActivityData(Product),
}

impl UserFilter {
    /// The users of `snapshot` that match, in snapshot order. `now` anchors the inactivity window.
    /// A status matches an account with that status in any of its directories; a group, membership
    /// of it (any directory's group of that name).
    pub fn select<'s>(&self, snapshot: &'s DirectorySnapshot, now: Timestamp) -> Result<Vec<&'s Account>, FilterError> {
        let mut groups: Vec<GroupIdx> = Vec::new();
        for g in &self.groups {
            // A name may exist in several directories: every group of that name counts.
            let matching: Vec<GroupIdx> = snapshot
                .groups
                .iter()
                .enumerate()
                .filter(|(_, x)| x.id == *g || x.name.eq_ignore_ascii_case(g))
                .map(|(i, _)| i as GroupIdx)
                .collect();
            if matching.is_empty() {
                return Err(FilterError::UnknownGroup(g.clone()));
            }
            groups.extend(matching);
        }
        if let Some(ActivityFilter { product: Some(p), .. }) = self.inactive
            && !snapshot.activity_products.contains(&ProductKey::Known(p))
        {
            return Err(FilterError::NoActivityData(p));
        }
        let cutoff = self.inactive.map(|a| now - a.for_at_least.to_signed());
        Ok(snapshot
            .accounts
            .iter()
            .filter(|u| self.statuses.is_empty() || u.memberships.iter().any(|m| self.statuses.contains(&m.status)))
            .filter(|u| groups.is_empty() || u.groups().any(|g| groups.contains(&g)))
            .filter(|u| {
                self.domains.is_empty()
                    || u.email_domain().is_some_and(|d| self.domains.iter().any(|x| x.eq_ignore_ascii_case(d)))
            })
            .filter(|u| self.managed.is_none_or(|m| u.managed == m))
            .filter(|u| match (self.inactive, cutoff) {
                (Some(a), Some(cutoff)) => inactive_since(u, a.product, cutoff),
                _ => self.product.is_none_or(|p| u.has_access_to(p)),
            })
            .collect())
    }
}

/// Whether `user` shows no activity after `cutoff`. A user never active is measured from when they
/// were added; a user with no date at all is not counted (missing data is not inactivity). On a
/// product, only users with access to it count; overall, every source counts (any product, known
/// or not, in any directory, and API tokens).
fn inactive_since(user: &Account, product: Option<Product>, cutoff: Timestamp) -> bool {
    let last = match product {
        Some(p) if !user.has_access_to(p) => return false,
        Some(p) => user.last_active_on(p),
        None => user.last_activity(),
    };
    match last.or(user.added_to_org) {
        Some(t) => t <= cutoff,
        None => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::snapshot::{AccountType, DirectoryInfo, DirectoryUser, Group, ManagementSource, ProductActivity};

    pub(crate) fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub(crate) fn user(id: &str, email: &str, status: UserStatus, groups: Vec<GroupIdx>) -> DirectoryUser {
        DirectoryUser {
            account_id: id.into(),
            email: Some(email.into()),
            name: id.to_uppercase(),
            account_type: AccountType::Atlassian,
            managed: email.ends_with("@acme.example"),
            status,
            added_to_org: Some(ts("2025-01-01T00:00:00Z")),
            product_access: vec![],
            groups,
            org_admin: false,
            site_admin: false,
            management_source: ManagementSource::Invited,
            directory: 0,
        }
    }

    pub(crate) fn group(id: &str, name: &str) -> Group {
        Group {
            id: id.into(),
            name: name.into(),
            directory: 0,
            idp_synced: false,
            locked: false,
            member_count: 0,
            site_admin: false,
            grants: vec![],
        }
    }

    /// Four users, three groups (one IdP-synced), Jira activity data present.
    pub(crate) fn org() -> DirectorySnapshot {
        let mut a = user("acc-a", "ann@acme.example", UserStatus::Active, vec![0, 1]);
        a.product_access = vec![
            ProductActivity { product: Product::JiraSoftware.into(), last_active: Some(ts("2026-11-20T00:00:00Z")) },
            ProductActivity { product: Product::Confluence.into(), last_active: Some(ts("2026-01-01T00:00:00Z")) },
        ];
        let mut b = user("acc-b", "bob@contractor.example", UserStatus::Suspended, vec![0]);
        b.product_access = vec![ProductActivity {
            product: Product::JiraSoftware.into(),
            last_active: Some(ts("2026-03-01T00:00:00Z")),
        }];
        let mut c = user("acc-c", "cat@acme.example", UserStatus::Deactivated, vec![]);
        c.added_to_org = None;
        let d = user("acc-d", "dan@acme.example", UserStatus::InvitedNeverActive, vec![2]);
        let mut idp = group("g-idp", "okta-engineering");
        idp.idp_synced = true;
        DirectorySnapshot {
            org_id: "org".into(),
            directories: vec![DirectoryInfo { id: "dir-1".into(), name: "Acme".into() }],
            taken_at: ts("2026-11-25T00:00:00Z"),
            accounts: DirectorySnapshot::fold_rows(vec![a, b, c, d]).0,
            groups: vec![group("g-jira", "jira-users"), group("g-conf", "confluence-users"), idp],
            activity_products: [Product::JiraSoftware.into(), Product::Confluence.into()].into(),
            ..Default::default()
        }
    }

    fn ids(users: Vec<&Account>) -> Vec<&str> {
        users.into_iter().map(|u| u.account_id.as_str()).collect()
    }

    #[test]
    fn each_condition_narrows_the_listing() {
        let s = org();
        let now = ts("2026-11-25T00:00:00Z");
        let all = UserFilter::default();
        assert_eq!(ids(all.select(&s, now).unwrap()), ["acc-a", "acc-b", "acc-c", "acc-d"]);
        let suspended = UserFilter { statuses: vec![UserStatus::Suspended], ..Default::default() };
        assert_eq!(ids(suspended.select(&s, now).unwrap()), ["acc-b"]);
        let jira = UserFilter { groups: vec!["JIRA-USERS".into()], ..Default::default() };
        assert_eq!(ids(jira.select(&s, now).unwrap()), ["acc-a", "acc-b"]);
        let by_id = UserFilter { groups: vec!["g-idp".into()], ..Default::default() };
        assert_eq!(ids(by_id.select(&s, now).unwrap()), ["acc-d"]);
        let external = UserFilter { managed: Some(false), ..Default::default() };
        assert_eq!(ids(external.select(&s, now).unwrap()), ["acc-b"]);
        let domain = UserFilter { domains: vec!["Contractor.Example".into()], ..Default::default() };
        assert_eq!(ids(domain.select(&s, now).unwrap()), ["acc-b"]);
        let on_confluence = UserFilter { product: Some(Product::Confluence), ..Default::default() };
        assert_eq!(ids(on_confluence.select(&s, now).unwrap()), ["acc-a"]);
    }

    #[test]
    fn inactivity_is_measured_per_product_or_overall_and_never_from_missing_data() {
        let s = org();
        let now = ts("2026-11-25T00:00:00Z");
        let idle = |days, product| UserFilter {
            inactive: Some(ActivityFilter { for_at_least: Duration::from_days(days), product }),
            ..Default::default()
        };
        // Overall: ann was active 5 days ago; bob 269 days ago; cat has no date at all (not counted);
        // dan never active, added 2025-01-01.
        assert_eq!(ids(idle(90, None).select(&s, now).unwrap()), ["acc-b", "acc-d"]);
        assert_eq!(ids(idle(300, None).select(&s, now).unwrap()), ["acc-d"]);
        // On Confluence only ann has access, idle since January.
        assert_eq!(ids(idle(90, Some(Product::Confluence)).select(&s, now).unwrap()), ["acc-a"]);
        assert_eq!(ids(idle(90, Some(Product::JiraSoftware)).select(&s, now).unwrap()), ["acc-b"]);
        assert_eq!(
            idle(1, Some(Product::Bitbucket)).select(&s, now),
            Err(FilterError::NoActivityData(Product::Bitbucket))
        );
    }

    #[test]
    fn an_unknown_group_is_an_error_not_an_empty_listing() {
        let f = UserFilter { groups: vec!["nope".into()], ..Default::default() };
        assert_eq!(f.select(&org(), ts("2026-11-25T00:00:00Z")), Err(FilterError::UnknownGroup("nope".into())));
    }
}
