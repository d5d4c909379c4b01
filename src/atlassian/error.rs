//! Typed errors naming the call and page, and lenient parsing of Atlassian's many error bodies.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::config::ConfigError;
use super::observer::Operation;

/// Which call failed: the operation, and where it was in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSite {
    pub operation: Operation,
    pub directory: Option<Box<str>>,
    /// Which part of a split listing (`claimStatus managed`, ...).
    pub listing: Option<&'static str>,
    /// 1-based page of a listing.
    pub page: Option<u32>,
    /// The account or group the call was about, when there is one.
    pub subject: Option<Box<str>>,
}

impl CallSite {
    pub fn new(operation: Operation) -> Self {
        Self { operation, directory: None, listing: None, page: None, subject: None }
    }
    pub fn directory(mut self, directory: &str) -> Self {
        self.directory = Some(directory.into());
        self
    }
    pub fn listing(mut self, listing: Option<&'static str>) -> Self {
        self.listing = listing;
        self
    }
    pub fn page(mut self, page: u64) -> Self {
        self.page = Some(u32::try_from(page).unwrap_or(u32::MAX));
        self
    }
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

impl fmt::Display for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.operation.name())?;
        if let Some(d) = &self.directory {
            write!(f, " (directory {d})")?;
        }
        if let Some(l) = self.listing {
            write!(f, " [{l}]")?;
        }
        if let Some(s) = &self.subject {
            write!(f, " for {s}")?;
        }
        if let Some(p) = self.page {
            write!(f, " page {p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AtlassianError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{call}: HTTP {status}{} after {attempts} attempt(s): {message}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
    Status { call: CallSite, status: u16, code: Option<String>, message: String, attempts: u32 },
    #[error("{call}: {url}: timed out after {timeout:?} ({attempts} attempt(s))")]
    Timeout { call: CallSite, url: String, timeout: Duration, attempts: u32 },
    #[error("{call}: no answer after {attempts} attempt(s): {message}")]
    Transport { call: CallSite, message: String, attempts: u32 },
    #[error("{call}: response body does not parse: {message}")]
    Parse { call: CallSite, message: String },
    #[error("{call}: incomplete data: {message}")]
    Incomplete { call: CallSite, message: String },
}

impl AtlassianError {
    pub fn call(&self) -> Option<&CallSite> {
        match self {
            AtlassianError::Config(_) => None,
            AtlassianError::Status { call, .. }
            | AtlassianError::Timeout { call, .. }
            | AtlassianError::Transport { call, .. }
            | AtlassianError::Parse { call, .. }
            | AtlassianError::Incomplete { call, .. } => Some(call),
        }
    }

    /// HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            AtlassianError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The gist of an error body, whatever its shape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// An application code (`ADMIN-409-3`), a User management key (`forbidden.action`) or a
    /// SCIM type, when the body carried one.
    pub code: Option<String>,
    /// Further codes or reason keys found in the body (`context.errorCodes`, `reason.key`, ...).
    pub detail_codes: Vec<String>,
    /// Atlassian's human-readable message (never empty: falls back to the raw body or the status).
    pub message: String,
}

const MAX_MESSAGE: usize = 300;

impl ErrorBody {
    /// Parses any of the shapes in API.md §1.2; unknown bodies become their (truncated) text.
    pub fn parse(status: u16, body: &[u8]) -> ErrorBody {
        let text = String::from_utf8_lossy(body);
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            let trimmed = text.trim();
            return ErrorBody {
                message: if trimmed.is_empty() { format!("HTTP {status} with no body") } else { truncate(trimmed) },
                ..Default::default()
            };
        };
        let mut out = ErrorBody::default();
        let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        // Admin v1/v2 application errors and UAM errors: {"errors":[{code,title,detail}]}.
        if let Some(errors) = value.get("errors").and_then(Value::as_array) {
            let mut messages = Vec::new();
            for e in errors {
                if let Some(code) = str_of(e, "code") {
                    if out.code.is_none() {
                        out.code = Some(code);
                    } else {
                        out.detail_codes.push(code);
                    }
                }
                let parts: Vec<String> = ["title", "detail"].iter().filter_map(|k| str_of(e, k)).collect();
                if !parts.is_empty() {
                    messages.push(parts.join(": "));
                }
            }
            out.message = messages.join("; ");
        }
        // Jira ErrorCollection: {"errorMessages":[...],"errors":{field: msg}}.
        if let Some(list) = value.get("errorMessages").and_then(Value::as_array) {
            let mut messages: Vec<String> = list.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect();
            if let Some(fields) = value.get("errors").and_then(Value::as_object) {
                messages.extend(fields.iter().map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default())));
            }
            out.message = messages.join("; ");
        }
        // User management: {"key":"forbidden.action","context":{message, errorCodes, reason}}.
        if let Some(key) = str_of(&value, "key") {
            out.code = Some(key);
            if let Some(context) = value.get("context") {
                if let Some(m) = str_of(context, "message") {
                    out.message = m;
                }
                collect_codes(context, &mut out.detail_codes);
            }
        }
        // SCIM: {"scimType","detail"}.
        if let Some(scim_type) = str_of(&value, "scimType") {
            out.code.get_or_insert(scim_type);
        }
        // Bitbucket: {"type":"error","error":{"message","detail"}}.
        if let Some(error) = value.get("error").filter(|e| e.is_object()) {
            let parts: Vec<String> = ["message", "detail"].iter().filter_map(|k| str_of(error, k)).collect();
            out.message = parts.join(": ");
        }
        // Gateway ProxyError {"code":429,"message"}, Spring-style {"error","message"}, SCIM "detail".
        if out.message.is_empty() {
            out.message = str_of(&value, "message")
                .or_else(|| str_of(&value, "detail"))
                .or_else(|| str_of(&value, "error"))
                .or_else(|| str_of(&value, "title"))
                .unwrap_or_default();
        }
        if out.code.is_none() {
            out.code = str_of(&value, "code");
        }
        if out.message.is_empty() {
            out.message = if text.trim().is_empty() { format!("HTTP {status}") } else { text.trim().to_owned() };
        }
        out.message = truncate(&out.message);
        out
    }

    /// Whether this body (or its detail codes) carries `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code) || self.detail_codes.iter().any(|c| c == code)
    }

    /// Whether any code starts with `prefix`.
    pub fn has_code_prefix(&self, prefix: &str) -> bool {
        self.code.iter().chain(&self.detail_codes).any(|c| c.starts_with(prefix))
    }
}

