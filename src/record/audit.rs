//! The audit trail for people: every planned and applied action with time, account, rule, reason
//! and outcome. In the cluster it is `LifecycleRun` objects (one run split into pages so none nears
//! the 1 MiB object limit); without a cluster, one JSON file per run in a folder.
//!
//! Each run is written before anything is applied (all actions `Planned`) and again with outcomes,
//! so a crash in the middle loses no record (DESIGN invariant 5).

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Fence, RecordError};
use crate::crd::{ActionOutcome, LifecycleRun, LifecycleRunSpec, LifecycleRunStatus, PolicyMode, RunAction, RunPhase};

/// Actions per LifecycleRun object: ~1,000 actions of ~400 bytes stay far below 1 MiB.
pub const ACTIONS_PER_PAGE: usize = 1000;
const FIELD_MANAGER: &str = "seatwarden-audit";

/// One run of one policy, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub run_id: String,
    pub policy: String,
    pub organization: String,
    pub mode: PolicyMode,
    pub start_time: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RunPhase>,
    /// Who ran it (command-line runs); None for the operator's runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub actions: Vec<RunAction>,
}

impl RunRecord {
    /// Counts of actions (notices aside) by outcome: (planned, applied, failed, deferred, skipped,
    /// unknown).
    pub fn counts(&self) -> [i64; 6] {
        let mut c = [0i64; 6];
        for a in self.actions.iter().filter(|a| a.action != NOTICE) {
            let i = match a.outcome {
                ActionOutcome::Planned => 0,
                ActionOutcome::Applied => 1,
                ActionOutcome::Failed => 2,
                ActionOutcome::Deferred => 3,
                ActionOutcome::Skipped => 4,
                ActionOutcome::Unknown => 5,
            };
            c[i] += 1;
        }
        c
    }

    /// Object names of each page: `<policy>-<runId>-<page>` (a long policy name shortened).
    pub fn page_names(&self) -> Vec<String> {
        let pages = self.actions.len().div_ceil(ACTIONS_PER_PAGE).max(1);
        (1..=pages).map(|p| super::names::object_name(&self.policy, &format!("{}-{p}", self.run_id))).collect()
    }
}

/// The `action` of a notice in the record (notices are listed with the actions they announce).
pub const NOTICE: &str = "notice";

/// Notices delivered in this run.
pub fn notices_sent(run: &RunRecord) -> i64 {
    run.actions.iter().filter(|a| a.action == NOTICE && a.outcome == ActionOutcome::Applied).count() as i64
}

/// A run id that sorts by time and is valid in object names: `20261125t185200z-3f9a`. The random
/// suffix keeps two runs in the same second (a restart after a crash, a frozen test clock) from
/// overwriting each other's record.
pub fn run_id(start: jiff::Timestamp) -> String {
    format!("{}-{:04x}", start.strftime("%Y%m%dt%H%M%Sz"), rand::random::<u16>())
}

/// Where run records go.
pub trait AuditSink: Send + Sync {
    /// Writes the record (creating or updating every page) and returns the object names.
    fn write(&self, run: &RunRecord) -> impl Future<Output = Result<Vec<String>, RecordError>> + Send;
    /// Records of `policy` still marked Running: runs a crash interrupted (the caller excludes its own).
    fn running(&self, policy: &str) -> impl Future<Output = Result<Vec<RunRecord>, RecordError>> + Send;
    /// The record of one run (None: never written, or pruned).
    fn read(&self, policy: &str, run_id: &str) -> impl Future<Output = Result<Option<RunRecord>, RecordError>> + Send;
}

/// Joins what another writer recorded into `ours` on a conflict: an outcome it settled (ours still
/// open) and a phase it closed (ours still Running) are kept, so a retry never overwrites them.
pub fn merge_record(ours: &mut RunRecord, theirs: &RunRecord) {
    for (a, t) in ours.actions.iter_mut().zip(&theirs.actions) {
        let same = a.account_id == t.account_id && a.action == t.action && a.group == t.group;
        if same && a.outcome.is_open() && !t.outcome.is_open() {
            a.outcome = t.outcome;
            a.error.clone_from(&t.error);
            a.time = t.time.clone();
        }
    }
    if ours.phase == Some(RunPhase::Running) && theirs.phase.is_some_and(|p| p != RunPhase::Running) {
        ours.phase = theirs.phase;
        ours.end_time = theirs.end_time;
    }
}

