//! The command line keeps the operator's rules (DESIGN invariants 1, 7, 9): `users import` and
//! `users activate` refuse protected users, admins and IdP-synced accounts — listed in the dry run
//! with why — and re-read each user right before writing.

use std::path::Path;

use clap::Parser;
use jiff::Timestamp;
use seatwarden::atlassian::{AtlassianClient, ClientConfig, Credentials, Secret};
use seatwarden::cli::{Cli, Command, users::Io};
use seatwarden::crd::{ActionOutcome, AtlassianOrganization};
use seatwarden::record::FolderAudit;
use seatwarden::sim::{SimConfig, SimHandle, Simulator};
use seatwarden::users::{Guard, ImportOptions, apply_changes, parse_import_csv, plan_import};

const API_KEY: &str = "sim-key-rules-5e1d";
const KEY_VAR: &str = "CLI_RULES_API_KEY";

async fn sim() -> SimHandle {
    seatwarden::tls::install_crypto_provider();
    let config =
        SimConfig { users: 300, seed: 11, api_key: API_KEY.into(), now: Timestamp::now(), ..Default::default() };
    let sim = Simulator::start(config, "127.0.0.1:0").await.expect("simulator starts");
    sim.with_state_mut(|s| s.products.iter_mut().for_each(|p| p.license_limit = 1_000_000));
    sim
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

/// Three ordinary users, none in `group`, and a group they can all be added to.
fn pick(sim: &SimHandle) -> (Vec<(String, String)>, String) {
    sim.with_state(|s| {
        let g = s.groups.iter().position(|g| !g.idp_synced && g.directory == 0 && g.site_admin_of.is_none()).unwrap();
        let people: Vec<(String, String)> = s
            .users
            .iter()
            .filter(|u| {
                u.email.is_some()
                    && u.directory == 0
                    && !u.org_admin
                    && u.management_source.is_none()
                    && !u.groups.contains(&(g as _))
                    && !s.is_site_admin(u)
                    && matches!(u.account_type, seatwarden::sim::state::SimAccountType::Atlassian)
                    && u.membership == seatwarden::sim::state::Membership::Active
                    && u.account_status == seatwarden::sim::state::AccountStatus::Active
                    && s.api_key_owner.as_deref() != Some(u.account_id.as_str())
            })
            .take(3)
            .map(|u| (u.account_id.clone(), u.email.clone().unwrap()))
            .collect();
        (people, s.groups[g].name.clone())
    })
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn import_refuses_admins_and_protected_users_in_the_dry_run_and_when_applying() {
    let sim = sim().await;
    let (people, group) = pick(&sim);
    let [(admin, admin_email), (vip, vip_email), (plain, plain_email)] = <[_; 3]>::try_from(people).unwrap();
    sim.with_state_mut(|s| s.users.iter_mut().find(|u| u.account_id == admin).unwrap().org_admin = true);
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("org.yaml"),
        format!(
            "apiVersion: seatwarden.io/v1alpha1\nkind: AtlassianOrganization\nmetadata:\n  name: acme\n  namespace: it\n\
             spec:\n  orgId: {}\n  apiBaseUrl: {}\n  credentials:\n    apiKeySecretRef: {{name: k, key: k}}\n---\n\
             apiVersion: seatwarden.io/v1alpha1\nkind: ProtectedUser\nmetadata:\n  name: vip\n  namespace: it\n\
             spec:\n  reason: board member\n  emails: [\"{vip_email}\"]\n",
            sim.org_id(),
            sim.base_url()
        ),
    )
    .unwrap();
    let csv = dir.path().join("add.csv");
    std::fs::write(&csv, format!("email,groups\n{admin_email},{group}\n{vip_email},{group}\n{plain_email},{group}\n"))
        .unwrap();
    let audit = dir.path().join("audit");
    let base =
        ["users", "import", "--csv", p(&csv), "--add-only", "--filename", p(&manifests), "--audit-dir", p(&audit)];

    let (code, out, err) = users_cmd(&sim, &base).await;
    assert_eq!(code, 0, "{out}{err}");
    let refused: Vec<&str> = out.lines().filter(|l| l.starts_with("refused:")).collect();
    assert_eq!(refused.len(), 2, "the admin and the protected user are listed as refused: {out}");
    assert!(refused.iter().any(|l| l.contains(&admin_email) && l.contains("admin")), "{out}");
    assert!(refused.iter().any(|l| l.contains(&vip_email) && l.contains("ProtectedUser vip")), "{out}");
    assert!(out.contains("pass --apply to make these 1 changes"), "only the allowed change is offered: {out}");
    assert!(sim.events().is_empty(), "a dry run changes nothing");

    let mut apply = base.to_vec();
    apply.push("--apply");
    let (code, out, err) = users_cmd(&sim, &apply).await;
    assert_eq!(code, 0, "{out}{err}");
    let touched: Vec<String> = sim.events().iter().filter_map(|e| e.account_id.clone()).collect();
    assert_eq!(touched, vec![plain.clone()], "only the ordinary user is changed");
    assert!(!touched.contains(&admin) && !touched.contains(&vip));
    let runs = FolderAudit::new(&audit).list(Some("cli-import")).unwrap();
    assert_eq!(runs[0].actions.len(), 1);
    assert_eq!(runs[0].actions[0].outcome, ActionOutcome::Applied);
}

#[tokio::test]
async fn a_user_who_became_an_admin_since_the_listing_is_left_alone() {
    let sim = sim().await;
    let (people, group) = pick(&sim);
    let mut config = ClientConfig::new(sim.org_id(), &sim.base_url()).unwrap();
    config.budget.org_requests_per_minute = 1_000_000;
    let client =
        AtlassianClient::new(config, &Credentials { org_api_key: Secret::new(API_KEY), site_user: None }).unwrap();
    let snapshot = client.snapshot(Timestamp::now()).await.unwrap();
    let csv = format!("email,groups\n{},{group}\n{},{group}\n", people[0].1, people[1].1);
    let file = parse_import_csv(csv.as_bytes()).unwrap();
    let plan = plan_import(&file, &snapshot, ImportOptions { add_only: true });
    assert_eq!(plan.changes.len(), 2);
    // Between the listing (and its dry run) and the write, the first user is made an org admin.
    sim.with_state_mut(|s| s.users.iter_mut().find(|u| u.account_id == people[0].0).unwrap().org_admin = true);
    let org: AtlassianOrganization = serde_json::from_value(serde_json::json!({
        "apiVersion": "seatwarden.io/v1alpha1", "kind": "AtlassianOrganization", "metadata": {"name": "acme"},
        "spec": {"orgId": sim.org_id(), "credentials": {"apiKeySecretRef": {"name": "k", "key": "k"}}}}))
    .unwrap();
    let guard = Guard { organization: &org, protections: &[], policy: "cli-import", now: snapshot.taken_at };
    let (allowed, refused) = guard.screen(&snapshot, &plan.changes);
    assert_eq!((allowed.len(), refused.len()), (2, 0), "the listing still shows no admin");
    let applied = apply_changes(&client, &snapshot, &guard, &allowed, |_| {}).await;
    let skipped = applied.iter().find(|a| a.change.account_id.as_deref() == Some(people[0].0.as_str())).unwrap();
    assert!(skipped.skipped.as_deref().is_some_and(|w| w.contains("admin")), "{skipped:?}");
    let touched: Vec<String> = sim.events().iter().filter_map(|e| e.account_id.clone()).collect();
    assert_eq!(touched, vec![people[1].0.clone()], "the re-read kept the new admin out");
}
