//! Property tests: for random small organizations of two directories (accounts in both, the same
//! group names in both, products seatwarden does not model, accounts working only through API
//! tokens, listing rows served twice, listings marked incomplete), policies, protections and
//! ledgers —
//! no protected (or admin, or app, or API-key-owner) user is ever acted on or warned, caps are
//! never exceeded, the plan is deterministic, and applying a plan then planning again at the same
//! instant plans no action twice: without deferrals no further destructive action, with deferrals
//! exactly those come back. "Those" includes what a run held back for another decision about the
//! same user (one destructive decision per run) and what a percentage-halted policy planned, since
//! both are decided afresh next run.

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;

use crate::crd::*;
use crate::ledger::{Outcome, Suspension, UserRecord};
use crate::product::Product;
use crate::snapshot::*;

use super::fixture::*;
use super::*;

#[derive(Clone, Debug)]
struct UserSeed {
    status: u8,
    managed: bool,
    kind: u8,
    jira_days: Option<i64>,
    conf: Option<Option<i64>>,
    groups: Vec<bool>,
    org_admin: bool,
    synced: bool,
    added_days: Option<i64>,
    suspended_days: Option<i64>,
    /// Also in directory 2: (status, Jira days, groups there).
    second: Option<(u8, Option<i64>, Vec<bool>)>,
    /// Activity on an unmodelled product (Loom), days ago.
    other_product: Option<i64>,
    /// API-token use, days ago.
    token: Option<i64>,
    /// The listing served this row twice, identically.
    duplicated: bool,
}

