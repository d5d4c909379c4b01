//! The executor's last look before a write (invariant 9): a fresh read of the user is compared
//! with what the plan saw. Anything that makes the action no longer apply drops it.

use crate::snapshot::{DirectoryUser, ManagementSource, UserStatus};

use super::context::PlanInput;
use super::eligibility::{AccountGuards, Protections, is_human};
use super::types::{ActionKind, PlannedAction};

/// The verdict of [`recheck`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recheck {
    Proceed,
    /// Don't write; the reason goes into the audit trail as a Skipped outcome.
    Drop(String),
}

/// Checks a freshly re-read `fresh` user (its row in the action's directory) right before `action`
/// is written. `fresh.groups` must index `input.snapshot.groups` (map the re-read group ids with
/// `DirectorySnapshot::group_in`; drop unknown ones). Pure: the input is the one the plan was made from.
pub fn recheck(input: &PlanInput<'_>, action: &PlannedAction, fresh: &DirectoryUser) -> Recheck {
    let drop = |why: &str| Recheck::Drop(why.to_owned());
    if fresh.account_id != action.account_id {
        return drop("the re-read returned a different account");
    }
    let account = fresh.clone().into_account();
    if !is_human(&account) {
        return drop("the account is not a human account");
    }
    if fresh.org_admin || fresh.site_admin {
        return drop("the user is an admin now");
    }
    let spec_owner = input.organization.spec.credentials.api_key_owner_account_id.as_deref();
    if input.snapshot.api_key_owner.as_deref() == Some(fresh.account_id.as_str())
        || spec_owner == Some(fresh.account_id.as_str())
    {
        return drop("the user owns the API key");
    }
    // Protection, site-admin groups: evaluated on a one-user snapshot sharing the group table.
    let one = crate::snapshot::DirectorySnapshot {
        accounts: vec![account],
        groups: input.snapshot.groups.clone(),
        api_key_owner: input.snapshot.api_key_owner.clone(),
        ..Default::default()
    };
    if AccountGuards::compute(&one, None)[0].site_admin {
        return drop("the user is in a site-admin group now");
    }
    let policy = input.policies.iter().find(|p| p.metadata.name.as_deref() == Some(action.policy.as_str()));
    let namespace = policy.and_then(|p| p.metadata.namespace.as_deref());
    let protections = Protections::compile(&one, input.protections, input.now, true);
    if let Some(p) = protections.protecting(0, &action.policy, namespace) {
        return Recheck::Drop(format!("protected by ProtectedUser {} now", p.name));
    }
    if fresh.management_source == ManagementSource::Synced && action.basis.management_source != ManagementSource::Synced
    {
        return drop("the account is synced from the identity provider now");
    }
    // The group of the directory written to: ids are unique per directory only.
    let directory = input.snapshot.directory_index(&action.directory_id).unwrap_or(fresh.directory);
    let member =
        |group_id: &str| input.snapshot.group_in(directory, group_id).is_some_and(|(i, _)| fresh.groups.contains(&i));
    match &action.kind {
        ActionKind::AddGroup { group_id } => {
            if member(group_id) {
                return drop("already in the group");
            }
            return Recheck::Proceed;
        }
        ActionKind::Restore => {
            return if fresh.status == UserStatus::Suspended { Recheck::Proceed } else { drop("no longer suspended") };
        }
        ActionKind::Enable => {
            return if fresh.status == UserStatus::Deactivated {
                Recheck::Proceed
            } else {
                drop("no longer deactivated")
            };
        }
        ActionKind::Invite => return Recheck::Proceed,
        _ => {}
    }
    // Destructive: the user must be as the plan saw them, and no more active.
    if fresh.status != action.basis.status {
        return Recheck::Drop(format!(
            "status changed from {} to {}",
            action.basis.status.label(),
            fresh.status.label()
        ));
    }
    if let ActionKind::RemoveGroup { group_id } = &action.kind
        && !member(group_id)
    {
        return drop("no longer in the group");
    }
    let newer = |fresh_t: Option<jiff::Timestamp>, planned: Option<jiff::Timestamp>| match (fresh_t, planned) {
        (Some(f), Some(p)) => f > p,
        (Some(_), None) => true,
        _ => false,
    };
    if let Some(product) = action.basis.product {
        if newer(fresh.last_active_on(product), action.basis.last_active_product) {
            return Recheck::Drop(format!("active on {product} since the plan"));
        }
    } else if newer(fresh.last_active_any(), action.basis.last_active_any) {
        return drop("active since the plan");
    }
    Recheck::Proceed
}

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn recheck_drops_an_action_when_the_user_changed() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle(), jira_idle()]);
        fx.policies.remove(1);
        let plan = fx.plan();
        let action = &plan.policy("idle").unwrap().actions[0];
        let input = fx.input();
        let same = row(&fx.snapshot, "alice");
        assert_eq!(recheck(&input, action, &same), Recheck::Proceed);

        let mut active = same.clone();
        active.product_access[0].last_active = Some(now());
        assert_eq!(recheck(&input, action, &active), Recheck::Drop("active since the plan".into()));

        let mut admin = same.clone();
        admin.org_admin = true;
        assert!(matches!(recheck(&input, action, &admin), Recheck::Drop(_)));

        let mut suspended = same.clone();
        suspended.status = UserStatus::Suspended;
        assert_eq!(
            recheck(&input, action, &suspended),
            Recheck::Drop("status changed from active to suspended".into())
        );

        let mut vip = same.clone();
        vip.groups.push(VIPS);
        let mut fx2 = Fx::new(vec![], vec![]);
        std::mem::swap(&mut fx2.snapshot, &mut fx.snapshot);
        fx2.policies = fx.policies.clone();
        fx2.protections = vec![protection("vips", |s| s.groups = vec!["vips".into()])];
        assert_eq!(recheck(&fx2.input(), action, &vip), Recheck::Drop("protected by ProtectedUser vips now".into()));

        let mut synced = same;
        synced.management_source = ManagementSource::Synced;
        assert!(matches!(recheck(&fx2.input(), action, &synced), Recheck::Drop(_)));
    }

    #[test]
    fn recheck_of_a_group_removal_looks_at_that_product_and_membership() {
        let fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![jira_idle()]);
        let plan = fx.plan();
        let action = &plan.policy("jira").unwrap().actions[0];
        let mut alice = row(&fx.snapshot, "alice");
        // Activity on another product doesn't save the Jira seat.
        alice.product_access.push(ProductActivity { product: Product::Confluence.into(), last_active: Some(now()) });
        assert_eq!(recheck(&fx.input(), action, &alice), Recheck::Proceed);
        alice.product_access[0].last_active = Some(now());
        assert_eq!(recheck(&fx.input(), action, &alice), Recheck::Drop("active on Jira since the plan".into()));
        let mut left = row(&fx.snapshot, "alice");
        left.groups.clear();
        assert_eq!(recheck(&fx.input(), action, &left), Recheck::Drop("no longer in the group".into()));
    }
}
