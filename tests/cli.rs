//! The binary as people and CI meet it: exit codes and their documentation, output to pipes and
//! files (a closed pipe is exit 0, no colour off a terminal, no log lines by default), shell
//! completions, CSV line numbers through `users import`, the audit export's final outcomes, and
//! `demo` from any folder with a report that matches its audit trail.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use jiff::Timestamp;
use seatwarden::sim::{SimConfig, SimHandle, Simulator};

const NOW: &str = "2026-11-25T09:00:00Z";
const KEY: &str = "cli-test-key-5e1f";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_seatwarden"));
    c.env_remove("RUST_LOG").env_remove("NO_COLOR");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

async fn sim(users: u32) -> SimHandle {
    seatwarden::tls::install_crypto_provider();
    let config = SimConfig { users, seed: 5, api_key: KEY.into(), now: Timestamp::now(), ..Default::default() };
    Simulator::start(config, "127.0.0.1:0").await.expect("simulator starts")
}

fn users_cmd(sim: &SimHandle, args: &[&str]) -> Command {
    let mut c = bin();
    c.arg("users").args(args).args(["--org-url", &sim.base_url(), "--org-id", &sim.org_id()]);
    c.args(["--requests-per-minute", "1000000"]).env("ATLASSIAN_ORG_API_KEY", KEY);
    c
}

#[test]
fn exit_codes_are_documented_in_help() {
    for args in [vec!["--help"], vec!["plan", "--help"], vec!["users", "--help"]] {
        let out = run(&args);
        assert!(out.status.success());
        let help = text(&out.stdout);
        assert!(help.contains("Exit codes:"), "{args:?}: {help}");
        for line in ["2  invalid input", "3  the organization could not be read", "4  plan --detailed-exitcode"] {
            assert!(help.contains(line), "{args:?} lacks {line:?}: {help}");
        }
    }
    // Every flag of every command says what it is for.
    for cmd in ["plan", "demo", "sim", "run", "audit export", "users list", "users import", "users activate"] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let help = text(&run(&args).stdout);
        // Options are listed two spaces in; wrapped help lines are indented further.
        for line in help.lines().filter(|l| l.starts_with("  -")).map(str::trim_start) {
            let described = line.split("  ").filter(|p| !p.trim().is_empty()).count() > 1;
            assert!(described || help.contains(&format!("{line}\n          ")), "{cmd}: {line:?} has no help");
        }
    }
}

/// A copy of the examples with the enforcing policy's percentage cap at 1%: its plan halts.
fn halting_examples(dir: &Path) {
    for e in std::fs::read_dir(examples()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let t = std::fs::read_to_string(&p).unwrap().replace("maxActionPercent: 40", "maxActionPercent: 1");
            std::fs::write(dir.join(p.file_name().unwrap()), t).unwrap();
        }
    }
}

