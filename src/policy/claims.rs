//! Claims and caps: for one policy, every account's rules in order, into claims (the first rule
//! that targets an account claims it: notice, wait or action), and the winning claims into actions
//! and notices under the policy's caps (maxActionsPerRun, the organization's daily cap; longest
//! inactive first). Account rules judge the account across all its directories; the writes a
//! claim makes name their directory (suspend and remove per directory, deactivate once).

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;

use crate::crd::{LifecyclePolicy, NO_NOTICE_DELIVERY, NoticeDelivery, PolicyMode, Reactivation, RuleAction};
use crate::ledger::LedgerUpdate;
use crate::product::Product;
use crate::snapshot::{Account, GroupIdx, ManagementSource, Membership, UserStatus};

use super::context::{Ctx, Draft, basis, count, directory_id, group_id, home_directory, name_of, skip};
use super::eligibility::{CompiledScope, ResolvedGroups, is_human};
use super::reactivation;
use super::render::{self, date, notices_clause};
use super::resolve::{self, Claim, action_words};
use super::safety;
use super::savings;
use super::triggers::{self, Eval, Schedule, Trigger};
use super::types::*;

/// Every policy, every user: guards, reactivation, scope, rules. Produces each policy's claims,
/// not yet actions.
///
/// Account-major: each account is judged by every policy in turn, so its directories, groups and
/// product activity are read from memory once per plan rather than once per policy (with a million
/// accounts, fetching them is most of the cost of judging them).
pub(super) fn evaluate_policies<'a>(ctx: &Ctx<'a>, policies: &[&'a LifecyclePolicy]) -> Vec<Draft<'a>> {
    let mut evals: Vec<PolicyEval<'a>> = Vec::with_capacity(policies.len());
    let mut drafts: Vec<Option<Draft<'a>>> = Vec::with_capacity(policies.len());
    for p in policies {
        if p.spec.mode == PolicyMode::Paused {
            let mut d = empty_draft(p);
            d.conditions.push(PlanCondition {
                reason: "Paused".into(),
                message: "the policy is paused: nothing is evaluated".into(),
            });
            drafts.push(Some(d));
        } else {
            evals.push(PolicyEval::new(ctx, p));
            drafts.push(None);
        }
    }
    for (i, user) in ctx.snapshot.accounts.iter().enumerate() {
        for e in &mut evals {
            e.account(ctx, i, user);
        }
    }
    let mut finished = evals.into_iter().map(|e| e.finish(ctx));
    drafts
        .into_iter()
        .map(|d| d.unwrap_or_else(|| finished.next().expect("one evaluation per unpaused policy")))
        .collect()
}

/// A policy's draft before anything is decided.
fn empty_draft(policy: &LifecyclePolicy) -> Draft<'_> {
    let spec = &policy.spec;
    Draft {
        policy,
        name: name_of(policy).into(),
        rule_names: spec.rules.iter().map(|r| r.name.as_str().into()).collect(),
        mode: spec.mode,
        in_scope: 0,
        claims: Vec::new(),
        held_back: Vec::new(),
        restorations: Vec::new(),
        restored: Vec::new(),
        skipped: Vec::new(),
        skipped_counts: BTreeMap::new(),
        idp: Vec::new(),
        conditions: Vec::new(),
        halt: None,
        ledger_updates: Vec::new(),
    }
}

/// One policy's evaluation in progress: what it compiled once (scope, opt-in groups, words) and
/// its draft.
struct PolicyEval<'a> {
    policy: &'a LifecyclePolicy,
    name: String,
    namespace: Option<&'a str>,
    scope: CompiledScope,
    opt_in: ResolvedGroups,
    /// What a later rule's hold-back says, per rule that claimed first: formatted once per policy,
    /// not once per account.
    comes_first: Vec<std::sync::Arc<str>>,
    named: HashSet<&'a str>,
    grace: i64,
    notices_undeliverable: bool,
    reactivation: Option<&'a Reactivation>,
    d: Draft<'a>,
}

