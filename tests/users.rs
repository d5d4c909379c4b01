//! `seatwarden users` and `seatwarden audit export`, run as commands (parsed by clap, in-process)
//! against the simulator over real HTTP. The simulator's event log is the referee: a dry run or a
//! refused file leaves it untouched; an applied import adds exactly its diff.

use std::collections::BTreeMap;
use std::path::Path;

mod support;

use clap::Parser;
use jiff::Timestamp;
use seatwarden::atlassian::{AtlassianClient, ClientConfig, Credentials, Secret};
use seatwarden::cli::{Cli, Command, exit, users::Io};
use seatwarden::crd::{ActionOutcome, PolicyMode, RunAction};
use seatwarden::record::{AuditSink, FolderAudit, RunRecord};
use seatwarden::sim::state::{AccountStatus, Membership, SimAccountType, SimManagementSource, SimState};
use seatwarden::sim::{SimConfig, SimEvent, SimHandle, Simulator};
use seatwarden::snapshot::DirectorySnapshot;
use seatwarden::users::{ChangeKind, ImportOptions, parse_import_csv, plan_import};

/// Distinctive, so a leak into any output is caught by every command run here.
const API_KEY: &str = "sim-key-0bd1e5ec7e7";
const KEY_VAR: &str = "USERS_TEST_API_KEY";

async fn sim(users: u32) -> SimHandle {
    seatwarden::tls::install_crypto_provider();
    let config = SimConfig { users, seed: 11, api_key: API_KEY.into(), now: Timestamp::now(), ..Default::default() };
    let sim = Simulator::start(config, "127.0.0.1:0").await.expect("simulator starts");
    // License limits are not what these tests are about: make room, so every planned write is allowed.
    sim.with_state_mut(|s| s.products.iter_mut().for_each(|p| p.license_limit = 1_000_000));
    sim
}

struct Ran {
    code: u8,
    out: String,
    err: String,
}

/// Runs `seatwarden users <args>` (or `audit ...` when args start with "audit") against `sim`.
async fn seatwarden(sim: &SimHandle, args: &[&str]) -> Ran {
    let base = sim.base_url();
    let org = sim.org_id();
    let mut argv: Vec<&str> = vec!["seatwarden"];
    argv.extend(args);
    if args[0] == "users" {
        argv.extend([
            "--org-url",
            &base,
            "--org-id",
            &org,
            "--api-key-env",
            KEY_VAR,
            "--requests-per-minute",
            "1000000",
        ]);
    }
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?} parses: {e}"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = match cli.command {
        Command::Users(args) => {
            let env = |name: &str| (name == KEY_VAR).then(|| API_KEY.to_owned());
            let mut io =
                Io { out: &mut out, err: &mut err, env: &env, progress: false, client_progress: Default::default() };
            seatwarden::cli::users::execute(*args, &mut io).await
        }
        Command::Audit(args) => {
            let seatwarden::cli::audit::AuditCommand::Export(a) = args.command;
            match seatwarden::cli::audit::export(&a, &mut out, Timestamp::now()).await {
                Ok(summary) => {
                    err.extend(summary.into_bytes());
                    exit::OK
                }
                Err((code, message)) => {
                    err.extend(message.into_bytes());
                    code
                }
            }
        }
        other => panic!("not a users or audit command: {other:?}"),
    };
    let ran = Ran { code, out: String::from_utf8(out).unwrap(), err: String::from_utf8(err).unwrap() };
    assert!(!ran.out.contains(API_KEY) && !ran.err.contains(API_KEY), "the API key leaked into the output");
    ran
}

