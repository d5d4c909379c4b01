//! Notices and summaries against real servers: an aiosmtpd SMTP server the tests start (plain,
//! STARTTLS and implicit TLS, with authentication, and with scripted refusals) and a Slack-style
//! webhook receiver (axum) on 127.0.0.1.
//!
//! aiosmtpd comes from `make deps` (a venv under /var/cache/seatwarden-ci); without it the SMTP
//! tests skip, except with `CI` set, where they fail.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener as StdTcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, http::Uri, routing::post};
use seatwarden::{
    crd::{MailSettings, NoticeSettings, SmtpTls},
    notify::{
        Delivery, Notice, Notifier, NotifyError, RetryPolicy, RetryingNotifier, RoutingNotifier, RunSummaryMessage,
        SmtpCredentials, SmtpNotifier, WebhookNotifier, send_notice, send_summary, smtp::SmtpOptions,
    },
};
use serde::Deserialize;
use serde_json::Value;

const DEFAULT_SMTPD_PYTHON: &str = "/var/cache/seatwarden-ci/aiosmtpd-venv/bin/python";

/// The test SMTP server. Each accepted message is written as one JSON file (parsed and decoded by
/// Python's email package, so the tests read what a mail client would show); each RCPT, accepted
/// or not, is a line in rcpt.log, so the tests can count delivery attempts.
const SMTPD_SCRIPT: &str = r#"
import argparse, asyncio, email, email.policy, json, logging, os, ssl, warnings
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

p = argparse.ArgumentParser()
p.add_argument("--dir", required=True)
p.add_argument("--mode", choices=["plain", "starttls", "tls"], default="plain")
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--user")
p.add_argument("--password")
p.add_argument("--echo-auth-failures", action="store_true")
p.add_argument("--reject-rcpt", help="SMTP reply to RCPT, e.g. '451 4.3.0 Try again later'")
p.add_argument("--reject-count", type=int, default=-1, help="refuse this many RCPTs, then accept; -1: all")
a = p.parse_args()
# The tests allow AUTH without TLS on purpose; keep aiosmtpd's warnings about it out of the output.
warnings.simplefilter("ignore")
logging.getLogger("mail.log").setLevel(logging.ERROR)

class Handler:
    def __init__(self):
        self.seq = 0
        self.rejected = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with open(os.path.join(a.dir, "rcpt.log"), "a") as f:
            f.write(address + "\n")
        if a.reject_rcpt and (a.reject_count < 0 or self.rejected < a.reject_count):
            self.rejected += 1
            return a.reject_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.seq += 1
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "reply_to": str(msg["Reply-To"]) if msg["Reply-To"] else None,
            "auto_submitted": str(msg["Auto-Submitted"]) if msg["Auto-Submitted"] else None,
            "subject": str(msg["Subject"]),
            "content_type": msg.get_content_type(),
            "body": msg.get_content().replace("\r\n", "\n"),
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
        }
        tmp = os.path.join(a.dir, ".%06d.tmp" % self.seq)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(a.dir, "%06d.json" % self.seq))
        return "250 Message accepted for delivery"

def authenticator(server, session, envelope, mechanism, auth_data):
    if isinstance(auth_data, LoginPassword):
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if login == a.user and password == a.password:
            return AuthResult(success=True)
        if a.echo_auth_failures:
            # A careless server that repeats what it was sent.
            return AuthResult(success=False, handled=False,
                              message="535 5.7.8 rejected %s with password %s" % (login, password))
    return AuthResult(success=False, handled=False)

async def main():
    loop = asyncio.get_running_loop()
    handler = Handler()
    tls = None
    if a.mode != "plain":
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(a.cert, a.key)
    def factory():
        return SMTP(handler, hostname="localhost", loop=loop,
                    tls_context=tls if a.mode == "starttls" else None,
                    require_starttls=a.mode == "starttls",
                    authenticator=authenticator if a.user else None,
                    auth_required=bool(a.user), auth_require_tls=False)
    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=tls if a.mode == "tls" else None)
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"#;

/// A message as the SMTP server received it.
#[derive(Debug, Deserialize)]
struct Received {
    mail_from: String,
    rcpt_tos: Vec<String>,
    from: String,
    to: String,
    reply_to: Option<String>,
    auto_submitted: Option<String>,
    subject: String,
    content_type: String,
    body: String,
    tls: bool,
    authenticated: bool,
}