/// LifecycleRun objects in one namespace.
#[derive(Clone)]
pub struct ClusterAudit {
    api: Api<LifecycleRun>,
    fence: Arc<dyn Fence>,
    /// resourceVersion of each page this process wrote last: the next write is conditional on it.
    versions: Arc<Mutex<HashMap<String, String>>>,
}

impl ClusterAudit {
    pub fn new(client: Client, namespace: &str) -> Self {
        Self { api: Api::namespaced(client, namespace), fence: super::sole_writer(), versions: Default::default() }
    }

    /// Confirms `fence` before every write.
    pub fn fenced(mut self, fence: Arc<dyn Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// Writes one page: created if absent, else updated at the version last seen. A conflict
    /// returns the page as stored now.
    async fn put_page(&self, name: &str, obj: &Value, status: &Value) -> Result<Option<LifecycleRun>, RecordError> {
        let known = self.versions.lock().expect("versions lock").get(name).cloned();
        let conflict = |e: &kube::Error| matches!(e, kube::Error::Api(e) if e.code == 409);
        let mut obj = obj.clone();
        let written = match known {
            None => {
                let lr: LifecycleRun = serde_json::from_value(obj).expect("a LifecycleRun");
                self.fence.confirm().await.map_err(RecordError::Fenced)?;
                self.api
                    .create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &lr)
                    .await
            }
            Some(version) => {
                obj["metadata"]["resourceVersion"] = Value::String(version);
                self.fence.confirm().await.map_err(RecordError::Fenced)?;
                self.api.patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&obj)).await
            }
        };
        let written = match written {
            Ok(w) => w,
            Err(e) if conflict(&e) => return Ok(self.api.get_opt(name).await?),
            Err(e) => return Err(e.into()),
        };
        let mut status = status.clone();
        status["metadata"] = serde_json::json!({"resourceVersion": written.resource_version()});
        self.fence.confirm().await.map_err(RecordError::Fenced)?;
        match self.api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&status)).await {
            Ok(w) => {
                self.versions
                    .lock()
                    .expect("versions lock")
                    .insert(name.to_owned(), w.resource_version().unwrap_or_default());
                Ok(None)
            }
            Err(e) if conflict(&e) => Ok(self.api.get_opt(name).await?),
            Err(e) => Err(e.into()),
        }
    }

    /// Every record of `policy` (or all policies), pages joined, newest first.
    pub async fn list(&self, policy: Option<&str>) -> Result<Vec<RunRecord>, RecordError> {
        let mut lp = ListParams::default();
        if let Some(p) = policy {
            lp = lp.labels(&format!("seatwarden.io/policy={}", super::names::label_value(p)));
        }
        let mut runs = self.api.list(&lp).await?.items;
        // The label may be a shortened name: the record's own field is the exact one.
        runs.retain(|r| policy.is_none_or(|p| r.spec.policy == p));
        Ok(join_pages(runs))
    }

    /// Deletes runs beyond the newest `keep` of each policy and runs older than `max_age`.
    pub async fn prune(
        &self,
        keep: usize,
        max_age: jiff::SignedDuration,
        now: jiff::Timestamp,
    ) -> Result<usize, RecordError> {
        let runs = self.api.list(&ListParams::default()).await?.items;
        let mut by_policy: std::collections::BTreeMap<String, Vec<(String, jiff::Timestamp)>> = Default::default();
        for r in &runs {
            let e = by_policy.entry(r.spec.policy.clone()).or_default();
            if !e.iter().any(|(id, _)| *id == r.spec.run_id) {
                e.push((r.spec.run_id.clone(), r.spec.start_time.0));
            }
        }
        let mut doomed = std::collections::BTreeSet::new();
        for (policy, mut ids) in by_policy {
            ids.sort_by_key(|b| std::cmp::Reverse(b.1));
            for (i, (id, start)) in ids.into_iter().enumerate() {
                if i >= keep || now.duration_since(start) > max_age {
                    doomed.insert((policy.clone(), id));
                }
            }
        }
        let mut deleted = 0;
        for r in runs {
            if doomed.contains(&(r.spec.policy.clone(), r.spec.run_id.clone())) {
                match self.api.delete(&r.name_any(), &DeleteParams::default()).await {
                    Ok(_) => deleted += 1,
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(deleted)
    }
}

fn join_pages(mut runs: Vec<LifecycleRun>) -> Vec<RunRecord> {
    runs.sort_by(|a, b| {
        (&a.spec.policy, &a.spec.run_id, a.spec.page).cmp(&(&b.spec.policy, &b.spec.run_id, b.spec.page))
    });
    let mut out: Vec<RunRecord> = vec![];
    for r in runs {
        let status = r.status.clone().unwrap_or_default();
        match out.last_mut() {
            Some(last) if last.policy == r.spec.policy && last.run_id == r.spec.run_id => {
                last.actions.extend(r.spec.actions);
            }
            _ => out.push(RunRecord {
                run_id: r.spec.run_id,
                policy: r.spec.policy,
                organization: r.spec.organization,
                mode: r.spec.mode,
                start_time: r.spec.start_time.0,
                end_time: status.end_time.map(|t| t.0),
                phase: status.phase,
                actor: r.spec.actor,
                actions: r.spec.actions,
            }),
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.start_time));
    out
}

impl AuditSink for ClusterAudit {
    async fn write(&self, run: &RunRecord) -> Result<Vec<String>, RecordError> {
        let mut run = run.clone();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.write_pages(&run).await? {
                None => return Ok(run.page_names()),
                Some(theirs) if attempts < 5 => {
                    // Someone else wrote a page meanwhile: take what they settled, write again.
                    tracing::warn!(run = %run.run_id, "LifecycleRun changed by another writer; merging");
                    let stored = self.read(&run.policy, &run.run_id).await?;
                    merge_record(&mut run, stored.as_ref().unwrap_or(&theirs));
                    if let Some(stored) = stored {
                        for name in run.page_names() {
                            if let Some(lr) = self.api.get_opt(&name).await? {
                                self.versions
                                    .lock()
                                    .expect("versions lock")
                                    .insert(name, lr.resource_version().unwrap_or_default());
                            }
                        }
                        let _ = stored;
                    }
                }
                Some(_) => {
                    return Err(RecordError::Conflict {
                        name: format!("LifecycleRun {}-{}", run.policy, run.run_id),
                        detail: "still changing after 5 attempts".into(),
                    });
                }
            }
        }
    }

    async fn running(&self, policy: &str) -> Result<Vec<RunRecord>, RecordError> {
        Ok(self.list(Some(policy)).await?.into_iter().filter(|r| r.phase == Some(RunPhase::Running)).collect())
    }

    async fn read(&self, policy: &str, run_id: &str) -> Result<Option<RunRecord>, RecordError> {
        let lp = ListParams::default().labels(&format!("seatwarden.io/policy={policy},seatwarden.io/run-id={run_id}"));
        let runs = self.api.list(&lp).await?;
        Ok(join_pages(runs.items).into_iter().next())
    }
}

impl ClusterAudit {
    /// Writes every page; on a conflict stops and returns the record as another writer left it.
    async fn write_pages(&self, run: &RunRecord) -> Result<Option<RunRecord>, RecordError> {
        let names = run.page_names();
        let [planned, applied, failed, deferred, skipped, unknown] = run.counts();
        let chunks: Vec<&[RunAction]> =
            if run.actions.is_empty() { vec![&[]] } else { run.actions.chunks(ACTIONS_PER_PAGE).collect() };
        for (i, (name, actions)) in names.iter().zip(chunks).enumerate() {
            let spec = LifecycleRunSpec {
                policy: run.policy.clone(),
                organization: run.organization.clone(),
                run_id: run.run_id.clone(),
                page: i as i32 + 1,
                mode: run.mode,
                start_time: Time(run.start_time),
                actor: run.actor.clone(),
                actions: actions.to_vec(),
            };
            let obj = serde_json::json!({
                "apiVersion": "seatwarden.io/v1alpha1",
                "kind": "LifecycleRun",
                "metadata": {"name": name, "labels": {
                    "app.kubernetes.io/name": "seatwarden",
                    "seatwarden.io/policy": super::names::label_value(&run.policy),
                    "seatwarden.io/run-id": run.run_id,
                }},
                "spec": spec,
            });
            // Counts are the whole run's, on every page, so any page answers "what happened".
            let status = LifecycleRunStatus {
                phase: Some(run.phase.unwrap_or(RunPhase::Running)),
                end_time: run.end_time.map(Time),
                planned,
                applied,
                failed,
                deferred,
                skipped,
                unknown,
                notices_sent: notices_sent(run),
                conditions: vec![],
            };
            let st = serde_json::json!({
                "apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecycleRun", "status": status
            });
            if let Some(theirs) = self.put_page(name, &obj, &st).await? {
                return Ok(Some(join_pages(vec![theirs]).into_iter().next().unwrap_or_else(|| run.clone())));
            }
        }
        Ok(None)
    }
}

/// One JSON file per run in `<dir>/runs/`, for `demo` and the command line.
#[derive(Clone)]
pub struct FolderAudit {
    dir: PathBuf,
}

impl FolderAudit {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn list(&self, policy: Option<&str>) -> Result<Vec<RunRecord>, RecordError> {
        let runs = self.dir.join("runs");
        let mut out = vec![];
        let entries = match std::fs::read_dir(&runs) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(RecordError::io(&runs, e)),
        };
        for e in entries {
            let path = e.map_err(|e| RecordError::io(&runs, e))?.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| RecordError::io(&path, e))?;
            let rec: RunRecord = serde_json::from_str(&text)
                .map_err(|e| RecordError::Corrupt { name: path.display().to_string(), message: e.to_string() })?;
            if policy.is_none_or(|p| p == rec.policy) {
                out.push(rec);
            }
        }
        out.sort_by_key(|b| std::cmp::Reverse(b.start_time));
        Ok(out)
    }
}

