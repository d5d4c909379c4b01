//! Applying a planned diff through the Atlassian client, and its record in the audit trail.
//!
//! Changes run phase by phase ([`ChangeKind::phase`]: removals, activations, adds, invitations) so
//! seats are freed before they are taken; removals up to the budget's concurrency at once, the
//! changes that can take a seat one at a time, so a refusal at a user limit stops the apply with
//! nothing else in flight, and [`undo_applied`] can take back what it did.

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::atlassian::{AtlassianClient, Invitation, RefusalReason, WriteOutcome};
use crate::crd::{ActionOutcome, PolicyMode, RunAction, RunPhase};
use crate::record::RunRecord;
use crate::snapshot::DirectorySnapshot;
use crate::users::guard::Guard;
use crate::users::import::{Change, ChangeKind};

/// One change and what Atlassian made of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedChange {
    pub change: Change,
    pub outcome: WriteOutcome,
    /// The account id of an invitee, when Atlassian returned it.
    pub invited_account_id: Option<String>,
    /// Not written: why the fresh read right before the write kept it out (nothing was sent).
    pub skipped: Option<String>,
}

/// Applies `changes` (in plan order) and returns every outcome, in the same order. Each user is
/// read again right before their write and `guard` checked on that fresh read (invariant 9).
/// `on_done` is called after each write (progress).
///
/// Removals go up to the budget's concurrency at once; changes that can take a seat (activations,
/// adds, invitations) go one at a time, and the first that Atlassian refuses at a user limit stops
/// the apply: the changes after it are not attempted (see [`stopped_at_limit`]).
pub async fn apply_changes(
    client: &AtlassianClient,
    snapshot: &DirectorySnapshot,
    guard: &Guard<'_>,
    changes: &[Change],
    on_done: impl Fn(&AppliedChange),
) -> Vec<AppliedChange> {
    let concurrency = client.config().budget.concurrency.max(1);
    let mut results: Vec<Option<AppliedChange>> = vec![None; changes.len()];
    let mut start = 0;
    let mut stopped: Option<String> = None;
    while start < changes.len() {
        let phase = changes[start].kind.phase();
        let end = start + changes[start..].iter().take_while(|c| c.kind.phase() == phase).count();
        if phase == 0 {
            let mut stream = futures::stream::iter(start..end)
                .map(|i| async move { (i, apply_one(client, snapshot, guard, &changes[i]).await) })
                .buffer_unordered(concurrency);
            while let Some((i, applied)) = stream.next().await {
                on_done(&applied);
                results[i] = Some(applied);
            }
        } else {
            for i in start..end {
                if let Some(why) = &stopped {
                    results[i] = Some(AppliedChange {
                        change: changes[i].clone(),
                        outcome: WriteOutcome::AlreadySo,
                        invited_account_id: None,
                        skipped: Some(why.clone()),
                    });
                    continue;
                }
                let applied = apply_one(client, snapshot, guard, &changes[i]).await;
                if let WriteOutcome::Refused { reason: RefusalReason::LicenseLimit, message } = &applied.outcome {
                    stopped = Some(format!(
                        "not attempted: the apply stopped when Atlassian refused {} at a user limit ({message})",
                        describe_at(&changes[i])
                    ));
                }
                on_done(&applied);
                results[i] = Some(applied);
            }
        }
        start = end;
    }
    results.into_iter().map(|r| r.expect("every change applied")).collect()
}

/// `line 7 (x@acme.example)`, or the subject alone when the change has no line.
fn describe_at(c: &Change) -> String {
    if c.line > 0 { format!("line {} ({})", c.line, c.subject()) } else { c.subject() }
}

/// The change Atlassian refused at a user limit, which stopped the apply, if one did.
pub fn stopped_at_limit(applied: &[AppliedChange]) -> Option<(&AppliedChange, &str)> {
    applied.iter().find_map(|a| match &a.outcome {
        WriteOutcome::Refused { reason: RefusalReason::LicenseLimit, message } if a.skipped.is_none() => {
            Some((a, message.as_str()))
        }
        _ => None,
    })
}

