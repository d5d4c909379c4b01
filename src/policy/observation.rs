//! Ledger observation: what the snapshot shows that the ledger must remember or settle,
//! independent of any policy (first sight, suspensions seen and ended, in-flight writes settled,
//! removals given back).

use crate::action::ActionKind;
use crate::ledger::{Ledger, LedgerUpdate, TakenOutKind, UserRecord};
use crate::snapshot::{Account, DirectorySnapshot, Membership, UserStatus};

/// Whether the account is in the group `group_id` of the directory `directory_id` (a ledger
/// entry's group; an empty directory id, from records kept before it was, is inferred from the
/// snapshot). None: the directory was not read this run, so the snapshot shows nothing about it.
pub(super) fn is_member(
    snapshot: &DirectorySnapshot,
    user: &Account,
    directory_id: &str,
    group_id: &str,
) -> Option<bool> {
    if !directory_id.is_empty() && !snapshot.read_directory(directory_id) {
        return None;
    }
    Some(snapshot.recorded_group(directory_id, group_id, Some(user)).is_some_and(|(g, _)| user.in_group(g)))
}

/// The account's membership in the directory `directory_id`. `Err(())`: the directory was not
/// read this run. An empty id (records kept before directories were) means the account's first.
fn membership_in<'a>(
    snapshot: &DirectorySnapshot,
    user: &'a Account,
    directory_id: &str,
) -> Result<Option<&'a Membership>, ()> {
    if directory_id.is_empty() {
        return Ok(user.memberships.first());
    }
    let d = snapshot.directory_index(directory_id).ok_or(())?;
    Ok(user.membership(d))
}

/// Settles writes left in flight by a crashed run from what the snapshot shows (invariant 5), in
/// the directory each was sent to; a write to a directory not read this run stays open.
pub(super) fn settle_in_flight(ledger: &Ledger, snapshot: &DirectorySnapshot, incomplete: bool) -> Vec<LedgerUpdate> {
    let mut out = Vec::new();
    for (id, flight) in ledger.in_flight() {
        let user = snapshot.account(id);
        if user.is_none() && incomplete {
            continue; // absent from an incomplete listing proves nothing
        }
        let dir = flight.directory_id.as_str();
        if !dir.is_empty() && !snapshot.read_directory(dir) {
            continue; // that directory's facts are not in this snapshot
        }
        let suspended_here = |u: &Account| match membership_in(snapshot, u, dir) {
            Ok(Some(m)) if !dir.is_empty() => m.status == UserStatus::Suspended,
            _ => u.memberships.iter().any(|m| m.status == UserStatus::Suspended),
        };
        let took = match (&flight.kind, user) {
            (ActionKind::RemoveFromDirectory, None) => true,
            (ActionKind::RemoveFromDirectory, Some(u)) => {
                !dir.is_empty() && matches!(membership_in(snapshot, u, dir), Ok(None))
            }
            (_, None) => false,
            (ActionKind::RemoveGroup { group_id }, Some(u)) => is_member(snapshot, u, dir, group_id) == Some(false),
            (ActionKind::AddGroup { group_id }, Some(u)) => is_member(snapshot, u, dir, group_id) == Some(true),
            (ActionKind::Suspend, Some(u)) => suspended_here(u),
            (ActionKind::Deactivate, Some(u)) => u.status() == UserStatus::Deactivated,
            (ActionKind::Restore, Some(u)) => match membership_in(snapshot, u, dir) {
                Ok(Some(m)) if !dir.is_empty() => m.status != UserStatus::Suspended,
                _ => u.memberships.iter().all(|m| m.status != UserStatus::Suspended),
            },
            (ActionKind::Enable, Some(u)) => u.status() != UserStatus::Deactivated,
            (ActionKind::Invite, Some(_)) => true,
        };
        let (account_id, kind, directory_id) = (id.to_owned(), flight.kind.clone(), flight.directory_id.clone());
        out.push(if took {
            LedgerUpdate::InFlightApplied { account_id, kind, directory_id }
        } else {
            LedgerUpdate::InFlightNotApplied { account_id, kind, directory_id }
        });
    }
    out
}

