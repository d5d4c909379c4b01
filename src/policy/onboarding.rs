//! Onboarding: accounts matching a selector are put into groups (every directory's group of the
//! name, in the directories the account is live in), within the seat cap and the products' user
//! limits, and never someone seatwarden took out for inactivity until they return.

use std::collections::{BTreeMap, HashSet};

use crate::crd::LifecyclePolicy;
use crate::ledger::UserRecord;
use crate::product::Product;
use crate::snapshot::{GroupIdx, Membership, UserStatus};

use super::context::{Ctx, basis, directory_id, name_of};
use super::eligibility::{CompiledScope, CompiledSelector, ResolvedGroups, is_human};
use super::types::*;

/// Onboarding: ensure group membership for users matching a selector, within the seat cap.
pub(super) fn onboard(
    ctx: &Ctx<'_>,
    policy: &LifecyclePolicy,
    pp: &mut PolicyPlan,
    busy: &[bool],
    onboarded: &mut HashSet<(u32, GroupIdx)>,
    room: &mut BTreeMap<Product, u32>,
) {
    let spec = &policy.spec;
    if spec.onboarding.is_empty() {
        return;
    }
    let name = name_of(policy);
    let namespace = policy.metadata.namespace.as_deref();
    let scope = CompiledScope::new(ctx.snapshot, &spec.scope);
    let mut held_back: BTreeMap<Product, u32> = BTreeMap::new();
    for ob in &spec.onboarding {
        let selector = CompiledSelector::new(ctx.snapshot, &ob.selector);
        let targets = ResolvedGroups::resolve(ctx.snapshot, &ob.groups);
        for g in selector.unresolved().iter().chain(&targets.unresolved) {
            pp.conditions.push(PlanCondition {
                reason: "UnresolvedGroup".into(),
                message: format!("onboarding {} names group {g}, which is not in the organization", ob.name),
            });
        }
        let cap = ob.seat_cap.map(|c| c.max(0) as u32);
        let rule = format!("onboarding/{}", ob.name);
        let mut users_added = 0u32;
        for (i, user) in ctx.snapshot.accounts.iter().enumerate() {
            let ui = i as u32;
            if !is_human(user)
                || !matches!(user.status(), UserStatus::Active | UserStatus::InvitedNeverActive)
                || !scope.matches(user)
                || !selector.matches(user)
                || busy[i]
            {
                continue;
            }
            let missing: Vec<GroupIdx> = targets
                .idx
                .iter()
                .copied()
                // A group can only take members of its own directory, where the account is live.
                .filter(|g| {
                    user.membership(ctx.snapshot.groups[*g as usize].directory).is_some_and(Membership::is_live)
                        && !user.in_group(*g)
                        && !onboarded.contains(&(ui, *g))
                })
                .collect();
            if missing.is_empty() {
                continue;
            }
            if let Some((kind, why)) = ctx.guard(ui, &name, namespace) {
                *pp.skipped_counts.entry(kind).or_default() += 1;
                pp.skipped.push(SkippedUser {
                    account_id: user.account_id.clone(),
                    email: user.email.clone(),
                    kind,
                    rule: Some(rule.clone()),
                    why,
                });
                continue;
            }
            if ctx.recs[i].is_some_and(UserRecord::holds_removals) {
                pp.skipped.push(SkippedUser {
                    account_id: user.account_id.clone(),
                    email: user.email.clone(),
                    kind: SkipKind::NotApplicable,
                    rule: Some(rule.clone()),
                    why: "seatwarden took this user's access for inactivity: not onboarded again until they return"
                        .into(),
                });
                continue;
            }
            let mut acts = Vec::new();
            let mut gaining: Vec<Product> = Vec::new();
            for g in missing {
                let group = &ctx.snapshot.groups[g as usize];
                let reason = format!("matches onboarding {}; not yet in {}", ob.name, group.name);
                if group.read_only() {
                    pp.idp_actions.push(IdpAction {
                        account_id: user.account_id.clone(),
                        email: user.email.clone(),
                        kind: ActionKind::AddGroup { group_id: group.id.clone() },
                        rule: rule.clone(),
                        group_name: Some(group.name.clone()),
                        reason: format!("{reason}; the group is synced from the identity provider: add the user there"),
                    });
                    continue;
                }
                let mut seats = BTreeMap::new();
                for p in ctx.licensing.grants(g) {
                    let held = user.has_access_to(*p) || user.groups().any(|k| ctx.licensing.grants(k).contains(p));
                    if !held && !gaining.contains(p) {
                        gaining.push(*p);
                        seats.insert(*p, -1);
                    }
                }
                acts.push((
                    g,
                    PlannedAction {
                        account_id: user.account_id.clone(),
                        email: user.email.clone(),
                        directory_id: directory_id(ctx, group.directory),
                        kind: ActionKind::AddGroup { group_id: group.id.clone() },
                        policy: name.clone(),
                        rule: rule.clone(),
                        reason,
                        seats,
                        destructive: false,
                        inactive_days: None,
                        groups_lost: vec![],
                        basis: basis(user, user.membership(group.directory).map_or(user.status(), |m| m.status), None),
                    },
                ));
            }
            if acts.is_empty() {
                continue;
            }
            if cap.is_some_and(|c| users_added >= c) {
                let why = format!("onboarding {} seat cap {} reached for this run", ob.name, cap.unwrap_or(0));
                pp.deferred.extend(acts.into_iter().map(|(_, a)| DeferredAction { action: a, why: why.clone() }));
                continue;
            }
            let mut added = false;
            for (g, a) in acts {
                // An add that takes a seat of a product with no room left is held back: Atlassian
                // would refuse it (and the limit is known, declared or from its last refusal).
                let gained = || a.seats.iter().filter(|(_, n)| **n < 0).map(|(p, _)| *p);
                if let Some(full) = gained().find(|p| room.get(p) == Some(&0)) {
                    *held_back.entry(full).or_default() += 1;
                    pp.deferred.push(DeferredAction { action: a, why: held_why(ctx, full) });
                    continue;
                }
                for p in gained().collect::<Vec<_>>() {
                    if let Some(r) = room.get_mut(&p) {
                        *r -= 1;
                    }
                }
                onboarded.insert((ui, g));
                pp.actions.push(a);
                added = true;
            }
            users_added += u32::from(added);
        }
    }
    for (product, n) in held_back {
        pp.conditions.push(PlanCondition {
            reason: USER_LIMIT_REACHED.into(),
            message: format!(
                "onboarding held back {n} add(s) into {}: {}; they are planned again once seats are freed or \
                 spec.userLimits declares a higher limit",
                product.display_name(),
                ctx.user_limits.get(&product).map(|s| s.describe()).unwrap_or_default()
            ),
        });
    }
}

