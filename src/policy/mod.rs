//! The pure planner: `(snapshot, policies, protections, mappings, ledger, now) → Plan`.
//!
//! No I/O, no clock reads, deterministic: the same input gives the same plan. Every action carries
//! its rule, policy, a reason a person can read and the seats it frees; every safety invariant of
//! DESIGN.md that the planner can enforce is enforced here (the executor's own share is the
//! re-check right before a write, [`recheck`]).
//!
//! The order of decisions, per policy and user:
//! 1. account guards (protected, org/site admin, API-key owner, app or customer account) — no action
//!    of any kind;
//! 2. reactivation of what this policy took (before any destructive rule; a restored user is left
//!    alone for the rest of the run);
//! 3. scope, opt-in (a user asking for access is not taken out), the new-account grace period;
//! 4. rules in order: the first that targets the user claims them (notice, wait, or action);
//!    missing activity data never counts as inactivity; IdP-synced users/groups are reported;
//! 5. across policies, one destructive decision per user ([`resolve`]);
//! 6. maxActionPercent halts a policy; maxActionsPerRun and the organization's daily cap throttle it,
//!    longest-inactive first;
//! 7. onboarding, within its seat cap, never for someone seatwarden took out and who hasn't returned.
//!
//! Passes over the accounts (a million accounts' directories, groups and activity cost more to
//! fetch from memory than to judge, so each pass reads them once for every use): the ledger merge
//! (`ledger_records`, checking the order as it goes); one pass for what holds for every policy
//! (ledger observation, account guards, protections, the activity data's health); one in which
//! every policy judges each account in turn (`claims::evaluate_policies`); then each policy's
//! own claims only (conflicts, caps, notices).

mod claims;
mod context;
mod eligibility;
mod limits;
pub mod mapping;
mod observation;
mod onboarding;
mod reactivation;
mod recheck;
pub mod render;
mod resolve;
mod safety;
mod savings;
mod triggers;
pub mod types;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod props;
#[cfg(test)]
mod semantics_tests;
#[cfg(test)]
mod shapes;

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;

use crate::crd::{AtlassianOrganization, GroupLicenseMapping, LifecyclePolicy, PolicyMode, ProtectedUser};
use crate::ledger::{Ledger, UserRecord};
use crate::snapshot::{DirectorySnapshot, GroupIdx};

pub use context::PlanInput;
pub use limits::{ProductSeats, group_grants, licensed_accounts};
pub use mapping::{MappingProblem, MappingResolution, resolve_mapping};
pub use onboarding::USER_LIMIT_REACHED;
pub use recheck::{Recheck, recheck};
pub use render::{
    DEFAULT_MARKDOWN_CHARS, MarkdownOptions, to_json, to_markdown, to_markdown_with, to_text, to_text_with,
};
pub use safety::{IMPLAUSIBLE_ACCOUNT_SHARE_PER_MILLE, IMPLAUSIBLE_PRODUCT_SHARE_PER_MILLE, MIN_POPULATION_FOR_SHARE};
pub use types::*;

use claims::{evaluate_policies, materialize};
use context::{Ctx, Draft, belongs, name_of};
use eligibility::{AccountGuards, Protections};
use observation::{observe_account, settle_in_flight};
use onboarding::onboard;
use resolve::Contender;
use safety::HealthTally;
use savings::Licensing;

/// What is left of the organization's daily cap at `now`, from its spec and status.
pub fn daily_remaining(org: &AtlassianOrganization, now: Timestamp) -> Option<u32> {
    let cap = org.spec.max_actions_per_day?.max(0) as u32;
    let today = now.strftime("%Y-%m-%d").to_string();
    let used = org
        .status
        .as_ref()
        .and_then(|s| s.actions_today.as_ref())
        .filter(|d| d.day == today)
        .map_or(0, |d| d.count.max(0) as u64);
    Some(cap.saturating_sub(used.min(u64::from(u32::MAX)) as u32))
}