#[derive(Default)]
struct ServerConfig<'a> {
    mode: Option<&'a str>,
    certs: Option<&'a TestCerts>,
    login: Option<(&'a str, &'a str)>,
    echo_auth_failures: bool,
    reject_rcpt: Option<(&'a str, i32)>,
}

struct SmtpServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python with aiosmtpd, or None (skip) when it is missing outside CI.
fn smtpd_python() -> Option<PathBuf> {
    let python = std::env::var_os("SEATWARDEN_SMTPD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SMTPD_PYTHON));
    let usable = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if usable {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but {} cannot import aiosmtpd: `make deps` installs it",
        python.display()
    );
    eprintln!("skipping: no aiosmtpd at {} (run `make deps`)", python.display());
    None
}

impl SmtpServer {
    fn start(config: ServerConfig) -> Option<Self> {
        let python = smtpd_python()?;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtpd.py");
        std::fs::write(&script, SMTPD_SCRIPT).unwrap();
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir(&mail_dir).unwrap();
        let mut cmd = Command::new(python);
        cmd.arg(&script).arg("--dir").arg(&mail_dir).arg("--mode").arg(config.mode.unwrap_or("plain"));
        if let Some(certs) = config.certs {
            cmd.arg("--cert").arg(&certs.server_cert).arg("--key").arg(&certs.server_key);
        }
        if let Some((user, password)) = config.login {
            cmd.args(["--user", user, "--password", password]);
        }
        if config.echo_auth_failures {
            cmd.arg("--echo-auth-failures");
        }
        if let Some((reply, count)) = config.reject_rcpt {
            cmd.args(["--reject-rcpt", reply, "--reject-count", &count.to_string()]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start aiosmtpd");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut server = SmtpServer { child, port: 0, dir };
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("aiosmtpd did not report READY within 30 s");
        server.port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("aiosmtpd did not start: {line:?}"));
        Some(server)
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Every message received, in order.
    fn messages(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.mail_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
    }

    /// RCPT commands seen, accepted or refused: one per delivery attempt for one-recipient mail.
    fn rcpt_attempts(&self) -> usize {
        std::fs::read_to_string(self.mail_dir().join("rcpt.log")).map(|s| s.lines().count()).unwrap_or(0)
    }

    fn settings(&self, tls: SmtpTls) -> MailSettings {
        MailSettings {
            host: if tls == SmtpTls::None { "127.0.0.1".into() } else { "localhost".into() },
            port: i32::from(self.port),
            tls,
            from: "Acme IT <it@acme.example>".into(),
            reply_to: Some("helpdesk@acme.example".into()),
            admin_recipients: vec!["admin1@acme.example".into(), "admin2@acme.example".into()],
            credentials_secret_ref: None,
            summary_webhook_secret_ref: None,
        }
    }
}

/// A test CA and a server certificate for localhost / 127.0.0.1 signed by it (openssl CLI,
/// installed by `make deps`).
struct TestCerts {
    _dir: tempfile::TempDir,
    ca_pem: Vec<u8>,
    server_cert: PathBuf,
    server_key: PathBuf,
}

fn test_certs() -> TestCerts {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(d).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"],
        &ec[..],
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=seatwarden test CA"],
    ]
    .concat());
    run(&[&["req"], &ec[..], &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat());
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    TestCerts {
        ca_pem: std::fs::read(d.join("ca.pem")).unwrap(),
        server_cert: d.join("server.pem"),
        server_key: d.join("server.key"),
        _dir: dir,
    }
}

fn notice(email: &str, name: &str, lead_time: &str, reason: &str) -> Notice {
    Notice {
        account_id: format!("acc-{name}"),
        email: email.into(),
        display_name: name.into(),
        organization: "Acme Corp".into(),
        policy: "reclaim-jira".into(),
        rule: "jira-idle".into(),
        action: "your Jira access will be removed".into(),
        reason: reason.into(),
        due_at: "2026-12-09T00:00:00Z".parse().unwrap(),
        lead_time: lead_time.into(),
        reply_to: Some("helpdesk@acme.example".into()),
    }
}

fn fast_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(50),
        multiplier: 2,
    }
}