async fn snapshot(sim: &SimHandle) -> DirectorySnapshot {
    let mut config = ClientConfig::new(sim.org_id(), &sim.base_url()).unwrap();
    config.budget.org_requests_per_minute = 1_000_000;
    let client =
        AtlassianClient::new(config, &Credentials { org_api_key: Secret::new(API_KEY), site_user: None }).unwrap();
    client.snapshot(Timestamp::now()).await.expect("snapshot")
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An event as (operation, account, group): what a diff line predicts.
fn key(e: &SimEvent) -> (String, Option<String>, Option<String>) {
    (e.operation.clone(), e.account_id.clone(), e.group_id.clone())
}

#[tokio::test]
async fn an_export_imported_back_changes_nothing() {
    let sim = sim(1500).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.csv");
    let exported = seatwarden(&sim, &["users", "export", "--csv", path_str(&file)]).await;
    assert_eq!(exported.code, exit::OK, "{}", exported.err);
    // Directory users: app accounts are listed only by the sites' user search.
    let listed = sim.with_state(|s| s.users.iter().filter(|u| u.is_directory_user()).count());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("accountId,email,name,status,accountType,managed,addedToOrg,lastActive,lastActive."));
    assert!(text.lines().next().unwrap().ends_with(",groups"));
    let mut reader = csv::Reader::from_path(&file).unwrap();
    assert_eq!(reader.records().count(), listed, "one row per user");

    let audit = dir.path().join("audit");
    let before = sim.events();
    let imported =
        seatwarden(&sim, &["users", "import", "--csv", path_str(&file), "--apply", "--audit-dir", path_str(&audit)])
            .await;
    assert_eq!(imported.code, exit::OK, "{}", imported.err);
    assert!(imported.out.contains("0 changes"), "{}", imported.out);
    assert_eq!(sim.events(), before, "an import of an unchanged export writes nothing");
    assert!(!audit.exists(), "nothing applied, nothing recorded");
}

/// Writes `bytes` as a CSV, imports it with --apply and asserts it was refused and changed nothing.
async fn refused(sim: &SimHandle, dir: &Path, name: &str, bytes: &[u8], expected: &str) -> Ran {
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    let audit = dir.join(format!("{name}-audit"));
    let (events, requests) = (sim.events(), sim.request_count());
    let ran =
        seatwarden(sim, &["users", "import", "--csv", path_str(&file), "--apply", "--audit-dir", path_str(&audit)])
            .await;
    assert_eq!(ran.code, exit::USAGE, "{name}: {}", ran.err);
    assert!(ran.err.contains(expected), "{name}: expected {expected:?} in:\n{}", ran.err);
    assert!(ran.err.contains("nothing was changed"), "{name}: {}", ran.err);
    assert_eq!(sim.events(), events, "{name}: the organization was changed");
    assert!(!audit.exists(), "{name}: an audit record was written");
    // A broken file is refused before the organization is read: it costs no Atlassian call.
    if !ran.err.contains("rows are invalid") {
        assert_eq!(sim.request_count(), requests, "{name}: the organization was read");
    }
    ran
}

#[tokio::test]
async fn malformed_files_are_refused_with_their_line_and_change_nothing() {
    let sim = sim(600).await;
    let dir = tempfile::tempdir().unwrap();
    let s = snapshot(&sim).await;
    let someone = s.accounts.iter().find(|u| u.email.is_some()).unwrap();
    let email = someone.email.clone().unwrap();

    refused(
        &sim,
        dir.path(),
        "semicolons.csv",
        format!("email;groups\n{email};jira-software-users\n").as_bytes(),
        "line 1: the columns are separated by semicolons: use commas",
    )
    .await;
    refused(
        &sim,
        dir.path(),
        "no-header.csv",
        format!("{email},jira-software-users\n").as_bytes(),
        "line 1: no header",
    )
    .await;
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend("email\n".encode_utf16().flat_map(|c| c.to_le_bytes()));
    refused(&sim, dir.path(), "utf16.csv", &utf16, "line 1: the file is UTF-16").await;
    let mut latin1 = format!("email,groups\n{email},confluence-users\n").into_bytes();
    latin1.extend(b"j\xF6rg@acme.example,confluence-users\n");
    refused(&sim, dir.path(), "latin1.csv", &latin1, "line 3: byte 0xF6 at character 2 is not UTF-8").await;
    refused(&sim, dir.path(), "unknown-column.csv", b"email,colour\n", "unknown column \"colour\"").await;

    // 10,000 rows, one of them bad: the error names its line and nothing of the other 9,999 happens.
    let mut big = String::from("email,groups\n");
    for i in 0..10_000 {
        if i == 6_789 {
            big.push_str("new.hire.6789@@acme.example,confluence-users\n");
        } else {
            big.push_str(&format!("new.hire.{i}@acme.example,confluence-users\n"));
        }
    }
    let ran = refused(&sim, dir.path(), "big.csv", big.as_bytes(), "1 of 10000 rows are invalid").await;
    // Row i is on line i + 2 (the header is line 1).
    assert!(
        ran.err.contains("line 6791, column email: \"new.hire.6789@@acme.example\" is not an email address"),
        "{}",
        ran.err
    );
    assert_eq!(ran.err.matches("line ").count(), 1, "only the bad row is reported: {}", ran.err);

    // Duplicates and unknown groups are row errors too: all reported, nothing applied.
    let rows = format!("email,groups\n{email},no-such-group\n{email},confluence-users\n");
    let ran = refused(&sim, dir.path(), "rows.csv", rows.as_bytes(), "rows are invalid").await;
    assert!(ran.err.contains(&format!("line 3 ({email}): duplicate row")), "{}", ran.err);
}