/// The directories the ledger's suspension should name after this snapshot: the directories the
/// account is suspended in now, and those the record names that were not read this run (their
/// facts are kept). None: the record is right as it is.
fn suspension_directories(snapshot: &DirectorySnapshot, user: &Account, recorded: &[String]) -> Option<Vec<String>> {
    // Deactivation hides the suspension under it; a re-enabled returner still has it lifted.
    if user.status() == UserStatus::Deactivated {
        return None;
    }
    let mut now: Vec<String> = user
        .memberships
        .iter()
        .filter(|m| m.status == UserStatus::Suspended)
        .map(|m| snapshot.directory_id(m.directory).to_owned())
        .collect();
    now.extend(recorded.iter().filter(|d| !snapshot.read_directory(d)).cloned());
    now.sort();
    now.dedup();
    let mut was = recorded.to_vec();
    was.sort();
    // A record naming no directory (kept before directories were) takes the snapshot's.
    (recorded.is_empty() || now != was).then_some(now)
}

/// What the snapshot shows of one account that the ledger should remember (or settle),
/// independent of any policy; appended to `out`. (The planner asks it in its one pass over the
/// accounts.)
///
/// No record is forgotten because a snapshot lacks the account: a narrowed `spec.directories` or a
/// listing that quietly came back short must not wipe what seatwarden took and must give back.
/// Records end when Atlassian shows the account gone positively (the executor's confirmed removal,
/// or a lookup answering 404), never here.
pub(super) fn observe_account(
    snapshot: &DirectorySnapshot,
    user: &Account,
    rec: Option<&UserRecord>,
    out: &mut Vec<LedgerUpdate>,
) {
    let at = snapshot.taken_at;
    let id = || user.account_id.clone();
    if user.added_to_org.is_none() && rec.is_none_or(|r| r.first_seen.is_none()) {
        out.push(LedgerUpdate::FirstSeen { account_id: id(), at });
    }
    // A suspension is per directory: the record follows each directory's status, and ends
    // only when no directory (read or not) is left suspended.
    match rec.and_then(|r| r.suspension.as_ref()) {
        None if user.memberships.iter().any(|m| m.status == UserStatus::Suspended) => {
            let directory_ids = suspension_directories(snapshot, user, &[]).unwrap_or_default();
            out.push(LedgerUpdate::SuspensionSeen { account_id: id(), at, directory_ids });
        }
        None => {}
        Some(s) => match suspension_directories(snapshot, user, &s.directory_ids) {
            Some(dirs) if dirs.is_empty() => out.push(LedgerUpdate::SuspensionEnded { account_id: id() }),
            Some(directory_ids) => out.push(LedgerUpdate::SuspensionDirectories { account_id: id(), directory_ids }),
            None => {}
        },
    }
    let Some(rec) = rec else { return };
    // The restoration stops mattering once every product the user holds shows activity since.
    if let Some(r) = rec.restored_at
        && user.product_access().next().is_some()
        && user.product_access().all(|p| p.last_active.is_some_and(|l| l >= r))
    {
        out.push(LedgerUpdate::ReturnSuperseded { account_id: id() });
    }
    if rec.holds_removals() {
        // A directory not read this run shows nothing: what was taken there stays in force.
        let groups_back =
            rec.removed_groups.iter().all(|g| is_member(snapshot, user, &g.directory_id, &g.group_id) == Some(true));
        let nothing_in_force = rec.taken_out.iter().all(|t| match t.kind {
            TakenOutKind::Suspended => match membership_in(snapshot, user, &t.directory_id) {
                Err(()) => false,
                Ok(m) if !t.directory_id.is_empty() => m.is_none_or(|m| m.status != UserStatus::Suspended),
                Ok(_) => user.memberships.iter().all(|m| m.status != UserStatus::Suspended),
            },
            TakenOutKind::Deactivated => user.status() != UserStatus::Deactivated,
            TakenOutKind::RemovedFromDirectory => rec.removed_groups.is_empty(),
        });
        if groups_back && nothing_in_force {
            out.push(LedgerUpdate::RemovalsSettled { account_id: id() });
        }
    }
}

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn in_flight_writes_are_settled_from_the_snapshot() {
        let mut done = idle("done", 200);
        done.status = UserStatus::Suspended;
        let mut fx = Fx::new(vec![done, idle("pending", 200), user("bob")], vec![suspend_idle()]);
        let mut first =
            Fx::new(vec![idle("done", 200), idle("pending", 200), user("bob")], vec![suspend_idle()]).plan();
        for a in &first.policies[0].actions {
            fx.ledger.record_intended(a, "run-1", ago(1));
        }
        let plan = fx.plan();
        assert!(plan.ledger_updates.contains(&LedgerUpdate::InFlightApplied {
            account_id: "done".into(),
            kind: ActionKind::Suspend,
            directory_id: "dir-1".into()
        }));
        assert!(plan.ledger_updates.contains(&LedgerUpdate::InFlightNotApplied {
            account_id: "pending".into(),
            kind: ActionKind::Suspend,
            directory_id: "dir-1".into()
        }));
        // The pending one is planned again; the done one is not.
        assert_eq!(acts(&plan, "idle"), vec![pair("pending", "suspend")]);
        let mut ledger = fx.ledger.clone();
        ledger.apply_updates(&plan.ledger_updates);
        assert!(ledger.record("done").unwrap().suspension.as_ref().unwrap().by_seatwarden);
        assert!(ledger.record("pending").is_none_or(|r| r.in_flight.is_empty()));
        first.policies.clear();
    }

    #[test]
    fn applied_outcomes_feed_reactivation_and_escalation() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![reactivating(jira_idle())]);
        let plan = fx.plan();
        let action = plan.policy("jira").unwrap().actions[0].clone();
        fx.ledger.record_intended(&action, "run-1", now());
        fx.ledger.record_outcome(&action, Outcome::Applied, now());
        let rec = fx.ledger.record("alice").unwrap();
        assert_eq!(rec.removed_groups.len(), 1);
        assert_eq!(rec.removed_groups[0].group_id, "g-jira");
        assert_eq!(rec.removed_groups[0].product, Some(Product::JiraSoftware));
        assert!(rec.in_flight.is_empty());
    }

    #[test]
    fn ledger_updates_describe_what_the_org_shows() {
        let mut back = user("back");
        back.status = UserStatus::Active;
        let mut fx = Fx::new(vec![back, user("bob")], vec![suspend_idle()]);
        fx.ledger.users.insert(
            "back".into(),
            UserRecord {
                suspension: Some(Suspension { since: ago(9), by_seatwarden: false, directory_ids: vec![] }),
                ..Default::default()
            },
        );
        let plan = fx.plan();
        assert!(plan.ledger_updates.contains(&LedgerUpdate::SuspensionEnded { account_id: "back".into() }));
        let mut l: Ledger = fx.ledger.clone();
        l.apply_updates(&plan.ledger_updates);
        assert!(l.record("back").is_none(), "nothing left to remember");
    }

    fn suspended_by_us(directories: &[&str]) -> UserRecord {
        UserRecord {
            suspension: Some(Suspension {
                since: ago(30),
                by_seatwarden: true,
                directory_ids: directories.iter().map(|d| (*d).to_owned()).collect(),
            }),
            taken_out: directories
                .iter()
                .map(|d| TakenOut {
                    kind: TakenOutKind::Suspended,
                    policy: "idle".into(),
                    rule: "idle-90".into(),
                    at: ago(30),
                    directory_id: (*d).to_owned(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_suspension_lifted_in_one_directory_ends_there_only() {
        // Seatwarden suspended Ann in both directories; an admin restored her in directory 1.
        let mut in2 = in_dir2(idle("ann", 200));
        in2.status = UserStatus::Suspended;
        let mut fx = Fx::new(vec![], vec![suspend_idle()]);
        fx.snapshot = two_directories(vec![idle("ann", 200), in2, user("bob")]);
        fx.ledger.users.insert("ann".into(), suspended_by_us(&["dir-1", "dir-2"]));
        let plan = fx.plan();
        let update =
            LedgerUpdate::SuspensionDirectories { account_id: "ann".into(), directory_ids: vec!["dir-2".into()] };
        assert!(plan.ledger_updates.contains(&update), "{:?}", plan.ledger_updates);
        assert!(!plan.ledger_updates.contains(&LedgerUpdate::SuspensionEnded { account_id: "ann".into() }));
        let mut l = fx.ledger.clone();
        l.apply_updates(&plan.ledger_updates);
        let rec = l.record("ann").unwrap();
        assert_eq!(rec.suspension.as_ref().unwrap().since, ago(30), "escalation keeps its start");
        assert_eq!(rec.taken_out.iter().map(|t| t.directory_id.as_str()).collect::<Vec<_>>(), vec!["dir-2"]);
    }

    #[test]
    fn a_directory_not_read_keeps_its_suspension_and_its_writes() {
        // Ann's record names dir-9, which this snapshot did not read (spec.directories narrowed).
        let mut fx = Fx::new(vec![user("ann"), user("bob")], vec![suspend_idle()]);
        let mut rec = suspended_by_us(&["dir-9"]);
        let mut write = fx.plan().policies[0].actions.first().cloned();
        assert!(write.is_none(), "nothing planned for active users");
        rec.email = Some("ann@acme.test".into());
        fx.ledger.users.insert("ann".into(), rec);
        let plan = fx.plan();
        assert!(
            plan.ledger_updates.iter().all(|u| !matches!(
                u,
                LedgerUpdate::SuspensionEnded { .. }
                    | LedgerUpdate::SuspensionDirectories { .. }
                    | LedgerUpdate::RemovalsSettled { .. }
            )),
            "{:?}",
            plan.ledger_updates
        );
        // An open write to dir-9 is not settled from a snapshot that has no dir-9.
        let mut a =
            Fx::new(vec![idle("cy", 200), user("bob")], vec![suspend_idle()]).plan().policies[0].actions[0].clone();
        a.directory_id = "dir-9".into();
        fx.ledger.record_intended(&a, "run-1", ago(1));
        write = Some(a);
        let plan = fx.plan();
        assert!(
            !plan
                .ledger_updates
                .iter()
                .any(|u| matches!(u, LedgerUpdate::InFlightApplied { .. } | LedgerUpdate::InFlightNotApplied { .. })),
            "{:?} ({write:?})",
            plan.ledger_updates
        );
    }

    #[test]
    fn an_in_flight_suspension_is_settled_in_its_own_directory() {
        // Suspended in directory 2 only; the write went to directory 1: not applied there.
        let mut in2 = in_dir2(idle("ann", 200));
        in2.status = UserStatus::Suspended;
        let mut fx = Fx::new(vec![], vec![suspend_idle()]);
        fx.snapshot = two_directories(vec![idle("ann", 200), in2, user("bob")]);
        let mut a =
            Fx::new(vec![idle("ann", 200), user("bob")], vec![suspend_idle()]).plan().policies[0].actions[0].clone();
        assert_eq!(a.directory_id, "dir-1");
        fx.ledger.record_intended(&a, "run-1", ago(1));
        let plan = fx.plan();
        let not_applied = LedgerUpdate::InFlightNotApplied {
            account_id: "ann".into(),
            kind: ActionKind::Suspend,
            directory_id: "dir-1".into(),
        };
        assert!(plan.ledger_updates.contains(&not_applied), "{:?}", plan.ledger_updates);
        a.directory_id = "dir-2".into();
        fx.ledger = Ledger::new("org-1");
        fx.ledger.record_intended(&a, "run-1", ago(1));
        let plan = fx.plan();
        assert!(
            plan.ledger_updates
                .iter()
                .any(|u| matches!(u, LedgerUpdate::InFlightApplied { directory_id, .. } if directory_id == "dir-2"))
        );
    }
}
