//! What the client needs to talk to one organization: where, with which secrets, how fast.
//!
//! Secrets come only from values handed in (the controller reads them from Kubernetes Secrets);
//! nothing here reads the environment or files.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::crd::{AtlassianOrganizationSpec, MembershipApi};
use crate::product::Product;

/// A credential. Its `Debug` and `Display` never show the value; only [`Secret::expose`] does, and
/// only the HTTP layer calls it, to build an `Authorization` header marked sensitive.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into().trim_end_matches(['\n', '\r'])))
    }

    /// The value itself: for building request headers, nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The credentials the client may use, handed in by whoever read the Kubernetes Secrets.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// Organization API key (Bearer) for the Organizations and User management APIs.
    pub org_api_key: Secret,
    /// A site user's email and API token (Basic) for Jira/Confluence/Bitbucket endpoints.
    pub site_user: Option<SiteUser>,
}

#[derive(Clone, Debug)]
pub struct SiteUser {
    pub email: String,
    pub api_token: Secret,
}

/// The API families paced separately: each has its own limits at Atlassian.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiFamily {
    /// Organizations (Admin) API and User management API on the API base URL.
    Org,
    /// Jira/Confluence site APIs.
    Site,
    /// Bitbucket Cloud.
    Bitbucket,
}

impl ApiFamily {
    pub const ALL: [ApiFamily; 3] = [ApiFamily::Org, ApiFamily::Site, ApiFamily::Bitbucket];

    pub fn label(self) -> &'static str {
        match self {
            ApiFamily::Org => "org",
            ApiFamily::Site => "site",
            ApiFamily::Bitbucket => "bitbucket",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Client-side pacing and limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    pub org_requests_per_minute: u32,
    pub site_requests_per_minute: u32,
    pub bitbucket_requests_per_minute: u32,
    /// Calls in flight at once (all families together).
    pub concurrency: usize,
    /// Timeout of one HTTP call, body included.
    pub timeout: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Self::from_spec(&crate::crd::RequestBudget::default()).expect("the default budget is valid")
    }
}

impl Budget {
    pub fn requests_per_minute(&self, family: ApiFamily) -> u32 {
        match family {
            ApiFamily::Org => self.org_requests_per_minute,
            ApiFamily::Site => self.site_requests_per_minute,
            ApiFamily::Bitbucket => self.bitbucket_requests_per_minute,
        }
    }

    pub fn from_spec(spec: &crate::crd::RequestBudget) -> Result<Self, ConfigError> {
        fn positive(field: &'static str, value: i32, max: i32) -> Result<u32, ConfigError> {
            if value < 1 || value > max {
                return Err(ConfigError::new(field, format!("must be between 1 and {max}, got {value}")));
            }
            Ok(value as u32)
        }
        Ok(Self {
            org_requests_per_minute: positive(
                "requestBudget.orgRequestsPerMinute",
                spec.org_requests_per_minute,
                100_000,
            )?,
            site_requests_per_minute: positive(
                "requestBudget.siteRequestsPerMinute",
                spec.site_requests_per_minute,
                100_000,
            )?,
            bitbucket_requests_per_minute: positive(
                "requestBudget.bitbucketRequestsPerMinute",
                spec.bitbucket_requests_per_minute,
                100_000,
            )?,
            concurrency: positive("requestBudget.concurrency", spec.concurrency, 64)? as usize,
            timeout: Duration::from_secs(u64::from(positive(
                "requestBudget.timeoutSeconds",
                spec.timeout_seconds,
                600,
            )?)),
        })
    }
}

/// How failed calls are retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per attempt (full jitter: the wait is uniform in [0, ceiling]).
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// `Retry-After: 0` is read as this (Jira sends 0 and means "soon", not "now").
    pub retry_after_floor: Duration,
    /// Longer `Retry-After` or rate-limit resets are capped to this and reported.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            retry_after_floor: Duration::from_secs(1),
            retry_after_cap: Duration::from_secs(300),
        }
    }
}

/// Where v2 lacks activity data, what the client may do to fill it (each use is counted and noted).
#[derive(Clone, Debug, PartialEq)]
pub struct FallbackPolicy {
    /// Ask v2 users/search for `productAccess`. Off for an organization whose plan doesn't return
    /// it (Atlassian documents no entitlement rule): activity then comes from the fallbacks below.
    pub v2_product_access: bool,
    /// Read the v1 users list (managed accounts) when v2 returned no productAccess for a managed user.
    pub v1_users: bool,
    /// At most this many per-user last-active-dates calls per snapshot; beyond that the snapshot fails.
    pub max_last_active_calls: u32,
}

