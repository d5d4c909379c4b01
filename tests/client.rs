//! The Atlassian client against the in-process simulator over real HTTP on 127.0.0.1: complete
//! snapshots, faults that never yield a partial one, typed idempotent writes, pacing measured on the
//! simulator's clock, and secrets that never leak into errors, Debug output or logs.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use seatwarden::atlassian::config::SiteConfig;
use seatwarden::atlassian::observer::outcome;
use seatwarden::atlassian::{
    AtlassianClient, AtlassianError, ClientConfig, ClientObserver, Credentials, Operation, RefusalReason, Secret,
    SiteUser, WriteOutcome,
};
use seatwarden::crd::MembershipApi;
use seatwarden::product::Product;
use seatwarden::sim::state::{
    AccountStatus, Membership, SimAccountType, SimManagementSource, SimState, SimUser, v2_status,
};
use seatwarden::sim::{Faults, SimConfig, SimHandle, SimOutcome, Simulator};
use seatwarden::snapshot::{
    AccountType, DirectorySnapshot, DirectoryUser, ManagementSource, ProductActivity, UserStatus,
};

const KEY: &str = "sk-SEATWARDEN-TEST-7f3a9c1e5b";

async fn sim(users: u32, directories: u16, tweak: impl FnOnce(&mut SimConfig)) -> SimHandle {
    // Whole seconds: generated timestamps are whole-second offsets from it and survive the API's
    // millisecond precision; real time, so the server's Date header and its rate-limit reset agree.
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
    let mut config = SimConfig { users, directories, api_key: KEY.to_owned(), now, ..SimConfig::default() };
    tweak(&mut config);
    Simulator::start(config, "127.0.0.1:0").await.expect("the simulator starts")
}

/// Fast pacing and sub-second waits, so tests stay short; the logic is the production one.
fn config_for(sim: &SimHandle) -> ClientConfig {
    let mut config = ClientConfig::new(sim.org_id(), &sim.base_url()).unwrap();
    config.budget.org_requests_per_minute = 600_000;
    config.budget.concurrency = 4;
    config.budget.timeout = Duration::from_secs(10);
    config.retry.max_attempts = 8;
    config.retry.backoff_base = Duration::from_millis(2);
    config.retry.backoff_cap = Duration::from_millis(20);
    config.retry.retry_after_floor = Duration::from_millis(5);
    config.retry.retry_after_cap = Duration::from_millis(20);
    config.api_key_owner = sim.with_state(|s| s.api_key_owner.clone());
    config
}

fn credentials(key: &str) -> Credentials {
    Credentials { org_api_key: Secret::new(key), site_user: None }
}

fn client(sim: &SimHandle) -> AtlassianClient {
    AtlassianClient::new(config_for(sim), &credentials(KEY)).unwrap()
}

fn taken_at() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

/// The snapshot the simulator's state implies, built independently from the client's code path.
fn expected_users(state: &SimState) -> Vec<DirectoryUser> {
    let mut users: Vec<DirectoryUser> = state
        .users
        .iter()
        .filter(|u| u.is_directory_user())
        .map(|u: &SimUser| {
            let mut product_access: Vec<ProductActivity> = Vec::new();
            for inst in state.access_of(u) {
                // Products seatwarden does not model are dropped by the client today.
                let Some(product) = state.products[inst as usize].product.known() else { continue };
                let last_active = u.last_active_on(inst);
                match product_access.iter_mut().find(|p| p.product == product) {
                    Some(p) => p.last_active = p.last_active.max(last_active),
                    None => product_access.push(ProductActivity { product: product.into(), last_active }),
                }
            }
            product_access.sort_by_key(|p| p.product);
            let status = match v2_status(u) {
                "active" if product_access.iter().all(|p| p.last_active.is_none()) => UserStatus::InvitedNeverActive,
                "active" => UserStatus::Active,
                "suspended" => UserStatus::Suspended,
                "deactivated" => UserStatus::Deactivated,
                other => panic!("unexpected status {other}"),
            };
            DirectoryUser {
                account_id: u.account_id.clone(),
                email: u.email.clone(),
                name: u.name.clone(),
                account_type: match u.account_type {
                    SimAccountType::Atlassian => AccountType::Atlassian,
                    SimAccountType::App => AccountType::App,
                    SimAccountType::Customer => AccountType::Customer,
                },
                managed: u.managed,
                status,
                added_to_org: Some(u.added_to_org),
                product_access,
                groups: Vec::new(), // compared by id below
                org_admin: u.org_admin,
                site_admin: state.is_site_admin(u),
                management_source: match u.management_source {
                    Some(SimManagementSource::Invited) => ManagementSource::Invited,
                    Some(SimManagementSource::Synced) => ManagementSource::Synced,
                    None => ManagementSource::Unknown,
                },
                directory: u.directory,
            }
        })
        .collect();
    users.sort_by(|a, b| a.account_id.cmp(&b.account_id).then(a.directory.cmp(&b.directory)));
    users
}

