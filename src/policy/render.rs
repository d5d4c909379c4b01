//! Words for people: reasons on actions and notices, and the plan as text or markdown (what
//! `seatwarden plan` prints and a pull-request preview shows).

use std::fmt::Write as _;

use crate::crd::{Duration, PolicyMode};

use super::types::{Plan, PolicyPlan, SkipKind, Totals};

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
    to_text_with(plan, &Default::default())
}

/// [`to_text`], with each policy's schedule outlook (`seatwarden plan` knows it; the planner does
/// not) on a `schedule:` line of its own under the policy's header: when a policy runs is no
/// condition of its plan, and consumers that count conditions must not count it.
pub fn to_text_with(plan: &Plan, schedule: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "Plan for organization {} at {} (snapshot {})", plan.org_id, plan.now, plan.snapshot_taken_at);
    for c in &plan.conditions {
        let _ = writeln!(out, "! {}: {}", c.reason, c.message);
    }
    for s in &plan.user_limits {
        let _ = writeln!(out, "user limit: {}", s.describe());
    }
    for p in &plan.policies {
        let _ = writeln!(out, "\n== {}", policy_header(p));
        if let Some(when) = schedule.get(&p.policy) {
            let _ = writeln!(out, "schedule: {when}");
        }
        if let Some(h) = &p.halt {
            let _ = writeln!(out, "! {}: {}", h.reason, h.message);
        }
        for c in &p.conditions {
            let _ = writeln!(out, "! {}: {}", c.reason, c.message);
        }
        let mut rules: Vec<&str> = p.actions.iter().map(|a| a.rule.as_str()).collect();
        rules.extend(p.notices.iter().map(|n| &*n.rule));
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
            for n in p.notices.iter().filter(|n| &*n.rule == rule) {
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

/// How the markdown preview is drawn.
#[derive(Clone, Debug)]
pub struct MarkdownOptions {
    /// The preview never exceeds this many characters (GitHub comments hold 65,536); rows that don't
    /// fit are counted as "and N more", the full plan being in `--format json`.
    pub max_chars: usize,
    /// Per policy: when it applies ("runs now", "next run 2026-11-26 09:00 UTC"), when known.
    pub schedule: std::collections::BTreeMap<String, String>,
    /// Group id → name, so group actions name the group.
    pub group_names: std::collections::HashMap<String, String>,
}

impl Default for MarkdownOptions {
    fn default() -> Self {
        Self { max_chars: DEFAULT_MARKDOWN_CHARS, schedule: Default::default(), group_names: Default::default() }
    }
}

/// Default size limit of the markdown preview: under GitHub's 65,536 characters with room for a
/// workflow's own header.
pub const DEFAULT_MARKDOWN_CHARS: usize = 60_000;

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn seats_text(m: &std::collections::BTreeMap<crate::product::Product, u32>) -> String {
    if m.is_empty() {
        return "—".to_owned();
    }
    m.iter().map(|(p, n)| format!("{p} {n}")).collect::<Vec<_>>().join(", ")
}

/// One collapsible section of the preview's details.
struct Section {
    summary: String,
    header: &'static str,
    rows: Vec<String>,
}

/// The plan as markdown for a pull-request comment: the summary first (one table row per policy:
/// mode, when it applies, counts, seats, savings, halts and warnings), then the details in
/// collapsible `<details>` sections with emails, all within `options.max_chars`.
pub fn to_markdown_with(plan: &Plan, options: &MarkdownOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Seatwarden plan for `{}`\n", plan.org_id);
    let _ = writeln!(
        out,
        "At {} (snapshot {}). DryRun policies show what they would do; only Enforce policies apply, and both are resolved as the operator resolves them.\n",
        plan.now.strftime("%Y-%m-%d %H:%M UTC"),
        plan.snapshot_taken_at.strftime("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        out,
        "| policy | mode | applies | destructive | users | notices | restorations | onboardings | deferred | seats freed | monthly savings | halts / warnings |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|");
    for p in &plan.policies {
        let t = &p.totals;
        let when = options.schedule.get(&p.policy).map(String::as_str).unwrap_or("");
        let applies = match (p.mode, p.applies, &p.halt) {
            (_, _, Some(_)) => "**halted**: nothing".to_owned(),
            (PolicyMode::Enforce, true, _) if when.is_empty() => "yes".to_owned(),
            (PolicyMode::Enforce, true, _) => format!("yes, {when}"),
            (PolicyMode::Enforce, false, _) => "no".to_owned(),
            (PolicyMode::DryRun, _, _) => "no (DryRun)".to_owned(),
            (PolicyMode::Paused, _, _) => "no (Paused)".to_owned(),
        };
        let mut flags: Vec<String> = p.halt.iter().map(|h| format!("⛔ {}", h.reason)).collect();
        flags.extend(p.conditions.iter().map(|c| format!("⚠ {}", c.reason)));
        let savings = if t.savings.currency.is_some() {
            money(t.savings.projected_monthly, t.savings.currency.as_deref())
        } else {
            "—".to_owned()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            p.policy,
            mode_label(p.mode),
            md_cell(&applies),
            t.destructive_actions,
            t.users_acted_on,
            t.notices,
            t.restorations,
            t.onboardings,
            t.deferred,
            seats_text(&t.seats_freed),
            savings,
            if flags.is_empty() { "—".to_owned() } else { flags.join(", ") }
        );
    }
    out.push('\n');
    let t = &plan.totals;
    let _ = writeln!(
        out,
        "**Total:** {} destructive action(s) on {} user(s), {} notice(s), {} restoration(s), {} onboarding(s), {} deferred by the caps; seats freed: {}{}.\n",
        t.destructive_actions,
        t.users_acted_on,
        t.notices,
        t.restorations,
        t.onboardings,
        t.deferred,
        seats_text(&t.seats_freed),
        if t.savings.currency.is_some() {
            format!("; projected monthly savings {}", money(t.savings.projected_monthly, t.savings.currency.as_deref()))
        } else {
            String::new()
        }
    );
    let warnings: Vec<String> = plan
        .conditions
        .iter()
        .map(|c| format!("- ⚠ **{}**: {}", c.reason, md_cell(&c.message)))
        .chain(plan.policies.iter().flat_map(|p| {
            p.halt
                .iter()
                .map(move |h| format!("- ⛔ `{}` **halted** ({}): {}", p.policy, h.reason, md_cell(&h.message)))
                .chain(
                    p.conditions
                        .iter()
                        .map(move |c| format!("- ⚠ `{}` **{}**: {}", p.policy, c.reason, md_cell(&c.message))),
                )
        }))
        .collect();
    if !warnings.is_empty() {
        let _ = writeln!(out, "### Halts and warnings\n");
        for w in &warnings {
            let _ = writeln!(out, "{w}");
        }
        out.push('\n');
    }

    let group = |id: &str| match options.group_names.get(id) {
        Some(name) => format!(" `{}`", md_cell(name)),
        None => format!(" `{id}`"),
    };
    let email = |e: &Option<String>| e.as_deref().map(md_cell).unwrap_or_else(|| "—".to_owned());
    // One row of the five-column tables: what decided, what it does, email, account, and why.
    let row = |first: String, what: String, email: String, account: &str, why: &str| {
        format!("| {first} | {what} | {email} | `{account}` | {} |", md_cell(why))
    };
    let mut sections = Vec::new();
    for p in &plan.policies {
        if !p.actions.is_empty() {
            sections.push(Section {
                summary: format!("<code>{}</code>: {} action(s)", p.policy, p.actions.len()),
                header: "| rule | action | email | account | reason |\n|---|---|---|---|---|",
                rows: p
                    .actions
                    .iter()
                    .map(|a| {
                        row(
                            md_cell(&a.rule),
                            format!("{}{}", a.kind.label(), a.kind.group_id().map(group).unwrap_or_default()),
                            email(&a.email),
                            &a.account_id,
                            &a.reason,
                        )
                    })
                    .collect(),
            });
        }
        if !p.notices.is_empty() {
            sections.push(Section {
                summary: format!("<code>{}</code>: {} notice(s)", p.policy, p.notices.len()),
                header: "| rule | notice | email | account | action due | reason |\n|---|---|---|---|---|---|",
                rows: p
                    .notices
                    .iter()
                    .map(|n| {
                        format!(
                            "| {} | {} ahead of {} | {} | `{}` | {} | {} |",
                            md_cell(&n.rule),
                            n.lead_time,
                            n.action.label(),
                            email(&n.email),
                            n.account_id,
                            n.action_due.strftime("%Y-%m-%d"),
                            md_cell(&n.reason)
                        )
                    })
                    .collect(),
            });
        }
        if !p.deferred.is_empty() {
            sections.push(Section {
                summary: format!("<code>{}</code>: {} deferred by the caps", p.policy, p.deferred.len()),
                header: "| rule | action | email | account | why |\n|---|---|---|---|---|",
                rows: p
                    .deferred
                    .iter()
                    .map(|d| {
                        row(
                            md_cell(&d.action.rule),
                            format!(
                                "{}{}",
                                d.action.kind.label(),
                                d.action.kind.group_id().map(group).unwrap_or_default()
                            ),
                            email(&d.action.email),
                            &d.action.account_id,
                            &d.why,
                        )
                    })
                    .collect(),
            });
        }
        if !p.held_back.is_empty() {
            sections.push(Section {
                summary: format!("<code>{}</code>: {} held back for another decision", p.policy, p.held_back.len()),
                header: "| rule | action | email | account | why |\n|---|---|---|---|---|",
                rows: p
                    .held_back
                    .iter()
                    .map(|h| row(md_cell(&h.rule), h.kind.label().to_owned(), email(&h.email), &h.account_id, &h.why))
                    .collect(),
            });
        }
        if !p.idp_actions.is_empty() {
            sections.push(Section {
                summary: format!("<code>{}</code>: {} to do in the identity provider", p.policy, p.idp_actions.len()),
                header: "| rule | action | email | account | reason |\n|---|---|---|---|---|",
                rows: p
                    .idp_actions
                    .iter()
                    .map(|i| {
                        row(
                            md_cell(&i.rule),
                            format!(
                                "{}{}",
                                i.kind.label(),
                                i.group_name.as_deref().map(|g| format!(" `{}`", md_cell(g))).unwrap_or_default()
                            ),
                            email(&i.email),
                            &i.account_id,
                            &i.reason,
                        )
                    })
                    .collect(),
            });
        }
        if !p.skipped.is_empty() {
            let counts: Vec<String> = p.skipped_counts.iter().map(|(k, n)| format!("{} {n}", k.label())).collect();
            sections.push(Section {
                summary: format!(
                    "<code>{}</code>: {} kept out by safety rules ({})",
                    p.policy,
                    p.skipped.len(),
                    counts.join(", ")
                ),
                header: "| kind | rule | email | account | why |\n|---|---|---|---|---|",
                rows: p
                    .skipped
                    .iter()
                    .map(|s| {
                        row(
                            s.kind.label().to_owned(),
                            s.rule.as_deref().map(md_cell).unwrap_or_default(),
                            email(&s.email),
                            &s.account_id,
                            &s.why,
                        )
                    })
                    .collect(),
            });
        }
    }
    if !sections.is_empty() {
        let _ = writeln!(out, "### Details\n");
    }
    const FULL_PLAN: &str = "the full plan: `seatwarden plan --output json`";
    // Room kept for each later section's closing lines, so the limit holds whatever comes.
    const SECTION_TAIL: usize = 320;
    let total_sections = sections.len();
    for (i, section) in sections.into_iter().enumerate() {
        let tail_reserve = SECTION_TAIL * (total_sections - i) + 200;
        let budget = options.max_chars.saturating_sub(tail_reserve);
        let opening = format!("<details><summary>{}</summary>\n\n{}\n", section.summary, section.header);
        if out.chars().count() + opening.chars().count() > budget {
            let _ = writeln!(out, "- {}: not shown ({FULL_PLAN})", section.summary);
            continue;
        }
        out.push_str(&opening);
        let mut used = out.chars().count();
        let mut shown = 0;
        for row in &section.rows {
            let len = row.chars().count() + 1;
            if used + len > budget {
                break;
            }
            out.push_str(row);
            out.push('\n');
            used += len;
            shown += 1;
        }
        if shown < section.rows.len() {
            let _ = writeln!(out, "\n… and {} more ({FULL_PLAN})", section.rows.len() - shown);
        }
        out.push_str("\n</details>\n\n");
    }
    out
}

/// [`to_markdown_with`] with the default options.
pub fn to_markdown(plan: &Plan) -> String {
    to_markdown_with(plan, &MarkdownOptions::default())
}

/// The plan as JSON for machines (`seatwarden plan --format json`): `actions` (each with
/// `accountId`, `email`, `action`, `directory`, `group`, `rule`, `policy`, `mode`, `applies`,
/// `reason`, `seats`), `notices`, `policies` (mode, in scope, halt, conditions, counts) and `totals`.
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
                // The directory the write goes to (a suspension, a removal and a group are per
                // directory; a group id alone is ambiguous across directories).
                "directory": a.directory_id,
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
            // Who keeps a product through a group no mapping names, and which groups: what an admin
            // adds to a GroupLicenseMapping (or sets removeWhenNoSeatFreed for).
            "stillGranted": p.skipped.iter().filter(|s| s.kind == SkipKind::StillGranted).map(|s| json!({
                "accountId": s.account_id,
                "email": s.email,
                "rule": s.rule,
                "reason": s.why,
            })).collect::<Vec<_>>(),
            "idpActions": p.idp_actions,
            "totals": totals_json(&p.totals),
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
        "totals": totals_json(&plan.totals),
        // Products with a user limit in force: seats in use, the limit and the room left.
        "userLimits": plan.user_limits.iter().map(|s| json!({
            "product": s.product.label(),
            "licensed": s.licensed,
            "declaredLimit": s.declared_limit,
            "limit": s.limit(),
            "room": s.room(),
            "refusedAt": s.refused.as_ref().map(|r| json!({"licensed": r.licensed, "at": r.at, "message": r.message})),
        })).collect::<Vec<_>>(),
    })
}