/// One write that takes back a change this apply made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Undone {
    /// Index of the change in the apply's results.
    pub of: usize,
    /// The audit trail's action name of the undoing write (`remove-group`, `suspend`, ...).
    pub action: &'static str,
    pub outcome: WriteOutcome,
}

/// Takes back, newest first, every change of `applied` that Atlassian applied: an add is removed,
/// a removal re-added, a restored user suspended again, an enabled account deactivated again, an
/// invitee removed from the directory. Newest first, so the seats the adds took are free again
/// before the removals are re-added. Each undo is one write (no re-read: it returns the user to
/// what the fresh read before the change showed, seconds ago).
pub async fn undo_applied(client: &AtlassianClient, applied: &[AppliedChange]) -> Vec<Undone> {
    let mut out = Vec::new();
    for (i, a) in applied.iter().enumerate().rev() {
        if a.skipped.is_some() || a.outcome != WriteOutcome::Done {
            continue;
        }
        let c = &a.change;
        let dir = c.directory_id.as_str();
        let account = c.account_id.as_deref().unwrap_or_default();
        let (action, outcome) = match &c.kind {
            ChangeKind::AddToGroup { group_id, .. } => {
                ("remove-group", client.remove_from_group(dir, group_id, account, None).await)
            }
            ChangeKind::RemoveFromGroup { group_id, .. } => {
                ("add-group", client.add_to_group(dir, group_id, account, None).await)
            }
            ChangeKind::Restore => ("suspend", client.suspend(dir, account, None).await),
            ChangeKind::Enable => (
                "deactivate",
                client
                    .deactivate(account, Some("Deactivated again: an administrator's change was taken back."), None)
                    .await,
            ),
            ChangeKind::Invite { .. } => match a.invited_account_id.as_deref().or(c.account_id.as_deref()) {
                Some(id) => ("remove-from-directory", client.remove_from_directory(dir, id, None).await),
                None => (
                    "remove-from-directory",
                    WriteOutcome::Failed {
                        message: "Atlassian returned no account id for the invitee: remove them by hand".into(),
                        status: None,
                        maybe_applied: false,
                    },
                ),
            },
        };
        out.push(Undone { of: i, action, outcome });
    }
    out
}

/// The audit rows of the undoing writes, appended to the apply's record.
pub fn undo_actions(
    policy: &str,
    source: &str,
    applied: &[AppliedChange],
    undone: &[Undone],
    why: &str,
    at: Timestamp,
) -> Vec<RunAction> {
    undone
        .iter()
        .map(|u| {
            let a = &applied[u.of];
            let c = &a.change;
            let (outcome, error) = record_outcome(&u.outcome);
            let at_line = if c.line > 0 { format!("{source} line {}", c.line) } else { source.to_owned() };
            RunAction {
                directory: None,
                time: Time(at),
                account_id: c
                    .account_id
                    .clone()
                    .or_else(|| a.invited_account_id.clone())
                    .unwrap_or_else(|| NEW_ACCOUNT.to_owned()),
                email: c.email.clone(),
                action: u.action.to_owned(),
                group: c.kind.group_id().map(str::to_owned),
                group_name: c.kind.group_name().map(str::to_owned),
                rule: policy.to_owned(),
                reason: format!("undo of the {} of {at_line}: {why}", c.kind.action()),
                outcome,
                error,
            }
        })
        .collect()
}

/// The audit outcome and error of a write's result.
fn record_outcome(outcome: &WriteOutcome) -> (ActionOutcome, Option<String>) {
    match outcome {
        WriteOutcome::Done => (ActionOutcome::Applied, None),
        WriteOutcome::AlreadySo => (ActionOutcome::Skipped, Some("already so".to_owned())),
        WriteOutcome::Refused { reason, message } => {
            (ActionOutcome::Failed, Some(format!("{}: {message}", reason.label())))
        }
        WriteOutcome::Failed { message, maybe_applied: true, .. } => {
            (ActionOutcome::Unknown, Some(format!("sent, no answer ({message}): check the user in Atlassian")))
        }
        WriteOutcome::Failed { message, .. } => (ActionOutcome::Failed, Some(message.clone())),
    }
}

