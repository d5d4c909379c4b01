//! The operator's rules for the command line's writes (DESIGN invariants 1, 7, 9, 12): a change
//! asked for by `users import` or `users activate` is refused for a protected user, an admin, the
//! API-key owner, an app or unknown account, and anything synced from an identity provider — the
//! same check the executor makes, [`crate::policy::recheck`] — both in the dry run (listed with
//! why) and again on a fresh read right before the write.

use jiff::Timestamp;

use crate::{
    crd::{AtlassianOrganization, ProtectedUser},
    ledger::Ledger,
    policy::{self, ActionBasis, ActionKind, PlanInput, PlannedAction},
    snapshot::{DirectorySnapshot, DirectoryUser, ManagementSource},
    users::import::{Change, ChangeKind},
};

/// What the command line's changes are checked against.
pub struct Guard<'a> {
    pub organization: &'a AtlassianOrganization,
    pub protections: &'a [ProtectedUser],
    /// `cli-import` or `cli-activate`: a ProtectedUser limited to named policies covers it only
    /// when it names it.
    pub policy: &'a str,
    pub now: Timestamp,
}

/// A change the rules keep out, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub change: Change,
    pub why: String,
}

impl Guard<'_> {
    /// Why `change` may not be made to `user` as `snapshot` shows them (None: it may). `user` is
    /// the snapshot's entry, or a fresh read whose groups index the snapshot's group table.
    pub fn refusal(
        &self,
        snapshot: &DirectorySnapshot,
        change: &Change,
        user: Option<&DirectoryUser>,
    ) -> Option<String> {
        if let Some(gid) = change.kind.group_id()
            && snapshot.recorded_group(&change.directory_id, gid, None).is_some_and(|(_, g)| g.read_only())
        {
            return Some("the group is synced from an identity provider or not modifiable: change it there".into());
        }
        let kind = match &change.kind {
            ChangeKind::RemoveFromGroup { group_id, .. } => ActionKind::RemoveGroup { group_id: group_id.clone() },
            ChangeKind::AddToGroup { group_id, .. } => ActionKind::AddGroup { group_id: group_id.clone() },
            ChangeKind::Restore => ActionKind::Restore,
            ChangeKind::Enable => ActionKind::Enable,
            // A new person: nothing of theirs to protect yet.
            ChangeKind::Invite { .. } => return None,
        };
        let planned = listed_user(snapshot, change);
        let planned = planned.as_ref();
        let Some(user) = user else { return Some("the user is no longer in the organization".into()) };
        if user.management_source == ManagementSource::Synced && !matches!(kind, ActionKind::AddGroup { .. }) {
            return Some("the account is synced from an identity provider: change it there".into());
        }
        let basis_of = planned.unwrap_or(user);
        let action = PlannedAction {
            account_id: user.account_id.clone(),
            email: user.email.clone(),
            directory_id: change.directory_id.clone(),
            destructive: kind.is_destructive(),
            kind,
            policy: self.policy.to_owned(),
            rule: self.policy.to_owned(),
            reason: String::new(),
            seats: Default::default(),
            inactive_days: None,
            groups_lost: vec![],
            basis: ActionBasis {
                status: basis_of.status,
                management_source: basis_of.management_source,
                last_active_any: basis_of.last_active_any(),
                last_active_product: None,
                product: None,
            },
        };
        let ledger = Ledger::new(snapshot.org_id.clone());
        let input = PlanInput {
            snapshot,
            organization: self.organization,
            policies: &[],
            protections: self.protections,
            mappings: &[],
            ledger: &ledger,
            now: self.now,
            daily_actions_remaining: None,
        };
        match policy::recheck(&input, &action, user) {
            policy::Recheck::Proceed => None,
            // The diff already knows what it asks: a user in the group is not re-added.
            policy::Recheck::Drop(why) if why == "already in the group" => None,
            policy::Recheck::Drop(why) => Some(why),
        }
    }

    /// Splits `changes` into those the rules allow and those they refuse (with why).
    pub fn screen(&self, snapshot: &DirectorySnapshot, changes: &[Change]) -> (Vec<Change>, Vec<Refused>) {
        let mut allowed = vec![];
        let mut refused = vec![];
        for c in changes {
            let user = listed_user(snapshot, c);
            match self.refusal(snapshot, c, user.as_ref()) {
                None => allowed.push(c.clone()),
                Some(why) => refused.push(Refused { change: c.clone(), why }),
            }
        }
        (allowed, refused)
    }
}

/// The user a change is for, as the snapshot lists them in the change's directory.
fn listed_user(snapshot: &DirectorySnapshot, change: &Change) -> Option<DirectoryUser> {
    let account = snapshot.account(change.account_id.as_deref()?)?;
    let membership = match snapshot.directory_index(&change.directory_id) {
        Some(d) => account.membership(d)?,
        None => account.memberships.first()?,
    };
    Some(account.directory_user(membership))
}
