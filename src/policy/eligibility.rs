//! Eligibility and protection: who a policy looks at (scope), who it must never touch (protections,
//! admins, the API-key owner, non-human accounts: invariant 1), and group/domain/glob matching, each
//! compiled once per plan so the per-account checks are cheap.

use std::collections::HashMap;

use jiff::Timestamp;

use crate::crd::{AccountScope, OnboardingSelector, ProtectedUser, Scope};
use crate::snapshot::{Account, AccountType, DirectorySnapshot, GroupIdx};

use super::render::date;
use super::types::SkipKind;

/// Group names or ids resolved against the snapshot; what did not resolve is kept for a condition.
/// A name resolves to every directory's group of that name (a group id to the group(s) with that id).
#[derive(Clone, Debug, Default)]
pub(crate) struct ResolvedGroups {
    pub idx: Vec<GroupIdx>,
    pub unresolved: Vec<String>,
}

impl ResolvedGroups {
    pub fn resolve(snapshot: &DirectorySnapshot, names_or_ids: &[String]) -> Self {
        let mut out = ResolvedGroups::default();
        for name in names_or_ids {
            let found = snapshot.groups_named(name);
            if found.is_empty() {
                out.unresolved.push(name.clone());
            }
            for i in found {
                if !out.idx.contains(&i) {
                    out.idx.push(i);
                }
            }
        }
        out
    }

    /// A group of these the account is in, in any directory.
    pub fn any_member(&self, user: &Account) -> Option<GroupIdx> {
        if self.idx.is_empty() {
            return None;
        }
        user.groups().find(|g| self.idx.contains(g))
    }
}

/// `domain` equals `wanted` or is a subdomain of it, case-insensitively.
pub(crate) fn domain_matches(domain: &str, wanted: &str) -> bool {
    let wanted = wanted.trim_start_matches('@');
    if domain.len() == wanted.len() {
        return domain.eq_ignore_ascii_case(wanted);
    }
    domain.len() > wanted.len()
        && domain.as_bytes()[domain.len() - wanted.len() - 1] == b'.'
        && domain[domain.len() - wanted.len()..].eq_ignore_ascii_case(wanted)
}

/// A compiled `Scope`.
#[derive(Debug)]
pub(crate) struct CompiledScope {
    managed: bool,
    external: bool,
    include_groups: Option<ResolvedGroups>,
    pub exclude_groups: ResolvedGroups,
    include_domains: Vec<String>,
    exclude_domains: Vec<String>,
}

impl CompiledScope {
    pub fn new(snapshot: &DirectorySnapshot, scope: &Scope) -> Self {
        CompiledScope {
            managed: scope.account_types.contains(&AccountScope::Managed),
            external: scope.account_types.contains(&AccountScope::External),
            include_groups: (!scope.include_groups.is_empty())
                .then(|| ResolvedGroups::resolve(snapshot, &scope.include_groups)),
            exclude_groups: ResolvedGroups::resolve(snapshot, &scope.exclude_groups),
            include_domains: scope.include_email_domains.clone(),
            exclude_domains: scope.exclude_email_domains.clone(),
        }
    }

    pub fn unresolved_includes(&self) -> &[String] {
        self.include_groups.as_ref().map(|g| g.unresolved.as_slice()).unwrap_or(&[])
    }

    /// Whether the policy looks at this user at all.
    pub fn matches(&self, user: &Account) -> bool {
        if !(if user.managed { self.managed } else { self.external }) {
            return false;
        }
        if let Some(include) = &self.include_groups
            && include.any_member(user).is_none()
        {
            return false;
        }
        if self.exclude_groups.any_member(user).is_some() {
            return false;
        }
        if self.include_domains.is_empty() && self.exclude_domains.is_empty() {
            return true;
        }
        let domain = user.email_domain();
        if !self.include_domains.is_empty() {
            match domain {
                Some(d) if self.include_domains.iter().any(|w| domain_matches(d, w)) => {}
                _ => return false,
            }
        }
        if let Some(d) = domain
            && self.exclude_domains.iter().any(|w| domain_matches(d, w))
        {
            return false;
        }
        true
    }
}

/// A compiled onboarding selector: every criterion given must match.
#[derive(Debug)]
pub(crate) struct CompiledSelector {
    domains: Vec<String>,
    groups: Option<ResolvedGroups>,
    managed: bool,
    external: bool,
}

