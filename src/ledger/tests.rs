use std::collections::BTreeMap;

use jiff::Timestamp;

use super::*;
use crate::policy::{ActionBasis, PlannedAction};
use crate::snapshot::{ManagementSource, UserStatus};

fn t(days: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + days * 86_400).unwrap()
}

fn action(account: &str, kind: ActionKind) -> PlannedAction {
    PlannedAction {
        account_id: account.into(),
        email: Some(format!("{account}@acme.test")),
        directory_id: "dir".into(),
        kind,
        policy: "p".into(),
        rule: "r".into(),
        reason: String::new(),
        seats: BTreeMap::new(),
        destructive: true,
        inactive_days: Some(100),
        groups_lost: vec![],
        basis: ActionBasis {
            status: UserStatus::Active,
            management_source: ManagementSource::Invited,
            last_active_any: None,
            last_active_product: None,
            product: Some(Product::Confluence),
        },
    }
}

/// A realistic worst case: every one of 100,000 users has a record of every kind.
fn big_ledger(users: usize) -> Ledger {
    let mut l = Ledger::new("org-1");
    for i in 0..users {
        let id = format!("712020:{:08x}-1c2d-4e5f-8a9b-{:012x}", i, i * 7919);
        l.users.insert(
            id,
            UserRecord {
                email: Some(format!("user.number{i}@example-company.com")),
                first_seen: Some(t(0)),
                suspension: None,
                notices: vec![NoticeRecord {
                    policy: "inactive-users".into(),
                    rule: "jira-60d".into(),
                    lead_time: Duration::from_days(14),
                    action: Some(crate::crd::RuleAction::RemoveLicensedGroups),
                    product: Some(crate::product::Product::JiraSoftware),
                    delivered_at: t(1),
                }],
                removed_groups: vec![],
                taken_out: vec![],
                restored_at: None,
                in_flight: vec![],
            },
        );
    }
    l
}

#[test]
fn json_round_trips() {
    let mut l = big_ledger(3);
    l.record_outcome(&action("a", ActionKind::RemoveGroup { group_id: "g".into() }), Outcome::Applied, t(2));
    let back = Ledger::from_json(&l.to_json()).unwrap();
    assert_eq!(back, l);
    assert!(matches!(Ledger::from_json("{not json"), Err(LedgerError::Parse(_))));
}

#[test]
fn shards_split_by_account_and_merge_back() {
    let l = big_ledger(1000);
    let shards = l.shards(7).unwrap();
    assert_eq!(shards.len(), 7);
    assert_eq!(shards.iter().map(|s| s.users.len()).sum::<usize>(), 1000);
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(s.org_id, "org-1");
        // Hashing spreads accounts: no shard is empty or holds more than twice its share.
        assert!(s.users.len() > 50 && s.users.len() < 290, "shard {i}: {}", s.users.len());
        assert!(s.users.keys().all(|id| Ledger::shard_index(id, 7) == i as u32));
    }
    assert_eq!(Ledger::merge(shards).unwrap(), l);
    assert_eq!(l.shards(0), Err(LedgerError::ZeroShards));
}

#[test]
fn a_user_limit_refusal_travels_in_the_first_shard_and_merges_back() {
    let mut l = big_ledger(50);
    let hit = UserLimitHit { licensed: 51, declared_limit: None, at: t(1), message: "full".into() };
    l.record_user_limit(Product::JiraServiceManagement, hit.clone());
    let shards = l.shards(4).unwrap();
    assert_eq!(shards[0].user_limits.get(&Product::JiraServiceManagement), Some(&hit));
    assert!(shards[1..].iter().all(|s| s.user_limits.is_empty()));
    let round: Vec<Ledger> = shards.iter().map(|s| Ledger::from_json(&s.to_json()).unwrap()).collect();
    assert_eq!(Ledger::merge(round).unwrap(), l);
    // A ledger holding only the refusal is not empty: its shard is stored.
    let mut only = Ledger::new("org-1");
    only.record_user_limit(Product::Confluence, hit);
    assert!(!only.is_empty());
    only.apply_updates(&[LedgerUpdate::UserLimitLifted { product: Product::Confluence, why: "raised".into() }]);
    assert!(only.is_empty());
}

#[test]
fn a_hundred_thousand_users_fit_in_shards_well_under_one_mebibyte() {
    let l = big_ledger(100_000);
    let n = l.shard_count_for(1024 * 1024);
    let shards = l.shards(n).unwrap();
    let largest = shards.iter().map(|s| s.to_json().len()).max().unwrap();
    assert!(largest < 900 * 1024, "largest shard {largest} bytes with {n} shards");
    assert!(n <= 64, "{n} shards");
}

