//! `seatwarden plan` end to end: the binary against the repository's examples and an in-process
//! simulator; exit codes 0 / 2 / 3; JSON shape; a ledger folder changes what is planned.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use seatwarden::crd::Duration;
use seatwarden::ledger::{Ledger, NoticeRecord, UserRecord};

const NOW: &str = "2026-11-25T09:00:00Z";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn plan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seatwarden")).arg("plan").args(args).output().expect("the binary runs")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn simulated_plan_prints_json_with_actions_and_totals() {
    let ex = examples();
    let out = plan(&["-f", ex.to_str().unwrap(), "--simulate", "--users", "400", "--now", NOW, "--format", "json"]);
    let v = json(&out);
    let actions = v["actions"].as_array().expect("actions");
    let notices = v["notices"].as_array().expect("notices");
    assert!(!actions.is_empty() || !notices.is_empty(), "a simulated organization has inactive users");
    for a in actions {
        for key in ["accountId", "email", "action", "rule", "policy", "reason", "seats", "mode"] {
            assert!(a.get(key).is_some(), "action without {key}: {a}");
        }
        assert!(!a["reason"].as_str().unwrap().is_empty());
    }
    assert!(v["totals"]["seatsFreed"].is_object());
    // Every policy is shown with its real mode.
    let modes: Vec<&str> = v["policies"].as_array().unwrap().iter().map(|p| p["mode"].as_str().unwrap()).collect();
    assert!(modes.contains(&"DryRun") && modes.contains(&"Enforce"), "{modes:?}");
    // Deterministic: the same seed and instant give the same plan.
    let again =
        json(&plan(&["-f", ex.to_str().unwrap(), "--simulate", "--users", "400", "--now", NOW, "--format", "json"]));
    assert_eq!(v, again);
}

#[test]
fn text_and_markdown_are_grouped_by_policy() {
    let ex = examples();
    let out = plan(&["-f", ex.to_str().unwrap(), "--simulate", "--users", "300", "--now", NOW]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("== policy reclaim-inactive [Enforce]"), "{text}");
    assert!(text.contains("[DryRun]") && text.contains("nothing is applied"), "{text}");
    assert!(text.contains("== totals"));
    let out = plan(&["-f", ex.to_str().unwrap(), "--simulate", "--users", "300", "--now", NOW, "--format", "markdown"]);
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.starts_with("## Seatwarden plan"), "{md}");
    assert!(md.contains("| policy | mode | applies |") && md.contains("**Total:**"), "{md}");
}

#[test]
fn each_policy_says_whether_it_runs_now_and_when_next() {
    let ex = examples();
    let at = |now: &str| {
        json(&plan(&["-f", ex.to_str().unwrap(), "--simulate", "--users", "300", "--now", now, "--format", "json"]))
    };
    let policy = |v: &serde_json::Value, name: &str| {
        v["policies"].as_array().unwrap().iter().find(|p| p["name"] == name).cloned().unwrap()
    };
    // Wednesday 10:00 in Berlin: inside the Enforce policy's office-hours window.
    let v = at(NOW);
    let enforce = policy(&v, "reclaim-inactive");
    assert_eq!(enforce["schedule"]["runsNow"], true, "{}", enforce["schedule"]);
    assert_eq!(enforce["schedule"]["trigger"], "FirstRun");
    // Its next run: 12 h later is 21:00 in Berlin, outside; Thursday 08:00 Berlin = 07:00 UTC.
    assert_eq!(enforce["schedule"]["nextRun"], "2026-11-26T07:00:00Z");
    let applied_now: Vec<&serde_json::Value> =
        v["actions"].as_array().unwrap().iter().filter(|a| a["appliesNow"] == true).collect();
    assert!(!applied_now.is_empty());
    assert!(applied_now.iter().all(|a| a["policy"] == "reclaim-inactive" && a["applies"] == true));

    // Saturday: the window is closed, nothing of it applies now, and the plan says when it runs.
    let v = at("2026-11-28T10:00:00Z");
    let enforce = policy(&v, "reclaim-inactive");
    assert_eq!(enforce["schedule"]["runsNow"], false);
    assert_eq!(enforce["schedule"]["nextRun"], "2026-11-30T07:00:00Z", "Monday 08:00 in Berlin");
    assert!(enforce["schedule"]["explanation"].as_str().unwrap().contains("outside its window"));
    assert!(v["actions"].as_array().unwrap().iter().all(|a| a["appliesNow"] == false));
    // The DryRun policy has no window: it runs (and applies nothing).
    assert_eq!(policy(&v, "report-inactive")["schedule"]["runsNow"], true);
    let out = plan(&["-f", ex.to_str().unwrap(), "--simulate", "--users", "300", "--now", "2026-11-28T10:00:00Z"]);
    let text = String::from_utf8(out.stdout).unwrap();
    // The schedule has a line of its own under each policy's header, and is no condition.
    let section = text.split("\n== ").find(|s| s.starts_with("policy reclaim-inactive")).expect("its section");
    let line = section.lines().nth(1).unwrap_or_default();
    assert!(line.starts_with("schedule: waits: outside its window 08:00–18:00 Europe/Berlin"), "{section}");
    assert!(line.ends_with("next run 2026-11-30T07:00:00Z"), "{line}");
    let dry = text.split("\n== ").find(|s| s.starts_with("policy report-inactive")).expect("its section");
    assert!(dry.lines().nth(1).unwrap_or_default().starts_with("schedule: runs now (first run; no window)"), "{dry}");
    for reason in ["RunsNow", "Waiting", "NeverRuns"] {
        assert!(!text.contains(&format!("! {reason}:")), "{text}");
        for p in v["policies"].as_array().unwrap() {
            assert!(p["conditions"].as_array().unwrap().iter().all(|c| c["reason"] != reason), "{p}");
        }
    }
}

