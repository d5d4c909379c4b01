//! Safety checks that don't belong to one rule: whether activity data can be trusted (invariant 2)
//! and the caps (invariant 3).

use std::collections::BTreeMap;

use crate::ledger::UserRecord;
use crate::product::Product;
use crate::product::ProductKey;
use crate::snapshot::{Account, DirectorySnapshot, UserStatus};

use super::eligibility::is_human;
use super::types::PlanCondition;

/// A product's rules switch off when more than this share (per mille) of the active users with
/// access to it have never been active on it: that is missing data, not missing people.
pub const IMPLAUSIBLE_PRODUCT_SHARE_PER_MILLE: u64 = 900;
/// Account-level rules switch off when more than this share (per mille) of active accounts have
/// no activity on any product.
pub const IMPLAUSIBLE_ACCOUNT_SHARE_PER_MILLE: u64 = 500;
/// Below this many users a share says little; then only "all of them" switches rules off.
pub const MIN_POPULATION_FOR_SHARE: u64 = 10;

fn implausible(missing: u64, population: u64, per_mille: u64) -> bool {
    population > 0
        && (missing == population
            || (population >= MIN_POPULATION_FOR_SHARE && missing * 1000 > population * per_mille))
}

/// Which activity data the snapshot can be trusted with.
#[derive(Debug, Default)]
pub(crate) struct ActivityHealth {
    /// Products whose rules are switched off, with why.
    off: BTreeMap<Product, String>,
    /// Why account-level activity (any product, never active) can't be trusted, if it can't.
    any_off: Option<String>,
}

/// The counts [`ActivityHealth`] is judged from, one account at a time (the planner counts in its
/// one pass over the accounts for guards and protections). `recs` are the users' ledger records:
/// users seatwarden just granted a product (onboarding, restoration) are left out of the shares,
/// since they can't have used it yet.
#[derive(Debug, Default)]
pub(crate) struct HealthTally {
    /// Per product (indexed by the enum, no map in the hot loop): (users with access, of whom
    /// never active on it), among active or suspended humans.
    counts: [(u64, u64); Product::ALL.len()],
    held: [bool; Product::ALL.len()],
    active_accounts: u64,
    no_activity: u64,
}

impl HealthTally {
    pub fn add(&mut self, user: &Account, rec: Option<&UserRecord>) {
        if !is_human(user) {
            return;
        }
        for pa in user.product_access() {
            if let ProductKey::Known(p) = pa.product {
                self.held[p as usize] = true;
            }
        }
        // Suspended users keep their activity dates (and are mostly the inactive ones seatwarden
        // suspended): leaving them out would make each suspension skew the share.
        let judged = matches!(user.status(), UserStatus::Active | UserStatus::Suspended)
            && rec.is_none_or(|r| r.restored_at.is_none());
        if !judged {
            return;
        }
        self.active_accounts += 1;
        let mut any = user.api_token_last_active.is_some();
        for pa in user.product_access() {
            any |= pa.last_active.is_some();
            let ProductKey::Known(p) = pa.product else { continue };
            let e = &mut self.counts[p as usize];
            e.0 += 1;
            if pa.last_active.is_none() {
                e.1 += 1;
            }
        }
        if !any {
            self.no_activity += 1;
        }
    }