#[test]
fn detailed_exit_codes_gate_halts_warnings_and_changes() {
    let ex = examples();
    let plan = |dir: &Path, extra: &[&str]| {
        let mut args = vec!["plan", "-f", dir.to_str().unwrap(), "--simulate", "--users", "300", "--now", NOW];
        args.extend(extra);
        run(&args)
    };
    // Without the flag, a printed plan is 0 whatever it holds.
    assert_eq!(plan(&ex, &[]).status.code(), Some(0));
    let clean = plan(&ex, &["--detailed-exitcode", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&clean.stdout).unwrap();
    let halted = json["policies"].as_array().unwrap().iter().any(|p| !p["halt"].is_null());
    let warned = !json["conditions"].as_array().unwrap().is_empty()
        || json["policies"].as_array().unwrap().iter().any(|p| !p["conditions"].as_array().unwrap().is_empty());
    let expected = if halted || warned { 4 } else { 5 };
    assert_eq!(clean.status.code(), Some(expected), "{}", text(&clean.stderr));
    // The examples plan changes with no warning: the schedule outlook is no condition to gate on,
    // and every output gates the same.
    assert_eq!(expected, 5, "{json}");
    for output in ["text", "markdown"] {
        assert_eq!(plan(&ex, &["--detailed-exitcode", "-o", output]).status.code(), Some(5), "{output}");
    }

    let dir = tempfile::tempdir().unwrap();
    halting_examples(dir.path());
    let out = plan(dir.path(), &["--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(4), "a halted policy: {}", text(&out.stdout));
    assert!(text(&out.stdout).contains("HALTED"));
    // -f is repeatable: the organization from one file, the policies from another.
    let out = run(&[
        "plan",
        "-f",
        ex.join("01-organization.yaml").to_str().unwrap(),
        "-f",
        ex.join("05-policy-enforce.yaml").to_str().unwrap(),
        "--simulate",
        "--users",
        "200",
        "--now",
        NOW,
        "--output",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["policies"].as_array().unwrap().len(), 1);
}

#[test]
fn plan_json_spells_every_product_one_way() {
    let ex = examples();
    let out = run(&["plan", "-f", ex.to_str().unwrap(), "--simulate", "--users", "400", "--now", NOW, "-o", "json"]);
    let json = text(&out.stdout);
    for pascal in ["JiraSoftware", "JiraServiceManagement", "\"Confluence\"", "\"Bitbucket\""] {
        assert!(!json.contains(pascal), "plan JSON spells a product {pascal}");
    }
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let freed = v["totals"]["seatsFreed"].as_object().unwrap();
    assert!(!freed.is_empty() && freed.keys().all(|k| k == &k.to_lowercase()), "{freed:?}");
}

#[test]
fn the_markdown_preview_fits_a_pull_request_comment_summary_first() {
    let ex = examples();
    let out =
        run(&["plan", "-f", ex.to_str().unwrap(), "--simulate", "--users", "3000", "--now", NOW, "-o", "markdown"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    assert!(md.chars().count() <= 60_000, "{} characters", md.chars().count());
    let summary = md.find("| policy | mode | applies |").expect("a summary table");
    let details = md.find("<details>").expect("collapsible details");
    assert!(summary < details, "the summary comes first");
    assert!(md.contains("runs now") || md.contains("next run"), "when each policy applies");
    assert_eq!(md.matches("<details>").count(), md.matches("</details>").count());
    assert!(md.contains("@acme.example"), "details name people by email");
    // A small limit: still whole, the rest counted and pointed to the JSON.
    let small = run(&[
        "plan",
        "-f",
        ex.to_str().unwrap(),
        "--simulate",
        "--users",
        "3000",
        "--now",
        NOW,
        "-o",
        "markdown",
        "--max-chars",
        "8000",
    ]);
    let md = text(&small.stdout);
    assert!(md.chars().count() <= 8000, "{} characters", md.chars().count());
    assert!(md.contains("and ") && md.contains("more") && md.contains("--output json"), "{md}");
    assert!(md.contains("| policy | mode | applies |"));
}

#[test]
fn a_closed_pipe_ends_quietly_with_exit_0() {
    // `seatwarden crd | head -1`: far more than a pipe buffer, the reader gone after one line.
    let mut child = bin().arg("crd").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_list_into_a_closed_pipe_is_exit_0_sorted_by_email_and_flags_behave() {
    let sim = sim(3000).await;
    let mut child =
        users_cmd(&sim, &["list", "-o", "csv"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut head = [0u8; 32];
    child.stdout.as_mut().unwrap().read_exact(&mut head).unwrap();
    drop(child.stdout.take());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("Broken pipe"), "{}", text(&out.stderr));

    let out = users_cmd(&sim, &["list", "--domain", "@acme.example"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let emails: Vec<String> =
        table.lines().skip(1).map(|l| l.split_whitespace().next().unwrap_or_default().to_lowercase()).collect();
    assert!(emails.len() > 100, "--domain with a leading @ matches: {}", table.lines().count());
    assert!(emails.iter().all(|e| e.ends_with("@acme.example")));
    let mut sorted = emails.clone();
    sorted.sort();
    assert_eq!(emails, sorted, "sorted by email");
    assert!(!table.contains('\u{1b}'), "no colour into a pipe");
    // Group columns are cut in the table, whole in JSON.
    assert!(table.lines().all(|l| l.chars().count() < 250), "a table row is too wide");

    let apps = users_cmd(&sim, &["list", "--apps", "-o", "json"]).output().unwrap();
    let apps: Vec<serde_json::Value> = serde_json::from_slice(&apps.stdout).unwrap();
    // Apps are no directory users in the organization's listing: --apps shows what there is, only apps.
    assert!(apps.iter().all(|u| u["accountType"] == "app"), "{apps:?}");
    let external = users_cmd(&sim, &["list", "--external", "-o", "json"]).output().unwrap();
    let external: Vec<serde_json::Value> = serde_json::from_slice(&external.stdout).unwrap();
    assert!(!external.is_empty());
    assert!(external.iter().all(|u| u["accountType"] != "app" && u["managed"] == false), "--external: people only");

    // An email where an account id belongs: a plain usage error.
    let out = users_cmd(&sim, &["activate", "--account", "ann@acme.example"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("is an email address") && err.contains("--csv"), "{err}");
    // --dry-run says the default out loud.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("a.csv");
    std::fs::write(&csv, "email,status\nnobody@acme.example,active\n").unwrap();
    let out = users_cmd(&sim, &["import", "--csv", csv.to_str().unwrap(), "--dry-run"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let _ = sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_errors_name_the_editors_line_and_the_email_before_any_call() {
    let sim = sim(200).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.csv");
    let export = users_cmd(&sim, &["export", "--csv", file.to_str().unwrap()]).output().unwrap();
    assert!(export.status.success(), "{}", text(&export.stderr));
    let exported = std::fs::read_to_string(&file).unwrap();
    assert!(!exported.contains('\r'), "the export has LF line ends");
    // The tool's own export, saved with CRLF (as a spreadsheet does), one status broken on line 12.
    let mut lines: Vec<String> = exported.lines().map(str::to_owned).collect();
    let status_col = lines[0].split(',').position(|c| c == "status").unwrap();
    let cells: Vec<String> = lines[11].split(',').map(str::to_owned).collect();
    let email = cells[1].clone();
    let mut broken = cells.clone();
    broken[status_col] = "asleep".into();
    lines[11] = broken.join(",");
    std::fs::write(&file, lines.join("\r\n") + "\r\n").unwrap();
    let requests = sim.request_count();
    let out = users_cmd(&sim, &["import", "--csv", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("line 12 ({email}), column status: \"asleep\"")), "{err}");

    // An unclosed quote: named where it opens, refused before the organization is read.
    std::fs::write(&file, "email,groups\r\nann@acme.example,\"jira-users\r\nbob@acme.example,x\r\n").unwrap();
    let before = sim.request_count();
    let out = users_cmd(&sim, &["import", "--csv", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 2: the quote opened at character 18 is never closed"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(&file, "email;groups\nann@acme.example;x\n").unwrap();
    let out = users_cmd(&sim, &["import", "--csv", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(sim.request_count(), before, "format errors cost no Atlassian call");
    assert!(requests > 0);
    let _ = sim.shutdown().await;
}

/// On a terminal (a pty, through `script`), the progress bar says when the client's own request
/// budget holds requests back, and for how long; off a terminal, standard error stays empty.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_progress_bar_says_when_requests_wait_for_the_request_budget() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "`script` (util-linux) is needed to give the binary a terminal");
        eprintln!("skipped: no `script` to give the binary a terminal");
        return;
    }
    let sim = sim(30).await;
    // 150 requests a minute: 0.4 s apart, so with four in flight the last waits 1.2 s or more.
    let list = |c: &mut Command| {
        c.args(["users", "list", "--org-url", &sim.base_url(), "--org-id", &sim.org_id()])
            .args(["--requests-per-minute", "150"])
            .env("ATLASSIAN_ORG_API_KEY", KEY);
    };
    let command = format!(
        "{} users list --org-url {} --org-id {} --requests-per-minute 150 >/dev/null",
        env!("CARGO_BIN_EXE_seatwarden"),
        sim.base_url(),
        sim.org_id()
    );
    let on_terminal = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("ATLASSIAN_ORG_API_KEY", KEY)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(on_terminal.status.success(), "{}", text(&on_terminal.stderr));
    let screen = text(&on_terminal.stdout);
    let waits: Vec<u64> = screen
        .match_indices("s for the request budget")
        .filter_map(|(at, _)| screen[..at].rsplit_once("waiting ").and_then(|(_, n)| n.parse().ok()))
        .collect();
    assert!(!waits.is_empty(), "the bar says the budget holds requests: {screen:?}");
    assert!(waits.iter().all(|n| (1..=5).contains(n)), "whole seconds, as long as the budget makes it: {waits:?}");
    assert!(screen.contains("pages of users read"), "{screen:?}");

    // The same at the same budget into a pipe: no bar, no message.
    let mut piped = bin();
    list(&mut piped);
    let piped = piped.output().unwrap();
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    let err = text(&piped.stderr);
    assert!(!err.contains("request budget") && !err.contains("pages of users read"), "no bar off a terminal: {err}");
    assert!(!err.contains('\r') && !err.contains('\u{1b}'), "no drawing off a terminal: {err:?}");
    assert_eq!(err.lines().count(), 1, "only the summary: {err}");
    assert!(text(&piped.stdout).lines().count() > 1);
    let _ = sim.shutdown().await;
}

/// `plan` against an organization reads it with a bar on a terminal (pages, requests, waits for
/// the request budget), and with none into a pipe or a CI log.
#[tokio::test(flavor = "multi_thread")]
async fn plan_reads_the_organization_with_a_progress_bar_on_a_terminal_only() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "`script` (util-linux) is needed to give the binary a terminal");
        eprintln!("skipped: no `script` to give the binary a terminal");
        return;
    }
    let sim = sim(30).await;
    // The examples at 150 requests a minute, so the budget holds requests back.
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(examples()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let t =
                std::fs::read_to_string(&p).unwrap().replace("orgRequestsPerMinute: 600", "orgRequestsPerMinute: 150");
            std::fs::write(dir.path().join(p.file_name().unwrap()), t).unwrap();
        }
    }
    let args = format!(
        "plan -f {} --org-url {} --org-id {} --api-key-env ATLASSIAN_ORG_API_KEY --now {NOW}",
        dir.path().display(),
        sim.base_url(),
        sim.org_id()
    );
    let command = format!("{} {args} >/dev/null", env!("CARGO_BIN_EXE_seatwarden"));
    let on_terminal = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("ATLASSIAN_ORG_API_KEY", KEY)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(on_terminal.status.success(), "{}", text(&on_terminal.stdout));
    let screen = text(&on_terminal.stdout);
    assert!(screen.contains("pages of users read") && screen.contains(" requests"), "{screen:?}");
    assert!(screen.contains("s for the request budget"), "{screen:?}");

    let piped = bin().args(args.split(' ')).env("ATLASSIAN_ORG_API_KEY", KEY).output().unwrap();
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    assert_eq!(text(&piped.stderr), "", "no bar off a terminal");
    assert!(text(&piped.stdout).starts_with("Plan for organization"), "{}", text(&piped.stdout));
    let _ = sim.shutdown().await;
}

#[test]
fn a_wrong_port_is_reported_once_with_the_url_and_the_cause() {
    // Port 9 (discard): nothing listens there on a test machine.
    let url = "http://127.0.0.1:9".to_owned();
    let out = bin()
        .args(["users", "list", "--org-url", &url, "--org-id", "o", "--requests-per-minute", "100000"])
        .env("ATLASSIAN_ORG_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(err.contains(&url) && err.contains("connection refused"), "{err}");
    assert_eq!(err.matches("connection refused (").count(), 1, "once: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!err.contains(KEY));
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains("seatwarden") && script.contains("detailed-exitcode"), "{shell}");
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

/// A count from a report line such as `  new hires:           3 arrived, 2 onboarded`.
fn number_after(report: &str, label: &str) -> Vec<usize> {
    let line =
        report.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("{label}: {report}"));
    line[line.find(label).unwrap() + label.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn demo_runs_from_anywhere_quietly_and_its_report_matches_its_audit_trail() {
    // Another project's folder, with an examples/ folder of its own that is no seatwarden manifest.
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("examples")).unwrap();
    std::fs::write(cwd.path().join("examples/app.yaml"), "name: not a manifest\n").unwrap();
    let out =
        bin().current_dir(cwd.path()).args(["demo", "--once", "--users", "400", "--days", "24"]).output().unwrap();
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "no log lines or progress bar off a terminal");
    let report = text(&out.stdout);
    assert!(!report.contains('\u{1b}'));
    // One default folder, shared with audit export.
    let folder = cwd.path().join("seatwarden-audit");
    assert!(folder.join("runs").is_dir() && folder.join("audit.csv").is_file(), "{report}");

    let mut csv = csv::Reader::from_path(folder.join("audit.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let (action, rule, outcome, account) = (col("action"), col("rule"), col("outcome"), col("accountId"));
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let count = |f: &dyn Fn(&csv::StringRecord) -> bool| rows.iter().filter(|r| f(r)).count();
    let accounts = |f: &dyn Fn(&csv::StringRecord) -> bool| {
        rows.iter().filter(|r| f(r)).map(|r| r[account].to_owned()).collect::<std::collections::BTreeSet<_>>().len()
    };
    let applied = |r: &csv::StringRecord| &r[outcome] == "applied";
    assert_eq!(number_after(&report, "notices sent:")[0], count(&|r| applied(r) && &r[action] == "notice"));
    assert_eq!(number_after(&report, "deferred by caps:")[0], count(&|r| &r[outcome] == "deferred"));
    let acted = number_after(&report, "actions applied:");
    assert_eq!(acted[0], count(&|r| applied(r) && &r[action] != "notice"));
    assert_eq!(acted[1], count(&|r| &r[outcome] == "failed"));
    let hires = number_after(&report, "new hires:");
    assert!(hires[0] > 0, "new hires arrive: {report}");
    assert_eq!(hires[1], accounts(&|r| applied(r) && r[rule].starts_with("onboarding/")));
    assert!(hires[1] > 0, "new hires are onboarded: {report}");
    let spared = number_after(&report, "spared:");
    assert!(spared[0] > 0 && spared[0] <= spared[1], "warned people are spared: {report}");
    let back = number_after(&report, "came back:");
    assert!(back[1] > 0 && back[0] == back[1], "every returner gets groups back: {report}");
    assert_eq!(back[2], back[1], "every returner gets exactly the groups they lost: {report}");
    assert_eq!(number_after(&report, "access given back:")[0], accounts(&|r| applied(r) && &r[rule] == "reactivation"));
    assert_eq!(number_after(&report, "suspended:")[0], accounts(&|r| applied(r) && &r[action] == "suspend"));
    assert_eq!(number_after(&report, "deactivated:")[0], accounts(&|r| applied(r) && &r[action] == "deactivate"));
    // The trail holds one row per action's final outcome; the history more.
    let history = bin().current_dir(cwd.path()).args(["audit", "export", "--history", "--csv", "-"]).output().unwrap();
    assert!(history.status.success(), "{}", text(&history.stderr));
    assert!(text(&history.stdout).lines().count() > rows.len());
    let finals = bin().current_dir(cwd.path()).args(["audit", "export", "--csv", "-"]).output().unwrap();
    assert_eq!(text(&finals.stdout).lines().count() - 1, rows.len(), "audit export and the demo's CSV agree");
    let only_failed =
        bin().current_dir(cwd.path()).args(["audit", "export", "--outcome", "failed", "--csv", "-"]).output().unwrap();
    assert_eq!(text(&only_failed.stdout).lines().count() - 1, acted[1]);
    let nope =
        bin().current_dir(cwd.path()).args(["audit", "export", "--policy", "nope", "--csv", "-"]).output().unwrap();
    assert_eq!(nope.status.code(), Some(2));
    assert!(text(&nope.stderr).contains("policies on record: reclaim-inactive"), "{}", text(&nope.stderr));
    // Timestamps to the second.
    assert!(rows.iter().all(|r| r[0].len() == "2026-11-02T09:00:00Z".len()), "{:?}", rows[0]);

    // A second demo in the same folder starts afresh: the same numbers, not twice as many.
    let again =
        bin().current_dir(cwd.path()).args(["demo", "--once", "--users", "400", "--days", "24"]).output().unwrap();
    assert_eq!(number_after(&text(&again.stdout), "notices sent:"), number_after(&report, "notices sent:"));
}

/// Two directories (the demo's default) with shared accounts and same-named groups: every person
/// who comes back gets exactly the groups seatwarden took, in the directory it took them from — by
/// the simulator's event log and end state, and by seatwarden's audit trail.
#[tokio::test(flavor = "multi_thread")]
async fn every_returner_gets_exactly_the_groups_it_lost_in_the_directory_it_lost_them_from() {
    use std::collections::{BTreeMap, BTreeSet};
    seatwarden::tls::install_crypto_provider();
    let out = tempfile::tempdir().unwrap();
    let opts =
        seatwarden::demo::DemoOptions { users: 600, days: 30, out: out.path().to_path_buf(), ..Default::default() };
    let report = seatwarden::demo::run(&opts, &seatwarden::metrics::Metrics::new()).await.unwrap();
    assert!(report.returned >= 10, "enough returners to mean something: {}", report.returned);
    assert_eq!(report.returners.len(), report.returned);
    // Some returner is in both directories, and some lost the group that was their only license
    // (they can only come back through the opt-in group).
    let directories: BTreeSet<&str> =
        report.returners.iter().flat_map(|r| r.removed.iter().map(|(d, _)| d.as_str())).collect();
    assert_eq!(directories.len(), 2, "returners in both directories: {:?}", report.returners);

    let mut csv = csv::Reader::from_path(&report.audit_csv).unwrap();
    let header = csv.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let (action, rule, outcome, account, group) =
        (col("action"), col("rule"), col("outcome"), col("accountId"), col("groupId"));
    let (mut taken, mut given): (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, BTreeSet<String>>) =
        Default::default();
    for r in csv.records().map(Result::unwrap).filter(|r| &r[outcome] == "applied") {
        let giving = &r[rule] == "reactivation" || r[rule].starts_with("onboarding/");
        match (&r[action], giving) {
            ("remove-group", false) => taken.entry(r[account].to_owned()).or_default().insert(r[group].to_owned()),
            ("add-group", true) if &r[rule] == "reactivation" => {
                given.entry(r[account].to_owned()).or_default().insert(r[group].to_owned())
            }
            _ => false,
        };
    }
    for r in &report.returners {
        let removed: BTreeSet<String> = r.removed.iter().map(|(_, g)| g.clone()).collect();
        assert!(!removed.is_empty(), "{} came back without losing a group", r.account_id);
        assert_eq!(r.added_after, r.removed, "{}: given back what was taken, nothing else", r.account_id);
        assert_eq!(r.holds_at_end, r.removed, "{}: holds every removed group at the end", r.account_id);
        assert_eq!(taken.get(&r.account_id), Some(&removed), "{}: the audit trail's removals", r.account_id);
        assert_eq!(given.get(&r.account_id), Some(&removed), "{}: the audit trail's restorations", r.account_id);
    }
    assert_eq!((report.restored, report.restored_exactly), (report.returned, report.returned));
}

#[test]
fn a_longer_demo_shows_suspended_people_deactivated() {
    let out = tempfile::tempdir().unwrap();
    let run = bin()
        .args(["demo", "--once", "--users", "200", "--days", "100", "--out", out.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let report = text(&run.stdout);
    assert!(number_after(&report, "deactivated:")[0] > 0, "{report}");
}

/// The demo's Jira Service Management has one seat left: onboarding meets the user limit. Atlassian
/// refuses at most one add per product per run (never again and again), later runs hold the adds
/// back until seats are freed, and the report's numbers are the audit trail's.
#[test]
fn a_600_person_demo_holds_onboarding_at_the_user_limit_as_its_audit_trail_shows() {
    let out = tempfile::tempdir().unwrap();
    let run = bin()
        .args(["demo", "--once", "--users", "600", "--days", "30", "--out", out.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let report = text(&run.stdout);
    let mut csv = csv::Reader::from_path(out.path().join("audit.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let (run_id, action, outcome, error) = (col("runId"), col("action"), col("outcome"), col("error"));
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let refused: Vec<&csv::StringRecord> =
        rows.iter().filter(|r| &r[outcome] == "failed" && r[error].contains("refused_license_limit")).collect();
    let mut per_run: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &refused {
        assert_eq!(&r[action], "add-group", "{r:?}");
        *per_run.entry(&r[run_id]).or_default() += 1;
    }
    assert!(per_run.values().all(|n| *n <= 1), "at most one refused add per run: {per_run:?}");
    assert!(!refused.is_empty() && refused.len() < 5, "the limit is met, and not retried: {}", refused.len());
    let held = rows.iter().filter(|r| &r[outcome] == "deferred" && r[error].contains("at its user limit")).count();
    assert!(held > 0, "later adds are held back: {report}");
    let line = number_after(&report, "held at user limit:");
    assert_eq!((line[0], line[1]), (refused.len(), held), "{report}");
    assert!(report.contains("held at user limit:  Jira Service Management:"), "{report}");
}
