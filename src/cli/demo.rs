//! `seatwarden demo`: the README's main command.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, atomic::AtomicBool},
};

use clap::Args;

use crate::{controller::http, demo, metrics::Metrics};

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long, default_value_t = 5000)]
    pub users: u32,
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Where the audit CSV, the mailbox and the ledger are written.
    #[arg(long, default_value = "./seatwarden-demo")]
    pub out: PathBuf,
    /// The manifests to run (default: the repository's examples/).
    #[arg(long)]
    pub examples: Option<PathBuf>,
    /// Serve /metrics here after the run, until Ctrl-C.
    #[arg(long, default_value_t = 9464)]
    pub metrics_port: u16,
    /// Exit after the report instead of serving /metrics.
    #[arg(long)]
    pub once: bool,
}

pub fn run(args: DemoArgs) -> std::process::ExitCode {
    super::run::init_tracing("text");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let metrics = Metrics::new();
        let opts = demo::DemoOptions {
            seed: args.seed,
            users: args.users,
            days: args.days,
            out: args.out.clone(),
            examples: args.examples.clone().unwrap_or_else(demo::default_examples),
            ..Default::default()
        };
        let report = match demo::run(&opts, &metrics).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("seatwarden demo: {e}");
                return std::process::ExitCode::from(super::exit::FAILURE);
            }
        };
        print!("{}", demo::render(&report));
        if args.once {
            return std::process::ExitCode::SUCCESS;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], args.metrics_port));
        let state = http::HttpState { metrics, ready: Arc::new(AtomicBool::new(true)) };
        match http::serve(addr, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        {
            Ok((bound, handle)) => {
                println!("\nserving metrics at http://{bound}/metrics until Ctrl-C");
                let _ = handle.await;
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("seatwarden demo: cannot serve metrics on {addr}: {e}");
                std::process::ExitCode::from(super::exit::FAILURE)
            }
        }
    })
}