fn quick_options(certs: Option<&TestCerts>) -> SmtpOptions {
    SmtpOptions {
        timeout: Duration::from_secs(10),
        extra_root_certificates_pem: certs.map(|c| vec![c.ca_pem.clone()]).unwrap_or_default(),
    }
}

fn failed(delivery: &Delivery) -> (&str, bool) {
    match delivery {
        Delivery::Failed { error, transient } => (error.as_str(), *transient),
        Delivery::Delivered => panic!("expected a failed delivery, got Delivered"),
    }
}

/// A port with nothing listening on it.
fn closed_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn notices_reach_each_person_with_subject_lead_time_reason_and_reply_to() {
    let Some(server) = SmtpServer::start(ServerConfig::default()) else { return };
    let smtp = SmtpNotifier::with_options(&server.settings(SmtpTls::None), None, quick_options(None)).unwrap();

    let first = notice("jane@acme.example", "Jane Doe", "14d", "no Jira activity for 94 days (threshold 60)");
    let second = notice("raj@acme.example", "Raj Patel", "3d", "no Jira activity for 120 days (threshold 60)");
    assert_eq!(send_notice(&smtp, &first, None).await, Delivery::Delivered);
    assert_eq!(send_notice(&smtp, &second, None).await, Delivery::Delivered);

    let got = server.messages();
    assert_eq!(got.len(), 2, "{got:#?}");
    let (jane, raj) = (&got[0], &got[1]);
    assert_eq!(jane.rcpt_tos, vec!["jane@acme.example"]);
    assert_eq!(raj.rcpt_tos, vec!["raj@acme.example"]);
    assert_eq!(jane.mail_from, "it@acme.example");
    assert_eq!(jane.from, "Acme IT <it@acme.example>");
    assert_eq!(jane.to, "jane@acme.example");
    assert_eq!(jane.reply_to.as_deref(), Some("helpdesk@acme.example"));
    assert_eq!(jane.content_type, "text/plain");
    assert_eq!(jane.auto_submitted.as_deref(), Some("auto-generated"));
    assert!(!jane.tls && !jane.authenticated);

    assert_eq!(jane.subject, "[Acme Corp] Your Jira access will be removed on 2026-12-09 (in 14 days)");
    assert_eq!(raj.subject, "[Acme Corp] Your Jira access will be removed on 2026-12-09 (in 3 days)");
    for (m, name, lead, reason) in [
        (jane, "Jane Doe", "in 14 days", "no Jira activity for 94 days (threshold 60)"),
        (raj, "Raj Patel", "in 3 days", "no Jira activity for 120 days (threshold 60)"),
    ] {
        for part in [
            format!("Hello {name},"),
            format!(
                "Acme Corp's access policy \"reclaim-jira\" will act on your account {lead}, on or after 2026-12-09"
            ),
            format!("Why: {reason}."),
            "simply use the product before 2026-12-09".to_owned(),
            "replies go to helpdesk@acme.example".to_owned(),
        ] {
            assert!(m.body.contains(&part), "body lacks {part:?}:\n{}", m.body);
        }
    }
    assert!(!jane.body.contains("120 days"), "one person's reason leaked into another's notice");
}

