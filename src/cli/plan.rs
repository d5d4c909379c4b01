//! `seatwarden plan`: what the policies would do now, for people and pull-request previews.
//!
//! Reads manifests, takes a snapshot (of an in-process simulator with `--simulate`, or of the real
//! organization through the client), and prints the plan exactly as the operator would make it at
//! that instant: the same planner, conflict resolution, caps and schedule (invariant 11). Each
//! policy says whether it runs now and when it runs next; what an Enforce policy that runs now
//! plans is what the operator writes. It never writes to Atlassian and never writes the ledger.
//! Exit codes: 0 plan printed, 2 invalid manifests or flags, 3 organization unreadable; with
//! `--detailed-exitcode` also 4 (halted or warnings) and 5 (changes planned).

use std::{collections::HashMap, path::PathBuf, process::ExitCode};

use clap::{Args, ValueEnum};
use jiff::Timestamp;

use crate::{
    atlassian::{AtlassianClient, ClientConfig, Credentials, Secret},
    controller::schedule::{self, Outlook},
    crd::{AtlassianOrganization, AtlassianOrganizationSpec},
    ledger::Ledger,
    manifests::Manifests,
    policy::{self, PlanInput},
    record::FolderLedgerStore,
    sim::{SimConfig, Simulator},
    snapshot::DirectorySnapshot,
};

use super::exit;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Manifests: a YAML file, or a directory of them (the same YAML as the custom resources).
    /// Repeatable: `-f org.yaml -f policies/`.
    #[arg(short = 'f', long = "filename", value_name = "DIR|FILE", required = true)]
    pub file: Vec<PathBuf>,
    /// Plan against a simulated organization run in this process.
    #[arg(long, conflicts_with_all = ["org_url", "org_id"])]
    pub simulate: bool,
    /// Seed of the simulated organization.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Users in the simulated organization.
    #[arg(long, default_value_t = 5000)]
    pub users: u32,
    /// Directories (user bases) in the simulated organization (with --simulate).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub directories: u16,
    /// Share (0 to 1) of the first directory's people also in another directory (with --directories 2 or more).
    #[arg(long, default_value_t = 0.0, value_parser = super::sim::parse_share)]
    pub shared_accounts: f64,
    /// Also generate activity on products seatwarden does not model (Loom, Atlas, Rovo, Jira Align).
    #[arg(long)]
    pub unmodelled_products: bool,
    /// API base URL (overrides the AtlassianOrganization's apiBaseUrl), e.g. https://api.atlassian.com.
    #[arg(long, value_name = "URL")]
    pub org_url: Option<String>,
    /// Organization id (overrides the AtlassianOrganization's orgId).
    #[arg(long, value_name = "ID")]
    pub org_id: Option<String>,
    /// The environment variable that holds the organization API key (never pass the key itself).
    #[arg(long, value_name = "VAR", default_value = super::DEFAULT_API_KEY_ENV)]
    pub api_key_env: String,
    /// The instant to plan at (RFC 3339); default: now.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// A ledger folder (as `demo` writes it): notices on record, groups removed. Read only.
    #[arg(long, value_name = "DIR")]
    pub ledger: Option<PathBuf>,
    /// Which AtlassianOrganization of the manifests, when they hold several.
    #[arg(long, value_name = "NAME")]
    pub organization: Option<String>,
    /// Output: text for people, markdown for a pull-request comment, JSON for machines.
    #[arg(short = 'o', long = "output", alias = "format", value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Markdown only: the most characters the preview may take (GitHub comments hold 65,536);
    /// rows beyond it are counted, and the full plan is in `--output json`.
    #[arg(long, value_name = "N", default_value_t = policy::DEFAULT_MARKDOWN_CHARS)]
    pub max_chars: usize,
    /// Exit 4 when a policy is halted or the plan carries warnings, 5 when changes are planned,
    /// 0 when there is nothing to do (for CI gates; see the exit codes below).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct PlanFailure {
    pub code: u8,
    pub message: String,
}

fn usage(message: impl Into<String>) -> PlanFailure {
    PlanFailure { code: exit::USAGE, message: message.into() }
}

