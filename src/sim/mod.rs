//! An Atlassian Cloud simulator: a stateful HTTP server speaking the Organizations, User management,
//! Jira, Confluence and Bitbucket endpoints seatwarden uses, with the same JSON shapes, seeded with a
//! generated organization, with injectable faults, a per-credential rate limit, its own clock, and a
//! control API under `/_sim/`. It is a product feature (`seatwarden sim`) and the test double for
//! the rest of seatwarden ([`Simulator::start`] inside a test process).
//!
//! One base URL serves every API. Bearer org API key:
//! - `GET /admin/v1/orgs`, `GET /admin/v1/orgs/{orgId}`, `GET /admin/v1/orgs/{orgId}/users`,
//!   `GET /admin/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates`,
//!   `GET /admin/v1/orgs/{orgId}/events`;
//! - `GET /admin/v2/orgs/{orgId}/directories`; under `/admin/v2/orgs/{orgId}/directories/{directoryId}`
//!   (`-` = all directories, reads only): `POST users/search`, `GET users/{accountId}`,
//!   `GET users/{accountId}/role-assignments`, `POST users/{accountId}/suspend` and `/restore`,
//!   `DELETE users/{accountId}`, `POST groups/search`, `GET groups/{groupId}`,
//!   `GET groups/{groupId}/role-assignments`, `POST groups/{groupId}/memberships`,
//!   `DELETE groups/{groupId}/memberships/{accountId}`, `GET users/stats`; `POST /admin/v2/orgs/{orgId}/users/invite`;
//! - the API Access API: `GET /admin/api-access/v1/orgs/{orgId}/api-tokens` (`cursor`, `limit` 1–100,
//!   default 50, `q`, `status`), every user API token of the managed accounts with `lastActiveAt`;
//! - the v1 writes switched off on 2026-06-30 (`suspend-access`, `restore-access`, v1 user removal,
//!   v1 memberships) answer 410 unless [`SimConfig::legacy_v1`];
//! - `GET /users/{accountId}/manage`, `POST /users/{accountId}/manage/lifecycle/disable|enable`;
//! - the control API: `GET /_sim/info`, `GET|POST /_sim/clock` (`{"now"}`, `{"advance": "1d"}`,
//!   `{"frozen"}`), `GET|POST /_sim/faults` (`{"spec"}`), `POST /_sim/rate-limit` (`{"perMinute"}`),
//!   `GET /_sim/events?since=N`, `GET /_sim/requests`, `GET /_sim/state`, `POST /_sim/state/save`
//!   (`{"path"?}`), `POST /_sim/state/reset`.
//!
//! Basic site email + API token: Jira `GET /rest/api/3/users/search`, `GET /rest/api/3/group/member`,
//! `POST|DELETE /rest/api/3/group/user`; Confluence `GET /wiki/rest/api/group`,
//! `GET /wiki/rest/api/group/{groupId}/membersByGroupId`, `POST|DELETE /wiki/rest/api/group/userByGroupId`;
//! Bitbucket `GET /2.0/workspaces/{workspace}/members` (workspace `acme`).
//!
//! Modelling choices worth knowing: product access is derived from group memberships (a group
//! grants `atlassian/user` on product instances; site-admin groups also carry `atlassian/site-admin`
//! on `ari:cloud:platform::site/{siteId}`, resource owner `platform`); a suspended user keeps groups
//! and `productAccess` but holds no seat; a removed user leaves v2 listings; each user is in one
//! directory.

pub mod clock;
pub mod faults;
pub mod generate;
mod http;
pub mod state;

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, RwLock},
};

use jiff::{SignedDuration, Timestamp};
use rand::{SeedableRng, rngs::Xoshiro256PlusPlus};
use serde::{Deserialize, Serialize};

pub use self::{
    clock::SimClock,
    faults::{Faults, FaultsError},
    generate::{GenerateSpec, generate},
    state::{SimEvent, SimOutcome, SimState},
};