#[tokio::test]
async fn each_policy_renders_its_own_templates_and_a_broken_one_sends_nothing() {
    let Some(server) = SmtpServer::start(ServerConfig::default()) else { return };
    let smtp = SmtpNotifier::with_options(&server.settings(SmtpTls::None), None, quick_options(None)).unwrap();

    let jira = NoticeSettings {
        subject_template: Some("Jira seat check: {{ lead_time_text }} left".into()),
        body_template: Some("Hi {{ name }}, {{ reason }}. Log in to Jira before {{ due_date }}.".into()),
        reply_to: Some("jira-admins@acme.example".into()),
    };
    let confluence = NoticeSettings {
        subject_template: Some("{{ organization }}: Confluence access ends {{ due_date }}".into()),
        body_template: None,
        reply_to: None,
    };
    let n_jira = notice("jane@acme.example", "Jane", "14d", "no Jira activity for 94 days (threshold 60)");
    let n_confluence = Notice {
        policy: "reclaim-confluence".into(),
        action: "your Confluence access will be removed".into(),
        reason: "no Confluence activity for 200 days (threshold 90)".into(),
        ..notice("raj@acme.example", "Raj", "3d", "")
    };
    assert!(send_notice(&smtp, &n_jira, Some(&jira)).await.is_delivered());
    assert!(send_notice(&smtp, &n_confluence, Some(&confluence)).await.is_delivered());

    let broken = NoticeSettings { body_template: Some("Hi {{ user.first_name }}".into()), ..Default::default() };
    let delivery = send_notice(&smtp, &n_jira, Some(&broken)).await;
    let (error, transient) = failed(&delivery);
    assert!(!transient);
    assert!(error.contains("reclaim-jira") && error.contains("bodyTemplate"), "{error}");

    let got = server.messages();
    assert_eq!(got.len(), 2, "the broken template must send nothing: {got:#?}");
    assert_eq!(got[0].subject, "Jira seat check: 14 days left");
    assert_eq!(
        got[0].body.trim_end(),
        "Hi Jane, no Jira activity for 94 days (threshold 60). Log in to Jira before 2026-12-09."
    );
    assert_eq!(got[0].reply_to.as_deref(), Some("jira-admins@acme.example"));
    assert_eq!(got[1].subject, "Acme Corp: Confluence access ends 2026-12-09");
    assert!(got[1].body.contains("Why: no Confluence activity for 200 days (threshold 90)."), "{}", got[1].body);
    assert!(got[1].body.contains("in 3 days"), "{}", got[1].body);
    assert_eq!(got[1].reply_to.as_deref(), Some("helpdesk@acme.example"));
    assert_eq!(server.rcpt_attempts(), 2);
}

