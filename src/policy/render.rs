//! Words for people: reasons on actions and notices, and the plan as text or markdown (what
//! `seatwarden plan` prints and a pull-request preview shows).

use std::fmt::Write as _;

use crate::crd::{Duration, PolicyMode};

use super::types::{Plan, PolicyPlan, Totals};

/// `2026-11-10` for an instant in epoch seconds (UTC). Integer arithmetic (the civil-from-days
/// algorithm), because reasons are rendered for hundreds of thousands of users.
pub(crate) fn date(secs: i64) -> String {
    let mut out = String::with_capacity(10);
    write_date(&mut out, secs);
    out
}

/// [`date`] into a buffer.
pub(crate) fn write_date(out: &mut String, secs: i64) {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(out, "{year:04}-{month:02}-{day:02}");
}

/// Whole days in a span of seconds, never negative.
pub(crate) fn days(secs: i64) -> i64 {
    secs.max(0) / 86_400
}

/// "; notice sent 2026-11-10" / "; notices sent 2026-11-10 (14d ahead), 2026-11-21 (3d ahead)".
pub(crate) fn notices_clause(notices: &[(Duration, i64)]) -> String {
    match notices {
        [] => String::new(),
        [(_, at)] => format!("; notice sent {}", date(*at)),
        many => {
            let parts: Vec<String> = many.iter().map(|(lead, at)| format!("{} ({lead} ahead)", date(*at))).collect();
            format!("; notices sent {}", parts.join(", "))
        }
    }
}

/// Secondary lists (deferred, held back, skipped, IdP) show this many entries in text; JSON has all.
const LIST_LIMIT: usize = 20;

fn more(out: &mut String, total: usize) {
    if total > LIST_LIMIT {
        let _ = writeln!(out, "   ... and {} more", total - LIST_LIMIT);
    }
}

fn mode_label(mode: PolicyMode) -> &'static str {
    match mode {
        PolicyMode::DryRun => "DryRun",
        PolicyMode::Enforce => "Enforce",
        PolicyMode::Paused => "Paused",
    }
}

fn money(amount: f64, currency: Option<&str>) -> String {
    format!("{amount:.2} {}", currency.unwrap_or(""))
}

fn totals_lines(t: &Totals, out: &mut String, bullet: &str) {
    let _ = writeln!(
        out,
        "{bullet}{} destructive action(s) on {} user(s), {} restoration(s), {} onboarding(s), {} notice(s), {} deferred, {} held back, {} skipped, {} for the identity provider",
        t.destructive_actions,
        t.users_acted_on,
        t.restorations,
        t.onboardings,
        t.notices,
        t.deferred,
        t.held_back,
        t.skipped,
        t.idp_actions
    );
    if !t.seats_freed.is_empty() {
        let seats: Vec<String> = t.seats_freed.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let _ = writeln!(out, "{bullet}seats freed: {}", seats.join(", "));
    }
    if !t.seats_added.is_empty() {
        let seats: Vec<String> = t.seats_added.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let _ = writeln!(out, "{bullet}seats taken again: {}", seats.join(", "));
    }
    let s = &t.savings;
    if s.currency.is_some() {
        let _ = writeln!(
            out,
            "{bullet}projected monthly savings: {} ({})",
            money(s.projected_monthly, s.currency.as_deref()),
            s.realized_note
        );
    }
    if !s.unpriced_products.is_empty() {
        let names: Vec<String> = s.unpriced_products.iter().map(|p| p.to_string()).collect();
        let _ = writeln!(out, "{bullet}no seat price configured for: {}", names.join(", "));
    }
}

fn policy_header(p: &PolicyPlan) -> String {
    let applies = match (p.mode, p.applies, &p.halt) {
        (_, _, Some(_)) => "HALTED: nothing is applied",
        (PolicyMode::Enforce, true, _) => "applies",
        (PolicyMode::Enforce, false, _) => "does not apply",
        (PolicyMode::DryRun, _, _) => "DryRun: what it would do, nothing is applied",
        (PolicyMode::Paused, _, _) => "paused: nothing is evaluated",
    };
    format!("policy {} [{}] — {} in scope — {}", p.policy, mode_label(p.mode), p.in_scope, applies)
}