/// How to run the simulator. `Default` is what `seatwarden sim` uses without flags (the clock
/// starts at the current time).
#[derive(Clone)]
pub struct SimConfig {
    pub users: u32,
    pub seed: u64,
    pub org_id: String,
    /// The org API key (Bearer) for admin, user-management and control paths.
    pub api_key: String,
    /// The site user (Basic auth) for Jira, Confluence and Bitbucket paths.
    pub site_email: String,
    /// That user's API token; `None` means the API key.
    pub site_token: Option<String>,
    pub directories: u16,
    /// Share of the first directory's people also in another directory ([`GenerateSpec::shared_accounts`]).
    pub shared_accounts: f64,
    /// Products seatwarden does not model ([`GenerateSpec::unmodelled_products`]).
    pub unmodelled_products: bool,
    /// Where the simulator's clock starts.
    pub now: Timestamp,
    /// The clock stands still unless set or advanced.
    pub frozen: bool,
    /// Requests per minute per credential (of the simulator's clock), across all paths.
    pub rate_limit_per_minute: Option<u32>,
    pub faults: Faults,
    /// Serve the v1 write endpoints that were switched off on 2026-06-30.
    pub legacy_v1: bool,
    /// Load the state from this file when it exists; save to it on request and on shutdown.
    pub state_file: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            users: 5000,
            seed: 7,
            org_id: "sim-org".to_string(),
            api_key: "sim-key".to_string(),
            site_email: "admin@example.com".to_string(),
            site_token: None,
            directories: 1,
            shared_accounts: 0.0,
            unmodelled_products: false,
            now: Timestamp::now(),
            frozen: false,
            rate_limit_per_minute: None,
            faults: Faults::default(),
            legacy_v1: false,
            state_file: None,
        }
    }
}

impl SimConfig {
    pub fn site_token(&self) -> &str {
        self.site_token.as_deref().unwrap_or(&self.api_key)
    }

    /// The default with the organization shape `seatwarden demo` runs ([`GenerateSpec::two_directories`]).
    pub fn two_directories() -> Self {
        let shape = GenerateSpec::default().two_directories();
        Self {
            directories: shape.directories,
            shared_accounts: shape.shared_accounts,
            unmodelled_products: shape.unmodelled_products,
            ..Self::default()
        }
    }

    pub fn generate_spec(&self) -> GenerateSpec {
        GenerateSpec {
            users: self.users,
            seed: self.seed,
            org_id: self.org_id.clone(),
            directories: self.directories,
            now: self.now,
            shared_accounts: self.shared_accounts,
            unmodelled_products: self.unmodelled_products,
        }
    }
}

/// Secrets stay out of Debug output.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("users", &self.users)
            .field("seed", &self.seed)
            .field("org_id", &self.org_id)
            .field("api_key", &"<redacted>")
            .field("site_email", &self.site_email)
            .field("site_token", &"<redacted>")
            .field("directories", &self.directories)
            .field("shared_accounts", &self.shared_accounts)
            .field("unmodelled_products", &self.unmodelled_products)
            .field("now", &self.now)
            .field("frozen", &self.frozen)
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("faults", &self.faults)
            .field("legacy_v1", &self.legacy_v1)
            .field("state_file", &self.state_file)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("sim: cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("sim: state file {path}: {source}")]
    StateIo { path: PathBuf, source: std::io::Error },
    #[error("sim: state file {path}: not a saved simulator state: {source}")]
    StateParse { path: PathBuf, source: serde_json::Error },
    #[error("sim: no state file configured: pass one to save to")]
    NoStateFile,
}

/// The credential a request authenticated with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Credential {
    /// Bearer org API key (admin, user management, control).
    OrgApiKey,
    /// Basic site email + API token (Jira, Confluence, Bitbucket).
    SiteToken,
}

/// One request as the simulator saw it (time from its own clock).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub time: Timestamp,
    /// `None`: refused as unauthenticated.
    pub credential: Option<Credential>,
    pub method: String,
    pub path: String,
    pub status: u16,
}

impl RequestRecord {
    fn new(
        time: Timestamp,
        credential: Option<Credential>,
        method: &axum::http::Method,
        path: &str,
        status: u16,
    ) -> Self {
        Self { time, credential, method: method.to_string(), path: path.to_string(), status }
    }
}

/// Requests received, by credential.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestCounts {
    pub total: u64,
    pub org_api_key: u64,
    pub site_token: u64,
    pub unauthenticated: u64,
    /// Requests to Atlassian's APIs, the control API (`/_sim/...`) aside: what a client really cost.
    #[serde(default)]
    pub atlassian: u64,
}

/// The most requests kept in the request log (older ones are dropped, counts are not).
const REQUEST_LOG_CAP: usize = 200_000;

