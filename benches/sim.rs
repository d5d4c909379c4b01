//! Simulator figures: resident memory with 100,000 generated users (target < 200 MB) and the
//! server-side time of a 100-user `users/search` page (target < 5 ms), plus generation time and an
//! HTTP round trip for context. Run: `cargo bench --bench sim`.

use std::sync::LazyLock;

use seatwarden::sim::{GenerateSpec, SimConfig, SimState, Simulator, generate, users_search_page};

const USERS: u32 = 100_000;

fn spec() -> GenerateSpec {
    GenerateSpec {
        users: USERS,
        seed: 7,
        org_id: "sim-org".into(),
        directories: 1,
        now: "2026-09-01T12:00:00Z".parse().unwrap(),
        ..GenerateSpec::default()
    }
}

static STATE: LazyLock<SimState> = LazyLock::new(|| generate(&spec()));

/// A cursor in the middle of the listing, so a page does real scanning.
static MID_CURSOR: LazyLock<String> = LazyLock::new(|| {
    let mut body = br#"{"limit": 100, "expand": ["productAccess", "groups", "platformRoles"]}"#.to_vec();
    for _ in 0..500 {
        let page: serde_json::Value = serde_json::from_slice(&users_search_page(&STATE, None, &body).unwrap()).unwrap();
        body = serde_json::to_vec(&serde_json::json!({"cursor": page["links"]["next"]})).unwrap();
    }
    String::from_utf8(body).unwrap()
});

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    seatwarden::tls::install_crypto_provider();
    // The memory figure: a whole simulator serving 100,000 users (state, index, server), measured
    // before any benchmark runs.
    let before = rss_kib("VmRSS:");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let handle = runtime.block_on(async {
        let config = SimConfig { users: USERS, now: spec().now, frozen: true, ..SimConfig::default() };
        Simulator::start(config, "127.0.0.1:0").await.unwrap()
    });
    let after = rss_kib("VmRSS:");
    eprintln!(
        "sim memory: {USERS} users served with {:.1} MB resident ({:.1} MB above the empty process; peak {:.1} MB)",
        after as f64 / 1024.0,
        (after - before) as f64 / 1024.0,
        rss_kib("VmHWM:") as f64 / 1024.0
    );
    HANDLE.set(Some((runtime, handle))).ok();
    LazyLock::force(&STATE);
    LazyLock::force(&MID_CURSOR);
    divan::main();
}

static HANDLE: std::sync::OnceLock<Option<(tokio::runtime::Runtime, seatwarden::sim::SimHandle)>> =
    std::sync::OnceLock::new();

/// The server-side work of the first 100-user page, fully expanded.
#[divan::bench]
fn users_search_first_page_100(bencher: divan::Bencher) {
    let body = br#"{"limit": 100, "expand": ["productAccess", "groups", "platformRoles"]}"#;
    bencher.bench(|| users_search_page(divan::black_box(&STATE), None, body).unwrap());
}

/// A 100-user page in the middle of the listing (from a cursor).
#[divan::bench]
fn users_search_mid_page_100(bencher: divan::Bencher) {
    let body = MID_CURSOR.as_bytes();
    bencher.bench(|| users_search_page(divan::black_box(&STATE), None, body).unwrap());
}

/// A filtered page: active managed users of one email domain.
#[divan::bench]
fn users_search_filtered_page_100(bencher: divan::Bencher) {
    let body = br#"{"limit": 100, "status": ["active"], "claimStatus": "managed", "emailDomains": ["acme-labs.example"], "expand": ["productAccess"]}"#;
    bencher.bench(|| users_search_page(divan::black_box(&STATE), None, body).unwrap());
}

/// One 100-user page over HTTP on 127.0.0.1, client parsing included (context for the figure above).
#[divan::bench(sample_count = 50)]
fn http_round_trip_page_100(bencher: divan::Bencher) {
    let Some(Some((runtime, handle))) = HANDLE.get() else { return };
    let client = reqwest::Client::new();
    let url = format!("{}/admin/v2/orgs/sim-org/directories/-/users/search", handle.base_url());
    bencher.bench(|| {
        runtime.block_on(async {
            let r = client
                .post(&url)
                .bearer_auth("sim-key")
                .body(r#"{"limit": 100, "expand": ["productAccess", "groups", "platformRoles"]}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap()
        })
    });
}

/// Generating a 100,000-user organization.
#[divan::bench(sample_count = 5)]
fn generate_100k() -> SimState {
    generate(&spec())
}
