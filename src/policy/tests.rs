//! Unit tests of the planner: every rule kind and every safety invariant, without I/O.

use std::collections::BTreeMap;

use crate::crd::*;
use crate::ledger::{
    Ledger, LedgerUpdate, NoticeRecord, Outcome, RemovedGroup, Suspension, TakenOut, TakenOutKind, UserRecord,
};
use crate::product::Product;
use crate::snapshot::*;

use super::fixture::*;
use super::*;

fn suspend_idle() -> LifecyclePolicy {
    policy("idle", vec![account_rule("idle-90", 90, RuleAction::Suspend)])
}

fn jira_idle() -> LifecyclePolicy {
    policy("jira", vec![product_rule("jira-60", Product::JiraSoftware, 60)])
}

fn skipped_kinds(plan: &Plan, policy: &str) -> Vec<(String, SkipKind)> {
    plan.policy(policy).unwrap().skipped.iter().map(|s| (s.account_id.clone(), s.kind)).collect()
}

// ---- rule kinds -------------------------------------------------------------------------------

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
            UserRecord { suspension: Some(Suspension { since: ago(days), by_seatwarden: by }), ..Default::default() },
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
    assert!(plan.ledger_updates.contains(&LedgerUpdate::SuspensionSeen { account_id: "s-unknown".into(), at: now() }));
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
    assert_eq!(held[0].rule, "idle-90");
    assert!(held[0].why.contains("rule jira-60 of this policy comes first"), "{}", held[0].why);
}

// ---- invariant 1: who is never acted on ------------------------------------------------------

#[test]
fn protected_users_are_never_acted_on_by_any_match_kind() {
    let users = vec![
        idle("by-id", 200),
        idle("by-email", 200),
        idle("by-pattern", 200),
        idle("by-group", 200),
        idle("plain", 200),
    ];
    let mut fx = Fx::new(users, vec![suspend_idle()]);
    fx.snapshot.accounts.iter_mut().find(|u| u.account_id == "by-group").unwrap().memberships[0].groups.push(VIPS);
    fx.snapshot.accounts.iter_mut().find(|u| u.account_id == "by-email").unwrap().email =
        Some("By.Email@ACME.test".into());
    fx.snapshot.accounts.iter_mut().find(|u| u.account_id == "by-pattern").unwrap().email =
        Some("svc-build@acme.test".into());
    fx.protections = vec![
        protection("ids", |s| s.account_ids = vec!["by-id".into()]),
        protection("emails", |s| s.emails = vec!["by.email@acme.test".into()]),
        protection("patterns", |s| s.email_patterns = vec!["svc-*@ACME.test".into()]),
        protection("groups", |s| s.groups = vec!["vips".into()]),
    ];
    let plan = fx.plan();
    assert_eq!(acts(&plan, "idle"), vec![pair("plain", "suspend")]);
    let p = plan.policy("idle").unwrap();
    assert_eq!(p.skipped_counts.get(&SkipKind::Protected), Some(&4));
    let by_id = p.skipped.iter().find(|s| s.account_id == "by-id").unwrap();
    assert_eq!(by_id.why, "protected by ProtectedUser ids: ids reason");
    assert_eq!(by_id.rule.as_deref(), Some("idle-90"));
}

#[test]
fn an_expired_protection_no_longer_protects_and_a_live_one_does() {
    let mut fx = Fx::new(vec![idle("leaver", 200), idle("on-leave", 200), user("bob")], vec![suspend_idle()]);
    fx.protections = vec![
        protection("expired", |s| {
            s.account_ids = vec!["leaver".into()];
            s.expires_at = Some(time(ago(1)));
        }),
        protection("leave", |s| {
            s.account_ids = vec!["on-leave".into()];
            s.expires_at = Some(time(ago(-30)));
        }),
    ];
    let plan = fx.plan();
    assert_eq!(acts(&plan, "idle"), vec![pair("leaver", "suspend")]);
    let why = &plan.policy("idle").unwrap().skipped[0].why;
    assert!(why.contains("(until 2026-12-25)"), "{why}");
}