/// Restorations (reactivation) that would take a seat of a product with no room left are held
/// back like onboarding's adds: Atlassian would refuse them, run after run. The others spend the
/// room first (people coming back go before newcomers).
pub(super) fn hold_restorations_at_limits(ctx: &Ctx<'_>, pp: &mut PolicyPlan, room: &mut BTreeMap<Product, u32>) {
    if room.is_empty() {
        return;
    }
    let mut held_back: BTreeMap<Product, u32> = BTreeMap::new();
    let mut kept = Vec::with_capacity(pp.actions.len());
    for a in std::mem::take(&mut pp.actions) {
        if a.rule != "reactivation" {
            kept.push(a);
            continue;
        }
        let gained: Vec<Product> = a.seats.iter().filter(|(_, n)| **n < 0).map(|(p, _)| *p).collect();
        if let Some(full) = gained.iter().find(|p| room.get(p) == Some(&0)) {
            *held_back.entry(*full).or_default() += 1;
            pp.deferred.push(DeferredAction { why: held_why(ctx, *full), action: a });
            continue;
        }
        for p in &gained {
            if let Some(r) = room.get_mut(p) {
                *r -= 1;
            }
        }
        kept.push(a);
    }
    pp.actions = kept;
    for (product, n) in held_back {
        pp.conditions.push(PlanCondition {
            reason: USER_LIMIT_REACHED.into(),
            message: format!(
                "reactivation held back {n} restoration(s) into {}: {}; they are planned again once seats are \
                 freed or spec.userLimits declares a higher limit",
                product.display_name(),
                ctx.user_limits.get(&product).map(|s| s.describe()).unwrap_or_default()
            ),
        });
    }
}

/// The plan condition (and status condition type) for a product at its user limit.
pub const USER_LIMIT_REACHED: &str = "ProductUserLimitReached";