/// Asserts the snapshot equals the simulator's state: every user, every field, every group.
fn assert_matches_state(snap: &DirectorySnapshot, sim: &SimHandle) {
    sim.with_state(|state| {
        let expected = expected_users(state);
        assert_eq!(snap.directory_users().len(), expected.len(), "user count");
        for (got, want) in snap.directory_users().iter().zip(&expected) {
            let mut got_cmp = got.clone();
            got_cmp.groups = Vec::new();
            // The simulator writes whole-second timestamps; the client keeps what it is given.
            assert_eq!(got_cmp, *want, "user {}", want.account_id);
            let sim_user = state.user(&got.account_id).unwrap();
            let got_groups: BTreeSet<&str> = got.groups.iter().map(|g| snap.groups[*g as usize].id.as_str()).collect();
            let want_groups: BTreeSet<&str> =
                sim_user.groups.iter().map(|g| state.groups[*g as usize].id.as_str()).collect();
            assert_eq!(got_groups, want_groups, "groups of {}", got.account_id);
        }
        let counts = state.member_counts();
        assert_eq!(snap.groups.len(), state.groups.len(), "group count");
        for (i, g) in state.groups.iter().enumerate() {
            let (_, got) = snap.groups.iter().enumerate().find(|(_, x)| x.id == g.id).expect("group listed");
            assert_eq!(got.name, g.name);
            assert_eq!(got.idp_synced, g.idp_synced, "idp flag of {}", g.name);
            assert_eq!(got.member_count, counts[i], "member count of {}", g.name);
            assert_eq!(got.site_admin, g.site_admin_of.is_some(), "site-admin flag of {}", g.name);
            assert_eq!(usize::from(got.directory), usize::from(g.directory));
            let mut grants: Vec<Product> =
                g.grants.iter().filter_map(|i| state.products[*i as usize].product.known()).collect();
            grants.sort();
            grants.dedup();
            assert_eq!(got.grants, grants, "grants of {}", g.name);
        }
        let dirs: Vec<&str> = snap.directories.iter().map(|d| d.id.as_str()).collect();
        let want_dirs: Vec<&str> = state.directories.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(dirs, want_dirs);
        let activity: BTreeSet<seatwarden::product::ProductKey> = expected
            .iter()
            .flat_map(|u| &u.product_access)
            .filter(|p| p.last_active.is_some())
            .map(|p| p.product)
            .collect();
        assert_eq!(snap.activity_products, activity);
        assert_eq!(snap.api_key_owner, state.api_key_owner);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_of_20000_users_equals_the_simulator_state() {
    let sim = sim(20_000, 2, |_| {}).await;
    let before = sim.request_count();
    let snap = client(&sim).snapshot(taken_at()).await.expect("snapshot");
    assert_eq!(snap.taken_at, taken_at(), "taken_at is the caller's, not a clock read");
    assert_matches_state(&snap, &sim);
    assert!(
        snap.directory_users().len() > 15_000,
        "most generated users are members: {}",
        snap.directory_users().len()
    );
    let made = sim.request_count() - before;
    assert_eq!(snap.report.calls, made, "the report counts every call the simulator saw");
    assert_eq!(snap.report.calls, snap.report.pages, "no faults: one call per page, no retries");
    assert_eq!(snap.report.v1_fallback_calls + snap.report.last_active_fallback_calls, 0);
    // Users pages: per directory, managed and unmanaged users are listed concurrently, each at the
    // API's maximum page size: ceil(n / 100) per part.
    let user_pages: u64 = sim.with_state(|s| {
        let mut pages = 0;
        for d in 0..2 {
            for managed in [true, false] {
                let n = s
                    .users
                    .iter()
                    .filter(|u| u.is_directory_user() && u.directory == d && u.managed == managed)
                    .count() as u64;
                pages += n.div_ceil(100).max(1);
            }
        }
        pages
    });
    let log = sim.request_log();
    let searched = log.iter().filter(|r| r.path.ends_with("/users/search")).count() as u64;
    assert_eq!(searched, user_pages, "one users/search call per page of 100");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storms_of_429_5xx_and_cut_bodies_are_retried_to_a_whole_snapshot() {
    let faults = Faults::parse("429=0.15,500=0.05,503=0.05,malformed=0.03,latency=1ms").unwrap();
    let sim = sim(1_500, 2, |c| c.faults = faults).await;
    let observer = Arc::new(Recorder::default());
    let client = AtlassianClient::with_observer(config_for(&sim), &credentials(KEY), observer.clone()).unwrap();
    let snap = client.snapshot(taken_at()).await.expect("retries carry the snapshot through the storm");
    sim.set_faults(Faults::none());
    assert_matches_state(&snap, &sim);
    assert!(snap.report.calls > snap.report.pages, "some calls were retried: {:?}", snap.report);
    assert!(snap.report.notes.iter().any(|n| n.contains("retried")), "{:?}", snap.report.notes);
    // Retry-After: 1 is longer than this test's 20 ms cap: cut, and said so.
    assert!(snap.report.notes.iter().any(|n| n.contains("asked to wait 1s; capped")), "{:?}", snap.report.notes);
    let seen = observer.seen.lock().unwrap();
    assert!(seen.retries > 0 && seen.rate_limit_waits > 0, "hooks saw retries and waits");
    assert_eq!(seen.requests as u64, snap.report.calls, "one on_request per attempt");
}

/// At a low request budget the observer hears of the waits for it (a progress bar says them), as
/// long as the budget explains and no shorter than worth telling; at a generous one, of none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_the_request_budget_reach_the_observer() {
    let sim = sim(30, 1, |_| {}).await;
    let mut config = config_for(&sim);
    config.budget.org_requests_per_minute = 150; // 0.4 s apart; four in flight: up to 1.6 s each
    let observer = Arc::new(Recorder::default());
    let client = AtlassianClient::with_observer(config, &credentials(KEY), observer.clone()).unwrap();
    let snap = client.snapshot(taken_at()).await.expect("snapshot");
    let seen = std::mem::take(&mut *observer.seen.lock().unwrap());
    assert!(!seen.budget_waits.is_empty(), "{} calls at 150 a minute, none waited: {seen:?}", snap.report.calls);
    let most = Duration::from_millis(400) * 4 + Duration::from_millis(100);
    assert!(seen.budget_waits.iter().all(|w| *w >= Duration::from_secs(1) && *w <= most), "{:?}", seen.budget_waits);
    assert_eq!(seen.rate_limit_waits, 0, "waiting for our own budget is no rate limit");

    let observer = Arc::new(Recorder::default());
    let client = AtlassianClient::with_observer(config_for(&sim), &credentials(KEY), observer.clone()).unwrap();
    client.snapshot(taken_at()).await.expect("snapshot");
    assert!(observer.seen.lock().unwrap().budget_waits.is_empty());
}

#[tokio::test]
async fn a_page_failing_mid_listing_fails_the_whole_snapshot_naming_call_and_page() {
    let sim = sim(1_000, 1, |c| c.faults = Faults { fail_page: Some(3), ..Faults::default() }).await;
    let mut config = config_for(&sim);
    config.retry.max_attempts = 3;
    let err = AtlassianClient::new(config, &credentials(KEY)).unwrap().snapshot(taken_at()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AtlassianError::Status { status: 500, attempts: 3, .. }), "{err:?}");
    assert!(text.contains("users.search") && text.contains("page 3"), "{text}");
}

#[tokio::test]
async fn a_body_that_never_parses_fails_the_snapshot_naming_the_call() {
    let sim = sim(300, 1, |c| c.faults = Faults { malformed: 1.0, ..Faults::default() }).await;
    let mut config = config_for(&sim);
    config.retry.max_attempts = 2;
    let err = AtlassianClient::new(config, &credentials(KEY)).unwrap().snapshot(taken_at()).await.unwrap_err();
    assert!(matches!(err, AtlassianError::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("directories.list page 1"), "{err}");
}

#[tokio::test]
async fn slow_answers_time_out_and_fail_the_snapshot() {
    let sim = sim(100, 1, |c| c.faults = Faults { latency: Duration::from_millis(400), ..Faults::default() }).await;
    let mut config = config_for(&sim);
    config.budget.timeout = Duration::from_millis(100);
    config.retry.max_attempts = 2;
    let err = AtlassianClient::new(config, &credentials(KEY)).unwrap().snapshot(taken_at()).await.unwrap_err();
    assert!(matches!(err, AtlassianError::Timeout { attempts: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("directories.list page 1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_v2_lacks_activity_the_fallbacks_fill_it_counted_and_noted() {
    let sim = sim(1_200, 1, |_| {}).await;
    let mut config = config_for(&sim);
    config.fallbacks.v2_product_access = false;
    config.fallbacks.max_last_active_calls = 10_000;
    let snap = AtlassianClient::new(config.clone(), &credentials(KEY)).unwrap().snapshot(taken_at()).await.unwrap();
    let unmanaged = snap.directory_users().iter().filter(|u| !u.managed).count() as u64;
    assert!(unmanaged > 0 && snap.directory_users().iter().any(|u| u.managed));
    assert!(snap.report.v1_fallback_calls > 0, "{:?}", snap.report);
    assert_eq!(snap.report.last_active_fallback_calls, unmanaged, "one last-active-dates call per external user");
    assert_eq!(
        snap.report.calls,
        snap.report.pages + snap.report.v1_fallback_calls + snap.report.last_active_fallback_calls,
        "every call is accounted for"
    );
    assert!(snap.report.notes.iter().any(|n| n.contains("v1 users list")), "{:?}", snap.report.notes);
    assert!(snap.report.notes.iter().any(|n| n.contains("last-active-dates")), "{:?}", snap.report.notes);
    sim.with_state(|state| {
        let expected = expected_users(state);
        assert_eq!(snap.directory_users().len(), expected.len());
        for (got, want) in snap.directory_users().iter().zip(&expected) {
            assert_eq!(got.status, want.status, "status of {}", want.account_id);
            if got.managed {
                // The v1 list has the same date-times and access entries as v2.
                assert_eq!(got.product_access, want.product_access, "activity of {}", want.account_id);
            } else {
                // last-active-dates has dates only: read as the end of that day, never earlier.
                let day_end = want.last_active_any().map(|t| {
                    let date = t.to_zoned(jiff::tz::TimeZone::UTC).date();
                    date.at(23, 59, 59, 0).to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp()
                });
                assert_eq!(got.last_active_any(), day_end, "activity of {}", want.account_id);
            }
        }
    });

    // Too many users to read one by one: the snapshot fails rather than guess.
    config.fallbacks.max_last_active_calls = 3;
    let err = AtlassianClient::new(config, &credentials(KEY)).unwrap().snapshot(taken_at()).await.unwrap_err();
    assert!(matches!(err, AtlassianError::Incomplete { .. }), "{err:?}");
    assert!(err.to_string().contains("limit of 3"), "{err}");
}

#[tokio::test]
async fn the_credential_self_test_names_a_wrong_org() {
    let sim = sim(50, 1, |_| {}).await;
    client(&sim).check_org().await.expect("right org, right key");
    let mut config = config_for(&sim);
    config.org_id = "not-our-org".into();
    let err = AtlassianClient::new(config, &credentials(KEY)).unwrap().check_org().await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err}");
    assert!(err.to_string().contains("org.read"), "{err}");
}

#[tokio::test]
async fn configured_directories_only_and_unknown_ones_are_named() {
    let sim = sim(600, 3, |_| {}).await;
    let dirs = sim.directory_ids();
    let mut config = config_for(&sim);
    config.directories = vec![dirs[1].clone()];
    config.split_user_listing = false; // one sequential listing: same users
    let snap = AtlassianClient::new(config, &credentials(KEY)).unwrap().snapshot(taken_at()).await.unwrap();
    assert_eq!(snap.directories.len(), 1);
    assert_eq!(snap.directories[0].id, dirs[1]);
    let want = sim.with_state(|s| s.users.iter().filter(|u| u.is_directory_user() && u.directory == 1).count());
    assert_eq!(snap.directory_users().len(), want);
    assert!(snap.directory_users().iter().all(|u| u.directory == 0), "indices are into the snapshot's directories");

    let mut config = config_for(&sim);
    config.directories = vec!["no-such-directory".into()];
    let err = AtlassianClient::new(config, &credentials(KEY)).unwrap().snapshot(taken_at()).await.unwrap_err();
    assert!(err.to_string().contains("directories") && err.to_string().contains("no-such-directory"), "{err}");
}

/// A user of the given shape, from the simulator's state.
fn pick(sim: &SimHandle, pred: impl Fn(&SimState, &SimUser) -> bool) -> (String, String) {
    sim.with_state(|s| {
        let u = s.users.iter().find(|u| pred(s, u)).expect("the generated org has such a user");
        (s.directories[u.directory as usize].id.clone(), u.account_id.clone())
    })
}

fn applied(sim: &SimHandle, operation: &str, account: &str) -> usize {
    sim.events()
        .iter()
        .filter(|e| {
            e.operation == operation && e.account_id.as_deref() == Some(account) && e.outcome == SimOutcome::Applied
        })
        .count()
}

#[tokio::test]
async fn writes_have_typed_outcomes_and_repeat_as_already_so() {
    let sim = sim(2_000, 1, |_| {}).await;
    let client = client(&sim);
    let active = |s: &SimState, u: &SimUser| {
        u.account_type == SimAccountType::Atlassian
            && u.account_status == AccountStatus::Active
            && u.membership == Membership::Active
            && !s.access_of(u).is_empty()
    };
    let (dir, id) = pick(&sim, active);

    // Suspend, then again with the check before the write: already so, no second call.
    assert_eq!(client.suspend(&dir, &id, None).await, WriteOutcome::Done);
    let reading = client.read_user(&dir, &id).await.unwrap();
    assert_eq!(reading.as_ref().unwrap().user.status, UserStatus::Suspended);
    let calls = sim.request_count();
    assert_eq!(client.suspend(&dir, &id, Some(&reading)).await, WriteOutcome::AlreadySo);
    assert_eq!(sim.request_count(), calls, "already so per the reading: no call");
    // Without a reading the call is made; Atlassian answers 204 and nothing changes.
    assert!(client.suspend(&dir, &id, None).await.is_converged());
    assert_eq!(applied(&sim, "user.suspend", &id), 1, "applied once");
    assert_eq!(client.restore(&dir, &id, None).await, WriteOutcome::Done);
    let reading = client.read_user(&dir, &id).await.unwrap();
    assert_eq!(client.restore(&dir, &id, Some(&reading)).await, WriteOutcome::AlreadySo);

    // Group membership, both ways.
    let (group, group_name) = sim.with_state(|s| {
        let u = s.user(&id).unwrap();
        let g = &s.groups[u.groups.iter().copied().find(|g| !s.groups[*g as usize].idp_synced).unwrap() as usize];
        (g.id.clone(), g.name.clone())
    });
    assert_eq!(client.remove_from_group(&dir, &group, &id, None).await, WriteOutcome::Done, "{group_name}");
    let reading = client.read_user(&dir, &id).await.unwrap();
    assert!(!reading.as_ref().unwrap().in_group(&group));
    assert_eq!(client.remove_from_group(&dir, &group, &id, Some(&reading)).await, WriteOutcome::AlreadySo);
    assert_eq!(client.add_to_group(&dir, &group, &id, None).await, WriteOutcome::Done);
    let reading = client.read_user(&dir, &id).await.unwrap();
    assert_eq!(client.add_to_group(&dir, &group, &id, Some(&reading)).await, WriteOutcome::AlreadySo);

    // Remove from the directory; again is already so, with or without a reading.
    assert_eq!(client.remove_from_directory(&dir, &id, None).await, WriteOutcome::Done);
    let reading = client.read_user(&dir, &id).await.unwrap();
    assert!(reading.is_none(), "gone from the directory");
    assert_eq!(client.remove_from_directory(&dir, &id, Some(&reading)).await, WriteOutcome::AlreadySo);
    assert_eq!(client.remove_from_directory(&dir, &id, None).await, WriteOutcome::AlreadySo, "404 ADMIN-404-8");
}

#[tokio::test]
async fn refusals_are_typed_with_atlassians_message() {
    let sim = sim(2_000, 1, |_| {}).await;
    let client = client(&sim);

    // IdP-synced group.
    let (dir, id, synced_group) = sim.with_state(|s| {
        let g = s.groups.iter().find(|g| g.idp_synced).expect("a synced group");
        let u = s
            .users
            .iter()
            .find(|u| {
                u.is_directory_user()
                    && u.directory == g.directory
                    && !u.groups.contains(&(s.group_idx(&g.id).unwrap()))
            })
            .unwrap();
        (s.directories[u.directory as usize].id.clone(), u.account_id.clone(), g.id.clone())
    });
    match client.add_to_group(&dir, &synced_group, &id, None).await {
        WriteOutcome::Refused { reason: RefusalReason::IdpSynced, message } => {
            assert!(message.contains("identity provider"), "{message}")
        }
        other => panic!("expected an IdP refusal, got {other:?}"),
    }

    // License limit: a license group whose product is full.
    let (group, product) = sim.with_state_mut(|s| {
        let gi = s.groups.iter().position(|g| !g.idp_synced && !g.grants.is_empty()).unwrap();
        let inst = s.groups[gi].grants[0];
        s.products[inst as usize].license_limit = s.seats_used(inst);
        (s.groups[gi].id.clone(), s.products[inst as usize].product.known().expect("a modelled product"))
    });
    let (dir, id) = pick(&sim, |s, u| {
        u.account_type == SimAccountType::Atlassian
            && u.account_status == AccountStatus::Active
            && u.membership == Membership::Active
            && s.groups.iter().position(|g| g.id == group).is_some_and(|gi| {
                s.groups[gi].directory == u.directory && !s.access_of(u).contains(&s.groups[gi].grants[0])
            })
    });
    match client.add_to_group(&dir, &group, &id, None).await {
        WriteOutcome::Refused { reason: RefusalReason::LicenseLimit, message } => {
            assert!(message.contains(product.display_name()), "{message}")
        }
        other => panic!("expected a license refusal, got {other:?}"),
    }

    // Deactivate: external accounts are not managed; IdP-managed ones are refused; managed invited ones work.
    let (_, external) = pick(&sim, |_, u| u.is_member() && !u.managed && u.account_type == SimAccountType::Atlassian);
    assert!(
        matches!(
            client.deactivate(&external, None, None).await,
            WriteOutcome::Refused { reason: RefusalReason::NotManaged, .. }
        ),
        "external account"
    );
    let (_, synced) =
        pick(&sim, |_, u| u.is_member() && u.managed && u.management_source == Some(SimManagementSource::Synced));
    assert!(matches!(
        client.deactivate(&synced, None, None).await,
        WriteOutcome::Refused { reason: RefusalReason::IdpSynced, .. }
    ));
    let (dir, managed) = pick(&sim, |_, u| {
        u.is_member()
            && u.managed
            && u.account_type == SimAccountType::Atlassian
            && u.account_status == AccountStatus::Active
            && u.management_source != Some(SimManagementSource::Synced)
    });
    assert_eq!(client.deactivate(&managed, Some("inactive for 180 days"), None).await, WriteOutcome::Done);
    let reading = client.read_user(&dir, &managed).await.unwrap();
    assert_eq!(reading.as_ref().unwrap().user.status, UserStatus::Deactivated);
    assert_eq!(client.deactivate(&managed, None, Some(&reading)).await, WriteOutcome::AlreadySo);
    assert_eq!(client.enable(&managed, Some(&reading)).await, WriteOutcome::Done);
    assert_eq!(applied(&sim, "user.deactivate", &managed), 1);
}

#[tokio::test]
async fn memberships_go_through_jira_or_confluence_when_configured() {
    const SITE_TOKEN: &str = "site-TOKEN-5d1e0a7c93";
    let sim = sim(600, 1, |c| c.site_token = Some(SITE_TOKEN.to_owned())).await;
    for (api, api_name) in [(MembershipApi::Jira, "jira"), (MembershipApi::Confluence, "confluence")] {
        let mut config = config_for(&sim);
        config.membership_api = api;
        config.budget.site_requests_per_minute = 600_000;
        config.sites.push(SiteConfig {
            name: "sim".into(),
            url: reqwest::Url::parse(&sim.base_url()).unwrap(),
            products: vec![Product::JiraSoftware, Product::Confluence],
        });
        let creds = Credentials {
            org_api_key: Secret::new(KEY),
            site_user: Some(SiteUser { email: sim.site_email(), api_token: Secret::new(SITE_TOKEN) }),
        };
        let client = AtlassianClient::new(config, &creds).unwrap();
        let (dir, id, group) = sim.with_state(|s| {
            let u = s
                .users
                .iter()
                .find(|u| {
                    u.membership == Membership::Active
                        && u.account_type == SimAccountType::Atlassian
                        && u.groups.iter().any(|g| !s.groups[*g as usize].idp_synced)
                })
                .unwrap();
            let g = u.groups.iter().find(|g| !s.groups[**g as usize].idp_synced).unwrap();
            (s.directories[u.directory as usize].id.clone(), u.account_id.clone(), s.groups[*g as usize].id.clone())
        });
        assert_eq!(client.remove_from_group(&dir, &group, &id, None).await, WriteOutcome::Done, "{api_name}");
        assert!(!client.read_user(&dir, &id).await.unwrap().unwrap().in_group(&group));
        assert_eq!(client.add_to_group(&dir, &group, &id, None).await, WriteOutcome::Done, "{api_name}");
        assert!(client.read_user(&dir, &id).await.unwrap().unwrap().in_group(&group));
        let events = sim.events();
        assert!(
            events.iter().any(|e| e.api == api_name && e.account_id.as_deref() == Some(id.as_str())),
            "the write went through {api_name}"
        );
    }
}

#[tokio::test]
async fn invite_returns_the_account() {
    let sim = sim(300, 1, |_| {}).await;
    let client = client(&sim);
    let group = sim.with_state(|s| s.groups.iter().find(|g| !g.idp_synced).unwrap().id.clone());
    let result = client
        .invite(&seatwarden::atlassian::Invitation {
            email: "new.person@example.org".into(),
            groups: vec![group.clone()],
            ..Default::default()
        })
        .await;
    assert_eq!(result.outcome, WriteOutcome::Done, "{result:?}");
    let id = result.account_id.expect("the invite names the account");
    let dir = sim.directory_ids()[0].clone();
    let reading = client.read_user(&dir, &id).await.unwrap().expect("invited user is in the directory");
    assert!(reading.in_group(&group));
}

#[tokio::test]
async fn a_write_with_an_unknown_outcome_is_re_read_before_retrying() {
    // Every response is a 500: the suspend may or may not have happened. The client re-reads before
    // each retry; reads fail too, so it gives up and says the write may have been applied.
    let sim = sim(300, 1, |_| {}).await;
    let (dir, id) =
        pick(&sim, |_, u| u.membership == Membership::Active && u.account_type == SimAccountType::Atlassian);
    sim.set_faults(Faults { rate_500: 1.0, ..Faults::default() });
    let mut config = config_for(&sim);
    config.retry.max_attempts = 2;
    let client = AtlassianClient::new(config, &credentials(KEY)).unwrap();
    match client.suspend(&dir, &id, None).await {
        WriteOutcome::Failed { maybe_applied: true, status: Some(500), .. } => {}
        other => panic!("expected an unknown-outcome failure, got {other:?}"),
    }
    let log = sim.request_log();
    assert!(log.iter().any(|r| r.path.ends_with("/users/search")), "the state was re-read");
    assert_eq!(log.iter().filter(|r| r.path.ends_with("/suspend")).count(), 1, "not retried blindly");

    // A third of the answers are 500s: every suspend ends Done (directly, or found in place by the
    // re-read), each applied exactly once.
    sim.set_faults(Faults { rate_500: 0.3, ..Faults::default() });
    let client = AtlassianClient::new(config_for(&sim), &credentials(KEY)).unwrap();
    let targets: Vec<(String, String)> = sim.with_state(|s| {
        s.users
            .iter()
            .filter(|u| u.membership == Membership::Active && u.account_id != id)
            .take(10)
            .map(|u| (s.directories[u.directory as usize].id.clone(), u.account_id.clone()))
            .collect()
    });
    for (dir, account) in &targets {
        assert_eq!(client.suspend(dir, account, None).await, WriteOutcome::Done, "{account}");
    }
    sim.set_faults(Faults::none());
    for (_, account) in &targets {
        assert_eq!(applied(&sim, "user.suspend", account), 1, "{account} suspended once");
        assert!(sim.with_state(|s| s.user(account).unwrap().membership == Membership::Suspended));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_holds_on_the_simulators_clock() {
    let sim = sim(1_500, 3, |_| {}).await;
    let mut config = config_for(&sim);
    config.budget.org_requests_per_minute = 1_200; // one slot every 50 ms, 20 a second
    let snap = AtlassianClient::new(config, &credentials(KEY)).unwrap().snapshot(taken_at()).await.unwrap();
    let times: Vec<Timestamp> = sim.request_log().iter().map(|r| r.time).collect();
    assert_eq!(times.len() as u64, snap.report.calls);
    assert!(times.len() >= 20, "enough calls to measure: {}", times.len());
    // A request leaves at its slot or later (a new connection can delay it), so any second holds
    // at most 20 slots plus what a delay can push into it: 20 % margin.
    for (i, t) in times.iter().enumerate() {
        let in_second =
            times[i..].iter().take_while(|x| x.duration_since(*t) < jiff::SignedDuration::from_secs(1)).count();
        assert!(in_second <= 24, "{in_second} requests within one second from request {i}");
    }
    let minute_rate = times.len() as f64 / times.last().unwrap().duration_since(times[0]).as_secs_f64() * 60.0;
    assert!(minute_rate <= 1_200.0 * 1.05, "rate {minute_rate:.0}/min over budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_calls_in_flight_than_configured() {
    // Every answer takes 100 ms: with two permits, no 100 ms span sees a third request arrive.
    let sim = sim(300, 3, |c| c.faults = Faults { latency: Duration::from_millis(100), ..Faults::default() }).await;
    let mut config = config_for(&sim);
    config.budget.concurrency = 2;
    let snap = AtlassianClient::new(config, &credentials(KEY)).unwrap().snapshot(taken_at()).await.unwrap();
    assert_eq!(snap.directories.len(), 3);
    let times: Vec<Timestamp> = sim.request_log().iter().map(|r| r.time).collect();
    let mut most = 0;
    for (i, t) in times.iter().enumerate() {
        let overlapping =
            times[i..].iter().take_while(|x| x.duration_since(*t) < jiff::SignedDuration::from_millis(90)).count();
        most = most.max(overlapping);
    }
    assert_eq!(most, 2, "two in flight at most, and the permits are used");
}

/// Counts hook calls and checks every label is from the bounded sets.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Seen>,
}

#[derive(Default, Debug)]
struct Seen {
    requests: usize,
    retries: usize,
    rate_limit_waits: usize,
    budget_waits: Vec<Duration>,
    labels: Vec<String>,
}

impl ClientObserver for Recorder {
    fn on_request(&self, operation: &'static str, outcome_label: &'static str, _latency: Duration) {
        assert!(Operation::ALL.iter().any(|o| o.name() == operation), "{operation}");
        assert!(outcome::ALL.contains(&outcome_label), "{outcome_label}");
        let mut s = self.seen.lock().unwrap();
        s.requests += 1;
        s.labels.push(format!("{operation}/{outcome_label}"));
    }
    fn on_retry(&self, operation: &'static str) {
        let mut s = self.seen.lock().unwrap();
        s.retries += 1;
        s.labels.push(operation.to_owned());
    }
    fn on_rate_limit_wait(&self, family: &'static str, _duration: Duration) {
        assert!(["org", "site", "bitbucket"].contains(&family));
        self.seen.lock().unwrap().rate_limit_waits += 1;
    }
    fn on_budget_wait(&self, family: &'static str, duration: Duration) {
        assert_eq!(family, "org", "only the Organizations API is read here");
        self.seen.lock().unwrap().budget_waits.push(duration);
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

fn captured_logs() -> Captured {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let sink = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || sink.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in this binary");
            captured
        })
        .clone()
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_appear_in_errors_debug_output_metrics_or_logs() {
    // A global subscriber (installed once): scoped ones can miss events whose callsites other
    // threads registered first. It captures every test's logs, which only widens the search.
    let captured = captured_logs();
    let faults = Faults::parse("429=0.2,500=0.1").unwrap();
    let sim = sim(400, 1, |c| c.faults = faults).await;
    let observer = Arc::new(Recorder::default());
    let good = AtlassianClient::with_observer(config_for(&sim), &credentials(KEY), observer.clone()).unwrap();
    let snap = good.snapshot(taken_at()).await.expect("snapshot despite faults");
    let (dir, id) = pick(&sim, |_, u| u.membership == Membership::Active);
    let write = good.suspend(&dir, &id, None).await;

    const WRONG: &str = "sk-WRONG-KEY-0000-feedface";
    let bad = AtlassianClient::new(config_for(&sim), &credentials(WRONG)).unwrap();
    let err = bad.snapshot(taken_at()).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    let bad_write = bad.suspend(&dir, &id, None).await;
    assert!(matches!(bad_write, WriteOutcome::Failed { status: Some(401), .. }), "{bad_write:?}");

    // A Jira write with a site token the simulator doesn't know: refused, and the token stays out.
    const WRONG_SITE_TOKEN: &str = "site-WRONG-TOKEN-31415926";
    let mut config = config_for(&sim);
    config.membership_api = MembershipApi::Jira;
    config.sites.push(SiteConfig {
        name: "sim".into(),
        url: reqwest::Url::parse(&sim.base_url()).unwrap(),
        products: vec![],
    });
    let site_creds = Credentials {
        org_api_key: Secret::new(KEY),
        site_user: Some(SiteUser { email: sim.site_email(), api_token: Secret::new(WRONG_SITE_TOKEN) }),
    };
    let jira = AtlassianClient::new(config, &site_creds).unwrap();
    let group = sim.with_state(|s| s.groups.iter().find(|g| !g.idp_synced).unwrap().id.clone());
    let jira_write = jira.add_to_group(&dir, &group, &id, None).await;
    assert!(matches!(jira_write, WriteOutcome::Failed { status: Some(401), .. }), "{jira_write:?}");

    let mut rendered = format!("{jira_write:?} {jira:?} {site_creds:?}");
    for text in [
        format!("{err} {err:?}"),
        format!("{bad_write:?} {write:?}"),
        format!("{good:?} {bad:?} {:?} {:?}", config_for(&sim), credentials(KEY)),
        format!("{:?}", snap.report),
        format!("{:?}", observer.seen.lock().unwrap()),
    ] {
        rendered.push_str(&text);
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying Atlassian call"), "the capture saw the client's logs");
    assert!(logs.contains("Atlassian write"), "the capture saw the writes: {logs}");
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{WRONG_SITE_TOKEN}", sim.site_email()));
    for secret in [KEY, WRONG, WRONG_SITE_TOKEN, basic.as_str()] {
        assert!(!rendered.contains(secret), "secret in rendered output: {rendered}");
        assert!(!logs.contains(secret), "secret in logs");
    }
    let _ = std::io::stderr().flush();
}

/// Issue 12 against the simulator over HTTP: two directories sharing accounts, unmodelled products
/// and API tokens are read whole (one entry per account); a listing that lies quietly (a page
/// served twice, a directory answering empty, a cursor that cycles) is folded or marked incomplete
/// naming the directory; a refused token listing is said, not fatal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_shapes_are_read_whole_or_marked_incomplete() {
    use seatwarden::product::ProductKey;
    use seatwarden::snapshot::ApiTokenActivity;
    let sim = sim(1_500, 2, |c| {
        c.shared_accounts = 0.2;
        c.unmodelled_products = true;
    })
    .await;
    let snap = client(&sim).snapshot(taken_at()).await.expect("snapshot");
    assert!(snap.incomplete.is_none(), "{:?}", snap.incomplete);
    let shared = snap.accounts.iter().filter(|a| a.memberships.len() == 2).count();
    assert!(shared > 0, "accounts in both directories are one entry with two memberships");
    let ids: BTreeSet<&str> = snap.accounts.iter().map(|a| a.account_id.as_str()).collect();
    assert_eq!(ids.len(), snap.accounts.len(), "one entry per account");
    assert!(
        snap.accounts.iter().flat_map(|a| a.product_access()).any(|p| matches!(p.product, ProductKey::Other(_))),
        "unmodelled product keys are kept"
    );
    let ApiTokenActivity::Read { tokens, accounts } = snap.api_tokens.clone() else {
        panic!("tokens read: {:?}", snap.api_tokens)
    };
    assert!(tokens > 0 && accounts > 0);
    assert!(snap.accounts.iter().any(|a| a.api_token_last_active.is_some()));

    // A page served twice: the same rows again, folded; nothing incomplete.
    sim.set_faults(Faults::parse("duplicate-page=2").unwrap());
    let again = client(&sim).snapshot(taken_at()).await.expect("snapshot");
    assert!(again.incomplete.is_none(), "{:?}", again.incomplete);
    assert_eq!(again.accounts, snap.accounts, "identical duplicates fold away");
    assert!(again.report.notes.iter().any(|n| n.contains("twice, identically")), "{:?}", again.report.notes);

    // A directory that answers empty while its counts say otherwise: incomplete, naming it.
    let second = snap.directories[1].id.clone();
    sim.set_faults(Faults::parse("empty-directory=2").unwrap());
    let empty = client(&sim).snapshot(taken_at()).await.expect("snapshot");
    let why = empty.incomplete.expect("an empty directory with members is incomplete");
    assert!(why.contains(&second), "{why}");

    // A cursor that cycles: the directory is left unread and the snapshot says so (no endless loop).
    sim.set_faults(Faults::parse("cycle-cursor=3").unwrap());
    let cycled = client(&sim).snapshot(taken_at()).await;
    match cycled {
        Ok(s) => assert!(s.incomplete.as_deref().is_some_and(|w| w.contains("cycles")), "{:?}", s.incomplete),
        Err(e) => assert!(e.to_string().contains("cycles"), "{e}"),
    }

    // Token listing refused: the snapshot is whole and says token use is unknown.
    sim.set_faults(Faults::parse("api-tokens=403").unwrap());
    let refused = client(&sim).snapshot(taken_at()).await.expect("a refused token read is not fatal");
    assert!(matches!(refused.api_tokens, ApiTokenActivity::Refused { .. }), "{:?}", refused.api_tokens);
    assert!(refused.incomplete.is_none());
    assert!(refused.accounts.iter().all(|a| a.api_token_last_active.is_none()));
}

/// The account lookup behind the ledger's end of a record: 200 → present, 404 → gone from that
/// directory, and anything else an error (never "gone").
#[tokio::test]
async fn the_account_lookup_says_gone_only_on_404() {
    let sim = sim(40, 2, |_| {}).await;
    let client = client(&sim);
    let dirs = sim.directory_ids();
    let (dir, acct) = pick(&sim, |_, u| u.is_directory_user());
    assert!(client.account_in_directory(&dir, &acct).await.unwrap(), "present where it is a member");
    assert!(!client.account_in_directory(&dir, "no-such-account").await.unwrap(), "404: not there");
    let other = dirs.iter().find(|d| **d != dir).unwrap();
    let in_other = sim.with_state(|s| {
        let d = s.directories.iter().position(|x| &x.id == other).unwrap() as u16;
        s.entries_of(&acct).any(|i| s.users[i].directory == d && s.users[i].is_directory_user())
    });
    assert_eq!(client.account_in_directory(other, &acct).await.unwrap(), in_other, "per directory");
    sim.set_faults(Faults::parse("500=1").unwrap());
    let err = client.account_in_directory(&dir, "no-such-account").await.unwrap_err();
    assert_eq!(err.status(), Some(500), "a failure is an error, not an absence: {err}");
}
