//! Reactivation: a user whose access this policy took comes back (activity again, an opt-in group,
//! named by an admin, back in the directory): restore exactly what was taken, in the directory it
//! was taken from. Re-invitation of someone removed from the directory, when an admin names them.

use std::collections::BTreeMap;

use crate::crd::Reactivation;
use crate::ledger::{TakenOutKind, UserRecord};
use crate::product::Product;
use crate::snapshot::{Account, ManagementSource, Membership, UserStatus};

use super::context::{Ctx, Draft, basis, directory_id, home_directory};
use super::eligibility::{ResolvedGroups, glob_matches};
use super::render::date;
use super::types::*;

/// What restoring this user to the state before this policy's actions takes, if a return route
/// (activity, opt-in group, admin, re-invitation) applies.
pub(super) fn plan_reactivation(
    ctx: &Ctx<'_>,
    policy: &str,
    r: &Reactivation,
    opt_in: &ResolvedGroups,
    user: &Account,
    rec: &UserRecord,
) -> Option<(Vec<PlannedAction>, Vec<IdpAction>)> {
    let groups: Vec<_> = rec.removed_groups.iter().filter(|g| g.policy == policy).collect();
    let taken: Vec<_> = rec.taken_out.iter().filter(|t| t.policy == policy).collect();
    if groups.is_empty() && taken.is_empty() {
        return None;
    }
    // Exactly the directories seatwarden suspended the account in (a suspension is per directory;
    // records kept before directories were name none: every suspended directory then).
    let suspended_by_us: Vec<&str> =
        taken.iter().filter(|t| t.kind == TakenOutKind::Suspended).map(|t| t.directory_id.as_str()).collect();
    let suspended_in: Vec<&Membership> = user
        .memberships
        .iter()
        .filter(|m| m.status == UserStatus::Suspended)
        .filter(|m| suspended_by_us.iter().any(|d| d.is_empty() || *d == ctx.snapshot.directory_id(m.directory)))
        .collect();
    let suspended = !suspended_in.is_empty();
    let deactivated =
        user.status() == UserStatus::Deactivated && taken.iter().any(|t| t.kind == TakenOutKind::Deactivated);
    let reinvited = taken.iter().find(|t| t.kind == TakenOutKind::RemovedFromDirectory);
    let took_at = groups.iter().map(|g| g.at).chain(taken.iter().map(|t| t.at)).min()?;
    let named = r.account_ids.iter().any(|a| a == &user.account_id);
    let joined = opt_in.any_member(user);
    let last = user.last_active_any();
    let why = if named {
        "named for restoration by an admin".to_owned()
    } else if let Some(g) = joined {
        format!("joined opt-in group {}", ctx.snapshot.groups[g as usize].name)
    } else if let Some(t) = reinvited {
        format!("back in the directory after seatwarden removed the account on {}", date(t.at.as_second()))
    } else if let Some(began) = rec.restored_at.filter(|at| *at >= took_at) {
        // A restoration, once begun, is finished whatever the route was (the admin may have
        // dropped the name after the first step): a deactivated and suspended returner is
        // re-enabled, then its suspension lifted, then its groups given back.
        format!("seatwarden began restoring the account on {}: finishing the restoration", date(began.as_second()))
    } else if r.on_activity && !suspended && !deactivated && last.is_some_and(|l| l > took_at) {
        format!(
            "active again on {} after seatwarden took access on {}",
            date(last.map(|l| l.as_second()).unwrap_or_default()),
            date(took_at.as_second())
        )
    } else {
        return None;
    };
    if (suspended || deactivated) && !r.restore_suspended {
        return None;
    }
    let mut actions = Vec::new();
    let mut idp = Vec::new();
    let make = |kind: ActionKind, directory: u16, status: UserStatus, seats: BTreeMap<Product, i32>, reason: String| {
        PlannedAction {
            account_id: user.account_id.clone(),
            email: user.email.clone(),
            directory_id: directory_id(ctx, directory),
            kind,
            policy: policy.to_owned(),
            rule: "reactivation".into(),
            reason,
            seats,
            destructive: false,
            inactive_days: None,
            groups_lost: vec![],
            basis: basis(user, status, None),
        }
    };
    if deactivated {
        actions.push(make(
            ActionKind::Enable,
            home_directory(user),
            user.status(),
            BTreeMap::new(),
            format!("{why}: re-enable the account seatwarden deactivated"),
        ));
    }
    // Seats come back once per product, whatever the number of directories lifted.
    let mut back: Vec<Product> = Vec::new();
    for m in &suspended_in {
        let mut seats = BTreeMap::new();
        for p in m.product_access.iter().filter_map(|p| p.product.known()) {
            let live_elsewhere =
                user.memberships.iter().any(|k| k.is_live() && k.product_access.iter().any(|x| x.product == p));
            if !back.contains(&p) && !live_elsewhere {
                back.push(p);
                seats.insert(p, -1);
            }
        }
        actions.push(make(
            ActionKind::Restore,
            m.directory,
            m.status,
            seats,
            format!("{why}: lift the suspension seatwarden made"),
        ));
    }
    let mut gaining: Vec<Product> = Vec::new();
    for g in groups {
        // The group of the directory it was removed from (not read this run: nothing to restore now).
        let Some((gi, group)) = ctx.snapshot.recorded_group(&g.directory_id, &g.group_id, Some(user)) else { continue };
        if user.in_group(gi) {
            continue;
        }
        let Some(m) = user.membership(group.directory) else { continue };
        let reason = format!("{why}: restore group {} removed on {}", group.name, date(g.at.as_second()));
        if group.read_only() {
            idp.push(IdpAction {
                account_id: user.account_id.clone(),
                email: user.email.clone(),
                kind: ActionKind::AddGroup { group_id: group.id.clone() },
                rule: "reactivation".into(),
                group_name: Some(group.name.clone()),
                reason: format!("{reason}; the group is synced from the identity provider: add the user there"),
            });
            continue;
        }
        let mut seats = BTreeMap::new();
        for p in ctx.licensing.grants(gi) {
            if !user.has_access_to(*p) && !gaining.contains(p) && !suspended && !deactivated {
                gaining.push(*p);
                seats.insert(*p, -1);
            }
        }
        actions.push(make(
            ActionKind::AddGroup { group_id: group.id.clone() },
            group.directory,
            m.status,
            seats,
            reason,
        ));
    }
    if actions.is_empty() && idp.is_empty() {
        return None;
    }
    Some((actions, idp))
}

