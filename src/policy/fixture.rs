//! Test fixtures: small organizations, policies and protections built in code (no I/O).

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::crd::*;
use crate::ledger::{Ledger, RemovedGroup};
use crate::product::Product;
use crate::snapshot::*;

use super::{Plan, PlanInput, SkipKind, plan};

pub(crate) const DAY: i64 = 86_400;

pub(crate) fn now() -> Timestamp {
    "2026-11-25T12:00:00Z".parse().unwrap()
}

pub(crate) fn ago(days: i64) -> Timestamp {
    Timestamp::from_second(now().as_second() - days * DAY).unwrap()
}

pub(crate) fn ago_secs(secs: i64) -> Timestamp {
    Timestamp::from_second(now().as_second() - secs).unwrap()
}

/// Group indices of [`snapshot`].
pub(crate) const JIRA_USERS: GroupIdx = 0;
pub(crate) const CONFLUENCE_USERS: GroupIdx = 1;
pub(crate) const SITE_ADMINS: GroupIdx = 2;
pub(crate) const IDP_JIRA: GroupIdx = 3;
pub(crate) const OPT_IN: GroupIdx = 4;
pub(crate) const JIRA_EXTRA: GroupIdx = 5;
pub(crate) const VIPS: GroupIdx = 6;

fn group(id: &str, name: &str) -> Group {
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

pub(crate) fn groups() -> Vec<Group> {
    vec![
        group("g-jira", "jira-users"),
        group("g-conf", "confluence-users"),
        Group { site_admin: true, ..group("g-admins", "site-admins") },
        Group { idp_synced: true, ..group("g-idp-jira", "idp-jira-users") },
        group("g-optin", "request-access"),
        group("g-jira-extra", "jira-extra"),
        group("g-vips", "vips"),
    ]
}

/// An active managed user in jira-users, active on Jira 5 days ago, added 400 days ago.
pub(crate) fn user(id: &str) -> DirectoryUser {
    DirectoryUser {
        account_id: id.into(),
        email: Some(format!("{id}@acme.test")),
        name: id.to_uppercase(),
        account_type: AccountType::Atlassian,
        managed: true,
        status: UserStatus::Active,
        added_to_org: Some(ago(400)),
        product_access: vec![ProductActivity { product: Product::JiraSoftware.into(), last_active: Some(ago(5)) }],
        groups: vec![JIRA_USERS],
        org_admin: false,
        site_admin: false,
        management_source: ManagementSource::Invited,
        directory: 0,
    }
}

/// A user last active on Jira `days` ago.
pub(crate) fn idle(id: &str, days: i64) -> DirectoryUser {
    let mut u = user(id);
    u.product_access[0].last_active = Some(ago(days));
    u
}

/// A one-directory organization of these directory rows (rows of one account id in other
/// directories fold into that account).
pub(crate) fn snapshot(users: Vec<DirectoryUser>) -> DirectorySnapshot {
    let (accounts, _) = DirectorySnapshot::fold_rows(users);
    DirectorySnapshot {
        org_id: "org-1".into(),
        directories: vec![DirectoryInfo { id: "dir-1".into(), name: "Main".into() }],
        taken_at: now(),
        accounts,
        groups: groups(),
        api_key_owner: None,
        activity_products: BTreeSet::from([Product::JiraSoftware.into(), Product::Confluence.into()]),
        api_tokens: ApiTokenActivity::NotRead,
        report: SnapshotReport::default(),
        incomplete: None,
    }
}

/// The first directory row of an account of `s` (what a re-read of it returns).
pub(crate) fn row(s: &DirectorySnapshot, id: &str) -> DirectoryUser {
    let a = s.account(id).unwrap();
    a.directory_user(&a.memberships[0])
}

pub(crate) fn meta(name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some("sw".into()), ..Default::default() }
}

pub(crate) fn org() -> AtlassianOrganization {
    AtlassianOrganization {
        metadata: meta("acme"),
        spec: AtlassianOrganizationSpec {
            org_id: "org-1".into(),
            directories: vec![],
            api_base_url: default_api_base_url(),
            sites: vec![],
            bitbucket: None,
            credentials: Credentials::default(),
            membership_api: MembershipApi::Organization,
            billing: Some(Billing {
                cycle: BillingCycle::Monthly,
                renewal_date: Some("2026-01-10".into()),
                currency: "USD".into(),
                seat_prices: vec![
                    SeatPrice { product: Product::JiraSoftware, monthly_price: 8.0 },
                    SeatPrice { product: Product::Confluence, monthly_price: 6.0 },
                ],
            }),
            user_limits: vec![],
            request_budget: RequestBudget::default(),
            mail: None,
            local_mailbox: true,
            max_actions_per_day: None,
        },
        status: None,
    }
}

