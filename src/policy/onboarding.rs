//! Onboarding: accounts matching a selector are put into groups (every directory's group of the
//! name, in the directories the account is live in), within the seat cap, and never someone
//! seatwarden took out for inactivity until they return.

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
) {
    let spec = &policy.spec;
    if spec.onboarding.is_empty() {
        return;
    }
    let name = name_of(policy);
    let namespace = policy.metadata.namespace.as_deref();
    let scope = CompiledScope::new(ctx.snapshot, &spec.scope);
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
            users_added += 1;
            for (g, a) in acts {
                onboarded.insert((ui, g));
                pp.actions.push(a);
            }
        }
    }
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
}