pub fn run(args: PlanArgs) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(plan_output(&args)) {
        Ok(PlanOutput { text, code }) => {
            let printed = super::output::print_or_quiet(text.as_bytes());
            if printed == ExitCode::SUCCESS { ExitCode::from(code) } else { printed }
        }
        Err(f) => {
            super::say(&format!("seatwarden plan: {}", f.message));
            ExitCode::from(f.code)
        }
    }
}

/// What `seatwarden plan` prints, and the exit code it ends with.
#[derive(Debug)]
pub struct PlanOutput {
    pub text: String,
    pub code: u8,
}

/// The exit code of a plan under `--detailed-exitcode`: halts and warnings first, then changes.
pub fn detailed_exit_code(plan: &policy::Plan) -> u8 {
    let warned =
        !plan.conditions.is_empty() || plan.policies.iter().any(|p| p.halt.is_some() || !p.conditions.is_empty());
    let changes = plan.policies.iter().any(|p| !p.actions.is_empty() || !p.notices.is_empty());
    if warned {
        exit::HALTED_OR_WARNINGS
    } else if changes {
        exit::CHANGES
    } else {
        exit::OK
    }
}

/// Manifests of every `-f`, in order.
pub fn load_manifests(paths: &[PathBuf]) -> Result<Manifests, crate::manifests::ManifestError> {
    let mut all = Manifests::default();
    for path in paths {
        let m = Manifests::load(path)?;
        all.organizations.extend(m.organizations);
        all.policies.extend(m.policies);
        all.protections.extend(m.protections);
        all.mappings.extend(m.mappings);
        all.ignored.extend(m.ignored);
    }
    Ok(all)
}

fn files_label(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Everything `seatwarden plan` does but printing: the rendered plan and its exit code, or a
/// failure with its code.
pub async fn plan_output(args: &PlanArgs) -> Result<PlanOutput, PlanFailure> {
    let manifests = load_manifests(&args.file).map_err(|e| usage(e.to_string()))?;
    let now = match &args.now {
        Some(s) => s
            .parse::<Timestamp>()
            .map_err(|e| usage(format!("--now {s:?} is not an RFC 3339 instant (e.g. 2026-11-25T09:00:00Z): {e}")))?,
        None => Timestamp::now(),
    };
    // The simulated organization's shape means nothing for a real one: say so, don't ignore it.
    if !args.simulate {
        for (flag, given) in [
            ("--directories", args.directories != 1),
            ("--shared-accounts", args.shared_accounts != 0.0),
            ("--unmodelled-products", args.unmodelled_products),
        ] {
            if given {
                return Err(usage(format!("{flag} shapes the simulated organization: it needs --simulate")));
            }
        }
    }
    let mut org = choose_organization(&manifests, args)?;
    if !args.simulate {
        if let Some(url) = &args.org_url {
            org.spec.api_base_url = url.clone();
        }
        if let Some(id) = &args.org_id {
            org.spec.org_id = id.clone();
        }
    }
    let snapshot = if args.simulate {
        simulated_snapshot(&mut org, args, now).await?
    } else {
        real_snapshot(&org, args, now).await?
    };
    let ledger = match &args.ledger {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(usage(format!("--ledger {}: not a directory", dir.display())));
            }
            crate::execute::load_ledger(&FolderLedgerStore::new(dir), &org.spec.org_id)
                .await
                .map_err(|e| usage(format!("--ledger {}: {e}", dir.display())))?
        }
        None => Ledger::new(org.spec.org_id.clone()),
    };
    let input = PlanInput {
        snapshot: &snapshot,
        organization: &org,
        policies: &manifests.policies,
        protections: &manifests.protections,
        mappings: &manifests.mappings,
        ledger: &ledger,
        now,
        daily_actions_remaining: policy::daily_remaining(&org, now),
    };
    let plan = policy::plan(&input);
    // The gate counts what the planner found; the schedule outlook is no condition of the plan.
    let code = if args.detailed_exitcode { detailed_exit_code(&plan) } else { exit::OK };
    let outlooks: HashMap<String, Outlook> = manifests
        .policies
        .iter()
        .map(|p| (p.metadata.name.clone().unwrap_or_default(), schedule::outlook(p, now)))
        .collect();
    let text = match args.format {
        Format::Markdown => {
            // The preview says when each policy applies in its summary row, not as a warning.
            let schedule = outlooks
                .iter()
                .map(|(name, o)| {
                    let when = match (o.runs_now, o.next_run) {
                        (Some(_), _) => "runs now".to_owned(),
                        (None, Some(t)) => format!("next run {}", t.strftime("%Y-%m-%d %H:%M UTC")),
                        (None, None) => "never runs".to_owned(),
                    };
                    (name.clone(), when)
                })
                .collect();
            policy::to_markdown_with(
                &plan,
                &policy::MarkdownOptions {
                    max_chars: args.max_chars,
                    schedule,
                    group_names: snapshot.groups.iter().map(|g| (g.id.clone(), g.name.clone())).collect(),
                },
            )
        }
        // Said first in each policy's section, on a line of its own: whether the operator would
        // run it at this instant, and when it runs next.
        Format::Text => {
            policy::to_text_with(&plan, &outlooks.iter().map(|(name, o)| (name.clone(), schedule_line(o))).collect())
        }
        Format::Json => {
            let mut json = policy::to_json(&plan);
            add_outlooks(&mut json, &outlooks);
            let mut s = serde_json::to_string_pretty(&json).expect("JSON renders");
            s.push('\n');
            s
        }
    };
    Ok(PlanOutput { text, code })
}