#[tokio::test]
async fn a_refusing_server_is_retried_then_reported_as_not_delivered() {
    let Some(server) = SmtpServer::start(ServerConfig {
        reject_rcpt: Some(("451 4.3.0 Mailbox busy, try again later", -1)),
        ..Default::default()
    }) else {
        return;
    };
    let smtp = SmtpNotifier::with_options(&server.settings(SmtpTls::None), None, quick_options(None)).unwrap();
    let retrying = RetryingNotifier::new(smtp, fast_retries(3));
    let delivery = send_notice(&retrying, &notice("jane@acme.example", "Jane", "14d", "idle"), None).await;
    let (error, transient) = failed(&delivery);
    assert!(transient, "{error}");
    assert!(error.contains("gave up after 3 attempts") && error.contains("451"), "{error}");
    assert_eq!(server.rcpt_attempts(), 3);
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_server_that_recovers_gets_the_notice_exactly_once() {
    let Some(server) =
        SmtpServer::start(ServerConfig { reject_rcpt: Some(("421 4.7.0 Too busy", 2)), ..Default::default() })
    else {
        return;
    };
    let smtp = SmtpNotifier::with_options(&server.settings(SmtpTls::None), None, quick_options(None)).unwrap();
    let retrying = RetryingNotifier::new(smtp, fast_retries(5));
    let delivery = send_notice(&retrying, &notice("jane@acme.example", "Jane", "14d", "idle"), None).await;
    assert_eq!(delivery, Delivery::Delivered);
    assert_eq!(server.rcpt_attempts(), 3);
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retried() {
    let Some(server) = SmtpServer::start(ServerConfig {
        reject_rcpt: Some(("550 5.1.1 No such user here", -1)),
        ..Default::default()
    }) else {
        return;
    };
    let smtp = SmtpNotifier::with_options(&server.settings(SmtpTls::None), None, quick_options(None)).unwrap();
    let retrying = RetryingNotifier::new(smtp, fast_retries(4));
    let delivery = send_notice(&retrying, &notice("gone@acme.example", "Gone", "3d", "idle"), None).await;
    let (error, transient) = failed(&delivery);
    assert!(!transient, "{error}");
    assert!(error.contains("550") && error.contains("No such user"), "{error}");
    assert_eq!(server.rcpt_attempts(), 1);
}

#[tokio::test]
async fn a_mail_server_that_is_down_is_a_transient_failure() {
    let settings = MailSettings {
        host: "127.0.0.1".into(),
        port: i32::from(closed_port()),
        tls: SmtpTls::None,
        from: "it@acme.example".into(),
        reply_to: None,
        admin_recipients: vec![],
        credentials_secret_ref: None,
        summary_webhook_secret_ref: None,
    };
    let smtp = SmtpNotifier::with_options(&settings, None, quick_options(None)).unwrap();
    let retrying = RetryingNotifier::new(smtp, fast_retries(2));
    let delivery = send_notice(&retrying, &notice("jane@acme.example", "Jane", "14d", "idle"), None).await;
    let (error, transient) = failed(&delivery);
    assert!(transient, "{error}");
    assert!(error.contains("gave up after 2 attempts") && error.contains("127.0.0.1"), "{error}");
}

#[tokio::test]
async fn starttls_and_implicit_tls_deliver_with_authentication() {
    let certs = test_certs();
    for (mode, tls) in [("starttls", SmtpTls::StartTls), ("tls", SmtpTls::Tls)] {
        let Some(server) = SmtpServer::start(ServerConfig {
            mode: Some(mode),
            certs: Some(&certs),
            login: Some(("mailer", "correct horse battery")),
            ..Default::default()
        }) else {
            return;
        };
        let smtp = SmtpNotifier::with_options(
            &server.settings(tls),
            Some(SmtpCredentials::new("mailer", "correct horse battery")),
            quick_options(Some(&certs)),
        )
        .unwrap();
        let delivery = send_notice(&smtp, &notice("jane@acme.example", "Jane", "14d", "idle"), None).await;
        assert_eq!(delivery, Delivery::Delivered, "{mode}");
        let got = server.messages();
        assert_eq!(got.len(), 1, "{mode}");
        assert!(got[0].tls, "{mode}: the message crossed unencrypted");
        assert!(got[0].authenticated, "{mode}: the message was sent without logging in");
        assert_eq!(got[0].rcpt_tos, vec!["jane@acme.example"]);
    }
}

#[tokio::test]
async fn tls_that_cannot_be_established_fails_clearly_and_sends_nothing() {
    let certs = test_certs();
    // STARTTLS required, but the server offers none.
    let Some(plain) = SmtpServer::start(ServerConfig::default()) else { return };
    let smtp = SmtpNotifier::with_options(
        &MailSettings { host: "localhost".into(), ..plain.settings(SmtpTls::StartTls) },
        None,
        quick_options(Some(&certs)),
    )
    .unwrap();
    let delivery = send_notice(&smtp, &notice("jane@acme.example", "Jane", "14d", "idle"), None).await;
    let (error, transient) = failed(&delivery);
    assert!(!transient, "{error}");
    assert!(error.contains("STARTTLS is not supported"), "{error}");
    assert_eq!(plain.rcpt_attempts(), 0);

    // A certificate from a CA we were not told to trust.
    let Some(tls_server) =
        SmtpServer::start(ServerConfig { mode: Some("tls"), certs: Some(&certs), ..Default::default() })
    else {
        return;
    };
    let smtp = SmtpNotifier::with_options(&tls_server.settings(SmtpTls::Tls), None, quick_options(None)).unwrap();
    let delivery = send_notice(&smtp, &notice("jane@acme.example", "Jane", "14d", "idle"), None).await;
    let (error, transient) = failed(&delivery);
    assert!(!transient, "an untrusted certificate stays untrusted: {error}");
    assert!(error.contains("invalid peer certificate: UnknownIssuer"), "{error}");
    assert_eq!(tls_server.rcpt_attempts(), 0);
}

#[tokio::test]
async fn the_smtp_password_appears_in_no_error_and_no_debug_output() {
    let password = "s3cret-Pa55word-do-not-show";
    let Some(server) = SmtpServer::start(ServerConfig {
        login: Some(("mailer", "the-right-one")),
        echo_auth_failures: true,
        ..Default::default()
    }) else {
        return;
    };
    let smtp = SmtpNotifier::with_options(
        &server.settings(SmtpTls::None),
        Some(SmtpCredentials::new("mailer", password)),
        quick_options(None),
    )
    .unwrap();
    let retrying = RetryingNotifier::new(smtp, fast_retries(2));
    let message = seatwarden::notify::render_notice(&notice("jane@acme.example", "Jane", "14d", "idle"), None).unwrap();
    let error = retrying.deliver(&message).await.unwrap_err();
    let delivery = send_notice(&retrying, &notice("jane@acme.example", "Jane", "14d", "idle"), None).await;
    let (delivery_error, _) = failed(&delivery);
    // The server did echo it: the scrubbed text shows where.
    assert!(delivery_error.contains("rejected mailer with password [redacted]"), "{delivery_error}");
    for text in [
        error.to_string(),
        format!("{error:?}"),
        delivery_error.to_owned(),
        format!("{delivery:?}"),
        format!("{:?}", retrying.inner()),
        format!("{:?}", SmtpCredentials::new("mailer", password)),
    ] {
        assert!(!text.contains(password), "password shown in: {text}");
    }
    assert!(server.messages().is_empty());
}

/// A Slack-style incoming webhook: records each POST's path and JSON body; answers the first
/// `fail_first` requests with `fail_status`.
#[derive(Clone)]
struct WebhookReceiver {
    posts: Arc<Mutex<Vec<(String, Value)>>>,
    fail_first: Arc<AtomicUsize>,
    fail_status: StatusCode,
}

async fn receive(State(hook): State<WebhookReceiver>, uri: Uri, Json(body): Json<Value>) -> (StatusCode, &'static str) {
    hook.posts.lock().unwrap().push((uri.path().to_owned(), body));
    let failed = hook.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    if failed.is_ok() { (hook.fail_status, "no_service") } else { (StatusCode::OK, "ok") }
}

impl WebhookReceiver {
    /// Starts the receiver and returns it with its secret URL.
    async fn start(fail_first: usize, fail_status: StatusCode) -> (Self, String) {
        let hook =
            WebhookReceiver { posts: Arc::default(), fail_first: Arc::new(AtomicUsize::new(fail_first)), fail_status };
        let app = Router::new().route("/services/{team}/{bot}/{token}", post(receive)).with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (hook, format!("http://127.0.0.1:{port}/services/T0001/B0001/XyZsecretToken42"))
    }

    fn posts(&self) -> Vec<(String, Value)> {
        self.posts.lock().unwrap().clone()
    }
}

fn summary() -> RunSummaryMessage {
    RunSummaryMessage {
        organization: "Acme Corp".into(),
        policy: "reclaim-jira".into(),
        mode: "Enforce".into(),
        run_name: "reclaim-jira-20261125-030000".into(),
        planned: 7,
        applied: 5,
        failed: 1,
        deferred: 1,
        notices_sent: 12,
        seats_reclaimed: 5,
        projected_monthly_savings: "$43.75".into(),
        halted: None,
        failures: vec!["bob@acme.example: Atlassian answered 500".into()],
    }
}

#[tokio::test]
async fn the_run_summary_reaches_admins_by_email_and_the_chat_webhook() {
    let Some(server) = SmtpServer::start(ServerConfig::default()) else { return };
    let settings = server.settings(SmtpTls::None);
    let (hook, url) = WebhookReceiver::start(0, StatusCode::OK).await;
    let router =
        RoutingNotifier::for_organization(&settings, None, Some(&url), fast_retries(2), quick_options(None)).unwrap();

    let delivery = send_summary(&router, &summary(), &settings.admin_recipients).await;
    assert_eq!(delivery, Delivery::Delivered);

    let mail = server.messages();
    assert_eq!(mail.len(), 1, "{mail:#?}");
    assert_eq!(mail[0].rcpt_tos, vec!["admin1@acme.example", "admin2@acme.example"]);
    assert_eq!(mail[0].subject, "[seatwarden] Acme Corp / reclaim-jira: 5 applied, 7 planned, 1 failed");
    let posts = hook.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].0, "/services/T0001/B0001/XyZsecretToken42");
    let chat = posts[0].1["text"].as_str().expect("webhook body is {\"text\": ...}");
    for text in [mail[0].body.as_str(), chat] {
        for part in [
            "Run: reclaim-jira-20261125-030000",
            "Planned: 7",
            "Applied: 5",
            "Failed: 1",
            "Seats reclaimed: 5",
            "Projected monthly savings: $43.75",
            "bob@acme.example: Atlassian answered 500",
        ] {
            assert!(text.contains(part), "summary lacks {part:?}:\n{text}");
        }
    }
    assert!(chat.starts_with("*[seatwarden] Acme Corp / reclaim-jira"), "{chat}");

    // A halted run says so in the chat too.
    let halted = RunSummaryMessage { halted: Some("plan touches 40% of users (cap 10%)".into()), ..summary() };
    assert!(send_summary(&router, &halted, &settings.admin_recipients).await.is_delivered());
    assert!(hook.posts()[1].1["text"].as_str().unwrap().contains("HALTED: plan touches 40% of users"));

    // Notices go to the person only: not to the admins, not to the chat.
    let n = notice("jane@acme.example", "Jane", "14d", "idle");
    assert!(send_notice(&router, &n, None).await.is_delivered());
    let mail = server.messages();
    assert_eq!(mail.len(), 3);
    assert_eq!(mail[2].rcpt_tos, vec!["jane@acme.example"]);
    assert_eq!(hook.posts().len(), 2);
}

