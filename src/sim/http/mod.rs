//! The HTTP front: one handler receives every request, authenticates it as the real API at that
//! path would, applies the per-credential rate limit and the injected faults, routes it, and adds
//! the `X-RateLimit-*` headers to whatever comes back.
//!
//! Handlers return `Result<_, Response>` so an early error is the response itself; a response is
//! built once per request, so boxing it would buy nothing.
#![allow(clippy::result_large_err)]

mod admin;
mod control;
mod site;

pub(crate) use admin::users_search_page;

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::Response,
};
use base64::Engine;
use jiff::Timestamp;
use rand::RngExt;
use serde::{Serialize, de::DeserializeOwned};

use super::{Credential, RequestRecord, Shared, lock};

/// Which API a path belongs to: decides the credential it takes and the shape of its errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApiFamily {
    /// `/admin/...` but v2: Organizations API (Bearer org API key), gateway errors included.
    Admin,
    /// `/admin/v2/...`: as `Admin`, but its 401 and 429 bodies are the `Errors` shape too.
    AdminV2,
    /// `/users/{id}/manage...`: User management API (Bearer org API key).
    UserManagement,
    /// `/rest/api/3/...`: Jira (Basic site email + token).
    Jira,
    /// `/wiki/rest/api/...`: Confluence (Basic).
    Confluence,
    /// `/2.0/...`: Bitbucket (Basic).
    Bitbucket,
    /// `/_sim/...`: the control API (Bearer org API key).
    Control,
    Unknown,
}

impl ApiFamily {
    fn of(path: &str) -> Self {
        if path.starts_with("/admin/v2/") {
            ApiFamily::AdminV2
        } else if path.starts_with("/admin/") {
            ApiFamily::Admin
        } else if path.starts_with("/users/") {
            ApiFamily::UserManagement
        } else if path.starts_with("/rest/api/3/") {
            ApiFamily::Jira
        } else if path.starts_with("/wiki/rest/api/") {
            ApiFamily::Confluence
        } else if path.starts_with("/2.0/") {
            ApiFamily::Bitbucket
        } else if path == "/_sim" || path.starts_with("/_sim/") {
            ApiFamily::Control
        } else {
            ApiFamily::Unknown
        }
    }

    fn uses_site_credential(self) -> bool {
        matches!(self, ApiFamily::Jira | ApiFamily::Confluence | ApiFamily::Bitbucket)
    }

    /// Behind the api.atlassian.com gateway, whose 401/429/503 bodies are `{"code","message"}`.
    fn behind_gateway(self) -> bool {
        matches!(self, ApiFamily::Admin | ApiFamily::UserManagement | ApiFamily::Control | ApiFamily::Unknown)
    }
}

/// Everything a route handler needs about the request being served.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub now: Timestamp,
    pub family: ApiFamily,
    pub query: Query,
    pub body: axum::body::Bytes,
    /// The page of every listing that must fail (fault `fail-page`).
    pub fail_page: Option<u32>,
    /// The faults in force for this request (listing shapes: duplicate, cycle, empty, refusals).
    pub faults: super::Faults,
}

impl Ctx<'_> {
    pub fn error(&self, status: u16, code: &str, title: &str, detail: &str) -> Response {
        error_response(self.family, status, code, title, detail)
    }

    pub fn write_error(&self, e: &super::state::WriteError) -> Response {
        match self.family {
            ApiFamily::UserManagement => {
                json(e.status, &serde_json::json!({"key": e.key, "context": {"message": e.detail, "code": e.code}}))
            }
            _ => self.error(e.status, e.code, e.title, &e.detail),
        }
    }

    /// Parses the JSON body, or answers 400 naming what is wrong with it.
    pub fn body_json<T: DeserializeOwned + Default>(&self) -> Result<T, Response> {
        if self.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(T::default());
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| self.error(400, "ADMIN-400-24", "Invalid request body", &format!("request body: {e}")))
    }

    /// A listing's page `page` (1-based) is due to fail.
    pub fn page_fails(&self, page: u32) -> Option<Response> {
        (self.fail_page == Some(page)).then(|| {
            self.error(500, "ADMIN-500-1", "Internal error", &format!("page {page} failed (injected fault fail-page)"))
        })
    }

    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }
}

