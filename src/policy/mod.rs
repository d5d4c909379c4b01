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

mod matching;
mod recheck;
pub mod render;
mod resolve;
mod rules;
mod safety;
mod savings;
pub mod types;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;

use crate::crd::{
    AtlassianOrganization, GroupLicenseMapping, LifecyclePolicy, LocalRef, PolicyMode, ProtectedUser, Reactivation,
    RuleAction,
};
use crate::ledger::{Ledger, LedgerUpdate, TakenOutKind, UserRecord};
use crate::product::Product;
use crate::snapshot::{DirectorySnapshot, GroupIdx, ManagementSource, User, UserStatus};

pub use recheck::{Recheck, recheck};
pub use render::{DEFAULT_MARKDOWN_CHARS, MarkdownOptions, to_json, to_markdown, to_markdown_with, to_text};
pub use safety::{IMPLAUSIBLE_ACCOUNT_SHARE_PER_MILLE, IMPLAUSIBLE_PRODUCT_SHARE_PER_MILLE, MIN_POPULATION_FOR_SHARE};
pub use types::*;

use matching::{AccountGuards, CompiledScope, CompiledSelector, Protections, ResolvedGroups, is_human};
use render::{date, notices_clause};
use resolve::{Claim, Contender, action_words};
use rules::{Eval, Schedule};
use safety::ActivityHealth;
use savings::Licensing;

/// Everything the planner reads.
pub struct PlanInput<'a> {
    pub snapshot: &'a DirectorySnapshot,
    /// The organization (its name ties policies and mappings to it; its billing prices savings).
    pub organization: &'a AtlassianOrganization,
    /// Policies of this organization (others are ignored with a condition).
    pub policies: &'a [LifecyclePolicy],
    pub protections: &'a [ProtectedUser],
    pub mappings: &'a [GroupLicenseMapping],
    pub ledger: &'a Ledger,
    pub now: Timestamp,
    /// Actions left today under the organization's `maxActionsPerDay` (see [`daily_remaining`]);
    /// None: no daily cap.
    pub daily_actions_remaining: Option<u32>,
    /// Plan every policy as Enforce would act (`seatwarden plan`); the modes are still reported and
    /// nothing but Enforce ever applies.
    pub evaluate_as_enforce: bool,
}

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

/// Shared, precomputed facts of one plan.
struct Ctx<'a> {
    input: &'a PlanInput<'a>,
    snapshot: &'a DirectorySnapshot,
    now: i64,
    health: ActivityHealth,
    licensing: Licensing,
    guards: Vec<AccountGuards>,
    protections: Protections,
    /// The ledger record of each user (by index), looked up once.
    recs: Vec<Option<&'a UserRecord>>,
    ledger: &'a Ledger,
    incomplete: bool,
}

/// One policy's decisions before cross-policy resolution and caps.
struct Draft<'a> {
    policy: &'a LifecyclePolicy,
    name: String,
    mode: PolicyMode,
    in_scope: u32,
    claims: Vec<Claim<'a>>,
    held_back: Vec<HeldBack>,
    restorations: Vec<PlannedAction>,
    restored: Vec<u32>,
    skipped: Vec<SkippedUser>,
    skipped_counts: BTreeMap<SkipKind, u32>,
    idp: Vec<IdpAction>,
    conditions: Vec<PlanCondition>,
    halt: Option<Halt>,
    ledger_updates: Vec<LedgerUpdate>,
}

fn belongs(org_name: Option<&str>, r: &LocalRef) -> bool {
    org_name.is_none_or(|n| n == r.name)
}