impl<'a> PolicyEval<'a> {
    /// The policy compiled (not paused: a paused policy evaluates nothing).
    fn new(ctx: &Ctx<'a>, policy: &'a LifecyclePolicy) -> Self {
        let spec = &policy.spec;
        let name = name_of(policy);
        let namespace = policy.metadata.namespace.as_deref();
        let mut d = empty_draft(policy);
        if ctx.incomplete {
            d.conditions.push(PlanCondition {
                reason: "IncompleteListing".into(),
                message: "the listing is incomplete: nothing destructive is planned and no notice sent".into(),
            });
        }
        let scope = CompiledScope::new(ctx.snapshot, &spec.scope);
        let comes_first: Vec<std::sync::Arc<str>> = spec
            .rules
            .iter()
            .map(|r| format!("rule {} of this policy comes first (rules are evaluated in order)", r.name).into())
            .collect();
        policy_conditions(ctx, policy, &scope, &mut d);
        // Invariant 4: a notice nobody can receive counts for nothing, so rules that need notices act
        // on no one until the organization has a way to deliver them.
        let notices_undeliverable = ctx.notice_delivery == NoticeDelivery::Unavailable;
        if notices_undeliverable {
            for rule in spec.rules.iter().filter(|r| !r.notice_lead_times.is_empty()) {
                d.conditions.push(PlanCondition {
                    reason: "NoticeDeliveryUnavailable".into(),
                    message: format!("rule {} acts on no one: {NO_NOTICE_DELIVERY}", rule.name),
                });
            }
        }
        let default_reactivation = Reactivation::default();
        let reactivation = spec.reactivation.as_ref();
        let opt_in =
            ResolvedGroups::resolve(ctx.snapshot, &reactivation.unwrap_or(&default_reactivation).opt_in_groups);
        for g in &opt_in.unresolved {
            d.conditions.push(PlanCondition {
                reason: "UnresolvedGroup".into(),
                message: format!("reactivation.optInGroups names group {g}, which is not in the organization"),
            });
        }
        let named: HashSet<&str> =
            reactivation.map(|r| r.account_ids.iter().map(String::as_str).collect()).unwrap_or_default();
        let grace = spec.new_account_grace_period.as_secs().max(0);
        PolicyEval {
            policy,
            name,
            namespace,
            scope,
            opt_in,
            comes_first,
            named,
            grace,
            notices_undeliverable,
            reactivation,
            d,
        }
    }