#[tokio::test]
async fn a_utf8_bom_is_accepted_and_skip_invalid_applies_only_the_valid_rows() {
    let sim = sim(300).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.csv");
    std::fs::write(&file, b"\xEF\xBB\xBFemail,groups\nbom.person@acme.example,confluence-users\nbad@,\n").unwrap();
    let before = sim.events().len();
    let dry = seatwarden(&sim, &["users", "import", "--csv", path_str(&file)]).await;
    assert_eq!(dry.code, exit::USAGE, "an invalid row stops even a dry run: {}", dry.err);
    let audit = dir.path().join("audit");
    let ran = seatwarden(
        &sim,
        &["users", "import", "--csv", path_str(&file), "--skip-invalid", "--apply", "--audit-dir", path_str(&audit)],
    )
    .await;
    assert_eq!(ran.code, exit::OK, "{}", ran.err);
    assert!(ran.err.contains("line 3, column email"), "{}", ran.err);
    let events = &sim.events()[before..];
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].operation, "user.invite");
    let invited = sim.with_state(|s| {
        s.users.iter().find(|u| u.email.as_deref() == Some("bom.person@acme.example")).map(|u| u.account_id.clone())
    });
    assert_eq!(events[0].account_id, invited, "the BOM did not end up in the email");
}

/// The first user (by account id) matching `pred`, with an email, not synced from an IdP.
fn pick(state: &SimState, taken: &[String], pred: impl Fn(&seatwarden::sim::state::SimUser) -> bool) -> String {
    let mut candidates: Vec<_> = state
        .users
        .iter()
        .filter(|u| {
            u.email.is_some()
                && u.management_source != Some(SimManagementSource::Synced)
                && u.groups.iter().all(|&g| !state.groups[g as usize].idp_synced)
                && !taken.contains(&u.account_id)
                && pred(u)
        })
        .collect();
    candidates.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    candidates.first().expect("the generated organization has such a user").account_id.clone()
}