#[test]
fn shard_index_is_stable() {
    // Fixed values: the shard of an account must never move between builds.
    assert_eq!(Ledger::shard_index("", 16), (0xcbf2_9ce4_8422_2325u64 % 16) as u32);
    assert_eq!(Ledger::shard_index("abc", 1), 0);
    let a = Ledger::shard_index("5b10ac8d82e05b22cc7d4ef5", 10);
    assert_eq!(a, Ledger::shard_index("5b10ac8d82e05b22cc7d4ef5", 10));
}

#[test]
fn merge_refuses_conflicting_or_foreign_shards() {
    let mut a = Ledger::new("org-1");
    a.users.insert("x".into(), UserRecord { first_seen: Some(t(1)), ..Default::default() });
    let mut b = Ledger::new("org-1");
    b.users.insert("x".into(), UserRecord { first_seen: Some(t(2)), ..Default::default() });
    assert_eq!(Ledger::merge([a.clone(), b]), Err(LedgerError::ConflictingShards { account_id: "x".into() }));
    assert_eq!(Ledger::merge([a.clone(), a.clone()]).unwrap(), a);
    assert!(matches!(Ledger::merge([a, Ledger::new("org-2")]), Err(LedgerError::MixedOrganizations { .. })));
    assert_eq!(Ledger::merge(Vec::<Ledger>::new()), Err(LedgerError::ZeroShards));
}

#[test]
fn intended_then_applied_records_the_effect_once() {
    let mut l = Ledger::new("o");
    let a = action("u", ActionKind::RemoveGroup { group_id: "g1".into() });
    l.record_intended(&a, "run-1", t(0));
    l.record_intended(&a, "run-1", t(0));
    assert_eq!(l.in_flight().count(), 1);
    l.record_outcome(&a, Outcome::Applied, t(0));
    assert_eq!(l.in_flight().count(), 0);
    let r = l.record("u").unwrap();
    assert_eq!(r.removed_groups.len(), 1);
    assert_eq!(r.removed_groups[0].product, Some(Product::Confluence));
    assert!(r.holds_removals());
    assert_eq!(r.email.as_deref(), Some("u@acme.test"));
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let mut l = Ledger::new("o");
    let a = action("u", ActionKind::Suspend);
    l.record_intended(&a, "run-1", t(0));
    l.record_outcome(&a, Outcome::NotApplied, t(0));
    assert!(l.record("u").is_none_or(|r| !r.holds_removals() && r.in_flight.is_empty()));
}

#[test]
fn suspension_removal_and_restoration_round_trip() {
    let mut l = Ledger::new("o");
    l.record_outcome(&action("u", ActionKind::Suspend), Outcome::Applied, t(0));
    let r = l.record("u").unwrap();
    assert_eq!(r.suspension, Some(Suspension { since: t(0), by_seatwarden: true, directory_ids: vec!["dir".into()] }));
    assert_eq!(r.taken_out[0].kind, TakenOutKind::Suspended);
    l.record_outcome(&action("u", ActionKind::Restore), Outcome::Applied, t(5));
    let r = l.record("u").unwrap();
    assert!(r.suspension.is_none() && r.taken_out.is_empty());
    assert_eq!(r.restored_at, Some(t(5)));

    let mut remove = action("v", ActionKind::RemoveFromDirectory);
    remove.groups_lost = vec!["g1".into(), "g2".into()];
    l.record_outcome(&remove, Outcome::Applied, t(1));
    let r = l.record("v").unwrap();
    assert_eq!(r.removed_groups.iter().map(|g| g.group_id.as_str()).collect::<Vec<_>>(), vec!["g1", "g2"]);
    l.record_outcome(&action("v", ActionKind::AddGroup { group_id: "g1".into() }), Outcome::Applied, t(2));
    l.record_outcome(&action("v", ActionKind::AddGroup { group_id: "g2".into() }), Outcome::Applied, t(2));
    let r = l.record("v").unwrap();
    assert!(!r.holds_removals());
}