impl Default for FallbackPolicy {
    fn default() -> Self {
        Self { v2_product_access: true, v1_users: true, max_last_active_calls: 2_000 }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SiteConfig {
    pub name: String,
    pub url: reqwest::Url,
    pub products: Vec<Product>,
}

/// Everything but the secrets.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub org_id: String,
    /// Directories to read; empty means every directory of the organization.
    pub directories: Vec<String>,
    /// Base of the Organizations (`/admin/...`) and User management (`/users/...`) APIs.
    pub api_base_url: reqwest::Url,
    pub sites: Vec<SiteConfig>,
    pub bitbucket_api_url: Option<reqwest::Url>,
    pub membership_api: MembershipApi,
    pub budget: Budget,
    pub retry: RetryPolicy,
    pub fallbacks: FallbackPolicy,
    /// The account that owns the org API key: no documented endpoint returns it.
    pub api_key_owner: Option<String>,
    /// List each directory's users as two concurrent listings, `claimStatus` managed and unmanaged
    /// (the API's documented default is "both"), so a large directory isn't bound by one sequential
    /// cursor. Users are de-duplicated and a server ignoring the filter is noted.
    pub split_user_listing: bool,
}

impl ClientConfig {
    /// A configuration for `org_id` at `api_base_url` with default budget, retries and fallbacks.
    pub fn new(org_id: impl Into<String>, api_base_url: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            org_id: non_empty("orgId", org_id.into())?,
            directories: Vec::new(),
            api_base_url: parse_url("apiBaseUrl", api_base_url)?,
            sites: Vec::new(),
            bitbucket_api_url: None,
            membership_api: MembershipApi::Organization,
            budget: Budget::default(),
            retry: RetryPolicy::default(),
            fallbacks: FallbackPolicy::default(),
            api_key_owner: None,
            split_user_listing: true,
        })
    }

    /// From an `AtlassianOrganization` spec. Errors name the offending field.
    pub fn from_spec(spec: &AtlassianOrganizationSpec) -> Result<Self, ConfigError> {
        let mut config = Self::new(spec.org_id.clone(), &spec.api_base_url)?;
        config.directories = spec.directories.clone();
        for (i, site) in spec.sites.iter().enumerate() {
            config.sites.push(SiteConfig {
                name: site.name.clone(),
                url: parse_url(&format!("sites[{i}].url"), &site.url)?,
                products: site.products.clone(),
            });
        }
        if let Some(bitbucket) = &spec.bitbucket {
            config.bitbucket_api_url = Some(parse_url("bitbucket.apiUrl", &bitbucket.api_url)?);
        }
        config.membership_api = spec.membership_api;
        if spec.membership_api != MembershipApi::Organization && config.sites.is_empty() {
            return Err(ConfigError::new(
                "membershipApi",
                format!("{:?} needs at least one entry in sites", spec.membership_api),
            ));
        }
        config.budget = Budget::from_spec(&spec.request_budget)?;
        Ok(config)
    }
}

fn non_empty(field: &str, value: String) -> Result<String, ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::new(field, "must not be empty"));
    }
    Ok(value)
}

fn parse_url(field: &str, value: &str) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(value.trim_end_matches('/'))
        .map_err(|e| ConfigError::new(field, format!("{value:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.cannot_be_a_base() {
        return Err(ConfigError::new(field, format!("{value:?} is not an http(s) base URL")));
    }
    Ok(url)
}

/// A configuration value that can't be used, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_renders_its_value() {
        let secret = Secret::new("ATATT-super-secret\n");
        assert_eq!(secret.expose(), "ATATT-super-secret");
        assert!(!format!("{secret:?}").contains("super"));
        assert!(!format!("{secret}").contains("super"));
        let creds = Credentials {
            org_api_key: secret.clone(),
            site_user: Some(SiteUser { email: "a@b.c".into(), api_token: Secret::new("tok-123") }),
        };
        let rendered = format!("{creds:?} {creds:#?}");
        assert!(!rendered.contains("super-secret") && !rendered.contains("tok-123"), "{rendered}");
    }

    #[test]
    fn budget_from_spec_names_the_bad_field() {
        let spec = crate::crd::RequestBudget { concurrency: 0, ..Default::default() };
        let err = Budget::from_spec(&spec).unwrap_err();
        assert_eq!(err.field, "requestBudget.concurrency");
        assert!(err.to_string().contains("got 0"));
        let ok = Budget::from_spec(&Default::default()).unwrap();
        assert_eq!(ok.org_requests_per_minute, 600);
        assert_eq!(ok.timeout, Duration::from_secs(30));
    }

    #[test]
    fn config_rejects_bad_urls_by_field() {
        let err = ClientConfig::new("org", "not a url").unwrap_err();
        assert_eq!(err.field, "apiBaseUrl");
        let err = ClientConfig::new(" ", "https://api.atlassian.com").unwrap_err();
        assert_eq!(err.field, "orgId");
        let ok = ClientConfig::new("org", "http://127.0.0.1:8080/").unwrap();
        assert_eq!(ok.api_base_url.as_str(), "http://127.0.0.1:8080/");
    }
}
