//! Status of a LifecyclePolicy after a run, computed purely from the plan and what happened, and
//! written by server-side apply only when it changed (a no-op patch would wake the controller).

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::{
    crd::{ConditionStatus, LifecyclePolicy, LifecyclePolicyStatus, PolicyMode, RunSummary, set_condition},
    engine::PolicyRun,
};

pub const READY: &str = "Ready";
pub const SYNCED: &str = "Synced";
pub const SAFETY_HALTED: &str = "SafetyHalted";
pub const DEGRADED: &str = "Degraded";
pub const NOTICE_DELIVERY_UNAVAILABLE: &str = "NoticeDeliveryUnavailable";
/// A product the policy adds people to is at its user limit: onboarding waits for freed seats.
pub const PRODUCT_USER_LIMIT_REACHED: &str = crate::policy::USER_LIMIT_REACHED;

/// Entries shown in status lists (sample actions, would-notify): enough to read, bounded in size.
const SAMPLE: usize = 10;

/// The policy's status after `run` at `now`.
pub fn after_run(
    policy: &LifecyclePolicy,
    run: &PolicyRun,
    now: Timestamp,
    next_run: Timestamp,
    process_dry_run: bool,
    run_now_handled: Option<String>,
) -> LifecyclePolicyStatus {
    let mut s = policy.status.clone().unwrap_or_default();
    let generation = policy.metadata.generation;
    let plan = &run.plan;
    let r = &run.report;
    s.observed_generation = generation;
    s.last_run_time = Some(Time(now));
    s.next_run_time = Some(Time(next_run));
    if run_now_handled.is_some() {
        s.last_handled_run_now = run_now_handled;
    }
    let effective_mode =
        if process_dry_run && plan.mode == PolicyMode::Enforce { PolicyMode::DryRun } else { plan.mode };
    s.last_run = Some(RunSummary {
        run_name: run.record_names.first().cloned(),
        trigger: None,
        outside_window: false,
        mode: effective_mode,
        users_evaluated: 0,
        in_scope: plan.in_scope as i64,
        planned: plan.actions.len() as i64,
        applied: r.applied,
        failed: r.failed,
        deferred: plan.deferred.len() as i64,
        skipped: r.skipped + plan.skipped.len() as i64,
        notices_sent: r.notices_sent,
        protected_skipped: plan
            .skipped_counts
            .iter()
            .filter(|(k, _)| matches!(k, crate::policy::SkipKind::Protected))
            .map(|(_, n)| *n as i64)
            .sum(),
        would_notify: if plan.applies && !process_dry_run {
            vec![]
        } else {
            plan.notices
                .iter()
                .take(SAMPLE)
                .map(|n| format!("{}: {}", n.email.as_deref().unwrap_or(&n.account_id), n.reason))
                .collect()
        },
        sample_actions: plan
            .actions
            .iter()
            .take(SAMPLE)
            .map(|a| format!("{} {}: {}", a.kind.label(), a.email.as_deref().unwrap_or(&a.account_id), a.reason))
            .collect(),
        idp_actions_needed: plan
            .idp_actions
            .iter()
            .take(SAMPLE)
            .map(|a| {
                format!(
                    "{} {} ({}): {}",
                    a.kind.label(),
                    a.email.as_deref().unwrap_or(&a.account_id),
                    a.group_name.as_deref().unwrap_or("-"),
                    a.reason
                )
            })
            .collect(),
    });
    // Seats reclaimed accumulate over the policy's life (applied actions only).
    let mut total = s.seats_reclaimed.unwrap_or(0);
    for (product, n) in &r.seats {
        *s.seats_reclaimed_by_product.entry(product.label().to_owned()).or_default() += *n;
        total += *n;
    }
    s.seats_reclaimed = Some(total);
    if let Some(cur) = plan.totals.savings.currency.as_deref() {
        let per_seat: f64 = {
            let freed: u32 = plan.totals.seats_freed.values().sum();
            if freed > 0 { plan.totals.savings.projected_monthly / freed as f64 } else { 0.0 }
        };
        let previous = s
            .projected_monthly_savings
            .as_deref()
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        let added: i64 = r.seats.values().filter(|n| **n > 0).sum();
        s.projected_monthly_savings = Some(format!("{:.2} {cur}", previous + per_seat * added as f64));
    }

    let conds = &mut s.conditions;
    match &plan.halt {
        Some(h) => set_condition(
            conds,
            SAFETY_HALTED,
            ConditionStatus::True,
            &h.reason,
            format!(
                "{} Nothing was applied. Check the policy's scope and rules, or the snapshot, then raise caps.maxActionPercent if this is intended.",
                h.message
            ),
            generation,
            now,
        ),
        None => set_condition(
            conds,
            SAFETY_HALTED,
            ConditionStatus::False,
            "WithinCaps",
            "the plan stayed within maxActionPercent",
            generation,
            now,
        ),
    }
    // A product at its user limit has a condition of its own (it is the organization's state,
    // not a fault of the run).
    let mut at_limit: Vec<String> =
        plan.conditions.iter().filter(|c| c.reason == PRODUCT_USER_LIMIT_REACHED).map(|c| c.message.clone()).collect();
    for refusal in &r.limit_refusals {
        let products: Vec<&str> = refusal.products.iter().map(|p| p.display_name()).collect();
        at_limit.push(format!(
            "Atlassian refused a write into {} at its user limit ({}): no more writes into it this run; onboarding \
             waits for freed seats or a higher limit in the AtlassianOrganization's spec.userLimits",
            if products.is_empty() { "a product".to_owned() } else { products.join(", ") },
            refusal.message
        ));
    }
    let mut degraded: Vec<String> = plan
        .conditions
        .iter()
        .filter(|c| c.reason != PRODUCT_USER_LIMIT_REACHED)
        .map(|c| format!("{}: {}", c.reason, c.message))
        .collect();
    if r.failed > 0 {
        degraded.push(format!(
            "{} actions failed: {}",
            r.failed,
            r.failures.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        ));
    }
    if r.notices_failed > 0 {
        degraded.push(format!(
            "{} notices could not be delivered; their actions wait for a delivered notice",
            r.notices_failed
        ));
    }
    if degraded.is_empty() {
        set_condition(
            conds,
            DEGRADED,
            ConditionStatus::False,
            "AsExpected",
            "no failures and complete data",
            generation,
            now,
        );
    } else {
        let reason = plan
            .conditions
            .iter()
            .find(|c| c.reason != PRODUCT_USER_LIMIT_REACHED)
            .map(|c| c.reason.as_str())
            .unwrap_or(if r.failed > 0 { "ActionsFailed" } else { "NoticesUndelivered" });
        set_condition(conds, DEGRADED, ConditionStatus::True, reason, degraded.join(" | "), generation, now);
    }
    if !at_limit.is_empty() {
        let reason = if r.limit_refusals.is_empty() { "HeldAtUserLimit" } else { "RefusedAtUserLimit" };
        set_condition(
            conds,
            PRODUCT_USER_LIMIT_REACHED,
            ConditionStatus::True,
            reason,
            at_limit.join(" | "),
            generation,
            now,
        );
    } else if conds.iter().any(|c| c.type_ == PRODUCT_USER_LIMIT_REACHED) {
        set_condition(
            conds,
            PRODUCT_USER_LIMIT_REACHED,
            ConditionStatus::False,
            "WithinUserLimits",
            "every add of the last run fit its product's user limit",
            generation,
            now,
        );
    }
    set_condition(
        conds,
        SYNCED,
        ConditionStatus::True,
        "SnapshotTaken",
        "the organization was read completely for this run",
        generation,
        now,
    );
    let (ready_reason, ready_msg) = match (effective_mode, plan.halt.is_some()) {
        (_, true) => ("SafetyHalted", "the last run halted on maxActionPercent; see SafetyHalted".to_owned()),
        (PolicyMode::DryRun, _) => (
            "DryRun",
            format!(
                "dry run: {} actions and {} notices would be applied; set spec.mode: Enforce to act",
                plan.actions.len(),
                plan.notices.len()
            ),
        ),
        (PolicyMode::Paused, _) => ("Paused", "paused: does nothing until spec.mode changes".to_owned()),
        (PolicyMode::Enforce, _) => (
            "ReconciliationSucceeded",
            format!(
                "{} applied, {} failed, {} deferred, {} notices sent",
                r.applied,
                r.failed,
                plan.deferred.len(),
                r.notices_sent
            ),
        ),
    };
    set_condition(conds, READY, ConditionStatus::True, ready_reason, ready_msg, generation, now);
    s
}

/// Status when a run could not happen (the organization could not be read, a bad spec, ...).
pub fn failed(
    policy: &LifecyclePolicy,
    reason: &str,
    message: &str,
    now: Timestamp,
    synced: bool,
) -> LifecyclePolicyStatus {
    let mut s = policy.status.clone().unwrap_or_default();
    let generation = policy.metadata.generation;
    s.observed_generation = generation;
    set_condition(&mut s.conditions, READY, ConditionStatus::False, reason, message, generation, now);
    if !synced {
        set_condition(&mut s.conditions, SYNCED, ConditionStatus::False, reason, message, generation, now);
    }
    set_condition(&mut s.conditions, DEGRADED, ConditionStatus::True, reason, message, generation, now);
    s
}

/// Status of a paused policy.
pub fn paused(policy: &LifecyclePolicy, now: Timestamp) -> LifecyclePolicyStatus {
    let mut s = policy.status.clone().unwrap_or_default();
    let generation = policy.metadata.generation;
    s.observed_generation = generation;
    set_condition(
        &mut s.conditions,
        READY,
        ConditionStatus::True,
        "Paused",
        "paused: does nothing until spec.mode changes",
        generation,
        now,
    );
    s
}