#[test]
fn delivered_notices_are_found_by_policy_rule_lead_time_and_episode() {
    let mut l = Ledger::new("o");
    let notice = crate::policy::PlannedNotice {
        account_id: "u".into(),
        email: None,
        policy: "p".into(),
        rule: "r".into(),
        lead_time: Duration::from_days(14),
        action_due: t(14),
        action: ActionKind::Suspend,
        product: None,
        reason: String::new(),
    };
    l.record_notice_delivered(&notice, t(0));
    let r = l.record("u").unwrap();
    let suspend = (crate::crd::RuleAction::Suspend, None);
    assert!(r.delivered_notice("p", "r", Duration::from_days(14), suspend, t(-1)).is_some());
    assert!(r.delivered_notice("p", "r", Duration::from_days(14), suspend, t(1)).is_none(), "older than the episode");
    assert!(r.delivered_notice("p", "r", Duration::from_days(3), suspend, t(-1)).is_none());
    assert!(r.delivered_notice("q", "r", Duration::from_days(14), suspend, t(-1)).is_none());
    // What it announced is on record, and it counts for that only.
    assert_eq!(r.notices[0].action, Some(crate::crd::RuleAction::Suspend));
    let deactivate = (crate::crd::RuleAction::Deactivate, None);
    assert!(r.delivered_notice("p", "r", Duration::from_days(14), deactivate, t(-1)).is_none());
    assert!(r.notice_announcing_otherwise("p", "r", Duration::from_days(14), deactivate, t(-1)).is_some());
    l.apply_updates(&[LedgerUpdate::NoticesStale {
        account_id: "u".into(),
        policy: "p".into(),
        rule: "r".into(),
        before: t(1),
    }]);
    assert!(l.record("u").is_none());
}

#[test]
fn observations_apply_and_forget() {
    let mut l = Ledger::new("o");
    l.apply_updates(&[
        LedgerUpdate::FirstSeen { account_id: "a".into(), at: t(0) },
        LedgerUpdate::FirstSeen { account_id: "a".into(), at: t(9) },
        LedgerUpdate::SuspensionSeen { account_id: "b".into(), at: t(1), directory_ids: vec![] },
    ]);
    assert_eq!(l.record("a").unwrap().first_seen, Some(t(0)), "first sight is kept");
    assert_eq!(
        l.record("b").unwrap().suspension,
        Some(Suspension { since: t(1), by_seatwarden: false, directory_ids: vec![] })
    );
    l.apply_updates(&[
        LedgerUpdate::SuspensionEnded { account_id: "b".into() },
        LedgerUpdate::Forget { account_id: "a".into() },
    ]);
    assert!(l.users.is_empty());
}

fn in_dir(mut a: PlannedAction, directory: &str) -> PlannedAction {
    a.directory_id = directory.into();
    a
}

#[test]
fn a_suspension_is_per_directory_and_is_lifted_where_it_was_made() {
    let mut l = Ledger::new("o");
    l.record_outcome(&in_dir(action("u", ActionKind::Suspend), "dir-a"), Outcome::Applied, t(0));
    l.record_outcome(&in_dir(action("u", ActionKind::Suspend), "dir-b"), Outcome::Applied, t(3));
    let r = l.record("u").unwrap();
    let s = r.suspension.as_ref().unwrap();
    assert_eq!((s.since, s.by_seatwarden), (t(0), true), "escalation counts from the first");
    assert_eq!(s.directory_ids, vec!["dir-a".to_owned(), "dir-b".to_owned()]);
    let dirs: Vec<&str> = r.taken_out.iter().map(|t| t.directory_id.as_str()).collect();
    assert_eq!(dirs, vec!["dir-a", "dir-b"]);
    // Restored in A only: B's suspension and seatwarden's record of it stay.
    l.record_outcome(&in_dir(action("u", ActionKind::Restore), "dir-a"), Outcome::Applied, t(5));
    let r = l.record("u").unwrap();
    assert_eq!(r.suspension.as_ref().unwrap().directory_ids, vec!["dir-b".to_owned()]);
    assert_eq!(r.taken_out.iter().map(|t| t.directory_id.as_str()).collect::<Vec<_>>(), vec!["dir-b"]);
    l.record_outcome(&in_dir(action("u", ActionKind::Restore), "dir-b"), Outcome::Applied, t(6));
    let r = l.record("u").unwrap();
    assert!(r.suspension.is_none() && r.taken_out.is_empty());
}

#[test]
fn removed_groups_are_per_directory_and_given_back_where_they_were_taken() {
    let mut l = Ledger::new("o");
    let g = || ActionKind::RemoveGroup { group_id: "g1".into() };
    l.record_outcome(&in_dir(action("u", g()), "dir-a"), Outcome::Applied, t(0));
    l.record_outcome(&in_dir(action("u", g()), "dir-b"), Outcome::Applied, t(0));
    let r = l.record("u").unwrap();
    let held: Vec<(&str, &str)> =
        r.removed_groups.iter().map(|g| (g.directory_id.as_str(), g.group_id.as_str())).collect();
    assert_eq!(held, vec![("dir-a", "g1"), ("dir-b", "g1")], "the same id in two directories is two groups");
    let add = ActionKind::AddGroup { group_id: "g1".into() };
    l.record_outcome(&in_dir(action("u", add), "dir-b"), Outcome::Applied, t(1));
    let r = l.record("u").unwrap();
    assert_eq!(r.removed_groups.iter().map(|g| g.directory_id.as_str()).collect::<Vec<_>>(), vec!["dir-a"]);
}

