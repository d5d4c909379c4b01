//! `seatwarden audit export`: the audit trail as CSV for auditors, from the cluster's LifecycleRuns
//! or from the local folder that `demo` and the command line write. One row per action's final
//! outcome (`--history` for every record), group names beside ids, who ran each command-line action.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use jiff::Timestamp;

use super::exit;
use crate::crd::ActionOutcome;
use crate::record::audit::{AuditRow, final_outcomes, history, write_rows_csv};
use crate::record::{ClusterAudit, FolderAudit, RunRecord};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the recorded actions (time, policy, run, actor, account, action, group, outcome...) as CSV.
    Export(AuditExportArgs),
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// Only this policy's runs (`cli-import` and `cli-activate` for the command line's); an
    /// unknown name is an error that lists the policies on record.
    #[arg(long, value_name = "NAME")]
    pub policy: Option<String>,
    /// Only actions in this last span (e.g. 30d).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<crate::crd::Duration>,
    /// Only these final outcomes: planned, applied, failed, deferred, skipped (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_outcome)]
    pub outcome: Vec<ActionOutcome>,
    /// Every record of every action (an action deferred on three runs is three rows), instead of
    /// one row per action's final outcome.
    #[arg(long)]
    pub history: bool,
    /// The file to write (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Read the LifecycleRuns of this namespace in the current cluster.
    #[arg(short = 'n', long, value_name = "NS", conflicts_with = "dir")]
    pub namespace: Option<String>,
    /// Read the local folder (`runs/*.json`) that `seatwarden demo` and the command line write.
    #[arg(long, value_name = "DIR", default_value = crate::demo::DEFAULT_DIR)]
    pub dir: PathBuf,
}

fn parse_outcome(s: &str) -> Result<ActionOutcome, String> {
    let all = [
        ActionOutcome::Planned,
        ActionOutcome::Applied,
        ActionOutcome::Failed,
        ActionOutcome::Deferred,
        ActionOutcome::Skipped,
    ];
    all.into_iter()
        .find(|o| o.label().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("{s:?} is not an outcome: planned, applied, failed, deferred, skipped"))
}

pub fn run(args: AuditArgs) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let AuditCommand::Export(args) = args.command;
    let mut out = std::io::stdout().lock();
    match rt.block_on(export(&args, &mut out, Timestamp::now())) {
        Ok(summary) => {
            super::say(&summary);
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            if !message.is_empty() {
                super::say(&format!("seatwarden audit export: {message}"));
            }
            ExitCode::from(code)
        }
    }
}

/// Keeps the actions of `records` at or after `since_instant`; runs left with none are dropped.
pub fn since(records: Vec<RunRecord>, since_instant: Option<Timestamp>) -> Vec<RunRecord> {
    let Some(cutoff) = since_instant else { return records };
    records
        .into_iter()
        .filter_map(|mut r| {
            r.actions.retain(|a| a.time.0 >= cutoff);
            (!r.actions.is_empty()).then_some(r)
        })
        .collect()
}

/// Reads the trail, filters it and writes the CSV to `--csv` (or `stdout` for `-`). Returns a
/// summary line for people; errors carry their exit code (an empty message: the reader of
/// standard output went away, nothing to say).
pub async fn export(args: &AuditExportArgs, stdout: &mut dyn Write, now: Timestamp) -> Result<String, (u8, String)> {
    let (records, source) = match &args.namespace {
        Some(ns) => {
            let client = kube::Client::try_default()
                .await
                .map_err(|e| (exit::UNREACHABLE, format!("--namespace {ns}: no Kubernetes client: {e}")))?;
            let records = ClusterAudit::new(client, ns)
                .list(None)
                .await
                .map_err(|e| (exit::UNREACHABLE, format!("cannot list the LifecycleRuns of {ns}: {e}")))?;
            (records, format!("LifecycleRuns in namespace {ns}"))
        }
        None => {
            if !args.dir.is_dir() {
                return Err((
                    exit::USAGE,
                    format!("{}: no such folder (--dir names the audit folder)", args.dir.display()),
                ));
            }
            let records = FolderAudit::new(&args.dir)
                .list(None)
                .map_err(|e| (exit::FAILURE, format!("cannot read the audit folder: {e}")))?;
            (records, args.dir.join("runs").display().to_string())
        }
    };
    let records = match &args.policy {
        Some(p) => {
            let mut known: Vec<&str> = records.iter().map(|r| r.policy.as_str()).collect();
            known.sort_unstable();
            known.dedup();
            if !known.contains(&p.as_str()) {
                let listed = if known.is_empty() { "none".to_owned() } else { known.join(", ") };
                return Err((
                    exit::USAGE,
                    format!("--policy {p}: no runs of that policy in {source} (policies on record: {listed})"),
                ));
            }
            records.iter().filter(|r| r.policy == *p).cloned().collect()
        }
        None => records,
    };
    let records = since(records, args.since.map(|d| now - d.to_signed()));
    let mut rows: Vec<AuditRow<'_>> = if args.history { history(&records) } else { final_outcomes(&records) };
    if !args.outcome.is_empty() {
        rows.retain(|r| args.outcome.contains(&r.action.outcome));
    }
    let written = if args.csv.as_os_str() == "-" {
        write_rows_csv(&rows, &mut *stdout)
    } else {
        let file = std::fs::File::create(&args.csv)
            .map_err(|e| (exit::FAILURE, format!("cannot create {}: {e}", args.csv.display())))?;
        write_rows_csv(&rows, std::io::BufWriter::new(file))
    };
    if let Err(e) = written {
        if super::output::is_closed_pipe_csv(&e) {
            return Err((exit::OK, String::new()));
        }
        return Err((exit::FAILURE, format!("cannot write {}: {e}", args.csv.display())));
    }
    let runs: std::collections::BTreeSet<(&str, &str)> =
        rows.iter().map(|r| (r.run.policy.as_str(), r.run.run_id.as_str())).collect();
    Ok(format!(
        "{} {} of {} runs from {source} written to {}",
        rows.len(),
        if args.history { "records" } else { "actions (final outcomes)" },
        runs.len(),
        args.csv.display()
    ))
}