/// Plans every policy of the organization. Pure and deterministic.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let snapshot = input.snapshot;
    let now = input.now.as_second();
    let org_name = input.organization.metadata.name.as_deref();
    let incomplete = snapshot.incomplete.is_some();
    let mut conditions = Vec::new();
    if let Some(why) = &snapshot.incomplete {
        conditions.push(PlanCondition {
            reason: "IncompleteListing".into(),
            message: format!("the listing is incomplete ({why}): nothing destructive is planned and no notice sent"),
        });
    }

    if let crate::snapshot::ApiTokenActivity::Refused { reason } = &snapshot.api_tokens {
        conditions.push(PlanCondition { reason: "ApiTokenActivityUnknown".into(), message: reason.clone() });
    }
    // Writes a crashed run left in flight are settled first, from what the snapshot shows.
    let mut ledger_updates = settle_in_flight(input.ledger, snapshot, incomplete);
    let settled;
    let ledger: &Ledger = if ledger_updates.is_empty() {
        input.ledger
    } else {
        let mut l = input.ledger.clone();
        l.apply_updates(&ledger_updates);
        settled = l;
        &settled
    };
    let (recs, sorted) = ledger_records(snapshot, ledger);
    // One pass over the accounts for what holds for every policy: what the ledger should remember,
    // the account guards, the protections and the activity data's health (each reads the
    // accounts' directories, groups or activity).
    let admin_groups = AccountGuards::admin_groups(snapshot);
    let key_owner = input.organization.spec.credentials.api_key_owner_account_id.as_deref();
    let mut guards = Vec::with_capacity(snapshot.accounts.len());
    let mut health = HealthTally::default();
    let protections = Protections::compile_visiting(snapshot, input.protections, input.now, sorted, |ui, u| {
        guards.push(AccountGuards::of(u, admin_groups.as_deref(), snapshot.api_key_owner.as_deref(), key_owner));
        observe_account(snapshot, u, recs[ui], &mut ledger_updates);
        health.add(u, recs[ui]);
    });
    let (health, health_conditions) = health.finish(snapshot);
    conditions.extend(health_conditions);

    let mut mappings: Vec<&GroupLicenseMapping> =
        input.mappings.iter().filter(|m| belongs(org_name, &m.spec.organization_ref)).collect();
    mappings.sort_by_key(|m| name_of(*m));
    let licensing = Licensing::new(snapshot, &input.organization.spec, &mappings);
    for (mapping, product, problem) in &licensing.problems {
        conditions.push(PlanCondition {
            reason: problem.reason().into(),
            message: format!("GroupLicenseMapping {mapping}: {}", problem.message(product.label())),
        });
    }
    let (user_limits, lifted) =
        limits::product_seats(snapshot, &licensing, &input.organization.spec.declared_user_limits(), ledger);
    ledger_updates.extend(lifted);
    for p in &protections.active {
        for g in &p.groups.unresolved {
            conditions.push(PlanCondition {
                reason: "UnresolvedProtection".into(),
                message: format!(
                    "ProtectedUser {} names group {g}, which is not in the organization: the policies it covers are halted",
                    p.name
                ),
            });
        }
    }

    let ctx = Ctx {
        snapshot,
        now,
        health,
        licensing,
        guards,
        protections,
        recs,
        ledger,
        incomplete,
        notice_delivery: input.organization.spec.notice_delivery(),
        user_limits,
    };

    let mut policies: Vec<&LifecyclePolicy> = Vec::new();
    for p in input.policies {
        if belongs(org_name, &p.spec.organization_ref) {
            policies.push(p);
        } else {
            conditions.push(PlanCondition {
                reason: "OtherOrganization".into(),
                message: format!(
                    "policy {} refers to organization {}, not {}: not planned here",
                    name_of(p),
                    p.spec.organization_ref.name,
                    org_name.unwrap_or("-")
                ),
            });
        }
    }
    policies.sort_by_key(|p| name_of(*p));

    let mut drafts: Vec<Draft<'_>> = evaluate_policies(&ctx, &policies);

    // maxActionPercent, on each policy's own claims: a halted policy applies nothing and doesn't compete.
    for d in &mut drafts {
        if d.halt.is_some() || d.mode == PolicyMode::Paused {
            continue;
        }
        let touched = d.claims.iter().filter(|c| c.touches()).count() as u32;
        let max = d.policy.spec.caps.max_action_percent;
        if safety::percent_exceeded(touched, d.in_scope, max) {
            d.halt = Some(Halt {
                reason: "MaxActionPercentExceeded".into(),
                message: format!(
                    "the plan would touch {touched} of {} in-scope users ({:.1}%), above maxActionPercent {max}%: \
                     that is a misconfiguration or bad data, so nothing is applied; check the rules and the data, \
                     or raise the limit",
                    d.in_scope,
                    f64::from(touched) * 100.0 / f64::from(d.in_scope.max(1))
                ),
            });
        }
    }

    let losses = {
        let contenders: Vec<Contender<'_>> = drafts
            .iter()
            .map(|d| Contender {
                policy: &d.name,
                mode: d.mode,
                halted: d.halt.is_some(),
                rule_names: &d.rule_names,
                claims: &d.claims,
            })
            .collect();
        resolve::resolve(&contenders)
    };
    // A user restored this run by any policy is left alone by every other policy's rules.
    let restored_by: HashMap<u32, String> =
        drafts.iter().flat_map(|d| d.restored.iter().map(|u| (*u, d.name.to_string()))).collect();

    let mut daily = input.daily_actions_remaining;
    let mut busy: Vec<bool> = vec![false; snapshot.accounts.len()];
    for u in restored_by.keys() {
        busy[*u as usize] = true;
    }
    let mut staged: Vec<(PolicyPlan, &LifecyclePolicy)> = Vec::with_capacity(drafts.len());
    for (mut draft, loss) in drafts.into_iter().zip(losses) {
        ledger_updates.append(&mut draft.ledger_updates);
        let policy = draft.policy;
        staged.push((materialize(&ctx, draft, loss, &restored_by, &mut daily, &mut busy), policy));
    }
    let mut onboarded: HashSet<(u32, GroupIdx)> = HashSet::new();
    // Seats left under each product's user limit, spent by the applying policies' restorations,
    // then by onboarding in policy name order (a policy that doesn't apply shows what would fit
    // and spends nothing, like the daily cap).
    let mut room: std::collections::BTreeMap<crate::product::Product, u32> =
        ctx.user_limits.iter().filter_map(|(p, s)| Some((*p, s.room()?))).collect();
    for (pp, _) in staged.iter_mut() {
        let mut left = room.clone();
        onboarding::hold_restorations_at_limits(&ctx, pp, &mut left);
        if pp.applies {
            room = left;
        }
    }
    let realized = savings::realized_from(&input.organization.spec, input.now);
    let mut totals = Totals::default();
    let mut out_policies = Vec::with_capacity(staged.len());
    for (mut pp, policy) in staged {
        if pp.mode != PolicyMode::Paused {
            let mut left = room.clone();
            onboard(&ctx, policy, &mut pp, &busy, &mut onboarded, &mut left);
            if pp.applies {
                room = left;
            }
        }
        pp.totals = policy_totals(&ctx, &pp);
        savings::finish_savings(&mut pp.totals.savings, ctx.licensing.currency.as_deref(), &realized);
        if pp.halt.is_none() {
            absorb(&mut totals, &pp.totals);
        }
        out_policies.push(pp);
    }
    savings::finish_savings(&mut totals.savings, ctx.licensing.currency.as_deref(), &realized);

    Plan {
        org_id: snapshot.org_id.clone(),
        now: input.now,
        snapshot_taken_at: snapshot.taken_at,
        policies: out_policies,
        conditions,
        ledger_updates,
        daily_cap_remaining: daily,
        totals,
        user_limits: ctx.user_limits.values().cloned().collect(),
    }
}