impl CompiledSelector {
    pub fn new(snapshot: &DirectorySnapshot, selector: &OnboardingSelector) -> Self {
        let any_type = selector.account_types.is_empty();
        CompiledSelector {
            domains: selector.email_domains.clone(),
            groups: (!selector.groups.is_empty()).then(|| ResolvedGroups::resolve(snapshot, &selector.groups)),
            managed: any_type || selector.account_types.contains(&AccountScope::Managed),
            external: any_type || selector.account_types.contains(&AccountScope::External),
        }
    }

    pub fn unresolved(&self) -> &[String] {
        self.groups.as_ref().map(|g| g.unresolved.as_slice()).unwrap_or(&[])
    }

    pub fn matches(&self, user: &Account) -> bool {
        if !(if user.managed { self.managed } else { self.external }) {
            return false;
        }
        if !self.domains.is_empty() {
            match user.email_domain() {
                Some(d) if self.domains.iter().any(|w| domain_matches(d, w)) => {}
                _ => return false,
            }
        }
        if let Some(groups) = &self.groups
            && groups.any_member(user).is_none()
        {
            return false;
        }
        true
    }
}

/// `*` matches any run of characters, `?` exactly one; case-insensitive.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        return wildcard(pattern.as_bytes(), text.as_bytes(), |a, b| a.eq_ignore_ascii_case(b));
    }
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    wildcard(&p, &t, |a, b| a == b)
}