impl AuditSink for FolderAudit {
    async fn write(&self, run: &RunRecord) -> Result<Vec<String>, RecordError> {
        let runs = self.dir.join("runs");
        std::fs::create_dir_all(&runs).map_err(|e| RecordError::io(&runs, e))?;
        let name = format!("{}-{}", run.policy, run.run_id);
        let path = runs.join(format!("{name}.json"));
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_string_pretty(run).expect("run records serialize");
        std::fs::write(&tmp, json).map_err(|e| RecordError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| RecordError::io(&path, e))?;
        Ok(vec![name])
    }

    async fn running(&self, policy: &str) -> Result<Vec<RunRecord>, RecordError> {
        Ok(self.list(Some(policy))?.into_iter().filter(|r| r.phase == Some(RunPhase::Running)).collect())
    }

    async fn read(&self, policy: &str, run_id: &str) -> Result<Option<RunRecord>, RecordError> {
        let path = self.dir.join("runs").join(format!("{policy}-{run_id}.json"));
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| RecordError::Corrupt { name: path.display().to_string(), message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RecordError::io(&path, e)),
        }
    }
}

/// One row of the audit export: an action of a run, with how many records it stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRow<'a> {
    pub run: &'a RunRecord,
    pub action: &'a RunAction,
    /// When this action was first recorded (deferred or planned before its final outcome).
    pub first_recorded: jiff::Timestamp,
    /// Records of the same action folded into this row (1 in the full history).
    pub records: u32,
}