pub(crate) fn mapping(name: &str, product: Product, groups: &[&str], price: Option<f64>) -> GroupLicenseMapping {
    GroupLicenseMapping {
        metadata: meta(name),
        spec: GroupLicenseMappingSpec {
            organization_ref: LocalRef { name: "acme".into() },
            product,
            site: None,
            groups: groups.iter().map(|g| GroupRef { name: Some((*g).into()), id: None, directory: None }).collect(),
            seat_price: price,
        },
        status: None,
    }
}

pub(crate) fn mappings() -> Vec<GroupLicenseMapping> {
    vec![
        mapping("jira", Product::JiraSoftware, &["jira-users", "jira-extra", "idp-jira-users"], None),
        mapping("confluence", Product::Confluence, &["confluence-users"], Some(5.0)),
    ]
}

fn base_rule(name: &str, action: RuleAction) -> Rule {
    Rule {
        name: name.into(),
        product_inactivity: None,
        account_inactivity: None,
        never_active: None,
        suspended_for: None,
        action,
        notice_lead_times: vec![],
    }
}

pub(crate) fn account_rule(name: &str, days: i64, action: RuleAction) -> Rule {
    Rule {
        account_inactivity: Some(AccountInactivity { inactive_for: Duration::from_days(days) }),
        ..base_rule(name, action)
    }
}

pub(crate) fn product_rule(name: &str, product: Product, days: i64) -> Rule {
    Rule {
        product_inactivity: Some(ProductInactivity { product, inactive_for: Duration::from_days(days) }),
        ..base_rule(name, RuleAction::RemoveLicensedGroups)
    }
}

pub(crate) fn never_rule(name: &str, days: i64, action: RuleAction) -> Rule {
    Rule { never_active: Some(NeverActive { added_for: Duration::from_days(days) }), ..base_rule(name, action) }
}

pub(crate) fn suspended_rule(name: &str, days: i64, action: RuleAction) -> Rule {
    Rule { suspended_for: Some(SuspendedFor { duration: Duration::from_days(days) }), ..base_rule(name, action) }
}

pub(crate) fn with_leads(mut rule: Rule, leads: &[i64]) -> Rule {
    rule.notice_lead_times = leads.iter().map(|d| Duration::from_days(*d)).collect();
    rule
}

/// An Enforce policy with generous caps (100 per run, 100%).
pub(crate) fn policy(name: &str, rules: Vec<Rule>) -> LifecyclePolicy {
    LifecyclePolicy {
        metadata: meta(name),
        spec: LifecyclePolicySpec {
            organization_ref: LocalRef { name: "acme".into() },
            mode: PolicyMode::Enforce,
            schedule: Schedule::default(),
            scope: Scope::default(),
            rules,
            reactivation: None,
            onboarding: vec![],
            notices: None,
            caps: Caps { max_actions_per_run: 100, max_action_percent: 100 },
            new_account_grace_period: default_grace_period(),
            remove_when_no_seat_freed: false,
            activity_lag_margin: default_activity_lag_margin(),
        },
        status: None,
    }
}

pub(crate) fn protection(name: &str, f: impl FnOnce(&mut ProtectedUserSpec)) -> ProtectedUser {
    let mut spec = ProtectedUserSpec {
        reason: format!("{name} reason"),
        account_ids: vec![],
        emails: vec![],
        email_patterns: vec![],
        groups: vec![],
        expires_at: None,
        policies: vec![],
    };
    f(&mut spec);
    ProtectedUser { metadata: meta(name), spec, status: None }
}

pub(crate) fn time(t: Timestamp) -> Time {
    Time(t)
}

/// Everything a plan reads, owned, with defaults that plan nothing surprising.
pub(crate) struct Fx {
    pub snapshot: DirectorySnapshot,
    pub org: AtlassianOrganization,
    pub policies: Vec<LifecyclePolicy>,
    pub protections: Vec<ProtectedUser>,
    pub mappings: Vec<GroupLicenseMapping>,
    pub ledger: Ledger,
    pub now: Timestamp,
    pub daily: Option<u32>,
}

impl Fx {
    pub fn new(users: Vec<DirectoryUser>, policies: Vec<LifecyclePolicy>) -> Self {
        Fx {
            snapshot: snapshot(users),
            org: org(),
            policies,
            protections: vec![],
            mappings: mappings(),
            ledger: Ledger::new("org-1"),
            now: now(),
            daily: None,
        }
    }