/// The ledger record of each account (by index), and whether the accounts are sorted by id as
/// documented. Both are sorted by account id: one merge pass, which checks the order as it goes,
/// rather than a million hash lookups and a second pass over the ids. (Should the snapshot not be
/// sorted, each account is looked up instead, so no record is missed.)
fn ledger_records<'a>(snapshot: &DirectorySnapshot, ledger: &'a Ledger) -> (Vec<Option<&'a UserRecord>>, bool) {
    let accounts = &snapshot.accounts;
    if ledger.users.is_empty() {
        return (vec![None; accounts.len()], accounts.is_sorted_by(|a, b| a.account_id <= b.account_id));
    }
    let mut out = Vec::with_capacity(accounts.len());
    let mut records = ledger.users.iter().peekable();
    let mut previous: Option<&str> = None;
    for u in accounts {
        let id = u.account_id.as_str();
        if previous.is_some_and(|p| p > id) {
            return (accounts.iter().map(|u| ledger.users.get(&u.account_id)).collect(), false);
        }
        previous = Some(id);
        while records.peek().is_some_and(|(rid, _)| rid.as_str() < id) {
            records.next();
        }
        out.push(records.peek().filter(|(rid, _)| rid.as_str() == id).map(|(_, r)| *r));
    }
    (out, true)
}