/// Every record of every action, oldest run first: the full history.
pub fn history(records: &[RunRecord]) -> Vec<AuditRow<'_>> {
    let mut runs: Vec<&RunRecord> = records.iter().collect();
    runs.sort_by(|a, b| (a.start_time, &a.policy, &a.run_id).cmp(&(b.start_time, &b.policy, &b.run_id)));
    runs.iter()
        .flat_map(|r| {
            r.actions.iter().map(move |a| AuditRow { run: r, action: a, first_recorded: a.time.0, records: 1 })
        })
        .collect()
}

/// What makes two records the same action: organization, policy, rule, account, action, group.
type ActionKey<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, Option<&'a str>);

/// One row per action's final outcome: an action deferred by the caps on three runs and applied on
/// the fourth is one `applied` row (4 records); an action still waiting is one `deferred` (or
/// `planned`) row. An action is the same when organization, policy, rule, account, action and
/// group are; after an applied, failed or skipped outcome the same action again is a new one.
pub fn final_outcomes(records: &[RunRecord]) -> Vec<AuditRow<'_>> {
    let mut rows: Vec<Option<AuditRow<'_>>> = Vec::new();
    let mut pending: std::collections::HashMap<ActionKey<'_>, usize> = Default::default();
    for row in history(records) {
        let a = row.action;
        let key = (
            row.run.organization.as_str(),
            row.run.policy.as_str(),
            a.rule.as_str(),
            a.account_id.as_str(),
            a.action.as_str(),
            a.group.as_deref(),
        );
        let folded = match pending.remove(&key) {
            Some(i) => {
                let earlier = rows[i].take().expect("a pending row is present");
                AuditRow { first_recorded: earlier.first_recorded, records: earlier.records + 1, ..row }
            }
            None => row,
        };
        let terminal = !matches!(folded.action.outcome, ActionOutcome::Planned | ActionOutcome::Deferred);
        rows.push(Some(folded));
        if !terminal {
            pending.insert(key, rows.len() - 1);
        }
    }
    rows.into_iter().flatten().collect()
}

