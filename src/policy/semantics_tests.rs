//! Rules mean what they say (issue 14): notices count for what they announced, returners stay
//! returned, no removal that frees nothing, no notice rule without a way to deliver notices.

use super::fixture::*;
use super::*;
use crate::crd::{Duration, LifecyclePolicy, Reactivation, RuleAction};
use crate::ledger::{NoticeRecord, Outcome, RemovedGroup, Suspension, TakenOut, TakenOutKind, UserRecord};
use crate::product::Product;
use crate::snapshot::UserStatus;

fn skipped(plan: &Plan, policy: &str, kind: SkipKind) -> Vec<SkippedUser> {
    plan.policy(policy).unwrap().skipped.iter().filter(|s| s.kind == kind).cloned().collect()
}

// ---- a notice counts for what it announced ---------------------------------------------------------

#[test]
fn changing_a_rules_action_starts_a_new_notice_cycle_and_the_plan_says_why() {
    // Alice was told "suspend" 20 days ago (14-day lead time); the rule now deactivates.
    let rule = with_leads(account_rule("idle-90", 90, RuleAction::Deactivate), &[14]);
    let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![policy("warn", vec![rule])]);
    fx.ledger.users.insert("alice".into(), warned(20));
    let plan = fx.plan();
    let p = plan.policy("warn").unwrap();
    assert!(p.actions.is_empty(), "not deactivated on the strength of a suspend notice: {:?}", p.actions);
    assert_eq!(p.notices.len(), 1);
    let n = &p.notices[0];
    assert_eq!(n.action, ActionKind::Deactivate);
    assert!(n.reason.contains("a new notice cycle: the notice of 2026-11-05 announced suspend"), "{}", n.reason);
    // With the suspend action back, the old notice counts again and the user is acted on.
    fx.policies[0].spec.rules[0].action = RuleAction::Suspend;
    assert_eq!(acts(&fx.plan(), "warn"), vec![pair("alice", "suspend")]);
}

#[test]
fn a_notice_of_one_product_does_not_count_for_another() {
    // Told about Confluence; the rule (same name) now takes Jira.
    let rule = with_leads(product_rule("idle-product", Product::JiraSoftware, 60), &[14]);
    let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![policy("p", vec![rule])]);
    fx.ledger.users.insert(
        "alice".into(),
        UserRecord {
            notices: vec![NoticeRecord {
                policy: "p".into(),
                rule: "idle-product".into(),
                lead_time: Duration::from_days(14),
                action: Some(RuleAction::RemoveLicensedGroups),
                product: Some(Product::Confluence),
                delivered_at: ago(20),
            }],
            ..Default::default()
        },
    );
    let plan = fx.plan();
    let p = plan.policy("p").unwrap();
    assert!(p.actions.is_empty());
    assert_eq!(p.notices[0].product, Some(Product::JiraSoftware), "the new notice records its product");
    assert!(p.notices[0].reason.contains("of Confluence"), "{}", p.notices[0].reason);
    // Delivered, it is recorded with what it announced, and counts for exactly that.
    let mut ledger = fx.ledger.clone();
    ledger.record_notice_delivered(&p.notices[0], ago(20));
    let rec = ledger.record("alice").unwrap();
    let last = rec.notices.last().unwrap();
    assert_eq!((last.action, last.product), (Some(RuleAction::RemoveLicensedGroups), Some(Product::JiraSoftware)));
    fx.ledger = ledger;
    assert_eq!(acts(&fx.plan(), "p"), vec![pair("alice", "remove-group:g-jira")]);
}

// ---- notices need a way to reach people ------------------------------------------------------------