#[test]
fn records_kept_before_directories_were_still_read() {
    // A record as an older seatwarden wrote it: no directory anywhere.
    let old = r#"{"orgId":"o","users":{"u":{"suspension":{"since":"2026-09-01T00:00:00Z","bySeatwarden":true},
        "removedGroups":[{"groupId":"g1","policy":"p","rule":"r","at":"2026-09-01T00:00:00Z"}],
        "takenOut":[{"kind":"Suspended","policy":"p","rule":"r","at":"2026-09-01T00:00:00Z"}]}}}"#;
    let mut l = Ledger::from_json(old).unwrap();
    let r = l.record("u").unwrap();
    assert!(r.suspension.as_ref().unwrap().directory_ids.is_empty());
    assert!(r.removed_groups[0].directory_id.is_empty() && r.taken_out[0].directory_id.is_empty());
    // Written back, it stays as it was (no empty fields added).
    assert!(!l.to_json().contains("directoryId"));
    // A write to any directory settles an entry that names none.
    l.record_outcome(&in_dir(action("u", ActionKind::Restore), "dir-a"), Outcome::Applied, t(5));
    let r = l.record("u").unwrap();
    assert!(r.suspension.is_none() && r.taken_out.is_empty());
}

mod absent {
    use super::*;
    use crate::snapshot::{DirectoryInfo, DirectorySnapshot};

    fn snapshot(directories: &[&str]) -> DirectorySnapshot {
        DirectorySnapshot {
            directories: directories.iter().map(|d| DirectoryInfo { id: (*d).into(), name: String::new() }).collect(),
            ..Default::default()
        }
    }

    fn with_suspension(directory: &str) -> UserRecord {
        UserRecord {
            suspension: Some(Suspension { since: t(0), by_seatwarden: false, directory_ids: vec![directory.into()] }),
            ..Default::default()
        }
    }

    fn ledger() -> Ledger {
        let mut l = Ledger::new("o");
        l.users.insert("a-seen".into(), UserRecord { first_seen: Some(t(0)), ..Default::default() });
        l.users.insert("b-in-a".into(), with_suspension("dir-a"));
        l.users.insert("c-in-x".into(), with_suspension("dir-x"));
        // Removed from the directory by seatwarden: the record is what a re-invitation needs.
        l.record_outcome(
            &in_dir(action("d-removed", ActionKind::RemoveFromDirectory), "dir-a"),
            Outcome::Applied,
            t(0),
        );
        // A write still open is settled first, never forgotten.
        l.record_intended(&in_dir(action("e-open", ActionKind::Suspend), "dir-a"), "run-1", t(0));
        l
    }

    #[test]
    fn absent_accounts_are_those_a_lookup_may_end() {
        let l = ledger();
        // Every directory read: all but the removed and the open one.
        let all = l.absent_accounts(&snapshot(&["dir-a", "dir-b"]), true, 10, 0);
        assert_eq!(all, vec!["a-seen".to_owned(), "b-in-a".into()], "dir-x is not this org's: c waits");
        // Only some directories read (spec.directories narrowed): facts elsewhere are kept.
        let some = l.absent_accounts(&snapshot(&["dir-x"]), false, 10, 0);
        assert_eq!(some, vec!["a-seen".to_owned(), "c-in-x".into()]);
        // Bounded, and the window moves with `rotate`.
        assert_eq!(l.absent_accounts(&snapshot(&["dir-a"]), true, 1, 0), vec!["a-seen".to_owned()]);
        assert_eq!(l.absent_accounts(&snapshot(&["dir-a"]), true, 1, 1), vec!["b-in-a".to_owned()]);
        // An incomplete snapshot proves nothing.
        let mut incomplete = snapshot(&["dir-a"]);
        incomplete.incomplete = Some("page 3 failed".into());
        assert!(l.absent_accounts(&incomplete, true, 10, 0).is_empty());
    }

    #[test]
    fn only_404_everywhere_shows_an_account_gone() {
        assert!(shows_gone(&[Ok(false), Ok(false)]));
        assert!(!shows_gone(&[Ok(false), Ok(true)]), "present in one directory");
        assert!(!shows_gone(&[Ok(false), Err("HTTP 500".into())]), "a failure is no answer");
        assert!(!shows_gone(&[Err("HTTP 403".into())]));
        assert!(!shows_gone(&[]), "no lookup, no end");
    }
}
