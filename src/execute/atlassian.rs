//! The executor's writes through the real Atlassian client.

use std::{collections::HashMap, sync::Mutex};

use crate::{
    atlassian::{AtlassianClient, Invitation, UserReading, WriteOutcome as ClientOutcome},
    policy::{ActionKind, PlannedAction},
    snapshot::DirectorySnapshot,
};

use super::{BoxFut, DirectoryWriter, FreshRead, WriteOutcome};

/// Writes through `client`; re-reads map group ids onto `snapshot`'s group indices so the planner's
/// recheck compares like with like.
pub struct ClientWriter<'a> {
    pub client: &'a AtlassianClient,
    pub snapshot: &'a DirectorySnapshot,
    /// The re-read right before a write, handed to the write so it needs no second read (an
    /// already-converged user costs no write call at all).
    readings: Mutex<HashMap<String, Option<UserReading>>>,
}

impl<'a> ClientWriter<'a> {
    pub fn new(client: &'a AtlassianClient, snapshot: &'a DirectorySnapshot) -> Self {
        Self { client, snapshot, readings: Mutex::new(HashMap::new()) }
    }
}

fn convert(o: ClientOutcome) -> WriteOutcome {
    match o {
        ClientOutcome::Done => WriteOutcome::Done,
        ClientOutcome::AlreadySo => WriteOutcome::AlreadySo,
        ClientOutcome::Refused { reason, message } => {
            WriteOutcome::Refused { reason: reason.label().to_owned(), message }
        }
        ClientOutcome::Failed { message, maybe_applied: true, .. } => WriteOutcome::Unknown { message },
        ClientOutcome::Failed { message, .. } => WriteOutcome::Failed { message },
    }
}

impl DirectoryWriter for ClientWriter<'_> {
    fn group_name(&self, group_id: &str) -> Option<String> {
        self.snapshot.groups.iter().find(|g| g.id == group_id).map(|g| g.name.clone())
    }

    fn reread<'a>(
        &'a self,
        directory_id: &'a str,
        account_id: &'a str,
    ) -> BoxFut<'a, Result<Option<FreshRead>, String>> {
        Box::pin(async move {
            let reading = self.client.read_user(directory_id, account_id).await.map_err(|e| e.to_string())?;
            self.readings.lock().expect("readings lock").insert(account_id.to_owned(), reading.clone());
            Ok(reading.map(|r| {
                let mut user = r.user.clone();
                user.directory =
                    self.snapshot.directories.iter().position(|d| d.id == directory_id).unwrap_or(0) as u16;
                user.groups = r.groups_in(self.snapshot);
                FreshRead { user, activity_known: r.activity_known }
            }))
        })
    }

    fn account_in_directory<'a>(
        &'a self,
        directory_id: &'a str,
        account_id: &'a str,
    ) -> BoxFut<'a, Result<bool, String>> {
        Box::pin(
            async move { self.client.account_in_directory(directory_id, account_id).await.map_err(|e| e.to_string()) },
        )
    }

    fn write<'a>(&'a self, a: &'a PlannedAction) -> BoxFut<'a, WriteOutcome> {
        Box::pin(async move {
            let dir = a.directory_id.as_str();
            let id = a.account_id.as_str();
            let reading = self.readings.lock().expect("readings lock").remove(id);
            let prior = reading.as_ref();
            let outcome = match &a.kind {
                ActionKind::Suspend => self.client.suspend(dir, id, prior).await,
                ActionKind::Restore => self.client.restore(dir, id, prior).await,
                ActionKind::RemoveFromDirectory => self.client.remove_from_directory(dir, id, prior).await,
                ActionKind::Deactivate => {
                    self.client
                        .deactivate(id, Some("Deactivated for inactivity by your organization's access policy."), prior)
                        .await
                }
                ActionKind::Enable => self.client.enable(id, prior).await,
                ActionKind::RemoveGroup { group_id } => self.client.remove_from_group(dir, group_id, id, prior).await,
                ActionKind::AddGroup { group_id } => self.client.add_to_group(dir, group_id, id, prior).await,
                ActionKind::Invite => {
                    let Some(email) = a.email.clone() else {
                        return WriteOutcome::Failed { message: "no email on record to re-invite".into() };
                    };
                    let invitation = Invitation {
                        email,
                        groups: a.groups_lost.clone(),
                        send_notification: true,
                        ..Default::default()
                    };
                    self.client.invite(&invitation).await.outcome
                }
            };
            convert(outcome)
        })
    }
}