#[test]
fn a_protection_limited_to_some_policies_covers_only_those() {
    let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle(), jira_idle()]);
    fx.protections = vec![protection("only-jira", |s| {
        s.account_ids = vec!["alice".into()];
        s.policies = vec!["jira".into()];
    })];
    fx.policies[0].spec.rules[0].action = RuleAction::Suspend;
    let plan = fx.plan();
    assert!(acts(&plan, "jira").is_empty());
    // The gentler group removal would have won; with it protected, the suspension applies.
    assert_eq!(acts(&plan, "idle"), vec![pair("alice", "suspend")]);
}

#[test]
fn admins_api_key_owner_apps_and_customers_are_never_acted_on() {
    let mut org_admin = idle("org-admin", 300);
    org_admin.org_admin = true;
    let mut site_admin = idle("site-admin", 300);
    site_admin.site_admin = true;
    let mut via_group = idle("admin-group", 300);
    via_group.groups.push(SITE_ADMINS);
    let key = idle("key-owner", 300);
    let mut app = idle("app-bot", 300);
    app.account_type = AccountType::App;
    let mut customer = idle("customer", 300);
    customer.account_type = AccountType::Customer;
    let mut fx = Fx::new(vec![org_admin, site_admin, via_group, key, app, customer, user("bob")], vec![suspend_idle()]);
    fx.snapshot.api_key_owner = Some("key-owner".into());
    let plan = fx.plan();
    let p = plan.policy("idle").unwrap();
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(p.notices.is_empty());
    for (kind, n) in [
        (SkipKind::OrgAdmin, 1),
        (SkipKind::SiteAdmin, 2),
        (SkipKind::ApiKeyOwner, 1),
        (SkipKind::AppAccount, 1),
        (SkipKind::CustomerAccount, 1),
    ] {
        assert_eq!(p.skipped_counts.get(&kind), Some(&n), "{kind:?}");
    }
    // Apps and customers aren't people the percentage is taken of.
    assert_eq!(p.in_scope, 5);
}

#[test]
fn an_admin_in_one_directory_is_guarded_in_every_directory() {
    let mut a1 = idle("dual", 300);
    a1.org_admin = true;
    let mut a2 = idle("dual", 300);
    a2.directory = 1;
    let mut fx = Fx::new(vec![a1, a2, user("bob")], vec![suspend_idle()]);
    fx.snapshot.directories.push(DirectoryInfo { id: "dir-2".into(), name: "Second".into() });
    assert!(fx.plan().policy("idle").unwrap().actions.is_empty());
}

#[test]
fn new_accounts_inside_the_grace_period_are_left_alone() {
    let mut fresh = user("fresh");
    fresh.status = UserStatus::InvitedNeverActive;
    fresh.product_access[0].last_active = None;
    fresh.added_to_org = Some(ago(5));
    let mut unknown = fresh.clone();
    unknown.account_id = "unknown-date".into();
    unknown.added_to_org = None;
    let fx = Fx::new(
        vec![fresh, unknown, user("bob")],
        vec![policy("never", vec![never_rule("never-0", 0, RuleAction::Suspend)])],
    );
    let plan = fx.plan();
    assert!(acts(&plan, "never").is_empty());
    let p = plan.policy("never").unwrap();
    assert_eq!(p.skipped_counts.get(&SkipKind::GracePeriod), Some(&2));
    assert!(p.skipped.iter().any(|s| s.account_id == "fresh" && s.why.contains("grace period (14d) until 2026-12-04")));
    // A user whose date added is unknown is first seen now, and the grace period runs from then.
    assert!(plan.ledger_updates.contains(&LedgerUpdate::FirstSeen { account_id: "unknown-date".into(), at: now() }));
}

// ---- invariant 2: missing data ----------------------------------------------------------------

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
        idle_conditions.iter().any(|c| c.reason == "RuleLimited" && c.message.contains("skips users with Jira access"))
    );
}

