//! Conflict resolution: a user receives at most one destructive decision per run. Within a policy
//! the first rule (in order) that targets the user claims them; across policies the claims are
//! ranked and the best one wins, deterministically:
//! 1. a policy that applies (Enforce) before one that doesn't (DryRun) — the same for the operator
//!    and `seatwarden plan`, so the preview shows what the operator does (invariant 11);
//! 2. the gentler action first (remove licensed groups < suspend < deactivate < remove from the
//!    directory): it is the easiest to undo, and the harsher rule can still act in a later run;
//! 3. the policy name, then the rule's position, as the final tie-break.

use std::collections::HashMap;
use std::sync::Arc;

use crate::crd::{PolicyMode, RuleAction};

use super::triggers::{Schedule, Trigger};

/// One rule's claim on one user (directory entry) in one policy.
#[derive(Clone, Debug)]
pub(crate) struct Claim {
    pub user: u32,
    /// The rule's position in its policy (its name is the policy's to say: there can be hundreds
    /// of thousands of claims, each written once).
    pub rule_idx: u32,
    pub action: RuleAction,
    pub trigger: Trigger,
    pub schedule: Schedule,
}

impl Claim {
    /// Touches the user this run (counts toward maxActionPercent): an action or a notice.
    pub fn touches(&self) -> bool {
        matches!(self.schedule, Schedule::Act { .. } | Schedule::Notify { .. })
    }
}

pub(crate) fn severity(action: RuleAction) -> u8 {
    match action {
        RuleAction::RemoveLicensedGroups => 1,
        RuleAction::Suspend => 2,
        RuleAction::Deactivate => 3,
        RuleAction::RemoveFromDirectory => 4,
    }
}

pub(crate) fn action_words(action: RuleAction) -> &'static str {
    match action {
        RuleAction::RemoveLicensedGroups => "remove licensed groups",
        RuleAction::Suspend => "suspend",
        RuleAction::Deactivate => "deactivate",
        RuleAction::RemoveFromDirectory => "remove from the directory",
    }
}

/// The competing side of a resolution: one policy's claims.
pub(crate) struct Contender<'a> {
    pub policy: &'a str,
    pub mode: PolicyMode,
    /// Halted policies apply nothing, so they don't compete.
    pub halted: bool,
    /// The policy's rule names, by rule index.
    pub rule_names: &'a [Arc<str>],
    pub claims: &'a [Claim],
}

/// Why a claim lost (shared: the same winner and reason explain many losses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Loss {
    pub why: Arc<str>,
}