async fn apply_one(
    client: &AtlassianClient,
    snapshot: &DirectorySnapshot,
    guard: &Guard<'_>,
    change: &Change,
) -> AppliedChange {
    let dir = change.directory_id.as_str();
    let account = change.account_id.as_deref().unwrap_or_default();
    let mut invited_account_id = None;
    let done = |outcome, skipped| AppliedChange { change: change.clone(), outcome, invited_account_id: None, skipped };
    // The fresh read right before the write: the CSV (and the dry run) may be stale.
    let reading = if matches!(change.kind, ChangeKind::Invite { .. }) {
        None
    } else {
        match client.read_user(dir, account).await {
            Ok(r) => Some(r),
            Err(e) => {
                return done(
                    WriteOutcome::Failed {
                        message: format!("re-read before the write failed: {e}"),
                        status: None,
                        maybe_applied: false,
                    },
                    None,
                );
            }
        }
    };
    if let Some(reading) = &reading {
        let fresh = reading.as_ref().map(|r| {
            let mut u = r.user.clone();
            u.directory = snapshot.directories.iter().position(|d| d.id == dir).unwrap_or(0) as u16;
            u.groups = r.groups_in(snapshot);
            u
        });
        if let Some(why) = guard.refusal(snapshot, change, fresh.as_ref()) {
            return done(WriteOutcome::AlreadySo, Some(format!("not changed: {why} (fresh read before the write)")));
        }
    }
    let prior = reading.as_ref();
    let outcome = match &change.kind {
        ChangeKind::RemoveFromGroup { group_id, .. } => client.remove_from_group(dir, group_id, account, prior).await,
        ChangeKind::AddToGroup { group_id, .. } => client.add_to_group(dir, group_id, account, prior).await,
        ChangeKind::Restore => client.restore(dir, account, prior).await,
        ChangeKind::Enable => client.enable(account, prior).await,
        ChangeKind::Invite { group_ids, .. } => {
            let invitation = Invitation {
                email: change.email.clone().unwrap_or_default(),
                groups: group_ids.clone(),
                send_notification: true,
                ..Default::default()
            };
            let result = client.invite(&invitation).await;
            invited_account_id = result.account_id;
            result.outcome
        }
    };
    AppliedChange { change: change.clone(), outcome, invited_account_id, skipped: None }
}

/// The account id recorded for an invitation whose account id is not known (yet).
pub const NEW_ACCOUNT: &str = "(new account)";

/// A run id for a command-line run: the start time (as policies' runs have) and a random suffix,
/// since two commands may start within one second and must not overwrite each other's record.
pub fn cli_run_id(start: Timestamp) -> String {
    // run_id already carries a random suffix, so two commands in one second don't collide.
    crate::record::audit::run_id(start)
}