#[test]
fn an_implausible_share_of_missing_product_dates_switches_the_product_off() {
    // 11 active users with Jira access, all but one without a Jira date: that's missing data.
    let mut users: Vec<DirectoryUser> = (0..10)
        .map(|i| {
            let mut u = user(&format!("u{i}"));
            u.product_access[0].last_active = None;
            u.product_access.push(ProductActivity { product: Product::Confluence.into(), last_active: Some(ago(1)) });
            u
        })
        .collect();
    users.push(idle("alice", 200));
    let plan = Fx::new(users, vec![jira_idle()]).plan();
    assert!(acts(&plan, "jira").is_empty());
    assert!(plan.conditions.iter().any(|c| c.reason == "ImplausibleActivityData" && c.message.starts_with("10 of 11")));
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
        plan.conditions.iter().any(|c| c.message.contains("12 of 13 active or suspended accounts have no activity"))
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
fn an_incomplete_listing_forgets_nobody() {
    let mut fx = Fx::new(vec![user("bob")], vec![suspend_idle()]);
    fx.ledger.users.insert("gone".into(), UserRecord { first_seen: Some(ago(10)), ..Default::default() });
    assert!(fx.plan().ledger_updates.contains(&LedgerUpdate::Forget { account_id: "gone".into() }));
    fx.snapshot.incomplete = Some("x".into());
    assert!(!fx.plan().ledger_updates.iter().any(|u| matches!(u, LedgerUpdate::Forget { .. })));
}

// ---- invariant 9: the lag margin --------------------------------------------------------------

#[test]
fn the_activity_lag_margin_is_added_to_every_threshold() {
    let mut inside = user("inside");
    inside.product_access[0].last_active = Some(ago_secs(90 * DAY + 12 * 3600)); // 90.5 days
    let mut past = user("past");
    past.product_access[0].last_active = Some(ago_secs(91 * DAY + 1));
    let plan = Fx::new(vec![inside, past, user("bob")], vec![suspend_idle()]).plan();
    assert_eq!(acts(&plan, "idle"), vec![pair("past", "suspend")]);
}

// ---- invariant 3: caps ------------------------------------------------------------------------

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

// ---- invariant 4: notice before action --------------------------------------------------------

fn warn_policy() -> LifecyclePolicy {
    policy("warn", vec![with_leads(account_rule("idle-90", 90, RuleAction::Suspend), &[14])])
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
    fx.ledger.users.insert(
        "alice".into(),
        UserRecord {
            notices: vec![NoticeRecord {
                policy: "warn".into(),
                rule: "idle-90".into(),
                lead_time: Duration::from_days(14),
                action: Some(RuleAction::Suspend),
                product: None,
                delivered_at: ago(150),
            }],
            ..Default::default()
        },
    );
    let p = fx.plan();
    assert!(p.policy("warn").unwrap().actions.is_empty());
    assert_eq!(p.policy("warn").unwrap().notices.len(), 1);
    assert!(
        p.ledger_updates
            .iter()
            .any(|u| matches!(u, LedgerUpdate::NoticesStale { account_id, .. } if account_id == "alice"))
    );
}

// ---- invariant 7: identity provider ---------------------------------------------------------

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

// ---- invariant 6: DryRun ------------------------------------------------------------------------

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

// ---- conflicts ------------------------------------------------------------------------------------

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

// ---- reactivation ---------------------------------------------------------------------------------

fn reactivating(mut p: LifecyclePolicy) -> LifecyclePolicy {
    p.spec.reactivation = Some(Reactivation {
        on_activity: true,
        opt_in_groups: vec!["request-access".into()],
        account_ids: vec![],
        restore_suspended: true,
    });
    p
}

fn removed(group_id: &str, policy: &str, days_ago: i64) -> RemovedGroup {
    RemovedGroup {
        group_id: group_id.into(),
        product: None,
        policy: policy.into(),
        rule: "jira-60".into(),
        at: ago(days_ago),
        last_active: None,
    }
}

#[test]
fn a_returning_user_gets_back_exactly_the_groups_seatwarden_removed() {
    let mut back = user("back"); // active 5 days ago
    back.groups = vec![]; // out of jira-users and jira-extra
    let mut still_idle = idle("still-idle", 100);
    still_idle.groups = vec![];
    let mut fx = Fx::new(vec![back, still_idle, user("bob")], vec![reactivating(jira_idle())]);
    fx.ledger.users.insert(
        "back".into(),
        UserRecord {
            removed_groups: vec![removed("g-jira", "jira", 20), removed("g-jira-extra", "jira", 20)],
            ..Default::default()
        },
    );
    fx.ledger.users.insert(
        "still-idle".into(),
        UserRecord { removed_groups: vec![removed("g-jira", "jira", 20)], ..Default::default() },
    );
    let plan = fx.plan();
    assert_eq!(acts(&plan, "jira"), vec![pair("back", "add-group:g-jira"), pair("back", "add-group:g-jira-extra")]);
    let a = &plan.policy("jira").unwrap().actions[0];
    assert!(!a.destructive);
    assert_eq!(a.rule, "reactivation");
    assert!(
        a.reason.starts_with("active again on 2026-11-20 after seatwarden took access on 2026-11-05"),
        "{}",
        a.reason
    );
    // Back in jira-users takes a Jira seat again (once).
    assert_eq!(plan.totals.seats_added, BTreeMap::new()); // she still had Jira access listed: no new seat
}

#[test]
fn a_suspended_user_is_restored_through_the_opt_in_group_or_an_admin_only() {
    let mut via_group = user("via-group");
    via_group.status = UserStatus::Suspended;
    via_group.groups.push(OPT_IN);
    let mut named = user("named");
    named.status = UserStatus::Suspended;
    let mut neither = user("neither");
    neither.status = UserStatus::Suspended;
    let mut p = reactivating(suspend_idle());
    p.spec.reactivation.as_mut().unwrap().account_ids = vec!["named".into()];
    let mut fx = Fx::new(vec![via_group, named, neither, user("bob")], vec![p]);
    for id in ["via-group", "named", "neither"] {
        fx.ledger.users.insert(
            id.into(),
            UserRecord {
                suspension: Some(Suspension { since: ago(30), by_seatwarden: true }),
                taken_out: vec![TakenOut {
                    kind: TakenOutKind::Suspended,
                    policy: "idle".into(),
                    rule: "idle-90".into(),
                    at: ago(30),
                }],
                ..Default::default()
            },
        );
    }
    let plan = fx.plan();
    assert_eq!(acts(&plan, "idle"), vec![pair("named", "restore"), pair("via-group", "restore")]);
    let restore = &plan.policy("idle").unwrap().actions[1];
    assert!(restore.reason.starts_with("joined opt-in group request-access"));
    assert_eq!(restore.seats, BTreeMap::from([(Product::JiraSoftware, -1)]));
    assert_eq!(plan.totals.seats_added, BTreeMap::from([(Product::JiraSoftware, 2)]));
}

#[test]
fn someone_elses_suspension_is_not_restored() {
    let mut s = user("s");
    s.status = UserStatus::Suspended;
    s.groups.push(OPT_IN);
    let mut fx = Fx::new(vec![s, user("bob")], vec![reactivating(suspend_idle())]);
    fx.ledger.users.insert(
        "s".into(),
        UserRecord { suspension: Some(Suspension { since: ago(30), by_seatwarden: false }), ..Default::default() },
    );
    assert!(fx.plan().policy("idle").unwrap().actions.is_empty());
}

#[test]
fn opted_in_users_are_not_taken_out() {
    let mut asking = idle("asking", 200);
    asking.groups.push(OPT_IN);
    let plan = Fx::new(vec![asking, user("bob")], vec![reactivating(suspend_idle())]).plan();
    assert!(plan.policy("idle").unwrap().actions.is_empty());
    assert_eq!(skipped_kinds(&plan, "idle"), vec![("asking".into(), SkipKind::OptedIn)]);
}

#[test]
fn a_user_removed_from_the_directory_is_reinvited_when_an_admin_names_them() {
    let mut p = reactivating(policy("never", vec![never_rule("never-60", 60, RuleAction::RemoveFromDirectory)]));
    p.spec.reactivation.as_mut().unwrap().account_ids = vec!["gone".into()];
    let mut fx = Fx::new(vec![user("bob")], vec![p]);
    fx.ledger.users.insert(
        "gone".into(),
        UserRecord {
            email: Some("gone@acme.test".into()),
            taken_out: vec![TakenOut {
                kind: TakenOutKind::RemovedFromDirectory,
                policy: "never".into(),
                rule: "never-60".into(),
                at: ago(3),
            }],
            removed_groups: vec![removed("g-jira", "never", 3)],
            ..Default::default()
        },
    );
    let plan = fx.plan();
    assert_eq!(acts(&plan, "never"), vec![pair("gone", "invite")]);
    assert_eq!(plan.policy("never").unwrap().actions[0].email.as_deref(), Some("gone@acme.test"));
    // ... and is not forgotten while away.
    assert!(!plan.ledger_updates.iter().any(|u| matches!(u, LedgerUpdate::Forget { .. })));
    // A protection still applies to someone who isn't in the directory.
    fx.protections = vec![protection("gone-is-protected", |s| s.email_patterns = vec!["gone@*".into()])];
    let plan = fx.plan();
    assert!(acts(&plan, "never").is_empty());
    assert!(plan.policy("never").unwrap().conditions.iter().any(|c| c.reason == "Protected"));
}

// ---- onboarding -----------------------------------------------------------------------------------

fn onboarding_policy(cap: Option<i32>) -> LifecyclePolicy {
    let mut p = policy("onboard", vec![]);
    p.spec.onboarding = vec![Onboarding {
        name: "confluence-for-all".into(),
        selector: OnboardingSelector { email_domains: vec!["acme.test".into()], groups: vec![], account_types: vec![] },
        groups: vec!["confluence-users".into()],
        seat_cap: cap,
    }];
    p
}

#[test]
fn onboarding_adds_missing_groups_within_the_seat_cap() {
    let mut has = user("has");
    has.groups.push(CONFLUENCE_USERS);
    let mut other_domain = user("other");
    other_domain.email = Some("other@elsewhere.test".into());
    let plan =
        Fx::new(vec![user("a"), user("b"), user("c"), has, other_domain], vec![onboarding_policy(Some(2))]).plan();
    assert_eq!(acts(&plan, "onboard"), vec![pair("a", "add-group:g-conf"), pair("b", "add-group:g-conf")]);
    let p = plan.policy("onboard").unwrap();
    assert_eq!(p.deferred.len(), 1);
    assert!(p.deferred[0].why.contains("seat cap 2"));
    assert_eq!(p.actions[0].seats, BTreeMap::from([(Product::Confluence, -1)]));
    assert_eq!(p.totals.onboardings, 2);
    // Confluence seats cost 5.00 through the mapping's override: onboarding costs 10/month.
    assert_eq!(p.totals.savings.projected_monthly, -10.0);
}

#[test]
fn onboarding_never_re_adds_someone_seatwarden_took_out() {
    let mut fx = Fx::new(vec![user("taken"), user("fresh")], vec![onboarding_policy(None)]);
    fx.ledger.users.insert(
        "taken".into(),
        UserRecord { removed_groups: vec![removed("g-conf", "other", 10)], ..Default::default() },
    );
    let plan = fx.plan();
    assert_eq!(acts(&plan, "onboard"), vec![pair("fresh", "add-group:g-conf")]);
    assert!(plan.policy("onboard").unwrap().skipped[0].why.contains("not onboarded again until they return"));
}

// ---- savings ----------------------------------------------------------------------------------------

#[test]
fn savings_use_billing_prices_mapping_overrides_and_the_next_cycle() {
    let mut both = idle("both", 200);
    both.product_access.push(ProductActivity { product: Product::Confluence.into(), last_active: Some(ago(200)) });
    both.groups.push(CONFLUENCE_USERS);
    let mut suspended = idle("suspended", 200);
    suspended.status = UserStatus::Suspended;
    let plan = Fx::new(vec![both, suspended, idle("jira-only", 200), user("bob")], vec![suspend_idle()]).plan();
    let t = &plan.totals;
    // The suspended user isn't billed and isn't suspended again.
    assert_eq!(t.seats_freed, BTreeMap::from([(Product::JiraSoftware, 2), (Product::Confluence, 1)]));
    // Jira 2 × 8.00 (billing) + Confluence 1 × 5.00 (mapping override of confluence-users).
    assert_eq!(t.savings.projected_monthly, 21.0);
    assert_eq!(t.savings.by_product.get(&Product::Confluence), Some(&5.0));
    assert_eq!(t.savings.currency.as_deref(), Some("USD"));
    assert_eq!(t.savings.realized_from, Some("2026-12-10".parse().unwrap()));
}

#[test]
fn annual_plans_realize_at_renewal_and_missing_prices_are_reported() {
    let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle()]);
    let billing = fx.org.spec.billing.as_mut().unwrap();
    billing.cycle = BillingCycle::Annual;
    billing.renewal_date = Some("2025-03-01".into());
    billing.seat_prices.clear();
    let plan = fx.plan();
    assert_eq!(plan.totals.savings.realized_from, Some("2027-03-01".parse().unwrap()));
    assert_eq!(plan.totals.savings.unpriced_products, vec![Product::JiraSoftware]);
    assert_eq!(plan.totals.savings.projected_monthly, 0.0);
}