fn user_seed() -> impl Strategy<Value = UserSeed> {
    (
        prop_oneof![6 => Just(0u8), 2 => Just(1u8), 2 => Just(2u8), 1 => Just(3u8)],
        any::<bool>(),
        prop_oneof![12 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        proptest::option::weighted(0.85, 0i64..400),
        proptest::option::of(proptest::option::weighted(0.8, 0i64..400)),
        proptest::collection::vec(proptest::bool::weighted(0.3), 7),
        proptest::bool::weighted(0.05),
        proptest::bool::weighted(0.1),
        proptest::option::weighted(0.9, 0i64..800),
        proptest::option::of(0i64..120),
        (
            proptest::option::weighted(
                0.25,
                (
                    prop_oneof![3 => Just(0u8), 1 => Just(2u8)],
                    proptest::option::weighted(0.85, 0i64..400),
                    proptest::collection::vec(proptest::bool::weighted(0.3), 7),
                ),
            ),
            proptest::option::weighted(0.1, 0i64..400),
            proptest::option::weighted(0.1, 0i64..400),
            proptest::bool::weighted(0.05),
        ),
    )
        .prop_map(
            |(
                status,
                managed,
                kind,
                jira_days,
                conf,
                groups,
                org_admin,
                synced,
                added_days,
                suspended_days,
                (second, other_product, token, duplicated),
            )| {
                UserSeed {
                    second,
                    other_product,
                    token,
                    duplicated,
                    status,
                    managed,
                    kind,
                    jira_days,
                    conf,
                    groups,
                    org_admin,
                    synced,
                    added_days,
                    suspended_days,
                }
            },
        )
}

fn make_user(i: usize, s: &UserSeed) -> DirectoryUser {
    let mut u = user(&format!("u{i:03}"));
    u.status = [UserStatus::Active, UserStatus::InvitedNeverActive, UserStatus::Suspended, UserStatus::Deactivated]
        [s.status as usize];
    u.managed = s.managed;
    u.account_type =
        [AccountType::Atlassian, AccountType::App, AccountType::Customer, AccountType::Unknown][s.kind as usize];
    u.product_access[0].last_active = s.jira_days.map(ago);
    if u.status == UserStatus::InvitedNeverActive {
        u.product_access[0].last_active = None;
    }
    if let Some(c) = s.conf {
        let last = if u.status == UserStatus::InvitedNeverActive { None } else { c.map(ago) };
        u.product_access.push(ProductActivity { product: Product::Confluence.into(), last_active: last });
    }
    u.groups = s.groups.iter().enumerate().filter(|(_, b)| **b).map(|(g, _)| g as GroupIdx).collect();
    u.org_admin = s.org_admin;
    u.management_source = if s.synced { ManagementSource::Synced } else { ManagementSource::Invited };
    u.added_to_org = s.added_days.map(ago);
    if let Some(days) = s.other_product
        && u.status != UserStatus::InvitedNeverActive
    {
        let loom = crate::product::ProductKey::from_api_key("loom");
        u.product_access.push(ProductActivity { product: loom, last_active: Some(ago(days)) });
    }
    u
}

/// Every row of one seed: its directory-1 row, its directory-2 row, and a repeat when the listing
/// served it twice.
fn make_rows(i: usize, s: &UserSeed) -> Vec<DirectoryUser> {
    let first = make_user(i, s);
    let mut rows = vec![first.clone()];
    if let Some((status, jira, groups)) = &s.second {
        let mut twin = first.clone();
        twin.directory = 1;
        twin.status = [UserStatus::Active, UserStatus::InvitedNeverActive, UserStatus::Suspended][*status as usize];
        twin.product_access[0].last_active = jira.map(ago);
        twin.groups = groups.iter().enumerate().filter(|(_, b)| **b).map(|(g, _)| g as GroupIdx + DIR2).collect();
        rows.push(twin);
    }
    if s.duplicated {
        rows.push(first);
    }
    rows
}

fn rule_seed(i: usize) -> impl Strategy<Value = Rule> {
    (0u8..4, 1i64..200, 0u8..3, prop_oneof![Just(0u8), Just(1), Just(2)], any::<bool>()).prop_map(
        move |(kind, days, leads, action, product)| {
            let name = format!("r{i}");
            let account_action =
                [RuleAction::Suspend, RuleAction::Deactivate, RuleAction::RemoveFromDirectory][action as usize];
            let rule = match kind {
                0 => product_rule(&name, if product { Product::JiraSoftware } else { Product::Confluence }, days),
                1 => account_rule(&name, days, account_action),
                2 => never_rule(
                    &name,
                    days,
                    if account_action == RuleAction::Deactivate { RuleAction::Suspend } else { account_action },
                ),
                _ => suspended_rule(
                    &name,
                    days,
                    if action == 0 { RuleAction::Deactivate } else { RuleAction::RemoveFromDirectory },
                ),
            };
            with_leads(rule, [&[][..], &[7][..], &[14, 3][..]][leads as usize])
        },
    )
}

fn policy_seed(i: usize) -> impl Strategy<Value = LifecyclePolicy> {
    (
        proptest::collection::vec(0usize..1, 1..4).prop_flat_map(|v| {
            let n = v.len();
            (0..n).map(rule_seed).collect::<Vec<_>>()
        }),
        0i32..8,
        prop_oneof![Just(100i32), 0i32..100],
        any::<bool>(),
        proptest::bool::weighted(0.4),
        proptest::bool::weighted(0.3),
        proptest::bool::weighted(0.3),
    )
        .prop_map(move |(rules, max_actions, max_percent, enforce, reactivation, onboarding, exclude_vips)| {
            let mut p = policy(&format!("p{i}"), rules);
            p.spec.caps = Caps { max_actions_per_run: max_actions, max_action_percent: max_percent };
            p.spec.mode = if enforce { PolicyMode::Enforce } else { PolicyMode::DryRun };
            if reactivation {
                p.spec.reactivation = Some(Reactivation {
                    on_activity: true,
                    opt_in_groups: vec!["request-access".into()],
                    account_ids: vec!["u001".into()],
                    restore_suspended: true,
                });
            }
            if onboarding {
                p.spec.onboarding = vec![Onboarding {
                    name: "conf".into(),
                    selector: OnboardingSelector::default(),
                    groups: vec!["confluence-users".into()],
                    seat_cap: Some(3),
                }];
            }
            if exclude_vips {
                p.spec.scope.exclude_groups = vec!["vips".into()];
            }
            p
        })
}

#[derive(Clone, Debug)]
struct ProtSeed {
    users: Vec<usize>,
    by_email: bool,
    group: bool,
    expiry: u8,
    only_p0: bool,
}

fn prot_seed() -> impl Strategy<Value = ProtSeed> {
    (proptest::collection::vec(0usize..30, 0..4), any::<bool>(), proptest::bool::weighted(0.3), 0u8..3, any::<bool>())
        .prop_map(|(users, by_email, group, expiry, only_p0)| ProtSeed { users, by_email, group, expiry, only_p0 })
}

fn build(
    users: &[UserSeed],
    policies: Vec<LifecyclePolicy>,
    prots: &[ProtSeed],
    daily: Option<u32>,
    key_owner: bool,
    incomplete: bool,
) -> Fx {
    let list: Vec<DirectoryUser> = users.iter().enumerate().flat_map(|(i, s)| make_rows(i, s)).collect();
    let mut fx = Fx::new(vec![], policies);
    fx.snapshot = two_directories(list);
    for (i, s) in users.iter().enumerate() {
        if let Some(days) = s.token {
            let id = format!("u{i:03}");
            fx.snapshot.accounts.iter_mut().find(|a| a.account_id == id).unwrap().api_token_last_active =
                Some(ago(days));
        }
    }
    if incomplete {
        fx.snapshot.incomplete = Some("directory dir-2 listed 0 user(s) but its users/stats counts 12".into());
    }
    fx.daily = daily;
    if key_owner && !users.is_empty() {
        fx.snapshot.api_key_owner = Some("u000".into());
    }
    for (i, s) in users.iter().enumerate() {
        if let (Some(d), 2) = (s.suspended_days, s.status) {
            fx.ledger.users.insert(
                format!("u{i:03}"),
                UserRecord {
                    suspension: Some(Suspension { since: ago(d), by_seatwarden: d % 2 == 0, directory_ids: vec![] }),
                    ..Default::default()
                },
            );
        }
    }
    fx.protections = prots
        .iter()
        .enumerate()
        .map(|(k, p)| {
            protection(&format!("prot{k}"), |s| {
                for u in &p.users {
                    if p.by_email {
                        s.emails.push(format!("U{u:03}@ACME.test"));
                    } else {
                        s.account_ids.push(format!("u{u:03}"));
                    }
                }
                if p.group {
                    s.groups.push("vips".into());
                }
                if s.emails.is_empty() && s.account_ids.is_empty() && s.groups.is_empty() {
                    s.account_ids.push("nobody".into());
                }
                s.expires_at = match p.expiry {
                    0 => None,
                    1 => Some(time(ago(1))),
                    _ => Some(time(ago(-30))),
                };
                if p.only_p0 {
                    s.policies = vec!["p0".into()];
                }
            })
        })
        .collect();
    fx
}

/// Independent oracle for invariant 1 (protections here use ids, emails and the vips group).
fn untouchable(fx: &Fx, account: &str, policy: &str) -> bool {
    let Some(u) = fx.snapshot.account(account) else { return false };
    if u.org_admin
        || u.site_admin
        || u.in_group(SITE_ADMINS)
        || u.in_group(SITE_ADMINS + DIR2)
        || u.account_type != AccountType::Atlassian
    {
        return true;
    }
    if fx.snapshot.api_key_owner.as_deref() == Some(account) {
        return true;
    }
    fx.protections.iter().any(|p| {
        let s = &p.spec;
        let live = s.expires_at.as_ref().is_none_or(|e| e.0 > fx.now);
        let covers = s.policies.is_empty() || s.policies.iter().any(|x| x == policy);
        let email = u.email.as_deref().unwrap_or("").to_lowercase();
        let hit = s.account_ids.iter().any(|a| a == account)
            || s.emails.iter().any(|e| e.to_lowercase() == email)
            || (s.groups.iter().any(|g| g == "vips") && (u.in_group(VIPS) || u.in_group(VIPS + DIR2)));
        live && covers && hit
    })
}

fn kind_key(k: &ActionKind) -> String {
    k.label().to_owned()
}

/// Applies the writes of every policy that isn't halted (as the executor would in Enforce), and
/// records delivered notices and outcomes in the ledger.
fn apply(fx: &mut Fx, plan: &Plan) -> HashSet<(String, ActionKind)> {
    fx.ledger.apply_updates(&plan.ledger_updates);
    let licensed: Vec<(GroupIdx, Product)> = [
        (JIRA_USERS, Product::JiraSoftware),
        (JIRA_EXTRA, Product::JiraSoftware),
        (IDP_JIRA, Product::JiraSoftware),
        (CONFLUENCE_USERS, Product::Confluence),
    ]
    .into_iter()
    .flat_map(|(g, p)| [(g, p), (g + DIR2, p)])
    .collect();
    let mut applied = HashSet::new();
    // What the operator applies: Enforce policies only (DryRun ones are shown, never applied).
    for p in plan.policies.iter().filter(|p| p.applies) {
        for n in &p.notices {
            fx.ledger.record_notice_delivered(n, fx.now);
        }
        for a in &p.actions {
            fx.ledger.record_intended(a, "run-1", fx.now);
            let dir = fx.snapshot.directory_index(&a.directory_id).unwrap_or(0);
            let accounts = &mut fx.snapshot.accounts;
            let Some(pos) = accounts.iter().position(|u| u.account_id == a.account_id) else { continue };
            let Some(mi) = accounts[pos].memberships.iter().position(|m| m.directory == dir) else { continue };
            match &a.kind {
                ActionKind::Suspend => accounts[pos].memberships[mi].status = UserStatus::Suspended,
                ActionKind::Deactivate => {
                    accounts[pos].memberships.iter_mut().for_each(|m| m.status = UserStatus::Deactivated)
                }
                ActionKind::Restore => accounts[pos].memberships[mi].status = UserStatus::Active,
                ActionKind::Enable => accounts[pos].memberships.iter_mut().for_each(|m| m.status = UserStatus::Active),
                ActionKind::RemoveFromDirectory => {
                    accounts[pos].memberships.remove(mi);
                    if accounts[pos].memberships.is_empty() {
                        accounts.remove(pos);
                    }
                }
                ActionKind::RemoveGroup { group_id } => {
                    let (gi, _) = fx.snapshot.group_by_id(group_id).unwrap();
                    let u = &mut fx.snapshot.accounts[pos].memberships[mi];
                    u.groups.retain(|g| *g != gi);
                    for (_, product) in licensed.iter().filter(|(g, _)| *g == gi) {
                        if !licensed.iter().any(|(g, p)| p == product && u.groups.contains(g)) {
                            u.product_access.retain(|pa| pa.product != *product);
                        }
                    }
                }
                ActionKind::AddGroup { group_id } => {
                    let (gi, _) = fx.snapshot.group_by_id(group_id).unwrap();
                    let u = &mut fx.snapshot.accounts[pos].memberships[mi];
                    u.groups.push(gi);
                    for (_, product) in licensed.iter().filter(|(g, _)| *g == gi) {
                        if !u.product_access.iter().any(|x| x.product == *product) {
                            u.product_access.push(ProductActivity { product: (*product).into(), last_active: None });
                        }
                    }
                }
                ActionKind::Invite => {}
            }
            fx.ledger.record_outcome(a, Outcome::Applied, fx.now);
            applied.insert((a.account_id.clone(), a.kind.clone()));
        }
    }
    fx.daily = plan.daily_cap_remaining;
    applied
}

proptest! {
    // 96 cases keep `make test` quick; PROPTEST_CASES=5000 for a deeper search.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(96),
        ..ProptestConfig::default()
    })]

    #[test]
    fn planning_is_safe_capped_deterministic_and_idempotent(
        users in proptest::collection::vec(user_seed(), 1..30),
        policies in (policy_seed(0), proptest::option::of(policy_seed(1)), proptest::option::of(policy_seed(2))),
        prots in proptest::collection::vec(prot_seed(), 0..3),
        daily in proptest::option::of(0u32..10),
        key_owner in any::<bool>(),
        incomplete in proptest::bool::weighted(0.1),
    ) {
        let mut list = vec![policies.0];
        list.extend(policies.1);
        list.extend(policies.2);
        let mut fx = build(&users, list, &prots, daily, key_owner, incomplete);
        let plan = fx.plan();

        // One entry per account, whatever the rows: shared accounts and repeated rows fold.
        prop_assert_eq!(fx.snapshot.accounts.len(), users.len());

        // Invariant 2: an incomplete listing plans nothing destructive and warns no one.
        if incomplete {
            for p in &plan.policies {
                prop_assert!(p.actions.iter().all(|a| !a.destructive) && p.notices.is_empty() && !p.applies);
            }
        }

        // Invariant 1, the grace period: an account added (in any directory) less than the grace
        // period ago is never acted on destructively nor warned.
        for p in &plan.policies {
            let spec = &fx.policies.iter().find(|x| x.metadata.name.as_deref() == Some(p.policy.as_str())).unwrap().spec;
            let grace = spec.new_account_grace_period.as_secs();
            for id in p.actions.iter().filter(|a| a.destructive).map(|a| &a.account_id).chain(p.notices.iter().map(|n| &n.account_id)) {
                let added = fx.snapshot.account(id).and_then(|a| a.added_to_org)
                    .or_else(|| fx.ledger.users.get(id).and_then(|r| r.first_seen));
                prop_assert!(added.is_some_and(|t| t.as_second() + grace <= fx.now.as_second()),
                    "{} acted on inside the grace period (added {:?})", id, added);
            }
        }

        // Activity from every source: an account active (any product, known or not, any directory,
        // or an API token) within a rule's threshold is not suspended/removed for account inactivity.
        for p in plan.policies.iter().filter(|p| p.halt.is_none()) {
            let spec = &fx.policies.iter().find(|x| x.metadata.name.as_deref() == Some(p.policy.as_str())).unwrap().spec;
            for a in p.actions.iter().filter(|a| a.destructive) {
                let Some(rule) = spec.rules.iter().find(|r| r.name == a.rule) else { continue };
                let Some(ai) = &rule.account_inactivity else { continue };
                let acct = fx.snapshot.account(&a.account_id).unwrap();
                if let Some(last) = acct.last_activity() {
                    prop_assert!(last.as_second() + ai.inactive_for.as_secs() <= fx.now.as_second(),
                        "{} active {:?} but acted on by {}", a.account_id, last, a.rule);
                }
            }
        }

        // Deterministic, whatever the order of the inputs.
        prop_assert_eq!(&plan, &fx.plan());
        fx.policies.reverse();
        fx.protections.reverse();
        prop_assert_eq!(&plan, &fx.plan());

        // Invariant 1: never an action or a notice for a protected, admin, key-owner or app account.
        for p in &plan.policies {
            for a in &p.actions {
                prop_assert!(!untouchable(&fx, &a.account_id, &p.policy), "acted on {} in {}: {:?}", a.account_id, p.policy, a.kind);
            }
            for n in &p.notices {
                prop_assert!(!untouchable(&fx, &n.account_id, &p.policy), "warned {}", n.account_id);
            }
        }

        // Caps: per run, and the organization's day across the policies that apply.
        let mut day_total = 0usize;
        for p in plan.policies.iter().filter(|p| p.halt.is_none()) {
            let spec = &fx.policies.iter().find(|x| x.metadata.name.as_deref() == Some(p.policy.as_str())).unwrap().spec;
            let users: BTreeSet<&str> = p.actions.iter().filter(|a| a.destructive).map(|a| a.account_id.as_str()).collect();
            prop_assert!(users.len() <= spec.caps.max_actions_per_run.max(0) as usize);
            if p.applies {
                day_total += users.len();
            }
            // One destructive decision per user: all of a user's destructive actions share a rule.
            for u in &users {
                let rules: BTreeSet<&str> = p.actions.iter().filter(|a| a.destructive && a.account_id == *u).map(|a| a.rule.as_str()).collect();
                prop_assert_eq!(rules.len(), 1);
            }
        }
        if let Some(d) = daily {
            prop_assert!(day_total <= d as usize, "{} > daily {}", day_total, d);
        }
        let destructive_users: Vec<&str> = plan.policies.iter().filter(|p| p.halt.is_none())
            .flat_map(|p| p.actions.iter().filter(|a| a.destructive).map(|a| a.account_id.as_str()))
            .collect::<BTreeSet<_>>().into_iter().collect();
        let per_policy_sum: usize = plan.policies.iter().filter(|p| p.halt.is_none())
            .map(|p| p.actions.iter().filter(|a| a.destructive).map(|a| a.account_id.as_str()).collect::<BTreeSet<_>>().len())
            .sum();
        prop_assert_eq!(destructive_users.len(), per_policy_sum, "a user got destructive actions from two policies");

        // Apply, then plan again at the same instant.
        let first_deferred: BTreeSet<(String, String)> = plan.policies.iter().filter(|p| p.halt.is_none())
            .flat_map(|p| p.deferred.iter().filter(|d| d.action.destructive).map(|d| (d.action.account_id.clone(), kind_key(&d.action.kind))))
            .collect();
        // Held back for another decision, or planned by a policy the percentage halted (the halt is
        // judged again next run): these may come back too.
        let first_held: BTreeSet<(String, String)> = plan.policies.iter()
            .flat_map(|p| p.held_back.iter().map(|h| (h.account_id.clone(), kind_key(&h.kind))))
            .chain(plan.policies.iter().filter(|p| p.halt.is_some())
                .flat_map(|p| p.actions.iter().map(|a| (a.account_id.clone(), kind_key(&a.kind)))))
            // Shown by a DryRun policy, so never applied: planned again.
            .chain(plan.policies.iter().filter(|p| !p.applies)
                .flat_map(|p| p.actions.iter().map(|a| (a.account_id.clone(), kind_key(&a.kind)))))
            .collect();
        let applied = apply(&mut fx, &plan);
        let second = fx.plan();
        for p in second.policies.iter().filter(|p| p.halt.is_none()) {
            for a in &p.actions {
                prop_assert!(!applied.contains(&(a.account_id.clone(), a.kind.clone())),
                    "planned twice: {} {:?} ({})", a.account_id, a.kind, a.reason);
            }
        }
        let second_destructive: BTreeSet<(String, String)> = second.policies.iter().filter(|p| p.halt.is_none())
            .flat_map(|p| p.actions.iter().chain(p.deferred.iter().map(|d| &d.action))
                .filter(|a| a.destructive).map(|a| (a.account_id.clone(), kind_key(&a.kind))))
            .collect();
        let allowed: BTreeSet<(String, String)> = first_deferred.union(&first_held).cloned().collect();
        // Unless the data guard switched rules on or off in between: that changes every decision
        // that depends on activity, by design (tiny random organizations flip it easily).
        let guard = |p: &Plan| -> BTreeSet<String> {
            p.conditions.iter().filter(|c| c.reason.ends_with("ActivityData")).map(|c| {
                let off = Product::ALL.iter().find(|x| c.message.contains(&format!("{x} activity act on no one")));
                off.map_or("any product".to_owned(), |x| x.to_string())
            }).collect()
        };
        let guard_flipped = guard(&plan) != guard(&second);
        for item in second_destructive.iter().filter(|_| !guard_flipped) {
            prop_assert!(allowed.contains(item), "new destructive decision after applying: {:?}", item);
        }
        // Deferred decisions come back: acted on, deferred again, or held back for a gentler
        // decision (e.g. of a policy whose percentage halt lifted) — never silently lost.
        let second_all: BTreeSet<(String, String)> = second.policies.iter()
            .flat_map(|p| p.actions.iter().chain(p.deferred.iter().map(|d| &d.action))
                .filter(|a| a.destructive).map(|a| (a.account_id.clone(), kind_key(&a.kind))))
            .chain(second.policies.iter().flat_map(|p| p.held_back.iter().map(|h| (h.account_id.clone(), kind_key(&h.kind)))))
            .collect();
        for item in first_deferred.iter().filter(|_| !guard_flipped) {
            prop_assert!(second_all.contains(item), "deferred action did not come back: {:?}\n{}\n{}", item, to_text(&plan), to_text(&second));
        }
    }
}