#[test]
fn without_a_mail_transport_rules_with_lead_times_act_on_no_one() {
    let warn = with_leads(account_rule("idle-90", 90, RuleAction::Suspend), &[14]);
    let no_notice = product_rule("jira-60", Product::JiraSoftware, 60);
    let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![policy("p", vec![warn])]);
    fx.org.spec.local_mailbox = false;
    fx.org.spec.mail = None;
    let plan = fx.plan();
    let p = plan.policy("p").unwrap();
    assert!(p.notices.is_empty() && p.actions.is_empty());
    let c = p.conditions.iter().find(|c| c.reason == "NoticeDeliveryUnavailable").expect("the policy says why");
    assert!(c.message.contains("rule idle-90") && c.message.contains("spec.mail"), "{}", c.message);
    // A rule without lead times still acts; the next rule claims the user.
    fx.policies[0].spec.rules.push(no_notice);
    assert_eq!(acts(&fx.plan(), "p"), vec![pair("alice", "remove-group:g-jira")]);
    // The local folder counts only where the organization asks for it.
    fx.org.spec.local_mailbox = true;
    assert_eq!(fx.plan().policy("p").unwrap().notices.len(), 1);
}

// ---- no removal that frees nothing -----------------------------------------------------------------

#[test]
fn a_user_another_group_still_licenses_is_reported_not_removed() {
    // Alice is idle on Jira, in the mapped jira-users and in vips, which no mapping names but which
    // Atlassian says grants Jira too.
    let mut alice = idle("alice", 100);
    alice.groups = vec![JIRA_USERS, VIPS];
    let mut fx = Fx::new(vec![alice, idle("carol", 100), user("bob")], vec![jira_idle_policy()]);
    fx.snapshot.groups[VIPS as usize].grants = vec![Product::JiraSoftware];
    let plan = fx.plan();
    assert_eq!(acts(&plan, "jira"), vec![pair("carol", "remove-group:g-jira")], "only the removal that frees a seat");
    let s = skipped(&plan, "jira", SkipKind::StillGranted);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].account_id, "alice");
    assert!(s[0].why.contains("group(s) vips still grant Jira"), "{}", s[0].why);
    assert!(s[0].why.contains("removeWhenNoSeatFreed"), "{}", s[0].why);
    assert_eq!(plan.policy("jira").unwrap().skipped_counts.get(&SkipKind::StillGranted), Some(&1));
    // The JSON preview names the user and the groups too, not only a count.
    let json = crate::policy::to_json(&plan);
    let still = &json["policies"][0]["stillGranted"];
    assert_eq!(still.as_array().map(Vec::len), Some(1), "{still}");
    assert_eq!(still[0]["accountId"], "alice");
    assert!(still[0]["reason"].as_str().unwrap().contains("vips"), "{still}");
    // The policy option removes anyway (and the action says no seat is freed).
    fx.policies[0].spec.remove_when_no_seat_freed = true;
    let plan = fx.plan();
    let a = plan.policy("jira").unwrap().actions.iter().find(|a| a.account_id == "alice").unwrap().clone();
    assert!(a.seats.is_empty() && a.reason.contains("no seat freed"), "{}", a.reason);
}

fn jira_idle_policy() -> LifecyclePolicy {
    policy("jira", vec![product_rule("jira-60", Product::JiraSoftware, 60)])
}

// ---- returners stay returned -----------------------------------------------------------------------

fn restoring(mut p: LifecyclePolicy, named: &[&str]) -> LifecyclePolicy {
    p.spec.reactivation = Some(Reactivation {
        on_activity: true,
        opt_in_groups: vec![],
        account_ids: named.iter().map(|s| (*s).to_owned()).collect(),
        restore_suspended: true,
    });
    p
}