/// The plan as plain text, grouped by policy and rule.
pub fn to_text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "Plan for organization {} at {} (snapshot {})", plan.org_id, plan.now, plan.snapshot_taken_at);
    for c in &plan.conditions {
        let _ = writeln!(out, "! {}: {}", c.reason, c.message);
    }
    for p in &plan.policies {
        let _ = writeln!(out, "\n== {}", policy_header(p));
        if let Some(h) = &p.halt {
            let _ = writeln!(out, "! {}: {}", h.reason, h.message);
        }
        for c in &p.conditions {
            let _ = writeln!(out, "! {}: {}", c.reason, c.message);
        }
        let mut rules: Vec<&str> = p.actions.iter().map(|a| a.rule.as_str()).collect();
        rules.extend(p.notices.iter().map(|n| n.rule.as_str()));
        let mut seen = Vec::new();
        for r in rules {
            if !seen.contains(&r) {
                seen.push(r);
            }
        }
        for rule in seen {
            let _ = writeln!(out, "-- rule {rule}");
            for a in p.actions.iter().filter(|a| a.rule == rule) {
                let target = a.kind.group_id().map(|g| format!(" {g}")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "   {}{} {} <{}>: {}",
                    a.kind.label(),
                    target,
                    a.account_id,
                    a.email.as_deref().unwrap_or("-"),
                    a.reason
                );
            }
            for n in p.notices.iter().filter(|n| n.rule == rule) {
                let _ = writeln!(
                    out,
                    "   notice ({} ahead) {} <{}>: {}",
                    n.lead_time,
                    n.account_id,
                    n.email.as_deref().unwrap_or("-"),
                    n.reason
                );
            }
        }
        if !p.deferred.is_empty() {
            let _ = writeln!(out, "-- deferred ({})", p.deferred.len());
            for d in p.deferred.iter().take(LIST_LIMIT) {
                let _ = writeln!(out, "   {} {}: {}", d.action.kind.label(), d.action.account_id, d.why);
            }
            more(&mut out, p.deferred.len());
        }
        if !p.held_back.is_empty() {
            let _ = writeln!(out, "-- held back for another decision this run ({})", p.held_back.len());
            for h in p.held_back.iter().take(LIST_LIMIT) {
                let _ = writeln!(out, "   {} {} ({}): {}", h.kind.label(), h.account_id, h.rule, h.why);
            }
            more(&mut out, p.held_back.len());
        }
        if !p.idp_actions.is_empty() {
            let _ = writeln!(out, "-- to do in the identity provider ({})", p.idp_actions.len());
            for i in p.idp_actions.iter().take(LIST_LIMIT) {
                let _ = writeln!(
                    out,
                    "   {} {} <{}>: {}",
                    i.kind.label(),
                    i.account_id,
                    i.email.as_deref().unwrap_or("-"),
                    i.reason
                );
            }
            more(&mut out, p.idp_actions.len());
        }
        if !p.skipped_counts.is_empty() {
            let counts: Vec<String> = p.skipped_counts.iter().map(|(k, n)| format!("{} {n}", k.label())).collect();
            let _ = writeln!(out, "-- skipped: {}", counts.join(", "));
            for s in p.skipped.iter().take(LIST_LIMIT) {
                let _ = writeln!(out, "   {} <{}>: {}", s.account_id, s.email.as_deref().unwrap_or("-"), s.why);
            }
            more(&mut out, p.skipped.len());
        }
        totals_lines(&p.totals, &mut out, "   ");
    }
    let _ = writeln!(out, "\n== totals");
    totals_lines(&plan.totals, &mut out, "   ");
    out
}

/// The plan as markdown, for pull-request previews.
pub fn to_markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Seatwarden plan for `{}`\n", plan.org_id);
    let _ = writeln!(out, "At {} (snapshot {}).\n", plan.now, plan.snapshot_taken_at);
    for c in &plan.conditions {
        let _ = writeln!(out, "> **{}**: {}\n", c.reason, c.message);
    }
    for p in &plan.policies {
        let _ = writeln!(out, "### {}\n", policy_header(p));
        if let Some(h) = &p.halt {
            let _ = writeln!(out, "> **{}**: {}\n", h.reason, h.message);
        }
        for c in &p.conditions {
            let _ = writeln!(out, "> **{}**: {}\n", c.reason, c.message);
        }
        if !p.actions.is_empty() || !p.notices.is_empty() {
            let _ = writeln!(out, "| rule | action | account | email | reason |\n|---|---|---|---|---|");
            for a in &p.actions {
                let target = a.kind.group_id().map(|g| format!(" `{g}`")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {} | {}{} | `{}` | {} | {} |",
                    a.rule,
                    a.kind.label(),
                    target,
                    a.account_id,
                    a.email.as_deref().unwrap_or("-"),
                    a.reason.replace('|', "\\|")
                );
            }
            for n in &p.notices {
                let _ = writeln!(
                    out,
                    "| {} | notice ({} ahead) | `{}` | {} | {} |",
                    n.rule,
                    n.lead_time,
                    n.account_id,
                    n.email.as_deref().unwrap_or("-"),
                    n.reason.replace('|', "\\|")
                );
            }
            out.push('\n');
        }
        if !p.deferred.is_empty() {
            let _ = writeln!(out, "{} action(s) deferred by the caps.\n", p.deferred.len());
        }
        for h in &p.held_back {
            let _ = writeln!(out, "- held back: {} `{}` ({}): {}", h.kind.label(), h.account_id, h.rule, h.why);
        }
        for i in &p.idp_actions {
            let _ = writeln!(out, "- in the identity provider: {} `{}`: {}", i.kind.label(), i.account_id, i.reason);
        }
        if !p.skipped_counts.is_empty() {
            let counts: Vec<String> = p.skipped_counts.iter().map(|(k, n)| format!("{} {n}", k.label())).collect();
            let _ = writeln!(out, "- skipped: {}", counts.join(", "));
        }
        totals_lines(&p.totals, &mut out, "- ");
        out.push('\n');
    }
    let _ = writeln!(out, "### Totals\n");
    totals_lines(&plan.totals, &mut out, "- ");
    out
}

