//! `users import` and `users activate` at a product's user limit, run as commands against the
//! simulator over real HTTP (its Jira Service Management has two seats left). With the limit
//! declared, the dry run lists the rows Atlassian would refuse and `--apply` refuses to start
//! (`--apply-what-fits` makes the rows that fit); with the limit unknown, Atlassian's refusal
//! mid-apply stops it and the changes it made are undone, each undo in the audit trail. The
//! simulator's event log is the referee.

use std::path::Path;

use clap::Parser;
use jiff::Timestamp;
use seatwarden::cli::{Cli, Command, exit, users::Io};
use seatwarden::crd::ActionOutcome;
use seatwarden::product::Product;
use seatwarden::record::FolderAudit;
use seatwarden::sim::state::{AccountStatus, Membership, SimAccountType};
use seatwarden::sim::{SimConfig, SimHandle, SimOutcome, Simulator};

const API_KEY: &str = "sim-key-limits-77aa";
const KEY_VAR: &str = "CLI_LIMITS_API_KEY";
const JSM_GROUP: &str = "jira-servicemanagement-users";

/// The simulator, four ordinary people of directory 0 outside the JSM group, and the JSM limit
/// (two seats left).
async fn sim() -> (SimHandle, Vec<(String, String)>, u32) {
    seatwarden::tls::install_crypto_provider();
    let config =
        SimConfig { users: 300, seed: 11, api_key: API_KEY.into(), now: Timestamp::now(), ..Default::default() };
    let sim = Simulator::start(config, "127.0.0.1:0").await.expect("simulator starts");
    let (people, limit) = sim.with_state_mut(|s| {
        s.products.iter_mut().for_each(|p| p.license_limit = 1_000_000);
        let g = s.groups.iter().position(|g| g.name == JSM_GROUP && g.directory == 0).unwrap() as u32;
        let people: Vec<(String, String)> = s
            .users
            .iter()
            .filter(|u| {
                u.email.is_some()
                    && u.directory == 0
                    && !u.org_admin
                    && u.management_source.is_none()
                    && !u.groups.contains(&g)
                    && !s.is_site_admin(u)
                    && u.account_type == SimAccountType::Atlassian
                    && u.membership == Membership::Active
                    && u.account_status == AccountStatus::Active
                    && s.api_key_owner.as_deref() != Some(u.account_id.as_str())
            })
            .take(4)
            .map(|u| (u.account_id.clone(), u.email.clone().unwrap()))
            .collect();
        let jsm = s.products.iter().position(|p| p.product.known() == Some(Product::JiraServiceManagement)).unwrap();
        let limit = s.seats_used(jsm as _) + 2;
        s.products[jsm].license_limit = limit;
        (people, limit)
    });
    assert_eq!(people.len(), 4);
    (sim, people, limit)
}

async fn users_cmd(sim: &SimHandle, args: &[&str]) -> (u8, String, String) {
    let (base, org) = (sim.base_url(), sim.org_id());
    let mut argv: Vec<&str> = vec!["seatwarden"];
    argv.extend(args);
    argv.extend(["--org-url", &base, "--org-id", &org, "--api-key-env", KEY_VAR, "--requests-per-minute", "1000000"]);
    let cli = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?} parses: {e}"));
    let Command::Users(args) = cli.command else { panic!("a users command") };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let env = |name: &str| (name == KEY_VAR).then(|| API_KEY.to_owned());
    let mut io = Io { out: &mut out, err: &mut err, env: &env, progress: false, client_progress: Default::default() };
    let code = seatwarden::cli::users::execute(*args, &mut io).await;
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The simulator's writes: (operation, account, applied or the refusal's code).
fn writes(sim: &SimHandle) -> Vec<(String, String, String)> {
    sim.events()
        .into_iter()
        .map(|e| {
            let outcome = match e.outcome {
                SimOutcome::Refused { code, .. } => code,
                other => format!("{other:?}"),
            };
            (e.operation, e.account_id.unwrap_or_default(), outcome)
        })
        .collect()
}

