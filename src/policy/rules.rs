//! Rule triggers (when does a rule target a user, and since when) and the notice schedule (may
//! the action happen now, must a notice go out first, or is the user waiting out a lead time).
//!
//! All instants are whole seconds since the Unix epoch, so the hot loop does integer arithmetic.

use crate::crd::{Duration, Rule, RuleAction};
use crate::ledger::UserRecord;
use crate::product::Product;
use crate::snapshot::{Account, GroupIdx, UserStatus};

use super::render::{days, write_date};
use super::safety::ActivityHealth;
use super::savings::Licensing;

/// Why and since when a rule targets a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Trigger {
    /// The instant the rule's threshold (plus the activity lag margin) is crossed.
    pub threshold_at: i64,
    /// Start of the episode the rule measures (last relevant activity, the date added, the
    /// suspension, or seatwarden's last restoration): notices older than this no longer count.
    pub episode_start: i64,
    /// Whole days of the measured inactivity (orders longest-inactive first).
    pub inactive_days: i64,
    /// What a person is told, rendered on demand ([`Trigger::facts`]): most triggers lose to
    /// another decision or wait, and words cost more than numbers.
    pub what: Facts,
    /// The product of a per-product rule.
    pub product: Option<Product>,
    /// For per-product rules: the user's licensed groups of the product, to remove.
    pub groups: Vec<GroupIdx>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Eval {
    /// The rule does not concern this user (yet).
    Not,
    /// The rule would need activity data that is missing or unreliable for this user (the
    /// conditions say which).
    NoData,
    /// The rule targets the user: past its threshold, or inside the warning window before it.
    Targeted(Trigger),
}

/// The numbers behind a trigger's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Facts {
    /// Last active at `since` (on `product`, or any product).
    Idle { product: Option<Product>, since: i64, threshold: Duration, restored: Option<i64> },
    /// Never active (on `product`, or any product) since added at `since`.
    Never { product: Option<Product>, since: i64, threshold: Duration, restored: Option<i64> },
    /// Suspended since `since`.
    Suspended { since: i64, by_seatwarden: bool, threshold: Duration },
    #[cfg(test)]
    None,
}

impl Trigger {
    /// For people, e.g. "no Jira activity for 94 days (threshold 60)".
    pub fn facts(&self, now: i64) -> String {
        let mut out = String::with_capacity(160);
        self.write_facts(now, &mut out);
        out
    }

    /// [`Trigger::facts`] into a buffer: notices for a large backlog are hundreds of thousands.
    pub fn write_facts(&self, now: i64, out: &mut String) {
        use std::fmt::Write as _;
        let _ = match &self.what {
            Facts::Idle { product: Some(p), since, threshold, .. } => {
                write!(out, "no {p} activity for {} days (threshold {})", days(now - since), threshold.whole_days())
            }
            Facts::Idle { product: None, since, threshold, .. } => write!(
                out,
                "no activity on any product for {} days (threshold {})",
                days(now - since),
                threshold.whole_days()
            ),
            Facts::Never { product, since, threshold, .. } => {
                out.push_str("never active on ");
                match product {
                    Some(p) => out.push_str(p.display_name()),
                    None => out.push_str("any product"),
                }
                out.push_str(" since added ");
                write_date(out, *since);
                write!(out, " ({} days; threshold {})", days(now - since), threshold.whole_days())
            }
            Facts::Suspended { since, by_seatwarden, threshold } => {
                out.push_str(if *by_seatwarden { "suspended by seatwarden " } else { "found suspended " });
                write_date(out, *since);
                write!(out, " ({} days ago; threshold {})", days(now - since), threshold.whole_days())
            }
            #[cfg(test)]
            Facts::None => Ok(()),
        };
        if let Facts::Idle { since, restored: Some(r), .. } | Facts::Never { since, restored: Some(r), .. } = &self.what
            && r > since
        {
            out.push_str("; restored by seatwarden ");
            write_date(out, *r);
        }
    }
}