#[tokio::test]
async fn names_and_reasons_outside_ascii_arrive_intact() {
    let Some(server) = SmtpServer::start(ServerConfig::default()) else { return };
    let smtp = SmtpNotifier::with_options(&server.settings(SmtpTls::None), None, quick_options(None)).unwrap();
    let n = Notice {
        organization: "Société Générale – Équipe IT".into(),
        action: "votre accès à Jira sera retiré".into(),
        ..notice(
            "jose@acme.example",
            "José Müller-Łukasiewicz",
            "1d",
            "aucune activité Jira depuis 94 jours (seuil 60) — 日本",
        )
    };
    assert!(send_notice(&smtp, &n, None).await.is_delivered());
    let got = server.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].subject,
        "[Société Générale – Équipe IT] Votre accès à Jira sera retiré on 2026-12-09 (in 1 day)"
    );
    assert!(got[0].body.contains("Hello José Müller-Łukasiewicz,"), "{}", got[0].body);
    assert!(got[0].body.contains("Why: aucune activité Jira depuis 94 jours (seuil 60) — 日本."), "{}", got[0].body);
}

#[tokio::test]
async fn webhook_failures_are_retried_when_transient_and_never_show_the_url() {
    let token = "XyZsecretToken42";

    // 503 twice, then OK: delivered on the third attempt.
    let (hook, url) = WebhookReceiver::start(2, StatusCode::SERVICE_UNAVAILABLE).await;
    let retrying = RetryingNotifier::new(WebhookNotifier::new(&url).unwrap(), fast_retries(4));
    assert!(format!("{:?}", retrying.inner()).contains("[redacted]"));
    assert!(!format!("{:?}", retrying.inner()).contains(token));
    assert_eq!(send_summary(&retrying, &summary(), &[]).await, Delivery::Delivered);
    assert_eq!(hook.posts().len(), 3);

    // 404 (a revoked hook): permanent, one attempt.
    let (hook, url) = WebhookReceiver::start(usize::MAX, StatusCode::NOT_FOUND).await;
    let retrying = RetryingNotifier::new(WebhookNotifier::new(&url).unwrap(), fast_retries(4));
    let delivery = send_summary(&retrying, &summary(), &[]).await;
    let (error, transient) = failed(&delivery);
    assert!(!transient && error.contains("404"), "{error}");
    assert!(!error.contains(token), "{error}");
    assert_eq!(hook.posts().len(), 1);

    // Nobody listening: transient, retried, and the URL still hidden.
    let url = format!("http://127.0.0.1:{}/services/T0001/B0001/{token}", closed_port());
    let retrying = RetryingNotifier::new(WebhookNotifier::new(&url).unwrap(), fast_retries(2));
    let error = retrying.deliver(&seatwarden::notify::render_summary(&summary(), &[])).await.unwrap_err();
    assert!(matches!(error, NotifyError::Transient(_)), "{error}");
    assert!(error.to_string().contains("gave up after 2 attempts"), "{error}");
    assert!(!error.to_string().contains(token) && !format!("{error:?}").contains(token), "{error:?}");
}
