//! The organization shapes Atlassian Cloud really has (issue 12): one account in two directories,
//! the same group name in both, products seatwarden does not model, API-only accounts, users
//! without an email, accounts of unknown type. Each test is one bullet of the issue.

use crate::policy::fixture::prelude::*;
use std::collections::BTreeSet;

use crate::product::ProductKey;

fn fx2(rows: Vec<DirectoryUser>, policies: Vec<LifecyclePolicy>) -> Fx {
    let mut fx = Fx::new(vec![], policies);
    fx.snapshot = two_directories(rows);
    fx
}

fn destructive(plan: &Plan, policy: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = plan
        .policy(policy)
        .unwrap()
        .actions
        .iter()
        .filter(|a| a.destructive)
        .map(|a| (a.account_id.clone(), a.kind.label().to_owned(), a.directory_id.clone()))
        .collect();
    v.sort();
    v
}

#[test]
fn an_account_idle_in_one_directory_and_active_in_the_other_is_active() {
    let fx = fx2(vec![idle("ann", 200), in_dir2(user("ann"))], vec![suspend_idle()]);
    let plan = fx.plan();
    assert!(destructive(&plan, "idle").is_empty(), "{:?}", plan.policy("idle").unwrap().actions);
    assert_eq!(plan.policy("idle").unwrap().in_scope, 1, "one account, not two entries");
}

#[test]
fn an_account_idle_everywhere_is_suspended_in_each_directory_and_counted_once() {
    let fx = fx2(vec![idle("ann", 200), in_dir2(idle("ann", 150)), user("bob")], vec![suspend_idle()]);
    let plan = fx.plan();
    assert_eq!(
        destructive(&plan, "idle"),
        vec![("ann".into(), "suspend".into(), "dir-1".into()), ("ann".into(), "suspend".into(), "dir-2".into())]
    );
    let p = plan.policy("idle").unwrap();
    assert_eq!(p.totals.users_acted_on, 1, "caps and totals count accounts");
    assert_eq!(p.totals.seats_freed.get(&Product::JiraSoftware), Some(&1), "one seat per account and product");
    // The reason names the latest activity over both directories (150 days), not the older one.
    assert!(p.actions[0].reason.contains("150 days"), "{}", p.actions[0].reason);
}

#[test]
fn deactivate_is_planned_once_per_account_whatever_the_directories() {
    let p = policy("deact", vec![account_rule("idle", 90, RuleAction::Deactivate)]);
    let fx = fx2(vec![idle("ann", 200), in_dir2(idle("ann", 200))], vec![p]);
    let plan = fx.plan();
    assert_eq!(destructive(&plan, "deact").len(), 1, "{:?}", destructive(&plan, "deact"));
}

#[test]
fn max_actions_per_run_counts_accounts_not_directory_entries() {
    let mut p = suspend_idle();
    p.spec.caps.max_actions_per_run = 1;
    let fx = fx2(vec![idle("ann", 300), in_dir2(idle("ann", 300)), idle("bob", 200)], vec![p]);
    let plan = fx.plan();
    let acted: BTreeSet<String> = destructive(&plan, "idle").into_iter().map(|a| a.0).collect();
    assert_eq!(acted, BTreeSet::from(["ann".to_owned()]), "ann (longest idle) in both directories, bob deferred");
    assert_eq!(plan.policy("idle").unwrap().deferred.len(), 1);
}

#[test]
fn a_protection_by_group_name_covers_the_same_named_group_in_every_directory() {
    let mut vip = in_dir2(idle("ann", 200));
    vip.groups.push(VIPS + DIR2);
    let mut fx = fx2(vec![idle("ann", 200), vip, idle("bob", 200)], vec![suspend_idle()]);
    fx.protections = vec![protection("vips", |s| s.groups = vec!["vips".into()])];
    let plan = fx.plan();
    let acted: BTreeSet<String> = destructive(&plan, "idle").into_iter().map(|a| a.0).collect();
    assert_eq!(acted, BTreeSet::from(["bob".to_owned()]), "ann is a vip in directory 2: protected everywhere");
}