/// When the user joined the organization: the snapshot's date, else when seatwarden first saw them.
pub(crate) fn added_at(user: &Account, rec: Option<&UserRecord>) -> Option<i64> {
    user.added_to_org.map(|t| t.as_second()).or_else(|| rec.and_then(|r| r.first_seen).map(|t| t.as_second()))
}

/// Last activity from any source (any product, known or not, in any directory; API tokens): the
/// snapshot's, or what the ledger saw before seatwarden took a product away (the snapshot no longer
/// lists activity on a product the user lost).
pub(crate) fn last_active_any(user: &Account, rec: Option<&UserRecord>) -> Option<i64> {
    let seen = rec.and_then(UserRecord::last_active_seen).map(|t| t.as_second());
    user.last_activity().map(|t| t.as_second()).max(seen)
}

fn restored_at(rec: Option<&UserRecord>) -> Option<i64> {
    rec.and_then(|r| r.restored_at).map(|t| t.as_second())
}

/// The largest notice lead time of a rule, in seconds (0 without notices).
pub(crate) fn max_lead(rule: &Rule) -> i64 {
    rule.notice_lead_times.iter().map(Duration::as_secs).max().unwrap_or(0).max(0)
}

/// Whether `user` is someone a rule of this kind may act on at all, by status.
fn status_allows(rule: &Rule, user: &Account) -> bool {
    if rule.suspended_for.is_some() {
        user.status() == UserStatus::Suspended
    } else {
        matches!(user.status(), UserStatus::Active | UserStatus::InvitedNeverActive)
    }
}

/// Evaluates one rule's trigger for one user at `now`.
pub(crate) fn evaluate(
    rule: &Rule,
    margin: Duration,
    user: &Account,
    rec: Option<&UserRecord>,
    health: &ActivityHealth,
    licensing: &Licensing,
    now: i64,
) -> Eval {
    if !status_allows(rule, user) {
        return Eval::Not;
    }
    let margin = margin.as_secs().max(0);
    let window = max_lead(rule);
    let targeted = |threshold_at: i64| now >= threshold_at.saturating_sub(window);
    let restored = restored_at(rec);

    if let Some(pi) = &rule.product_inactivity {
        let product = pi.product;
        if !user.has_access_to(product) {
            return Eval::Not;
        }
        let licensed = licensing.licensed_groups_of(product);
        if !licensed.iter().any(|g| user.in_group(*g)) {
            return Eval::Not;
        }
        if health.product_off(product).is_some() {
            return Eval::NoData;
        }
        let last = user.last_active_on(product).map(|t| t.as_second());
        // Cheap checks first: most users aren't targeted, and words cost more than integers.
        let Some(since) = last.or_else(|| added_at(user, rec)) else { return Eval::Not };
        let episode_start = since.max(restored.unwrap_or(i64::MIN));
        let threshold_at = episode_start.saturating_add(pi.inactive_for.as_secs()).saturating_add(margin);
        if !targeted(threshold_at) {
            return Eval::Not;
        }
        let what = match last {
            Some(_) => Facts::Idle { product: Some(product), since, threshold: pi.inactive_for, restored },
            None => Facts::Never { product: Some(product), since, threshold: pi.inactive_for, restored },
        };
        return Eval::Targeted(Trigger {
            threshold_at,
            episode_start,
            inactive_days: days(now - since),
            what,
            product: Some(product),
            groups: licensed.iter().copied().filter(|g| user.in_group(*g)).collect(),
        });
    }

    if let Some(ai) = &rule.account_inactivity {
        if health.account_off(user) {
            return Eval::NoData;
        }
        let last = last_active_any(user, rec);
        let Some(since) = last.or_else(|| added_at(user, rec)) else { return Eval::Not };
        let episode_start = since.max(restored.unwrap_or(i64::MIN));
        let threshold_at = episode_start.saturating_add(ai.inactive_for.as_secs()).saturating_add(margin);
        if !targeted(threshold_at) {
            return Eval::Not;
        }
        let what = match last {
            Some(_) => Facts::Idle { product: None, since, threshold: ai.inactive_for, restored },
            None => Facts::Never { product: None, since, threshold: ai.inactive_for, restored },
        };
        return Eval::Targeted(Trigger {
            threshold_at,
            episode_start,
            inactive_days: days(now - since),
            what,
            product: None,
            groups: vec![],
        });
    }

    if let Some(na) = &rule.never_active {
        if last_active_any(user, rec).is_some() {
            return Eval::Not;
        }
        if health.account_off(user) {
            return Eval::NoData;
        }
        let Some(added) = added_at(user, rec) else { return Eval::Not };
        let episode_start = added.max(restored.unwrap_or(i64::MIN));
        let threshold_at = episode_start.saturating_add(na.added_for.as_secs()).saturating_add(margin);
        if !targeted(threshold_at) {
            return Eval::Not;
        }
        return Eval::Targeted(Trigger {
            threshold_at,
            episode_start,
            inactive_days: days(now - added),
            what: Facts::Never { product: None, since: added, threshold: na.added_for, restored },
            product: None,
            groups: vec![],
        });
    }

    if let Some(sf) = &rule.suspended_for {
        // Escalation counts from the suspension on record; a suspension seen for the first time
        // starts now (the plan records it), so nothing escalates on first sight.
        let Some(susp) = rec.and_then(|r| r.suspension.as_ref()) else { return Eval::Not };
        let since = susp.since.as_second();
        // A returner seatwarden restored after this suspension began is being given back its
        // access, not escalated.
        if restored.is_some_and(|r| r >= since) {
            return Eval::Not;
        }
        let threshold_at = since.saturating_add(sf.duration.as_secs());
        if !targeted(threshold_at) {
            return Eval::Not;
        }
        return Eval::Targeted(Trigger {
            threshold_at,
            episode_start: since,
            inactive_days: days(now - since),
            what: Facts::Suspended { since, by_seatwarden: susp.by_seatwarden, threshold: sf.duration },
            product: None,
            groups: vec![],
        });
    }
    Eval::Not
}