/// An instant as auditors read it: `2026-11-25T10:00:00Z` (whole seconds).
pub fn audit_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The export's columns.
pub const CSV_COLUMNS: [&str; 16] = [
    "time",
    "policy",
    "runId",
    "mode",
    "actor",
    "accountId",
    "email",
    "action",
    "groupId",
    "groupName",
    "rule",
    "reason",
    "outcome",
    "error",
    "firstRecorded",
    "records",
];

/// Writes `rows` as CSV. Group names come from the record, else from any other record naming the
/// same group id; the actor of an operator run is `seatwarden`.
pub fn write_rows_csv<W: std::io::Write>(rows: &[AuditRow<'_>], out: W) -> Result<(), csv::Error> {
    let mut names: std::collections::HashMap<&str, &str> = Default::default();
    for r in rows {
        if let (Some(id), Some(name)) = (r.action.group.as_deref(), r.action.group_name.as_deref()) {
            names.insert(id, name);
        }
    }
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    for row in rows {
        let (r, a) = (row.run, row.action);
        let group_name =
            a.group_name.as_deref().or_else(|| a.group.as_deref().and_then(|g| names.get(g).copied())).unwrap_or("");
        w.write_record([
            audit_time(a.time.0).as_str(),
            &r.policy,
            &r.run_id,
            r.mode.label(),
            r.actor.as_deref().unwrap_or("seatwarden"),
            &a.account_id,
            a.email.as_deref().unwrap_or(""),
            &a.action,
            a.group.as_deref().unwrap_or(""),
            group_name,
            &a.rule,
            &a.reason,
            a.outcome.label(),
            a.error.as_deref().unwrap_or(""),
            audit_time(row.first_recorded).as_str(),
            row.records.to_string().as_str(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// The audit trail as CSV for auditors: one row per action's final outcome.
pub fn write_csv<W: std::io::Write>(records: &[RunRecord], out: W) -> Result<(), csv::Error> {
    write_rows_csv(&final_outcomes(records), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(i: usize, outcome: ActionOutcome) -> RunAction {
        RunAction {
            time: Time("2026-11-25T10:00:00Z".parse().unwrap()),
            account_id: format!("acc-{i}"),
            email: Some(format!("u{i}@example.com")),
            action: "suspend".into(),
            group: None,
            group_name: None,
            rule: "idle".into(),
            reason: "no activity for 130 days (threshold 120)".into(),
            outcome,
            error: None,
            directory: None,
        }
    }

    fn run(id: &str, at: &str, actions: Vec<RunAction>) -> RunRecord {
        RunRecord {
            run_id: id.into(),
            policy: "p".into(),
            organization: "o".into(),
            mode: PolicyMode::Enforce,
            start_time: at.parse().unwrap(),
            end_time: None,
            phase: Some(RunPhase::Completed),
            actor: None,
            actions,
        }
    }

    fn at(mut a: RunAction, t: &str) -> RunAction {
        a.time = Time(t.parse().unwrap());
        a
    }

    #[test]
    fn an_action_deferred_then_applied_is_one_row_and_history_keeps_every_record() {
        let day = |d: u32| format!("2026-11-{d:02}T09:00:00Z");
        let records = vec![
            run(
                "r3",
                &day(3),
                vec![at(action(1, ActionOutcome::Applied), &day(3)), at(action(2, ActionOutcome::Deferred), &day(3))],
            ),
            run(
                "r1",
                &day(1),
                vec![at(action(1, ActionOutcome::Deferred), &day(1)), at(action(3, ActionOutcome::Applied), &day(1))],
            ),
            run(
                "r2",
                &day(2),
                vec![at(action(1, ActionOutcome::Deferred), &day(2)), at(action(2, ActionOutcome::Deferred), &day(2))],
            ),
            // The same action again after it was applied is a new action.
            run("r4", &day(4), vec![at(action(1, ActionOutcome::Failed), &day(4))]),
        ];
        assert_eq!(history(&records).len(), 7);
        let rows = final_outcomes(&records);
        let summary: Vec<(&str, &str, u32, String)> = rows
            .iter()
            .map(|r| (r.action.account_id.as_str(), r.action.outcome.label(), r.records, audit_time(r.first_recorded)))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("acc-3", "applied", 1, day(1)),
                ("acc-1", "applied", 3, day(1)),
                ("acc-2", "deferred", 2, day(2)),
                ("acc-1", "failed", 1, day(4)),
            ]
        );
    }

    #[test]
    fn the_csv_names_groups_and_actors_and_has_whole_seconds() {
        let mut a = action(1, ActionOutcome::Applied);
        a.action = "remove-group".into();
        a.group = Some("g-1".into());
        a.time = Time("2026-11-25T10:00:00.123456789Z".parse().unwrap());
        let mut b = a.clone();
        b.account_id = "acc-2".into();
        b.group_name = Some("jira-users".into());
        let mut cli = run("r1", "2026-11-25T10:00:00Z", vec![a, b]);
        cli.actor = Some("alice".into());
        let mut out = vec![];
        write_csv(&[cli], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(rows.len(), 2);
        for r in &rows {
            assert!(r.starts_with("2026-11-25T10:00:00Z,p,r1,enforce,alice,"), "{r}");
            assert!(r.contains(",remove-group,g-1,jira-users,"), "the name is found through the other record: {r}");
        }
    }

    #[test]
    fn run_ids_sort_by_time_and_differ_within_a_second() {
        let t: jiff::Timestamp = "2026-11-25T10:00:00Z".parse().unwrap();
        let ids: std::collections::BTreeSet<String> = (0..20).map(|_| run_id(t)).collect();
        assert!(ids.len() > 1, "ids of runs in the same second differ");
        assert!(ids.iter().all(|id| id.starts_with("20261125t100000z-")));
        assert!(run_id(t) < run_id("2026-11-25T10:00:01Z".parse().unwrap()));
    }

    #[test]
    fn large_runs_are_paged_and_counted() {
        let run = RunRecord {
            run_id: "20261125t100000z".into(),
            policy: "p".into(),
            organization: "o".into(),
            mode: PolicyMode::Enforce,
            start_time: "2026-11-25T10:00:00Z".parse().unwrap(),
            end_time: None,
            phase: None,
            actor: None,
            actions: (0..2500)
                .map(|i| action(i, if i % 2 == 0 { ActionOutcome::Applied } else { ActionOutcome::Failed }))
                .collect(),
        };
        assert_eq!(run.page_names(), vec!["p-20261125t100000z-1", "p-20261125t100000z-2", "p-20261125t100000z-3"]);
        assert_eq!(run.counts(), [0, 1250, 1250, 0, 0, 0]);
        // A page of the largest size stays well under the 1 MiB object limit.
        let page = serde_json::to_vec(&run.actions[..ACTIONS_PER_PAGE]).unwrap();
        assert!(page.len() < 512 * 1024, "a full page is {} bytes", page.len());
    }

    #[tokio::test]
    async fn folder_audit_round_trips_and_exports_csv() {
        let dir = tempfile::tempdir().unwrap();
        let audit = FolderAudit::new(dir.path());
        let run = RunRecord {
            run_id: "20261125t100000z".into(),
            policy: "p".into(),
            organization: "o".into(),
            mode: PolicyMode::DryRun,
            start_time: "2026-11-25T10:00:00Z".parse().unwrap(),
            end_time: None,
            phase: Some(RunPhase::Completed),
            actor: None,
            actions: vec![action(1, ActionOutcome::Planned)],
        };
        audit.write(&run).await.unwrap();
        let back = audit.list(None).unwrap();
        assert_eq!(back, vec![run.clone()]);
        assert!(audit.list(Some("other")).unwrap().is_empty());
        let mut csv = vec![];
        write_csv(&back, &mut csv).unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert!(text.starts_with("time,policy,runId,mode,actor,accountId,email,action,groupId,groupName,"));
        assert!(text.contains(
            "seatwarden,acc-1,u1@example.com,suspend,,,idle,no activity for 130 days (threshold 120),planned"
        ));
        assert!(text.starts_with("time,") && text.lines().nth(1).unwrap().starts_with("2026-11-25T10:00:00Z,p,"));
    }
}