// ---- ledger interplay -----------------------------------------------------------------------------

#[test]
fn in_flight_writes_are_settled_from_the_snapshot() {
    let mut done = idle("done", 200);
    done.status = UserStatus::Suspended;
    let mut fx = Fx::new(vec![done, idle("pending", 200), user("bob")], vec![suspend_idle()]);
    let mut first = Fx::new(vec![idle("done", 200), idle("pending", 200), user("bob")], vec![suspend_idle()]).plan();
    for a in &first.policies[0].actions {
        fx.ledger.record_intended(a, "run-1", ago(1));
    }
    let plan = fx.plan();
    assert!(
        plan.ledger_updates
            .contains(&LedgerUpdate::InFlightApplied { account_id: "done".into(), kind: ActionKind::Suspend })
    );
    assert!(
        plan.ledger_updates
            .contains(&LedgerUpdate::InFlightNotApplied { account_id: "pending".into(), kind: ActionKind::Suspend })
    );
    // The pending one is planned again; the done one is not.
    assert_eq!(acts(&plan, "idle"), vec![pair("pending", "suspend")]);
    let mut ledger = fx.ledger.clone();
    ledger.apply_updates(&plan.ledger_updates);
    assert!(ledger.record("done").unwrap().suspension.as_ref().unwrap().by_seatwarden);
    assert!(ledger.record("pending").is_none_or(|r| r.in_flight.is_empty()));
    first.policies.clear();
}