fn members(sim: &SimHandle, people: &[(String, String)]) -> usize {
    sim.with_state(|s| {
        let g = s.groups.iter().position(|g| g.name == JSM_GROUP && g.directory == 0).unwrap() as u32;
        people.iter().filter(|(id, _)| s.users.iter().any(|u| &u.account_id == id && u.groups.contains(&g))).count()
    })
}

#[tokio::test]
async fn a_declared_limit_shows_the_refusals_in_the_dry_run_and_apply_is_all_or_nothing() {
    let (sim, people, limit) = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("jsm.csv");
    let rows: String = people.iter().map(|(_, e)| format!("{e},{JSM_GROUP}\n")).collect();
    std::fs::write(&csv, format!("email,groups\n{rows}")).unwrap();
    let audit = dir.path().join("audit");
    let declared = format!("jira-service-management={limit}");
    let base = ["users", "import", "--csv", p(&csv), "--add-only", "--user-limit", &declared, "--audit-dir", p(&audit)];

    let (code, out, err) = users_cmd(&sim, &base).await;
    assert_eq!(code, exit::OK, "{out}{err}");
    let in_use = limit - 2;
    assert!(
        out.contains(&format!(
            "user limit: Jira Service Management: limit {limit} (--user-limit), {in_use} in use, these changes would add 4: 2 row(s) would be refused"
        )),
        "{out}"
    );
    let refused: Vec<&str> = out.lines().filter(|l| l.starts_with("refused at the user limit")).collect();
    assert_eq!(refused.len(), 2, "{out}");
    assert!(refused[0].contains("line     4") && refused[1].contains("line     5"), "file order: {out}");
    assert!(out.contains("--apply refuses to start while 2 change(s) would be refused"), "{out}");
    assert!(sim.events().is_empty(), "a dry run changes nothing");

    // --apply: refused before the first write.
    let mut apply = base.to_vec();
    apply.push("--apply");
    let (code, out, err) = users_cmd(&sim, &apply).await;
    assert_eq!(code, exit::USER_LIMIT, "{out}{err}");
    assert!(
        err.contains("2 of 4 changes would be refused at a user limit (Jira Service Management): nothing was changed"),
        "{err}"
    );
    assert!(sim.events().is_empty(), "all or nothing: nothing");

    // --apply-what-fits: the first two rows, in file order; the rest listed.
    let mut fits = base.to_vec();
    fits.push("--apply-what-fits");
    let (code, out, err) = users_cmd(&sim, &fits).await;
    assert_eq!(code, exit::USER_LIMIT, "not everything was applied: {out}{err}");
    let applied: Vec<String> = writes(&sim).into_iter().map(|(_, a, o)| format!("{a} {o}")).collect();
    assert_eq!(applied, vec![format!("{} Applied", people[0].0), format!("{} Applied", people[1].0)]);
    assert!(out.contains("applied 2 of 2 changes (0 failed)") && out.contains("left out at a user limit: 2"), "{out}");
    let runs = FolderAudit::new(&audit).list(Some("cli-import")).unwrap();
    assert_eq!(runs.len(), 1);
    assert!(runs[0].actions.iter().all(|a| a.outcome == ActionOutcome::Applied) && runs[0].actions.len() == 2);
}

