//! Email over SMTP (lettre): STARTTLS, implicit TLS, or plain for a local test server.
//!
//! The password is handed in as a value (read from the Secret by the caller, or with
//! [`SmtpCredentials::from_secret`]) and never leaves this module: `Debug` redacts it, and every
//! error text is scrubbed of it, in case a server echoes what it was sent.

use std::{fmt, time::Duration};

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    message::{
        Mailbox,
        header::{ContentType, HeaderName, HeaderValue},
    },
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};

use super::{DeliveryFuture, Message, Notifier, NotifyError};
use crate::crd::{MailSettings, SmtpCredentialsRef, SmtpTls};

/// The SMTP user name and password. `Debug` shows the user name only.
#[derive(Clone)]
pub struct SmtpCredentials {
    username: String,
    password: String,
}

impl SmtpCredentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self { username: username.into(), password: password.into() }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// Reads the user name and password from the Secret the organization's mail settings name.
    /// Errors name the Secret and the key, never a value.
    pub fn from_secret(secret: &Secret, reference: &SmtpCredentialsRef) -> Result<Self, NotifyError> {
        let username = secret_value(secret, &reference.name, &reference.username_key)?;
        let password = secret_value(secret, &reference.name, &reference.password_key)?;
        Ok(Self { username, password })
    }

    /// Every form in which the password could come back in a server's reply: as it is, and
    /// base64-encoded alone or inside an AUTH PLAIN payload.
    fn secret_forms(&self) -> Vec<String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut forms = vec![
            self.password.clone(),
            b64.encode(&self.password),
            b64.encode(format!("\0{}\0{}", self.username, self.password)),
        ];
        forms.retain(|f| !f.is_empty());
        forms
    }
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpCredentials").field("username", &self.username).field("password", &"[redacted]").finish()
    }
}

/// A value from a Secret's `data` (or `stringData`, for Secrets built in memory), as UTF-8.
pub fn secret_value(secret: &Secret, secret_name: &str, key: &str) -> Result<String, NotifyError> {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(key)).map(|s| s.clone().into_bytes()));
    let Some(bytes) = bytes else {
        return Err(NotifyError::Config(format!("Secret {secret_name:?} has no key {key:?}")));
    };
    let value = String::from_utf8(bytes)
        .map_err(|_| NotifyError::Config(format!("Secret {secret_name:?} key {key:?} is not UTF-8 text")))?;
    if value.is_empty() {
        return Err(NotifyError::Config(format!("Secret {secret_name:?} key {key:?} is empty")));
    }
    Ok(value)
}

/// What the CRD does not carry: connection tuning and, for tests and private CAs, extra trusted
/// roots.
#[derive(Clone, Debug)]
pub struct SmtpOptions {
    /// For each network step (connect, each command).
    pub timeout: Duration,
    /// PEM certificates trusted in addition to the platform's roots.
    pub extra_root_certificates_pem: Vec<Vec<u8>>,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(30), extra_root_certificates_pem: Vec::new() }
    }
}

pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The organization's replyTo, for messages that carry none of their own.
    reply_to: Option<Mailbox>,
    host: String,
    port: u16,
    tls: SmtpTls,
    username: Option<String>,
    /// Texts scrubbed from every error (see [`SmtpCredentials::secret_forms`]).
    secret_forms: Vec<String>,
}

impl fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("from", &self.from.to_string())
            .field("username", &self.username)
            .field("password", &self.secret_forms.first().map(|_| "[redacted]"))
            .finish()
    }
}

impl SmtpNotifier {
    pub fn new(settings: &MailSettings, credentials: Option<SmtpCredentials>) -> Result<Self, NotifyError> {
        Self::with_options(settings, credentials, SmtpOptions::default())
    }

