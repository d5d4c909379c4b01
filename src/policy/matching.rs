//! Who a policy looks at (scope), who it must never touch (protections), and group/domain/glob
//! matching, each compiled once per plan so the per-user checks are cheap.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use crate::crd::{AccountScope, OnboardingSelector, ProtectedUser, Scope};
use crate::snapshot::{Account, AccountType, DirectorySnapshot, GroupIdx};

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
        let mut out = Protections::default();
        let mut account_ids: HashMap<&str, Vec<u16>> = HashMap::new();
        let mut emails: HashMap<String, Vec<u16>> = HashMap::new();
        let mut patterns: Vec<(String, u16)> = Vec::new();
        let mut by_group: HashMap<GroupIdx, Vec<u16>> = HashMap::new();
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
                by_group.entry(*g).or_default().push(i);
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
            return out;
        }
        let needs_email = !emails.is_empty() || !patterns.is_empty();
        // Account ids: look the few protected ids up, rather than hash a million.
        let mut by_account: HashMap<u32, Vec<u16>> = HashMap::new();
        for (id, idx) in &account_ids {
            let hit = if users_sorted {
                snapshot.account_index(id)
            } else {
                snapshot.accounts.iter().position(|u| u.account_id == *id)
            };
            if let Some(i) = hit {
                by_account.entry(i as u32).or_default().extend_from_slice(idx);
            }
        }
        let mut found: Vec<u16> = Vec::new();
        let mut lower = String::new();
        for (ui, user) in snapshot.accounts.iter().enumerate() {
            found.clear();
            if let Some(v) = by_account.get(&(ui as u32)) {
                found.extend_from_slice(v);
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
                    if let Some(v) = by_group.get(&g) {
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
        let admin_groups: HashSet<GroupIdx> =
            snapshot.groups.iter().enumerate().filter(|(_, g)| g.site_admin).map(|(i, _)| i as GroupIdx).collect();
        snapshot
            .accounts
            .iter()
            .map(|u| AccountGuards::of(u, &admin_groups, snapshot.api_key_owner.as_deref(), key_owner))
            .collect()
    }

    pub fn of(
        u: &Account,
        admin_groups: &HashSet<GroupIdx>,
        snapshot_owner: Option<&str>,
        key_owner: Option<&str>,
    ) -> AccountGuards {
        AccountGuards {
            org_admin: u.org_admin,
            site_admin: u.site_admin || (!admin_groups.is_empty() && u.groups().any(|g| admin_groups.contains(&g))),
            api_key_owner: snapshot_owner == Some(u.account_id.as_str()) || key_owner == Some(u.account_id.as_str()),
        }
    }
}

/// Human accounts only: app accounts are never acted on, JSM customers are not billed.
pub(crate) fn is_human(user: &Account) -> bool {
    user.account_type == AccountType::Atlassian
}