#[test]
fn a_deactivated_and_suspended_returner_is_fully_restored_even_after_the_name_is_dropped() {
    let idle_then_deactivate = vec![
        account_rule("idle-90", 90, RuleAction::Suspend),
        suspended_rule("deactivate-after-30", 30, RuleAction::Deactivate),
    ];
    let mut dana = idle("dana", 200);
    dana.status = UserStatus::Deactivated;
    let mut fx = Fx::new(vec![dana, user("bob")], vec![restoring(policy("p", idle_then_deactivate), &["dana"])]);
    let taken = |kind, days| TakenOut {
        kind,
        policy: "p".into(),
        rule: "r".into(),
        at: ago(days),
        directory_id: String::new(),
    };
    fx.ledger.users.insert(
        "dana".into(),
        UserRecord {
            suspension: Some(Suspension { since: ago(80), by_seatwarden: true, directory_ids: vec![] }),
            taken_out: vec![taken(TakenOutKind::Suspended, 80), taken(TakenOutKind::Deactivated, 40)],
            ..Default::default()
        },
    );
    // Run 1: named by the admin, re-enabled.
    let plan = fx.plan();
    assert_eq!(acts(&plan, "p"), vec![pair("dana", "enable")]);
    let enable = plan.policy("p").unwrap().actions[0].clone();
    fx.ledger.record_outcome(&enable, Outcome::Applied, now());
    let mut dana = idle("dana", 200);
    dana.status = UserStatus::Suspended;
    fx.snapshot = snapshot(vec![dana, user("bob")]);
    // Run 2: the admin dropped the name. She is not escalated again; the restoration finishes.
    fx.policies[0].spec.reactivation.as_mut().unwrap().account_ids.clear();
    let plan = fx.plan();
    assert_eq!(acts(&plan, "p"), vec![pair("dana", "restore")]);
    let restore = &plan.policy("p").unwrap().actions[0];
    assert!(restore.reason.contains("finishing the restoration"), "{}", restore.reason);
}

#[test]
fn a_restored_user_is_not_acted_on_again_before_a_full_inactivity_period() {
    // Restored 10 days ago, still no activity since: not idle for 90 days from the restoration.
    let mut fx = Fx::new(
        vec![idle("erin", 200), user("bob")],
        vec![policy("p", vec![account_rule("idle-90", 90, RuleAction::Suspend)])],
    );
    fx.ledger.users.insert("erin".into(), UserRecord { restored_at: Some(ago(10)), ..Default::default() });
    assert!(acts(&fx.plan(), "p").is_empty());
    // A full period after the restoration, she is.
    fx.ledger.users.insert("erin".into(), UserRecord { restored_at: Some(ago(95)), ..Default::default() });
    assert_eq!(acts(&fx.plan(), "p"), vec![pair("erin", "suspend")]);
}

#[test]
fn a_reinvited_user_gets_the_lost_groups_back_without_being_named_again() {
    let mut p = restoring(policy("p", vec![never_rule("never-30", 30, RuleAction::RemoveFromDirectory)]), &["fay"]);
    p.spec.reactivation.as_mut().unwrap().on_activity = false;
    let mut fx = Fx::new(vec![user("bob")], vec![p]);
    fx.ledger.users.insert(
        "fay".into(),
        UserRecord {
            email: Some("fay@acme.test".into()),
            taken_out: vec![TakenOut {
                kind: TakenOutKind::RemovedFromDirectory,
                directory_id: String::new(),
                policy: "p".into(),
                rule: "never-30".into(),
                at: ago(60),
            }],
            removed_groups: vec![RemovedGroup {
                group_id: "g-jira".into(),
                directory_id: String::new(),
                product: None,
                policy: "p".into(),
                rule: "never-30".into(),
                at: ago(60),
                last_active: None,
            }],
            ..Default::default()
        },
    );
    // Run 1: named, not in the directory: re-invited.
    let plan = fx.plan();
    assert_eq!(acts(&plan, "p"), vec![pair("fay", "invite")]);
    let invite = plan.policy("p").unwrap().actions[0].clone();
    fx.ledger.record_outcome(&invite, Outcome::Applied, now());
    let rec = fx.ledger.record("fay").unwrap();
    assert!(
        rec.taken_out.iter().any(|t| t.kind == TakenOutKind::RemovedFromDirectory),
        "the removal stays on record until what it took is back"
    );
    // Run 2: she accepted (back in the directory, in no group); the admin dropped the name.
    let mut fay = user("fay");
    fay.groups = vec![];
    fay.added_to_org = Some(now());
    fx.snapshot = snapshot(vec![fay, user("bob")]);
    fx.policies[0].spec.reactivation.as_mut().unwrap().account_ids.clear();
    let plan = fx.plan();
    assert_eq!(acts(&plan, "p"), vec![pair("fay", "add-group:g-jira")]);
}