    pub fn finish(self, snapshot: &DirectorySnapshot) -> (ActivityHealth, Vec<PlanCondition>) {
        let HealthTally { counts, held, active_accounts, no_activity } = self;
        let mut health = ActivityHealth::default();
        let mut conditions = Vec::new();
        let per_product = Product::ALL.iter().filter(|p| held[**p as usize]).map(|p| (*p, counts[*p as usize]));
        for (product, (with_access, never)) in per_product {
            if !snapshot.activity_products.contains(&ProductKey::Known(product)) {
                let why = format!(
                    "the snapshot has no {product} activity data at all: rules that depend on {product} activity act on no one"
                );
                conditions.push(PlanCondition { reason: "NoActivityData".into(), message: why.clone() });
                health.off.insert(product, why);
            } else if implausible(never, with_access, IMPLAUSIBLE_PRODUCT_SHARE_PER_MILLE) {
                let why = format!(
                    "{never} of {with_access} active or suspended users with {product} access have no {product} activity date: \
                     that is missing data, not inactive people; rules that depend on {product} activity act on no one"
                );
                conditions.push(PlanCondition { reason: "ImplausibleActivityData".into(), message: why.clone() });
                health.off.insert(product, why);
            }
        }
        if snapshot.activity_products.is_empty() && !snapshot.accounts.is_empty() {
            let why =
                "the snapshot has no activity data for any product: inactivity and never-active rules act on no one"
                    .to_owned();
            conditions.push(PlanCondition { reason: "NoActivityData".into(), message: why.clone() });
            health.any_off = Some(why);
        } else if implausible(no_activity, active_accounts, IMPLAUSIBLE_ACCOUNT_SHARE_PER_MILLE) {
            let why = format!(
                "{no_activity} of {active_accounts} active or suspended accounts have no activity on any product: that is missing \
                 data, not inactive people; inactivity and never-active rules act on no one"
            );
            conditions.push(PlanCondition { reason: "ImplausibleActivityData".into(), message: why.clone() });
            health.any_off = Some(why);
        }
        (health, conditions)
    }
}

impl ActivityHealth {
    /// Why account-level rules (inactivity, never active) are off for everyone, if they are.
    pub fn any_off(&self) -> Option<&str> {
        self.any_off.as_deref()
    }

    /// Products whose activity data is missing or unreliable.
    pub fn off_products(&self) -> impl Iterator<Item = Product> + '_ {
        self.off.keys().copied()
    }

    /// Why rules depending on `product`'s activity are off, if they are.
    pub fn product_off(&self, product: Product) -> Option<&str> {
        self.off.get(&product).map(String::as_str)
    }

    /// Whether account-level activity can't be judged for this user: account data untrusted, or
    /// the user has a product whose activity is unknown (they may be active there).
    pub fn account_off(&self, user: &Account) -> bool {
        self.any_off.is_some()
            || (!self.off.is_empty()
                && user.product_access().any(|p| p.product.known().is_some_and(|k| self.off.contains_key(&k))))
    }
}

/// maxActionPercent: more than `max_percent` % of in-scope users touched halts the run.
pub(crate) fn percent_exceeded(touched: u32, in_scope: u32, max_percent: i32) -> bool {
    u64::from(touched) * 100 > u64::from(in_scope) * u64::from(max_percent.max(0) as u32)
}

