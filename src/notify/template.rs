//! Turning a [`Notice`] into a [`Message`] with the policy's minijinja templates (or the default),
//! and a [`RunSummaryMessage`] into a message for admins.
//!
//! Templates are plain text (no HTML escaping) and strict: a variable that does not exist is an
//! error naming the policy and the template, not an empty string in a message sent to a person.

use std::str::FromStr;

use minijinja::{Environment, UndefinedBehavior, Value};

use super::{Message, MessageKind, Notice, NotifyError, RunSummaryMessage};
use crate::crd::{Duration, NoticeSettings};

/// The default subject: what happens and when, with the organization's name first so people
/// recognize it among their mail.
pub const DEFAULT_SUBJECT_TEMPLATE: &str =
    "[{{ organization }}] {{ action | upper_first }} on {{ due_date }} (in {{ lead_time_text }})";

/// The default body: who, what will happen and when, why, how to keep access, where to reply.
pub const DEFAULT_BODY_TEMPLATE: &str = "\
Hello {{ name }},

{{ organization }}'s access policy \"{{ policy }}\" will act on your account in {{ lead_time_text }}, \
on or after {{ due_date }} (UTC): {{ action }}.

Why: {{ reason }}.

How to keep your access:
  - simply use the product before {{ due_date }}: any activity cancels this action, and you will get no further notice about it;
  - or reply to this message{% if reply_to %} (replies go to {{ reply_to }}){% endif %} and tell us you still need access.

This notice was sent to {{ email }} on behalf of {{ organization }}.
";

/// Variables a notice template can use, in the order [`notice_context`] builds them; listed in
/// template errors.
pub const NOTICE_VARIABLES: [&str; 13] = [
    "name",
    "email",
    "account_id",
    "organization",
    "policy",
    "rule",
    "action",
    "reason",
    "due_date",
    "due_at",
    "lead_time",
    "lead_time_text",
    "reply_to",
];

/// The template context. `due_date` is `2026-12-09`, `due_at` `2026-12-09T00:00:00Z`, `lead_time`
/// as configured (`14d`), `lead_time_text` for people (`14 days`); `reply_to` may be none.
fn notice_context(notice: &Notice, reply_to: Option<&str>) -> Value {
    let values: [Value; 13] = [
        Value::from(notice.display_name.as_str()),
        Value::from(notice.email.as_str()),
        Value::from(notice.account_id.as_str()),
        Value::from(notice.organization.as_str()),
        Value::from(notice.policy.as_str()),
        Value::from(notice.rule.as_str()),
        Value::from(notice.action.as_str()),
        Value::from(notice.reason.as_str()),
        Value::from(notice.due_at.strftime("%Y-%m-%d").to_string()),
        Value::from(notice.due_at.to_string()),
        Value::from(notice.lead_time.as_str()),
        Value::from(lead_time_text(&notice.lead_time)),
        Value::from(reply_to),
    ];
    Value::from_pairs(NOTICE_VARIABLES.into_iter().zip(values))
}

/// Renders a notice with the policy's templates, each falling back to the default when unset.
/// The settings' `replyTo` overrides the notice's (the organization's) reply-to address.
pub fn render_notice(notice: &Notice, settings: Option<&NoticeSettings>) -> Result<Message, NotifyError> {
    let subject_source = settings.and_then(|s| s.subject_template.as_deref()).unwrap_or(DEFAULT_SUBJECT_TEMPLATE);
    let body_source = settings.and_then(|s| s.body_template.as_deref()).unwrap_or(DEFAULT_BODY_TEMPLATE);
    let reply_to = settings.and_then(|s| s.reply_to.clone()).or_else(|| notice.reply_to.clone());

    let context = notice_context(notice, reply_to.as_deref());
    let env = strict_environment();
    let render = |name: &'static str, source: &str| -> Result<String, NotifyError> {
        env.template_from_named_str(name, source)
            .and_then(|t| t.render(context.clone()))
            .map_err(|e| template_error(&notice.policy, name, &e))
    };
    let subject = one_line(&render("subjectTemplate", subject_source)?);
    let body = render("bodyTemplate", body_source)?;
    if subject.is_empty() {
        return Err(NotifyError::Template(format!(
            "policy {:?} subjectTemplate: rendered an empty subject",
            notice.policy
        )));
    }
    if body.trim().is_empty() {
        return Err(NotifyError::Template(format!("policy {:?} bodyTemplate: rendered an empty body", notice.policy)));
    }
    Ok(Message { to: vec![notice.email.clone()], subject, body, reply_to, kind: MessageKind::Notice })
}