#[test]
fn applied_outcomes_feed_reactivation_and_escalation() {
    let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![reactivating(jira_idle())]);
    let plan = fx.plan();
    let action = plan.policy("jira").unwrap().actions[0].clone();
    fx.ledger.record_intended(&action, "run-1", now());
    fx.ledger.record_outcome(&action, Outcome::Applied, now());
    let rec = fx.ledger.record("alice").unwrap();
    assert_eq!(rec.removed_groups.len(), 1);
    assert_eq!(rec.removed_groups[0].group_id, "g-jira");
    assert_eq!(rec.removed_groups[0].product, Some(Product::JiraSoftware));
    assert!(rec.in_flight.is_empty());
}

// ---- recheck (invariant 9) ----------------------------------------------------------------------------

#[test]
fn recheck_drops_an_action_when_the_user_changed() {
    let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle(), jira_idle()]);
    fx.policies.remove(1);
    let plan = fx.plan();
    let action = &plan.policy("idle").unwrap().actions[0];
    let input = fx.input();
    let same = row(&fx.snapshot, "alice");
    assert_eq!(recheck(&input, action, &same), Recheck::Proceed);

    let mut active = same.clone();
    active.product_access[0].last_active = Some(now());
    assert_eq!(recheck(&input, action, &active), Recheck::Drop("active since the plan".into()));

    let mut admin = same.clone();
    admin.org_admin = true;
    assert!(matches!(recheck(&input, action, &admin), Recheck::Drop(_)));

    let mut suspended = same.clone();
    suspended.status = UserStatus::Suspended;
    assert_eq!(recheck(&input, action, &suspended), Recheck::Drop("status changed from active to suspended".into()));

    let mut vip = same.clone();
    vip.groups.push(VIPS);
    let mut fx2 = Fx::new(vec![], vec![]);
    std::mem::swap(&mut fx2.snapshot, &mut fx.snapshot);
    fx2.policies = fx.policies.clone();
    fx2.protections = vec![protection("vips", |s| s.groups = vec!["vips".into()])];
    assert_eq!(recheck(&fx2.input(), action, &vip), Recheck::Drop("protected by ProtectedUser vips now".into()));

    let mut synced = same;
    synced.management_source = ManagementSource::Synced;
    assert!(matches!(recheck(&fx2.input(), action, &synced), Recheck::Drop(_)));
}

