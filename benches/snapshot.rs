//! Snapshot of a 100,000-user simulated organization over real HTTP on 127.0.0.1.
//!
//! Prints the figures the issue asks for (calls against the minimum, wall time against the floor
//! the request budget allows, bytes per user in the snapshot), then lets divan time the snapshot.
//! Run: `cargo bench --bench snapshot`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use seatwarden::atlassian::{AtlassianClient, ClientConfig, Credentials, PAGE_LIMIT, Secret};
use seatwarden::sim::{SimConfig, SimHandle, Simulator};
use seatwarden::snapshot::{Account, DirectorySnapshot, Group, Membership, ProductActivity};

const USERS: u32 = 100_000;
/// Budgets measured: one request every 20 ms (the budget sets the pace) and every 5 ms (close to
/// the round trip of a 100-user page from the simulator sharing these two cores: the cursor of a
/// listing is sequential, so a page can't leave before the previous one is back).
const BUDGETS: [u32; 2] = [3_000, 12_000];
/// The budget divan times.
const TIMED_BUDGET: u32 = 12_000;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    sim: SimHandle,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let sim = runtime.block_on(async {
            let config = SimConfig { users: USERS, ..SimConfig::default() };
            Simulator::start(config, "127.0.0.1:0").await.expect("simulator starts")
        });
        Fixture { runtime, sim }
    })
}

fn client(sim: &SimHandle, requests_per_minute: u32) -> AtlassianClient {
    let mut config = ClientConfig::new(sim.org_id(), &sim.base_url()).unwrap();
    config.budget.org_requests_per_minute = requests_per_minute;
    config.budget.concurrency = 4;
    let credentials = Credentials { org_api_key: Secret::new(sim.api_key()), site_user: None };
    AtlassianClient::new(config, &credentials).unwrap()
}

fn take(fixture: &Fixture, requests_per_minute: u32) -> DirectorySnapshot {
    let client = client(&fixture.sim, requests_per_minute);
    fixture.runtime.block_on(client.snapshot(jiff::Timestamp::UNIX_EPOCH)).expect("snapshot")
}

/// Pages a complete listing needs at the largest page size: the minimum number of calls.
fn minimum_calls(sim: &SimHandle) -> u64 {
    let limit = u64::from(PAGE_LIMIT);
    sim.with_state(|s| {
        let directories = s.directories.len() as u64;
        let mut pages = directories.div_ceil(limit).max(1);
        for d in 0..s.directories.len() {
            let members = |managed: bool| {
                s.users
                    .iter()
                    .filter(|u| u.is_member() && usize::from(u.directory) == d && u.managed == managed)
                    .count() as u64
            };
            let groups = s.groups.iter().filter(|g| usize::from(g.directory) == d).count() as u64;
            // Users are listed in two parts (managed, unmanaged): at most one page more than one
            // listing would take, and the calls counted are the ones a complete listing needs.
            pages += members(true).div_ceil(limit).max(1) + members(false).div_ceil(limit).max(1);
            pages += groups.div_ceil(limit).max(1) + groups;
        }
        pages
    })
}

/// Heap and inline bytes the snapshot holds (capacities, not lengths: what is really allocated).
fn snapshot_bytes(snap: &DirectorySnapshot) -> (usize, usize) {
    let string = |s: &String| s.capacity();
    let users: usize = snap.accounts.capacity() * size_of::<Account>()
        + snap
            .accounts
            .iter()
            .map(|u| {
                string(&u.account_id)
                    + u.email.as_ref().map_or(0, string)
                    + string(&u.name)
                    + u.memberships.capacity() * size_of::<Membership>()
                    + u.memberships
                        .iter()
                        .map(|m| {
                            m.product_access.capacity() * size_of::<ProductActivity>()
                                + m.groups.capacity() * size_of::<u32>()
                        })
                        .sum::<usize>()
            })
            .sum::<usize>();
    let groups: usize = snap.groups.capacity() * size_of::<Group>()
        + snap.groups.iter().map(|g| string(&g.id) + string(&g.name) + g.grants.capacity()).sum::<usize>();
    (users, groups)
}

fn report_figures(requests_per_minute: u32) {
    let fixture = fixture();
    let started = Instant::now();
    let snap = take(fixture, requests_per_minute);
    let wall = started.elapsed();
    let minimum = minimum_calls(&fixture.sim);
    let interval = Duration::from_secs(60) / requests_per_minute;
    // The first call goes at once; every other waits its slot.
    let floor = interval * (minimum.saturating_sub(1) as u32);
    let (user_bytes, group_bytes) = snapshot_bytes(&snap);
    let users = snap.accounts.len().max(1);
    println!(
        "snapshot of {} users in {} directories, {} groups, budget {} requests/min",
        snap.accounts.len(),
        snap.directories.len(),
        snap.groups.len(),
        requests_per_minute
    );
    println!(
        "  calls: {} made, {} minimum (pages needed) -> {:.3}x   (pages received: {})",
        snap.report.calls,
        minimum,
        snap.report.calls as f64 / minimum as f64,
        snap.report.pages
    );
    println!("  wall time: {:.2?}, floor {:.2?} -> {:.3}x", wall, floor, wall.as_secs_f64() / floor.as_secs_f64());
    println!(
        "  memory: {:.0} bytes per user ({} B inline + heap), groups {} B in all",
        user_bytes as f64 / users as f64,
        size_of::<Account>(),
        group_bytes
    );
    if !snap.report.notes.is_empty() {
        println!("  notes: {:?}", snap.report.notes);
    }
}

fn main() {
    for budget in BUDGETS {
        report_figures(budget);
    }
    divan::main();
}

#[divan::bench(sample_count = 2, sample_size = 1)]
fn snapshot_100k_users(bencher: divan::Bencher) {
    let fixture = fixture();
    bencher.bench(|| take(fixture, TIMED_BUDGET).accounts.len());
}