/// Whether the rule's action applies to this account at all (deactivation: managed accounts only).
pub(crate) fn not_applicable(rule: &Rule, user: &Account) -> Option<String> {
    (rule.action == RuleAction::Deactivate && !user.managed).then(|| {
        "deactivation applies to managed accounts only (it would block the account in every organization)".to_owned()
    })
}

/// What the notice schedule allows now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Schedule {
    /// The action may happen now; the delivered notices it relies on (lead time, delivered at).
    Act { notices: Vec<(Duration, i64)> },
    /// Send the notice for `lead` now; the action is due at `due` at the earliest. `replaces`: a
    /// notice delivered at that instant announced another action or product (the rule changed
    /// since), so it doesn't count and a new notice cycle starts.
    Notify { lead: Duration, due: i64, replaces: Option<(i64, Option<RuleAction>, Option<Product>)> },
    /// Notices are on record; the action waits until `until`.
    Wait { until: i64 },
}

/// The notice schedule of one targeted user (invariant 4): every lead time must have its own
/// delivered notice, each at least its lead time before the action; a user found past the
/// threshold without notice is warned now and acted on a lead time later.
pub(crate) fn schedule(policy: &str, rule: &Rule, rec: Option<&UserRecord>, trigger: &Trigger, now: i64) -> Schedule {
    let mut leads: Vec<Duration> = rule.notice_lead_times.clone();
    leads.sort_unstable_by(|a, b| b.cmp(a));
    leads.dedup();
    let mut due = trigger.threshold_at;
    let mut delivered = Vec::with_capacity(leads.len());
    let since = jiff::Timestamp::from_second(trigger.episode_start).unwrap_or(jiff::Timestamp::MIN);
    // A notice counts only for the action (and product) it announced (invariant 4).
    let announced = (rule.action, rule.product_inactivity.as_ref().map(|p| p.product));
    for lead in leads {
        let secs = lead.as_secs().max(0);
        match rec.and_then(|r| r.delivered_notice(policy, &rule.name, lead, announced, since)) {
            Some(n) => {
                let at = n.delivered_at.as_second();
                due = due.max(at.saturating_add(secs));
                delivered.push((lead, at));
            }
            None if now >= due.saturating_sub(secs) => {
                let replaces = rec
                    .and_then(|r| r.notice_announcing_otherwise(policy, &rule.name, lead, announced, since))
                    .map(|n| (n.delivered_at.as_second(), n.action, n.product));
                return Schedule::Notify { lead, due: due.max(now.saturating_add(secs)), replaces };
            }
            None => return Schedule::Wait { until: due.saturating_sub(secs) },
        }
    }
    if now >= due { Schedule::Act { notices: delivered } } else { Schedule::Wait { until: due } }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::AccountInactivity;
    use crate::ledger::NoticeRecord;

    const DAY: i64 = 86_400;

    fn rule(leads: &[i64]) -> Rule {
        Rule {
            name: "idle".into(),
            product_inactivity: None,
            account_inactivity: Some(AccountInactivity { inactive_for: Duration::from_days(90) }),
            never_active: None,
            suspended_for: None,
            action: RuleAction::Suspend,
            notice_lead_times: leads.iter().map(|d| Duration::from_days(*d)).collect(),
        }
    }

    fn trig(threshold_at: i64) -> Trigger {
        Trigger { threshold_at, episode_start: 0, inactive_days: 0, what: Facts::None, product: None, groups: vec![] }
    }

    fn delivered(lead_days: i64, at: i64) -> NoticeRecord {
        NoticeRecord {
            policy: "p".into(),
            rule: "idle".into(),
            lead_time: Duration::from_days(lead_days),
            action: Some(RuleAction::Suspend),
            product: None,
            delivered_at: jiff::Timestamp::from_second(at).unwrap(),
        }
    }

    #[test]
    fn without_lead_times_a_past_threshold_user_is_acted_on() {
        assert_eq!(schedule("p", &rule(&[]), None, &trig(100 * DAY), 100 * DAY), Schedule::Act { notices: vec![] });
        assert_eq!(schedule("p", &rule(&[]), None, &trig(100 * DAY), 99 * DAY), Schedule::Wait { until: 100 * DAY });
    }

    #[test]
    fn a_user_found_past_threshold_without_notice_is_warned_now_and_acted_on_a_lead_time_later() {
        let now = 200 * DAY;
        let s = schedule("p", &rule(&[14, 3]), None, &trig(100 * DAY), now);
        assert_eq!(s, Schedule::Notify { lead: Duration::from_days(14), due: now + 14 * DAY, replaces: None });
    }

    #[test]
    fn the_first_notice_goes_out_a_lead_time_before_the_threshold() {
        let s = schedule("p", &rule(&[14]), None, &trig(100 * DAY), 86 * DAY);
        assert_eq!(s, Schedule::Notify { lead: Duration::from_days(14), due: 100 * DAY, replaces: None });
    }

    #[test]
    fn each_lead_time_needs_its_own_delivered_notice() {
        let rec = UserRecord { notices: vec![delivered(14, 86 * DAY)], ..Default::default() };
        // Between the two notices: wait for the 3-day notice's moment.
        assert_eq!(
            schedule("p", &rule(&[14, 3]), Some(&rec), &trig(100 * DAY), 90 * DAY),
            Schedule::Wait { until: 97 * DAY }
        );
        // The 3-day notice is due, not yet delivered: send it, act 3 days after it at the earliest.
        assert_eq!(
            schedule("p", &rule(&[14, 3]), Some(&rec), &trig(100 * DAY), 98 * DAY),
            Schedule::Notify { lead: Duration::from_days(3), due: 101 * DAY, replaces: None }
        );
        let rec2 = UserRecord { notices: vec![delivered(14, 86 * DAY), delivered(3, 98 * DAY)], ..Default::default() };
        assert_eq!(
            schedule("p", &rule(&[14, 3]), Some(&rec2), &trig(100 * DAY), 100 * DAY),
            Schedule::Wait { until: 101 * DAY }
        );
        assert_eq!(
            schedule("p", &rule(&[14, 3]), Some(&rec2), &trig(100 * DAY), 101 * DAY),
            Schedule::Act { notices: vec![(Duration::from_days(14), 86 * DAY), (Duration::from_days(3), 98 * DAY)] }
        );
    }

    #[test]
    fn a_notice_from_before_the_episode_does_not_count() {
        let rec = UserRecord { notices: vec![delivered(14, 10 * DAY)], ..Default::default() };
        let mut t = trig(100 * DAY);
        t.episode_start = 20 * DAY; // active again after the old notice
        assert!(matches!(schedule("p", &rule(&[14]), Some(&rec), &t, 200 * DAY), Schedule::Notify { .. }));
    }

    #[test]
    fn a_notice_counts_only_for_the_action_and_product_it_announced() {
        // Told "suspend"; the rule now deactivates: the old notice doesn't count, a new cycle starts.
        let rec = UserRecord { notices: vec![delivered(14, 86 * DAY)], ..Default::default() };
        let mut deactivate = rule(&[14]);
        deactivate.action = RuleAction::Deactivate;
        assert_eq!(
            schedule("p", &deactivate, Some(&rec), &trig(100 * DAY), 101 * DAY),
            Schedule::Notify {
                lead: Duration::from_days(14),
                due: 115 * DAY,
                replaces: Some((86 * DAY, Some(RuleAction::Suspend), None))
            }
        );
        // The same action: it counts.
        assert!(matches!(schedule("p", &rule(&[14]), Some(&rec), &trig(100 * DAY), 101 * DAY), Schedule::Act { .. }));
        // A per-product notice counts for its product only.
        let mut jira = rule(&[14]);
        jira.action = RuleAction::RemoveLicensedGroups;
        jira.account_inactivity = None;
        jira.product_inactivity = Some(crate::crd::ProductInactivity {
            product: Product::JiraSoftware,
            inactive_for: Duration::from_days(90),
        });
        let told = |product| NoticeRecord {
            action: Some(RuleAction::RemoveLicensedGroups),
            product: Some(product),
            ..delivered(14, 86 * DAY)
        };
        let rec = UserRecord { notices: vec![told(Product::Confluence)], ..Default::default() };
        assert!(matches!(
            schedule("p", &jira, Some(&rec), &trig(100 * DAY), 101 * DAY),
            Schedule::Notify { replaces: Some((_, _, Some(Product::Confluence))), .. }
        ));
        let rec = UserRecord { notices: vec![told(Product::JiraSoftware)], ..Default::default() };
        assert!(matches!(schedule("p", &jira, Some(&rec), &trig(100 * DAY), 101 * DAY), Schedule::Act { .. }));
        // A record that doesn't say what it announced (kept by an older seatwarden) counts for nothing.
        let rec = UserRecord {
            notices: vec![NoticeRecord { action: None, ..delivered(14, 86 * DAY) }],
            ..Default::default()
        };
        assert!(matches!(
            schedule("p", &rule(&[14]), Some(&rec), &trig(100 * DAY), 101 * DAY),
            Schedule::Notify { .. }
        ));
    }

    #[test]
    fn a_notice_of_another_rule_or_policy_does_not_count() {
        let mut other_rule = delivered(14, 50 * DAY);
        other_rule.rule = "other".into();
        let mut other_policy = delivered(14, 50 * DAY);
        other_policy.policy = "q".into();
        let rec = UserRecord { notices: vec![other_rule, other_policy], ..Default::default() };
        assert!(matches!(
            schedule("p", &rule(&[14]), Some(&rec), &trig(100 * DAY), 200 * DAY),
            Schedule::Notify { .. }
        ));
    }
}