#[tokio::test]
async fn an_unknown_limit_refused_mid_apply_undoes_the_adds_it_made() {
    let (sim, people, _) = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("jsm.csv");
    let rows: String = people.iter().map(|(_, e)| format!("{e},{JSM_GROUP}\n")).collect();
    std::fs::write(&csv, format!("email,groups\n{rows}")).unwrap();
    let audit = dir.path().join("audit");
    let base = ["users", "import", "--csv", p(&csv), "--add-only", "--audit-dir", p(&audit)];

    let (code, out, _) = users_cmd(&sim, &base).await;
    assert_eq!(code, exit::OK);
    assert!(out.contains("user limit: Jira Service Management: limit unknown"), "{out}");
    assert!(out.contains("--user-limit jira-service-management=N"), "{out}");

    let mut apply = base.to_vec();
    apply.push("--apply");
    let (code, out, err) = users_cmd(&sim, &apply).await;
    assert_eq!(code, exit::USER_LIMIT, "{out}{err}");
    assert!(out.contains("nothing was left changed: the 2 change(s) this apply made were undone"), "{out}");
    let w = writes(&sim);
    let add = "group.membership.add".to_owned();
    let remove = "group.membership.remove".to_owned();
    assert_eq!(
        w,
        vec![
            (add.clone(), people[0].0.clone(), "Applied".into()),
            (add.clone(), people[1].0.clone(), "Applied".into()),
            (add, people[2].0.clone(), "ADMIN-409-3".into()),
            (remove.clone(), people[1].0.clone(), "Applied".into()),
            (remove, people[0].0.clone(), "Applied".into()),
        ],
        "two adds, the refusal, nothing after it, then the two adds taken back newest first"
    );
    assert_eq!(members(&sim, &people), 0, "nobody is left in the group");
    let runs = FolderAudit::new(&audit).list(Some("cli-import")).unwrap();
    let rows: Vec<(String, ActionOutcome)> = runs[0].actions.iter().map(|a| (a.action.clone(), a.outcome)).collect();
    assert_eq!(
        rows,
        vec![
            ("add-group".into(), ActionOutcome::Applied),
            ("add-group".into(), ActionOutcome::Applied),
            ("add-group".into(), ActionOutcome::Failed),
            ("add-group".into(), ActionOutcome::Skipped),
            ("remove-group".into(), ActionOutcome::Applied),
            ("remove-group".into(), ActionOutcome::Applied),
        ]
    );
    assert!(runs[0].actions[3].error.as_deref().unwrap().starts_with("not attempted: the apply stopped"));
    assert!(runs[0].actions[4].reason.starts_with("undo of the add-group of"), "{}", runs[0].actions[4].reason);
}

#[tokio::test]
async fn activate_restores_within_the_limit_and_re_suspends_what_it_restored_when_refused() {
    let (sim, people, _) = sim().await;
    // The four are suspended members of the JSM group: restoring them takes four seats, two are left
    // (their suspension freed none: the limit was set with them outside the group).
    sim.with_state_mut(|s| {
        let g = s.groups.iter().position(|g| g.name == JSM_GROUP && g.directory == 0).unwrap() as u32;
        for (id, _) in &people {
            let u = s.users.iter_mut().find(|u| &u.account_id == id).unwrap();
            u.groups.push(g);
            u.membership = Membership::Suspended;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("back.csv");
    let rows: String = people.iter().map(|(id, _)| format!("{id}\n")).collect();
    std::fs::write(&csv, format!("accountId\n{rows}")).unwrap();
    let audit = dir.path().join("audit");
    let base = ["users", "activate", "--csv", p(&csv), "--audit-dir", p(&audit)];

    let (code, out, err) =
        users_cmd(&sim, &[&base[..], &["--apply", "--user-limit", "JiraServiceManagement=0"]].concat()).await;
    assert_eq!(code, exit::USER_LIMIT, "{out}{err}");
    assert!(sim.events().is_empty(), "refused before any write");

    let mut apply = base.to_vec();
    apply.push("--apply");
    let (code, out, err) = users_cmd(&sim, &apply).await;
    assert_eq!(code, exit::USER_LIMIT, "{out}{err}");
    let ops: Vec<(String, String)> = writes(&sim).into_iter().map(|(op, _, o)| (op, o)).collect();
    assert_eq!(
        ops,
        vec![
            ("user.restore".into(), "Applied".into()),
            ("user.restore".into(), "Applied".into()),
            ("user.restore".into(), "ADMIN-409-3".into()),
            ("user.suspend".into(), "Applied".into()),
            ("user.suspend".into(), "Applied".into()),
        ]
    );
    let suspended = sim.with_state(|s| {
        people
            .iter()
            .filter(|(id, _)| s.users.iter().any(|u| &u.account_id == id && u.membership == Membership::Suspended))
            .count()
    });
    assert_eq!(suspended, 4, "everyone is as they were");
    let runs = FolderAudit::new(&audit).list(Some("cli-activate")).unwrap();
    assert_eq!(
        runs[0].actions.iter().filter(|a| a.action == "suspend" && a.outcome == ActionOutcome::Applied).count(),
        2
    );
}
