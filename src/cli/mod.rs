//! The binary's subcommands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod audit;
pub mod demo;
pub mod plan;
pub mod run;
pub mod sim;
pub mod users;

#[derive(Debug, Parser)]
#[command(
    name = "seatwarden",
    version,
    about = "The Atlassian Cloud user lifecycle as code: reclaim the seats inactive users hold, safely."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The audit trail for auditors: `audit export --csv FILE`.
    Audit(Box<audit::AuditArgs>),
    /// Print every CustomResourceDefinition as one YAML stream.
    Crd,
    /// Run a simulated organization through the examples' policies over simulated days.
    Demo(Box<demo::DemoArgs>),
    /// Print what the policies would do now (each as Enforce would act, marked with its mode).
    /// Writes nothing, ever. Exit codes: 0 plan printed, 2 invalid manifests or flags, 3 the
    /// organization could not be read.
    Plan(Box<plan::PlanArgs>),
    /// Run the operator: reconcile LifecyclePolicies on schedule in the current cluster.
    Run(Box<run::RunArgs>),
    /// Serve a simulated Atlassian Cloud organization (every API seatwarden uses) until stopped.
    Sim(Box<sim::SimArgs>),
    /// Administer users: list, export, import and activate (dry runs unless --apply).
    Users(Box<users::UsersArgs>),
}

/// Exit codes shared by the subcommands.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
}

pub fn main() -> ExitCode {
    crate::tls::install_crypto_provider();
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", crate::crd::crds_yaml());
            ExitCode::SUCCESS
        }
        Command::Demo(args) => demo::run(*args),
        Command::Sim(args) => sim::run(*args),
        Command::Plan(args) => plan::run(*args),
        Command::Run(args) => run::run(*args),
        Command::Users(args) => users::run(*args),
        Command::Audit(args) => audit::run(*args),
    }
}