/// A parsed query string; repeated keys and comma-separated values both make lists.
#[derive(Default, Debug)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Self {
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string))
            .collect()
    }

    /// An integer parameter within `min..=max`, `default` when absent; an error names the parameter.
    pub fn int(&self, key: &str, default: u32, min: u32, max: u32) -> Result<u32, String> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| format!("query parameter {key}={v:?}: expected an integer from {min} to {max}")),
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn json<T: Serialize + ?Sized>(status: u16, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    json_bytes(status, bytes)
}

pub(crate) fn json_bytes(status: u16, bytes: Vec<u8>) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes))
        .unwrap_or_default()
}

pub(crate) fn no_content() -> Response {
    Response::builder().status(StatusCode::NO_CONTENT).body(Body::empty()).unwrap_or_default()
}

/// An error in the shape the API family uses for it.
pub(crate) fn error_response(family: ApiFamily, status: u16, code: &str, title: &str, detail: &str) -> Response {
    if family.behind_gateway() && matches!(status, 401 | 429 | 503) {
        return json(status, &serde_json::json!({"code": status, "message": detail}));
    }
    match family {
        ApiFamily::Admin | ApiFamily::AdminV2 | ApiFamily::Control | ApiFamily::Unknown => json(
            status,
            &serde_json::json!({"errors": [{
                "id": error_id(code, detail),
                "status": status.to_string(),
                "code": code,
                "title": title,
                "detail": detail,
            }]}),
        ),
        ApiFamily::UserManagement => {
            let key = match status {
                400 => "bodyParseFailure",
                403 => "forbidden",
                404 => "notFound",
                409 => "conflict.lifecycleErrors",
                _ => "internalServerError",
            };
            json(status, &serde_json::json!({"key": key, "context": {"message": detail}}))
        }
        ApiFamily::Jira => {
            json(status, &serde_json::json!({"errorMessages": [detail], "errors": {}, "status": status}))
        }
        ApiFamily::Confluence => json(status, &serde_json::json!({"statusCode": status, "message": detail})),
        ApiFamily::Bitbucket => {
            json(status, &serde_json::json!({"type": "error", "error": {"message": title, "detail": detail}}))
        }
    }
}

/// A stable id for an error occurrence (the real API sends a uuid).
fn error_id(code: &str, detail: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (code, detail).hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Opaque cursor: base64url of JSON holding the query it continues, the position and page number.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Cursor<Q> {
    pub q: Q,
    pub at: usize,
    pub page: u32,
}

pub(crate) fn encode_cursor<Q: Serialize>(cursor: &Cursor<Q>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

pub(crate) fn decode_cursor<Q: DeserializeOwned>(raw: &str) -> Option<Cursor<Q>> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) fn invalid_cursor(ctx: &Ctx<'_>) -> Response {
    ctx.error(400, "ADMIN-400-1", "Invalid page cursor", "cursor: not a cursor this server issued")
}

/// Which credential a request presented, if it is one this path accepts.
fn authenticate(shared: &Shared, family: ApiFamily, headers: &HeaderMap) -> Option<Credential> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if family.uses_site_credential() {
        let encoded = auth.strip_prefix("Basic ").or_else(|| auth.strip_prefix("basic "))?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
        let (email, token) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        (email.eq_ignore_ascii_case(&shared.config.site_email) && token == shared.config.site_token())
            .then_some(Credential::SiteToken)
    } else {
        let key = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer "))?;
        (key.trim() == shared.config.api_key).then_some(Credential::OrgApiKey)
    }
}

/// Rate-limit state of one credential in the current minute of the simulator's clock.
pub(crate) struct RateDecision {
    /// The simulator's clock when the request was counted.
    now: Timestamp,
    limit: u32,
    remaining: u32,
    reset: Timestamp,
    /// Seconds to wait when the request is over the limit.
    retry_after: Option<i64>,
}

