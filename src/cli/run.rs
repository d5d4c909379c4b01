//! `seatwarden run`: the operator a platform team deploys.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use clap::Args;
use kube::runtime::events::Reporter;

use crate::{
    clock::Clock,
    controller::{self, Settings, http},
    metrics::Metrics,
};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Watch one namespace only (default: every namespace the service account may read).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:9464", env = "SEATWARDEN_METRICS_ADDR")]
    pub metrics_addr: SocketAddr,
    /// Make no Atlassian write and send no notice, whatever the policies say.
    #[arg(long, env = "SEATWARDEN_DRY_RUN")]
    pub dry_run: bool,
    /// Elect a leader through a Lease, so that only one of several replicas acts.
    #[arg(long, env = "SEATWARDEN_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Name of the Lease, with --leader-election.
    #[arg(long, default_value = "seatwarden", env = "SEATWARDEN_LEASE_NAME")]
    pub lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Identity in the Lease and in Events (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// LifecycleRuns kept per policy.
    #[arg(long, default_value_t = 200)]
    pub run_retention_count: usize,
    /// LifecycleRuns older than this are deleted.
    #[arg(long, default_value = "90d")]
    pub run_retention_age: crate::crd::Duration,
    /// Where notices go when an organization has no SMTP settings.
    #[arg(long, default_value = "/tmp/seatwarden-mailbox", env = "SEATWARDEN_MAILBOX_DIR")]
    pub mailbox_dir: std::path::PathBuf,
    /// Read the time from a simulator's control API (`seatwarden sim`) instead of the system clock,
    /// so tests and demos can move time. Never for production.
    #[arg(long, hide = true)]
    pub clock_from: Option<String>,
    /// Environment variable holding the simulator's API key, with --clock-from.
    #[arg(long, hide = true, default_value = "SEATWARDEN_SIM_API_KEY")]
    pub clock_api_key_env: String,
    /// Log lines as text (for people) or JSON (for a log pipeline).
    #[arg(long, default_value = "text", value_parser = ["text", "json"], env = "SEATWARDEN_LOG_FORMAT")]
    pub log_format: String,
}

pub fn run(args: RunArgs) -> std::process::ExitCode {
    let json_logs = args.log_format == "json";
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(operate(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // Once: structured for a log pipeline, a plain line for a person.
            if json_logs {
                tracing::error!(error = %e, "seatwarden run failed");
            } else {
                eprintln!("seatwarden run: {e}");
            }
            std::process::ExitCode::from(super::exit::FAILURE)
        }
    }
}

async fn operate(args: RunArgs) -> Result<(), String> {
    let client = kube::Client::try_default().await.map_err(|e| format!("no Kubernetes client: {e}"))?;
    // The CRDs must be installed: say so plainly rather than failing inside a watch.
    let probe: kube::Api<crate::crd::LifecyclePolicy> = match &args.watch_namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    probe.list(&kube::api::ListParams::default().limit(1)).await.map_err(|e| match &e {
        kube::Error::Api(s) if s.code == 403 => format!(
            "not allowed to list LifecyclePolicies ({}): grant the service account the chart's Role/ClusterRole",
            s.message
        ),
        _ => format!("cannot list LifecyclePolicies ({e}): install the CRDs with `seatwarden crd | kubectl apply --server-side -f -`"),
    })?;

    let metrics = Metrics::new();
    metrics.process_dry_run.set(args.dry_run as i64);
    let identity = args
        .pod_name
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("seatwarden-{}", std::process::id()));
    let clock = match &args.clock_from {
        Some(url) => {
            let key = std::env::var(&args.clock_api_key_env).unwrap_or_default();
            tracing::warn!(url, "reading time from a simulator: for tests and demos only");
            Clock::remote(url, &key)
        }
        None => Clock::System,
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    let leader = Arc::new(AtomicBool::new(!args.leader_election));
    metrics.leader.set(!args.leader_election as i64);
    let mut lease_task = None;
    let mut fence: Arc<dyn crate::record::Fence> = Arc::new(crate::record::SoleWriter);
    if args.leader_election {
        let ns = args.lease_namespace.clone().unwrap_or_else(|| "default".to_owned());
        fence = Arc::new(controller::lease::LeaseFence::new(
            client.clone(),
            &ns,
            &args.lease_name,
            &identity,
            leader.clone(),
        ));
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(&ns)
            .with_identity(&identity)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .map_err(|e| format!("leader election: {e}"))?;
        let (mut rx, handle) = manager.watch().await;
        let flag = leader.clone();
        let m = metrics.clone();
        let mut stop = stop_rx.clone();
        lease_task = Some(tokio::spawn(async move {
            loop {
                let is_leader = *rx.borrow_and_update();
                flag.store(is_leader, Ordering::SeqCst);
                m.leader.set(is_leader as i64);
                tracing::info!(leader = is_leader, "lease state");
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { break },
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            flag.store(false, Ordering::SeqCst);
            drop(rx);
            // Dropping the receiver ends the manager's task, which releases the lease.
            let _ = tokio::time::timeout(Duration::from_secs(5), handle).await;
        }));
    }

    let ready = Arc::new(AtomicBool::new(false));
    let (addr, http_task) = http::serve(
        args.metrics_addr,
        http::HttpState { metrics: metrics.clone(), ready: ready.clone() },
        stopped(stop_rx.clone()),
    )
    .await
    .map_err(|e| format!("cannot listen on {}: {e}", args.metrics_addr))?;
    tracing::info!(%addr, dry_run = args.dry_run, leader_election = args.leader_election, "seatwarden operator started");
    println!("seatwarden run listening metrics=http://{addr}/metrics");

    let settings = Settings {
        process_dry_run: args.dry_run,
        shutting_down: stop_rx.clone(),
        run_retention_count: args.run_retention_count,
        run_retention_age: args.run_retention_age.to_signed(),
        mailbox_dir: args.mailbox_dir.clone(),
    };
    let reporter = Reporter { controller: "seatwarden".into(), instance: Some(identity) };
    let runtime = controller::Runtime {
        client,
        watch_namespace: args.watch_namespace.clone(),
        metrics,
        reporter,
        clock,
        settings,
        leader: leader.clone(),
        fence,
        ready,
    };
    controller::run(runtime, stopped(stop_rx.clone())).await;
    leader.store(false, Ordering::SeqCst);
    if let Some(t) = lease_task {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), http_task).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