#[tokio::test]
async fn an_import_applies_exactly_its_diff() {
    let sim = sim(800).await;
    let dir = tempfile::tempdir().unwrap();
    // Four people: a suspended one to activate, a deactivated managed one to enable, an active one
    // whose groups change both ways, and a newcomer to invite.
    let (suspended, deactivated, regroup, group_names) = sim.with_state(|s| {
        let mut taken = vec![];
        let suspended =
            pick(s, &taken, |u| u.membership == Membership::Suspended && u.account_status == AccountStatus::Active);
        taken.push(suspended.clone());
        let deactivated = pick(s, &taken, |u| {
            u.account_status == AccountStatus::Inactive
                && u.managed
                && u.membership == Membership::Active
                && u.account_type == SimAccountType::Atlassian
        });
        taken.push(deactivated.clone());
        let regroup = pick(s, &taken, |u| u.membership == Membership::Active && u.groups.len() >= 2);
        let names: BTreeMap<String, String> = s.groups.iter().map(|g| (g.id.clone(), g.name.clone())).collect();
        (suspended, deactivated, regroup, names)
    });
    let email_of = |id: &str| sim.with_state(|s| s.user(id).unwrap().email.clone().unwrap());
    let groups_of = |id: &str| {
        sim.with_state(|s| {
            s.user(id).unwrap().groups.iter().map(|&g| s.groups[g as usize].name.clone()).collect::<Vec<_>>()
        })
    };
    let mut regroup_groups = groups_of(&regroup);
    let dropped = regroup_groups.remove(0);
    let unsynced: Vec<String> = sim.with_state(|s| {
        s.groups
            .iter()
            .filter(|g| !g.idp_synced && g.directory == 0 && g.site_admin_of.is_none())
            .map(|g| g.name.clone())
            .collect()
    });
    let added = unsynced.iter().find(|g| !groups_of(&regroup).contains(g) && **g != dropped).unwrap().clone();
    regroup_groups.push(added.clone());
    let csv = format!(
        "accountId,email,groups,status\n{suspended},,{},active\n{deactivated},,{},active\n{regroup},{},{},\n,newcomer@acme.example,{added},\n",
        groups_of(&suspended).join(";"),
        groups_of(&deactivated).join(";"),
        email_of(&regroup),
        regroup_groups.join(";"),
    );
    let file = dir.path().join("changes.csv");
    std::fs::write(&file, &csv).unwrap();

    // The diff, as the planner sees it against the organization now.
    let plan = plan_import(&parse_import_csv(csv.as_bytes()).unwrap(), &snapshot(&sim).await, ImportOptions::default());
    assert_eq!(plan.errors, vec![]);
    assert_eq!(plan.counts(), (1, 1, 2, 1), "{}", plan.render());

    let before = sim.events().len();
    let dry = seatwarden(&sim, &["users", "import", "--csv", path_str(&file)]).await;
    assert_eq!(dry.code, exit::OK, "{}", dry.err);
    // The diff, what it does to seats whose limit is unknown (the simulator's products get seats:
    // no limit is declared), and the last word.
    let rest = dry.out.strip_prefix(plan.render().as_str()).unwrap_or_else(|| panic!("{}", dry.out));
    let rest = rest.strip_suffix("dry run: nothing was changed; pass --apply to make these 5 changes\n").unwrap();
    assert!(rest.lines().all(|l| l.starts_with("user limit: ") && l.contains("limit unknown")), "{rest}");
    assert_eq!(sim.events().len(), before, "a dry run writes nothing");

    let audit = dir.path().join("audit");
    let applied = seatwarden(
        &sim,
        &[
            "users",
            "import",
            "--csv",
            path_str(&file),
            "--apply",
            "--audit-dir",
            path_str(&audit),
            "--actor",
            "alice@ops",
        ],
    )
    .await;
    assert_eq!(applied.code, exit::OK, "{}{}", applied.out, applied.err);
    assert!(applied.out.contains("applied 5 of 5 changes (0 failed)"), "{}", applied.out);

    // The event log gained exactly the diff: one applied write per planned change.
    let events: Vec<SimEvent> = sim.events()[before..].to_vec();
    assert!(events.iter().all(|e| e.outcome == seatwarden::sim::SimOutcome::Applied), "{events:?}");
    let newcomer = sim.with_state(|s| {
        s.users.iter().find(|u| u.email.as_deref() == Some("newcomer@acme.example")).unwrap().account_id.clone()
    });
    let mut expected: Vec<_> = plan
        .changes
        .iter()
        .map(|c| {
            let operation = match c.kind {
                ChangeKind::RemoveFromGroup { .. } => "group.membership.remove",
                ChangeKind::AddToGroup { .. } => "group.membership.add",
                ChangeKind::Restore => "user.restore",
                ChangeKind::Enable => "user.activate",
                ChangeKind::Invite { .. } => "user.invite",
            };
            let account = c.account_id.clone().unwrap_or_else(|| newcomer.clone());
            (operation.to_owned(), Some(account), c.kind.group_id().map(str::to_owned))
        })
        .collect();
    let mut got: Vec<_> = events.iter().map(key).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);

    // And the organization now is what the file says.
    sim.with_state(|s| {
        assert_eq!(s.user(&suspended).unwrap().membership, Membership::Active);
        assert_eq!(s.user(&deactivated).unwrap().account_status, AccountStatus::Active);
        let mut now: Vec<String> =
            s.user(&regroup).unwrap().groups.iter().map(|&g| group_names[&s.groups[g as usize].id].clone()).collect();
        now.sort();
        regroup_groups.sort();
        assert_eq!(now, regroup_groups);
        assert_eq!(s.user(&newcomer).unwrap().groups.len(), 1);
    });

    // The audit trail has the run, every action applied; audit export gives it to auditors.
    let runs = FolderAudit::new(&audit).list(Some("cli-import")).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].actions.len(), 5);
    assert!(runs[0].actions.iter().all(|a| a.outcome == ActionOutcome::Applied), "{:?}", runs[0].actions);
    let out = dir.path().join("audit.csv");
    let exported =
        seatwarden(&sim, &["audit", "export", "--dir", path_str(&audit), "--since", "1d", "--csv", path_str(&out)])
            .await;
    assert_eq!(exported.code, exit::OK, "{}", exported.err);
    let audit_csv = std::fs::read_to_string(&out).unwrap();
    assert_eq!(audit_csv.lines().count(), 6, "{audit_csv}");
    assert!(audit_csv.contains(&format!("{newcomer},newcomer@acme.example,invite,,,cli-import,")), "{audit_csv}");
    // Who ran it, on every row of the command-line run.
    assert!(audit_csv.lines().skip(1).all(|l| l.contains(",enforce,alice@ops,")), "{audit_csv}");

    // Applied once, the file is now the organization's state: importing it again changes nothing.
    let again = seatwarden(&sim, &["users", "import", "--csv", path_str(&file)]).await;
    assert!(again.out.starts_with("0 changes"), "{}", again.out);
}

