//! Notices to users before seatwarden acts, and run summaries to admins.
//!
//! The planner decides *who* is warned and when the action is due ([`Notice`]); a template turns a
//! notice into a [`Message`]; a [`Notifier`] delivers messages. Only a delivered notice counts toward
//! a lead time: a failed delivery defers the action and is never recorded as sent.

pub mod mailbox;
pub mod retry;
pub mod route;
pub mod smtp;
pub mod template;
pub mod webhook;

use std::{future::Future, pin::Pin};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::crd::NoticeSettings;

pub use mailbox::MailboxNotifier;
pub use retry::{RetryPolicy, RetryingNotifier};
pub use route::RoutingNotifier;
pub use smtp::{SmtpCredentials, SmtpNotifier};
pub use template::{render_notice, render_summary, validate_notice_settings};
pub use webhook::WebhookNotifier;

/// A warning to one person that an action is coming.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    /// The organization's name, as people know it.
    pub organization: String,
    pub policy: String,
    pub rule: String,
    /// What will happen, for a person: "your Jira access will be removed".
    pub action: String,
    /// Why: the rule's reason, e.g. "no Jira activity for 94 days (threshold 60)".
    pub reason: String,
    /// When the action will happen at the earliest.
    pub due_at: Timestamp,
    /// The lead time this notice satisfies, e.g. "14d".
    pub lead_time: String,
    /// Where replies go.
    pub reply_to: Option<String>,
}

/// An admin summary of one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummaryMessage {
    pub organization: String,
    pub policy: String,
    pub mode: String,
    pub run_name: String,
    pub planned: i64,
    pub applied: i64,
    pub failed: i64,
    pub deferred: i64,
    pub notices_sent: i64,
    pub seats_reclaimed: i64,
    pub projected_monthly_savings: String,
    pub halted: Option<String>,
    pub failures: Vec<String>,
}

/// A rendered message, ready to deliver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub reply_to: Option<String>,
    /// Notice (to a user) or Summary (to admins), for metrics and sinks that treat them differently.
    pub kind: MessageKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageKind {
    Notice,
    Summary,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The message could not be delivered now; it may succeed later.
    #[error("delivery failed: {0}")]
    Transient(String),
    /// The message can never be delivered as it is (bad address, rejected by policy).
    #[error("delivery refused: {0}")]
    Permanent(String),
    #[error("template error: {0}")]
    Template(String),
    /// The notifier's settings are unusable (the message names the field); nothing was sent.
    #[error("notifier configuration: {0}")]
    Config(String),
}

impl NotifyError {
    /// Whether trying the same message again later may succeed. Everything else needs a change to
    /// the message, the template or the settings first.
    pub fn is_transient(&self) -> bool {
        matches!(self, NotifyError::Transient(_))
    }
}

/// What became of one message: what the operator records. Only `Delivered` counts as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Delivery {
    Delivered,
    /// Not delivered. `error` is safe to show in status and events (it never carries a secret);
    /// `transient` says whether the same message may get through later.
    Failed {
        error: String,
        transient: bool,
    },
}

impl Delivery {
    pub fn is_delivered(&self) -> bool {
        matches!(self, Delivery::Delivered)
    }

    /// The `outcome` label of `seatwarden_notices_total`.
    pub fn outcome_label(&self) -> &'static str {
        match self {
            Delivery::Delivered => "delivered",
            Delivery::Failed { .. } => "failed",
        }
    }

    fn from_result(result: Result<(), NotifyError>) -> Self {
        match result {
            Ok(()) => Delivery::Delivered,
            Err(e) => Delivery::Failed { transient: e.is_transient(), error: e.to_string() },
        }
    }
}

/// Renders a notice with its policy's templates (or the default) and delivers it. A template that
/// does not render is a failed, non-transient delivery: the notice is not sent, so it does not count.
pub async fn send_notice(notifier: &dyn Notifier, notice: &Notice, settings: Option<&NoticeSettings>) -> Delivery {
    match render_notice(notice, settings) {
        Ok(message) => Delivery::from_result(notifier.deliver(&message).await),
        Err(e) => Delivery::from_result(Err(e)),
    }
}

/// Renders a run summary for `admin_recipients` and delivers it (by email, webhook, or both,
/// depending on the notifier).
pub async fn send_summary(
    notifier: &dyn Notifier,
    summary: &RunSummaryMessage,
    admin_recipients: &[String],
) -> Delivery {
    let message = render_summary(summary, admin_recipients);
    Delivery::from_result(notifier.deliver(&message).await)
}

pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// Delivers rendered messages. Implementations: a local mailbox folder, SMTP, a chat webhook.
pub trait Notifier: Send + Sync {
    fn deliver<'a>(&'a self, message: &'a Message) -> DeliveryFuture<'a>;
}

/// Shared notifiers (one SMTP transport used by notices and summaries alike) are notifiers too.
impl<N: Notifier + ?Sized> Notifier for std::sync::Arc<N> {
    fn deliver<'a>(&'a self, message: &'a Message) -> DeliveryFuture<'a> {
        (**self).deliver(message)
    }
}

/// The default notice, for callers that cannot handle an error: the default templates (which
/// render any notice; property-tested), or the same content as fixed text should they ever fail.
pub fn render_notice_plain(n: &Notice) -> Message {
    render_notice(n, None).unwrap_or_else(|_| render_notice_fixed(n))
}

fn render_notice_fixed(n: &Notice) -> Message {
    let due = n.due_at.strftime("%Y-%m-%d");
    let subject = format!("[{}] Action needed: {} on {due}", n.organization, n.action).replace(['\r', '\n'], " ");
    let mut body = format!(
        "Hello {name},\n\n{org}'s access policy \"{policy}\" will act on your account on or after {due}: {action}.\n\n\
         Why: {reason}.\n\n\
         To keep your access, simply use the product before {due}, or reply to this message.\n",
        name = n.display_name,
        org = n.organization,
        policy = n.policy,
        action = n.action,
        reason = n.reason,
    );
    if let Some(r) = &n.reply_to {
        body.push_str(&format!("Questions: {r}\n"));
    }
    Message { to: vec![n.email.clone()], subject, body, reply_to: n.reply_to.clone(), kind: MessageKind::Notice }
}