    /// Checks the settings (errors name the field, as in the AtlassianOrganization: `mail.from`)
    /// and prepares the transport; no connection is made until the first delivery.
    pub fn with_options(
        settings: &MailSettings,
        credentials: Option<SmtpCredentials>,
        options: SmtpOptions,
    ) -> Result<Self, NotifyError> {
        let host = settings.host.trim();
        if host.is_empty() {
            return Err(NotifyError::Config("mail.host is empty".into()));
        }
        let port = u16::try_from(settings.port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| NotifyError::Config(format!("mail.port {} is not a TCP port (1-65535)", settings.port)))?;
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| NotifyError::Config(format!("mail.from {:?} is not an email address: {e}", settings.from)))?;
        let reply_to = settings
            .reply_to
            .as_deref()
            .map(|r| {
                r.parse::<Mailbox>()
                    .map_err(|e| NotifyError::Config(format!("mail.replyTo {r:?} is not an email address: {e}")))
            })
            .transpose()?;
        if credentials.is_some() && settings.tls == SmtpTls::None && !is_loopback(host) {
            return Err(NotifyError::Config(format!(
                "mail.tls is None with credentials: the password would cross the network to {host} unencrypted; use StartTls or Tls"
            )));
        }

        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(port).timeout(Some(options.timeout));
        if settings.tls != SmtpTls::None {
            let mut tls = TlsParameters::builder(host.to_owned());
            for (i, pem) in options.extra_root_certificates_pem.iter().enumerate() {
                let cert = Certificate::from_pem(pem)
                    .map_err(|e| NotifyError::Config(format!("extra root certificate {i}: {e}")))?;
                tls = tls.add_root_certificate(cert);
            }
            let tls = tls.build().map_err(|e| NotifyError::Config(format!("TLS for mail.host {host:?}: {e}")))?;
            builder = builder.tls(match settings.tls {
                SmtpTls::StartTls => Tls::Required(tls),
                _ => Tls::Wrapper(tls),
            });
        }
        let (username, secret_forms) = match credentials {
            Some(c) => {
                let forms = c.secret_forms();
                builder = builder.credentials(Credentials::new(c.username.clone(), c.password));
                (Some(c.username), forms)
            }
            None => (None, Vec::new()),
        };
        Ok(Self {
            transport: builder.build(),
            from,
            reply_to,
            host: host.to_owned(),
            port,
            tls: settings.tls,
            username,
            secret_forms,
        })
    }

    fn email(&self, message: &Message) -> Result<lettre::Message, NotifyError> {
        if message.to.is_empty() {
            return Err(NotifyError::Permanent(format!("message {:?} has no recipients", message.subject)));
        }
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(message.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            // RFC 3834: out-of-office responders must not answer automated mail, or every run
            // would fill the reply-to mailbox.
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".into()));
        for to in &message.to {
            builder = builder.to(parse_address(to, "recipient")?);
        }
        match &message.reply_to {
            Some(r) => builder = builder.reply_to(parse_address(r, "replyTo")?),
            None => {
                if let Some(r) = &self.reply_to {
                    builder = builder.reply_to(r.clone());
                }
            }
        }
        builder.body(message.body.clone()).map_err(|e| NotifyError::Permanent(format!("building the message: {e}")))
    }

    /// Sorts a failure into transient (4xx replies, network, timeouts: trying later may work)
    /// and permanent (5xx replies, TLS and protocol problems: the settings or the message must
    /// change), with the secret scrubbed from the text.
    fn classify(&self, e: lettre::transport::smtp::Error) -> NotifyError {
        let text = self.scrub(&format!("SMTP {}:{}: {e}", self.host, self.port));
        if e.is_permanent() || e.is_tls() || e.is_client() || caused_by_tls(&e) {
            NotifyError::Permanent(text)
        } else {
            NotifyError::Transient(text)
        }
    }

    fn scrub(&self, text: &str) -> String {
        self.secret_forms.iter().fold(text.to_owned(), |t, secret| t.replace(secret.as_str(), "[redacted]"))
    }
}

impl Notifier for SmtpNotifier {
    fn deliver<'a>(&'a self, message: &'a Message) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let email = self.email(message)?;
            self.transport.send(email).await.map(|_| ()).map_err(|e| self.classify(e))
        })
    }
}

/// An implicit-TLS handshake failure (an untrusted certificate, no common protocol) reaches us as
/// a connection error; find the TLS error beneath it, since retrying will not change the answer.
fn caused_by_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        next = err.source();
    }
    false
}

