//! Conflict resolution: a user receives at most one destructive decision per run. Within a policy
//! the first rule (in order) that targets the user claims them; across policies the claims are
//! ranked and the best one wins, deterministically:
//! 1. a policy that applies (Enforce) before one that doesn't (DryRun), unless all are evaluated
//!    as Enforce (`seatwarden plan`);
//! 2. the gentler action first (remove licensed groups < suspend < deactivate < remove from the
//!    directory): it is the easiest to undo, and the harsher rule can still act in a later run;
//! 3. the policy name, then the rule's position, as the final tie-break.

use std::collections::HashMap;

use crate::crd::{PolicyMode, RuleAction};

use super::rules::{Schedule, Trigger};

/// One rule's claim on one user (directory entry) in one policy.
#[derive(Clone, Debug)]
pub(crate) struct Claim {
    pub user: u32,
    pub rule_idx: usize,
    pub rule: String,
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
    pub claims: &'a [Claim],
}

/// Why a claim lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Loss {
    pub winner_policy: String,
    pub winner_rule: String,
    pub why: String,
}

/// For each contender, for each claim: None if it won, Some(loss) if another claim won.
pub(crate) fn resolve(contenders: &[Contender<'_>], all_as_enforce: bool) -> Vec<Vec<Option<Loss>>> {
    fn rank<'a>(c: &Contender<'a>, claim: &Claim, all_as_enforce: bool) -> (u8, u8, &'a str, usize) {
        let mode_rank = if all_as_enforce || c.mode == PolicyMode::Enforce { 0u8 } else { 1 };
        (mode_rank, severity(claim.action), c.policy, claim.rule_idx)
    }
    let mut best: HashMap<u32, (usize, usize)> = HashMap::new();
    for (ci, c) in contenders.iter().enumerate() {
        if c.halted {
            continue;
        }
        for (k, claim) in c.claims.iter().enumerate() {
            match best.get(&claim.user) {
                Some(&(bc, bk))
                    if rank(&contenders[bc], &contenders[bc].claims[bk], all_as_enforce)
                        <= rank(c, claim, all_as_enforce) => {}
                _ => {
                    best.insert(claim.user, (ci, k));
                }
            }
        }
    }
    // The same winner and reason explain many losses: word each once.
    let mut words: HashMap<(usize, usize, u8), String> = HashMap::new();
    let mut out = Vec::with_capacity(contenders.len());
    for (ci, c) in contenders.iter().enumerate() {
        let mut losses = Vec::with_capacity(c.claims.len());
        for (k, claim) in c.claims.iter().enumerate() {
            let loss = match best.get(&claim.user) {
                Some(&(bc, bk)) if !c.halted && (bc, bk) != (ci, k) => {
                    let w = &contenders[bc];
                    let wc = &w.claims[bk];
                    let case = if w.mode != c.mode && !all_as_enforce {
                        0
                    } else if severity(wc.action) < severity(claim.action) {
                        1
                    } else {
                        2
                    };
                    let why = words
                        .entry((bc, wc.rule_idx, case))
                        .or_insert_with(|| {
                            let head =
                                format!("policy {} rule {} ({}) wins", w.policy, wc.rule, action_words(wc.action));
                            match case {
                                0 => format!("{head}: an Enforce policy goes before a {} one", c.mode.label()),
                                1 => format!(
                                    "{head}: one destructive decision per user per run, the gentler action first"
                                ),
                                _ => format!(
                                    "{head}: one destructive decision per user per run, equal actions go by policy name"
                                ),
                            }
                        })
                        .clone();
                    Some(Loss { winner_policy: w.policy.to_owned(), winner_rule: wc.rule.clone(), why })
                }
                _ => None,
            };
            losses.push(loss);
        }
        out.push(losses);
    }
    out
}