#[test]
fn scope_exclusion_by_group_name_holds_in_every_directory() {
    let mut p = suspend_idle();
    p.spec.scope.exclude_groups = vec!["vips".into()];
    let mut carl = in_dir2(idle("carl", 200));
    carl.groups.push(VIPS + DIR2);
    let fx = fx2(vec![carl, idle("bob", 200)], vec![p]);
    let acted: Vec<String> = destructive(&fx.plan(), "idle").into_iter().map(|a| a.0).collect();
    assert_eq!(acted, vec!["bob".to_owned()]);
}

#[test]
fn activity_on_a_product_seatwarden_does_not_model_is_activity() {
    let mut loom = idle("loom-user", 300);
    loom.product_access.push(ProductActivity { product: ProductKey::from_api_key("loom"), last_active: Some(ago(1)) });
    let mut atlas = idle("atlas-user", 300);
    atlas.product_access.clear();
    atlas
        .product_access
        .push(ProductActivity { product: ProductKey::from_api_key("townsquare"), last_active: Some(ago(2)) });
    let never = policy("never", vec![never_rule("never-30", 30, RuleAction::RemoveFromDirectory)]);
    let fx = Fx::new(vec![loom, atlas, idle("bob", 300)], vec![suspend_idle(), never]);
    let plan = fx.plan();
    let acted: Vec<String> = destructive(&plan, "idle").into_iter().map(|a| a.0).collect();
    assert_eq!(acted, vec!["bob".to_owned()], "Loom yesterday, Atlas two days ago: both active");
    assert!(destructive(&plan, "never").is_empty(), "active on an unmodelled product is not never-active");
    // Per-product rules act only on the product they name: Jira idle loses Jira, Loom is untouched.
    let mut jira_loom = idle("jl", 300);
    jira_loom.product_access.push(ProductActivity { product: ProductKey::from_api_key("loom"), last_active: None });
    let fx = Fx::new(vec![jira_loom], vec![jira_idle()]);
    let kinds: Vec<String> = destructive(&fx.plan(), "jira").into_iter().map(|a| a.1).collect();
    assert_eq!(kinds, vec!["remove-group".to_owned()]);
}

#[test]
fn plans_name_the_unmodelled_product_that_saves_someone_or_that_the_rule_saw() {
    // Idle 300 days on Jira, on Loom yesterday: saved, and the plan says by what.
    let mut loom = idle("loom-user", 300);
    loom.product_access.push(ProductActivity { product: ProductKey::from_api_key("loom"), last_active: Some(ago(1)) });
    // Only ever on Atlas: not never active, and the plan says so.
    let mut atlas = idle("atlas-user", 300);
    atlas.product_access =
        vec![ProductActivity { product: ProductKey::from_api_key("townsquare"), last_active: Some(ago(5)) }];
    // Idle everywhere, Rovo the latest (200 days ago): acted on, and the reason names Rovo.
    let mut rovo = idle("rovo-user", 300);
    rovo.product_access
        .push(ProductActivity { product: ProductKey::from_api_key("rovo"), last_active: Some(ago(200)) });
    let never = policy("never", vec![never_rule("never-30", 30, RuleAction::Suspend)]);
    let fx = Fx::new(vec![loom, atlas, rovo, user("bob")], vec![suspend_idle(), never]);
    let plan = fx.plan();
    let skipped = |policy: &str, id: &str| {
        plan.policy(policy)
            .unwrap()
            .skipped
            .iter()
            .find(|s| s.account_id == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} skipped by {policy}"))
    };
    let s = skipped("idle", "loom-user");
    assert_eq!(s.kind, SkipKind::UnmodelledProductActive);
    assert!(s.why.contains("active on loom 2026-11-24"), "{}", s.why);
    let s = skipped("idle", "atlas-user");
    assert!(s.why.contains("active on townsquare"), "{}", s.why);
    let s = skipped("never", "atlas-user");
    assert_eq!(s.kind, SkipKind::UnmodelledProductActive);
    let acted = plan.policy("idle").unwrap().actions.iter().find(|a| a.account_id == "rovo-user").expect("acted on");
    assert!(
        acted.reason.contains("no activity on any product for 200 days (threshold 90); last active on rovo"),
        "{}",
        acted.reason
    );
    // A modelled product as the latest activity adds nothing to the words.
    let fx = Fx::new(vec![idle("jira-user", 300), user("bob")], vec![suspend_idle()]);
    let plan = fx.plan();
    assert!(!plan.policy("idle").unwrap().actions[0].reason.contains("last active on"));
}