#[test]
fn invalid_manifests_exit_2_naming_file_document_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("policy.yaml");
    std::fs::write(
        &bad,
        "apiVersion: seatwarden.io/v1alpha1\nkind: LifecyclePolicy\nmetadata: {name: p}\nspec:\n  organizationRef: {name: acme}\n  mode: Sometimes\n",
    )
    .unwrap();
    let out = plan(&["-f", bad.to_str().unwrap(), "--simulate", "--users", "50"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("policy.yaml, document 1 (LifecyclePolicy/p), field spec.mode"), "{err}");
}

#[test]
fn bad_flags_exit_2() {
    let ex = examples();
    let out = plan(&["-f", ex.to_str().unwrap(), "--simulate", "--now", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--now"));
    // A real organization needs the API key's variable.
    let out = plan(&["-f", ex.to_str().unwrap(), "--org-id", "x", "--org-url", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--api-key-env"));
    // --simulate and a real organization exclude each other (clap's usage error is 2 too).
    let out = plan(&["-f", ex.to_str().unwrap(), "--simulate", "--org-id", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_unreachable_organization_exits_3() {
    let ex = examples();
    let out = Command::new(env!("CARGO_BIN_EXE_seatwarden"))
        .args(["plan", "-f", ex.to_str().unwrap(), "--org-id", "org-x", "--org-url", "http://127.0.0.1:9"])
        .args(["--api-key-env", "SEATWARDEN_TEST_KEY", "--now", NOW])
        .env("SEATWARDEN_TEST_KEY", "not-a-real-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not be read"), "{err}");
    assert!(!err.contains("not-a-real-key"), "the key must never be printed");
}

#[test]
fn a_ledger_folder_with_a_delivered_notice_moves_the_user_to_the_next_notice() {
    let ex = examples();
    let args = ["-f", ex.to_str().unwrap(), "--simulate", "--users", "400", "--now", NOW, "--format", "json"];
    let first = json(&plan(&args));
    let notice = first["notices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["policy"] == "reclaim-inactive" && n["rule"] == "jira-idle-60d" && n["leadTime"] == "14d")
        .expect("a 14-day Jira notice")
        .clone();
    let account = notice["accountId"].as_str().unwrap().to_owned();

    // The 14-day notice went out 20 days ago: now the 3-day notice is due.
    let mut ledger = Ledger::new(first["organization"].as_str().unwrap());
    ledger.users.insert(
        account.clone(),
        UserRecord {
            notices: vec![NoticeRecord {
                policy: "reclaim-inactive".into(),
                rule: "jira-idle-60d".into(),
                lead_time: Duration::from_days(14),
                action: Some(seatwarden::crd::RuleAction::RemoveLicensedGroups),
                product: Some(seatwarden::product::Product::JiraSoftware),
                delivered_at: "2026-11-05T09:00:00Z".parse().unwrap(),
            }],
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ledger-00.json"), ledger.to_json()).unwrap();
    let mut with_ledger: Vec<&str> = args.to_vec();
    with_ledger.extend(["--ledger", dir.path().to_str().unwrap()]);
    let second = json(&plan(&with_ledger));
    let next: Vec<&serde_json::Value> =
        second["notices"].as_array().unwrap().iter().filter(|n| n["accountId"] == account.as_str()).collect();
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(next[0]["leadTime"], "3d");
    // Read only: the folder is untouched.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_simulated_organization_of_two_directories_names_the_directory_of_every_write() {
    let ex = examples();
    let ex = ex.to_str().unwrap();
    let shape = ["--directories", "2", "--shared-accounts", "0.2", "--unmodelled-products"];
    let base = ["-f", ex, "--simulate", "--users", "800", "--now", NOW, "--format", "json"];
    let two = json(&plan(&[&base[..], &shape[..]].concat()));
    let actions = two["actions"].as_array().unwrap();
    let directories: std::collections::BTreeSet<&str> =
        actions.iter().map(|a| a["directory"].as_str().expect("every write names its directory")).collect();
    assert_eq!(directories.len(), 2, "writes in both directories: {directories:?}");
    // Per account and action: once per directory at most, and a deactivation once per account.
    let mut writes: std::collections::HashMap<(&str, &str), Vec<&str>> = std::collections::HashMap::new();
    for a in actions {
        let key = (a["accountId"].as_str().unwrap(), a["action"].as_str().unwrap());
        writes.entry(key).or_default().push(a["directory"].as_str().unwrap());
    }
    for ((account, action), dirs) in &writes {
        let mut unique = dirs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), dirs.len(), "{action} of {account} twice in one directory: {dirs:?}");
        if *action == "deactivate" {
            assert_eq!(dirs.len(), 1, "deactivation is account-wide: {account} {dirs:?}");
        }
    }
    // One directory (the default): every write goes to it.
    let one = json(&plan(&base));
    let directories: std::collections::BTreeSet<&str> =
        one["actions"].as_array().unwrap().iter().map(|a| a["directory"].as_str().unwrap()).collect();
    assert_eq!(directories.len(), 1, "{directories:?}");
    // The simulated organization's shape needs --simulate: said, not ignored.
    let out = plan(&["-f", ex, "--org-id", "x", "--org-url", "http://127.0.0.1:9", "--directories", "2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--directories shapes the simulated organization"));
}