fn collect_codes(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("key" | "code" | "reason", Value::String(s)) => out.push(s.clone()),
                    ("errorCodes", Value::Array(items)) => {
                        out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
                    }
                    (_, nested @ (Value::Object(_) | Value::Array(_))) => collect_codes(nested, out),
                    _ => {}
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_codes(i, out)),
        _ => {}
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_owned();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_admin_application_errors() {
        let body = br#"{"errors":[{"id":"1","status":"409","code":"ADMIN-409-3","title":"License limit","detail":"Jira is full"}]}"#;
        let e = ErrorBody::parse(409, body);
        assert_eq!(e.code.as_deref(), Some("ADMIN-409-3"));
        assert_eq!(e.message, "License limit: Jira is full");
        assert!(e.has_code("ADMIN-409-3"));
    }

    #[test]
    fn parses_gateway_and_user_management_and_jira_bodies() {
        let e = ErrorBody::parse(429, br#"{"code":429,"message":"Rate limit exceeded"}"#);
        assert_eq!(e.message, "Rate limit exceeded");
        assert_eq!(e.code, None, "a numeric code is not an application code");

        let e = ErrorBody::parse(
            403,
            br#"{"key":"forbidden.action","context":{"message":"managed by SCIM","reason":{"key":"externalDirectory.scim"}}}"#,
        );
        assert_eq!(e.code.as_deref(), Some("forbidden.action"));
        assert_eq!(e.message, "managed by SCIM");
        assert!(e.has_code("externalDirectory.scim"));
        assert!(e.has_code_prefix("externalDirectory"));

        let e = ErrorBody::parse(
            409,
            br#"{"key":"conflict.lifecycleErrors","context":{"message":"no","errorCodes":["ALREADY_ACTIVE"]}}"#,
        );
        assert!(e.has_code("ALREADY_ACTIVE"));

        let e = ErrorBody::parse(400, br#"{"errorMessages":["The number of licensed users is exceeded"],"errors":{}}"#);
        assert_eq!(e.message, "The number of licensed users is exceeded");

        let e =
            ErrorBody::parse(403, br#"{"timestamp":"x","status":403,"error":"Forbidden","message":"No permission"}"#);
        assert_eq!(e.message, "No permission");

        let e = ErrorBody::parse(410, br#"{"type":"error","error":{"message":"Gone","detail":"CHANGE-2770"}}"#);
        assert_eq!(e.message, "Gone: CHANGE-2770");
    }

    #[test]
    fn non_json_bodies_become_truncated_text() {
        let e = ErrorBody::parse(502, b"<html>bad gateway</html>");
        assert_eq!(e.message, "<html>bad gateway</html>");
        let e = ErrorBody::parse(500, b"");
        assert_eq!(e.message, "HTTP 500 with no body");
        let long = "x".repeat(1000);
        assert!(ErrorBody::parse(500, long.as_bytes()).message.len() < 400);
    }

    #[test]
    fn errors_name_call_and_page() {
        let call = CallSite::new(Operation::UsersSearch).directory("d1").page(7);
        let err = AtlassianError::Status {
            call,
            status: 500,
            code: Some("ADMIN-500-1".into()),
            message: "boom".into(),
            attempts: 6,
        };
        assert_eq!(
            err.to_string(),
            "users.search (directory d1) page 7: HTTP 500 ADMIN-500-1 after 6 attempt(s): boom"
        );
    }
}