    pub fn input(&self) -> PlanInput<'_> {
        PlanInput {
            snapshot: &self.snapshot,
            organization: &self.org,
            policies: &self.policies,
            protections: &self.protections,
            mappings: &self.mappings,
            ledger: &self.ledger,
            now: self.now,
            daily_actions_remaining: self.daily,
        }
    }

    pub fn plan(&self) -> Plan {
        plan(&self.input())
    }
}

/// (account id, action label, group) of a policy plan's actions, for compact assertions.
pub(crate) fn acts(plan: &Plan, policy: &str) -> Vec<(String, String)> {
    plan.policy(policy)
        .unwrap()
        .actions
        .iter()
        .map(|a| {
            let g = a.kind.group_id().map(|g| format!(":{g}")).unwrap_or_default();
            (a.account_id.clone(), format!("{}{g}", a.kind.label()))
        })
        .collect()
}

pub(crate) fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

pub(crate) fn suspend_idle() -> LifecyclePolicy {
    policy("idle", vec![account_rule("idle-90", 90, RuleAction::Suspend)])
}

pub(crate) fn jira_idle() -> LifecyclePolicy {
    policy("jira", vec![product_rule("jira-60", Product::JiraSoftware, 60)])
}

pub(crate) fn skipped_kinds(plan: &Plan, policy: &str) -> Vec<(String, SkipKind)> {
    plan.policy(policy).unwrap().skipped.iter().map(|s| (s.account_id.clone(), s.kind)).collect()
}

pub(crate) fn warn_policy() -> LifecyclePolicy {
    policy("warn", vec![with_leads(account_rule("idle-90", 90, RuleAction::Suspend), &[14])])
}

/// A ledger record: warned by [`warn_policy`]'s rule (14 days ahead, of a suspension) `days_ago`.
pub(crate) fn warned(days_ago: i64) -> crate::ledger::UserRecord {
    crate::ledger::UserRecord {
        notices: vec![crate::ledger::NoticeRecord {
            policy: "warn".into(),
            rule: "idle-90".into(),
            lead_time: Duration::from_days(14),
            action: Some(RuleAction::Suspend),
            product: None,
            delivered_at: ago(days_ago),
        }],
        ..Default::default()
    }
}

pub(crate) fn reactivating(mut p: LifecyclePolicy) -> LifecyclePolicy {
    p.spec.reactivation = Some(Reactivation {
        on_activity: true,
        opt_in_groups: vec!["request-access".into()],
        account_ids: vec![],
        restore_suspended: true,
    });
    p
}

pub(crate) fn removed(group_id: &str, policy: &str, days_ago: i64) -> RemovedGroup {
    RemovedGroup {
        group_id: group_id.into(),
        directory_id: String::new(),
        product: None,
        policy: policy.into(),
        rule: "jira-60".into(),
        at: ago(days_ago),
        last_active: None,
    }
}

pub(crate) fn onboarding_policy(cap: Option<i32>) -> LifecyclePolicy {
    let mut p = policy("onboard", vec![]);
    p.spec.onboarding = vec![Onboarding {
        name: "confluence-for-all".into(),
        selector: OnboardingSelector { email_domains: vec!["acme.test".into()], groups: vec![], account_types: vec![] },
        groups: vec!["confluence-users".into()],
        seat_cap: cap,
    }];
    p
}

/// Offset of directory 2's groups in [`two_directories`]: the same names as directory 1's.
pub(crate) const DIR2: GroupIdx = 7;

/// A two-directory organization: directory 2 has a group of every name directory 1 has (ids
/// suffixed `-2`). Rows with `directory: 1` must use group indices `DIR2 + i`.
pub(crate) fn two_directories(users: Vec<DirectoryUser>) -> DirectorySnapshot {
    let mut s = snapshot(users);
    s.directories.push(DirectoryInfo { id: "dir-2".into(), name: "Acquired".into() });
    let again: Vec<Group> =
        groups().into_iter().map(|g| Group { id: format!("{}-2", g.id), directory: 1, ..g }).collect();
    s.groups.extend(again);
    s
}

/// `row` in directory 2, its groups moved to directory 2's same-named ones.
pub(crate) fn in_dir2(mut row: DirectoryUser) -> DirectoryUser {
    row.directory = 1;
    row.groups = row.groups.iter().map(|g| g + DIR2).collect();
    row
}

/// Everything a planner test names, in one import.
pub(crate) mod prelude {
    pub(crate) use std::collections::BTreeMap;

    pub(crate) use super::*;
    pub(crate) use crate::crd::*;
    pub(crate) use crate::ledger::{
        Ledger, LedgerUpdate, Outcome, RemovedGroup, Suspension, TakenOut, TakenOutKind, UserRecord,
    };
    pub(crate) use crate::policy::*;
    pub(crate) use crate::product::Product;
    pub(crate) use crate::snapshot::*;
}