#[tokio::test]
async fn activation_is_a_dry_run_until_applied_then_restores_enables_and_invites_back() {
    let sim = sim(800).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    let (suspended, deactivated, removed, removed_by_id) = sim.with_state(|s| {
        let mut taken = vec![];
        let a = pick(s, &taken, |u| u.membership == Membership::Suspended && u.account_status == AccountStatus::Active);
        taken.push(a.clone());
        let b = pick(s, &taken, |u| {
            u.account_status == AccountStatus::Inactive
                && u.managed
                && u.membership == Membership::Active
                && u.account_type == SimAccountType::Atlassian
        });
        taken.push(b.clone());
        let c = pick(s, &taken, |u| u.membership == Membership::Active && u.account_status == AccountStatus::Active);
        taken.push(c.clone());
        let d = pick(s, &taken, |u| u.membership == Membership::Active && u.account_status == AccountStatus::Active);
        (a, b, c, d)
    });
    // Two people were removed from the directory (listed nowhere since); a policy's run recorded one.
    let removed_email = sim.with_state(|s| s.user(&removed).unwrap().email.clone().unwrap());
    let removed_by_id_email = sim.with_state(|s| s.user(&removed_by_id).unwrap().email.clone().unwrap());
    sim.with_state_mut(|s| {
        for id in [&removed, &removed_by_id] {
            s.remove_user(None, id).unwrap();
        }
    });
    let record = RunRecord {
        run_id: "20261101t000000z".into(),
        policy: "idle".into(),
        organization: sim.org_id(),
        mode: PolicyMode::Enforce,
        start_time: "2026-11-01T00:00:00Z".parse().unwrap(),
        end_time: None,
        phase: None,
        actor: None,
        actions: vec![RunAction {
            directory: None,
            time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2026-11-01T00:00:00Z".parse().unwrap()),
            account_id: removed_by_id.clone(),
            email: Some(removed_by_id_email.clone()),
            action: "remove-from-directory".into(),
            group: None,
            group_name: None,
            rule: "idle".into(),
            reason: "no activity".into(),
            outcome: ActionOutcome::Applied,
            error: None,
        }],
    };
    FolderAudit::new(&audit).write(&record).await.unwrap();

    let file = dir.path().join("people.csv");
    std::fs::write(&file, format!("accountId,email\n{suspended},\n{deactivated},\n,{removed_email}\n")).unwrap();
    let before = sim.events().len();
    let dry = seatwarden(&sim, &["users", "activate", "--csv", path_str(&file), "--audit-dir", path_str(&audit)]).await;
    assert_eq!(dry.code, exit::OK, "{}", dry.err);
    assert!(dry.out.contains("1 to restore, 1 to enable, 1 to invite back"), "{}", dry.out);
    assert!(dry.out.contains("dry run: nothing was changed"), "{}", dry.out);
    assert_eq!(sim.events().len(), before, "a dry run writes nothing");

    let applied =
        seatwarden(&sim, &["users", "activate", "--csv", path_str(&file), "--apply", "--audit-dir", path_str(&audit)])
            .await;
    assert_eq!(applied.code, exit::OK, "{}{}", applied.out, applied.err);
    let mut got: Vec<_> = sim.events()[before..].iter().map(key).collect();
    got.sort();
    let mut expected = vec![
        ("user.restore".to_owned(), Some(suspended.clone()), None),
        ("user.activate".to_owned(), Some(deactivated.clone()), None),
        ("user.invite".to_owned(), Some(removed.clone()), None),
    ];
    expected.sort();
    assert_eq!(got, expected);
    sim.with_state(|s| {
        assert_eq!(s.user(&suspended).unwrap().membership, Membership::Active);
        assert_eq!(s.user(&deactivated).unwrap().account_status, AccountStatus::Active);
        assert_eq!(s.user(&removed).unwrap().membership, Membership::Active, "invited back: the same account");
    });

    // --account of a removed user: the email comes from the audit trail.
    let before = sim.events().len();
    let one = seatwarden(
        &sim,
        &["users", "activate", "--account", &removed_by_id, "--apply", "--audit-dir", path_str(&audit)],
    )
    .await;
    assert_eq!(one.code, exit::OK, "{}{}", one.out, one.err);
    assert!(one.out.contains(&removed_by_id_email), "{}", one.out);
    let got: Vec<_> = sim.events()[before..].iter().map(key).collect();
    assert_eq!(got, vec![("user.invite".to_owned(), Some(removed_by_id.clone()), None)]);

    // Everyone is active now: activating them again plans nothing.
    let again =
        seatwarden(&sim, &["users", "activate", "--csv", path_str(&file), "--audit-dir", path_str(&audit)]).await;
    assert!(again.out.contains("0 to restore, 0 to enable, 0 to invite back, 3 left as they are"), "{}", again.out);
    let runs = FolderAudit::new(&audit).list(Some("cli-activate")).unwrap();
    assert_eq!(runs.iter().map(|r| r.actions.len()).sum::<usize>(), 4);
}

