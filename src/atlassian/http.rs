//! One place where requests leave: authentication, bounded concurrency, pacing per family, a timeout
//! per call, retries (reads: blindly; writes: only after re-reading when the outcome is unknown), and
//! the observer hooks. Secrets go into headers marked sensitive and are scrubbed from every message.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::config::{ApiFamily, ClientConfig, Credentials};
use super::error::{AtlassianError, CallSite, ErrorBody};
use super::observer::{ClientObserver, outcome};
use super::pacing::{Pacer, RateLimitInfo, backoff_delay, clamp_wait};

/// One request, rebuilt for each attempt.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub call: CallSite,
    pub family: ApiFamily,
    pub method: Method,
    pub url: Url,
    pub json: Option<Vec<u8>>,
}

impl Request {
    pub fn new(call: CallSite, family: ApiFamily, method: Method, url: Url) -> Self {
        Self { call, family, method, url, json: None }
    }

    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.json = Some(serde_json::to_vec(body).expect("a JSON value always serializes"));
        self
    }
}

/// A response that arrived whole.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn error_body(&self) -> ErrorBody {
        ErrorBody::parse(self.status, &self.body)
    }
}

enum Attempt {
    Reply(Reply, RateLimitInfo),
    Timeout,
    Transport(String),
}

/// Counters for one unit of work (a snapshot): every attempt, every retry, every capped wait.
#[derive(Debug, Default)]
pub(crate) struct CallStats {
    pub calls: AtomicU64,
    pub retries: AtomicU64,
    /// Listing pages received whole.
    pub pages_done: AtomicU64,
    pub notes: Mutex<Vec<String>>,
}

impl CallStats {
    pub fn note(&self, note: String) {
        let mut notes = self.notes.lock().expect("notes lock");
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
}

/// What a write attempt loop ended with.
pub(crate) enum WriteReply {
    /// The server answered with something final (2xx or a non-retriable error).
    Reply(Reply),
    /// An attempt's outcome was unknown and a re-read showed the change is in place.
    VerifiedApplied,
    /// Retries exhausted; `maybe_applied` when some attempt's outcome stayed unknown.
    Failed { error: AtlassianError, maybe_applied: bool },
}

pub(crate) struct Http {
    client: reqwest::Client,
    pub config: ClientConfig,
    pacers: [Mutex<Pacer>; 3],
    permits: Semaphore,
    pub observer: std::sync::Arc<dyn ClientObserver>,
    org_auth: HeaderValue,
    site_auth: Option<HeaderValue>,
    /// Every secret value and encoding of it, to scrub from messages that came from elsewhere.
    secrets: Vec<String>,
}

impl Http {
    pub fn new(
        config: ClientConfig,
        credentials: &Credentials,
        observer: std::sync::Arc<dyn ClientObserver>,
    ) -> Result<Self, AtlassianError> {
        use super::config::ConfigError;
        if credentials.org_api_key.is_empty() {
            return Err(ConfigError::new("credentials.apiKeySecretRef", "the API key is empty").into());
        }
        let mut secrets = vec![credentials.org_api_key.expose().to_owned()];
        let mut org_auth =
            HeaderValue::from_str(&format!("Bearer {}", credentials.org_api_key.expose())).map_err(|_| {
                ConfigError::new("credentials.apiKeySecretRef", "the API key has characters not allowed in a header")
            })?;
        org_auth.set_sensitive(true);
        let site_auth = match &credentials.site_user {
            Some(site) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    site.email,
                    site.api_token.expose()
                ));
                secrets.push(site.api_token.expose().to_owned());
                secrets.push(encoded.clone());
                let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).map_err(|_| {
                    ConfigError::new(
                        "credentials.siteUser",
                        "the email or token has characters not allowed in a header",
                    )
                })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        secrets.retain(|s| s.len() >= 4);
        // reqwest panics without a process-wide rustls provider; installing it twice is a no-op.
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("seatwarden/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.budget.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(config.budget.concurrency)
            .build()
            .map_err(|e| ConfigError::new("http client", e.without_url().to_string()))?;
        let budget = &config.budget;
        let pacers = ApiFamily::ALL.map(|f| Mutex::new(Pacer::new(budget.requests_per_minute(f), budget.concurrency)));
        Ok(Self {
            client,
            permits: Semaphore::new(config.budget.concurrency),
            pacers,
            observer,
            org_auth,
            site_auth,
            secrets,
            config,
        })
    }

