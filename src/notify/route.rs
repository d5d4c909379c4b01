//! Sends each message to the sinks for its kind: notices to people by email, summaries to admins
//! by email and to a chat webhook.

use std::sync::Arc;

use super::{
    DeliveryFuture, Message, MessageKind, Notifier, NotifyError, RetryPolicy, RetryingNotifier, SmtpCredentials,
    SmtpNotifier, WebhookNotifier, smtp::SmtpOptions,
};
use crate::crd::MailSettings;

#[derive(Clone, Default)]
pub struct RoutingNotifier {
    notices: Vec<Arc<dyn Notifier>>,
    summaries: Vec<Arc<dyn Notifier>>,
}

impl RoutingNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn notices_to(mut self, sink: Arc<dyn Notifier>) -> Self {
        self.notices.push(sink);
        self
    }

    pub fn summaries_to(mut self, sink: Arc<dyn Notifier>) -> Self {
        self.summaries.push(sink);
        self
    }

    /// The notifier for one organization's mail settings: notices by email; summaries by email
    /// when the settings name admin recipients, and to the chat webhook when its URL is given.
    /// Every sink retries its transient failures with `retry`. The SMTP connection settings are
    /// checked here, so a bad `mail` block is reported before any run depends on it.
    pub fn for_organization(
        mail: &MailSettings,
        smtp_credentials: Option<SmtpCredentials>,
        summary_webhook_url: Option<&str>,
        retry: RetryPolicy,
        smtp_options: SmtpOptions,
    ) -> Result<Self, NotifyError> {
        let smtp: Arc<dyn Notifier> = Arc::new(RetryingNotifier::new(
            SmtpNotifier::with_options(mail, smtp_credentials, smtp_options)?,
            retry.clone(),
        ));
        let mut router = Self::new().notices_to(smtp.clone());
        if !mail.admin_recipients.is_empty() {
            router = router.summaries_to(smtp);
        }
        if let Some(url) = summary_webhook_url {
            router = router.summaries_to(Arc::new(RetryingNotifier::new(WebhookNotifier::new(url)?, retry)));
        }
        Ok(router)
    }

    /// Whether messages of this kind have anywhere to go (a summary with neither admin
    /// recipients nor a webhook is simply not sent).
    pub fn handles(&self, kind: MessageKind) -> bool {
        !self.sinks(kind).is_empty()
    }

    fn sinks(&self, kind: MessageKind) -> &[Arc<dyn Notifier>] {
        match kind {
            MessageKind::Notice => &self.notices,
            MessageKind::Summary => &self.summaries,
        }
    }
}

impl Notifier for RoutingNotifier {
    /// Delivers to every sink for the message's kind, even when one fails, and succeeds only when
    /// all do: a message with no sink at all is not delivered. With several failures the first
    /// transient one is returned (trying again may help), otherwise the first.
    fn deliver<'a>(&'a self, message: &'a Message) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let sinks = self.sinks(message.kind);
            if sinks.is_empty() {
                return Err(NotifyError::Config(format!("no sink configured for {:?} messages", message.kind)));
            }
            let results = futures::future::join_all(sinks.iter().map(|s| s.deliver(message))).await;
            let mut errors: Vec<NotifyError> = results.into_iter().filter_map(Result::err).collect();
            if errors.is_empty() {
                return Ok(());
            }
            let pick = errors.iter().position(NotifyError::is_transient).unwrap_or(0);
            Err(errors.swap_remove(pick))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{MailboxNotifier, RunSummaryMessage, render_notice_plain, render_summary};

    #[tokio::test]
    async fn each_kind_goes_to_its_own_sinks_and_a_kind_without_sinks_is_not_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let people = Arc::new(MailboxNotifier::new(dir.path().join("people")).unwrap());
        let admins = Arc::new(MailboxNotifier::new(dir.path().join("admins")).unwrap());
        let chat = Arc::new(MailboxNotifier::new(dir.path().join("chat")).unwrap());
        let router =
            RoutingNotifier::new().notices_to(people.clone()).summaries_to(admins.clone()).summaries_to(chat.clone());

        let notice = crate::notify::Notice {
            account_id: "a1".into(),
            email: "jane@example.com".into(),
            display_name: "Jane".into(),
            organization: "Acme".into(),
            policy: "p".into(),
            rule: "r".into(),
            action: "your access will be removed".into(),
            reason: "idle".into(),
            due_at: "2026-12-09T00:00:00Z".parse().unwrap(),
            lead_time: "3d".into(),
            reply_to: None,
        };
        router.deliver(&render_notice_plain(&notice)).await.unwrap();
        let summary = render_summary(&RunSummaryMessage { run_name: "run-1".into(), ..Default::default() }, &[]);
        router.deliver(&summary).await.unwrap();

        assert_eq!(people.messages().unwrap().len(), 1);
        assert_eq!(people.messages().unwrap()[0].kind, MessageKind::Notice);
        for sink in [&admins, &chat] {
            let got = sink.messages().unwrap();
            assert_eq!(got.len(), 1);
            assert!(got[0].body.contains("Run: run-1"));
        }

        let only_summaries = RoutingNotifier::new().summaries_to(admins.clone());
        assert!(only_summaries.handles(MessageKind::Summary) && !only_summaries.handles(MessageKind::Notice));
        let e = only_summaries.deliver(&render_notice_plain(&notice)).await.unwrap_err();
        assert!(e.to_string().contains("no sink configured for Notice"), "{e}");
    }

    #[test]
    fn an_organization_without_admins_or_webhook_sends_no_summaries() {
        let mut mail = MailSettings {
            host: "smtp.example.com".into(),
            port: 587,
            tls: crate::crd::SmtpTls::StartTls,
            from: "it@example.com".into(),
            reply_to: None,
            admin_recipients: vec![],
            credentials_secret_ref: None,
            summary_webhook_secret_ref: None,
        };
        let build = |mail: &MailSettings, url: Option<&str>| {
            RoutingNotifier::for_organization(mail, None, url, RetryPolicy::default(), SmtpOptions::default()).unwrap()
        };
        let router = build(&mail, None);
        assert!(router.handles(MessageKind::Notice) && !router.handles(MessageKind::Summary));
        assert!(build(&mail, Some("https://hooks.example.com/x")).handles(MessageKind::Summary));
        mail.admin_recipients.push("admin@example.com".into());
        assert_eq!(build(&mail, Some("https://hooks.example.com/x")).summaries.len(), 2);

        mail.from = "nobody".into();
        let e = RoutingNotifier::for_organization(&mail, None, None, RetryPolicy::default(), SmtpOptions::default());
        assert!(e.is_err_and(|e| e.to_string().contains("mail.from")));
    }

    #[tokio::test]
    async fn one_failing_sink_fails_the_delivery_but_the_others_still_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let working = Arc::new(MailboxNotifier::new(dir.path().join("ok")).unwrap());
        let broken = Arc::new(MailboxNotifier::new(dir.path().join("gone")).unwrap());
        std::fs::remove_dir(broken.dir()).unwrap();
        let router = RoutingNotifier::new().summaries_to(broken).summaries_to(working.clone());
        let summary = render_summary(&RunSummaryMessage::default(), &[]);
        let e = router.deliver(&summary).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert_eq!(working.messages().unwrap().len(), 1);
    }
}
