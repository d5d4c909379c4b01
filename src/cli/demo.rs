//! `seatwarden demo`: the README's main command. Quiet: the report on standard output, a progress
//! bar on standard error (on a terminal), log lines only with `-v` or `RUST_LOG`.

use std::{
    io::IsTerminal,
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, atomic::AtomicBool},
};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{controller::http, demo, metrics::Metrics};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the simulated organization (the same seed gives the same demo).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// People in the simulated organization at the start.
    #[arg(long, default_value_t = 5000)]
    pub users: u32,
    /// Simulated days to run (a longer run shows suspended people reaching deactivation).
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Where the audit trail (runs/), its CSV, the mailbox and the ledger are written: the folder
    /// `seatwarden audit export` reads by default.
    #[arg(long, value_name = "DIR", default_value = demo::DEFAULT_DIR)]
    pub out: PathBuf,
    /// The manifests to run [default: the examples built into this binary].
    #[arg(long, value_name = "DIR")]
    pub examples: Option<PathBuf>,
    /// Serve /metrics here after the run, until Ctrl-C.
    #[arg(long, default_value_t = 9464)]
    pub metrics_port: u16,
    /// Exit after the report instead of serving /metrics.
    #[arg(long)]
    pub once: bool,
}

pub fn run(args: DemoArgs) -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let metrics = Metrics::new();
        let opts = demo::DemoOptions {
            seed: args.seed,
            users: args.users,
            days: args.days,
            out: args.out.clone(),
            examples: args.examples.clone(),
            ..Default::default()
        };
        let progress = if std::io::stderr().is_terminal() {
            let pb = ProgressBar::new(u64::from(args.days)).with_style(
                ProgressStyle::with_template("simulating {bar:30} day {pos}/{len} {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
            pb
        } else {
            ProgressBar::hidden()
        };
        let on_day = {
            let pb = progress.clone();
            move |day: u32, note: &str| {
                pb.set_position(u64::from(day));
                pb.set_message(note.to_owned());
            }
        };
        let result = demo::run_with_progress(&opts, &metrics, &on_day).await;
        progress.finish_and_clear();
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                super::say(&format!("seatwarden demo: {e}"));
                return std::process::ExitCode::from(super::exit::FAILURE);
            }
        };
        let printed = super::output::print_or_quiet(demo::render(&report).as_bytes());
        if args.once || printed != std::process::ExitCode::SUCCESS {
            return printed;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], args.metrics_port));
        let state = http::HttpState { metrics, ready: Arc::new(AtomicBool::new(true)) };
        match http::serve(addr, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        {
            Ok((bound, handle)) => {
                super::say(&format!("serving metrics at http://{bound}/metrics until Ctrl-C"));
                let _ = handle.await;
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                super::say(&format!("seatwarden demo: cannot serve metrics on {addr}: {e}"));
                std::process::ExitCode::from(super::exit::FAILURE)
            }
        }
    })
}
