//! `users activate`: bulk activation, planned purely. Restore a suspended user, enable a deactivated
//! managed one, invite back a removed one (by email: removed users are listed nowhere, so the email
//! comes from the file or from the audit trail).

use std::collections::HashMap;

use crate::snapshot::{DirectorySnapshot, DirectoryUser, UserStatus};
use crate::users::import::{Change, ChangeKind, ImportFile, RowError, SnapshotIndex};

/// Whom to activate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActivationTarget {
    /// Every suspended or deactivated member of this group (id or name).
    Group(String),
    /// Each named person: rows of a file, or one `--account`.
    People(Vec<Person>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// The line of the file (0 for `--account`).
    pub line: u64,
    pub account_id: Option<String>,
    pub email: Option<String>,
    /// Groups to invite a removed user back into (from the file's `groups` column).
    pub groups: Vec<String>,
}

impl ActivationTarget {
    /// From an import-format file (`email` or `accountId`, optionally `groups`).
    pub fn from_file(file: &ImportFile) -> Self {
        ActivationTarget::People(
            file.rows
                .iter()
                .map(|r| Person {
                    line: r.line,
                    account_id: r.account_id.clone(),
                    email: r.email.clone(),
                    groups: r.groups.clone().unwrap_or_default(),
                })
                .collect(),
        )
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivationPlan {
    pub changes: Vec<Change>,
    /// People left as they are, and why (already active, not managed).
    pub skipped: Vec<RowError>,
    /// People who can't be activated as asked (unknown, no email known for a removed account).
    pub errors: Vec<RowError>,
}

impl ActivationPlan {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.changes {
            out.push_str(&c.to_string());
            out.push('\n');
        }
        for s in &self.skipped {
            out.push_str(&format!("  skip  {s}\n"));
        }
        let count = |f: fn(&ChangeKind) -> bool| self.changes.iter().filter(|c| f(&c.kind)).count();
        out.push_str(&format!(
            "{} to restore, {} to enable, {} to invite back, {} left as they are\n",
            count(|k| matches!(k, ChangeKind::Restore)),
            count(|k| matches!(k, ChangeKind::Enable)),
            count(|k| matches!(k, ChangeKind::Invite { .. })),
            self.skipped.len()
        ));
        out
    }
}

/// Plans the activation of `target`. `known_emails` maps account ids to emails for people no longer
/// in the organization (from the audit trail), so `--account` can invite a removed user back.
pub fn plan_activation(
    snapshot: &DirectorySnapshot,
    target: &ActivationTarget,
    known_emails: &HashMap<String, String>,
) -> ActivationPlan {
    let index = SnapshotIndex::new(snapshot);
    let mut plan = ActivationPlan::default();
    match target {
        ActivationTarget::Group(name) => {
            let groups: Vec<u32> = snapshot
                .groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.id == *name || g.name.eq_ignore_ascii_case(name))
                .map(|(i, _)| i as u32)
                .collect();
            if groups.is_empty() {
                plan.errors.push(RowError {
                    line: 0,
                    column: Some("--group".into()),
                    message: format!("no group {name:?} in the organization"),
                    email: None,
                });
                return plan;
            }
            for u in snapshot.directory_users().iter().filter(|u| u.groups.iter().any(|g| groups.contains(g))) {
                // Members already active are the usual case for a group: not worth a line each.
                if matches!(u.status, UserStatus::Suspended | UserStatus::Deactivated) {
                    activate_user(&mut plan, &index, u, 0);
                }
            }
        }
        ActivationTarget::People(people) => {
            for p in people {
                let at = |column: Option<&str>, message: String| RowError {
                    line: p.line,
                    column: column.map(str::to_owned),
                    message,
                    email: p.email.clone(),
                };
                match index.find(p.account_id.as_deref(), p.email.as_deref()) {
                    Err(m) => plan.errors.push(at(None, m)),
                    Ok(Some(u)) => activate_user(&mut plan, &index, u, p.line),
                    Ok(None) => {
                        let email = p
                            .email
                            .clone()
                            .or_else(|| p.account_id.as_ref().and_then(|id| known_emails.get(id)).cloned());
                        let Some(email) = email else {
                            plan.errors.push(at(
                                None,
                                format!(
                                    "{} is not in the organization and no email is known for it (not in the audit trail): \
                                     name it by email to invite it back",
                                    p.account_id.as_deref().unwrap_or_default()
                                ),
                            ));
                            continue;
                        };
                        let mut ids = Vec::new();
                        let mut names = Vec::new();
                        let mut bad = false;
                        for g in &p.groups {
                            match index.group(0, g) {
                                Some((_, group)) if !group.idp_synced => {
                                    ids.push(group.id.clone());
                                    names.push(group.name.clone());
                                }
                                Some((_, group)) => {
                                    bad = true;
                                    plan.errors.push(at(
                                        Some("groups"),
                                        format!("group {:?} is synced from an identity provider", group.name),
                                    ));
                                }
                                None => {
                                    bad = true;
                                    plan.errors.push(at(Some("groups"), format!("unknown group {g:?}")));
                                }
                            }
                        }
                        if !bad {
                            plan.changes.push(Change {
                                line: p.line,
                                account_id: p.account_id.clone(),
                                email: Some(email),
                                directory_id: index.directory_id(0),
                                kind: ChangeKind::Invite { group_ids: ids, group_names: names },
                            });
                        }
                    }
                }
            }
        }
    }
    plan
}