#[test]
fn recheck_of_a_group_removal_looks_at_that_product_and_membership() {
    let fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![jira_idle()]);
    let plan = fx.plan();
    let action = &plan.policy("jira").unwrap().actions[0];
    let mut alice = row(&fx.snapshot, "alice");
    // Activity on another product doesn't save the Jira seat.
    alice.product_access.push(ProductActivity { product: Product::Confluence.into(), last_active: Some(now()) });
    assert_eq!(recheck(&fx.input(), action, &alice), Recheck::Proceed);
    alice.product_access[0].last_active = Some(now());
    assert_eq!(recheck(&fx.input(), action, &alice), Recheck::Drop("active on Jira since the plan".into()));
    let mut left = row(&fx.snapshot, "alice");
    left.groups.clear();
    assert_eq!(recheck(&fx.input(), action, &left), Recheck::Drop("no longer in the group".into()));
}

// ---- rendering -----------------------------------------------------------------------------------------

#[test]
fn text_and_markdown_show_policies_modes_actions_and_totals() {
    let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle()]);
    fx.policies[0].spec.mode = PolicyMode::DryRun;
    let plan = fx.plan();
    let text = to_text(&plan);
    assert!(text.contains("policy idle [DryRun]"), "{text}");
    assert!(
        text.contains("suspend alice <alice@acme.test>: no activity on any product for 200 days (threshold 90)"),
        "{text}"
    );
    assert!(text.contains("projected monthly savings: 8.00 USD"), "{text}");
    let md = to_markdown(&plan);
    assert!(md.contains("| idle-90 | suspend | `alice` |"), "{md}");
    let json = to_json(&plan);
    let a = &json["actions"][0];
    assert_eq!(a["accountId"], "alice");
    assert_eq!(a["action"], "suspend");
    assert_eq!(a["rule"], "idle-90");
    assert_eq!(a["policy"], "idle");
    assert_eq!(a["mode"], "DryRun");
    assert_eq!(a["seats"]["jira-software"], 1);
    assert_eq!(a["reason"], "no activity on any product for 200 days (threshold 90)");
    assert_eq!(json["totals"]["seatsFreed"]["JiraSoftware"], 1);
}