fn name_of<K: kube::Resource>(k: &K) -> String {
    k.meta().name.clone().unwrap_or_default()
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
    let sorted = snapshot.users.is_sorted_by(|a, b| a.account_id <= b.account_id);
    let recs: Vec<Option<&UserRecord>> = if ledger.users.is_empty() {
        vec![None; snapshot.users.len()]
    } else {
        // Both are sorted by account id: one merge pass, no hashing of a million ids. (Should the
        // snapshot not be sorted as documented, look each user up instead of missing a record.)
        if sorted {
            let mut out = Vec::with_capacity(snapshot.users.len());
            let mut records = ledger.users.iter().peekable();
            for u in &snapshot.users {
                while records.peek().is_some_and(|(id, _)| id.as_str() < u.account_id.as_str()) {
                    records.next();
                }
                out.push(records.peek().filter(|(id, _)| id.as_str() == u.account_id).map(|(_, r)| *r));
            }
            out
        } else {
            snapshot.users.iter().map(|u| ledger.users.get(&u.account_id)).collect()
        }
    };
    ledger_updates.extend(observe(snapshot, ledger, &recs, incomplete));

    let (health, health_conditions) = ActivityHealth::assess(snapshot, &recs);
    conditions.extend(health_conditions);

    let mut mappings: Vec<&GroupLicenseMapping> =
        input.mappings.iter().filter(|m| belongs(org_name, &m.spec.organization_ref)).collect();
    mappings.sort_by_key(|m| name_of(*m));
    let licensing = Licensing::new(snapshot, &input.organization.spec, &mappings);
    for (mapping, group) in &licensing.unresolved {
        conditions.push(PlanCondition {
            reason: "UnresolvedGroup".into(),
            message: format!("GroupLicenseMapping {mapping} names group {group}, which is not in the organization"),
        });
    }
    let protections = Protections::compile(snapshot, input.protections, input.now, sorted);
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
        input,
        snapshot,
        now,
        health,
        licensing,
        guards: AccountGuards::compute(
            snapshot,
            input.organization.spec.credentials.api_key_owner_account_id.as_deref(),
        ),
        protections,
        recs,
        ledger,
        incomplete,
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

    let mut drafts: Vec<Draft<'_>> = policies.iter().map(|p| evaluate_policy(&ctx, p)).collect();

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
            .map(|d| Contender { policy: &d.name, mode: d.mode, halted: d.halt.is_some(), claims: &d.claims })
            .collect();
        resolve::resolve(&contenders, input.evaluate_as_enforce)
    };
    // A user restored this run by any policy is left alone by every other policy's rules.
    let restored_by: HashMap<u32, String> =
        drafts.iter().flat_map(|d| d.restored.iter().map(|u| (*u, d.name.clone()))).collect();

    let mut daily = input.daily_actions_remaining;
    let mut busy: Vec<bool> = vec![false; snapshot.users.len()];
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
    let realized = savings::realized_from(&input.organization.spec, input.now);
    let mut totals = Totals::default();
    let mut out_policies = Vec::with_capacity(staged.len());
    for (mut pp, policy) in staged {
        if pp.mode != PolicyMode::Paused {
            onboard(&ctx, policy, &mut pp, &busy, &mut onboarded);
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
    }
}

/// Why an account is never acted on by `policy`, if it is one of those (invariant 1).
fn guard_of(ctx: &Ctx<'_>, ui: u32, policy: &str, namespace: Option<&str>) -> Option<(SkipKind, String)> {
    if let Some(p) = ctx.protections.protecting(ui, policy, namespace) {
        let until = p.expires_at.map(|e| format!(" (until {})", date(e.as_second()))).unwrap_or_default();
        return Some((SkipKind::Protected, format!("protected by ProtectedUser {}{until}: {}", p.name, p.reason)));
    }
    let g = ctx.guards[ui as usize];
    if g.org_admin {
        return Some((SkipKind::OrgAdmin, "organization admin: never acted on".into()));
    }
    if g.site_admin {
        return Some((SkipKind::SiteAdmin, "site admin: never acted on".into()));
    }
    if g.api_key_owner {
        return Some((SkipKind::ApiKeyOwner, "owns the API key seatwarden uses: never acted on".into()));
    }
    None
}

fn directory_id(ctx: &Ctx<'_>, user: &User) -> String {
    ctx.snapshot.directories.get(usize::from(user.directory)).map(|d| d.id.clone()).unwrap_or_default()
}

fn group_id(ctx: &Ctx<'_>, g: GroupIdx) -> String {
    ctx.snapshot.groups[g as usize].id.clone()
}

fn basis(user: &User, product: Option<Product>) -> ActionBasis {
    ActionBasis {
        status: user.status,
        management_source: user.management_source,
        last_active_any: user.last_active_any(),
        last_active_product: product.and_then(|p| user.last_active_on(p)),
        product,
    }
}

fn skip(d: &mut Draft<'_>, user: &User, kind: SkipKind, rule: Option<&str>, why: String) {
    d.skipped.push(SkippedUser {
        account_id: user.account_id.clone(),
        email: user.email.clone(),
        kind,
        rule: rule.map(str::to_owned),
        why,
    });
}

fn count(d: &mut Draft<'_>, kind: SkipKind) {
    *d.skipped_counts.entry(kind).or_default() += 1;
}

