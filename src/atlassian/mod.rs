//! The reqwest client for the Atlassian Cloud APIs (issue: Atlassian client). Yields a complete
//! [`crate::snapshot::DirectorySnapshot`] or an error; performs the v2 and User management writes.
//!
//! - [`config`]: what to call and how fast ([`ClientConfig`], [`Credentials`], [`Secret`]);
//! - `http`: bounded concurrency, a timeout per call, retries (reads blindly; writes only after a
//!   re-read when the outcome is unknown), observer hooks; [`pacing`]: the budget per API family,
//!   `X-RateLimit-*` and `Retry-After` arithmetic;
//! - `snapshot`: the all-or-nothing listing ([`AtlassianClient::snapshot`]); [`wire`]: the JSON and
//!   its conversion to the snapshot model;
//! - [`writes`]: suspend, restore, remove, deactivate, enable, group membership, invite, and the
//!   re-read of one user, each write returning a [`WriteOutcome`];
//! - [`error`]: typed errors naming the call and page; [`observer`]: metrics hooks.
//!
//! Time: the client sleeps on tokio time for pacing and backoff, and reads no wall clock for data:
//! the snapshot's `taken_at` is handed in.

pub mod config;
pub mod error;
mod http;
pub mod observer;
pub mod pacing;
mod snapshot;
pub mod wire;
pub mod writes;

use std::sync::Arc;

pub use config::{
    ApiFamily, Budget, ClientConfig, ConfigError, Credentials, FallbackPolicy, RetryPolicy, Secret, SiteUser,
};
pub use error::{AtlassianError, CallSite, ErrorBody};
pub use observer::{ClientObserver, NoopObserver, Operation};
pub use snapshot::PAGE_LIMIT;
pub use writes::{Invitation, InviteResult, LifecyclePermission, RefusalReason, UserReading, WriteOutcome};

/// A client for one organization. Cheap to clone (shares pacing, permits and connections).
#[derive(Clone)]
pub struct AtlassianClient {
    http: Arc<http::Http>,
}

impl std::fmt::Debug for AtlassianClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtlassianClient")
            .field("org_id", &self.http.config.org_id)
            .field("api_base_url", &self.http.config.api_base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl AtlassianClient {
    /// A client with the no-op observer. Needs a rustls crypto provider installed
    /// (`crate::tls::install_crypto_provider`).
    pub fn new(config: ClientConfig, credentials: &Credentials) -> Result<Self, AtlassianError> {
        Self::with_observer(config, credentials, Arc::new(NoopObserver))
    }

    pub fn with_observer(
        config: ClientConfig,
        credentials: &Credentials,
        observer: Arc<dyn ClientObserver>,
    ) -> Result<Self, AtlassianError> {
        Ok(Self { http: Arc::new(http::Http::new(config, credentials, observer)?) })
    }

    /// From an `AtlassianOrganization` spec and the secrets its references point at.
    pub fn from_spec(
        spec: &crate::crd::AtlassianOrganizationSpec,
        credentials: &Credentials,
        observer: Arc<dyn ClientObserver>,
    ) -> Result<Self, AtlassianError> {
        Self::with_observer(ClientConfig::from_spec(spec)?, credentials, observer)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.http.config
    }

    /// A credential self-test: `GET /v1/orgs/{orgId}` (404 means a wrong org id; 401 a bad key).
    pub async fn check_org(&self) -> Result<(), AtlassianError> {
        let org = self.http.config.org_id.as_str();
        let url = self.http.admin_url(&["v1", "orgs", org]);
        let req = http::Request::new(CallSite::new(Operation::OrgRead), ApiFamily::Org, reqwest::Method::GET, url);
        let _: serde_json::Value = self.http.read_json(&req, None).await?;
        Ok(())
    }
}