#[derive(Default)]
struct Counters {
    counts: RequestCounts,
    /// Per credential: (minute of the simulator's clock, requests in it).
    windows: HashMap<Credential, (i64, u32)>,
    log: VecDeque<RequestRecord>,
}

/// What every request handler shares.
pub(crate) struct Shared {
    config: SimConfig,
    base_url: String,
    state: RwLock<SimState>,
    clock: Mutex<SimClock>,
    faults: Mutex<Faults>,
    rate_limit: Mutex<Option<u32>>,
    rng: Mutex<Xoshiro256PlusPlus>,
    counters: Mutex<Counters>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn now(&self) -> Timestamp {
        lock(&self.clock).now()
    }

    fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    fn rng(&self) -> MutexGuard<'_, Xoshiro256PlusPlus> {
        lock(&self.rng)
    }

    fn count(&self, record: RequestRecord) {
        let mut c = lock(&self.counters);
        c.counts.total += 1;
        if !(record.path == "/_sim" || record.path.starts_with("/_sim/")) {
            c.counts.atlassian += 1;
        }
        match record.credential {
            Some(Credential::OrgApiKey) => c.counts.org_api_key += 1,
            Some(Credential::SiteToken) => c.counts.site_token += 1,
            None => c.counts.unauthenticated += 1,
        }
        if c.log.len() >= REQUEST_LOG_CAP {
            c.log.pop_front();
        }
        c.log.push_back(record);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SimState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, SimState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the state as JSON to `path` (or the configured state file).
    fn save(&self, path: Option<&Path>) -> Result<PathBuf, SimError> {
        let path =
            path.map(Path::to_path_buf).or_else(|| self.config.state_file.clone()).ok_or(SimError::NoStateFile)?;
        let bytes = {
            let state = self.read();
            let saved = SavedState { now: self.now(), state: &state };
            serde_json::to_vec(&saved).map_err(|e| SimError::StateParse { path: path.clone(), source: e })?
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| SimError::StateIo { path: path.clone(), source: e })?;
        Ok(path)
    }

    /// Back to a freshly generated organization, clock at the configured start.
    fn reset(&self) {
        let fresh = generate(&self.config.generate_spec());
        *self.write() = fresh;
        lock(&self.clock).set_now(self.config.now);
    }
}

#[derive(Serialize)]
struct SavedState<'a> {
    now: Timestamp,
    state: &'a SimState,
}

#[derive(Deserialize)]
struct LoadedState {
    now: Timestamp,
    state: SimState,
}

/// The server-side work of one `POST .../users/search` page, without HTTP: parse and validate the
/// JSON `body`, filter, page and serialize. What the page-latency benchmark measures; also handy to
/// see what a page looks like. `directory_id` `None` means all directories.
pub fn users_search_page(state: &SimState, directory_id: Option<&str>, body: &[u8]) -> Result<Vec<u8>, String> {
    http::users_search_page(state, directory_id, body)
}

/// Reads a state saved by [`SimHandle::save_state`] (or on shutdown), with the clock it stopped at.
pub fn load_state(path: &Path) -> Result<(SimState, Timestamp), SimError> {
    let bytes = std::fs::read(path).map_err(|e| SimError::StateIo { path: path.to_path_buf(), source: e })?;
    let loaded: LoadedState =
        serde_json::from_slice(&bytes).map_err(|e| SimError::StateParse { path: path.to_path_buf(), source: e })?;
    let mut state = loaded.state;
    state.reindex();
    Ok((state, loaded.now))
}

pub struct Simulator;

impl Simulator {
    /// Generates (or loads, when the state file exists) the organization and serves it on `addr`
    /// (`127.0.0.1:0` picks a free port).
    pub async fn start(config: SimConfig, addr: &str) -> Result<SimHandle, SimError> {
        let (state, now) = match &config.state_file {
            Some(path) if path.exists() => load_state(path)?,
            _ => (generate(&config.generate_spec()), config.now),
        };
        Self::start_with_state(config, state, now, addr).await
    }

