//! Export benchmark: `users export` of a 50,000-user organization served by the in-process simulator
//! over real HTTP (snapshot through the client's pacing, then the CSV written), against the floor
//! the request budget allows: the requests the listing needs ÷ requests per minute. Target ≤ 1.2×.
//!
//! The budget is raised from the default 600/min to 6,000/min so a sample takes seconds rather than
//! a minute; the ratio to the floor is what is measured, and the pacing is the same at any rate.
//! Under `cargo test` (no `--bench`), the organization is small, so the run is a quick smoke test.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use seatwarden::atlassian::{AtlassianClient, ClientConfig, Credentials, Secret};
use seatwarden::sim::{SimConfig, SimHandle, Simulator};
use seatwarden::users::write_export_csv;

const REQUESTS_PER_MINUTE: u32 = 6_000;

fn users() -> u32 {
    if std::env::args().any(|a| a == "--bench") { 50_000 } else { 2_000 }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    sim: SimHandle,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    seatwarden::tls::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let config = SimConfig { users: users(), seed: 7, now: Timestamp::now(), ..Default::default() };
    let sim = runtime.block_on(Simulator::start(config, "127.0.0.1:0")).expect("simulator starts");
    Fixture { runtime, sim }
});

/// What one export took and needed.
struct Run {
    elapsed: Duration,
    calls: u64,
    rows: usize,
}

fn export_once() -> Run {
    let f = &*FIXTURE;
    let mut config = ClientConfig::new(f.sim.org_id(), &f.sim.base_url()).expect("config");
    config.budget.org_requests_per_minute = REQUESTS_PER_MINUTE;
    let credentials = Credentials { org_api_key: Secret::new(f.sim.api_key()), site_user: None };
    // A fresh client per run: its pacer starts empty, as a command's does.
    let client = AtlassianClient::new(config, &credentials).expect("client");
    let start = Instant::now();
    let snapshot = f.runtime.block_on(client.snapshot(Timestamp::now())).expect("snapshot");
    let rows = write_export_csv(&snapshot, None, std::io::sink(), || {}).expect("csv");
    Run { elapsed: start.elapsed(), calls: snapshot.report.calls, rows }
}

/// The fastest the budget allows: every needed request in its own slot.
fn floor(calls: u64) -> Duration {
    Duration::from_secs_f64(calls as f64 * 60.0 / f64::from(REQUESTS_PER_MINUTE))
}

fn main() {
    let run = export_once();
    let floor = floor(run.calls);
    println!(
        "export of {} users: {} requests (budget {REQUESTS_PER_MINUTE}/min → floor {:.2} s), took {:.2} s = {:.3}× the floor (target ≤ 1.2×)",
        run.rows,
        run.calls,
        floor.as_secs_f64(),
        run.elapsed.as_secs_f64(),
        run.elapsed.as_secs_f64() / floor.as_secs_f64()
    );
    divan::main();
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn export_users(bencher: divan::Bencher) {
    bencher.bench(export_once);
}