/// Totals as JSON with products spelled as everywhere else in the JSON (`jira-software`, the
/// product label), not as the Rust enum serializes (`JiraSoftware`).
fn totals_json(t: &Totals) -> serde_json::Value {
    use serde_json::Value;
    let mut v = serde_json::to_value(t).expect("totals serialize");
    let label = |key: &str| -> Option<&'static str> {
        crate::product::Product::ALL
            .into_iter()
            .find(|p| serde_json::to_value(p).ok().as_ref().and_then(Value::as_str) == Some(key))
            .map(|p| p.label())
    };
    let relabel_keys = |v: Option<&mut Value>| {
        if let Some(Value::Object(m)) = v {
            let entries = std::mem::take(m);
            for (k, val) in entries {
                m.insert(label(&k).map_or(k, str::to_owned), val);
            }
        }
    };
    relabel_keys(v.get_mut("seatsFreed"));
    relabel_keys(v.get_mut("seatsAdded"));
    if let Some(savings) = v.get_mut("savings") {
        relabel_keys(savings.get_mut("byProduct"));
        if let Some(Value::Array(list)) = savings.get_mut("unpricedProducts") {
            for item in list {
                if let Some(l) = item.as_str().and_then(label) {
                    *item = Value::String(l.to_owned());
                }
            }
        }
    }
    v
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
        assert!(md.contains("| idle-90 | suspend | alice@acme.test | `alice` |"), "{md}");
        assert!(!md.contains("shown as Enforce would act"), "one resolution: {md}");
        let json = to_json(&plan);
        let a = &json["actions"][0];
        assert_eq!(a["accountId"], "alice");
        assert_eq!(a["action"], "suspend");
        assert_eq!(a["rule"], "idle-90");
        assert_eq!(a["policy"], "idle");
        assert_eq!(a["mode"], "DryRun");
        assert_eq!(a["seats"]["jira-software"], 1);
        assert_eq!(a["reason"], "no activity on any product for 200 days (threshold 90)");
        assert_eq!(json["totals"]["seatsFreed"]["jira-software"], 1);
        assert_eq!(a["directory"], "dir-1");
    }

    #[test]
    fn json_names_the_directory_of_every_write() {
        // Idle in both directories: suspended in each, and the JSON says where.
        let mut fx = Fx::new(vec![], vec![suspend_idle()]);
        fx.snapshot = two_directories(vec![idle("alice", 200), in_dir2(idle("alice", 200)), user("bob")]);
        let json = to_json(&fx.plan());
        let writes: Vec<(&str, &str)> = json["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["action"].as_str().unwrap(), a["directory"].as_str().unwrap()))
            .collect();
        assert_eq!(writes, [("suspend", "dir-1"), ("suspend", "dir-2")]);
    }
}