/// Checks a policy's notice settings before any notice depends on them: both templates render
/// against a sample notice. For the policy's status, so a broken template shows before a run.
pub fn validate_notice_settings(policy: &str, settings: &NoticeSettings) -> Result<(), NotifyError> {
    let sample = Notice {
        account_id: "sample-account".into(),
        email: "someone@example.com".into(),
        display_name: "Someone".into(),
        organization: "Example".into(),
        policy: policy.into(),
        rule: "sample-rule".into(),
        action: "your access will be removed".into(),
        reason: "no activity for 90 days (threshold 60)".into(),
        due_at: jiff::Timestamp::UNIX_EPOCH,
        lead_time: "14d".into(),
        reply_to: Some("it@example.com".into()),
    };
    render_notice(&sample, Some(settings)).map(|_| ())
}

/// An admin summary of one run, for `admin_recipients` (email) or a chat webhook (which ignores
/// the recipients).
pub fn render_summary(summary: &RunSummaryMessage, admin_recipients: &[String]) -> Message {
    // Failures are listed one per line; a run with thousands of them would make an unreadable
    // message, and the LifecycleRun holds them all.
    const MAX_FAILURES_LISTED: usize = 20;

    let mut subject = format!(
        "[seatwarden] {} / {}: {} applied, {} planned, {} failed",
        summary.organization, summary.policy, summary.applied, summary.planned, summary.failed
    );
    if summary.halted.is_some() {
        subject.push_str(" — HALTED");
    }
    let mut body = String::new();
    if let Some(reason) = &summary.halted {
        body.push_str(&format!("HALTED: {reason}. No action was applied.\n\n"));
    }
    body.push_str(&format!(
        "Run: {run}\nOrganization: {org}\nPolicy: {policy} (mode {mode})\n\n\
         Planned: {planned}\nApplied: {applied}\nDeferred: {deferred}\nFailed: {failed}\n\
         Notices sent: {notices}\nSeats reclaimed: {seats}\nProjected monthly savings: {savings}\n",
        run = summary.run_name,
        org = summary.organization,
        policy = summary.policy,
        mode = summary.mode,
        planned = summary.planned,
        applied = summary.applied,
        deferred = summary.deferred,
        failed = summary.failed,
        notices = summary.notices_sent,
        seats = summary.seats_reclaimed,
        savings = if summary.projected_monthly_savings.is_empty() { "n/a" } else { &summary.projected_monthly_savings },
    ));
    if !summary.failures.is_empty() {
        body.push_str("\nFailures:\n");
        for failure in summary.failures.iter().take(MAX_FAILURES_LISTED) {
            body.push_str(&format!("  - {}\n", one_line(failure)));
        }
        if summary.failures.len() > MAX_FAILURES_LISTED {
            body.push_str(&format!(
                "  … and {} more (see LifecycleRun {})\n",
                summary.failures.len() - MAX_FAILURES_LISTED,
                summary.run_name
            ));
        }
    }
    Message { to: admin_recipients.to_vec(), subject, body, reply_to: None, kind: MessageKind::Summary }
}

fn strict_environment<'source>() -> Environment<'source> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // `capitalize` lowercases the rest, which would turn "Jira" into "jira".
    env.add_filter("upper_first", |text: String| -> String {
        let mut chars = text.chars();
        chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
    });
    env
}

fn template_error(policy: &str, template: &str, e: &minijinja::Error) -> NotifyError {
    let mut text = format!("policy {policy:?} {template}: {e}");
    if e.kind() == minijinja::ErrorKind::UndefinedError {
        text.push_str(&format!("; the variables are: {}", NOTICE_VARIABLES.join(", ")));
    }
    NotifyError::Template(text)
}