    /// Serves a given state (built by hand or by [`generate()`]).
    pub async fn start_with_state(
        config: SimConfig,
        mut state: SimState,
        now: Timestamp,
        addr: &str,
    ) -> Result<SimHandle, SimError> {
        state.reindex();
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| SimError::Bind { addr: addr.to_string(), source: e })?;
        let local = listener.local_addr().map_err(|e| SimError::Bind { addr: addr.to_string(), source: e })?;
        let shared = Arc::new(Shared {
            base_url: format!("http://{local}"),
            state: RwLock::new(state),
            clock: Mutex::new(SimClock::new(now, config.frozen)),
            faults: Mutex::new(config.faults.clone()),
            rate_limit: Mutex::new(config.rate_limit_per_minute),
            rng: Mutex::new(Xoshiro256PlusPlus::seed_from_u64(config.seed ^ 0x5eed_fa17)),
            counters: Mutex::new(Counters::default()),
            config,
        });
        let app = axum::Router::new().fallback(http::dispatch).with_state(shared.clone());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Ok(SimHandle { shared, addr: local, stop: Some(stop_tx), server: Some(server) })
    }
}

/// A running simulator. Dropping it stops serving (without saving); [`SimHandle::shutdown`] saves
/// the state file when one is configured.
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`: serves every API (admin under `/admin`, user management under
    /// `/users`, Jira `/rest/api/3`, Confluence `/wiki/rest/api`, Bitbucket `/2.0`, control `/_sim`).
    /// Points `spec` at this simulator (org id, the API base URL, every site and Bitbucket), keeping
    /// everything else, so manifests written for a real organization run against it unchanged.
    pub fn point_organization(&self, spec: &mut crate::crd::AtlassianOrganizationSpec) {
        spec.org_id = self.org_id();
        spec.api_base_url = self.base_url();
        for site in &mut spec.sites {
            site.url = self.base_url();
        }
        if let Some(bb) = spec.bitbucket.as_mut() {
            bb.api_url = self.base_url();
        }
    }

    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn org_id(&self) -> String {
        self.shared.read().org_id.clone()
    }

    pub fn directory_ids(&self) -> Vec<String> {
        self.shared.read().directories.iter().map(|d| d.id.clone()).collect()
    }

    pub fn api_key(&self) -> String {
        self.shared.config.api_key.clone()
    }

    pub fn site_email(&self) -> String {
        self.shared.config.site_email.clone()
    }

    pub fn site_token(&self) -> String {
        self.shared.config.site_token().to_string()
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// The simulator's clock.
    pub fn now(&self) -> Timestamp {
        self.shared.now()
    }

    pub fn set_now(&self, now: Timestamp) {
        lock(&self.shared.clock).set_now(now);
    }

    pub fn advance(&self, by: SignedDuration) {
        lock(&self.shared.clock).advance(by);
    }

    pub fn set_frozen(&self, frozen: bool) {
        lock(&self.shared.clock).set_frozen(frozen);
    }

    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    pub fn set_rate_limit(&self, per_minute: Option<u32>) {
        *lock(&self.shared.rate_limit) = per_minute;
    }

    /// Every write received, applied or refused, oldest first.
    pub fn events(&self) -> Vec<SimEvent> {
        self.shared.read().events.clone()
    }

    pub fn with_state<R>(&self, f: impl FnOnce(&SimState) -> R) -> R {
        f(&self.shared.read())
    }

    /// Changes the state directly (status, groups, activity, managed flag, IdP sync, limits).
    pub fn with_state_mut<R>(&self, f: impl FnOnce(&mut SimState) -> R) -> R {
        let mut state = self.shared.write();
        let before = state.users.len();
        let r = f(&mut state);
        if state.users.len() != before || state.index_len() != state.users.len() {
            state.reindex();
        }
        r
    }

    pub fn request_count(&self) -> u64 {
        lock(&self.shared.counters).counts.total
    }

    pub fn request_counts(&self) -> RequestCounts {
        lock(&self.shared.counters).counts
    }

    /// Requests received (the most recent 200,000), with times from the simulator's clock.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        lock(&self.shared.counters).log.iter().cloned().collect()
    }

    /// Saves the state to `path`, or to the configured state file.
    pub fn save_state(&self, path: Option<&Path>) -> Result<PathBuf, SimError> {
        self.shared.save(path)
    }

    /// Back to the generated organization and the configured start time; events cleared.
    pub fn reset_state(&self) {
        self.shared.reset();
    }

    /// Stops serving and saves the state file when one is configured.
    pub async fn shutdown(mut self) -> Result<Option<PathBuf>, SimError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        match self.shared.config.state_file {
            Some(_) => self.shared.save(None).map(Some),
            None => Ok(None),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