#[tokio::test]
async fn activation_by_group_takes_its_suspended_members_only() {
    let sim = sim(500).await;
    let s = snapshot(&sim).await;
    let (group, expected) = s
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mut ids: Vec<String> = s
                .accounts
                .iter()
                .filter(|u| {
                    u.memberships.iter().any(|m| {
                        m.groups.contains(&(i as u32)) && m.status == seatwarden::snapshot::UserStatus::Suspended
                    })
                })
                .map(|u| u.account_id.clone())
                .collect();
            ids.sort();
            (g.name.clone(), ids)
        })
        .find(|(_, ids)| ids.len() >= 2)
        .expect("a group with suspended members");
    let dry = seatwarden(&sim, &["users", "activate", "--group", &group]).await;
    assert_eq!(dry.code, exit::OK, "{}", dry.err);
    for id in &expected {
        assert!(dry.out.contains(&format!("({id})  (suspended → active)")), "{id} missing from\n{}", dry.out);
    }
    let unknown = seatwarden(&sim, &["users", "activate", "--group", "no-such-group"]).await;
    assert_eq!(unknown.code, exit::USAGE);
    assert!(unknown.err.contains("no group \"no-such-group\""), "{}", unknown.err);
}

#[tokio::test]
async fn list_filters_and_formats() {
    let sim = sim(400).await;
    let suspended = sim.with_state(|s| {
        s.users
            .iter()
            .filter(|u| u.membership == Membership::Suspended && u.account_status == AccountStatus::Active)
            .count()
    });
    let json = seatwarden(&sim, &["users", "list", "--status", "suspended", "--output", "json"]).await;
    assert_eq!(json.code, exit::OK, "{}", json.err);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json.out).unwrap();
    assert_eq!(rows.len(), suspended);
    assert!(rows.iter().all(|r| r["status"] == "suspended"));

    let external = seatwarden(&sim, &["users", "list", "--external", "--domain", "acme.example", "-o", "csv"]).await;
    assert_eq!(external.out.lines().count(), 1, "acme.example is claimed: no external users there\n{}", external.out);

    let idle = seatwarden(&sim, &["users", "list", "--inactive", "90d", "--product", "confluence", "-o", "csv"]).await;
    assert_eq!(idle.code, exit::OK, "{}", idle.err);
    let cutoff = Timestamp::now() - jiff::SignedDuration::from_hours(90 * 24);
    let mut reader = csv::Reader::from_reader(idle.out.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = headers.iter().position(|h| h == "lastActive.confluence").unwrap();
    let mut n = 0;
    for r in reader.records() {
        let r = r.unwrap();
        n += 1;
        if !r[col].is_empty() {
            assert!(r[col].parse::<Timestamp>().unwrap() <= cutoff, "{:?} was active on Confluence recently", &r[0]);
        }
    }
    assert!(n > 0, "the generated organization has users idle on Confluence");

    let table = seatwarden(&sim, &["users", "list", "--group", "confluence-users"]).await;
    assert!(table.out.starts_with("EMAIL"), "{}", table.out);

    let bad = seatwarden(&sim, &["users", "list", "--group", "nope"]).await;
    assert_eq!(bad.code, exit::USAGE);
}