/// One policy, every user: guards, reactivation, scope, rules. Produces claims, not yet actions.
fn evaluate_policy<'a>(ctx: &Ctx<'a>, policy: &'a LifecyclePolicy) -> Draft<'a> {
    let spec = &policy.spec;
    let name = name_of(policy);
    let namespace = policy.metadata.namespace.as_deref();
    let mut d = Draft {
        policy,
        name: name.clone(),
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
    };
    if spec.mode == PolicyMode::Paused {
        d.conditions.push(PlanCondition {
            reason: "Paused".into(),
            message: "the policy is paused: nothing is evaluated".into(),
        });
        return d;
    }
    if ctx.incomplete {
        d.conditions.push(PlanCondition {
            reason: "IncompleteListing".into(),
            message: "the listing is incomplete: nothing destructive is planned and no notice sent".into(),
        });
    }
    let scope = CompiledScope::new(ctx.snapshot, &spec.scope);
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
    let default_reactivation = Reactivation::default();
    let reactivation = spec.reactivation.as_ref();
    let opt_in = ResolvedGroups::resolve(ctx.snapshot, &reactivation.unwrap_or(&default_reactivation).opt_in_groups);
    for g in &opt_in.unresolved {
        d.conditions.push(PlanCondition {
            reason: "UnresolvedGroup".into(),
            message: format!("reactivation.optInGroups names group {g}, which is not in the organization"),
        });
    }
    let named: HashSet<&str> =
        reactivation.map(|r| r.account_ids.iter().map(String::as_str).collect()).unwrap_or_default();
    let grace = spec.new_account_grace_period.as_secs().max(0);
    let now = ctx.now;

    for (i, user) in ctx.snapshot.users.iter().enumerate() {
        let ui = i as u32;
        if !is_human(user) {
            if scope.matches(user) {
                count(
                    &mut d,
                    if user.account_type == crate::snapshot::AccountType::App {
                        SkipKind::AppAccount
                    } else {
                        SkipKind::CustomerAccount
                    },
                );
            }
            continue;
        }
        let rec = ctx.recs[i];
        let guard = guard_of(ctx, ui, &name, namespace);

        // Reactivation of what this policy took comes first and ignores the scope: the scope may
        // well have depended on the very groups that were removed.
        if let (Some(r), Some(rec)) = (reactivation, rec)
            && let Some((actions, idp)) = plan_reactivation(ctx, &name, r, &opt_in, user, rec)
        {
            match &guard {
                Some((kind, why)) => {
                    count(&mut d, *kind);
                    skip(&mut d, user, *kind, Some("reactivation"), why.clone());
                }
                None => {
                    d.restorations.extend(actions);
                    d.idp.extend(idp);
                    d.restored.push(ui);
                }
            }
            continue;
        }

        if !scope.matches(user) {
            continue;
        }
        d.in_scope += 1;
        if let Some((kind, _)) = &guard {
            count(&mut d, *kind);
        }
        let added = rules::added_at(user, rec).unwrap_or(now);
        let in_grace = now < added.saturating_add(grace);
        if guard.is_none() && in_grace {
            count(&mut d, SkipKind::GracePeriod);
        }
        let opted_in = named
            .contains(user.account_id.as_str())
            .then(|| "named for restoration by an admin: not taken out while named".to_owned())
            .or_else(|| {
                opt_in.any_member(user).map(|g| {
                    format!("member of opt-in group {}: asked to keep access", ctx.snapshot.groups[g as usize].name)
                })
            });

        let mut claimed: Option<String> = None;
        let mut no_data_counted = false;
        for (ri, rule) in spec.rules.iter().enumerate() {
            let eval = rules::evaluate(rule, spec.activity_lag_margin, user, rec, &ctx.health, &ctx.licensing, now);
            let trigger = match eval {
                Eval::Not => continue,
                Eval::NoData => {
                    if claimed.is_none() && !no_data_counted {
                        no_data_counted = true;
                        count(&mut d, SkipKind::NoActivityData);
                    }
                    continue;
                }
                Eval::Targeted(t) => t,
            };
            if let Some(first) = &claimed {
                // Later rules that would act now are held back, not lost: they return next run.
                if guard.is_none()
                    && let Schedule::Act { .. } = rules::schedule(&name, rule, rec, &trigger, now)
                {
                    d.held_back.push(HeldBack {
                        account_id: user.account_id.clone(),
                        email: user.email.clone(),
                        policy: name.clone(),
                        rule: rule.name.clone(),
                        kind: rule_kind(ctx, rule.action, &trigger),
                        why: format!("rule {first} of this policy comes first (rules are evaluated in order)"),
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
                    policy: name.clone(),
                    rule: rule.name.clone(),
                    before: Timestamp::from_second(trigger.episode_start).unwrap_or(Timestamp::MIN),
                });
            }
            if let Some((kind, why)) = &guard {
                skip(&mut d, user, *kind, Some(&rule.name), why.clone());
                break;
            }
            if let Some(why) = &opted_in {
                count(&mut d, SkipKind::OptedIn);
                skip(&mut d, user, SkipKind::OptedIn, Some(&rule.name), why.clone());
                break;
            }
            if in_grace {
                let why = format!(
                    "added {}: inside the new-account grace period ({}) until {}",
                    date(added),
                    spec.new_account_grace_period,
                    date(added.saturating_add(grace))
                );
                skip(&mut d, user, SkipKind::GracePeriod, Some(&rule.name), why);
                break;
            }
            if ctx.incomplete {
                break;
            }
            if let Some(why) = rules::not_applicable(rule, user) {
                count(&mut d, SkipKind::NotApplicable);
                skip(&mut d, user, SkipKind::NotApplicable, Some(&rule.name), why);
                continue;
            }
            // Synced from an identity provider: the next sync would revert our change (invariant 7).
            let synced_groups: Vec<GroupIdx> =
                trigger.groups.iter().copied().filter(|g| ctx.snapshot.groups[*g as usize].idp_synced).collect();
            let user_synced =
                rule.action != RuleAction::RemoveLicensedGroups && user.management_source == ManagementSource::Synced;
            if user_synced || !synced_groups.is_empty() {
                count(&mut d, SkipKind::IdpSynced);
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
            let schedule = rules::schedule(&name, rule, rec, &trigger, now);
            d.claims.push(Claim { user: ui, rule_idx: ri, rule: &rule.name, action: rule.action, trigger, schedule });
            claimed = Some(rule.name.clone());
        }
    }

    // Re-invitation of people this policy removed from the directory, named by an admin.
    if let Some(r) = reactivation {
        for id in &r.account_ids {
            let Some(rec) = ctx.ledger.users.get(id) else { continue };
            let removed =
                rec.taken_out.iter().find(|t| t.kind == TakenOutKind::RemovedFromDirectory && t.policy == name);
            if removed.is_none() || ctx.snapshot.user(id).is_some() {
                continue;
            }
            // Not in the snapshot, so protections are matched on what the ledger knows.
            let protected = ctx.protections.active.iter().filter(|p| p.applies_to(&name, namespace)).find(|p| {
                p.account_ids.iter().any(|a| a == id)
                    || rec.email.as_deref().is_some_and(|e| {
                        p.emails.iter().any(|x| x.eq_ignore_ascii_case(e))
                            || p.email_patterns.iter().any(|pat| matching::glob_matches(pat, e))
                    })
            });
            if let Some(p) = protected {
                d.conditions.push(PlanCondition {
                    reason: "Protected".into(),
                    message: format!(
                        "account {id} is named for re-invitation but protected by ProtectedUser {}",
                        p.name
                    ),
                });
                continue;
            }
            match &rec.email {
                Some(email) => d.restorations.push(PlannedAction {
                    account_id: id.clone(),
                    email: Some(email.clone()),
                    directory_id: ctx.snapshot.directories.first().map(|x| x.id.clone()).unwrap_or_default(),
                    kind: ActionKind::Invite,
                    policy: name.clone(),
                    rule: "reactivation".into(),
                    reason: format!(
                        "named for restoration by an admin; seatwarden removed the account from the directory on {}",
                        date(removed.map(|t| t.at.as_second()).unwrap_or_default())
                    ),
                    seats: BTreeMap::new(),
                    destructive: false,
                    inactive_days: None,
                    groups_lost: vec![],
                    basis: ActionBasis {
                        status: UserStatus::InvitedNeverActive,
                        management_source: ManagementSource::Unknown,
                        last_active_any: None,
                        last_active_product: None,
                        product: None,
                    },
                }),
                None => d.conditions.push(PlanCondition {
                    reason: "CannotReinvite".into(),
                    message: format!("account {id} is named for restoration but no email is on record to re-invite it"),
                }),
            }
        }
    }
    d
}

/// The ActionKind a rule's decision leads to (the first group, for group removals).
fn rule_kind(ctx: &Ctx<'_>, action: RuleAction, trigger: &rules::Trigger) -> ActionKind {
    match action {
        RuleAction::RemoveLicensedGroups => {
            ActionKind::RemoveGroup { group_id: trigger.groups.first().map(|g| group_id(ctx, *g)).unwrap_or_default() }
        }
        RuleAction::Suspend => ActionKind::Suspend,
        RuleAction::Deactivate => ActionKind::Deactivate,
        RuleAction::RemoveFromDirectory => ActionKind::RemoveFromDirectory,
    }
}

/// What restoring this user to the state before this policy's actions takes, if a return route
/// (activity, opt-in group, admin, re-invitation) applies.
fn plan_reactivation(
    ctx: &Ctx<'_>,
    policy: &str,
    r: &Reactivation,
    opt_in: &ResolvedGroups,
    user: &User,
    rec: &UserRecord,
) -> Option<(Vec<PlannedAction>, Vec<IdpAction>)> {
    let groups: Vec<_> = rec.removed_groups.iter().filter(|g| g.policy == policy).collect();
    let taken: Vec<_> = rec.taken_out.iter().filter(|t| t.policy == policy).collect();
    if groups.is_empty() && taken.is_empty() {
        return None;
    }
    let suspended = user.status == UserStatus::Suspended && taken.iter().any(|t| t.kind == TakenOutKind::Suspended);
    let deactivated =
        user.status == UserStatus::Deactivated && taken.iter().any(|t| t.kind == TakenOutKind::Deactivated);
    let reinvited = taken.iter().find(|t| t.kind == TakenOutKind::RemovedFromDirectory);
    let took_at = groups.iter().map(|g| g.at).chain(taken.iter().map(|t| t.at)).min()?;
    let named = r.account_ids.iter().any(|a| a == &user.account_id);
    let joined = opt_in.any_member(user);
    let last = user.last_active_any();
    let why = if named {
        "named for restoration by an admin".to_owned()
    } else if let Some(g) = joined {
        format!("joined opt-in group {}", ctx.snapshot.groups[g as usize].name)
    } else if let Some(t) = reinvited {
        format!("back in the directory after seatwarden removed the account on {}", date(t.at.as_second()))
    } else if r.on_activity && !suspended && !deactivated && last.is_some_and(|l| l > took_at) {
        format!(
            "active again on {} after seatwarden took access on {}",
            date(last.map(|l| l.as_second()).unwrap_or_default()),
            date(took_at.as_second())
        )
    } else {
        return None;
    };
    if (suspended || deactivated) && !r.restore_suspended {
        return None;
    }
    let dir = directory_id(ctx, user);
    let mut actions = Vec::new();
    let mut idp = Vec::new();
    let make = |kind: ActionKind, seats: BTreeMap<Product, i32>, reason: String| PlannedAction {
        account_id: user.account_id.clone(),
        email: user.email.clone(),
        directory_id: dir.clone(),
        kind,
        policy: policy.to_owned(),
        rule: "reactivation".into(),
        reason,
        seats,
        destructive: false,
        inactive_days: None,
        groups_lost: vec![],
        basis: basis(user, None),
    };
    let back_seats: BTreeMap<Product, i32> = user.product_access.iter().map(|p| (p.product, -1)).collect();
    if deactivated {
        actions.push(make(
            ActionKind::Enable,
            BTreeMap::new(),
            format!("{why}: re-enable the account seatwarden deactivated"),
        ));
    }
    if suspended {
        actions.push(make(ActionKind::Restore, back_seats, format!("{why}: lift the suspension seatwarden made")));
    }
    let mut gaining: Vec<Product> = Vec::new();
    for g in groups {
        let Some((gi, group)) = ctx.snapshot.group_by_id(&g.group_id) else { continue };
        if user.groups.contains(&gi) {
            continue;
        }
        let reason = format!("{why}: restore group {} removed on {}", group.name, date(g.at.as_second()));
        if group.idp_synced {
            idp.push(IdpAction {
                account_id: user.account_id.clone(),
                email: user.email.clone(),
                kind: ActionKind::AddGroup { group_id: group.id.clone() },
                rule: "reactivation".into(),
                group_name: Some(group.name.clone()),
                reason: format!("{reason}; the group is synced from the identity provider: add the user there"),
            });
            continue;
        }
        let mut seats = BTreeMap::new();
        for p in ctx.licensing.grants(gi) {
            if !user.has_access_to(*p) && !gaining.contains(p) && !suspended && !deactivated {
                gaining.push(*p);
                seats.insert(*p, -1);
            }
        }
        actions.push(make(ActionKind::AddGroup { group_id: group.id.clone() }, seats, reason));
    }
    if actions.is_empty() && idp.is_empty() {
        return None;
    }
    Some((actions, idp))
}

/// Turns a policy's winning claims into actions and notices, under its caps.
fn materialize(
    ctx: &Ctx<'_>,
    d: Draft<'_>,
    losses: Vec<Option<resolve::Loss>>,
    restored_by: &HashMap<u32, String>,
    daily: &mut Option<u32>,
    busy: &mut [bool],
) -> PolicyPlan {
    let spec = &d.policy.spec;
    let applies_mode = spec.mode == PolicyMode::Enforce || ctx.input.evaluate_as_enforce;
    let halted = d.halt.is_some();
    let mut held_back = d.held_back;
    let mut winners: Vec<&Claim> = Vec::new();
    for (claim, loss) in d.claims.iter().zip(losses) {
        let user = &ctx.snapshot.users[claim.user as usize];
        let restored = if restored_by.is_empty() { None } else { restored_by.get(&claim.user) };
        let lost_why = match (loss, restored) {
            (_, Some(p)) => Some(format!("being restored by policy {p} this run")),
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
                        rule: claim.rule.to_owned(),
                        kind: rule_kind(ctx, claim.action, &claim.trigger),
                        why,
                    });
                }
            }
            _ => winners.push(claim),
        }
    }
    // Longest-inactive first; ties by account id, so the order is deterministic.
    // (Users are sorted by account id, so their index orders them the same way, without comparing strings.)
    winners.sort_by(|a, b| b.trigger.inactive_days.cmp(&a.trigger.inactive_days).then(a.user.cmp(&b.user)));
    let per_run = spec.caps.max_actions_per_run.max(0) as u32;
    let budget = if halted { u32::MAX } else { safety::run_budget(spec.caps.max_actions_per_run, *daily) };
    let mut used = 0u32;
    let mut actions = Vec::new();
    let mut notices =
        Vec::with_capacity(winners.iter().filter(|c| matches!(c.schedule, Schedule::Notify { .. })).count());
    let mut deferred = Vec::new();
    for claim in winners {
        let user = &ctx.snapshot.users[claim.user as usize];
        busy[claim.user as usize] = true;
        match &claim.schedule {
            Schedule::Act { notices: sent } => {
                let acts = claim_actions(ctx, &d.name, claim, user, sent);
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
            Schedule::Notify { lead, due } => {
                let kind = rule_kind(ctx, claim.action, &claim.trigger);
                let mut reason = String::with_capacity(200);
                claim.trigger.write_facts(ctx.now, &mut reason);
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
                render::write_date(&mut reason, *due);
                reason.push_str(" unless active again");
                notices.push(PlannedNotice {
                    account_id: user.account_id.clone(),
                    email: user.email.clone(),
                    policy: d.name.clone(),
                    rule: claim.rule.to_owned(),
                    lead_time: *lead,
                    action_due: Timestamp::from_second(*due).unwrap_or(Timestamp::MAX),
                    action: kind,
                    reason,
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
        policy: d.name,
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
fn claim_actions(
    ctx: &Ctx<'_>,
    policy: &str,
    claim: &Claim,
    user: &User,
    sent: &[(crate::crd::Duration, i64)],
) -> Vec<PlannedAction> {
    let reason_base = format!("{}{}", claim.trigger.facts(ctx.now), notices_clause(sent));
    let dir = directory_id(ctx, user);
    let make =
        |kind: ActionKind, seats: BTreeMap<Product, i32>, reason: String, groups_lost: Vec<String>| PlannedAction {
            account_id: user.account_id.clone(),
            email: user.email.clone(),
            directory_id: dir.clone(),
            kind,
            policy: policy.to_owned(),
            rule: claim.rule.to_owned(),
            reason,
            seats,
            destructive: true,
            inactive_days: Some(claim.trigger.inactive_days),
            groups_lost,
            basis: basis(user, claim.trigger.product),
        };
    match claim.action {
        RuleAction::RemoveLicensedGroups => {
            let mut groups = claim.trigger.groups.clone();
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
                    make(ActionKind::RemoveGroup { group_id: group.id.clone() }, seats, reason, vec![])
                })
                .collect()
        }
        RuleAction::Suspend => {
            vec![make(ActionKind::Suspend, savings::seats_for_account_action(user), reason_base, vec![])]
        }
        RuleAction::Deactivate => {
            vec![make(ActionKind::Deactivate, savings::seats_for_account_action(user), reason_base, vec![])]
        }
        RuleAction::RemoveFromDirectory => {
            let lost: Vec<String> = user.groups.iter().map(|g| group_id(ctx, *g)).collect();
            vec![make(ActionKind::RemoveFromDirectory, savings::seats_for_account_action(user), reason_base, lost)]
        }
    }
}

/// Onboarding: ensure group membership for users matching a selector, within the seat cap.
fn onboard(
    ctx: &Ctx<'_>,
    policy: &LifecyclePolicy,
    pp: &mut PolicyPlan,
    busy: &[bool],
    onboarded: &mut HashSet<(u32, GroupIdx)>,
) {
    let spec = &policy.spec;
    if spec.onboarding.is_empty() {
        return;
    }
    let name = name_of(policy);
    let namespace = policy.metadata.namespace.as_deref();
    let scope = CompiledScope::new(ctx.snapshot, &spec.scope);
    for ob in &spec.onboarding {
        let selector = CompiledSelector::new(ctx.snapshot, &ob.selector);
        let targets = ResolvedGroups::resolve(ctx.snapshot, &ob.groups);
        for g in selector.unresolved().iter().chain(&targets.unresolved) {
            pp.conditions.push(PlanCondition {
                reason: "UnresolvedGroup".into(),
                message: format!("onboarding {} names group {g}, which is not in the organization", ob.name),
            });
        }
        let cap = ob.seat_cap.map(|c| c.max(0) as u32);
        let rule = format!("onboarding/{}", ob.name);
        let mut users_added = 0u32;
        for (i, user) in ctx.snapshot.users.iter().enumerate() {
            let ui = i as u32;
            if !is_human(user)
                || !matches!(user.status, UserStatus::Active | UserStatus::InvitedNeverActive)
                || !scope.matches(user)
                || !selector.matches(user)
                || busy[i]
            {
                continue;
            }
            let missing: Vec<GroupIdx> = targets
                .idx
                .iter()
                .copied()
                .filter(|g| !user.groups.contains(g) && !onboarded.contains(&(ui, *g)))
                .collect();
            if missing.is_empty() {
                continue;
            }
            if let Some((kind, why)) = guard_of(ctx, ui, &name, namespace) {
                *pp.skipped_counts.entry(kind).or_default() += 1;
                pp.skipped.push(SkippedUser {
                    account_id: user.account_id.clone(),
                    email: user.email.clone(),
                    kind,
                    rule: Some(rule.clone()),
                    why,
                });
                continue;
            }
            if ctx.recs[i].is_some_and(UserRecord::holds_removals) {
                pp.skipped.push(SkippedUser {
                    account_id: user.account_id.clone(),
                    email: user.email.clone(),
                    kind: SkipKind::NotApplicable,
                    rule: Some(rule.clone()),
                    why: "seatwarden took this user's access for inactivity: not onboarded again until they return"
                        .into(),
                });
                continue;
            }
            let mut acts = Vec::new();
            let mut gaining: Vec<Product> = Vec::new();
            for g in missing {
                let group = &ctx.snapshot.groups[g as usize];
                let reason = format!("matches onboarding {}; not yet in {}", ob.name, group.name);
                if group.idp_synced {
                    pp.idp_actions.push(IdpAction {
                        account_id: user.account_id.clone(),
                        email: user.email.clone(),
                        kind: ActionKind::AddGroup { group_id: group.id.clone() },
                        rule: rule.clone(),
                        group_name: Some(group.name.clone()),
                        reason: format!("{reason}; the group is synced from the identity provider: add the user there"),
                    });
                    continue;
                }
                let mut seats = BTreeMap::new();
                for p in ctx.licensing.grants(g) {
                    let held =
                        user.has_access_to(*p) || user.groups.iter().any(|k| ctx.licensing.grants(*k).contains(p));
                    if !held && !gaining.contains(p) {
                        gaining.push(*p);
                        seats.insert(*p, -1);
                    }
                }
                acts.push((
                    g,
                    PlannedAction {
                        account_id: user.account_id.clone(),
                        email: user.email.clone(),
                        directory_id: directory_id(ctx, user),
                        kind: ActionKind::AddGroup { group_id: group.id.clone() },
                        policy: name.clone(),
                        rule: rule.clone(),
                        reason,
                        seats,
                        destructive: false,
                        inactive_days: None,
                        groups_lost: vec![],
                        basis: basis(user, None),
                    },
                ));
            }
            if acts.is_empty() {
                continue;
            }
            if cap.is_some_and(|c| users_added >= c) {
                let why = format!("onboarding {} seat cap {} reached for this run", ob.name, cap.unwrap_or(0));
                pp.deferred.extend(acts.into_iter().map(|(_, a)| DeferredAction { action: a, why: why.clone() }));
                continue;
            }
            users_added += 1;
            for (g, a) in acts {
                onboarded.insert((ui, g));
                pp.actions.push(a);
            }
        }
    }
}

/// Totals of one policy's plan. Prices come from the mapping of the group involved, else billing.
fn policy_totals(ctx: &Ctx<'_>, pp: &PolicyPlan) -> Totals {
    let mut t = Totals { waiting: pp.totals.waiting, ..Totals::default() };
    let mut acted: HashSet<(&str, &str)> = HashSet::new();
    for a in &pp.actions {
        let user = ctx.snapshot.user(&a.account_id);
        let via = a.kind.group_id().and_then(|g| ctx.snapshot.group_by_id(g)).map(|(i, _)| i);
        savings::add_to_totals(&mut t, a, |p| match user {
            Some(u) => ctx.licensing.price(p, u, via),
            None => ctx.licensing.base_price.get(&p).copied(),
        });
        if a.destructive {
            t.destructive_actions += 1;
            acted.insert((&a.account_id, &a.directory_id));
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

fn is_member(snapshot: &DirectorySnapshot, user: &User, group_id: &str) -> bool {
    snapshot.group_by_id(group_id).is_some_and(|(i, _)| user.groups.contains(&i))
}

/// Settles writes left in flight by a crashed run from what the snapshot shows (invariant 5).
fn settle_in_flight(ledger: &Ledger, snapshot: &DirectorySnapshot, incomplete: bool) -> Vec<LedgerUpdate> {
    let mut out = Vec::new();
    for (id, flight) in ledger.in_flight() {
        let user = snapshot.user(id);
        if user.is_none() && incomplete {
            continue; // absent from an incomplete listing proves nothing
        }
        let took = match (&flight.kind, user) {
            (ActionKind::RemoveFromDirectory, u) => u.is_none(),
            (_, None) => false,
            (ActionKind::RemoveGroup { group_id }, Some(u)) => !is_member(snapshot, u, group_id),
            (ActionKind::AddGroup { group_id }, Some(u)) => is_member(snapshot, u, group_id),
            (ActionKind::Suspend, Some(u)) => u.status == UserStatus::Suspended,
            (ActionKind::Deactivate, Some(u)) => u.status == UserStatus::Deactivated,
            (ActionKind::Restore, Some(u)) => u.status != UserStatus::Suspended,
            (ActionKind::Enable, Some(u)) => u.status != UserStatus::Deactivated,
            (ActionKind::Invite, Some(_)) => true,
        };
        out.push(if took {
            LedgerUpdate::InFlightApplied { account_id: id.to_owned(), kind: flight.kind.clone() }
        } else {
            LedgerUpdate::InFlightNotApplied { account_id: id.to_owned(), kind: flight.kind.clone() }
        });
    }
    out
}

/// Observations the ledger should remember (or forget), independent of any policy.
fn observe(
    snapshot: &DirectorySnapshot,
    ledger: &Ledger,
    recs: &[Option<&UserRecord>],
    incomplete: bool,
) -> Vec<LedgerUpdate> {
    let mut out = Vec::new();
    let at = snapshot.taken_at;
    for (i, user) in snapshot.users.iter().enumerate() {
        // An account repeats only across directories; with one directory every entry is the first.
        let first_entry =
            snapshot.directories.len() <= 1 || i == 0 || snapshot.users[i - 1].account_id != user.account_id;
        if !first_entry {
            continue;
        }
        let rec = recs[i];
        let id = || user.account_id.clone();
        if user.added_to_org.is_none() && rec.is_none_or(|r| r.first_seen.is_none()) {
            out.push(LedgerUpdate::FirstSeen { account_id: id(), at });
        }
        match (user.status, rec.and_then(|r| r.suspension.as_ref())) {
            (UserStatus::Suspended, None) => out.push(LedgerUpdate::SuspensionSeen { account_id: id(), at }),
            (UserStatus::Active | UserStatus::InvitedNeverActive, Some(_)) => {
                out.push(LedgerUpdate::SuspensionEnded { account_id: id() })
            }
            _ => {}
        }
        let Some(rec) = rec else { continue };
        // The restoration stops mattering once every product the user holds shows activity since.
        if let Some(r) = rec.restored_at
            && !user.product_access.is_empty()
            && user.product_access.iter().all(|p| p.last_active.is_some_and(|l| l >= r))
        {
            out.push(LedgerUpdate::ReturnSuperseded { account_id: id() });
        }
        if rec.holds_removals() {
            let groups_back = rec.removed_groups.iter().all(|g| is_member(snapshot, user, &g.group_id));
            let nothing_in_force = rec.taken_out.iter().all(|t| match t.kind {
                TakenOutKind::Suspended => user.status != UserStatus::Suspended,
                TakenOutKind::Deactivated => user.status != UserStatus::Deactivated,
                TakenOutKind::RemovedFromDirectory => rec.removed_groups.is_empty(),
            });
            if groups_back && nothing_in_force {
                out.push(LedgerUpdate::RemovalsSettled { account_id: id() });
            }
        }
    }
    if !incomplete {
        for (id, rec) in &ledger.users {
            let keep = rec.taken_out.iter().any(|t| t.kind == TakenOutKind::RemovedFromDirectory);
            if !keep && snapshot.user(id).is_none() {
                out.push(LedgerUpdate::Forget { account_id: id.clone() });
            }
        }
    }
    out
}

/// How many users of `snapshot` each active protection matches at `now`, by protection name (for
/// ProtectedUser status). Expired protections are absent.
pub fn protection_matches(
    snapshot: &DirectorySnapshot,
    protections: &[ProtectedUser],
    now: Timestamp,
) -> std::collections::BTreeMap<String, usize> {
    let sorted = snapshot.users.is_sorted_by(|a, b| a.account_id <= b.account_id);
    let compiled = matching::Protections::compile(snapshot, protections, now, sorted);
    let mut out: std::collections::BTreeMap<String, usize> =
        compiled.active.iter().map(|p| (p.name.clone(), 0)).collect();
    for hits in compiled.hits.values() {
        for i in hits {
            *out.entry(compiled.active[*i as usize].name.clone()).or_default() += 1;
        }
    }
    out
}