/// The plan as JSON for machines (`seatwarden plan --format json`): `actions` (each with
/// `accountId`, `email`, `action`, `group`, `rule`, `policy`, `mode`, `applies`, `reason`,
/// `seats`), `notices`, `policies` (mode, in scope, halt, conditions, counts) and `totals`.
pub fn to_json(plan: &Plan) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let seats = |m: &std::collections::BTreeMap<crate::product::Product, i32>| -> Value {
        Value::Object(m.iter().map(|(p, n)| (p.label().to_owned(), json!(n))).collect::<Map<_, _>>())
    };
    let mut actions = Vec::new();
    let mut notices = Vec::new();
    let mut policies = Vec::new();
    for p in &plan.policies {
        for a in &p.actions {
            actions.push(json!({
                "accountId": a.account_id,
                "email": a.email,
                "action": a.kind.label(),
                "group": a.kind.group_id(),
                "rule": a.rule,
                "policy": a.policy,
                "mode": mode_label(p.mode),
                "applies": p.applies,
                "destructive": a.destructive,
                "reason": a.reason,
                "seats": seats(&a.seats),
            }));
        }
        for n in &p.notices {
            notices.push(json!({
                "accountId": n.account_id,
                "email": n.email,
                "rule": n.rule,
                "policy": n.policy,
                "leadTime": n.lead_time.to_string(),
                "actionDue": n.action_due,
                "action": n.action.label(),
                "reason": n.reason,
            }));
        }
        policies.push(json!({
            "name": p.policy,
            "mode": mode_label(p.mode),
            "applies": p.applies,
            "inScope": p.in_scope,
            "halt": p.halt,
            "conditions": p.conditions,
            "deferred": p.deferred.len(),
            "heldBack": p.held_back.len(),
            "skipped": p.skipped_counts.iter().map(|(k, n)| (k.label().to_owned(), json!(n))).collect::<Map<_, _>>(),
            "idpActions": p.idp_actions,
            "totals": p.totals,
        }));
    }
    json!({
        "organization": plan.org_id,
        "now": plan.now,
        "snapshotTakenAt": plan.snapshot_taken_at,
        "conditions": plan.conditions,
        "actions": actions,
        "notices": notices,
        "policies": policies,
        "totals": plan.totals,
    })
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;

    #[test]
    fn notices_read_like_a_sentence() {
        assert_eq!(notices_clause(&[]), "");
        let nov10 = "2026-11-10T00:00:00Z".parse::<Timestamp>().unwrap().as_second();
        assert_eq!(notices_clause(&[(Duration::from_days(14), nov10)]), "; notice sent 2026-11-10");
        assert_eq!(
            notices_clause(&[(Duration::from_days(14), nov10), (Duration::from_days(3), nov10 + 11 * 86_400)]),
            "; notices sent 2026-11-10 (14d ahead), 2026-11-21 (3d ahead)"
        );
    }

    #[test]
    fn dates_match_jiff() {
        for t in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59Z",
            "2026-11-10T12:00:00Z",
            "2100-03-01T00:00:00Z",
            "1969-12-31T23:00:00Z",
        ] {
            let ts: Timestamp = t.parse().unwrap();
            assert_eq!(date(ts.as_second()), ts.strftime("%Y-%m-%d").to_string(), "{t}");
        }
    }

    #[test]
    fn days_round_down_and_never_go_negative() {
        assert_eq!(days(86_399), 0);
        assert_eq!(days(2 * 86_400 + 5), 2);
        assert_eq!(days(-5), 0);
    }
}

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod plan_tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn text_and_markdown_show_policies_modes_actions_and_totals() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle()]);
        fx.policies[0].spec.mode = PolicyMode::DryRun;
        let plan = fx.plan();
        let text = to_text(&plan);
        assert!(text.contains("policy idle [DryRun]"), "{text}");
        assert!(
            text.contains("suspend alice <alice@acme.test>: no activity on any product for 200 days (threshold 90)"),
            "{text}"
        );
        assert!(text.contains("projected monthly savings: 8.00 USD"), "{text}");
        let md = to_markdown(&plan);
        assert!(md.contains("| idle-90 | suspend | `alice` |"), "{md}");
        let json = to_json(&plan);
        let a = &json["actions"][0];
        assert_eq!(a["accountId"], "alice");
        assert_eq!(a["action"], "suspend");
        assert_eq!(a["rule"], "idle-90");
        assert_eq!(a["policy"], "idle");
        assert_eq!(a["mode"], "DryRun");
        assert_eq!(a["seats"]["jira-software"], 1);
        assert_eq!(a["reason"], "no activity on any product for 200 days (threshold 90)");
        assert_eq!(json["totals"]["seatsFreed"]["JiraSoftware"], 1);
    }
}
