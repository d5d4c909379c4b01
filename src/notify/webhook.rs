//! A Slack-compatible incoming webhook: POST `{"text": ...}` as JSON.
//!
//! The URL is a secret (whoever holds it can post to the channel), so it appears in no `Debug`,
//! log line or error: reqwest's errors are stripped of it and response texts scrubbed.

use std::{fmt, time::Duration};

use k8s_openapi::api::core::v1::Secret;

use super::{DeliveryFuture, Message, Notifier, NotifyError, smtp::secret_value};
use crate::crd::SecretKeyRef;

pub struct WebhookNotifier {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier").field("url", &"[redacted]").finish()
    }
}

impl WebhookNotifier {
    pub fn new(url: &str) -> Result<Self, NotifyError> {
        Self::with_timeout(url, Duration::from_secs(15))
    }

    /// Errors name the setting, never the URL.
    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self, NotifyError> {
        crate::tls::install_crypto_provider();
        let url: reqwest::Url =
            url.trim().parse().map_err(|e| NotifyError::Config(format!("summary webhook URL is not a URL ({e})")))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(NotifyError::Config("summary webhook URL must be an http(s) URL with a host".to_owned()));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            // A redirect would carry the summary somewhere the Secret did not name.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Config(format!("summary webhook HTTP client: {}", e.without_url())))?;
        Ok(Self { client, url })
    }

    /// The URL from the Secret the organization's `summaryWebhookSecretRef` names.
    pub fn from_secret(secret: &Secret, reference: &SecretKeyRef) -> Result<Self, NotifyError> {
        Self::new(&secret_value(secret, &reference.name, &reference.key)?)
    }

    fn scrub(&self, text: &str) -> String {
        let mut text = text.replace(self.url.as_str(), "[webhook URL]");
        let path = self.url.path();
        if path.len() > 1 {
            text = text.replace(path, "[webhook path]");
        }
        text
    }
}

/// The chat text: the subject as a bold first line, then the body. `&`, `<` and `>` are escaped
/// as Slack requires: otherwise a display name such as `<!channel>` in a failure line would ping
/// the whole channel, and `<url|text>` would become a link.
pub fn webhook_text(message: &Message) -> String {
    let escape = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    format!("*{}*\n{}", escape(&message.subject), escape(&message.body))
}

impl Notifier for WebhookNotifier {
    fn deliver<'a>(&'a self, message: &'a Message) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let payload = serde_json::json!({ "text": webhook_text(message) });
            let response = self.client.post(self.url.clone()).json(&payload).send().await.map_err(|e| {
                // Connection refused, timeouts, resets: the endpoint may be back later.
                NotifyError::Transient(format!("summary webhook: {}", e.without_url()))
            })?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            // Slack answers with a short reason ("invalid_token", "channel_not_found").
            let reason: String = response.text().await.unwrap_or_default().chars().take(200).collect();
            let text = self.scrub(&format!("summary webhook answered {status}: {}", reason.trim()));
            if status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT
            {
                Err(NotifyError::Transient(text))
            } else {
                Err(NotifyError::Permanent(text))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_are_refused_without_showing_them() {
        for bad in ["not a url with token-123", "ftp://hooks.example/token-123", "mailto:token-123@example.com"] {
            let e = WebhookNotifier::new(bad).unwrap_err();
            assert!(matches!(e, NotifyError::Config(_)));
            assert!(e.to_string().contains("summary webhook URL"), "{e}");
            assert!(!e.to_string().contains("token-123"), "{e}");
        }
    }

    #[test]
    fn chat_text_cannot_mention_the_channel_or_smuggle_links() {
        let message = Message {
            to: vec![],
            subject: "R&D <run>".into(),
            body: "failed: <!channel> <https://evil.example|click>".into(),
            reply_to: None,
            kind: crate::notify::MessageKind::Summary,
        };
        assert_eq!(
            webhook_text(&message),
            "*R&amp;D &lt;run&gt;*\nfailed: &lt;!channel&gt; &lt;https://evil.example|click&gt;"
        );
    }

    #[test]
    fn debug_and_scrubbed_texts_hide_the_url() {
        let n = WebhookNotifier::new("https://hooks.example.com/services/T0/B0/token-123").unwrap();
        assert!(!format!("{n:?}").contains("token-123"));
        let s = n.scrub("posted to https://hooks.example.com/services/T0/B0/token-123 and /services/T0/B0/token-123");
        assert!(!s.contains("token-123"), "{s}");
    }
}