/// The nominal limit reported when no `--rate-limit` is set (never enforced).
const UNLIMITED_REPORTED: u32 = 100_000;

fn rate_check(shared: &Shared, credential: Credential, now: Timestamp) -> RateDecision {
    let configured = *lock(&shared.rate_limit);
    let window = now.as_second().div_euclid(60);
    let reset = Timestamp::from_second((window + 1) * 60).unwrap_or(now);
    let mut counters = lock(&shared.counters);
    let slot = counters.windows.entry(credential).or_insert((window, 0));
    if slot.0 != window {
        *slot = (window, 0);
    }
    slot.1 = slot.1.saturating_add(1);
    let used = slot.1;
    let limit = configured.unwrap_or(UNLIMITED_REPORTED);
    let over = configured.is_some_and(|l| used > l);
    RateDecision {
        now,
        limit,
        remaining: limit.saturating_sub(used),
        reset,
        retry_after: over.then(|| {
            // Whole seconds until the window resets, rounded up: waiting that long always suffices.
            let wait = reset.duration_since(now);
            (wait.as_secs() + i64::from(wait.subsec_nanos() > 0)).max(1)
        }),
    }
}

fn add_rate_headers(resp: &mut Response, rate: &RateDecision) {
    let h = resp.headers_mut();
    // The Date a client measures X-RateLimit-Reset against comes from the simulator's clock, as
    // the reset does; otherwise a moved clock would make every reset look hours away.
    let date = rate.now.to_zoned(jiff::tz::TimeZone::UTC).strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        h.insert(header::DATE, v);
    }
    h.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
    if let Ok(v) = HeaderValue::from_str(&rate.reset.to_string()) {
        h.insert("x-ratelimit-reset", v);
    }
    if rate.remaining < rate.limit / 5 {
        h.insert("x-ratelimit-nearlimit", HeaderValue::from_static("true"));
    }
}

fn with_retry_after(mut resp: Response, seconds: i64) -> Response {
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    resp
}

/// The one handler behind every path.
pub(crate) async fn dispatch(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let family = ApiFamily::of(&path);
    let now = shared.now();
    let method = parts.method.clone();

    let Some(credential) = authenticate(&shared, family, &parts.headers) else {
        shared.count(RequestRecord::new(now, None, &method, &path, 401));
        let detail = if family.uses_site_credential() {
            "Client must be authenticated with the site user's email and API token (Basic) to access this resource."
        } else {
            "Unauthorized: send the organization API key as a Bearer token."
        };
        let mut resp = error_response(family, 401, "ADMIN-401-1", "Unauthorized", detail);
        // An unauthenticated caller has no budget of its own; it is told the nominal one.
        let limit = (*lock(&shared.rate_limit)).unwrap_or(UNLIMITED_REPORTED);
        let reset = Timestamp::from_second((now.as_second().div_euclid(60) + 1) * 60).unwrap_or(now);
        add_rate_headers(&mut resp, &RateDecision { now, limit, remaining: limit, reset, retry_after: None });
        return resp;
    };

    let rate = rate_check(&shared, credential, now);
    if let Some(wait) = rate.retry_after {
        shared.count(RequestRecord::new(now, Some(credential), &method, &path, 429));
        let mut resp = with_retry_after(
            error_response(
                family,
                429,
                "ADMIN-429-1",
                "Rate limit exceeded",
                "Rate limit exceeded: too many requests.",
            ),
            wait,
        );
        add_rate_headers(&mut resp, &rate);
        return resp;
    }

    let faults = if family == ApiFamily::Control { Default::default() } else { shared.faults() };
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let injected = roll_fault(&shared, &faults, family);
    if let Some(mut resp) = injected {
        shared.count(RequestRecord::new(now, Some(credential), &method, &path, resp.status().as_u16()));
        add_rate_headers(&mut resp, &rate);
        return resp;
    }

    let body = match axum::body::to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => {
            let resp =
                error_response(family, 400, "ADMIN-400-24", "Invalid request body", &format!("request body: {e}"));
            shared.count(RequestRecord::new(now, Some(credential), &method, &path, 400));
            return resp;
        }
    };
    let ctx = Ctx {
        shared: &shared,
        now,
        family,
        query: Query::parse(parts.uri.query().unwrap_or("")),
        body,
        fail_page: faults.fail_page,
        faults: faults.clone(),
    };
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut resp = match family {
        ApiFamily::Admin | ApiFamily::AdminV2 | ApiFamily::UserManagement => admin::route(&ctx, &method, &segs),
        ApiFamily::Jira | ApiFamily::Confluence | ApiFamily::Bitbucket => site::route(&ctx, &method, &segs),
        ApiFamily::Control => control::route(&ctx, &method, &segs).await,
        ApiFamily::Unknown => None,
    }
    .unwrap_or_else(|| not_found(&ctx, &method, &path));

    if family != ApiFamily::Control && resp.status() == StatusCode::OK && faults.malformed > 0.0 {
        let hit = shared.rng().random_bool(faults.malformed);
        if hit {
            resp = json_bytes(200, b"{\"data\": [{\"accountId\": \"trunc".to_vec());
        }
    }
    shared.count(RequestRecord::new(now, Some(credential), &method, &path, resp.status().as_u16()));
    add_rate_headers(&mut resp, &rate);
    resp
}