    /// Replaces every secret in a message that came from outside (error bodies, transport errors).
    pub fn scrub(&self, message: String) -> String {
        let mut message = message;
        for secret in &self.secrets {
            if message.contains(secret.as_str()) {
                message = message.replace(secret.as_str(), "[redacted]");
            }
        }
        message
    }

    fn auth(&self, family: ApiFamily, call: &CallSite) -> Result<&HeaderValue, AtlassianError> {
        match family {
            ApiFamily::Org => Ok(&self.org_auth),
            ApiFamily::Site | ApiFamily::Bitbucket => self.site_auth.as_ref().ok_or_else(|| {
                AtlassianError::Config(super::config::ConfigError::new(
                    "credentials.siteUser",
                    format!("{call} needs a site user's email and API token"),
                ))
            }),
        }
    }

    /// One attempt: a concurrency permit, then a paced slot, then the call under the timeout.
    async fn attempt(&self, req: &Request, stats: Option<&CallStats>) -> Result<Attempt, AtlassianError> {
        let auth = self.auth(req.family, &req.call)?.clone();
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let now = Instant::now();
        let slot = self.pacers[req.family.index()].lock().expect("pacer lock").reserve_slot(now);
        let wait = slot.at.saturating_duration_since(now);
        if slot.held_by == Some(super::pacing::Hold::Budget) && wait >= super::observer::BUDGET_WAIT_WORTH_TELLING {
            self.observer.on_budget_wait(req.family.label(), wait);
        }
        tokio::time::sleep_until(slot.at).await;
        if let Some(stats) = stats {
            stats.calls.fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let mut builder = self.client.request(req.method.clone(), req.url.clone()).header(AUTHORIZATION, auth);
        if let Some(body) = &req.json {
            builder = builder.header(CONTENT_TYPE, "application/json").body(body.clone());
        }
        let send = async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let headers: HeaderMap = response.headers().clone();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, headers, body.to_vec()))
        };
        let result = tokio::time::timeout(self.config.budget.timeout, send).await;
        let latency = started.elapsed();
        let op = req.call.operation.name();
        let attempt = match result {
            Err(_) => {
                self.observer.on_request(op, outcome::TIMEOUT, latency);
                Attempt::Timeout
            }
            Ok(Err(e)) => {
                self.observer.on_request(op, outcome::TRANSPORT_ERROR, latency);
                Attempt::Transport(self.scrub(describe_transport(&e, &req.url)))
            }
            Ok(Ok((status, headers, body))) => {
                let info = RateLimitInfo::from_headers(&headers);
                let label = match status {
                    200..=399 => outcome::OK,
                    429 => outcome::RATE_LIMITED,
                    400..=499 => outcome::CLIENT_ERROR,
                    _ => outcome::SERVER_ERROR,
                };
                self.observer.on_request(op, label, latency);
                let pause = self.pacers[req.family.index()].lock().expect("pacer lock").observe(
                    Instant::now(),
                    &info,
                    self.config.retry.retry_after_cap,
                );
                if let Some(pause) = pause {
                    tracing::debug!(family = req.family.label(), ?pause, "rate-limit allowance exhausted; pausing");
                    self.observer.on_rate_limit_wait(req.family.label(), pause);
                }
                Attempt::Reply(Reply { status, body }, info)
            }
        };
        tracing::trace!(operation = op, ?latency, "atlassian call");
        Ok(attempt)
    }

    /// How long to wait before attempt `retry + 1` after a 429/503 or a failure. 429/503 also pause
    /// the whole family, since every request of it would meet the same limit.
    fn wait_before_retry(
        &self,
        req: &Request,
        status: Option<u16>,
        info: Option<&RateLimitInfo>,
        retry: u32,
        stats: Option<&CallStats>,
    ) -> Duration {
        let policy = &self.config.retry;
        let backoff = backoff_delay(retry, policy.backoff_base, policy.backoff_cap, rand::random::<f64>());
        let rate_limited = matches!(status, Some(429 | 503));
        let hinted = info.and_then(|i| i.retry_after.or(if status == Some(429) { i.reset_in } else { None }));
        match (rate_limited, hinted) {
            (true, Some(requested)) => {
                let (wait, capped) = clamp_wait(requested, policy.retry_after_floor, policy.retry_after_cap);
                if capped {
                    tracing::warn!(
                        operation = req.call.operation.name(),
                        requested_secs = requested.as_secs(),
                        capped_secs = wait.as_secs_f64(),
                        "Atlassian asked for an absurd wait; capped"
                    );
                    self.observer.on_wait_capped(req.call.operation.name(), requested, wait);
                    if let Some(stats) = stats {
                        stats.note(format!(
                            "{}: Atlassian asked to wait {}s; capped to {:?}",
                            req.call.operation.name(),
                            requested.as_secs(),
                            wait
                        ));
                    }
                }
                self.pause(req.family, wait);
                wait
            }
            (true, None) => {
                let wait = backoff.max(policy.retry_after_floor.min(policy.retry_after_cap));
                self.pause(req.family, wait);
                wait
            }
            (false, _) => backoff,
        }
    }

    fn pause(&self, family: ApiFamily, wait: Duration) {
        self.pacers[family.index()].lock().expect("pacer lock").pause_until(Instant::now() + wait);
        self.observer.on_rate_limit_wait(family.label(), wait);
    }

    fn failure(&self, req: &Request, attempt: &Attempt, attempts: u32) -> AtlassianError {
        let call = req.call.clone();
        match attempt {
            Attempt::Reply(reply, _) => {
                let body = reply.error_body();
                AtlassianError::Status {
                    call,
                    status: reply.status,
                    code: body.code,
                    message: self.scrub(body.message),
                    attempts,
                }
            }
            Attempt::Timeout => AtlassianError::Timeout {
                call,
                url: url_for_people(&req.url),
                timeout: self.config.budget.timeout,
                attempts,
            },
            Attempt::Transport(message) => AtlassianError::Transport { call, message: message.clone(), attempts },
        }
    }

    /// A read, parsed as JSON `T`: retried on 429, 5xx, timeouts, connection failures and bodies cut
    /// short (a syntax error); any other status, or a body of the wrong shape, is final.
    pub async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        req: &Request,
        stats: Option<&CallStats>,
    ) -> Result<T, AtlassianError> {
        let max = self.config.retry.max_attempts.max(1);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let attempt = self.attempt(req, stats).await?;
            let (status, info) = match &attempt {
                Attempt::Reply(reply, _) if reply.is_success() => match serde_json::from_slice::<T>(&reply.body) {
                    Ok(value) => return Ok(value),
                    Err(e) => {
                        let message = self.scrub(e.to_string());
                        let cut_short = matches!(
                            e.classify(),
                            serde_json::error::Category::Eof | serde_json::error::Category::Syntax
                        );
                        if !cut_short || attempts >= max {
                            return Err(AtlassianError::Parse { call: req.call.clone(), message });
                        }
                        (None, None)
                    }
                },
                Attempt::Reply(reply, info) if is_retriable_status(reply.status) => (Some(reply.status), Some(info)),
                Attempt::Reply(..) => return Err(self.failure(req, &attempt, attempts)),
                Attempt::Timeout | Attempt::Transport(_) => (None, None),
            };
            if attempts >= max {
                return Err(self.failure(req, &attempt, attempts));
            }
            let wait = self.wait_before_retry(req, status, info, attempts, stats);
            self.note_retry(req, stats, &attempt, wait);
            if !matches!(status, Some(429 | 503)) {
                tokio::time::sleep(wait).await;
            }
        }
    }

    fn note_retry(&self, req: &Request, stats: Option<&CallStats>, attempt: &Attempt, wait: Duration) {
        self.observer.on_retry(req.call.operation.name());
        if let Some(stats) = stats {
            stats.retries.fetch_add(1, Ordering::Relaxed);
        }
        let what = match attempt {
            Attempt::Reply(reply, _) => format!("HTTP {}", reply.status),
            Attempt::Timeout => "timeout".to_owned(),
            Attempt::Transport(m) => m.clone(),
        };
        tracing::info!(call = %req.call, reason = %what, wait_ms = wait.as_millis() as u64, "retrying Atlassian call");
    }

    /// A write. 429 means "not done": wait and retry. A timeout, connection failure or 5xx leaves the
    /// outcome unknown: `verify` re-reads the state first (`Ok(true)`: the change is in place, stop;
    /// `Ok(false)`: not in place, retry). Other statuses are final and returned for classification.
    pub async fn write<F, Fut>(&self, req: &Request, verify: F) -> WriteReply
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<bool, AtlassianError>>,
    {
        let max = self.config.retry.max_attempts.max(1);
        let mut attempts = 0;
        let mut maybe_applied = false;
        loop {
            attempts += 1;
            let attempt = match self.attempt(req, None).await {
                Ok(a) => a,
                Err(error) => return WriteReply::Failed { error, maybe_applied },
            };
            let (status, info) = match &attempt {
                Attempt::Reply(reply, _) if reply.status == 429 => (Some(429), attempt_info(&attempt)),
                Attempt::Reply(reply, _) if reply.is_success() || !is_retriable_status(reply.status) => {
                    let Attempt::Reply(reply, _) = attempt else { unreachable!() };
                    return WriteReply::Reply(reply);
                }
                Attempt::Reply(reply, _) => (Some(reply.status), attempt_info(&attempt)),
                Attempt::Timeout | Attempt::Transport(_) => (None, None),
            };
            let unknown = status != Some(429);
            maybe_applied |= unknown;
            if attempts >= max {
                return WriteReply::Failed { error: self.failure(req, &attempt, attempts), maybe_applied };
            }
            let wait = self.wait_before_retry(req, status, info.as_ref(), attempts, None);
            self.note_retry(req, None, &attempt, wait);
            if !matches!(status, Some(429 | 503)) {
                tokio::time::sleep(wait).await;
            }
            if unknown {
                match verify().await {
                    Ok(true) => return WriteReply::VerifiedApplied,
                    Ok(false) => maybe_applied = false,
                    Err(e) => {
                        tracing::warn!(call = %req.call, error = %e, "re-read after an unknown write outcome failed");
                        return WriteReply::Failed { error: self.failure(req, &attempt, attempts), maybe_applied };
                    }
                }
            }
        }
    }

    // URL builders. Path segments are percent-encoded (account ids may hold `:` or `|`).

    pub fn admin_url(&self, segments: &[&str]) -> Url {
        let mut url = self.config.api_base_url.clone();
        url.path_segments_mut().expect("base URL validated").pop_if_empty().push("admin").extend(segments);
        url
    }

    pub fn api_url(&self, segments: &[&str]) -> Url {
        let mut url = self.config.api_base_url.clone();
        url.path_segments_mut().expect("base URL validated").pop_if_empty().extend(segments);
        url
    }

    pub fn site_url(&self, segments: &[&str]) -> Result<Url, AtlassianError> {
        let site =
            self.config.sites.first().ok_or_else(|| {
                AtlassianError::Config(super::config::ConfigError::new("sites", "no site is configured"))
            })?;
        let mut url = site.url.clone();
        url.path_segments_mut().expect("site URL validated").pop_if_empty().extend(segments);
        Ok(url)
    }

    /// A `links.next` given as a URL: only followed on the API's own host, so the key never leaves it.
    pub fn same_origin(&self, url: &Url) -> bool {
        url.origin() == self.config.api_base_url.origin()
    }
}