/// Totals of one policy's plan. Prices come from the mapping of the group involved, else billing.
fn policy_totals(ctx: &Ctx<'_>, pp: &PolicyPlan) -> Totals {
    let mut t = Totals { waiting: pp.totals.waiting, ..Totals::default() };
    // Accounts, not directory entries: an account suspended in two directories is one user acted on.
    let mut acted: HashSet<&str> = HashSet::new();
    for a in &pp.actions {
        let user = ctx.snapshot.account(&a.account_id);
        let via = a.kind.group_id().and_then(|g| ctx.snapshot.recorded_group(&a.directory_id, g, user)).map(|(i, _)| i);
        savings::add_to_totals(&mut t, a, |p| match user {
            Some(u) => ctx.licensing.price(p, u, via),
            None => ctx.licensing.base_price.get(&p).copied(),
        });
        if a.destructive {
            t.destructive_actions += 1;
            acted.insert(&a.account_id);
        } else if a.rule == "reactivation" {
            t.restorations += 1;
        } else {
            t.onboardings += 1;
        }
    }
    t.users_acted_on = acted.len() as u32;
    t.notices = pp.notices.len() as u32;
    t.deferred = pp.deferred.len() as u32;
    t.skipped = pp.skipped_counts.values().sum();
    t.held_back = pp.held_back.len() as u32;
    t.idp_actions = pp.idp_actions.len() as u32;
    t
}

fn absorb(into: &mut Totals, t: &Totals) {
    into.destructive_actions += t.destructive_actions;
    into.users_acted_on += t.users_acted_on;
    into.restorations += t.restorations;
    into.onboardings += t.onboardings;
    into.notices += t.notices;
    into.deferred += t.deferred;
    into.skipped += t.skipped;
    into.held_back += t.held_back;
    into.idp_actions += t.idp_actions;
    into.waiting += t.waiting;
    for (p, n) in &t.seats_freed {
        *into.seats_freed.entry(*p).or_default() += n;
    }
    for (p, n) in &t.seats_added {
        *into.seats_added.entry(*p).or_default() += n;
    }
    into.savings.projected_monthly += t.savings.projected_monthly;
    for (p, v) in &t.savings.by_product {
        *into.savings.by_product.entry(*p).or_default() += v;
    }
    for p in &t.savings.unpriced_products {
        if !into.savings.unpriced_products.contains(p) {
            into.savings.unpriced_products.push(*p);
        }
    }
    into.savings.unpriced_products.sort();
}

/// How many users of `snapshot` each active protection matches at `now`, by protection name (for
/// ProtectedUser status). Expired protections are absent.
pub fn protection_matches(
    snapshot: &DirectorySnapshot,
    protections: &[ProtectedUser],
    now: Timestamp,
) -> std::collections::BTreeMap<String, usize> {
    let sorted = snapshot.accounts.is_sorted_by(|a, b| a.account_id <= b.account_id);
    let compiled = Protections::compile(snapshot, protections, now, sorted);
    let mut out: std::collections::BTreeMap<String, usize> =
        compiled.active.iter().map(|p| (p.name.clone(), 0)).collect();
    for hits in compiled.hits.values() {
        for i in hits {
            *out.entry(compiled.active[*i as usize].name.clone()).or_default() += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fixture::*;
    use super::*;

    #[test]
    fn ledger_records_are_found_whether_or_not_the_accounts_are_sorted() {
        // Carol was warned 20 days ago (14-day lead time): she is acted on, the others are warned.
        let users: Vec<_> = ["alice", "bob", "carol", "dave"].iter().map(|id| idle(id, 200)).collect();
        let mut fx = Fx::new(users, vec![warn_policy()]);
        fx.ledger.users.insert("carol".into(), warned(20));
        let (recs, sorted) = ledger_records(&fx.snapshot, &fx.ledger);
        assert!(sorted);
        assert_eq!(recs.iter().map(Option::is_some).collect::<Vec<_>>(), [false, false, true, false]);
        let in_order = fx.plan();
        assert_eq!(acts(&in_order, "warn"), vec![pair("carol", "suspend")]);

        // A snapshot not sorted as documented: each account is looked up, no record is missed.
        fx.snapshot.accounts.swap(0, 3);
        let (recs, sorted) = ledger_records(&fx.snapshot, &fx.ledger);
        assert!(!sorted);
        let found: Vec<&str> = fx
            .snapshot
            .accounts
            .iter()
            .zip(&recs)
            .filter(|(_, r)| r.is_some())
            .map(|(a, _)| a.account_id.as_str())
            .collect();
        assert_eq!(found, ["carol"]);
        let shuffled = fx.plan();
        assert_eq!(acts(&shuffled, "warn"), vec![pair("carol", "suspend")]);
        let warned = |p: &Plan| {
            let mut w: Vec<String> = p.policy("warn").unwrap().notices.iter().map(|n| n.account_id.clone()).collect();
            w.sort();
            w
        };
        assert_eq!(warned(&shuffled), ["alice", "bob", "dave"]);
        assert_eq!(warned(&shuffled), warned(&in_order));
    }
}
