//! The binary's subcommands.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub mod audit;
pub mod demo;
pub mod output;
pub mod plan;
pub mod run;
pub mod sim;
pub mod users;

/// Shown at the end of `seatwarden --help` and of every subcommand's help that uses them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done (plan printed; with --detailed-exitcode: nothing to do)
  1  failed: a write failed, a file could not be written, a run failed
  2  invalid input: flags, manifests, a CSV file (nothing was read from or written to Atlassian)
  3  the organization could not be read (unreachable, refused, unauthorized, incomplete listing)
  4  plan --detailed-exitcode: a policy is halted, or the plan carries warnings (conditions)
  5  plan --detailed-exitcode: changes are planned, with no halt and no warning
  6  users import/activate --apply: changes don't fit a product's user limit (listed): nothing was
     changed, or what the apply changed was undone; --apply-what-fits: the rest was applied";

#[derive(Debug, Parser)]
#[command(
    name = "seatwarden",
    version,
    about = "The Atlassian Cloud user lifecycle as code: reclaim the seats inactive users hold, safely.",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    /// More log lines on standard error: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The audit trail for auditors: `audit export --csv FILE`.
    Audit(Box<audit::AuditArgs>),
    /// Print a shell completion script: `seatwarden completions bash > /etc/bash_completion.d/seatwarden`.
    Completions(CompletionsArgs),
    /// Print every CustomResourceDefinition as one YAML stream.
    Crd,
    /// Run a simulated organization through the example policies over simulated days.
    Demo(Box<demo::DemoArgs>),
    /// Print what the policies would do now (each as Enforce would act, marked with its mode).
    /// Writes nothing, ever.
    #[command(after_help = EXIT_CODES_HELP)]
    Plan(Box<plan::PlanArgs>),
    /// Run the operator: reconcile LifecyclePolicies on schedule in the current cluster.
    Run(Box<run::RunArgs>),
    /// Serve a simulated Atlassian Cloud organization (every API seatwarden uses) until stopped.
    Sim(Box<sim::SimArgs>),
    /// Administer users: list, export, import and activate (dry runs unless --apply).
    #[command(after_help = EXIT_CODES_HELP)]
    Users(Box<users::UsersArgs>),
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Exit codes shared by the subcommands (see [`EXIT_CODES_HELP`]).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    /// `plan --detailed-exitcode`: halted, or warnings.
    pub const HALTED_OR_WARNINGS: u8 = 4;
    /// `plan --detailed-exitcode`: changes planned, clean.
    pub const CHANGES: u8 = 5;
    /// `users import/activate --apply`: changes don't fit a product's user limit.
    pub const USER_LIMIT: u8 = 6;
}

/// The environment variable every command reads the organization API key from, unless told otherwise.
pub const DEFAULT_API_KEY_ENV: &str = "ATLASSIAN_ORG_API_KEY";

pub fn main() -> ExitCode {
    crate::tls::install_crypto_provider();
    let cli = Cli::parse();
    let verbose = cli.verbose;
    match cli.command {
        Command::Crd => output::print_or_quiet(crate::crd::crds_yaml().as_bytes()),
        Command::Completions(args) => {
            let mut buf = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "seatwarden", &mut buf);
            output::print_or_quiet(&buf)
        }
        Command::Demo(args) => {
            init_logging(verbose, "warn", "text");
            demo::run(*args)
        }
        Command::Sim(args) => {
            init_logging(verbose, "info", "text");
            sim::run(*args)
        }
        Command::Plan(args) => {
            init_logging(verbose, "warn", "text");
            plan::run(*args)
        }
        Command::Run(args) => {
            init_logging(verbose, "info,kube=warn,hyper=warn,tower=warn", &args.log_format);
            run::run(*args)
        }
        Command::Users(args) => {
            init_logging(verbose, "warn", "text");
            users::run(*args)
        }
        Command::Audit(args) => {
            init_logging(verbose, "warn", "text");
            audit::run(*args)
        }
    }
}

/// Whether to colour what goes to standard error: a terminal, `NO_COLOR` unset, `TERM` not dumb.
pub fn stderr_colours() -> bool {
    colours_for(std::io::stderr().is_terminal(), |k| std::env::var_os(k))
}

/// [`stderr_colours`] with its inputs given, for tests.
pub fn colours_for(is_terminal: bool, env: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    is_terminal && env("NO_COLOR").is_none_or(|v| v.is_empty()) && env("TERM").is_none_or(|t| t != "dumb")
}

/// Logs to standard error: `default` filter raised by `-v` (info, debug, trace), `RUST_LOG`
/// overriding both; colours only on a terminal; timestamps to the millisecond.
pub fn init_logging(verbose: u8, default: &str, format: &str) {
    let filter = match (std::env::var("RUST_LOG"), verbose) {
        (Ok(spec), _) if !spec.trim().is_empty() => tracing_subscriber::EnvFilter::new(spec),
        (_, 0) => tracing_subscriber::EnvFilter::new(default),
        (_, 1) => tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn,tower=warn"),
        (_, 2) => tracing_subscriber::EnvFilter::new("debug,hyper=info,rustls=info"),
        _ => tracing_subscriber::EnvFilter::new("trace"),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_timer(MillisecondTimer)
        .with_ansi(format != "json" && stderr_colours());
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}

/// `2026-11-25T09:00:00.123Z`: log timestamps without nanoseconds.
struct MillisecondTimer;

impl tracing_subscriber::fmt::time::FormatTime for MillisecondTimer {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
    }
}

/// Writes `text` to standard error unless it is closed.
pub fn say(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}