    /// One account, judged by this policy.
    fn account(&mut self, ctx: &Ctx<'a>, i: usize, user: &Account) {
        let policy: &'a LifecyclePolicy = self.policy;
        let spec = &policy.spec;
        let (grace, notices_undeliverable, reactivation, namespace) =
            (self.grace, self.notices_undeliverable, self.reactivation, self.namespace);
        let now = ctx.now;
        let PolicyEval { name, scope, opt_in, comes_first, named, d, .. } = self;
        let name: &str = name;
        let ui = i as u32;
        if !is_human(user) {
            if scope.matches(user) {
                count(
                    d,
                    match user.account_type {
                        crate::snapshot::AccountType::App => SkipKind::AppAccount,
                        crate::snapshot::AccountType::Customer => SkipKind::CustomerAccount,
                        _ => SkipKind::UnknownAccountType,
                    },
                );
            }
            return;
        }
        let rec = ctx.recs[i];
        let guard = ctx.guard(ui, name, namespace);

        // Reactivation of what this policy took comes first and ignores the scope: the scope may
        // well have depended on the very groups that were removed.
        if let (Some(r), Some(rec)) = (reactivation, rec)
            && let Some((actions, idp)) = reactivation::plan_reactivation(ctx, name, r, opt_in, user, rec)
        {
            match &guard {
                Some((kind, why)) => {
                    count(d, *kind);
                    skip(d, user, *kind, Some("reactivation"), why.clone());
                }
                None => {
                    d.restorations.extend(actions);
                    d.idp.extend(idp);
                    d.restored.push(ui);
                }
            }
            return;
        }

        if !scope.matches(user) {
            return;
        }
        d.in_scope += 1;
        if let Some((kind, _)) = &guard {
            count(d, *kind);
        }
        let added = triggers::added_at(user, rec).unwrap_or(now);
        let in_grace = now < added.saturating_add(grace);
        if guard.is_none() && in_grace {
            count(d, SkipKind::GracePeriod);
        }
        // Asked only of the accounts a rule targets: most accounts aren't, and it reads their groups.
        let opted_in = || {
            named
                .contains(user.account_id.as_str())
                .then(|| "named for restoration by an admin: not taken out while named".to_owned())
                .or_else(|| {
                    opt_in.any_member(user).map(|g| {
                        format!("member of opt-in group {}: asked to keep access", ctx.snapshot.groups[g as usize].name)
                    })
                })
        };

        let mut claimed: Option<usize> = None;
        let mut no_data_counted = false;
        for (ri, rule) in spec.rules.iter().enumerate() {
            let eval = triggers::evaluate(rule, spec.activity_lag_margin, user, rec, &ctx.health, &ctx.licensing, now);
            let trigger = match eval {
                Eval::Not => continue,
                Eval::NoData => {
                    if claimed.is_none() && !no_data_counted {
                        no_data_counted = true;
                        count(d, SkipKind::NoActivityData);
                    }
                    continue;
                }
                Eval::SavedByToken(at) => {
                    if claimed.is_none() && guard.is_none() {
                        count(d, SkipKind::ApiTokenActive);
                        let why = format!(
                            "no product activity past the threshold, but an API token of the account was used {}: \
                             working through the API is activity",
                            date(at)
                        );
                        skip(d, user, SkipKind::ApiTokenActive, Some(&rule.name), why);
                    }
                    continue;
                }
                Eval::SavedByUnmodelled(key, at) => {
                    if claimed.is_none() && guard.is_none() {
                        count(d, SkipKind::UnmodelledProductActive);
                        let why = format!(
                            "no activity past the threshold on the products seatwarden models, but active on {} {}: \
                             activity on any product counts",
                            key.label(),
                            date(at)
                        );
                        skip(d, user, SkipKind::UnmodelledProductActive, Some(&rule.name), why);
                    }
                    continue;
                }
                Eval::Targeted(t) => t,
            };
            if let Some(first) = &claimed {
                // Later rules that would act now are held back, not lost: they return next run.
                if guard.is_none()
                    && let Schedule::Act { .. } = triggers::schedule(name, rule, rec, &trigger, now)
                {
                    d.held_back.push(HeldBack {
                        account_id: user.account_id.clone(),
                        email: user.email.clone(),
                        policy: d.name.clone(),
                        rule: d.rule_names[ri].clone(),
                        kind: rule_kind(ctx, rule.action, &trigger),
                        why: comes_first[*first].clone(),
                    });
                }
                continue;
            }
            if let Some(rec) = rec
                && rec.notices.iter().any(|n| {
                    n.policy == name && n.rule == rule.name && n.delivered_at.as_second() < trigger.episode_start
                })
            {
                d.ledger_updates.push(LedgerUpdate::NoticesStale {
                    account_id: user.account_id.clone(),
                    policy: name.to_owned(),
                    rule: rule.name.clone(),
                    before: Timestamp::from_second(trigger.episode_start).unwrap_or(Timestamp::MIN),
                });
            }
            if let Some((kind, why)) = &guard {
                skip(d, user, *kind, Some(&rule.name), why.clone());
                break;
            }
            if let Some(why) = opted_in() {
                count(d, SkipKind::OptedIn);
                skip(d, user, SkipKind::OptedIn, Some(&rule.name), why);
                break;
            }
            if in_grace {
                let why = format!(
                    "added {}: inside the new-account grace period ({}) until {}",
                    date(added),
                    spec.new_account_grace_period,
                    date(added.saturating_add(grace))
                );
                skip(d, user, SkipKind::GracePeriod, Some(&rule.name), why);
                break;
            }
            if ctx.incomplete {
                break;
            }
            // Someone who can't be warned can't be acted on by a rule that promises a warning.
            if !rule.notice_lead_times.is_empty() && user.email.as_deref().is_none_or(|e| e.trim().is_empty()) {
                count(d, SkipKind::NoEmail);
                skip(
                    d,
                    user,
                    SkipKind::NoEmail,
                    Some(&rule.name),
                    format!("no email address: rule {} warns before it acts, and this user can't be warned", rule.name),
                );
                break;
            }
            if let Some(why) = triggers::not_applicable(rule, user) {
                count(d, SkipKind::NotApplicable);
                skip(d, user, SkipKind::NotApplicable, Some(&rule.name), why);
                continue;
            }
            // Synced from an identity provider: the next sync would revert our change (invariant 7).
            let synced_groups: Vec<GroupIdx> =
                trigger.groups.iter().copied().filter(|g| ctx.snapshot.groups[*g as usize].read_only()).collect();
            let user_synced =
                rule.action != RuleAction::RemoveLicensedGroups && user.management_source == ManagementSource::Synced;
            if user_synced || !synced_groups.is_empty() {
                count(d, SkipKind::IdpSynced);
                if now >= trigger.threshold_at {
                    if user_synced {
                        d.idp.push(IdpAction {
                            account_id: user.account_id.clone(),
                            email: user.email.clone(),
                            kind: rule_kind(ctx, rule.action, &trigger),
                            rule: rule.name.clone(),
                            group_name: None,
                            reason: format!(
                                "{}; the account is synced from the identity provider: {} it there",
                                trigger.facts(now),
                                action_words(rule.action)
                            ),
                        });
                    } else {
                        for g in &synced_groups {
                            let group = &ctx.snapshot.groups[*g as usize];
                            d.idp.push(IdpAction {
                                account_id: user.account_id.clone(),
                                email: user.email.clone(),
                                kind: ActionKind::RemoveGroup { group_id: group.id.clone() },
                                rule: rule.name.clone(),
                                group_name: Some(group.name.clone()),
                                reason: format!(
                                    "{}; group {} is synced from the identity provider: remove the user there",
                                    trigger.facts(now),
                                    group.name
                                ),
                            });
                        }
                    }
                }
                continue;
            }
            if notices_undeliverable && !rule.notice_lead_times.is_empty() {
                continue;
            }
            // A group no mapping names still grants the product: the removal would free nothing.
            if rule.action == RuleAction::RemoveLicensedGroups
                && !spec.remove_when_no_seat_freed
                && let Some(product) = trigger.product
            {
                let mut still: Vec<&str> = user
                    .groups()
                    .filter(|g| !trigger.groups.contains(g) && ctx.licensing.grants(*g).contains(&product))
                    .map(|g| ctx.snapshot.groups[g as usize].name.as_str())
                    .collect();
                still.sort_unstable();
                still.dedup();
                if !still.is_empty() {
                    count(d, SkipKind::StillGranted);
                    let why = format!(
                        "{}; but group(s) {} still grant {}, and no GroupLicenseMapping names them: removing the mapped \
                         groups would free no seat. Add them to a GroupLicenseMapping of {product}, or set \
                         spec.removeWhenNoSeatFreed to remove anyway",
                        trigger.facts(now),
                        still.join(", "),
                        product.display_name()
                    );
                    skip(d, user, SkipKind::StillGranted, Some(&rule.name), why);
                    continue;
                }
            }
            let schedule = triggers::schedule(name, rule, rec, &trigger, now);
            d.claims.push(Claim { user: ui, rule_idx: ri as u32, action: rule.action, trigger, schedule });
            claimed = Some(ri);
        }
    }