/// How many users a policy may act on this run: its own cap, bounded by what is left of the
/// organization's daily cap.
pub(crate) fn run_budget(max_actions_per_run: i32, daily_remaining: Option<u32>) -> u32 {
    let own = max_actions_per_run.max(0) as u32;
    daily_remaining.map_or(own, |d| own.min(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_halts_only_above_the_limit() {
        assert!(!percent_exceeded(10, 100, 10));
        assert!(percent_exceeded(11, 100, 10));
        assert!(percent_exceeded(1, 100, 0));
        assert!(!percent_exceeded(0, 0, 0));
        assert!(!percent_exceeded(100, 100, 100));
    }

    #[test]
    fn the_run_budget_is_the_smaller_of_both_caps() {
        assert_eq!(run_budget(50, None), 50);
        assert_eq!(run_budget(50, Some(7)), 7);
        assert_eq!(run_budget(5, Some(70)), 5);
        assert_eq!(run_budget(-1, None), 0);
    }

    #[test]
    fn share_rules() {
        assert!(implausible(1, 1, 900));
        assert!(!implausible(0, 1, 900));
        assert!(!implausible(8, 9, 900)); // small population: only all-missing counts
        assert!(implausible(10, 10, 900));
        assert!(implausible(91, 100, 900));
        assert!(!implausible(90, 100, 900));
    }
}

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod plan_tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn a_product_without_activity_data_switches_its_rules_off_with_a_condition() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![jira_idle(), suspend_idle()]);
        fx.snapshot.activity_products.remove(&Product::JiraSoftware.into());
        let plan = fx.plan();
        assert!(acts(&plan, "jira").is_empty());
        // Alice's only product has no data: account inactivity can't be judged either.
        assert!(acts(&plan, "idle").is_empty());
        assert!(
            plan.conditions.iter().any(|c| c.reason == "NoActivityData" && c.message.contains("no Jira activity data"))
        );
        assert_eq!(plan.policy("idle").unwrap().skipped_counts.get(&SkipKind::NoActivityData), Some(&2));
        // Each policy says it in its own conditions (they become status conditions).
        let jira_conditions = &plan.policy("jira").unwrap().conditions;
        assert!(
            jira_conditions
                .iter()
                .any(|c| c.reason == "RuleSwitchedOff" && c.message.starts_with("rule jira-60 acts on no one"))
        );
        let idle_conditions = &plan.policy("idle").unwrap().conditions;
        assert!(
            idle_conditions
                .iter()
                .any(|c| c.reason == "RuleLimited" && c.message.contains("skips users with Jira access"))
        );
    }

    #[test]
    fn an_implausible_share_of_missing_product_dates_switches_the_product_off() {
        // 11 active users with Jira access, all but one without a Jira date: that's missing data.
        let mut users: Vec<DirectoryUser> = (0..10)
            .map(|i| {
                let mut u = user(&format!("u{i}"));
                u.product_access[0].last_active = None;
                u.product_access
                    .push(ProductActivity { product: Product::Confluence.into(), last_active: Some(ago(1)) });
                u
            })
            .collect();
        users.push(idle("alice", 200));
        let plan = Fx::new(users, vec![jira_idle()]).plan();
        assert!(acts(&plan, "jira").is_empty());
        assert!(
            plan.conditions.iter().any(|c| c.reason == "ImplausibleActivityData" && c.message.starts_with("10 of 11"))
        );
    }

    #[test]
    fn never_active_is_off_when_most_active_accounts_show_no_activity_at_all() {
        let mut users: Vec<DirectoryUser> = (0..12)
            .map(|i| {
                let mut u = user(&format!("u{i:02}"));
                u.product_access[0].last_active = None;
                u
            })
            .collect();
        users.push(user("bob"));
        let fx = Fx::new(users, vec![policy("never", vec![never_rule("never-30", 30, RuleAction::Suspend)])]);
        let plan = fx.plan();
        assert!(acts(&plan, "never").is_empty());
        assert!(
            plan.conditions
                .iter()
                .any(|c| c.message.contains("12 of 13 active or suspended accounts have no activity"))
        );
    }

    #[test]
    fn an_incomplete_listing_plans_nothing_destructive_and_sends_no_notice() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle()]);
        fx.policies.push(policy("warn", vec![with_leads(account_rule("idle-warn", 90, RuleAction::Suspend), &[14])]));
        fx.snapshot.incomplete = Some("page 3 failed".into());
        let plan = fx.plan();
        for p in &plan.policies {
            assert!(p.actions.iter().all(|a| !a.destructive));
            assert!(p.notices.is_empty());
            assert!(!p.applies);
        }
        assert!(plan.conditions.iter().any(|c| c.reason == "IncompleteListing" && c.message.contains("page 3 failed")));
    }

    #[test]
    fn a_snapshot_without_the_account_forgets_nobody_complete_or_not() {
        let mut fx = Fx::new(vec![user("bob")], vec![suspend_idle()]);
        fx.ledger.users.insert(
            "gone".into(),
            UserRecord {
                removed_groups: vec![RemovedGroup {
                    group_id: "g-jira".into(),
                    directory_id: String::new(),
                    product: Some(Product::JiraSoftware),
                    policy: "idle".into(),
                    rule: "r".into(),
                    at: ago(30),
                    last_active: None,
                }],
                ..Default::default()
            },
        );
        // Absent from a complete listing (a directory no longer read, a quiet empty page): kept.
        assert!(!fx.plan().ledger_updates.iter().any(|u| matches!(u, LedgerUpdate::Forget { .. })));
        fx.snapshot.incomplete = Some("x".into());
        assert!(!fx.plan().ledger_updates.iter().any(|u| matches!(u, LedgerUpdate::Forget { .. })));
    }
}