#[tokio::test]
async fn a_missing_key_or_organization_is_a_usage_error_and_an_unreachable_one_exits_3() {
    let sim = sim(50).await;
    let base = sim.base_url();
    let run = |argv: Vec<String>| async move {
        let cli = Cli::try_parse_from(&argv).unwrap();
        let Command::Users(args) = cli.command else { unreachable!() };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let env = |name: &str| (name == KEY_VAR).then(|| API_KEY.to_owned());
        let mut io =
            Io { out: &mut out, err: &mut err, env: &env, progress: false, client_progress: Default::default() };
        let code = seatwarden::cli::users::execute(*args, &mut io).await;
        (code, String::from_utf8(err).unwrap())
    };
    let args = |extra: &[&str]| {
        let mut v: Vec<String> = ["seatwarden", "users", "list"].map(String::from).to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let (code, err) =
        run(args(&["--org-url", &base, "--org-id", "sim-org", "--api-key-env", "NOT_SET_ANYWHERE"])).await;
    assert_eq!(code, exit::USAGE);
    assert!(err.contains("NOT_SET_ANYWHERE is not set"), "{err}");
    let (code, err) = run(args(&["--org-url", &base])).await;
    assert_eq!(code, exit::USAGE);
    assert!(err.contains("--org-id"), "{err}");
    let (code, err) = run(args(&[
        "--org-url",
        &base,
        "--org-id",
        "no-such-org",
        "--api-key-env",
        KEY_VAR,
        "--requests-per-minute",
        "100000",
    ]))
    .await;
    assert_eq!(code, exit::UNREACHABLE, "{err}");
    assert!(err.contains("cannot read organization no-such-org"), "{err}");
    assert!(!err.contains(API_KEY));

    // -f: the example AtlassianOrganization (orgId sim-org), its API URL overridden by the flag.
    let example = support::repo_root().join("examples/01-organization.yaml");
    let with_manifest = |extra: &[&str]| {
        let mut v = args(&["-f", path_str(&example), "--api-key-env", KEY_VAR, "--requests-per-minute", "100000"]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let (code, err) = run(with_manifest(&["--org-url", &base, "--status", "active"])).await;
    assert_eq!(code, exit::OK, "{err}");
    let directory_users = sim.with_state(|s| s.users.iter().filter(|u| u.is_directory_user()).count());
    assert!(err.contains(&format!(" of {directory_users} users")), "{err}");
    // Without the override it would call api.atlassian.com: the flag is what points it here.
    let policies_only = support::repo_root().join("examples/04-policy-dryrun.yaml");
    let mut v = args(&["-f", path_str(&policies_only), "--api-key-env", KEY_VAR]);
    v.extend(["--org-url".to_owned(), base.clone()]);
    let (code, err) = run(v).await;
    assert_eq!(code, exit::USAGE);
    assert!(err.contains("no AtlassianOrganization in it"), "{err}");
}

#[tokio::test]
async fn with_a_namespace_applied_changes_are_lifecycle_runs_and_audit_export_reads_them() {
    let Some(client) = support::kube_client().await else { return };
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "users-audit").await;
    let sim = sim(200).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("invite.csv");
    std::fs::write(&file, "email,groups\ncluster.newcomer@acme.example,confluence-users\n").unwrap();
    let applied = seatwarden(&sim, &["users", "import", "--csv", path_str(&file), "--apply", "--namespace", &ns]).await;
    assert_eq!(applied.code, exit::OK, "{}{}", applied.out, applied.err);
    assert!(applied.out.contains(&format!("LifecycleRuns of namespace {ns}")), "{}", applied.out);

    let runs = seatwarden::record::ClusterAudit::new(client, &ns).list(Some("cli-import")).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].actions.len(), 1);
    assert_eq!(runs[0].actions[0].outcome, ActionOutcome::Applied);
    assert_eq!(runs[0].actions[0].email.as_deref(), Some("cluster.newcomer@acme.example"));

    let out = dir.path().join("audit.csv");
    let exported =
        seatwarden(&sim, &["audit", "export", "--namespace", &ns, "--policy", "cli-import", "--csv", path_str(&out)])
            .await;
    assert_eq!(exported.code, exit::OK, "{}", exported.err);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("cluster.newcomer@acme.example,invite,,,cli-import,"), "{text}");
}