/// For each contender, for each claim: None if it won, Some(loss) if another claim won.
pub(crate) fn resolve(contenders: &[Contender<'_>]) -> Vec<Vec<Option<Loss>>> {
    fn rank<'a>(c: &Contender<'a>, claim: &Claim) -> (u8, u8, &'a str, u32) {
        let mode_rank = if c.mode == PolicyMode::Enforce { 0u8 } else { 1 };
        (mode_rank, severity(claim.action), c.policy, claim.rule_idx)
    }
    // Best claim per user, indexed by user (a million hash operations cost more than a vector).
    const NONE: (u32, u32) = (u32::MAX, u32::MAX);
    let users = contenders.iter().flat_map(|c| c.claims.iter().map(|x| x.user as usize + 1)).max().unwrap_or(0);
    let mut best: Vec<(u32, u32)> = vec![NONE; users];
    for (ci, c) in contenders.iter().enumerate() {
        if c.halted {
            continue;
        }
        for (k, claim) in c.claims.iter().enumerate() {
            let slot = &mut best[claim.user as usize];
            let better = *slot == NONE || {
                let (bc, bk) = (slot.0 as usize, slot.1 as usize);
                rank(c, claim) < rank(&contenders[bc], &contenders[bc].claims[bk])
            };
            if better {
                *slot = (ci as u32, k as u32);
            }
        }
    }
    // The same winner and reason explain many losses: word each once.
    let mut words: HashMap<(usize, u32, u8), Arc<str>> = HashMap::new();
    let mut out = Vec::with_capacity(contenders.len());
    for (ci, c) in contenders.iter().enumerate() {
        let mut losses = Vec::with_capacity(c.claims.len());
        for (k, claim) in c.claims.iter().enumerate() {
            let slot = best.get(claim.user as usize).copied().unwrap_or(NONE);
            let loss = match (slot != NONE).then_some((slot.0 as usize, slot.1 as usize)) {
                Some((bc, bk)) if !c.halted && (bc, bk) != (ci, k) => {
                    let w = &contenders[bc];
                    let wc = &w.claims[bk];
                    let case = if w.mode != c.mode {
                        0
                    } else if severity(wc.action) < severity(claim.action) {
                        1
                    } else {
                        2
                    };
                    let why = words
                        .entry((bc, wc.rule_idx, case))
                        .or_insert_with(|| {
                            let head = format!(
                                "policy {} rule {} ({}) wins",
                                w.policy,
                                w.rule_names[wc.rule_idx as usize],
                                action_words(wc.action)
                            );
                            let why = match case {
                                0 => format!("{head}: an Enforce policy goes before a {} one", c.mode.label()),
                                1 => format!(
                                    "{head}: one destructive decision per user per run, the gentler action first"
                                ),
                                _ => format!(
                                    "{head}: one destructive decision per user per run, equal actions go by policy name"
                                ),
                            };
                            Arc::from(why)
                        })
                        .clone();
                    Some(Loss { why })
                }
                _ => None,
            };
            losses.push(loss);
        }
        out.push(losses);
    }
    out
}

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn two_policies_on_one_user_resolve_to_the_gentler_action_deterministically() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle(), jira_idle()]);
        let a = fx.plan();
        fx.policies.reverse();
        let b = fx.plan();
        assert_eq!(a, b);
        assert_eq!(acts(&a, "jira"), vec![pair("alice", "remove-group:g-jira")]);
        assert!(acts(&a, "idle").is_empty());
        let held = &a.policy("idle").unwrap().held_back[0];
        assert_eq!(held.account_id, "alice");
        assert_eq!(held.kind, ActionKind::Suspend);
        assert!(held.why.contains("policy jira rule jira-60 (remove licensed groups) wins"), "{}", held.why);
        assert!(held.why.contains("the gentler action first"));
    }

    #[test]
    fn an_enforce_policy_goes_before_a_dry_run_one() {
        // One resolution for the operator and `seatwarden plan` (invariant 11): there is no "show
        // everything as Enforce" mode in which the DryRun policy's gentler rule would win instead.
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle(), jira_idle()]);
        fx.policies[1].spec.mode = PolicyMode::DryRun;
        let p = fx.plan();
        assert_eq!(acts(&p, "idle"), vec![pair("alice", "suspend")]);
        assert!(acts(&p, "jira").is_empty());
        assert!(p.policy("jira").unwrap().held_back[0].why.contains("an Enforce policy goes before a dry_run one"));
        assert!(p.policy("idle").unwrap().applies && !p.policy("jira").unwrap().applies);
    }

    #[test]
    fn equal_actions_go_by_policy_name() {
        let mut fx = Fx::new(
            vec![idle("alice", 200), user("bob")],
            vec![
                policy("zeta", vec![account_rule("z", 90, RuleAction::Suspend)]),
                policy("alpha", vec![account_rule("a", 90, RuleAction::Suspend)]),
            ],
        );
        let p = fx.plan();
        assert_eq!(acts(&p, "alpha"), vec![pair("alice", "suspend")]);
        assert!(p.policy("zeta").unwrap().held_back[0].why.contains("equal actions go by policy name"));
        fx.policies.reverse();
        assert_eq!(fx.plan(), p);
    }

    #[test]
    fn the_plan_is_deterministic() {
        let users: Vec<DirectoryUser> = (0..30).map(|i| idle(&format!("u{i:02}"), 10 * i)).collect();
        let mut fx = Fx::new(users, vec![suspend_idle(), jira_idle(), warn_policy()]);
        fx.policies[0].spec.caps.max_actions_per_run = 3;
        assert_eq!(fx.plan(), fx.plan());
        assert_eq!(serde_json::to_string(&fx.plan()).unwrap(), serde_json::to_string(&fx.plan()).unwrap());
    }
}
