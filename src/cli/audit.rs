//! `seatwarden audit export`: the audit trail as CSV for auditors, from the cluster's LifecycleRuns
//! or from the local folder that `demo` and the command line write.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use jiff::Timestamp;

use super::exit;
use crate::record::{ClusterAudit, FolderAudit, RunRecord, audit::write_csv};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write every recorded action (time, policy, run, account, action, outcome...) as CSV.
    Export(AuditExportArgs),
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// Only this policy's runs (`cli-import` and `cli-activate` for the command line's).
    #[arg(long)]
    pub policy: Option<String>,
    /// Only actions in this last span (e.g. 30d).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<crate::crd::Duration>,
    /// The file to write (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Read the LifecycleRuns of this namespace in the current cluster.
    #[arg(long, value_name = "NS", conflicts_with = "dir")]
    pub namespace: Option<String>,
    /// Read the local folder (`runs/*.json`) that `seatwarden demo` and the command line write.
    #[arg(long, value_name = "DIR", default_value = "./seatwarden-audit")]
    pub dir: PathBuf,
}

pub fn run(args: AuditArgs) -> ExitCode {
    super::users::init_cli_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let AuditCommand::Export(args) = args.command;
    let mut out = std::io::stdout().lock();
    match rt.block_on(export(&args, &mut out, Timestamp::now())) {
        Ok(summary) => {
            if !std::io::stderr().is_terminal() || args.csv.as_os_str() != "-" {
                eprintln!("{summary}");
            }
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("seatwarden audit export: {message}");
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
/// summary line for people; errors carry their exit code.
pub async fn export(args: &AuditExportArgs, stdout: &mut dyn Write, now: Timestamp) -> Result<String, (u8, String)> {
    let policy = args.policy.as_deref();
    let (records, source) = match &args.namespace {
        Some(ns) => {
            let client = kube::Client::try_default()
                .await
                .map_err(|e| (exit::UNREACHABLE, format!("--namespace {ns}: no Kubernetes client: {e}")))?;
            let records = ClusterAudit::new(client, ns)
                .list(policy)
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
                .list(policy)
                .map_err(|e| (exit::FAILURE, format!("cannot read the audit folder: {e}")))?;
            (records, args.dir.join("runs").display().to_string())
        }
    };
    let mut records = since(records, args.since.map(|d| now - d.to_signed()));
    // Oldest first reads as a journal.
    records.sort_by(|a, b| (a.start_time, &a.policy).cmp(&(b.start_time, &b.policy)));
    let actions: usize = records.iter().map(|r| r.actions.len()).sum();
    let written = if args.csv.as_os_str() == "-" {
        write_csv(&records, &mut *stdout)
    } else {
        let file = std::fs::File::create(&args.csv)
            .map_err(|e| (exit::FAILURE, format!("cannot create {}: {e}", args.csv.display())))?;
        write_csv(&records, std::io::BufWriter::new(file))
    };
    written.map_err(|e| (exit::FAILURE, format!("cannot write {}: {e}", args.csv.display())))?;
    Ok(format!("{actions} actions of {} runs from {source} written to {}", records.len(), args.csv.display()))
}