fn attempt_info(attempt: &Attempt) -> Option<RateLimitInfo> {
    match attempt {
        Attempt::Reply(_, info) => Some(info.clone()),
        _ => None,
    }
}

/// Statuses worth another attempt: rate limits, timeouts at a proxy, server errors.
pub fn is_retriable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504) || (500..600).contains(&status) && status != 501
}

/// `https://api.atlassian.com/admin/v2/orgs/o/users`: where a call went, without the query.
pub(crate) fn url_for_people(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// What went wrong below HTTP, for people: the URL, then the cause in words (connection refused,
/// DNS lookup failed, TLS failed, timed out), then the innermost error text.
pub(crate) fn describe_transport(e: &reqwest::Error, url: &Url) -> String {
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut refused = false;
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            refused |= io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        chain.push(err.to_string());
        source = err.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    let cause = if refused || all.contains("connection refused") {
        "connection refused (is the host and port right, and is the server up?)"
    } else if all.contains("dns error") || all.contains("failed to lookup") || all.contains("name or service not known")
    {
        "DNS lookup failed (is the host name right?)"
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        "TLS failed (certificate or protocol: is it https on an http port, or an untrusted certificate?)"
    } else if e.is_timeout() || all.contains("timed out") {
        "timed out"
    } else if all.contains("reset") {
        "connection reset by the server"
    } else {
        "connection failed"
    };
    let innermost = chain.last().cloned().unwrap_or_else(|| "error sending the request".to_owned());
    format!("{}: {cause} ({innermost})", url_for_people(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_statuses() {
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert!(is_retriable_status(s), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409, 501] {
            assert!(!is_retriable_status(s), "{s}");
        }
    }

    #[test]
    fn secrets_are_scrubbed_and_urls_encoded() {
        let mut config = ClientConfig::new("org-1", "https://api.example.test").unwrap();
        config.sites.push(super::super::config::SiteConfig {
            name: "acme".into(),
            url: Url::parse("https://acme.example.test").unwrap(),
            products: vec![],
        });
        let creds = Credentials {
            org_api_key: super::super::config::Secret::new("KEY-abcdef"),
            site_user: Some(super::super::config::SiteUser {
                email: "bot@example.com".into(),
                api_token: super::super::config::Secret::new("TOKEN-xyz"),
            }),
        };
        let http = Http::new(config, &creds, std::sync::Arc::new(super::super::observer::NoopObserver)).unwrap();
        assert_eq!(
            http.scrub("echo: Bearer KEY-abcdef and TOKEN-xyz".into()),
            "echo: Bearer [redacted] and [redacted]"
        );
        let url = http.admin_url(&["v2", "orgs", "org-1", "users", "qm:abc|1/2"]);
        assert_eq!(url.as_str(), "https://api.example.test/admin/v2/orgs/org-1/users/qm:abc|1%2F2");
        assert!(http.same_origin(&Url::parse("https://api.example.test/admin/v1/x?cursor=1").unwrap()));
        assert!(!http.same_origin(&Url::parse("https://evil.example.test/admin").unwrap()));
        assert_eq!(http.site_url(&["rest", "api", "3"]).unwrap().as_str(), "https://acme.example.test/rest/api/3");
        assert!(!format!("{:?}", http.org_auth).contains("KEY-abcdef"), "header marked sensitive");
    }
}