fn parse_address(address: &str, what: &str) -> Result<Mailbox, NotifyError> {
    address.parse().map_err(|e| NotifyError::Permanent(format!("{what} {address:?} is not an email address: {e}")))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::*;

    fn settings(tls: SmtpTls) -> MailSettings {
        MailSettings {
            host: "smtp.example.com".into(),
            port: 587,
            tls,
            from: "Seatwarden <it@example.com>".into(),
            reply_to: None,
            admin_recipients: vec![],
            credentials_secret_ref: None,
            summary_webhook_secret_ref: None,
        }
    }

    #[test]
    fn bad_settings_are_refused_naming_the_field() {
        let cases: Vec<(MailSettings, &str)> = vec![
            (MailSettings { host: " ".into(), ..settings(SmtpTls::StartTls) }, "mail.host"),
            (MailSettings { port: 0, ..settings(SmtpTls::StartTls) }, "mail.port"),
            (MailSettings { port: 70000, ..settings(SmtpTls::StartTls) }, "mail.port"),
            (MailSettings { from: "not an address".into(), ..settings(SmtpTls::StartTls) }, "mail.from"),
            (MailSettings { reply_to: Some("@@".into()), ..settings(SmtpTls::StartTls) }, "mail.replyTo"),
        ];
        for (s, field) in cases {
            let e = SmtpNotifier::new(&s, None).unwrap_err();
            assert!(matches!(e, NotifyError::Config(_)) && e.to_string().contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn a_password_never_crosses_the_network_unencrypted() {
        let creds = SmtpCredentials::new("mailer", "hunter2-secret");
        let e = SmtpNotifier::new(&settings(SmtpTls::None), Some(creds.clone())).unwrap_err();
        assert!(e.to_string().contains("mail.tls"), "{e}");
        assert!(!e.to_string().contains("hunter2-secret"));
        // A local test server is the one exception.
        let local = MailSettings { host: "127.0.0.1".into(), ..settings(SmtpTls::None) };
        assert!(SmtpNotifier::new(&local, Some(creds)).is_ok());
    }

    #[test]
    fn debug_shows_who_but_never_the_password() {
        let creds = SmtpCredentials::new("mailer", "hunter2-secret");
        let notifier = SmtpNotifier::new(&settings(SmtpTls::Tls), Some(creds.clone())).unwrap();
        for text in [format!("{creds:?}"), format!("{notifier:?}"), format!("{notifier:#?}")] {
            assert!(text.contains("mailer") && text.contains("[redacted]"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn credentials_come_from_the_named_secret_keys() {
        let reference =
            SmtpCredentialsRef { name: "smtp".into(), username_key: "user".into(), password_key: "pass".into() };
        let mut secret = Secret {
            data: Some(BTreeMap::from([
                ("user".to_owned(), ByteString(b"mailer".to_vec())),
                ("pass".to_owned(), ByteString(b"hunter2-secret".to_vec())),
            ])),
            ..Default::default()
        };
        let c = SmtpCredentials::from_secret(&secret, &reference).unwrap();
        assert_eq!(c.username(), "mailer");
        assert_eq!(c.password, "hunter2-secret");

        secret.data.as_mut().unwrap().remove("pass");
        let e = SmtpCredentials::from_secret(&secret, &reference).unwrap_err().to_string();
        assert!(e.contains("\"smtp\"") && e.contains("\"pass\""), "{e}");
        assert!(!e.contains("mailer"), "{e}");
    }

    #[test]
    fn scrubbing_removes_every_form_of_the_password() {
        let creds = SmtpCredentials::new("mailer", "hunter2-secret");
        let notifier = SmtpNotifier::new(&settings(SmtpTls::Tls), Some(creds.clone())).unwrap();
        let echoed = format!("535 bad: {}", creds.secret_forms().join(" / "));
        let scrubbed = notifier.scrub(&echoed);
        assert!(!scrubbed.contains("hunter2"), "{scrubbed}");
        for form in creds.secret_forms() {
            assert!(!scrubbed.contains(&form), "{scrubbed}");
        }
    }
}
