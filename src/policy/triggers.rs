//! Rule triggers (when does a rule target a user, and since when) and the notice schedule (may
//! the action happen now, must a notice go out first, or is the user waiting out a lead time).
//!
//! All instants are whole seconds since the Unix epoch, so the hot loop does integer arithmetic.

use crate::crd::{Duration, Rule, RuleAction};
use crate::ledger::UserRecord;
use crate::product::{Product, ProductKey};
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
    pub groups: GroupList,
}

/// A few group indices, kept inline: an account is in one or two licensed groups of a product,
/// and a large plan holds hundreds of thousands of claims (one allocation each otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GroupList {
    Inline { len: u8, groups: [GroupIdx; 3] },
    Spilled(Vec<GroupIdx>),
}

impl GroupList {
    pub const EMPTY: GroupList = GroupList::Inline { len: 0, groups: [0; 3] };
}

impl std::ops::Deref for GroupList {
    type Target = [GroupIdx];
    fn deref(&self) -> &[GroupIdx] {
        match self {
            GroupList::Inline { len, groups } => &groups[..usize::from(*len)],
            GroupList::Spilled(v) => v,
        }
    }
}

impl FromIterator<GroupIdx> for GroupList {
    fn from_iter<I: IntoIterator<Item = GroupIdx>>(iter: I) -> Self {
        let mut out = GroupList::EMPTY;
        for g in iter {
            match &mut out {
                GroupList::Inline { len, groups } if usize::from(*len) < groups.len() => {
                    groups[usize::from(*len)] = g;
                    *len += 1;
                }
                GroupList::Inline { groups, .. } => {
                    let mut v = groups.to_vec();
                    v.push(g);
                    out = GroupList::Spilled(v);
                }
                GroupList::Spilled(v) => v.push(g),
            }
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Eval {
    /// The rule does not concern this user (yet).
    Not,
    /// The rule would need activity data that is missing or unreliable for this user (the
    /// conditions say which).
    NoData,
    /// Idle on every product, but an API token of the account was used at this instant (seconds):
    /// the account works through the API, so it is not inactive (said as the reason).
    SavedByToken(i64),
    /// Idle on every product seatwarden models, but active on this one it doesn't (Loom, Atlas,
    /// Rovo...) at this instant: activity is activity, and the plan names the product.
    SavedByUnmodelled(ProductKey, i64),
    /// The rule targets the user: past its threshold, or inside the warning window before it.
    Targeted(Trigger),
}

/// The numbers behind a trigger's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Facts {
    /// Last active at `since` (on `product`, or any product: `last_on` names an unmodelled product
    /// when that activity was the latest the rule saw).
    Idle {
        product: Option<Product>,
        since: i64,
        threshold: Duration,
        restored: Option<i64>,
        last_on: Option<ProductKey>,
    },
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
            Facts::Idle { product: None, since, threshold, last_on, .. } => {
                let r = write!(
                    out,
                    "no activity on any product for {} days (threshold {})",
                    days(now - since),
                    threshold.whole_days()
                );
                if let Some(key) = last_on {
                    out.push_str("; last active on ");
                    out.push_str(key.label());
                }
                r
            }
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

/// The latest activity on a product seatwarden does not model, with its key.
fn latest_unmodelled(user: &Account) -> Option<(ProductKey, i64)> {
    user.product_access()
        .filter(|p| p.product.known().is_none())
        .filter_map(|p| Some((p.product, p.last_active?.as_second())))
        .max_by_key(|(_, at)| *at)
}

/// The latest activity on a product seatwarden models.
fn latest_modelled(user: &Account) -> Option<i64> {
    user.product_access()
        .filter(|p| p.product.known().is_some())
        .filter_map(|p| p.last_active)
        .max()
        .map(|t| t.as_second())
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
            Some(_) => {
                Facts::Idle { product: Some(product), since, threshold: pi.inactive_for, restored, last_on: None }
            }
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
            // Saved by token use alone? Then say so: product activity would have targeted them.
            if let Some(token) = user.api_token_last_active.map(|t| t.as_second())
                && last == Some(token)
            {
                let products = user.last_active_any().map(|t| t.as_second());
                let from = products.or_else(|| added_at(user, rec)).map(|s| s.max(restored.unwrap_or(i64::MIN)));
                if from.is_some_and(|f| targeted(f.saturating_add(ai.inactive_for.as_secs()).saturating_add(margin))) {
                    return Eval::SavedByToken(token);
                }
            }
            // Saved by a product seatwarden doesn't model? Then name it: without that activity
            // the rule would have targeted the account.
            if let Some((key, at)) = latest_unmodelled(user)
                && last == Some(at)
            {
                let seen = rec.and_then(UserRecord::last_active_seen).map(|t| t.as_second());
                let other = latest_modelled(user).max(user.api_token_last_active.map(|t| t.as_second())).max(seen);
                let from = other.or_else(|| added_at(user, rec)).map(|s| s.max(restored.unwrap_or(i64::MIN)));
                if from.is_some_and(|f| targeted(f.saturating_add(ai.inactive_for.as_secs()).saturating_add(margin))) {
                    return Eval::SavedByUnmodelled(key, at);
                }
            }
            return Eval::Not;
        }
        let what = match last {
            Some(l) => Facts::Idle {
                product: None,
                since,
                threshold: ai.inactive_for,
                restored,
                last_on: latest_unmodelled(user).filter(|(_, at)| *at == l).map(|(k, _)| k),
            },
            None => Facts::Never { product: None, since, threshold: ai.inactive_for, restored },
        };
        return Eval::Targeted(Trigger {
            threshold_at,
            episode_start,
            inactive_days: days(now - since),
            what,
            product: None,
            groups: GroupList::EMPTY,
        });
    }

    if let Some(na) = &rule.never_active {
        if let Some(last) = last_active_any(user, rec) {
            // Never on a product page but working through an API token: active.
            if user.last_active_any().is_none() && rec.and_then(UserRecord::last_active_seen).is_none() {
                return Eval::SavedByToken(last);
            }
            // Active only on products seatwarden doesn't model: not never active, and said so.
            if latest_modelled(user).is_none()
                && user.api_token_last_active.is_none()
                && rec.and_then(UserRecord::last_active_seen).is_none()
                && let Some((key, at)) = latest_unmodelled(user)
            {
                return Eval::SavedByUnmodelled(key, at);
            }
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
            groups: GroupList::EMPTY,
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
            groups: GroupList::EMPTY,
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
    // Longest first, each once. On the stack: this runs for every targeted account of every rule,
    // and rules have a handful of lead times.
    let mut stack = [Duration::default(); 8];
    let mut heap = Vec::new();
    let leads: &mut [Duration] = if rule.notice_lead_times.len() <= stack.len() {
        let n = rule.notice_lead_times.len();
        stack[..n].copy_from_slice(&rule.notice_lead_times);
        &mut stack[..n]
    } else {
        heap.extend_from_slice(&rule.notice_lead_times);
        &mut heap
    };
    leads.sort_unstable_by(|a, b| b.cmp(a));
    let mut due = trigger.threshold_at;
    let mut delivered = Vec::new();
    let mut previous = None;
    let since = jiff::Timestamp::from_second(trigger.episode_start).unwrap_or(jiff::Timestamp::MIN);
    // A notice counts only for the action (and product) it announced (invariant 4).
    let announced = (rule.action, rule.product_inactivity.as_ref().map(|p| p.product));
    for &mut lead in leads {
        if previous.replace(lead) == Some(lead) {
            continue;
        }
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
        Trigger {
            threshold_at,
            episode_start: 0,
            inactive_days: 0,
            what: Facts::None,
            product: None,
            groups: GroupList::EMPTY,
        }
    }

    #[test]
    fn a_group_list_keeps_every_group_in_order_inline_or_spilled() {
        for n in 0..6u32 {
            let groups: GroupList = (10..10 + n).collect();
            assert_eq!(&*groups, (10..10 + n).collect::<Vec<_>>().as_slice(), "{n} groups");
            assert_eq!(matches!(groups, GroupList::Spilled(_)), n > 3, "{n} groups");
        }
        assert!(GroupList::EMPTY.is_empty());
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

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod plan_tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn account_inactivity_suspends_only_the_inactive_with_a_readable_reason() {
        let fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle()]);
        let plan = fx.plan();
        assert_eq!(acts(&plan, "idle"), vec![pair("alice", "suspend")]);
        let a = &plan.policy("idle").unwrap().actions[0];
        assert_eq!(a.reason, "no activity on any product for 200 days (threshold 90)");
        assert_eq!(a.rule, "idle-90");
        assert_eq!(a.policy, "idle");
        assert!(a.destructive);
        assert_eq!(a.inactive_days, Some(200));
        assert_eq!(a.seats, BTreeMap::from([(Product::JiraSoftware, 1)]));
        assert_eq!(a.directory_id, "dir-1");
        assert_eq!(plan.policy("idle").unwrap().in_scope, 2);
        assert!(plan.policy("idle").unwrap().applies);
    }

    #[test]
    fn product_inactivity_removes_the_products_licensed_groups() {
        let mut alice = idle("alice", 94);
        alice.product_access.push(ProductActivity { product: Product::Confluence.into(), last_active: Some(ago(2)) });
        alice.groups = vec![JIRA_USERS, CONFLUENCE_USERS];
        let fx = Fx::new(vec![alice, idle("bob", 30)], vec![jira_idle()]);
        let plan = fx.plan();
        assert_eq!(acts(&plan, "jira"), vec![pair("alice", "remove-group:g-jira")]);
        let a = &plan.policy("jira").unwrap().actions[0];
        assert_eq!(a.reason, "no Jira activity for 94 days (threshold 60); remove from jira-users");
        assert_eq!(a.seats, BTreeMap::from([(Product::JiraSoftware, 1)]));
        assert_eq!(a.basis.product, Some(Product::JiraSoftware));
    }

    #[test]
    fn a_user_in_several_licensed_groups_leaves_all_and_frees_one_seat() {
        let mut alice = idle("alice", 94);
        alice.groups = vec![JIRA_USERS, JIRA_EXTRA];
        let plan = Fx::new(vec![alice, user("bob")], vec![jira_idle()]).plan();
        assert_eq!(
            acts(&plan, "jira"),
            vec![pair("alice", "remove-group:g-jira"), pair("alice", "remove-group:g-jira-extra")]
        );
        let seats: i32 = plan.policy("jira").unwrap().actions.iter().flat_map(|a| a.seats.values()).sum();
        assert_eq!(seats, 1);
        assert_eq!(plan.totals.seats_freed, BTreeMap::from([(Product::JiraSoftware, 1)]));
    }

    #[test]
    fn a_group_removal_frees_a_seat_only_when_no_kept_group_grants_the_product() {
        let mut fx = Fx::new(vec![], vec![jira_idle()]);
        let mut alice = idle("alice", 94);
        alice.groups = vec![JIRA_USERS, VIPS];
        fx.snapshot = snapshot(vec![alice, user("bob")]);
        fx.mappings.push(mapping("jira-vips", Product::JiraSoftware, &["vips"], None));
        let licensing = savings::Licensing::new(&fx.snapshot, &fx.org.spec, &fx.mappings.iter().collect::<Vec<_>>());
        let alice = fx.snapshot.account("alice").unwrap();
        assert!(savings::seats_for_group_removals(&licensing, alice, &[JIRA_USERS]).is_empty());
        assert_eq!(
            savings::seats_for_group_removals(&licensing, alice, &[JIRA_USERS, VIPS]),
            BTreeMap::from([(Product::JiraSoftware, 1)]),
            "booked on the last group removed"
        );
    }

    #[test]
    fn never_active_targets_old_invitees_only() {
        let mut inv_old = user("inv-old");
        inv_old.status = UserStatus::InvitedNeverActive;
        inv_old.added_to_org = Some(ago(100));
        inv_old.product_access[0].last_active = None;
        let mut inv_new = inv_old.clone();
        inv_new.account_id = "inv-new".into();
        inv_new.added_to_org = Some(ago(40));
        let fx = Fx::new(
            vec![inv_old, inv_new, idle("active-long-ago", 300), user("bob")],
            vec![policy("never", vec![never_rule("never-60", 60, RuleAction::RemoveFromDirectory)])],
        );
        let plan = fx.plan();
        assert_eq!(acts(&plan, "never"), vec![pair("inv-old", "remove-from-directory")]);
        let a = &plan.policy("never").unwrap().actions[0];
        assert!(
            a.reason.starts_with("never active on any product since added 2026-08-17 (100 days; threshold 60)"),
            "{}",
            a.reason
        );
        // Invitees are billed: removing one frees its seat.
        assert_eq!(a.seats, BTreeMap::from([(Product::JiraSoftware, 1)]));
        assert_eq!(a.groups_lost, vec!["g-jira".to_owned()]);
    }

    #[test]
    fn escalation_counts_from_the_suspension_on_record() {
        let mut s_old = user("s-old");
        s_old.status = UserStatus::Suspended;
        let mut s_new = s_old.clone();
        s_new.account_id = "s-new".into();
        let mut s_ext = s_old.clone();
        s_ext.account_id = "s-ext".into();
        s_ext.managed = false;
        let mut s_unknown = s_old.clone();
        s_unknown.account_id = "s-unknown".into();
        let mut fx = Fx::new(
            vec![s_old, s_new, s_ext, s_unknown, user("bob")],
            vec![policy("esc", vec![suspended_rule("deact-30", 30, RuleAction::Deactivate)])],
        );
        for (id, days, by) in [("s-old", 40, true), ("s-new", 10, true), ("s-ext", 40, false)] {
            fx.ledger.users.insert(
                id.into(),
                UserRecord {
                    suspension: Some(Suspension { since: ago(days), by_seatwarden: by, directory_ids: vec![] }),
                    ..Default::default()
                },
            );
        }
        let plan = fx.plan();
        assert_eq!(acts(&plan, "esc"), vec![pair("s-old", "deactivate")]);
        let a = &plan.policy("esc").unwrap().actions[0];
        assert_eq!(a.reason, "suspended by seatwarden 2026-10-16 (40 days ago; threshold 30)");
        // A suspended user is not billed: deactivating frees nothing more.
        assert!(a.seats.is_empty());
        // Deactivation is for managed accounts only.
        assert_eq!(skipped_kinds(&plan, "esc"), vec![("s-ext".into(), SkipKind::NotApplicable)]);
        // A suspension seen for the first time starts the clock now.
        assert!(plan.ledger_updates.contains(&LedgerUpdate::SuspensionSeen {
            account_id: "s-unknown".into(),
            at: now(),
            directory_ids: vec!["dir-1".into()]
        }));
    }

    #[test]
    fn rules_are_evaluated_in_order_and_the_first_claims_the_user() {
        let p = policy(
            "two",
            vec![product_rule("jira-60", Product::JiraSoftware, 60), account_rule("idle-90", 90, RuleAction::Suspend)],
        );
        let plan = Fx::new(vec![idle("alice", 200), user("bob")], vec![p]).plan();
        assert_eq!(acts(&plan, "two"), vec![pair("alice", "remove-group:g-jira")]);
        let held = &plan.policy("two").unwrap().held_back;
        assert_eq!(held.len(), 1);
        assert_eq!(&*held[0].rule, "idle-90");
        assert!(held[0].why.contains("rule jira-60 of this policy comes first"), "{}", held[0].why);
    }

    #[test]
    fn the_activity_lag_margin_is_added_to_every_threshold() {
        let mut inside = user("inside");
        inside.product_access[0].last_active = Some(ago_secs(90 * DAY + 12 * 3600)); // 90.5 days
        let mut past = user("past");
        past.product_access[0].last_active = Some(ago_secs(91 * DAY + 1));
        let plan = Fx::new(vec![inside, past, user("bob")], vec![suspend_idle()]).plan();
        assert_eq!(acts(&plan, "idle"), vec![pair("past", "suspend")]);
    }

    #[test]
    fn a_user_past_the_threshold_without_notice_is_warned_now_and_not_acted_on() {
        let plan = Fx::new(vec![idle("alice", 200), user("bob")], vec![warn_policy()]).plan();
        let p = plan.policy("warn").unwrap();
        assert!(p.actions.is_empty());
        assert_eq!(p.notices.len(), 1);
        let n = &p.notices[0];
        assert_eq!(n.account_id, "alice");
        assert_eq!(n.lead_time, Duration::from_days(14));
        assert_eq!(n.action_due, ago(-14));
        assert_eq!(n.action, ActionKind::Suspend);
        assert_eq!(
            n.reason,
            "no activity on any product for 200 days (threshold 90); will suspend on or after 2026-12-09 unless active again"
        );
    }

    #[test]
    fn after_a_delivered_notice_and_the_lead_time_the_action_follows_citing_the_notice() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![warn_policy()]);
        let first = fx.plan();
        // The executor records the notice as delivered.
        fx.ledger.record_notice_delivered(&first.policy("warn").unwrap().notices[0], now());
        // Ten days later: waiting out the lead time.
        fx.now = ago(-10);
        let p = fx.plan();
        assert!(p.policy("warn").unwrap().actions.is_empty());
        assert!(p.policy("warn").unwrap().notices.is_empty());
        assert_eq!(p.policy("warn").unwrap().totals.waiting, 1);
        fx.now = ago(-14);
        let p = fx.plan();
        assert_eq!(acts(&p, "warn"), vec![pair("alice", "suspend")]);
        assert_eq!(
            p.policy("warn").unwrap().actions[0].reason,
            "no activity on any product for 214 days (threshold 90); notice sent 2026-11-25"
        );
    }

    #[test]
    fn a_notice_that_was_not_delivered_does_not_count() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![warn_policy()]);
        let _planned_but_not_delivered = fx.plan();
        fx.now = ago(-30);
        let p = fx.plan();
        assert!(p.policy("warn").unwrap().actions.is_empty());
        assert_eq!(p.policy("warn").unwrap().notices.len(), 1);
    }

    #[test]
    fn activity_after_a_notice_makes_it_stale() {
        let mut fx = Fx::new(vec![idle("alice", 100), user("bob")], vec![warn_policy()]);
        fx.ledger.users.insert("alice".into(), warned(150));
        let p = fx.plan();
        assert!(p.policy("warn").unwrap().actions.is_empty());
        assert_eq!(p.policy("warn").unwrap().notices.len(), 1);
        assert!(
            p.ledger_updates
                .iter()
                .any(|u| matches!(u, LedgerUpdate::NoticesStale { account_id, .. } if account_id == "alice"))
        );
    }
}