    /// The policy's draft, once every account has been judged.
    fn finish(self, ctx: &Ctx<'a>) -> Draft<'a> {
        let PolicyEval { name, namespace, reactivation, mut d, .. } = self;
        if let Some(r) = reactivation {
            reactivation::plan_reinvitations(ctx, &name, namespace, r, &mut d);
        }
        if let Some(n) = d.skipped_counts.get(&SkipKind::NoEmail).copied().filter(|n| *n > 0) {
            d.conditions.push(PlanCondition {
                reason: "UsersWithoutEmail".into(),
                message: format!(
                    "{n} user(s) have no email address and can't be warned: rules with notice lead times don't act on them"
                ),
            });
        }
        d
    }
}

/// The ActionKind a rule's decision leads to (the first group, for group removals).
pub(super) fn rule_kind(ctx: &Ctx<'_>, action: RuleAction, trigger: &Trigger) -> ActionKind {
    match action {
        RuleAction::RemoveLicensedGroups => {
            ActionKind::RemoveGroup { group_id: trigger.groups.first().map(|g| group_id(ctx, *g)).unwrap_or_default() }
        }
        RuleAction::Suspend => ActionKind::Suspend,
        RuleAction::Deactivate => ActionKind::Deactivate,
        RuleAction::RemoveFromDirectory => ActionKind::RemoveFromDirectory,
    }
}

/// Turns a policy's winning claims into actions and notices, under its caps.
pub(super) fn materialize(
    ctx: &Ctx<'_>,
    d: Draft<'_>,
    losses: Vec<Option<resolve::Loss>>,
    restored_by: &HashMap<u32, String>,
    daily: &mut Option<u32>,
    busy: &mut [bool],
) -> PolicyPlan {
    let spec = &d.policy.spec;
    let applies_mode = spec.mode == PolicyMode::Enforce;
    let halted = d.halt.is_some();
    let mut held_back = d.held_back;
    // The winning claims. What a notice names of its account (id, email) is copied beside them
    // here, in account order, and moved out below in the caps' order: copied in that order, each
    // copy would be a cache miss into the heap of a million accounts.
    let mut winners: Vec<&Claim> = Vec::new();
    let mut heads: Vec<Option<(String, Option<String>)>> = Vec::new();
    for (claim, loss) in d.claims.iter().zip(losses) {
        let user = &ctx.snapshot.accounts[claim.user as usize];
        let restored = if restored_by.is_empty() { None } else { restored_by.get(&claim.user) };
        let lost_why: Option<std::sync::Arc<str>> = match (loss, restored) {
            (_, Some(p)) => Some(format!("being restored by policy {p} this run").into()),
            (Some(l), None) => Some(l.why),
            (None, None) => None,
        };
        match lost_why {
            Some(why) if !halted => {
                if claim.touches() {
                    held_back.push(HeldBack {
                        account_id: user.account_id.clone(),
                        email: user.email.clone(),
                        policy: d.name.clone(),
                        rule: d.rule_names[claim.rule_idx as usize].clone(),
                        kind: rule_kind(ctx, claim.action, &claim.trigger),
                        why,
                    });
                }
            }
            _ => {
                let notify = matches!(claim.schedule, Schedule::Notify { .. });
                heads.push(notify.then(|| (user.account_id.clone(), user.email.clone())));
                winners.push(claim);
            }
        }
    }
    // Longest-inactive first; ties by account id, so the order is deterministic. (Users are
    // sorted by account id, so their index orders them the same way, without comparing strings.)
    // Sorted as compact keys: comparing through the claims costs a cache miss per comparison.
    let mut order: Vec<(std::cmp::Reverse<i64>, u32, u32)> = winners
        .iter()
        .enumerate()
        .map(|(w, c)| (std::cmp::Reverse(c.trigger.inactive_days), c.user, w as u32))
        .collect();
    order.sort_unstable();
    let per_run = spec.caps.max_actions_per_run.max(0) as u32;
    let budget = if halted { u32::MAX } else { safety::run_budget(spec.caps.max_actions_per_run, *daily) };
    let mut used = 0u32;
    let mut actions = Vec::new();
    let mut notices = Vec::with_capacity(heads.iter().filter(|h| h.is_some()).count());
    let mut deferred = Vec::new();
    let mut scratch = String::with_capacity(256);
    for (_, _, w) in order {
        let (claim, head) = (winners[w as usize], heads[w as usize].take());
        let user = &ctx.snapshot.accounts[claim.user as usize];
        busy[claim.user as usize] = true;
        match &claim.schedule {
            Schedule::Act { notices: sent } => {
                let acts = claim_actions(ctx, &d.name, &d.rule_names[claim.rule_idx as usize], claim, user, sent);
                if used < budget {
                    used += 1;
                    actions.extend(acts);
                } else {
                    let why = if used >= per_run {
                        format!("maxActionsPerRun {per_run} reached: the {per_run} longest-inactive users go first")
                    } else {
                        format!("the organization's daily cap is reached ({used} action(s) left for today were used)")
                    };
                    deferred.extend(acts.into_iter().map(|a| DeferredAction { action: a, why: why.clone() }));
                }
            }
            Schedule::Notify { lead, due, replaces } => {
                let kind = rule_kind(ctx, claim.action, &claim.trigger);
                // Words into one reused buffer, then an exact-size copy: 200 reserved bytes per notice
                // were most of a large plan's memory.
                let reason = &mut scratch;
                reason.clear();
                claim.trigger.write_facts(ctx.now, reason);
                reason.push_str("; will ");
                match claim.trigger.product {
                    Some(p) if claim.action == RuleAction::RemoveLicensedGroups => {
                        reason.push_str("remove ");
                        reason.push_str(p.display_name());
                        reason.push_str(" access");
                    }
                    _ => reason.push_str(action_words(claim.action)),
                }
                reason.push_str(" on or after ");
                render::write_date(reason, *due);
                reason.push_str(" unless active again");
                if let Some((at, action, product)) = replaces {
                    reason.push_str("; a new notice cycle: the notice of ");
                    render::write_date(reason, *at);
                    reason.push_str(" announced ");
                    reason.push_str(action.map_or("an action not on record", action_words));
                    if let Some(p) = product {
                        reason.push_str(" of ");
                        reason.push_str(p.display_name());
                    }
                    reason.push_str(", which this rule no longer does");
                }
                let (account_id, email) = head.unwrap_or_else(|| (user.account_id.clone(), user.email.clone()));
                notices.push(PlannedNotice {
                    account_id,
                    email,
                    policy: d.name.clone(),
                    rule: d.rule_names[claim.rule_idx as usize].clone(),
                    lead_time: *lead,
                    action_due: Timestamp::from_second(*due).unwrap_or(Timestamp::MAX),
                    action: kind,
                    product: claim.trigger.product.filter(|_| claim.action == RuleAction::RemoveLicensedGroups),
                    reason: reason.as_str().to_owned(),
                });
            }
            Schedule::Wait { .. } => {}
        }
    }
    if !halted
        && applies_mode
        && let Some(left) = daily.as_mut()
    {
        *left = left.saturating_sub(used);
    }
    let mut all = actions;
    all.extend(d.restorations);
    let waiting = d.claims.iter().filter(|c| matches!(c.schedule, Schedule::Wait { .. })).count() as u32;
    let totals = Totals { waiting, ..Totals::default() };
    PolicyPlan {
        policy: d.name.to_string(),
        mode: d.mode,
        applies: spec.mode == PolicyMode::Enforce && !halted && !ctx.incomplete,
        in_scope: d.in_scope,
        actions: all,
        notices: if ctx.incomplete { vec![] } else { notices },
        deferred,
        held_back,
        skipped: d.skipped,
        skipped_counts: d.skipped_counts,
        halt: d.halt,
        conditions: d.conditions,
        idp_actions: d.idp,
        totals,
    }
}

/// The writes one winning claim makes.
pub(super) fn claim_actions(
    ctx: &Ctx<'_>,
    policy: &str,
    rule: &str,
    claim: &Claim,
    user: &Account,
    sent: &[(crate::crd::Duration, i64)],
) -> Vec<PlannedAction> {
    let reason_base = format!("{}{}", claim.trigger.facts(ctx.now), notices_clause(sent));
    let make = |kind: ActionKind,
                directory: u16,
                status: UserStatus,
                seats: BTreeMap<Product, i32>,
                reason: String,
                groups_lost: Vec<String>| PlannedAction {
        account_id: user.account_id.clone(),
        email: user.email.clone(),
        directory_id: directory_id(ctx, directory),
        kind,
        policy: policy.to_owned(),
        rule: rule.to_owned(),
        reason,
        seats,
        destructive: true,
        inactive_days: Some(claim.trigger.inactive_days),
        groups_lost,
        basis: basis(user, status, claim.trigger.product),
    };
    // One write per directory, the account's seats booked once (on the first write holding each).
    let per_directory = |kind: ActionKind, memberships: Vec<&Membership>, lost: bool| -> Vec<PlannedAction> {
        let mut seats = savings::seats_for_account_action(user);
        memberships
            .into_iter()
            .map(|m| {
                let here: BTreeMap<Product, i32> = m
                    .product_access
                    .iter()
                    .filter_map(|p| p.product.known())
                    .filter_map(|p| seats.remove(&p).map(|n| (p, n)))
                    .collect();
                let groups_lost = if lost { m.groups.iter().map(|g| group_id(ctx, *g)).collect() } else { vec![] };
                make(kind.clone(), m.directory, m.status, here, reason_base.clone(), groups_lost)
            })
            .collect()
    };
    match claim.action {
        RuleAction::RemoveLicensedGroups => {
            let mut groups = claim.trigger.groups.to_vec();
            groups.sort_unstable();
            let freed = savings::seats_for_group_removals(&ctx.licensing, user, &groups);
            groups
                .iter()
                .enumerate()
                .map(|(pos, g)| {
                    let seats: BTreeMap<Product, i32> =
                        freed.iter().filter(|(_, p)| **p == pos).map(|(prod, _)| (*prod, 1)).collect();
                    let group = &ctx.snapshot.groups[*g as usize];
                    let mut reason = format!("{reason_base}; remove from {}", group.name);
                    if seats.is_empty() && pos + 1 == groups.len() && freed.is_empty() {
                        reason.push_str(" (another group still grants the product: no seat freed)");
                    }
                    let status = user.membership(group.directory).map_or(user.status(), |m| m.status);
                    make(
                        ActionKind::RemoveGroup { group_id: group.id.clone() },
                        group.directory,
                        status,
                        seats,
                        reason,
                        vec![],
                    )
                })
                .collect()
        }
        // Suspension is per directory: every directory where the account is live.
        RuleAction::Suspend => {
            per_directory(ActionKind::Suspend, user.memberships.iter().filter(|m| m.is_live()).collect(), false)
        }
        // Deactivation is account-wide: once per account, whatever the number of directories.
        RuleAction::Deactivate => vec![make(
            ActionKind::Deactivate,
            home_directory(user),
            user.status(),
            savings::seats_for_account_action(user),
            reason_base.clone(),
            vec![],
        )],
        RuleAction::RemoveFromDirectory => {
            per_directory(ActionKind::RemoveFromDirectory, user.memberships.iter().collect(), true)
        }
    }
}

/// What a policy says about itself before looking at anyone: guards naming groups that are not in the
/// organization halt it (they could not keep anyone out), includes that match no one and rules the
/// activity data switched off are conditions.
pub(super) fn policy_conditions(ctx: &Ctx<'_>, policy: &LifecyclePolicy, scope: &CompiledScope, d: &mut Draft<'_>) {
    let spec = &policy.spec;
    let name = d.name.clone();
    let namespace = policy.metadata.namespace.as_deref();
    // An exclusion or a protection that names an unknown group can't protect anyone: halt rather
    // than act on the people it was meant to keep out.
    let mut unresolved_guards: Vec<String> =
        scope.exclude_groups.unresolved.iter().map(|g| format!("scope.excludeGroups {g}")).collect();
    for p in ctx.protections.active.iter().filter(|p| p.applies_to(&name, namespace)) {
        unresolved_guards.extend(p.groups.unresolved.iter().map(|g| format!("ProtectedUser {} group {g}", p.name)));
    }
    if !unresolved_guards.is_empty() {
        d.halt = Some(Halt {
            reason: "UnresolvedGroup".into(),
            message: format!(
                "{} not in the organization: the people they should keep out can't be recognized, so nothing is applied",
                unresolved_guards.join(", ")
            ),
        });
    }
    for g in scope.unresolved_includes() {
        d.conditions.push(PlanCondition {
            reason: "UnresolvedGroup".into(),
            message: format!(
                "scope.includeGroups names group {g}, which is not in the organization: it matches no one"
            ),
        });
    }
    if let crate::snapshot::ApiTokenActivity::Refused { reason } = &ctx.snapshot.api_tokens
        && spec.rules.iter().any(|r| r.account_inactivity.is_some() || r.never_active.is_some())
    {
        d.conditions.push(PlanCondition {
            reason: "ApiTokenActivityUnknown".into(),
            message: format!(
                "{reason}; account rules judge product activity only, so accounts that work through the API alone may look idle"
            ),
        });
    }
    // What the data guard switched off, said on the policy too (its status conditions).
    for rule in &spec.rules {
        if let Some(pi) = &rule.product_inactivity
            && let Some(why) = ctx.health.product_off(pi.product)
        {
            d.conditions.push(PlanCondition {
                reason: "RuleSwitchedOff".into(),
                message: format!("rule {} acts on no one: {why}", rule.name),
            });
        } else if rule.account_inactivity.is_some() || rule.never_active.is_some() {
            if let Some(why) = ctx.health.any_off() {
                d.conditions.push(PlanCondition {
                    reason: "RuleSwitchedOff".into(),
                    message: format!("rule {} acts on no one: {why}", rule.name),
                });
            } else {
                let products: Vec<String> = ctx.health.off_products().map(|p| p.to_string()).collect();
                if !products.is_empty() {
                    d.conditions.push(PlanCondition {
                        reason: "RuleLimited".into(),
                        message: format!(
                            "rule {} skips users with {} access: that activity data is missing or unreliable",
                            rule.name,
                            products.join(", ")
                        ),
                    });
                }
            }
        }
    }
}

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn max_actions_per_run_acts_on_the_longest_inactive_and_defers_the_rest() {
        let users: Vec<DirectoryUser> = [150, 300, 100, 250, 200].iter().map(|d| idle(&format!("u{d}"), *d)).collect();
        let mut fx = Fx::new(users, vec![suspend_idle()]);
        fx.policies[0].spec.caps.max_actions_per_run = 2;
        let plan = fx.plan();
        assert_eq!(acts(&plan, "idle"), vec![pair("u300", "suspend"), pair("u250", "suspend")]);
        let p = plan.policy("idle").unwrap();
        let deferred: Vec<&str> = p.deferred.iter().map(|d| d.action.account_id.as_str()).collect();
        assert_eq!(deferred, vec!["u200", "u150", "u100"]);
        assert!(p.deferred[0].why.contains("maxActionsPerRun 2"));
        assert_eq!(p.totals.deferred, 3);
        assert_eq!(p.totals.seats_freed.get(&Product::JiraSoftware), Some(&2));
    }