#[tokio::test]
async fn a_write_refused_at_a_user_limit_is_reported_recorded_as_failed_and_exits_6() {
    let sim = sim(300).await;
    let dir = tempfile::tempdir().unwrap();
    // A license group whose product is full, and an active user outside it.
    let (group, user_email, user_id) = sim.with_state_mut(|s| {
        let g = s.groups.iter().position(|g| !g.idp_synced && g.grants.len() == 1 && g.directory == 0).unwrap();
        let instance = s.groups[g].grants[0];
        s.products[instance as usize].license_limit = s.seats_used(instance);
        let u = s
            .users
            .iter()
            .filter(|u| {
                u.is_billable()
                    && u.email.is_some()
                    && !s.access_of(u).contains(&instance)
                    && u.groups.iter().all(|&x| !s.groups[x as usize].idp_synced)
            })
            .min_by(|a, b| a.account_id.cmp(&b.account_id))
            .unwrap();
        (s.groups[g].name.clone(), u.email.clone().unwrap(), u.account_id.clone())
    });
    let file = dir.path().join("add.csv");
    std::fs::write(&file, format!("email,groups\n{user_email},{group}\n")).unwrap();
    let audit = dir.path().join("audit");
    // --add-only: the one change is the add the full product refuses.
    let ran = seatwarden(
        &sim,
        &["users", "import", "--csv", path_str(&file), "--add-only", "--apply", "--audit-dir", path_str(&audit)],
    )
    .await;
    // A refusal at a user limit stops the apply; all or nothing: there was nothing to undo.
    assert_eq!(ran.code, exit::USER_LIMIT, "{}{}", ran.out, ran.err);
    assert!(ran.out.contains("nothing was left changed: the 0 change(s) this apply made were undone"), "{}", ran.out);
    assert!(ran.err.contains("refused_license_limit"), "{}", ran.err);
    let runs = FolderAudit::new(&audit).list(Some("cli-import")).unwrap();
    let action = &runs[0].actions[0];
    assert_eq!((action.account_id.as_str(), action.outcome), (user_id.as_str(), ActionOutcome::Failed));
    assert!(action.error.as_deref().unwrap_or_default().starts_with("refused_license_limit"), "{action:?}");
}

#[test]
fn inactive_takes_days_or_weeks_and_says_why_it_refuses_minutes_and_hours() {
    let parse = |span: &str| {
        Cli::try_parse_from([
            "seatwarden",
            "users",
            "list",
            "--inactive",
            span,
            "--org-url",
            "http://127.0.0.1:9",
            "--org-id",
            "o",
            "--api-key-env",
            KEY_VAR,
        ])
    };
    assert!(parse("90d").is_ok() && parse("12w").is_ok());
    // `3m` once listed everyone (three minutes); it is ambiguous, so it is refused with the reason.
    let e = parse("3m").expect_err("3m is refused").to_string();
    assert!(e.contains("ambiguous") && e.contains("minutes or months"), "{e}");
    let e = parse("36h").expect_err("36h is refused").to_string();
    assert!(e.contains("below a day"), "{e}");
}
