//! Ledger observation: what the snapshot shows that the ledger must remember or settle,
//! independent of any policy (first sight, suspensions seen and ended, in-flight writes settled,
//! removals given back).

use crate::action::ActionKind;
use crate::ledger::{Ledger, LedgerUpdate, TakenOutKind, UserRecord};
use crate::snapshot::{Account, DirectorySnapshot, UserStatus};

/// Whether the account is in a group with this id (in any of its directories).
pub(super) fn is_member(snapshot: &DirectorySnapshot, user: &Account, group_id: &str) -> bool {
    user.groups().any(|g| snapshot.groups[g as usize].id == group_id)
}

/// Settles writes left in flight by a crashed run from what the snapshot shows (invariant 5).
pub(super) fn settle_in_flight(ledger: &Ledger, snapshot: &DirectorySnapshot, incomplete: bool) -> Vec<LedgerUpdate> {
    let mut out = Vec::new();
    for (id, flight) in ledger.in_flight() {
        let user = snapshot.account(id);
        if user.is_none() && incomplete {
            continue; // absent from an incomplete listing proves nothing
        }
        let took = match (&flight.kind, user) {
            (ActionKind::RemoveFromDirectory, u) => u.is_none(),
            (_, None) => false,
            (ActionKind::RemoveGroup { group_id }, Some(u)) => !is_member(snapshot, u, group_id),
            (ActionKind::AddGroup { group_id }, Some(u)) => is_member(snapshot, u, group_id),
            (ActionKind::Suspend, Some(u)) => u.memberships.iter().any(|m| m.status == UserStatus::Suspended),
            (ActionKind::Deactivate, Some(u)) => u.status() == UserStatus::Deactivated,
            (ActionKind::Restore, Some(u)) => u.memberships.iter().all(|m| m.status != UserStatus::Suspended),
            (ActionKind::Enable, Some(u)) => u.status() != UserStatus::Deactivated,
            (ActionKind::Invite, Some(_)) => true,
        };
        out.push(if took {
            LedgerUpdate::InFlightApplied { account_id: id.to_owned(), kind: flight.kind.clone() }
        } else {
            LedgerUpdate::InFlightNotApplied { account_id: id.to_owned(), kind: flight.kind.clone() }
        });
    }
    out
}

/// Observations the ledger should remember (or forget), independent of any policy.
pub(super) fn observe(
    snapshot: &DirectorySnapshot,
    ledger: &Ledger,
    recs: &[Option<&UserRecord>],
    incomplete: bool,
) -> Vec<LedgerUpdate> {
    let mut out = Vec::new();
    let at = snapshot.taken_at;
    for (i, user) in snapshot.accounts.iter().enumerate() {
        let rec = recs[i];
        let id = || user.account_id.clone();
        if user.added_to_org.is_none() && rec.is_none_or(|r| r.first_seen.is_none()) {
            out.push(LedgerUpdate::FirstSeen { account_id: id(), at });
        }
        match (user.status(), rec.and_then(|r| r.suspension.as_ref())) {
            (UserStatus::Suspended, None) => out.push(LedgerUpdate::SuspensionSeen { account_id: id(), at }),
            (UserStatus::Active | UserStatus::InvitedNeverActive, Some(_)) => {
                out.push(LedgerUpdate::SuspensionEnded { account_id: id() })
            }
            _ => {}
        }
        let Some(rec) = rec else { continue };
        // The restoration stops mattering once every product the user holds shows activity since.
        if let Some(r) = rec.restored_at
            && user.product_access().next().is_some()
            && user.product_access().all(|p| p.last_active.is_some_and(|l| l >= r))
        {
            out.push(LedgerUpdate::ReturnSuperseded { account_id: id() });
        }
        if rec.holds_removals() {
            let groups_back = rec.removed_groups.iter().all(|g| is_member(snapshot, user, &g.group_id));
            let nothing_in_force = rec.taken_out.iter().all(|t| match t.kind {
                TakenOutKind::Suspended => user.memberships.iter().all(|m| m.status != UserStatus::Suspended),
                TakenOutKind::Deactivated => user.status() != UserStatus::Deactivated,
                TakenOutKind::RemovedFromDirectory => rec.removed_groups.is_empty(),
            });
            if groups_back && nothing_in_force {
                out.push(LedgerUpdate::RemovalsSettled { account_id: id() });
            }
        }
    }
    if !incomplete {
        for (id, rec) in &ledger.users {
            let keep = rec.taken_out.iter().any(|t| t.kind == TakenOutKind::RemovedFromDirectory);
            if !keep && snapshot.account(id).is_none() {
                out.push(LedgerUpdate::Forget { account_id: id.clone() });
            }
        }
    }
    out
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
        assert!(
            plan.ledger_updates
                .contains(&LedgerUpdate::InFlightApplied { account_id: "done".into(), kind: ActionKind::Suspend })
        );
        assert!(
            plan.ledger_updates.contains(&LedgerUpdate::InFlightNotApplied {
                account_id: "pending".into(),
                kind: ActionKind::Suspend
            })
        );
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
            UserRecord { suspension: Some(Suspension { since: ago(9), by_seatwarden: false }), ..Default::default() },
        );
        let plan = fx.plan();
        assert!(plan.ledger_updates.contains(&LedgerUpdate::SuspensionEnded { account_id: "back".into() }));
        let mut l: Ledger = fx.ledger.clone();
        l.apply_updates(&plan.ledger_updates);
        assert!(l.record("back").is_none(), "nothing left to remember");
    }
}