fn held_why(ctx: &Ctx<'_>, product: Product) -> String {
    let seats = ctx.user_limits.get(&product);
    format!(
        "{} is at its user limit ({}, counting this run's earlier adds): held back until seats are freed or a \
         higher limit is declared in spec.userLimits",
        product.display_name(),
        seats.map(|s| s.describe()).unwrap_or_default()
    )
}

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn onboarding_adds_missing_groups_within_the_seat_cap() {
        let mut has = user("has");
        has.groups.push(CONFLUENCE_USERS);
        let mut other_domain = user("other");
        other_domain.email = Some("other@elsewhere.test".into());
        let plan =
            Fx::new(vec![user("a"), user("b"), user("c"), has, other_domain], vec![onboarding_policy(Some(2))]).plan();
        assert_eq!(acts(&plan, "onboard"), vec![pair("a", "add-group:g-conf"), pair("b", "add-group:g-conf")]);
        let p = plan.policy("onboard").unwrap();
        assert_eq!(p.deferred.len(), 1);
        assert!(p.deferred[0].why.contains("seat cap 2"));
        assert_eq!(p.actions[0].seats, BTreeMap::from([(Product::Confluence, -1)]));
        assert_eq!(p.totals.onboardings, 2);
        // Confluence seats cost 5.00 through the mapping's override: onboarding costs 10/month.
        assert_eq!(p.totals.savings.projected_monthly, -10.0);
    }

    #[test]
    fn onboarding_never_re_adds_someone_seatwarden_took_out() {
        let mut fx = Fx::new(vec![user("taken"), user("fresh")], vec![onboarding_policy(None)]);
        fx.ledger.users.insert(
            "taken".into(),
            UserRecord { removed_groups: vec![removed("g-conf", "other", 10)], ..Default::default() },
        );
        let plan = fx.plan();
        assert_eq!(acts(&plan, "onboard"), vec![pair("fresh", "add-group:g-conf")]);
        assert!(plan.policy("onboard").unwrap().skipped[0].why.contains("not onboarded again until they return"));
    }

    fn four_newcomers_and_one_confluence_user() -> Fx {
        let mut has = user("has");
        has.groups.push(CONFLUENCE_USERS);
        Fx::new(vec![user("a"), user("b"), user("c"), user("d"), has], vec![onboarding_policy(None)])
    }

    #[test]
    fn onboarding_plans_only_the_adds_that_fit_the_declared_user_limit() {
        let mut fx = four_newcomers_and_one_confluence_user();
        fx.org.spec.user_limits = vec![UserLimit { product: Product::Confluence, limit: 3 }];
        let plan = fx.plan();
        // One seat in use, limit 3: two adds fit, in account order; the other two wait, with why.
        assert_eq!(acts(&plan, "onboard"), vec![pair("a", "add-group:g-conf"), pair("b", "add-group:g-conf")]);
        let p = plan.policy("onboard").unwrap();
        assert_eq!(p.deferred.len(), 2);
        assert!(p.deferred.iter().all(|d| d.why.starts_with("Confluence is at its user limit (Confluence: 1 of 3")));
        let c: Vec<&PlanCondition> = p.conditions.iter().filter(|c| c.reason == "ProductUserLimitReached").collect();
        assert_eq!(c.len(), 1, "{:?}", p.conditions);
        assert!(c[0].message.starts_with("onboarding held back 2 add(s) into Confluence"), "{}", c[0].message);
        assert_eq!(plan.user_limits.len(), 1);
        assert_eq!((plan.user_limits[0].licensed, plan.user_limits[0].limit()), (1, Some(3)));
        let json = crate::policy::to_json(&plan);
        assert_eq!(json["userLimits"][0]["product"], "confluence");
        assert_eq!(
            (json["userLimits"][0]["licensed"].as_u64(), json["userLimits"][0]["room"].as_u64()),
            (Some(1), Some(2))
        );
        assert!(crate::policy::to_text(&plan).contains("user limit: Confluence: 1 of 3 seats in use"));
        // No limit declared and none refused: every add is planned (Atlassian has the last word).
        fx.org.spec.user_limits.clear();
        assert_eq!(acts(&fx.plan(), "onboard").len(), 4);
        assert!(fx.plan().user_limits.is_empty());
    }

    #[test]
    fn after_atlassian_refused_onboarding_waits_for_freed_seats_or_a_higher_limit() {
        let mut fx = four_newcomers_and_one_confluence_user();
        let hit = |licensed| crate::ledger::UserLimitHit {
            licensed,
            declared_limit: None,
            at: ago(1),
            message: "Confluence has reached its user limit".into(),
        };
        // Refused when 1 held it, 1 holds it now: nothing is tried again.
        fx.ledger.record_user_limit(Product::Confluence, hit(1));
        let plan = fx.plan();
        assert!(acts(&plan, "onboard").is_empty());
        assert_eq!(plan.policy("onboard").unwrap().deferred.len(), 4);
        assert!(plan.policy("onboard").unwrap().deferred[0].why.contains("Atlassian refused at 1 on 2026-11-24"));
        assert!(!plan.ledger_updates.iter().any(|u| matches!(u, LedgerUpdate::UserLimitLifted { .. })));
        // Refused when 3 held it, 1 holds it now: two seats were freed, two adds fit.
        fx.ledger.record_user_limit(Product::Confluence, hit(3));
        assert_eq!(acts(&fx.plan(), "onboard").len(), 2);
        // Refused at 1, and a limit of 10 declared since: the refusal is lifted, everyone fits.
        fx.ledger.record_user_limit(Product::Confluence, hit(1));
        fx.org.spec.user_limits = vec![UserLimit { product: Product::Confluence, limit: 10 }];
        let plan = fx.plan();
        assert_eq!(acts(&plan, "onboard").len(), 4);
        assert!(
            plan.ledger_updates
                .iter()
                .any(|u| matches!(u, LedgerUpdate::UserLimitLifted { product, .. } if *product == Product::Confluence))
        );
    }

    #[test]
    fn a_policy_that_does_not_apply_spends_no_seat_of_the_limit() {
        let mut fx = four_newcomers_and_one_confluence_user();
        fx.org.spec.user_limits = vec![UserLimit { product: Product::Confluence, limit: 3 }];
        let mut dry = onboarding_policy(None);
        dry.metadata.name = Some("a-dry".into());
        dry.spec.mode = PolicyMode::DryRun;
        fx.policies[0].spec.mode = PolicyMode::Enforce;
        fx.policies.push(dry);
        let plan = fx.plan();
        // Both show the two adds that fit; the DryRun one (first by name) leaves the room to the other.
        assert_eq!(acts(&plan, "a-dry").len(), 2);
        assert_eq!(acts(&plan, "onboard").len(), 2);
    }

    #[test]
    fn restorations_past_a_known_user_limit_wait_too_and_go_before_onboarding() {
        let suspended = |id: &str| {
            let mut u = user(id);
            u.status = UserStatus::Suspended;
            u.groups.push(OPT_IN);
            u
        };
        let mut p = reactivating(suspend_idle());
        p.spec.onboarding = onboarding_policy(None).spec.onboarding;
        p.spec.onboarding[0].groups = vec!["jira-extra".into()];
        let mut newcomer = user("new");
        newcomer.groups.clear();
        newcomer.product_access.clear();
        newcomer.added_to_org = Some(ago(3));
        let mut fx = Fx::new(vec![suspended("s1"), suspended("s2"), newcomer, user("bob")], vec![p]);
        for id in ["s1", "s2"] {
            fx.ledger.users.insert(
                id.into(),
                UserRecord {
                    suspension: Some(Suspension { since: ago(30), by_seatwarden: true, directory_ids: vec![] }),
                    taken_out: vec![TakenOut {
                        kind: TakenOutKind::Suspended,
                        policy: "idle".into(),
                        rule: "idle-90".into(),
                        at: ago(30),
                        directory_id: String::new(),
                    }],
                    ..Default::default()
                },
            );
        }
        // bob holds Jira; a limit of 2 leaves one seat: the first restoration takes it, the second
        // restoration and the newcomer's Jira group wait; bob's second Jira group takes no seat.
        fx.org.spec.user_limits = vec![UserLimit { product: Product::JiraSoftware, limit: 2 }];
        let plan = fx.plan();
        assert_eq!(acts(&plan, "idle"), vec![pair("s1", "restore"), pair("bob", "add-group:g-jira-extra")]);
        let p = plan.policy("idle").unwrap();
        let waiting: Vec<(&str, &str)> =
            p.deferred.iter().map(|d| (d.action.account_id.as_str(), d.action.kind.label())).collect();
        assert_eq!(waiting, [("s2", "restore"), ("new", "add-group")]);
        assert!(p.deferred.iter().all(|d| d.why.starts_with("Jira is at its user limit")));
        assert_eq!(p.conditions.iter().filter(|c| c.reason == "ProductUserLimitReached").count(), 2);
    }
}