/// Re-invitation of people this policy removed from the directory, named by an admin: they are not
/// in the snapshot, so what is known comes from the ledger.
pub(super) fn plan_reinvitations(
    ctx: &Ctx<'_>,
    name: &str,
    namespace: Option<&str>,
    r: &Reactivation,
    d: &mut Draft<'_>,
) {
    for id in &r.account_ids {
        let Some(rec) = ctx.ledger.users.get(id) else { continue };
        let removed = rec.taken_out.iter().find(|t| t.kind == TakenOutKind::RemovedFromDirectory && t.policy == name);
        if removed.is_none() || ctx.snapshot.account(id).is_some() {
            continue;
        }
        // Not in the snapshot, so protections are matched on what the ledger knows.
        let protected = ctx.protections.active.iter().filter(|p| p.applies_to(name, namespace)).find(|p| {
            p.account_ids.iter().any(|a| a == id)
                || rec.email.as_deref().is_some_and(|e| {
                    p.emails.iter().any(|x| x.eq_ignore_ascii_case(e))
                        || p.email_patterns.iter().any(|pat| glob_matches(pat, e))
                })
        });
        if let Some(p) = protected {
            d.conditions.push(PlanCondition {
                reason: "Protected".into(),
                message: format!("account {id} is named for re-invitation but protected by ProtectedUser {}", p.name),
            });
            continue;
        }
        match &rec.email {
            Some(email) => d.restorations.push(PlannedAction {
                account_id: id.clone(),
                email: Some(email.clone()),
                directory_id: ctx.snapshot.directories.first().map(|x| x.id.clone()).unwrap_or_default(),
                kind: ActionKind::Invite,
                policy: name.to_owned(),
                rule: "reactivation".into(),
                reason: format!(
                    "named for restoration by an admin; seatwarden removed the account from the directory on {}",
                    date(removed.map(|t| t.at.as_second()).unwrap_or_default())
                ),
                seats: BTreeMap::new(),
                destructive: false,
                inactive_days: None,
                groups_lost: vec![],
                basis: ActionBasis {
                    status: UserStatus::InvitedNeverActive,
                    management_source: ManagementSource::Unknown,
                    last_active_any: None,
                    last_active_product: None,
                    product: None,
                },
            }),
            None => d.conditions.push(PlanCondition {
                reason: "CannotReinvite".into(),
                message: format!("account {id} is named for restoration but no email is on record to re-invite it"),
            }),
        }
    }
}

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn a_returning_user_gets_back_exactly_the_groups_seatwarden_removed() {
        let mut back = user("back"); // active 5 days ago
        back.groups = vec![]; // out of jira-users and jira-extra
        let mut still_idle = idle("still-idle", 100);
        still_idle.groups = vec![];
        let mut fx = Fx::new(vec![back, still_idle, user("bob")], vec![reactivating(jira_idle())]);
        fx.ledger.users.insert(
            "back".into(),
            UserRecord {
                removed_groups: vec![removed("g-jira", "jira", 20), removed("g-jira-extra", "jira", 20)],
                ..Default::default()
            },
        );
        fx.ledger.users.insert(
            "still-idle".into(),
            UserRecord { removed_groups: vec![removed("g-jira", "jira", 20)], ..Default::default() },
        );
        let plan = fx.plan();
        assert_eq!(acts(&plan, "jira"), vec![pair("back", "add-group:g-jira"), pair("back", "add-group:g-jira-extra")]);
        let a = &plan.policy("jira").unwrap().actions[0];
        assert!(!a.destructive);
        assert_eq!(a.rule, "reactivation");
        assert!(
            a.reason.starts_with("active again on 2026-11-20 after seatwarden took access on 2026-11-05"),
            "{}",
            a.reason
        );
        // Back in jira-users takes a Jira seat again (once).
        assert_eq!(plan.totals.seats_added, BTreeMap::new()); // she still had Jira access listed: no new seat
    }

    #[test]
    fn a_suspended_user_is_restored_through_the_opt_in_group_or_an_admin_only() {
        let mut via_group = user("via-group");
        via_group.status = UserStatus::Suspended;
        via_group.groups.push(OPT_IN);
        let mut named = user("named");
        named.status = UserStatus::Suspended;
        let mut neither = user("neither");
        neither.status = UserStatus::Suspended;
        let mut p = reactivating(suspend_idle());
        p.spec.reactivation.as_mut().unwrap().account_ids = vec!["named".into()];
        let mut fx = Fx::new(vec![via_group, named, neither, user("bob")], vec![p]);
        for id in ["via-group", "named", "neither"] {
            fx.ledger.users.insert(
                id.into(),
                UserRecord {
                    suspension: Some(Suspension { since: ago(30), by_seatwarden: true, directory_ids: vec![] }),
                    taken_out: vec![TakenOut {
                        kind: TakenOutKind::Suspended,
                        directory_id: String::new(),
                        policy: "idle".into(),
                        rule: "idle-90".into(),
                        at: ago(30),
                    }],
                    ..Default::default()
                },
            );
        }
        let plan = fx.plan();
        assert_eq!(acts(&plan, "idle"), vec![pair("named", "restore"), pair("via-group", "restore")]);
        let restore = &plan.policy("idle").unwrap().actions[1];
        assert!(restore.reason.starts_with("joined opt-in group request-access"));
        assert_eq!(restore.seats, BTreeMap::from([(Product::JiraSoftware, -1)]));
        assert_eq!(plan.totals.seats_added, BTreeMap::from([(Product::JiraSoftware, 2)]));
    }

    #[test]
    fn someone_elses_suspension_is_not_restored() {
        let mut s = user("s");
        s.status = UserStatus::Suspended;
        s.groups.push(OPT_IN);
        let mut fx = Fx::new(vec![s, user("bob")], vec![reactivating(suspend_idle())]);
        fx.ledger.users.insert(
            "s".into(),
            UserRecord {
                suspension: Some(Suspension { since: ago(30), by_seatwarden: false, directory_ids: vec![] }),
                ..Default::default()
            },
        );
        assert!(fx.plan().policy("idle").unwrap().actions.is_empty());
    }

    #[test]
    fn opted_in_users_are_not_taken_out() {
        let mut asking = idle("asking", 200);
        asking.groups.push(OPT_IN);
        let plan = Fx::new(vec![asking, user("bob")], vec![reactivating(suspend_idle())]).plan();
        assert!(plan.policy("idle").unwrap().actions.is_empty());
        assert_eq!(skipped_kinds(&plan, "idle"), vec![("asking".into(), SkipKind::OptedIn)]);
    }

    #[test]
    fn a_user_removed_from_the_directory_is_reinvited_when_an_admin_names_them() {
        let mut p = reactivating(policy("never", vec![never_rule("never-60", 60, RuleAction::RemoveFromDirectory)]));
        p.spec.reactivation.as_mut().unwrap().account_ids = vec!["gone".into()];
        let mut fx = Fx::new(vec![user("bob")], vec![p]);
        fx.ledger.users.insert(
            "gone".into(),
            UserRecord {
                email: Some("gone@acme.test".into()),
                taken_out: vec![TakenOut {
                    kind: TakenOutKind::RemovedFromDirectory,
                    directory_id: String::new(),
                    policy: "never".into(),
                    rule: "never-60".into(),
                    at: ago(3),
                }],
                removed_groups: vec![removed("g-jira", "never", 3)],
                ..Default::default()
            },
        );
        let plan = fx.plan();
        assert_eq!(acts(&plan, "never"), vec![pair("gone", "invite")]);
        assert_eq!(plan.policy("never").unwrap().actions[0].email.as_deref(), Some("gone@acme.test"));
        // ... and is not forgotten while away.
        assert!(!plan.ledger_updates.iter().any(|u| matches!(u, LedgerUpdate::Forget { .. })));
        // A protection still applies to someone who isn't in the directory.
        fx.protections = vec![protection("gone-is-protected", |s| s.email_patterns = vec!["gone@*".into()])];
        let plan = fx.plan();
        assert!(acts(&plan, "never").is_empty());
        assert!(plan.policy("never").unwrap().conditions.iter().any(|c| c.reason == "Protected"));
    }

    #[test]
    fn a_suspension_made_in_one_directory_is_lifted_in_that_directory_only() {
        // Seatwarden suspended Ann in directory 1; an admin suspended her in directory 2 too.
        let mut in1 = user("ann");
        in1.status = UserStatus::Suspended;
        let mut in2 = in_dir2(user("ann"));
        in2.status = UserStatus::Suspended;
        let mut p = reactivating(suspend_idle());
        p.spec.reactivation.as_mut().unwrap().account_ids = vec!["ann".into()];
        let mut fx = Fx::new(vec![], vec![p]);
        fx.snapshot = two_directories(vec![in1, in2, user("bob")]);
        fx.ledger.users.insert(
            "ann".into(),
            UserRecord {
                suspension: Some(Suspension {
                    since: ago(30),
                    by_seatwarden: true,
                    directory_ids: vec!["dir-1".into(), "dir-2".into()],
                }),
                taken_out: vec![TakenOut {
                    kind: TakenOutKind::Suspended,
                    directory_id: "dir-1".into(),
                    policy: "idle".into(),
                    rule: "idle-90".into(),
                    at: ago(30),
                }],
                ..Default::default()
            },
        );
        let plan = fx.plan();
        let restores: Vec<(&str, &str)> =
            plan.policy("idle").unwrap().actions.iter().map(|a| (a.kind.label(), a.directory_id.as_str())).collect();
        assert_eq!(restores, vec![("restore", "dir-1")]);
    }

    #[test]
    fn a_removed_group_is_given_back_in_the_directory_it_was_taken_from() {
        // jira-users exists in both directories with different ids; the ledger names directory 2's.
        let mut ann2 = in_dir2(idle("ann", 200));
        ann2.groups.retain(|g| *g != DIR2 + JIRA_USERS);
        ann2.product_access[0].last_active = Some(ago(1));
        let mut ann1 = idle("ann", 200);
        ann1.groups.retain(|g| *g != JIRA_USERS);
        let mut fx = Fx::new(vec![], vec![reactivating(jira_idle())]);
        fx.snapshot = two_directories(vec![ann1, ann2, user("bob")]);
        let mut taken = removed("g-jira-2", "jira", 20);
        taken.directory_id = "dir-2".into();
        fx.ledger.users.insert("ann".into(), UserRecord { removed_groups: vec![taken], ..Default::default() });
        let plan = fx.plan();
        let adds: Vec<(String, &str)> = plan
            .policy("jira")
            .unwrap()
            .actions
            .iter()
            .map(|a| (format!("{}:{}", a.kind.label(), a.kind.group_id().unwrap_or("")), a.directory_id.as_str()))
            .collect();
        assert_eq!(adds, vec![("add-group:g-jira-2".to_owned(), "dir-2")]);
    }
}