fn activate_user(plan: &mut ActivationPlan, index: &SnapshotIndex<'_>, u: &DirectoryUser, line: u64) {
    let change = |kind| Change {
        line,
        account_id: Some(u.account_id.clone()),
        email: u.email.clone(),
        directory_id: index.directory_id(u.directory),
        kind,
    };
    let skip = |message: String| RowError { line, column: None, message, email: u.email.clone() };
    match u.status {
        UserStatus::Suspended => plan.changes.push(change(ChangeKind::Restore)),
        UserStatus::Deactivated if u.managed => plan.changes.push(change(ChangeKind::Enable)),
        UserStatus::Deactivated => plan.skipped.push(skip(format!(
            "{} is deactivated but not managed by this organization: its own organization must enable it",
            u.account_id
        ))),
        UserStatus::Active | UserStatus::InvitedNeverActive => {
            plan.skipped.push(skip(format!("{} is already active", u.account_id)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::filter::tests::org;
    use crate::users::import::parse_import_csv;

    fn kinds(p: &ActivationPlan) -> Vec<(Option<&str>, &ChangeKind)> {
        p.changes.iter().map(|c| (c.account_id.as_deref(), &c.kind)).collect()
    }

    #[test]
    fn a_group_restores_its_suspended_members_and_enables_its_deactivated_managed_ones() {
        let mut s = org();
        s.accounts[2].memberships[0].groups = vec![0]; // cat (deactivated, managed) joins jira-users
        let p = plan_activation(&s, &ActivationTarget::Group("jira-users".into()), &HashMap::new());
        assert_eq!(kinds(&p), [(Some("acc-b"), &ChangeKind::Restore), (Some("acc-c"), &ChangeKind::Enable)]);
        assert!(p.skipped.is_empty() && p.errors.is_empty());
        let none = plan_activation(&s, &ActivationTarget::Group("nope".into()), &HashMap::new());
        assert_eq!(none.errors.len(), 1);
        assert!(none.changes.is_empty());
    }

    #[test]
    fn people_are_activated_skipped_or_invited_back() {
        let mut s = org();
        s.accounts[2].managed = false;
        let file = parse_import_csv(
            b"accountId,email,groups\nacc-b,,\nacc-c,,\nacc-a,,\n,gone@acme.example,jira-users\nacc-gone,,\nacc-old,,\n",
        )
        .unwrap();
        let known: HashMap<String, String> = [("acc-old".to_owned(), "old@acme.example".to_owned())].into();
        let p = plan_activation(&s, &ActivationTarget::from_file(&file), &known);
        assert_eq!(
            kinds(&p),
            [
                (Some("acc-b"), &ChangeKind::Restore),
                (
                    None,
                    &ChangeKind::Invite { group_ids: vec!["g-jira".into()], group_names: vec!["jira-users".into()] }
                ),
                (Some("acc-old"), &ChangeKind::Invite { group_ids: vec![], group_names: vec![] }),
            ]
        );
        assert_eq!(p.changes[2].email.as_deref(), Some("old@acme.example"));
        let skipped: Vec<(u64, bool)> = p.skipped.iter().map(|s| (s.line, s.message.contains("not managed"))).collect();
        assert_eq!(skipped, [(3, true), (4, false)]);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].line, 6);
        assert!(p.errors[0].message.contains("no email is known"), "{}", p.errors[0]);
    }
}