    #[test]
    fn max_action_percent_halts_the_run_entirely() {
        let mut users: Vec<DirectoryUser> = (0..3).map(|i| idle(&format!("idle{i}"), 200)).collect();
        users.extend((0..7).map(|i| user(&format!("ok{i}"))));
        let mut fx = Fx::new(users, vec![suspend_idle()]);
        fx.policies[0].spec.caps.max_action_percent = 20;
        let plan = fx.plan();
        let p = plan.policy("idle").unwrap();
        let halt = p.halt.as_ref().expect("halted");
        assert_eq!(halt.reason, "MaxActionPercentExceeded");
        assert!(halt.message.contains("3 of 10 in-scope users (30.0%)"), "{}", halt.message);
        assert!(!p.applies);
        assert!(p.actions_to_apply().is_empty());
        assert!(p.notices_to_send().is_empty());
        // At exactly the limit it runs.
        fx.policies[0].spec.caps.max_action_percent = 30;
        assert!(fx.plan().policy("idle").unwrap().halt.is_none());
    }

    #[test]
    fn the_daily_cap_bounds_all_policies_together_in_name_order() {
        let users: Vec<DirectoryUser> = (0..6).map(|i| idle(&format!("u{i}"), 200 + i)).collect();
        let mut fx = Fx::new(
            users,
            vec![
                policy("b-suspend", vec![account_rule("idle", 90, RuleAction::Suspend)]),
                policy("a-jira", vec![product_rule("jira", Product::JiraSoftware, 60)]),
            ],
        );
        fx.daily = Some(4);
        fx.policies[1].spec.caps.max_actions_per_run = 3;
        let plan = fx.plan();
        // a-jira wins every user (gentler), 3 by its own cap; b-suspend's claims are held back.
        assert_eq!(plan.policy("a-jira").unwrap().actions.len(), 3);
        assert_eq!(plan.policy("a-jira").unwrap().deferred.len(), 3);
        assert_eq!(plan.daily_cap_remaining, Some(1));
        fx.daily = Some(2);
        let plan = fx.plan();
        assert_eq!(plan.policy("a-jira").unwrap().actions.len(), 2);
        assert!(plan.policy("a-jira").unwrap().deferred[0].why.contains("daily cap"));
        assert_eq!(plan.daily_cap_remaining, Some(0));
    }