/// `runs now (first run; no window); next run 2026-11-26T07:00:00Z`, `waits: outside its window
/// ...; next run ...`, `never runs: ...`.
fn schedule_line(o: &Outlook) -> String {
    let next = o.next_run.map(|t| format!("; next run {t}")).unwrap_or_default();
    format!("{}{next}", o.explanation)
}

/// Each policy gets `schedule` (runs now? why? next run), and each action and notice `runsNow`
/// and `appliesNow`: the actions with `appliesNow` are the writes the operator makes now.
fn add_outlooks(json: &mut serde_json::Value, outlooks: &HashMap<String, Outlook>) {
    use serde_json::json;
    let runs_now = |policy: &serde_json::Value| {
        policy.as_str().and_then(|p| outlooks.get(p)).is_some_and(|o| o.runs_now.is_some())
    };
    let applies: HashMap<String, bool> = json["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["name"].as_str()?.to_owned(), p["applies"].as_bool()?)))
        .collect();
    for p in json["policies"].as_array_mut().into_iter().flatten() {
        if let Some(o) = p["name"].as_str().and_then(|n| outlooks.get(n)) {
            p["schedule"] = json!({
                "runsNow": o.runs_now.is_some(),
                "trigger": o.runs_now,
                "nextRun": o.next_run,
                "explanation": o.explanation,
            });
        }
    }
    for list in ["actions", "notices"] {
        for item in json[list].as_array_mut().into_iter().flatten() {
            let now = runs_now(&item["policy"]);
            let applies = now && item["policy"].as_str().and_then(|p| applies.get(p)).copied().unwrap_or(false);
            item["runsNow"] = json!(now);
            item["appliesNow"] = json!(applies);
        }
    }
}

/// The organization to plan: named, the only one, or (without any) one built from the flags.
fn choose_organization(manifests: &Manifests, args: &PlanArgs) -> Result<AtlassianOrganization, PlanFailure> {
    let orgs = &manifests.organizations;
    if let Some(name) = &args.organization {
        return orgs.iter().find(|o| o.metadata.name.as_deref() == Some(name.as_str())).cloned().ok_or_else(|| {
            usage(format!(
                "--organization {name}: no AtlassianOrganization of that name in {}",
                files_label(&args.file)
            ))
        });
    }
    match orgs.len() {
        1 => Ok(orgs[0].clone()),
        0 => {
            // Policies name their organization: take that name, and the connection from the flags.
            let mut names: Vec<&str> =
                manifests.policies.iter().map(|p| p.spec.organization_ref.name.as_str()).collect();
            names.sort();
            names.dedup();
            let name = match names.as_slice() {
                [one] => (*one).to_owned(),
                [] => "default".to_owned(),
                _ => {
                    return Err(usage("the policies name several organizations and no AtlassianOrganization is given"));
                }
            };
            if !args.simulate && args.org_id.is_none() {
                return Err(usage(format!(
                    "no AtlassianOrganization in {}: give --org-id and --org-url, or --simulate",
                    files_label(&args.file)
                )));
            }
            let spec: AtlassianOrganizationSpec = serde_json::from_value(serde_json::json!({
                "orgId": args.org_id.clone().unwrap_or_else(|| "simulated".into()),
                "credentials": {"apiKeySecretRef": {"name": "unused", "key": "unused"}},
            }))
            .expect("a minimal organization spec deserializes");
            let mut org = AtlassianOrganization::new(&name, spec);
            org.metadata.namespace = None;
            Ok(org)
        }
        _ => Err(usage(format!(
            "{} holds several AtlassianOrganizations ({}): choose one with --organization",
            files_label(&args.file),
            orgs.iter().filter_map(|o| o.metadata.name.clone()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

async fn simulated_snapshot(
    org: &mut AtlassianOrganization,
    args: &PlanArgs,
    now: Timestamp,
) -> Result<DirectorySnapshot, PlanFailure> {
    let unreadable = |what: &str, e: &dyn std::fmt::Display| PlanFailure {
        code: exit::UNREACHABLE,
        message: format!("the simulated organization could not be read ({what}): {e}"),
    };
    let sim = Simulator::start(
        SimConfig {
            users: args.users,
            seed: args.seed,
            directories: args.directories,
            shared_accounts: args.shared_accounts,
            unmodelled_products: args.unmodelled_products,
            now,
            frozen: true,
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await
    .map_err(|e| unreadable("simulator", &e))?;
    sim.point_organization(&mut org.spec);
    let mut config = ClientConfig::from_spec(&org.spec).map_err(|e| usage(format!("AtlassianOrganization: {e}")))?;
    // In-process: no reason to pace as Atlassian requires.
    config.budget.org_requests_per_minute = 1_000_000;
    config.budget.site_requests_per_minute = 1_000_000;
    config.budget.bitbucket_requests_per_minute = 1_000_000;
    config.api_key_owner = org.spec.credentials.api_key_owner_account_id.clone();
    let credentials = Credentials { org_api_key: Secret::new(sim.api_key()), site_user: None };
    let client = AtlassianClient::new(config, &credentials).map_err(|e| unreadable("client", &e))?;
    client.snapshot(now).await.map_err(|e| unreadable("snapshot", &e))
}

async fn real_snapshot(
    org: &AtlassianOrganization,
    args: &PlanArgs,
    now: Timestamp,
) -> Result<DirectorySnapshot, PlanFailure> {
    let var = &args.api_key_env;
    let key = std::env::var(var).map_err(|_| {
        usage(format!(
            "the environment variable {var} is not set: it must hold the organization API key (--api-key-env names another), or use --simulate"
        ))
    })?;
    if key.trim().is_empty() {
        return Err(usage(format!("--api-key-env {var}: the variable is empty")));
    }
    let mut config = ClientConfig::from_spec(&org.spec).map_err(|e| usage(format!("AtlassianOrganization: {e}")))?;
    config.api_key_owner = org.spec.credentials.api_key_owner_account_id.clone();
    let credentials = Credentials { org_api_key: Secret::new(key), site_user: None };
    // Reading a large organization at its request budget takes minutes: a bar on a terminal says
    // what the client is doing (pages, retries, rate-limit and budget waits); none in CI logs.
    let progress = super::users::ClientProgress::default();
    let client = AtlassianClient::with_observer(config, &credentials, std::sync::Arc::new(progress.clone()))
        .map_err(|e| PlanFailure { code: exit::UNREACHABLE, message: format!("cannot set up the client: {e}") })?;
    let bar = super::users::progress_bar(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        &progress,
        None,
        "pages of users read",
    );
    let snapshot = client.snapshot(now).await;
    bar.finish_and_clear();
    snapshot.map_err(|e| PlanFailure {
        code: exit::UNREACHABLE,
        message: format!("the organization {} could not be read: {e}", org.spec.org_id),
    })
}