/// Iterative wildcard matching with one backtrack point: linear in practice, no recursion.
fn wildcard<T: Copy + PartialEq + From<u8>>(p: &[T], t: &[T], eq: impl Fn(&T, &T) -> bool) -> bool {
    let (star, any) = (T::from(b'*'), T::from(b'?'));
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != star && (p[pi] == any || eq(&p[pi], &t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == star {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = backtrack {
            pi = sp + 1;
            ti = st + 1;
            backtrack = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == star {
        pi += 1;
    }
    pi == p.len()
}

/// One active ProtectedUser, compiled.
#[derive(Debug)]
pub(crate) struct CompiledProtection {
    pub name: String,
    pub namespace: Option<String>,
    pub reason: String,
    pub expires_at: Option<Timestamp>,
    pub policies: Vec<String>,
    pub groups: ResolvedGroups,
    /// Kept for accounts absent from the snapshot (re-invitation checks).
    pub account_ids: Vec<String>,
    pub emails: Vec<String>,
    pub email_patterns: Vec<String>,
}

impl CompiledProtection {
    /// Whether this protection covers `policy` (in `namespace`).
    pub fn applies_to(&self, policy: &str, namespace: Option<&str>) -> bool {
        let same_namespace = match (self.namespace.as_deref(), namespace) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        same_namespace && (self.policies.is_empty() || self.policies.iter().any(|p| p == policy))
    }
}

/// Every protection active at `now`, and for each account (by index in the snapshot) the protections
/// that match them. Computed once per plan; a policy then asks which apply to it.
#[derive(Debug, Default)]
pub(crate) struct Protections {
    pub active: Vec<CompiledProtection>,
    /// user index → indices in `active`.
    pub hits: HashMap<u32, Vec<u16>>,
    /// Per user index: whether `hits` has an entry (a hash lookup per user and policy is the
    /// planner's hottest path otherwise).
    pub any_hit: Vec<bool>,
    /// Expired protections, for the report.
    pub expired: Vec<String>,
}

impl Protections {
    /// `users_sorted`: whether the snapshot's users are sorted by account id, as documented (checked once
    /// by the caller); if not, protected account ids are found by a scan rather than missed.
    pub fn compile(
        snapshot: &DirectorySnapshot,
        protections: &[ProtectedUser],
        now: Timestamp,
        users_sorted: bool,
    ) -> Self {
        Self::compile_visiting(snapshot, protections, now, users_sorted, |_, _| {})
    }

    /// [`Protections::compile`], calling `visit` with every account in the same pass (the
    /// planner computes the account guards there: each pass over a million accounts' groups costs
    /// as much in memory reads as the work done on them).
    pub fn compile_visiting(
        snapshot: &DirectorySnapshot,
        protections: &[ProtectedUser],
        now: Timestamp,
        users_sorted: bool,
        mut visit: impl FnMut(usize, &Account),
    ) -> Self {
        let mut out = Protections::default();
        let mut account_ids: HashMap<&str, Vec<u16>> = HashMap::new();
        let mut emails: HashMap<String, Vec<u16>> = HashMap::new();
        let mut patterns: Vec<(String, u16)> = Vec::new();
        // By group index (no hashing in the per-account loop); empty when no protection names a group.
        let mut by_group: Vec<Vec<u16>> = Vec::new();
        // By namespace and name, so the protection a skip names doesn't depend on input order.
        let mut sorted: Vec<&ProtectedUser> = protections.iter().collect();
        sorted
            .sort_by(|a, b| (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name)));
        for p in sorted {
            let name = p.metadata.name.clone().unwrap_or_default();
            let expires_at = p.spec.expires_at.as_ref().map(|t| t.0);
            if expires_at.is_some_and(|e| e <= now) {
                out.expired.push(name);
                continue;
            }
            let i = out.active.len() as u16;
            for id in &p.spec.account_ids {
                account_ids.entry(id.as_str()).or_default().push(i);
            }
            for e in &p.spec.emails {
                emails.entry(e.trim().to_lowercase()).or_default().push(i);
            }
            for pat in &p.spec.email_patterns {
                patterns.push((pat.trim().to_owned(), i));
            }
            let groups = ResolvedGroups::resolve(snapshot, &p.spec.groups);
            for g in &groups.idx {
                if by_group.is_empty() {
                    by_group = vec![Vec::new(); snapshot.groups.len()];
                }
                by_group[*g as usize].push(i);
            }
            out.active.push(CompiledProtection {
                name,
                namespace: p.metadata.namespace.clone(),
                reason: p.spec.reason.clone(),
                expires_at,
                policies: p.spec.policies.clone(),
                groups,
                account_ids: p.spec.account_ids.clone(),
                emails: p.spec.emails.clone(),
                email_patterns: p.spec.email_patterns.clone(),
            });
        }
        if out.active.is_empty() {
            for (ui, user) in snapshot.accounts.iter().enumerate() {
                visit(ui, user);
            }
            return out;
        }
        let needs_email = !emails.is_empty() || !patterns.is_empty();
        // Account ids: look the few protected ids up, rather than hash a million.
        let mut by_account: Vec<(u32, &[u16])> = Vec::new();
        for (id, idx) in &account_ids {
            let hit = if users_sorted {
                snapshot.account_index(id)
            } else {
                snapshot.accounts.iter().position(|u| u.account_id == *id)
            };
            if let Some(i) = hit {
                by_account.push((i as u32, idx));
            }
        }
        // In account order, walked beside the accounts (no lookup per account).
        by_account.sort_unstable_by_key(|(i, _)| *i);
        let mut next_by_account = by_account.iter().peekable();
        let mut found: Vec<u16> = Vec::new();
        let mut lower = String::new();
        for (ui, user) in snapshot.accounts.iter().enumerate() {
            visit(ui, user);
            found.clear();
            while let Some((_, idx)) = next_by_account.next_if(|(i, _)| *i as usize == ui) {
                found.extend_from_slice(idx);
            }
            if needs_email && let Some(email) = &user.email {
                let email = email.trim();
                // ASCII (nearly every address): compare without allocating; otherwise lowercase.
                let text: &str = if email.is_ascii() {
                    email
                } else {
                    lower.clear();
                    lower.extend(email.chars().flat_map(char::to_lowercase));
                    &lower
                };
                if emails.len() <= 16 {
                    for (e, v) in &emails {
                        if e.len() == text.len() && e.eq_ignore_ascii_case(text) {
                            found.extend_from_slice(v);
                        }
                    }
                } else {
                    let key = text.to_ascii_lowercase();
                    if let Some(v) = emails.get(&key) {
                        found.extend_from_slice(v);
                    }
                }
                for (pat, i) in &patterns {
                    if glob_matches(pat, text) {
                        found.push(*i);
                    }
                }
            }
            if !by_group.is_empty() {
                // Membership of a protected group in any of the account's directories.
                for g in user.groups() {
                    if let Some(v) = by_group.get(g as usize) {
                        found.extend_from_slice(v);
                    }
                }
            }
            if !found.is_empty() {
                found.sort_unstable();
                found.dedup();
                out.hits.insert(ui as u32, found.clone());
            }
        }
        out.any_hit = vec![false; snapshot.accounts.len()];
        for ui in out.hits.keys() {
            out.any_hit[*ui as usize] = true;
        }
        out
    }

    /// The first protection covering this user for `policy`, if any.
    pub fn protecting(&self, user_idx: u32, policy: &str, namespace: Option<&str>) -> Option<&CompiledProtection> {
        if !self.any_hit.get(user_idx as usize).copied().unwrap_or(false) {
            return None;
        }
        let hits = self.hits.get(&user_idx)?;
        hits.iter().map(|&i| &self.active[i as usize]).find(|p| p.applies_to(policy, namespace))
    }
}

/// Account-level guards that hold for every policy (invariant 1), shared across an account's
/// directory entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AccountGuards {
    pub org_admin: bool,
    pub site_admin: bool,
    pub api_key_owner: bool,
}

impl AccountGuards {
    /// `key_owner` is the organization spec's API-key owner, in case the snapshot lacks it.
    pub fn compute(snapshot: &DirectorySnapshot, key_owner: Option<&str>) -> Vec<AccountGuards> {
        let admin_groups = AccountGuards::admin_groups(snapshot);
        snapshot
            .accounts
            .iter()
            .map(|u| AccountGuards::of(u, admin_groups.as_deref(), snapshot.api_key_owner.as_deref(), key_owner))
            .collect()
    }

    /// Per group index, whether it grants site admin; None when no group does. By index: a hash
    /// lookup per group of a million accounts costs more than the rest.
    pub fn admin_groups(snapshot: &DirectorySnapshot) -> Option<Vec<bool>> {
        let admin: Vec<bool> = snapshot.groups.iter().map(|g| g.site_admin).collect();
        admin.contains(&true).then_some(admin)
    }

    /// `admin_groups`: per group index, whether it grants site admin (None: no group does).
    pub fn of(
        u: &Account,
        admin_groups: Option<&[bool]>,
        snapshot_owner: Option<&str>,
        key_owner: Option<&str>,
    ) -> AccountGuards {
        AccountGuards {
            org_admin: u.org_admin,
            site_admin: u.site_admin
                || admin_groups.is_some_and(|a| u.groups().any(|g| a.get(g as usize).copied().unwrap_or(false))),
            api_key_owner: snapshot_owner == Some(u.account_id.as_str()) || key_owner == Some(u.account_id.as_str()),
        }
    }
}

/// Why an account is never acted on by `policy`, if it is one of those (invariant 1).
pub(crate) fn guard_of(
    protections: &Protections,
    guards: &[AccountGuards],
    ui: u32,
    policy: &str,
    namespace: Option<&str>,
) -> Option<(SkipKind, String)> {
    if let Some(p) = protections.protecting(ui, policy, namespace) {
        let until = p.expires_at.map(|e| format!(" (until {})", date(e.as_second()))).unwrap_or_default();
        return Some((SkipKind::Protected, format!("protected by ProtectedUser {}{until}: {}", p.name, p.reason)));
    }
    let g = guards[ui as usize];
    if g.org_admin {
        return Some((SkipKind::OrgAdmin, "organization admin: never acted on".into()));
    }
    if g.site_admin {
        return Some((SkipKind::SiteAdmin, "site admin: never acted on".into()));
    }
    if g.api_key_owner {
        return Some((SkipKind::ApiKeyOwner, "owns the API key seatwarden uses: never acted on".into()));
    }
    None
}

/// Human accounts only: app accounts are never acted on, JSM customers are not billed.
pub(crate) fn is_human(user: &Account) -> bool {
    user.account_type == AccountType::Atlassian
}

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn protected_users_are_never_acted_on_by_any_match_kind() {
        let users = vec![
            idle("by-id", 200),
            idle("by-email", 200),
            idle("by-pattern", 200),
            idle("by-group", 200),
            idle("plain", 200),
        ];
        let mut fx = Fx::new(users, vec![suspend_idle()]);
        fx.snapshot.accounts.iter_mut().find(|u| u.account_id == "by-group").unwrap().memberships[0].groups.push(VIPS);
        fx.snapshot.accounts.iter_mut().find(|u| u.account_id == "by-email").unwrap().email =
            Some("By.Email@ACME.test".into());
        fx.snapshot.accounts.iter_mut().find(|u| u.account_id == "by-pattern").unwrap().email =
            Some("svc-build@acme.test".into());
        fx.protections = vec![
            protection("ids", |s| s.account_ids = vec!["by-id".into()]),
            protection("emails", |s| s.emails = vec!["by.email@acme.test".into()]),
            protection("patterns", |s| s.email_patterns = vec!["svc-*@ACME.test".into()]),
            protection("groups", |s| s.groups = vec!["vips".into()]),
        ];
        let plan = fx.plan();
        assert_eq!(acts(&plan, "idle"), vec![pair("plain", "suspend")]);
        let p = plan.policy("idle").unwrap();
        assert_eq!(p.skipped_counts.get(&SkipKind::Protected), Some(&4));
        let by_id = p.skipped.iter().find(|s| s.account_id == "by-id").unwrap();
        assert_eq!(by_id.why, "protected by ProtectedUser ids: ids reason");
        assert_eq!(by_id.rule.as_deref(), Some("idle-90"));
    }

    #[test]
    fn an_expired_protection_no_longer_protects_and_a_live_one_does() {
        let mut fx = Fx::new(vec![idle("leaver", 200), idle("on-leave", 200), user("bob")], vec![suspend_idle()]);
        fx.protections = vec![
            protection("expired", |s| {
                s.account_ids = vec!["leaver".into()];
                s.expires_at = Some(time(ago(1)));
            }),
            protection("leave", |s| {
                s.account_ids = vec!["on-leave".into()];
                s.expires_at = Some(time(ago(-30)));
            }),
        ];
        let plan = fx.plan();
        assert_eq!(acts(&plan, "idle"), vec![pair("leaver", "suspend")]);
        let why = &plan.policy("idle").unwrap().skipped[0].why;
        assert!(why.contains("(until 2026-12-25)"), "{why}");
    }

    #[test]
    fn a_protection_limited_to_some_policies_covers_only_those() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle(), jira_idle()]);
        fx.protections = vec![protection("only-jira", |s| {
            s.account_ids = vec!["alice".into()];
            s.policies = vec!["jira".into()];
        })];
        fx.policies[0].spec.rules[0].action = RuleAction::Suspend;
        let plan = fx.plan();
        assert!(acts(&plan, "jira").is_empty());
        // The gentler group removal would have won; with it protected, the suspension applies.
        assert_eq!(acts(&plan, "idle"), vec![pair("alice", "suspend")]);
    }

    #[test]
    fn admins_api_key_owner_apps_and_customers_are_never_acted_on() {
        let mut org_admin = idle("org-admin", 300);
        org_admin.org_admin = true;
        let mut site_admin = idle("site-admin", 300);
        site_admin.site_admin = true;
        let mut via_group = idle("admin-group", 300);
        via_group.groups.push(SITE_ADMINS);
        let key = idle("key-owner", 300);
        let mut app = idle("app-bot", 300);
        app.account_type = AccountType::App;
        let mut customer = idle("customer", 300);
        customer.account_type = AccountType::Customer;
        let mut fx =
            Fx::new(vec![org_admin, site_admin, via_group, key, app, customer, user("bob")], vec![suspend_idle()]);
        fx.snapshot.api_key_owner = Some("key-owner".into());
        let plan = fx.plan();
        let p = plan.policy("idle").unwrap();
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(p.notices.is_empty());
        for (kind, n) in [
            (SkipKind::OrgAdmin, 1),
            (SkipKind::SiteAdmin, 2),
            (SkipKind::ApiKeyOwner, 1),
            (SkipKind::AppAccount, 1),
            (SkipKind::CustomerAccount, 1),
        ] {
            assert_eq!(p.skipped_counts.get(&kind), Some(&n), "{kind:?}");
        }
        // Apps and customers aren't people the percentage is taken of.
        assert_eq!(p.in_scope, 5);
    }

    #[test]
    fn an_admin_in_one_directory_is_guarded_in_every_directory() {
        let mut a1 = idle("dual", 300);
        a1.org_admin = true;
        let mut a2 = idle("dual", 300);
        a2.directory = 1;
        let mut fx = Fx::new(vec![a1, a2, user("bob")], vec![suspend_idle()]);
        fx.snapshot.directories.push(DirectoryInfo { id: "dir-2".into(), name: "Second".into() });
        assert!(fx.plan().policy("idle").unwrap().actions.is_empty());
    }

    #[test]
    fn new_accounts_inside_the_grace_period_are_left_alone() {
        let mut fresh = user("fresh");
        fresh.status = UserStatus::InvitedNeverActive;
        fresh.product_access[0].last_active = None;
        fresh.added_to_org = Some(ago(5));
        let mut unknown = fresh.clone();
        unknown.account_id = "unknown-date".into();
        unknown.added_to_org = None;
        let fx = Fx::new(
            vec![fresh, unknown, user("bob")],
            vec![policy("never", vec![never_rule("never-0", 0, RuleAction::Suspend)])],
        );
        let plan = fx.plan();
        assert!(acts(&plan, "never").is_empty());
        let p = plan.policy("never").unwrap();
        assert_eq!(p.skipped_counts.get(&SkipKind::GracePeriod), Some(&2));
        assert!(
            p.skipped.iter().any(|s| s.account_id == "fresh" && s.why.contains("grace period (14d) until 2026-12-04"))
        );
        // A user whose date added is unknown is first seen now, and the grace period runs from then.
        assert!(
            plan.ledger_updates.contains(&LedgerUpdate::FirstSeen { account_id: "unknown-date".into(), at: now() })
        );
    }

    #[test]
    fn unresolved_exclusions_and_protection_groups_halt_rather_than_act() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle()]);
        fx.policies[0].spec.scope.exclude_groups = vec!["no-such-group".into()];
        let p = fx.plan();
        assert_eq!(p.policy("idle").unwrap().halt.as_ref().unwrap().reason, "UnresolvedGroup");
        assert!(!p.policy("idle").unwrap().applies);
        fx.policies[0].spec.scope.exclude_groups.clear();
        fx.protections = vec![protection("typo", |s| s.groups = vec!["vipz".into()])];
        let p = fx.plan();
        assert!(p.policy("idle").unwrap().halt.as_ref().unwrap().message.contains("ProtectedUser typo group vipz"));
        assert!(p.conditions.iter().any(|c| c.reason == "UnresolvedProtection"));
    }

    #[test]
    fn scope_filters_account_types_groups_and_domains() {
        let mut ext = idle("ext", 200);
        ext.managed = false;
        let mut partner = idle("partner", 200);
        partner.email = Some("p@sub.partner.test".into());
        let mut vip = idle("vip", 200);
        vip.groups.push(VIPS);
        let mut conf_only = idle("conf-only", 200);
        conf_only.groups = vec![CONFLUENCE_USERS];
        let mut p = suspend_idle();
        p.spec.scope = Scope {
            account_types: vec![AccountScope::Managed],
            include_groups: vec!["jira-users".into()],
            exclude_groups: vec!["vips".into()],
            include_email_domains: vec![],
            exclude_email_domains: vec!["partner.test".into()],
        };
        let plan = Fx::new(vec![ext, partner, vip, conf_only, idle("in", 200), user("bob")], vec![p]).plan();
        assert_eq!(acts(&plan, "idle"), vec![pair("in", "suspend")]);
        assert_eq!(plan.policy("idle").unwrap().in_scope, 2);
        let mut p = suspend_idle();
        p.spec.scope.include_email_domains = vec!["partner.test".into()];
        let mut partner = idle("partner", 200);
        partner.email = Some("p@sub.partner.test".into());
        let plan = Fx::new(vec![partner, idle("in", 200), user("bob")], vec![p]).plan();
        assert_eq!(acts(&plan, "idle"), vec![pair("partner", "suspend")]);
    }

    #[test]
    fn glob_patterns_match_like_people_expect() {
        use super::glob_matches;
        assert!(glob_matches("svc-*@example.com", "svc-build@example.com"));
        assert!(glob_matches("svc-*@example.com", "SVC-@EXAMPLE.COM"));
        assert!(glob_matches("?@x", "a@x"));
        assert!(!glob_matches("?@x", "ab@x"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "a-xx-b-yy-c"));
        assert!(!glob_matches("a*b*c", "a-xx-c-yy-b"));
        assert!(!glob_matches("svc-*@example.com", "svc-build@example.com.evil"));
    }

    #[test]
    fn the_api_key_owner_named_in_the_organization_spec_is_never_acted_on() {
        let mut fx = Fx::new(vec![idle("owner", 300), user("bob")], vec![suspend_idle()]);
        fx.org.spec.credentials.api_key_owner_account_id = Some("owner".into());
        let plan = fx.plan();
        assert!(acts(&plan, "idle").is_empty());
        assert_eq!(plan.policy("idle").unwrap().skipped_counts.get(&SkipKind::ApiKeyOwner), Some(&1));
    }
}