/// The audit record of a command-line run: every change `Planned` when `applied` is None (written
/// before anything is applied), with outcomes after. `policy` is `cli-import` or `cli-activate`;
/// `source` says where the changes came from (`users.csv`), for the reason column.
pub fn audit_record(
    run_id: &str,
    policy: &str,
    organization: &str,
    source: &str,
    start: Timestamp,
    changes: &[Change],
    applied: Option<(&[AppliedChange], Timestamp)>,
) -> RunRecord {
    let actions = changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let result = applied.and_then(|(a, _)| a.get(i));
            let (outcome, error) = match result.map(|a| (&a.outcome, &a.skipped)) {
                Some((_, Some(why))) => (ActionOutcome::Skipped, Some(why.clone())),
                _ => match result.map(|a| &a.outcome) {
                    None => (ActionOutcome::Planned, None),
                    Some(o) => record_outcome(o),
                },
            };
            // An invitee has no account id until Atlassian answers; the field can't be empty (an
            // empty string reaches the API server as null and the whole record is refused).
            let account_id = c
                .account_id
                .clone()
                .or_else(|| result.and_then(|a| a.invited_account_id.clone()))
                .unwrap_or_else(|| NEW_ACCOUNT.to_owned());
            let at = if c.line > 0 { format!("{source} line {}", c.line) } else { source.to_owned() };
            RunAction {
                directory: None,
                time: Time(applied.map_or(start, |(_, t)| t)),
                account_id,
                email: c.email.clone(),
                action: c.kind.action().to_owned(),
                group: c.kind.group_id().map(str::to_owned),
                group_name: c.kind.group_name().map(str::to_owned),
                rule: policy.to_owned(),
                reason: format!("requested by an administrator ({at})"),
                outcome,
                error,
            }
        })
        .collect();
    RunRecord {
        run_id: run_id.to_owned(),
        policy: policy.to_owned(),
        organization: organization.to_owned(),
        mode: PolicyMode::Enforce,
        start_time: start,
        end_time: applied.map(|(_, t)| t),
        phase: Some(if applied.is_some() { RunPhase::Completed } else { RunPhase::Running }),
        actor: None,
        actions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_run_ids_sort_by_time_and_do_not_collide_within_a_second() {
        let start: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let ids: std::collections::BTreeSet<String> = (0..20).map(|_| cli_run_id(start)).collect();
        assert!(ids.len() > 15, "{ids:?}");
        assert!(ids.iter().all(|id| id.starts_with("20261125t100000z-") && id.len() == 21));
    }

    #[test]
    fn the_record_says_what_was_planned_then_what_happened() {
        let change = |kind, account: Option<&str>| Change {
            line: 4,
            account_id: account.map(str::to_owned),
            email: Some("x@acme.example".into()),
            directory_id: "d".into(),
            kind,
        };
        let changes = vec![
            change(ChangeKind::AddToGroup { group_id: "g1".into(), group_name: "jira-users".into() }, Some("acc-1")),
            change(ChangeKind::Restore, Some("acc-2")),
            change(ChangeKind::Invite { group_ids: vec![], group_names: vec![] }, None),
        ];
        let start: Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let before = audit_record("20261125t100000z-ab12", "cli-import", "org", "users.csv", start, &changes, None);
        assert!(before.actions.iter().all(|a| a.outcome == ActionOutcome::Planned));
        assert_eq!(before.actions[2].account_id, NEW_ACCOUNT);
        assert_eq!(before.phase, Some(RunPhase::Running));
        assert_eq!(before.actions[0].group.as_deref(), Some("g1"));
        assert_eq!(before.actions[0].reason, "requested by an administrator (users.csv line 4)");
        let applied = vec![
            AppliedChange {
                change: changes[0].clone(),
                outcome: WriteOutcome::Done,
                invited_account_id: None,
                skipped: None,
            },
            AppliedChange {
                change: changes[1].clone(),
                outcome: WriteOutcome::Refused { reason: RefusalReason::LicenseLimit, message: "Jira is full".into() },
                invited_account_id: None,
                skipped: None,
            },
            AppliedChange {
                change: changes[2].clone(),
                outcome: WriteOutcome::Done,
                invited_account_id: Some("acc-new".into()),
                skipped: None,
            },
        ];
        let end: Timestamp = "2026-11-25T10:01:00Z".parse().unwrap();
        let after =
            audit_record(&before.run_id, "cli-import", "org", "users.csv", start, &changes, Some((&applied, end)));
        let outcomes: Vec<_> = after.actions.iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, [ActionOutcome::Applied, ActionOutcome::Failed, ActionOutcome::Applied]);
        assert_eq!(after.actions[1].error.as_deref(), Some("refused_license_limit: Jira is full"));
        assert_eq!(after.actions[2].account_id, "acc-new");
        assert_eq!((after.run_id.as_str(), after.end_time), ("20261125t100000z-ab12", Some(end)));
        assert_eq!(after.phase, Some(RunPhase::Completed));
    }
}
