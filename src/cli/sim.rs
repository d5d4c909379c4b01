//! `seatwarden sim`: serve a simulated Atlassian Cloud organization until stopped.

use std::{path::PathBuf, process::ExitCode};

use clap::Args;
use jiff::Timestamp;

use super::exit;
use crate::sim::{Faults, SimConfig, Simulator};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Port to listen on (0 picks a free port).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Users to generate.
    #[arg(long, default_value_t = 5000)]
    pub users: u32,
    /// Seed of the generated organization (the same seed gives the same organization).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The organization id the simulator serves.
    #[arg(long, default_value = "sim-org")]
    pub org_id: String,
    /// The org API key clients must send as a Bearer token.
    #[arg(long, default_value = "sim-key", env = "SEATWARDEN_SIM_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// The site user for Jira, Confluence and Bitbucket (Basic auth).
    #[arg(long, default_value = "admin@example.com")]
    pub site_email: String,
    /// The site user's API token [default: the API key].
    #[arg(long, env = "SEATWARDEN_SIM_SITE_TOKEN", hide_env_values = true)]
    pub site_token: Option<String>,
    /// Directories (user bases) in the organization.
    #[arg(long, default_value_t = 1)]
    pub directories: u16,
    /// Share (0 to 1) of the first directory's people also in another directory (with --directories 2 or more).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub shared_accounts: f64,
    /// Also generate products seatwarden does not model (Loom, Atlas, Rovo, Jira Align).
    #[arg(long)]
    pub unmodelled_products: bool,
    /// Load the state from FILE when it exists; save it there on shutdown and on request.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Start the simulator's clock at this instant (RFC 3339) [default: now].
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<Timestamp>,
    /// Keep the clock still unless moved through the control API.
    #[arg(long)]
    pub frozen: bool,
    /// Requests per minute per credential, e.g. `600/min`.
    #[arg(long, value_name = "N/min", value_parser = parse_rate_limit)]
    pub rate_limit: Option<u32>,
    /// Faults, e.g. `429=0.1,500=0.01,503=0.02,latency=20ms,fail-page=3,malformed=0.01`.
    #[arg(long, value_name = "SPEC", value_parser = parse_faults)]
    pub faults: Option<Faults>,
    /// Serve the v1 write endpoints switched off on 2026-06-30.
    #[arg(long)]
    pub legacy_v1: bool,
}

fn parse_rate_limit(s: &str) -> Result<u32, String> {
    let n = s.trim().strip_suffix("/min").unwrap_or(s.trim());
    n.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("--rate-limit {s:?}: expected a number of requests per minute, such as 600/min"))
}

pub(super) fn parse_share(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| (0.0..=1.0).contains(n))
        .ok_or_else(|| format!("--shared-accounts {s:?}: expected a share from 0 to 1, such as 0.15"))
}

fn parse_faults(s: &str) -> Result<Faults, String> {
    Faults::parse(s).map_err(|e| e.to_string())
}

impl SimArgs {
    pub fn config(&self) -> SimConfig {
        SimConfig {
            users: self.users,
            seed: self.seed,
            org_id: self.org_id.clone(),
            api_key: self.api_key.clone(),
            site_email: self.site_email.clone(),
            site_token: self.site_token.clone(),
            directories: self.directories,
            shared_accounts: self.shared_accounts,
            unmodelled_products: self.unmodelled_products,
            now: self.now.unwrap_or_else(Timestamp::now),
            frozen: self.frozen,
            rate_limit_per_minute: self.rate_limit,
            faults: self.faults.clone().unwrap_or_default(),
            legacy_v1: self.legacy_v1,
            state_file: self.state.clone(),
        }
    }
}

pub fn run(args: SimArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("seatwarden sim: cannot start the runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: SimArgs) -> ExitCode {
    let addr = format!("{}:{}", args.bind, args.port);
    let handle = match Simulator::start(args.config(), &addr).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("seatwarden {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let directory = handle.directory_ids().into_iter().next().unwrap_or_default();
    println!(
        "seatwarden sim listening base_url={} org_id={} directory_id={directory}",
        handle.base_url(),
        handle.org_id()
    );
    use std::io::Write;
    let _ = std::io::stdout().flush();
    wait_for_stop().await;
    match handle.shutdown().await {
        Ok(Some(path)) => {
            eprintln!("seatwarden sim: state saved to {}", path.display());
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seatwarden {e}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> SimArgs {
        let mut argv = vec!["seatwarden", "sim"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Sim(a) => *a,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let a = parse(&[]);
        assert_eq!((a.port, a.bind.as_str(), a.users, a.seed), (8080, "127.0.0.1", 5000, 7));
        let c = a.config();
        assert_eq!(
            (c.org_id.as_str(), c.api_key.as_str(), c.site_email.as_str()),
            ("sim-org", "sim-key", "admin@example.com")
        );
        assert_eq!(c.site_token(), "sim-key", "the site token defaults to the API key");
        assert_eq!((c.directories, c.frozen, c.legacy_v1, c.rate_limit_per_minute), (1, false, false, None));
        assert!(c.faults.is_none() && c.state_file.is_none());
    }

    #[test]
    fn flags_parse_and_bad_values_name_the_flag() {
        let a = parse(&["--rate-limit", "600/min", "--faults", "429=0.5", "--now", "2026-07-01T00:00:00Z", "--frozen"]);
        assert_eq!(a.rate_limit, Some(600));
        assert_eq!(a.faults.unwrap().rate_429, 0.5);
        assert_eq!(a.now.unwrap().to_string(), "2026-07-01T00:00:00Z");
        let err = Cli::try_parse_from(["seatwarden", "sim", "--rate-limit", "lots"]).unwrap_err().to_string();
        assert!(err.contains("--rate-limit"), "{err}");
        let err = Cli::try_parse_from(["seatwarden", "sim", "--faults", "429=7"]).unwrap_err().to_string();
        assert!(err.contains("429=7"), "{err}");
    }
}