fn roll_fault(shared: &Shared, faults: &super::Faults, family: ApiFamily) -> Option<Response> {
    let total = faults.rate_429 + faults.rate_503 + faults.rate_500;
    if total <= 0.0 {
        return None;
    }
    let r: f64 = shared.rng().random();
    if r < faults.rate_429 {
        Some(with_retry_after(
            error_response(family, 429, "ADMIN-429-1", "Rate limit exceeded", "Rate limit exceeded (injected fault)."),
            1,
        ))
    } else if r < faults.rate_429 + faults.rate_503 {
        Some(with_retry_after(
            error_response(family, 503, "ADMIN-503-1", "Service unavailable", "Service unavailable (injected fault)."),
            1,
        ))
    } else if r < total {
        Some(error_response(family, 500, "ADMIN-500-1", "Internal error", "Internal error (injected fault)."))
    } else {
        None
    }
}

fn not_found(ctx: &Ctx<'_>, method: &Method, path: &str) -> Response {
    ctx.error(404, "ADMIN-404-1", "Unknown resource", &format!("{method} {path}: no such endpoint in the simulator"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_lists_come_from_repeats_and_commas() {
        let q = Query::parse("expand=groups&expand=productAccess,platformRoles&limit=5&accountId=a%3Ab");
        assert_eq!(q.all("expand"), vec!["groups", "productAccess", "platformRoles"]);
        assert_eq!(q.int("limit", 20, 1, 100), Ok(5));
        assert_eq!(q.get("accountId"), Some("a:b"));
        assert!(q.int("limit", 20, 1, 4).unwrap_err().contains("limit"));
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor { q: vec!["x".to_string()], at: 42, page: 3 };
        let back: Cursor<Vec<String>> = decode_cursor(&encode_cursor(&c)).unwrap();
        assert_eq!((back.q, back.at, back.page), (vec!["x".to_string()], 42, 3));
        assert!(decode_cursor::<Vec<String>>("not a cursor!").is_none());
    }

    #[test]
    fn families_follow_the_path() {
        assert_eq!(ApiFamily::of("/admin/v1/orgs"), ApiFamily::Admin);
        assert_eq!(ApiFamily::of("/admin/v2/orgs/o/directories"), ApiFamily::AdminV2);
        assert_eq!(ApiFamily::of("/users/abc/manage"), ApiFamily::UserManagement);
        assert_eq!(ApiFamily::of("/rest/api/3/users/search"), ApiFamily::Jira);
        assert_eq!(ApiFamily::of("/wiki/rest/api/group"), ApiFamily::Confluence);
        assert_eq!(ApiFamily::of("/2.0/workspaces/acme/members"), ApiFamily::Bitbucket);
        assert_eq!(ApiFamily::of("/_sim/clock"), ApiFamily::Control);
    }
}