#[test]
fn unresolved_exclusions_and_protection_groups_halt_rather_than_act() {
    let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle()]);
    fx.policies[0].spec.scope.exclude_groups = vec!["no-such-group".into()];
    let p = fx.plan();
    assert_eq!(p.policy("idle").unwrap().halt.as_ref().unwrap().reason, "UnresolvedGroup");
    assert!(!p.policy("idle").unwrap().applies);
    fx.policies[0].spec.scope.exclude_groups.clear();
    fx.protections = vec![protection("typo", |s| s.groups = vec!["vipz".into()])];
    let p = fx.plan();
    assert!(p.policy("idle").unwrap().halt.as_ref().unwrap().message.contains("ProtectedUser typo group vipz"));
    assert!(p.conditions.iter().any(|c| c.reason == "UnresolvedProtection"));
}

#[test]
fn scope_filters_account_types_groups_and_domains() {
    let mut ext = idle("ext", 200);
    ext.managed = false;
    let mut partner = idle("partner", 200);
    partner.email = Some("p@sub.partner.test".into());
    let mut vip = idle("vip", 200);
    vip.groups.push(VIPS);
    let mut conf_only = idle("conf-only", 200);
    conf_only.groups = vec![CONFLUENCE_USERS];
    let mut p = suspend_idle();
    p.spec.scope = Scope {
        account_types: vec![AccountScope::Managed],
        include_groups: vec!["jira-users".into()],
        exclude_groups: vec!["vips".into()],
        include_email_domains: vec![],
        exclude_email_domains: vec!["partner.test".into()],
    };
    let plan = Fx::new(vec![ext, partner, vip, conf_only, idle("in", 200), user("bob")], vec![p]).plan();
    assert_eq!(acts(&plan, "idle"), vec![pair("in", "suspend")]);
    assert_eq!(plan.policy("idle").unwrap().in_scope, 2);
    let mut p = suspend_idle();
    p.spec.scope.include_email_domains = vec!["partner.test".into()];
    let mut partner = idle("partner", 200);
    partner.email = Some("p@sub.partner.test".into());
    let plan = Fx::new(vec![partner, idle("in", 200), user("bob")], vec![p]).plan();
    assert_eq!(acts(&plan, "idle"), vec![pair("partner", "suspend")]);
}