/// A subject is one header line: a template's newlines must not leak into the header.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `14d` → `14 days`, `1d` → `1 day`, `36h` → `36 hours`; anything unparsable as it is.
fn lead_time_text(lead_time: &str) -> String {
    let Ok(d) = Duration::from_str(lead_time) else { return lead_time.to_owned() };
    let secs = d.as_secs();
    let plural = |n: i64, unit: &str| if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") };
    if secs > 0 && secs % 86_400 == 0 {
        plural(secs / 86_400, "day")
    } else if secs > 0 && secs % 3_600 == 0 {
        plural(secs / 3_600, "hour")
    } else if secs > 0 && secs % 60 == 0 {
        plural(secs / 60, "minute")
    } else {
        lead_time.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            account_id: "a1".into(),
            email: "jane@example.com".into(),
            display_name: "Jane Doe".into(),
            organization: "Acme".into(),
            policy: "reclaim-jira".into(),
            rule: "jira-idle".into(),
            action: "your Jira access will be removed".into(),
            reason: "no Jira activity for 94 days (threshold 60)".into(),
            due_at: "2026-12-09T00:00:00Z".parse().unwrap(),
            lead_time: "14d".into(),
            reply_to: Some("it@acme.example".into()),
        }
    }

    #[test]
    fn default_notice_says_who_what_when_why_how_and_where_to_reply() {
        let m = render_notice(&notice(), None).unwrap();
        assert_eq!(m.to, vec!["jane@example.com".to_owned()]);
        assert_eq!(m.kind, MessageKind::Notice);
        assert_eq!(m.subject, "[Acme] Your Jira access will be removed on 2026-12-09 (in 14 days)");
        for part in [
            "Hello Jane Doe",
            "Acme's access policy \"reclaim-jira\"",
            "in 14 days, on or after 2026-12-09",
            "your Jira access will be removed",
            "Why: no Jira activity for 94 days (threshold 60).",
            "use the product before 2026-12-09",
            "replies go to it@acme.example",
        ] {
            assert!(m.body.contains(part), "body lacks {part:?}:\n{}", m.body);
        }
        assert_eq!(m.reply_to.as_deref(), Some("it@acme.example"));
    }

    #[test]
    fn policy_templates_and_reply_to_override_the_defaults() {
        let settings = NoticeSettings {
            subject_template: Some("{{ policy }}: {{ lead_time }} left".into()),
            body_template: Some("{{ name }} / {{ rule }} / {{ due_at }} / {{ reply_to }}".into()),
            reply_to: Some("helpdesk@acme.example".into()),
        };
        let m = render_notice(&notice(), Some(&settings)).unwrap();
        assert_eq!(m.subject, "reclaim-jira: 14d left");
        assert_eq!(m.body, "Jane Doe / jira-idle / 2026-12-09T00:00:00Z / helpdesk@acme.example");
        assert_eq!(m.reply_to.as_deref(), Some("helpdesk@acme.example"));
    }

    #[test]
    fn only_the_set_template_is_replaced() {
        let settings = NoticeSettings { subject_template: Some("Heads up".into()), ..Default::default() };
        let m = render_notice(&notice(), Some(&settings)).unwrap();
        assert_eq!(m.subject, "Heads up");
        assert!(m.body.contains("Why: no Jira activity for 94 days"));
    }

    #[test]
    fn a_template_error_names_the_policy_the_template_and_the_variables() {
        let settings = NoticeSettings { body_template: Some("Hi {{ first_name }}".into()), ..Default::default() };
        let e = render_notice(&notice(), Some(&settings)).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, NotifyError::Template(_)));
        assert!(text.contains("\"reclaim-jira\"") && text.contains("bodyTemplate"), "{text}");
        assert!(text.contains("lead_time_text"), "{text}");

        let settings = NoticeSettings { subject_template: Some("{% if %}".into()), ..Default::default() };
        let text = validate_notice_settings("p2", &settings).unwrap_err().to_string();
        assert!(text.contains("\"p2\"") && text.contains("subjectTemplate"), "{text}");
        assert!(!e.is_transient());
    }

    #[test]
    fn a_multi_line_subject_becomes_one_header_line_and_an_empty_one_is_refused() {
        let settings =
            NoticeSettings { subject_template: Some("a\r\nBcc: x@evil.example\n".into()), ..Default::default() };
        assert_eq!(render_notice(&notice(), Some(&settings)).unwrap().subject, "a Bcc: x@evil.example");
        let settings = NoticeSettings { subject_template: Some("{{ '' }}  ".into()), ..Default::default() };
        let text = render_notice(&notice(), Some(&settings)).unwrap_err().to_string();
        assert!(text.contains("subjectTemplate") && text.contains("empty"), "{text}");
    }

    #[test]
    fn lead_times_read_as_people_say_them() {
        assert_eq!(lead_time_text("14d"), "14 days");
        assert_eq!(lead_time_text("1d"), "1 day");
        assert_eq!(lead_time_text("36h"), "36 hours");
        assert_eq!(lead_time_text("1d12h"), "36 hours");
        assert_eq!(lead_time_text("soon"), "soon");
    }

    proptest::proptest! {
        /// The default templates render every notice, whatever people put in their names and
        /// whatever a rule says: `render_notice_plain` relies on it.
        #[test]
        fn default_templates_render_any_notice(
            name in "\\PC{0,40}",
            org in "\\PC{1,40}",
            action in "\\PC{1,60}",
            reason in "\\PC{0,80}",
            lead in "[0-9]{1,3}[dhm]|\\PC{0,8}",
            reply_to in proptest::option::of("[a-z]{1,8}@[a-z]{1,8}\\.example"),
            due_secs in 0i64..4_000_000_000,
        ) {
            let n = Notice {
                display_name: name.clone(),
                organization: org,
                action,
                reason: reason.clone(),
                lead_time: lead,
                reply_to,
                due_at: jiff::Timestamp::from_second(due_secs).unwrap(),
                ..notice()
            };
            let m = render_notice(&n, None).unwrap();
            proptest::prop_assert!(!m.subject.is_empty() && !m.subject.contains('\n'));
            let why = format!("Why: {reason}.");
            let hello = format!("Hello {name},");
            proptest::prop_assert!(m.body.contains(&why), "body lacks {:?}", why);
            proptest::prop_assert!(m.body.contains(&hello), "body lacks {:?}", hello);
            proptest::prop_assert_eq!(&crate::notify::render_notice_plain(&n), &m);
        }
    }

    #[test]
    fn summary_carries_counts_seats_savings_halt_failures_and_run_name() {
        let s = RunSummaryMessage {
            organization: "Acme".into(),
            policy: "reclaim-jira".into(),
            mode: "Enforce".into(),
            run_name: "reclaim-jira-20261125-0300".into(),
            planned: 12,
            applied: 9,
            failed: 1,
            deferred: 2,
            notices_sent: 30,
            seats_reclaimed: 9,
            projected_monthly_savings: "$78.75".into(),
            halted: None,
            failures: (0..25).map(|i| format!("user u{i}: 500 from Atlassian\nretry later")).collect(),
        };
        let admins = vec!["admin@acme.example".to_owned()];
        let m = render_summary(&s, &admins);
        assert_eq!(m.to, admins);
        assert_eq!(m.kind, MessageKind::Summary);
        assert_eq!(m.subject, "[seatwarden] Acme / reclaim-jira: 9 applied, 12 planned, 1 failed");
        for part in [
            "Run: reclaim-jira-20261125-0300",
            "Planned: 12",
            "Applied: 9",
            "Deferred: 2",
            "Failed: 1",
            "Notices sent: 30",
            "Seats reclaimed: 9",
            "Projected monthly savings: $78.75",
            "  - user u0: 500 from Atlassian retry later\n",
            "… and 5 more (see LifecycleRun reclaim-jira-20261125-0300)",
        ] {
            assert!(m.body.contains(part), "summary lacks {part:?}:\n{}", m.body);
        }
        assert!(!m.body.contains("u20:"));

        let halted = RunSummaryMessage { halted: Some("plan touches 40% of users (cap 10%)".into()), ..s };
        let m = render_summary(&halted, &admins);
        assert!(m.subject.ends_with("HALTED"), "{}", m.subject);
        assert!(m.body.starts_with("HALTED: plan touches 40% of users (cap 10%). No action was applied."));
    }
}