    #[test]
    fn daily_remaining_reads_the_organization_status_for_today_only() {
        let mut o = org();
        assert_eq!(daily_remaining(&o, now()), None);
        o.spec.max_actions_per_day = Some(100);
        assert_eq!(daily_remaining(&o, now()), Some(100));
        o.status = Some(AtlassianOrganizationStatus {
            actions_today: Some(DailyActions { day: "2026-11-25".into(), count: 30 }),
            ..Default::default()
        });
        assert_eq!(daily_remaining(&o, now()), Some(70));
        o.status.as_mut().unwrap().actions_today.as_mut().unwrap().day = "2026-11-24".into();
        assert_eq!(daily_remaining(&o, now()), Some(100));
    }

    #[test]
    fn idp_synced_users_and_groups_are_reported_not_modified() {
        let mut synced = idle("synced", 200);
        synced.management_source = ManagementSource::Synced;
        let mut in_idp_group = idle("in-idp-group", 200);
        in_idp_group.groups = vec![IDP_JIRA];
        let fx = Fx::new(vec![synced, in_idp_group, user("bob")], vec![suspend_idle(), jira_idle()]);
        let plan = fx.plan();
        // jira: the synced *user* in jira-users can lose the group (groups aren't synced); the user in
        // the synced group is reported.
        assert_eq!(acts(&plan, "jira"), vec![pair("synced", "remove-group:g-jira")]);
        let idp = &plan.policy("jira").unwrap().idp_actions;
        assert_eq!(idp.len(), 1);
        assert_eq!(idp[0].account_id, "in-idp-group");
        assert_eq!(idp[0].group_name.as_deref(), Some("idp-jira-users"));
        // idle: the synced user is reported, not suspended; the other one is held for the gentler jira rule
        // (which can't act on it) — so it's suspended here.
        let idle_plan = plan.policy("idle").unwrap();
        assert_eq!(acts(&plan, "idle"), vec![pair("in-idp-group", "suspend")]);
        assert_eq!(idle_plan.idp_actions.len(), 1);
        assert_eq!(idle_plan.idp_actions[0].account_id, "synced");
        assert!(idle_plan.idp_actions[0].reason.contains("synced from the identity provider"));
    }