#[test]
fn glob_patterns_match_like_people_expect() {
    use super::matching::glob_matches;
    assert!(glob_matches("svc-*@example.com", "svc-build@example.com"));
    assert!(glob_matches("svc-*@example.com", "SVC-@EXAMPLE.COM"));
    assert!(glob_matches("?@x", "a@x"));
    assert!(!glob_matches("?@x", "ab@x"));
    assert!(glob_matches("*", ""));
    assert!(glob_matches("a*b*c", "a-xx-b-yy-c"));
    assert!(!glob_matches("a*b*c", "a-xx-c-yy-b"));
    assert!(!glob_matches("svc-*@example.com", "svc-build@example.com.evil"));
}

#[test]
fn ledger_updates_describe_what_the_org_shows() {
    let mut back = user("back");
    back.status = UserStatus::Active;
    let mut fx = Fx::new(vec![back, user("bob")], vec![suspend_idle()]);
    fx.ledger.users.insert(
        "back".into(),
        UserRecord { suspension: Some(Suspension { since: ago(9), by_seatwarden: false }), ..Default::default() },
    );
    let plan = fx.plan();
    assert!(plan.ledger_updates.contains(&LedgerUpdate::SuspensionEnded { account_id: "back".into() }));
    let mut l: Ledger = fx.ledger.clone();
    l.apply_updates(&plan.ledger_updates);
    assert!(l.record("back").is_none(), "nothing left to remember");
}

#[test]
fn a_group_the_snapshot_says_grants_the_product_keeps_the_seat() {
    let mut alice = idle("alice", 94);
    alice.groups = vec![JIRA_USERS, VIPS];
    let mut fx = Fx::new(vec![alice, user("bob")], vec![jira_idle()]);
    fx.snapshot.groups[VIPS as usize].grants = vec![Product::JiraSoftware];
    // By default such a removal is reported instead (see semantics_tests); the option removes.
    fx.policies[0].spec.remove_when_no_seat_freed = true;
    let plan = fx.plan();
    // vips isn't a mapped licensed group: it's not removed, and it keeps Alice's Jira seat.
    assert_eq!(acts(&plan, "jira"), vec![pair("alice", "remove-group:g-jira")]);
    let a = &plan.policy("jira").unwrap().actions[0];
    assert!(a.seats.is_empty());
    assert!(a.reason.ends_with("(another group still grants the product: no seat freed)"), "{}", a.reason);
}

#[test]
fn the_api_key_owner_named_in_the_organization_spec_is_never_acted_on() {
    let mut fx = Fx::new(vec![idle("owner", 300), user("bob")], vec![suspend_idle()]);
    fx.org.spec.credentials.api_key_owner_account_id = Some("owner".into());
    let plan = fx.plan();
    assert!(acts(&plan, "idle").is_empty());
    assert_eq!(plan.policy("idle").unwrap().skipped_counts.get(&SkipKind::ApiKeyOwner), Some(&1));
}