#[test]
fn an_api_token_used_recently_saves_the_account_and_says_so() {
    let mut bot = idle("ci-bot", 300);
    let mut fx = Fx::new(vec![idle("bob", 300)], vec![suspend_idle()]);
    bot.groups = vec![JIRA_USERS];
    fx.snapshot = snapshot(vec![bot, idle("bob", 300)]);
    fx.snapshot.accounts.iter_mut().find(|a| a.account_id == "ci-bot").unwrap().api_token_last_active = Some(ago(1));
    let plan = fx.plan();
    let acted: Vec<String> = destructive(&plan, "idle").into_iter().map(|a| a.0).collect();
    assert_eq!(acted, vec!["bob".to_owned()]);
    let saved = plan.policy("idle").unwrap().skipped.iter().find(|s| s.account_id == "ci-bot").unwrap();
    assert_eq!(saved.kind, SkipKind::ApiTokenActive);
    assert!(saved.why.contains("API token"), "{}", saved.why);
}

#[test]
fn a_refused_token_read_is_a_condition_and_rules_keep_working() {
    let mut fx = Fx::new(vec![idle("bob", 300)], vec![suspend_idle()]);
    fx.snapshot.api_tokens = ApiTokenActivity::Refused { reason: "HTTP 403".into() };
    let plan = fx.plan();
    assert!(plan.conditions.iter().any(|c| c.reason == "ApiTokenActivityUnknown"));
    let p = plan.policy("idle").unwrap();
    assert!(p.conditions.iter().any(|c| c.reason == "ApiTokenActivityUnknown"), "{:?}", p.conditions);
    assert_eq!(destructive(&plan, "idle").len(), 1, "product activity still judges");
}

#[test]
fn users_without_an_email_are_not_acted_on_by_rules_that_warn_first() {
    let mut nomail = idle("nomail", 300);
    nomail.email = None;
    let warned = policy("warned", vec![with_leads(account_rule("idle", 90, RuleAction::Suspend), &[7])]);
    let fx = Fx::new(vec![nomail.clone(), idle("bob", 300)], vec![warned]);
    let plan = fx.plan();
    let p = plan.policy("warned").unwrap();
    assert!(p.notices.iter().all(|n| n.account_id != "nomail") && p.actions.iter().all(|a| a.account_id != "nomail"));
    assert_eq!(p.skipped_counts.get(&SkipKind::NoEmail), Some(&1));
    assert!(p.conditions.iter().any(|c| c.reason == "UsersWithoutEmail" && c.message.starts_with("1 user")));
    // Without lead times there is nothing to warn about: the rule acts.
    let fx = Fx::new(vec![nomail], vec![suspend_idle()]);
    assert_eq!(destructive(&fx.plan(), "idle").len(), 1);
}

#[test]
fn an_account_of_unknown_type_is_never_acted_on() {
    let mut odd = idle("odd", 300);
    odd.account_type = AccountType::Unknown;
    let fx = Fx::new(vec![odd, idle("bob", 300)], vec![suspend_idle()]);
    let plan = fx.plan();
    let acted: Vec<String> = destructive(&plan, "idle").into_iter().map(|a| a.0).collect();
    assert_eq!(acted, vec!["bob".to_owned()]);
    assert_eq!(plan.policy("idle").unwrap().skipped_counts.get(&SkipKind::UnknownAccountType), Some(&1));
}

#[test]
fn rows_of_one_account_that_disagree_on_its_type_make_it_unknown() {
    let mut app = in_dir2(idle("ann", 300));
    app.account_type = AccountType::App;
    let s = two_directories(vec![idle("ann", 300), app]);
    assert_eq!(s.account("ann").unwrap().account_type, AccountType::Unknown);
}