    #[test]
    fn a_group_atlassian_says_is_not_modifiable_is_reported_not_modified() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![jira_idle()]);
        let unlocked = fx.plan();
        assert_eq!(acts(&unlocked, "jira"), vec![pair("alice", "remove-group:g-jira")]);
        // managementAccess.modifiable: false, no identity provider: reported like a synced group.
        fx.snapshot.groups[JIRA_USERS as usize].locked = true;
        let plan = fx.plan();
        assert!(acts(&plan, "jira").is_empty(), "never written");
        let idp = &plan.policy("jira").unwrap().idp_actions;
        assert_eq!(idp.iter().map(|a| a.account_id.as_str()).collect::<Vec<_>>(), ["alice"]);
    }

    #[test]
    fn dry_run_plans_the_same_but_does_not_apply() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle()]);
        let enforce = fx.plan();
        fx.policies[0].spec.mode = PolicyMode::DryRun;
        let dry = fx.plan();
        let p = dry.policy("idle").unwrap();
        assert!(!p.applies);
        assert!(p.actions_to_apply().is_empty());
        assert_eq!(p.actions, enforce.policy("idle").unwrap().actions);
        assert_eq!(p.mode, PolicyMode::DryRun);
    }

    #[test]
    fn a_paused_policy_evaluates_nothing() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle()]);
        fx.policies[0].spec.mode = PolicyMode::Paused;
        let p = fx.plan();
        let pp = p.policy("idle").unwrap();
        assert!(pp.actions.is_empty() && !pp.applies);
        assert_eq!(pp.conditions[0].reason, "Paused");
    }
}
