//! `seatwarden users`: list, export, import and activate users of an organization from the command
//! line, with the client the operator uses. The logic lives in [`crate::users`]; this is argument
//! parsing, connection, progress bars and output.
//!
//! Connection: `--org-url URL --org-id ID --api-key-env VAR`, or `-f FILE|DIR` with an
//! AtlassianOrganization (flags override the manifest). The API key is read from the environment
//! variable named by `--api-key-env`, never from a flag, and never printed.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;

use super::exit;
use crate::atlassian::{AtlassianClient, ClientConfig, ClientObserver, Credentials, Secret, WriteOutcome};
use crate::product::Product;
use crate::record::{AuditSink, ClusterAudit, FolderAudit, RecordError, RunRecord};
use crate::snapshot::{AccountType, DirectorySnapshot, UserStatus};
use crate::users::{
    self, ActivationTarget, ActivityFilter, AppliedChange, Change, ImportOptions, RowError, UserFilter,
    activate::Person, export::ExportColumns,
};

/// Where the organization is and how to authenticate: shared by every `users` subcommand.
#[derive(Clone, Debug, Args)]
pub struct ConnectionArgs {
    /// Base URL of the Organizations and User management APIs (e.g. https://api.atlassian.com, or a
    /// `seatwarden sim`).
    #[arg(long, value_name = "URL", global = true)]
    pub org_url: Option<String>,
    /// The organization id.
    #[arg(long, value_name = "ID", global = true)]
    pub org_id: Option<String>,
    /// The environment variable that holds the organization API key (never pass the key itself).
    #[arg(long, value_name = "VAR", default_value = super::DEFAULT_API_KEY_ENV, global = true)]
    pub api_key_env: String,
    /// A manifest file or directory with an AtlassianOrganization (flags override its values).
    /// Repeatable: `-f org.yaml -f more/`.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR", global = true)]
    pub file: Vec<PathBuf>,
    /// Which AtlassianOrganization of the manifests, when there are several.
    #[arg(long, value_name = "NAME", global = true)]
    pub organization: Option<String>,
    /// Requests per minute to the Organizations API (default: the manifest's budget, or 600).
    #[arg(long, value_name = "N", global = true)]
    pub requests_per_minute: Option<u32>,
}

#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users, filtered, as a table, CSV or JSON.
    List(ListArgs),
    /// Write every user to a CSV file (the format `users import` reads).
    Export(ExportArgs),
    /// Make users' groups and status what a CSV file says: a dry run unless --apply.
    Import(ImportArgs),
    /// Restore suspended users, enable deactivated ones, invite removed ones back: a dry run unless --apply.
    Activate(ActivateArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only these statuses: active, suspended, deactivated, invited-never-active (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_status_arg)]
    pub status: Vec<UserStatus>,
    /// Only users with no activity for at least this long, in days or weeks (e.g. 90d, 12w), on
    /// --product or on any product.
    #[arg(long, value_name = "DAYS", value_parser = crate::crd::Duration::parse_days)]
    pub inactive: Option<crate::crd::Duration>,
    /// A product (jira, confluence, JiraSoftware, jira-service-management...): with --inactive, the
    /// product the inactivity is measured on; alone, users with access to it.
    #[arg(long, value_parser = parse_product_arg)]
    pub product: Option<Product>,
    /// Only members of these groups (name or id; repeatable).
    #[arg(long)]
    pub group: Vec<String>,
    /// Only these email domains (repeatable; `acme.example` or `@acme.example`).
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Vec<String>,
    /// Only managed accounts (the organization's claimed domains).
    #[arg(long, conflicts_with_all = ["external", "apps"])]
    pub managed: bool,
    /// Only external people: accounts outside the claimed domains, app accounts left out.
    #[arg(long, conflicts_with = "apps")]
    pub external: bool,
    /// Only app (bot) accounts.
    #[arg(long)]
    pub apps: bool,
    /// Output: a table for people (groups cut to fit), CSV or JSON (every group).
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file to write (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
}

/// Where the command line records what it applied, and who asked.
#[derive(Clone, Debug, Args)]
pub struct AuditArgs {
    /// Record applied changes as LifecycleRuns in this namespace of the current cluster.
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Record applied changes in this folder (`runs/*.json`, as `seatwarden demo` does).
    #[arg(long, value_name = "DIR", default_value = crate::demo::DEFAULT_DIR, conflicts_with = "namespace")]
    pub audit_dir: PathBuf,
    /// Who runs this, for the audit trail [default: the operating-system user].
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

impl AuditArgs {
    /// `--actor`, else the OS user (`USER`, `USERNAME`), else "unknown".
    pub fn actor(&self) -> String {
        self.actor
            .clone()
            .filter(|a| !a.trim().is_empty())
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
            .or_else(|| std::env::var("USERNAME").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "unknown".to_owned())
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file: `email` or `accountId`, then the columns to change (`groups`, `status`).
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Make the changes (without it, only the diff is printed).
    #[arg(long, conflicts_with = "dry_run")]
    pub apply: bool,
    /// Only print the diff (the default; for scripts that say so).
    #[arg(long)]
    pub dry_run: bool,
    /// Never remove a group membership.
    #[arg(long)]
    pub add_only: bool,
    /// Apply the valid rows even when some rows are invalid.
    #[arg(long)]
    pub skip_invalid: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
}

/// Products' user limits, for the dry run's refusals and an all-or-nothing --apply.
#[derive(Clone, Debug, Default, Args)]
pub struct LimitArgs {
    /// A product's user limit, e.g. `jira-service-management=50` (repeatable; overrides the
    /// AtlassianOrganization's spec.userLimits). No Atlassian API publishes it: declared, the dry run
    /// lists the rows Atlassian would refuse, and --apply refuses to start while there are any.
    #[arg(long, value_name = "PRODUCT=N", value_parser = parse_user_limit)]
    pub user_limit: Vec<(Product, u32)>,
    /// Apply the rows that fit the user limits, in file order, and list the rest (without it, --apply
    /// is all-or-nothing: it refuses to start when a row would pass a limit, and undoes what it
    /// did when Atlassian refuses one mid-apply). Implies --apply.
    #[arg(long, conflicts_with = "dry_run")]
    pub apply_what_fits: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["group", "csv", "account"])))]
pub struct ActivateArgs {
    /// Every suspended or deactivated member of this group.
    #[arg(long)]
    pub group: Option<String>,
    /// The people in this CSV file (`email` or `accountId`; `groups` for those invited back).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// One account, by its Atlassian account id (for an email, use --csv with an `email` column).
    #[arg(long, value_name = "ACCOUNT_ID")]
    pub account: Option<String>,
    /// Make the changes (without it, only the plan is printed).
    #[arg(long, conflicts_with = "dry_run")]
    pub apply: bool,
    /// Only print the plan (the default; for scripts that say so).
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
}

fn parse_status_arg(s: &str) -> Result<UserStatus, String> {
    users::parse_status(s)
        .ok_or_else(|| format!("{s:?} is not a status: active, suspended, deactivated, invited-never-active"))
}

fn parse_user_limit(s: &str) -> Result<(Product, u32), String> {
    let (product, n) =
        s.split_once('=').ok_or_else(|| format!("{s:?}: give PRODUCT=N, e.g. jira-service-management=50"))?;
    let n = n.trim().parse::<u32>().map_err(|_| format!("{s:?}: the limit {:?} is not a whole number", n.trim()))?;
    Ok((parse_product_arg(product)?, n))
}

fn parse_product_arg(s: &str) -> Result<Product, String> {
    Product::from_api_key(s).ok_or_else(|| {
        let known: Vec<&str> = Product::ALL.iter().map(|p| p.label()).collect();
        format!("{s:?} is not a product: {}", known.join(", "))
    })
}

/// What a command writes to and reads from, so tests run the real commands in-process.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// Reads an environment variable (the API key).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Draw progress bars (standard error is a terminal).
    pub progress: bool,
    /// Feeds the client's retries and waits into the bars.
    pub client_progress: ClientProgress,
}

/// A failed command: the exit code and what to tell the person.
#[derive(Debug)]
pub struct CommandError {
    pub code: u8,
    pub message: String,
}

impl CommandError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self { code: exit::USAGE, message: message.into() }
    }
    fn failure(message: impl Into<String>) -> Self {
        Self { code: exit::FAILURE, message: message.into() }
    }

    /// A write to standard output failed: a closed pipe ends the command quietly (exit 0).
    fn write(what: &str, e: std::io::Error) -> Self {
        if super::output::is_closed_pipe(&e) { Self::closed_pipe() } else { Self::failure(format!("{what}: {e}")) }
    }

    fn write_csv(what: &str, e: csv::Error) -> Self {
        if super::output::is_closed_pipe_csv(&e) { Self::closed_pipe() } else { Self::failure(format!("{what}: {e}")) }
    }

    /// The reader went away (`| head`): nothing more to say, and nothing went wrong.
    fn closed_pipe() -> Self {
        Self { code: exit::OK, message: String::new() }
    }
}

pub fn run(args: UsersArgs) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    let env = |name: &str| std::env::var(name).ok();
    let mut io = Io {
        out: &mut out,
        err: &mut err,
        env: &env,
        progress: std::io::stderr().is_terminal(),
        client_progress: ClientProgress::default(),
    };
    let code = rt.block_on(execute(args, &mut io));
    ExitCode::from(code)
}

/// Runs one `users` command; returns the exit code (errors are written to `io.err`).
pub async fn execute(args: UsersArgs, io: &mut Io<'_>) -> u8 {
    let result = match args.command {
        UsersCommand::List(a) => list(&args.connection, a, io).await,
        UsersCommand::Export(a) => export(&args.connection, a, io).await,
        UsersCommand::Import(a) => import(&args.connection, a, io).await,
        UsersCommand::Activate(a) => activate(&args.connection, a, io).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if !e.message.is_empty() {
                let _ = writeln!(io.err, "seatwarden users: {}", e.message);
            }
            e.code
        }
    }
}

/// The client configuration and credentials the flags and manifests describe.
pub fn resolve_connection(
    args: &ConnectionArgs,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(ClientConfig, Credentials), CommandError> {
    let mut config = match (!args.file.is_empty()).then_some(args.file.as_slice()) {
        Some(files) => {
            let path = &files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
            let manifests = super::plan::load_manifests(files).map_err(|e| CommandError::usage(e.to_string()))?;
            let orgs = &manifests.organizations;
            let org = match (&args.organization, orgs.as_slice()) {
                (_, []) => {
                    return Err(CommandError::usage(format!("{}: no AtlassianOrganization in it", path)));
                }
                (Some(name), _) => orgs
                    .iter()
                    .find(|o| o.metadata.name.as_deref() == Some(name))
                    .ok_or_else(|| CommandError::usage(format!("{}: no AtlassianOrganization {name:?}", path)))?,
                (None, [one]) => one,
                (None, several) => {
                    let names: Vec<String> = several.iter().filter_map(|o| o.metadata.name.clone()).collect();
                    return Err(CommandError::usage(format!(
                        "{}: {} AtlassianOrganizations ({}): pick one with --organization",
                        path,
                        several.len(),
                        names.join(", ")
                    )));
                }
            };
            let mut config = ClientConfig::from_spec(&org.spec).map_err(|e| CommandError::usage(e.to_string()))?;
            config.api_key_owner = org.spec.credentials.api_key_owner_account_id.clone();
            if let Some(url) = &args.org_url {
                config.api_base_url =
                    ClientConfig::new("-", url).map_err(|e| CommandError::usage(flag(e)))?.api_base_url;
            }
            if let Some(id) = &args.org_id {
                config.org_id = id.clone();
            }
            config
        }
        None => match (&args.org_url, &args.org_id) {
            (Some(url), Some(id)) => ClientConfig::new(id.clone(), url).map_err(|e| CommandError::usage(flag(e)))?,
            _ => {
                return Err(CommandError::usage(
                    "which organization? Give --org-url and --org-id (and --api-key-env), or -f with an AtlassianOrganization",
                ));
            }
        },
    };
    if let Some(rpm) = args.requests_per_minute {
        if rpm == 0 {
            return Err(CommandError::usage("--requests-per-minute must be at least 1"));
        }
        config.budget.org_requests_per_minute = rpm;
    }
    let key = env(&args.api_key_env).filter(|k| !k.trim().is_empty()).ok_or_else(|| {
        CommandError::usage(format!(
            "the environment variable {} is not set: it must hold the organization API key (--api-key-env names another)",
            args.api_key_env
        ))
    })?;
    Ok((config, Credentials { org_api_key: Secret::new(key), site_user: None }))
}

/// Config errors name fields as in a manifest; on the command line the field is a flag.
fn flag(e: crate::atlassian::ConfigError) -> String {
    let name = match e.field.as_str() {
        "apiBaseUrl" => "--org-url",
        "orgId" => "--org-id",
        other => other,
    };
    format!("invalid {name}: {}", e.message)
}

/// What the client is doing, for the progress bar: requests made, pages of users read, retries,
/// rate-limit waits and waits for the client's own request budget (an export under 429s or at a
/// low budget is slow, never silent). The bar it draws on is swapped as the command moves from
/// reading to writing.
#[derive(Clone, Default)]
pub struct ClientProgress {
    bar: Arc<std::sync::Mutex<Option<ProgressBar>>>,
    requests: Arc<std::sync::atomic::AtomicU64>,
    retries: Arc<std::sync::atomic::AtomicU64>,
    waits: Arc<std::sync::atomic::AtomicU64>,
    /// The longest wait in progress: what for, and until when. Said until it is over, whatever
    /// requests finish meanwhile (with concurrency, others may).
    waiting: Arc<std::sync::Mutex<Option<(Waiting, std::time::Instant)>>>,
}

impl ClientProgress {
    fn attach(&self, bar: &ProgressBar) {
        *self.bar.lock().expect("progress lock") = Some(bar.clone());
        self.refresh();
    }

    /// The bar's message, as it stands (what a terminal shows after the counts).
    pub fn message(&self) -> Option<String> {
        self.bar.lock().expect("progress lock").as_ref().map(|b| b.message())
    }

    fn wait(&self, what: Waiting, duration: std::time::Duration) {
        let until = std::time::Instant::now() + duration;
        let mut waiting = self.waiting.lock().expect("progress lock");
        if waiting.is_none_or(|(_, current)| current <= until) {
            *waiting = Some((what, until));
        }
        drop(waiting);
        self.refresh();
    }

    fn refresh(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(bar) = self.bar.lock().expect("progress lock").clone() else { return };
        let mut note = format!("{} requests", self.requests.load(Relaxed));
        let retries = self.retries.load(Relaxed);
        if retries > 0 {
            note.push_str(&format!(", {retries} retried"));
        }
        let waits = self.waits.load(Relaxed);
        if waits > 0 {
            note.push_str(&format!(", {waits} rate-limit wait(s)"));
        }
        let now = std::time::Instant::now();
        if let Some((what, until)) = *self.waiting.lock().expect("progress lock")
            && until > now
        {
            // Whole seconds, rounded up: "waiting 0s" would say nothing.
            let secs = (until - now).as_secs_f64().ceil().max(1.0) as u64;
            note.push_str(&match what {
                Waiting::RateLimit => format!(", rate-limited: waiting {secs}s"),
                Waiting::Budget => format!(", waiting {secs}s for the request budget"),
            });
        }
        bar.set_message(note);
    }
}

/// What the client waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// Atlassian said to (a 429/503, or the rate-limit headers).
    RateLimit,
    /// The client's own request budget (`--requests-per-minute`, the manifest's requestBudget).
    Budget,
}

impl ClientObserver for ClientProgress {
    fn on_request(&self, operation: &'static str, outcome: &'static str, _latency: std::time::Duration) {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if operation == crate::atlassian::Operation::UsersSearch.name()
            && outcome == "ok"
            && let Some(bar) = self.bar.lock().expect("progress lock").as_ref()
            && bar.length().is_none()
        {
            bar.inc(1);
        }
        self.refresh();
    }

    fn on_retry(&self, _operation: &'static str) {
        self.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.refresh();
    }

    fn on_rate_limit_wait(&self, _family: &'static str, duration: std::time::Duration) {
        self.waits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.wait(Waiting::RateLimit, duration);
    }

    fn on_budget_wait(&self, _family: &'static str, duration: std::time::Duration) {
        self.wait(Waiting::Budget, duration);
    }
}

/// A bar on standard error when it is a terminal, hidden otherwise (pipes, files, CI logs).
fn bar(io: &Io<'_>, len: Option<u64>, what: &'static str) -> ProgressBar {
    progress_bar(io.progress, &io.client_progress, len, what)
}

/// A bar `client` reports to: drawn on standard error when `drawn`, else hidden (it still holds
/// the counts and the message, which tests read). `len`: a bar of that length, else a spinner.
pub fn progress_bar(drawn: bool, client: &ClientProgress, len: Option<u64>, what: &'static str) -> ProgressBar {
    if !drawn {
        let pb = ProgressBar::hidden();
        client.attach(&pb);
        return pb;
    }
    let pb = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(&format!("{what} [{{bar:40}}] {{pos}}/{{len}} ({{eta}}) {{msg}}"))
                .expect("a valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(&format!("{{spinner}} {what}: {{pos}} ({{elapsed}}) {{msg}}"))
                .expect("a valid template"),
        ),
    };
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    client.attach(&pb);
    pb
}

/// Connects and reads the whole organization (exit code 3 when it can't be read).
async fn read_organization(
    conn: &ConnectionArgs,
    io: &mut Io<'_>,
) -> Result<(AtlassianClient, DirectorySnapshot), CommandError> {
    let (config, credentials) = resolve_connection(conn, io.env)?;
    let pages = bar(io, None, "pages of users read");
    let client = AtlassianClient::with_observer(config, &credentials, Arc::new(io.client_progress.clone()))
        .map_err(|e| CommandError::usage(e.to_string()))?;
    let snapshot = client.snapshot(Timestamp::now()).await;
    pages.finish_and_clear();
    let snapshot = snapshot.map_err(|e| CommandError {
        code: exit::UNREACHABLE,
        message: format!("cannot read organization {}: {e}", client.config().org_id),
    })?;
    if let Some(why) = &snapshot.incomplete {
        return Err(CommandError {
            code: exit::UNREACHABLE,
            message: format!("the listing of organization {} is incomplete ({why}): nothing done", snapshot.org_id),
        });
    }
    Ok((client, snapshot))
}

async fn list(conn: &ConnectionArgs, args: ListArgs, io: &mut Io<'_>) -> Result<u8, CommandError> {
    let filter = UserFilter {
        statuses: args.status,
        inactive: args.inactive.map(|d| ActivityFilter { for_at_least: d, product: args.product }),
        product: args.product,
        groups: args.group,
        // `@acme.example` is how people write a domain next to an address.
        domains: args.domain.iter().map(|d| d.trim().trim_start_matches('@').to_owned()).collect(),
        managed: if args.managed {
            Some(true)
        } else if args.external {
            Some(false)
        } else {
            None
        },
    };
    let (_, snapshot) = read_organization(conn, io).await?;
    let mut selected = filter.select(&snapshot, snapshot.taken_at).map_err(|e| CommandError::usage(e.to_string()))?;
    if args.external {
        selected.retain(|u| u.account_type != AccountType::App);
    }
    if args.apps {
        selected.retain(|u| u.account_type == AccountType::App);
    }
    sort_for_people(&mut selected);
    let what = "cannot write the listing";
    match args.output {
        OutputFormat::Csv => {
            users::write_export_csv(&snapshot, Some(&selected), &mut *io.out, || {})
                .map_err(|e| CommandError::write_csv(what, e))?;
        }
        OutputFormat::Json => {
            let columns = ExportColumns::of(&snapshot);
            let values: Vec<serde_json::Value> = selected.iter().map(|u| columns.json(&snapshot, u)).collect();
            serde_json::to_writer_pretty(&mut *io.out, &values).map_err(|e| CommandError::write(what, e.into()))?;
            writeln!(io.out).map_err(|e| CommandError::write(what, e))?;
        }
        OutputFormat::Table => {
            let rows: Vec<[String; 7]> = selected
                .iter()
                .map(|u| {
                    [
                        u.email.clone().unwrap_or_default(),
                        u.name.clone(),
                        u.status().label().to_owned(),
                        match (u.account_type, u.managed) {
                            (AccountType::App, _) => "app",
                            (AccountType::Customer, _) => "customer",
                            (_, true) => "managed",
                            (_, false) => "external",
                        }
                        .to_owned(),
                        last_active_cell(u),
                        u.account_id.clone(),
                        truncate_list(&users::export::group_names(&snapshot, u), GROUPS_WIDTH),
                    ]
                })
                .collect();
            let header =
                ["EMAIL", "NAME", "STATUS", "ACCOUNT", "LAST ACTIVE", "ACCOUNT ID", "GROUPS"].map(String::from);
            write!(io.out, "{}", table(&header, &rows)).map_err(|e| CommandError::write(what, e))?;
            io.out.flush().map_err(|e| CommandError::write(what, e))?;
            let _ = writeln!(io.err, "{} of {} users", selected.len(), snapshot.accounts.len());
        }
    }
    io.out.flush().map_err(|e| CommandError::write(what, e))?;
    Ok(exit::OK)
}

/// The table's LAST ACTIVE cell: the date of the latest activity from any source, naming the
/// source when it is not a product seatwarden models (`2026-11-24 (loom)`, `(api token)`): that
/// activity is what keeps the account from looking idle, so the table says where it came from.
fn last_active_cell(u: &crate::snapshot::Account) -> String {
    let Some(last) = u.last_activity() else { return "never".into() };
    let date = last.strftime("%Y-%m-%d").to_string();
    let on_products = u.product_access().filter(|p| p.last_active == Some(last)).map(|p| p.product);
    let mut keys: Vec<crate::product::ProductKey> = on_products.collect();
    if keys.iter().any(|k| k.known().is_some()) {
        return date;
    }
    keys.sort_by_key(|k| k.label());
    keys.dedup();
    match keys.first() {
        Some(k) => format!("{date} ({})", k.label()),
        None => format!("{date} (api token)"),
    }
}

/// The groups column of the table is cut to this many characters (CSV and JSON list every group).
pub const GROUPS_WIDTH: usize = 48;

/// By email (case-insensitive), accounts without one last by account id: the order people look
/// things up in.
pub fn sort_for_people(users: &mut [&crate::snapshot::Account]) {
    users.sort_by_cached_key(|u| (u.email.is_none(), u.email.as_deref().map(str::to_lowercase), u.account_id.clone()));
}

/// `a, b, c` cut to `width` characters with how many were left out: `a, b, … (+3 more)`.
pub fn truncate_list(items: &[&str], width: usize) -> String {
    let full = items.join(", ");
    if full.chars().count() <= width {
        return full;
    }
    let mut shown = String::new();
    for (i, item) in items.iter().enumerate() {
        let rest = items.len() - i;
        let suffix = format!("… (+{rest} more)");
        let candidate = if shown.is_empty() { item.to_string() } else { format!("{shown}, {item}") };
        let remaining_after = rest - 1;
        let tail = if remaining_after > 0 { format!(", … (+{remaining_after} more)") } else { String::new() };
        if candidate.chars().count() + tail.chars().count() > width {
            return if shown.is_empty() {
                let cut: String = item.chars().take(width.saturating_sub(suffix.chars().count() + 1)).collect();
                format!("{cut}{suffix}")
            } else {
                format!("{shown}, {suffix}")
            };
        }
        shown = candidate;
    }
    shown
}

/// Columns padded to their widest cell; the last column is not padded.
fn table<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let mut widths = header.each_ref().map(|h| h.chars().count());
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows) {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == N {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

async fn export(conn: &ConnectionArgs, args: ExportArgs, io: &mut Io<'_>) -> Result<u8, CommandError> {
    let (_, snapshot) = read_organization(conn, io).await?;
    let mut everyone: Vec<&crate::snapshot::Account> = snapshot.accounts.iter().collect();
    sort_for_people(&mut everyone);
    let rows = bar(io, Some(snapshot.accounts.len() as u64), "writing");
    let written = if args.csv.as_os_str() == "-" {
        users::write_export_csv(&snapshot, Some(&everyone), &mut *io.out, || rows.inc(1))
    } else {
        let file = std::fs::File::create(&args.csv)
            .map_err(|e| CommandError::failure(format!("cannot create {}: {e}", args.csv.display())))?;
        users::write_export_csv(&snapshot, Some(&everyone), std::io::BufWriter::new(file), || rows.inc(1))
    };
    rows.finish_and_clear();
    let n = written.map_err(|e| CommandError::write_csv(&format!("cannot write {}", args.csv.display()), e))?;
    let _ = writeln!(io.err, "{n} users written to {}", args.csv.display());
    Ok(exit::OK)
}

fn read_file(path: &Path) -> Result<Vec<u8>, CommandError> {
    std::fs::read(path).map_err(|e| CommandError::usage(format!("cannot read {}: {e}", path.display())))
}

/// At most this many errors are listed; the rest are counted.
const ERRORS_SHOWN: usize = 50;

fn print_row_problems(io: &mut Io<'_>, file: &Path, label: &str, problems: &[RowError]) {
    for p in problems.iter().take(ERRORS_SHOWN) {
        let _ = writeln!(io.err, "{label}: {}: {p}", file.display());
    }
    if problems.len() > ERRORS_SHOWN {
        let _ = writeln!(io.err, "{label}: ... and {} more", problems.len() - ERRORS_SHOWN);
    }
}

async fn import(conn: &ConnectionArgs, args: ImportArgs, io: &mut Io<'_>) -> Result<u8, CommandError> {
    let bytes = read_file(&args.csv)?;
    // The file is checked before the organization is read: a broken file costs no Atlassian call.
    let file = users::parse_import_csv(&bytes)
        .map_err(|e| CommandError::usage(format!("{}: {e}; nothing was changed", args.csv.display())))?;
    let (client, snapshot) = read_organization(conn, io).await?;
    let plan = users::plan_import(&file, &snapshot, ImportOptions { add_only: args.add_only });
    print_row_problems(io, &args.csv, "error", &plan.errors);
    if !plan.errors.is_empty() && !args.skip_invalid {
        return Err(CommandError::usage(format!(
            "{} of {} rows are invalid: nothing was changed (fix them, or pass --skip-invalid to apply only the valid rows)",
            plan.errors.iter().map(|e| e.line).collect::<std::collections::BTreeSet<_>>().len(),
            plan.rows
        )));
    }
    print_row_problems(io, &args.csv, "note", &plan.notes);
    let _ = write!(io.out, "{}", plan.render());
    let source = args.csv.display().to_string();
    let apply = args.apply || args.limits.apply_what_fits;
    finish(conn, &client, &snapshot, "cli-import", &source, &plan.changes, apply, &args.limits, &args.audit, io).await
}

/// What the command line's changes are checked against: the organization, its ProtectedUsers and
/// GroupLicenseMappings, from the manifests given with --file (in the organization's namespace),
/// else the organization as read, with none.
struct CliRules {
    organization: crate::crd::AtlassianOrganization,
    protections: Vec<crate::crd::ProtectedUser>,
    mappings: Vec<crate::crd::GroupLicenseMapping>,
}

fn cli_rules(conn: &ConnectionArgs, snapshot: &DirectorySnapshot) -> Result<CliRules, CommandError> {
    if !conn.file.is_empty() {
        let manifests = super::plan::load_manifests(&conn.file).map_err(|e| CommandError::usage(e.to_string()))?;
        let org = manifests
            .organizations
            .iter()
            .find(|o| conn.organization.as_ref().is_none_or(|n| o.metadata.name.as_ref() == Some(n)))
            .cloned();
        if let Some(org) = org {
            let ns = org.metadata.namespace.clone();
            let protections =
                manifests.protections.into_iter().filter(|p| ns.is_none() || p.metadata.namespace == ns).collect();
            let name = org.metadata.name.clone().unwrap_or_default();
            let mappings = manifests
                .mappings
                .into_iter()
                .filter(|m| (ns.is_none() || m.metadata.namespace == ns) && m.spec.organization_ref.name == name)
                .collect();
            return Ok(CliRules { organization: org, protections, mappings });
        }
    }
    let org: crate::crd::AtlassianOrganization = serde_json::from_value(serde_json::json!({
        "apiVersion": "seatwarden.io/v1alpha1", "kind": "AtlassianOrganization",
        "metadata": {"name": snapshot.org_id},
        "spec": {"orgId": snapshot.org_id, "credentials": {"apiKeySecretRef": {"name": "-", "key": "-"}}}
    }))
    .map_err(|e| CommandError::failure(format!("organization for the checks: {e}")))?;
    Ok(CliRules { organization: org, protections: vec![], mappings: vec![] })
}

/// The dry run's last word, or the application of `changes` with its audit record.
#[allow(clippy::too_many_arguments)]
async fn finish(
    conn: &ConnectionArgs,
    client: &AtlassianClient,
    snapshot: &DirectorySnapshot,
    policy: &str,
    source: &str,
    changes: &[Change],
    apply: bool,
    limits: &LimitArgs,
    audit: &AuditArgs,
    io: &mut Io<'_>,
) -> Result<u8, CommandError> {
    // The operator's rules hold here too: protected users (from the manifests given with --file),
    // admins, the API-key owner, apps and IdP-synced accounts and groups are not changed.
    let rules = cli_rules(conn, snapshot)?;
    let guard = users::Guard {
        organization: &rules.organization,
        protections: &rules.protections,
        policy,
        now: snapshot.taken_at,
    };
    let (allowed, refused) = guard.screen(snapshot, changes);
    for r in &refused {
        let _ = writeln!(io.out, "refused: {}: {}", r.change, r.why);
    }
    if allowed.is_empty() {
        let _ = writeln!(io.out, "nothing to change");
        return Ok(exit::OK);
    }
    // The products' user limits: declared (flags over the manifest), seats in use counted as the
    // planner counts them, and the rows that would pass a limit.
    let mut declared = rules.organization.spec.declared_user_limits();
    declared.extend(limits.user_limit.iter().copied());
    let from_flags: Vec<Product> = limits.user_limit.iter().map(|(p, _)| *p).collect();
    let grants = crate::policy::group_grants(snapshot, &rules.organization.spec, &rules.mappings);
    let licensed = crate::policy::licensed_accounts(snapshot, &rules.organization.spec, &rules.mappings);
    let fit = users::limits::check_fit(snapshot, &grants, &licensed, &declared, &allowed);
    print_fit(io, &fit, &from_flags);
    let changes: &[Change] = if limits.apply_what_fits { &fit.fits } else { &allowed };
    if !apply {
        let _ = writeln!(io.out, "dry run: nothing was changed; pass --apply to make these {} changes", allowed.len());
        if !fit.refused.is_empty() {
            let _ = writeln!(
                io.out,
                "--apply refuses to start while {} change(s) would be refused at a user limit; --apply-what-fits \
                 makes the {} that fit",
                fit.refused.len(),
                fit.fits.len()
            );
        }
        return Ok(exit::OK);
    }
    if !fit.refused.is_empty() && !limits.apply_what_fits {
        return Err(CommandError {
            code: exit::USER_LIMIT,
            message: format!(
                "{} of {} changes would be refused at a user limit ({}): nothing was changed; free seats, raise the \
                 limit, or pass --apply-what-fits to make the {} that fit",
                fit.refused.len(),
                allowed.len(),
                limited_products(&fit),
                fit.fits.len()
            ),
        });
    }
    if changes.is_empty() {
        let _ = writeln!(io.out, "nothing fits the user limits: nothing was changed");
        return Ok(exit::USER_LIMIT);
    }
    let sink = CliAudit::open(audit).await?;
    let start = Timestamp::now();
    let run_id = users::apply::cli_run_id(start);
    // Recorded before anything is applied, so an interruption leaves a trace of what was under way.
    let actor = audit.actor();
    let mut planned = users::audit_record(&run_id, policy, &snapshot.org_id, source, start, changes, None);
    planned.actor = Some(actor.clone());
    sink.write(&planned)
        .await
        .map_err(|e| CommandError::failure(format!("cannot write the audit trail ({e}): nothing was changed")))?;
    let pb = bar(io, Some(changes.len() as u64), "applying");
    let applied = users::apply_changes(client, snapshot, &guard, changes, |_| pb.inc(1)).await;
    pb.finish_and_clear();
    let mut record = users::audit_record(
        &run_id,
        policy,
        &snapshot.org_id,
        source,
        start,
        changes,
        Some((&applied, Timestamp::now())),
    );
    record.actor = Some(actor);
    // A refusal at a user limit mid-apply (the limit was unknown, or lower than declared): all or
    // nothing takes back what this apply did; --apply-what-fits keeps what fit.
    let stop = users::apply::stopped_at_limit(&applied).map(|(a, message)| (a.change.clone(), message.to_owned()));
    let mut undone = vec![];
    if let Some((at, message)) = &stop
        && !limits.apply_what_fits
    {
        // The applied changes are on record before the first undo is sent.
        if let Err(e) = sink.write(&record).await {
            return Err(CommandError::failure(format!(
                "Atlassian refused {at} at a user limit ({message}), and the audit trail could not be updated \
                 ({e}): nothing was undone; the changes applied so far are listed in run {run_id} as planned"
            )));
        }
        let why = format!(
            "the apply stopped when Atlassian refused {} at a user limit ({message}), and --apply is all or nothing",
            at.subject()
        );
        undone = users::apply::undo_applied(client, &applied).await;
        record.actions.extend(users::apply::undo_actions(policy, source, &applied, &undone, &why, Timestamp::now()));
        record.end_time = Some(Timestamp::now());
    }
    let recorded = sink.write(&record).await;
    let not_attempted =
        applied.iter().filter(|a| a.skipped.as_deref().is_some_and(|s| s.starts_with("not attempted"))).count();
    let failed: Vec<&AppliedChange> =
        applied.iter().filter(|a| a.skipped.is_none() && !a.outcome.is_converged()).collect();
    for a in &failed {
        let why = match &a.outcome {
            WriteOutcome::Refused { reason, message } => format!("{}: {message}", reason.label()),
            WriteOutcome::Failed { message, .. } => message.clone(),
            _ => String::new(),
        };
        let _ = writeln!(io.err, "failed: {}: {why}", a.change);
    }
    let recorded_in = format!("run {} of {policy} in {}", record.run_id, sink.describe());
    let recorded_err = |e: RecordError| {
        CommandError::failure(format!("the changes were made but the audit trail could not be updated: {e}"))
    };
    if let Some((at, message)) = &stop {
        let made = applied.iter().filter(|a| a.skipped.is_none() && a.outcome == WriteOutcome::Done).count();
        if limits.apply_what_fits {
            let _ = writeln!(
                io.out,
                "Atlassian refused {at} at a user limit ({message}): the apply stopped there; {made} of {} changes \
                 were made, {not_attempted} not attempted; recorded as {recorded_in}",
                applied.len()
            );
            recorded.map_err(recorded_err)?;
            return Ok(exit::USER_LIMIT);
        }
        let undo_failed: Vec<&users::apply::Undone> = undone.iter().filter(|u| !u.outcome.is_converged()).collect();
        for u in &undo_failed {
            let why = match &u.outcome {
                WriteOutcome::Refused { reason, message } => format!("{}: {message}", reason.label()),
                WriteOutcome::Failed { message, .. } => message.clone(),
                _ => String::new(),
            };
            let _ = writeln!(io.err, "undo failed: {} of {}: {why}", u.action, applied[u.of].change);
        }
        for u in undone.iter().filter(|u| matches!(applied[u.of].change.kind, users::ChangeKind::Invite { .. })) {
            let _ = writeln!(
                io.err,
                "note: {} was invited and removed again; the invitation email had already been sent",
                applied[u.of].change.subject()
            );
        }
        if !undo_failed.is_empty() {
            recorded.map_err(recorded_err)?;
            return Err(CommandError::failure(format!(
                "PARTLY APPLIED: Atlassian refused {at} at a user limit ({message}); {} of the {} changes this apply \
                 made could not be undone (listed above): put them back by hand; recorded as {recorded_in}",
                undo_failed.len(),
                undone.len()
            )));
        }
        let _ = writeln!(
            io.out,
            "Atlassian refused {at} at a user limit ({message}): nothing was left changed: the {} change(s) this \
             apply made were undone; recorded as {recorded_in}. Declare the limit (--user-limit PRODUCT=N or \
             spec.userLimits) to see in the dry run what fits, or pass --apply-what-fits",
            undone.len()
        );
        recorded.map_err(recorded_err)?;
        return Ok(exit::USER_LIMIT);
    }
    let _ = writeln!(
        io.out,
        "applied {} of {} changes ({} failed); recorded as {recorded_in}",
        applied.len() - failed.len(),
        applied.len(),
        failed.len(),
    );
    if !fit.refused.is_empty() {
        let _ = writeln!(io.out, "left out at a user limit: {} change(s) (listed above)", fit.refused.len());
    }
    recorded.map_err(recorded_err)?;
    Ok(if !failed.is_empty() {
        exit::FAILURE
    } else if !fit.refused.is_empty() {
        exit::USER_LIMIT
    } else {
        exit::OK
    })
}

/// `Jira Service Management, Confluence`: the products some change would pass the limit of.
fn limited_products(fit: &users::limits::FitCheck) -> String {
    let names: Vec<&str> =
        fit.products.iter().filter(|p| p.refused_rows > 0).map(|p| p.product.display_name()).collect();
    names.join(", ")
}

/// Per product the changes take seats of: the limit, the seats in use and what the changes add,
/// then each change that would be refused at the limit.
fn print_fit(io: &mut Io<'_>, fit: &users::limits::FitCheck, from_flags: &[Product]) {
    for p in fit.products.iter().filter(|p| p.wanted > 0) {
        let name = p.product.display_name();
        match p.limit {
            Some(limit) => {
                let source = if from_flags.contains(&p.product) { "--user-limit" } else { "spec.userLimits" };
                let _ = writeln!(
                    io.out,
                    "user limit: {name}: limit {limit} ({source}), {} in use, these changes would add {}: {}",
                    p.licensed,
                    p.wanted,
                    if p.refused_rows == 0 {
                        "they fit".to_owned()
                    } else {
                        format!("{} row(s) would be refused", p.refused_rows)
                    }
                );
            }
            None => {
                let _ = writeln!(
                    io.out,
                    "user limit: {name}: limit unknown, {} in use, these changes would add {}; no Atlassian API \
                     publishes the limit: declare it with --user-limit {}=N or spec.userLimits in the \
                     AtlassianOrganization, and the dry run lists what Atlassian would refuse",
                    p.licensed,
                    p.wanted,
                    p.product.label()
                );
            }
        }
    }
    for (c, p) in &fit.refused {
        let _ = writeln!(io.out, "refused at the user limit of {}: {c}", p.display_name());
    }
}

/// The audit trail the command line writes to: a local folder, or LifecycleRuns in a namespace.
enum CliAudit {
    Folder(FolderAudit, PathBuf),
    Cluster(Box<ClusterAudit>, String),
}

impl CliAudit {
    async fn open(args: &AuditArgs) -> Result<Self, CommandError> {
        match &args.namespace {
            Some(ns) => {
                let client = kube::Client::try_default().await.map_err(|e| {
                    CommandError::usage(format!(
                        "--namespace {ns}: no Kubernetes client ({e}); use --audit-dir instead"
                    ))
                })?;
                Ok(CliAudit::Cluster(Box::new(ClusterAudit::new(client, ns)), ns.clone()))
            }
            None => Ok(CliAudit::Folder(FolderAudit::new(&args.audit_dir), args.audit_dir.clone())),
        }
    }

    async fn write(&self, run: &RunRecord) -> Result<Vec<String>, RecordError> {
        match self {
            CliAudit::Folder(a, _) => a.write(run).await,
            CliAudit::Cluster(a, _) => a.write(run).await,
        }
    }

    async fn list(&self) -> Result<Vec<RunRecord>, RecordError> {
        match self {
            CliAudit::Folder(a, _) => a.list(None),
            CliAudit::Cluster(a, _) => a.list(None).await,
        }
    }

    fn describe(&self) -> String {
        match self {
            CliAudit::Folder(_, dir) => dir.join("runs").display().to_string(),
            CliAudit::Cluster(_, ns) => format!("LifecycleRuns of namespace {ns}"),
        }
    }
}

async fn activate(conn: &ConnectionArgs, args: ActivateArgs, io: &mut Io<'_>) -> Result<u8, CommandError> {
    let (target, source) = match (&args.group, &args.csv, &args.account) {
        (Some(g), _, _) => (ActivationTarget::Group(g.clone()), format!("--group {g}")),
        (_, Some(path), _) => {
            let file = users::parse_import_csv(&read_file(path)?)
                .map_err(|e| CommandError::usage(format!("{}: {e}; nothing was changed", path.display())))?;
            if !file.errors.is_empty() {
                print_row_problems(io, path, "error", &file.errors);
                return Err(CommandError::usage(format!(
                    "{} rows of {} are invalid: nothing was changed",
                    file.errors.len(),
                    path.display()
                )));
            }
            (ActivationTarget::from_file(&file), path.display().to_string())
        }
        (_, _, Some(id)) if id.contains('@') => {
            return Err(CommandError::usage(format!(
                "--account takes an Atlassian account id, and {id:?} is an email address: \
                 find the id with `seatwarden users list --domain {}`, or activate by email with --csv FILE \
                 (a CSV with an `email` column)",
                id.rsplit('@').next().unwrap_or_default()
            )));
        }
        (_, _, Some(id)) => (
            ActivationTarget::People(vec![Person {
                line: 0,
                account_id: Some(id.clone()),
                email: None,
                groups: vec![],
            }]),
            format!("--account {id}"),
        ),
        (None, None, None) => return Err(CommandError::usage("name whom to activate: --group, --csv or --account")),
    };
    let (client, snapshot) = read_organization(conn, io).await?;
    // Removed users are listed nowhere: the audit trail may still know their email.
    let mut known_emails = HashMap::new();
    if args.account.is_some() {
        let sink = CliAudit::open(&args.audit).await?;
        if let Ok(records) = sink.list().await {
            for a in records.iter().flat_map(|r| &r.actions) {
                if let Some(e) = &a.email {
                    known_emails.entry(a.account_id.clone()).or_insert_with(|| e.clone());
                }
            }
        }
    }
    let plan = users::plan_activation(&snapshot, &target, &known_emails);
    let _ = write!(io.out, "{}", plan.render());
    if !plan.errors.is_empty() {
        for e in &plan.errors {
            let _ = writeln!(io.err, "error: {source}: {e}");
        }
        return Err(CommandError::usage(format!(
            "{} cannot be activated as asked: nothing was changed",
            plan.errors.len()
        )));
    }
    let apply = args.apply || args.limits.apply_what_fits;
    finish(conn, &client, &snapshot, "cli-activate", &source, &plan.changes, apply, &args.limits, &args.audit, io).await
}

#[cfg(test)]
mod tests {
    use super::last_active_cell;
    use crate::product::{Product, ProductKey};
    use crate::snapshot::*;

    fn account(activity: Vec<(ProductKey, &str)>, token: Option<&str>) -> Account {
        Account {
            account_id: "a".into(),
            email: None,
            name: "A".into(),
            account_type: AccountType::Atlassian,
            managed: true,
            management_source: ManagementSource::Invited,
            org_admin: false,
            site_admin: false,
            added_to_org: None,
            api_token_last_active: token.map(|t| t.parse().unwrap()),
            memberships: vec![Membership {
                directory: 0,
                status: UserStatus::Active,
                groups: vec![],
                product_access: activity
                    .into_iter()
                    .map(|(product, at)| ProductActivity { product, last_active: Some(at.parse().unwrap()) })
                    .collect(),
            }],
        }
    }

    #[test]
    fn the_last_active_cell_names_a_source_seatwarden_does_not_model() {
        let jira = ProductKey::from(Product::JiraSoftware);
        let loom = ProductKey::from_api_key("loom");
        let a = account(vec![(jira, "2026-03-01T00:00:00Z"), (loom, "2026-11-24T00:00:00Z")], None);
        assert_eq!(last_active_cell(&a), "2026-11-24 (loom)");
        let a = account(vec![(jira, "2026-11-24T00:00:00Z"), (loom, "2026-03-01T00:00:00Z")], None);
        assert_eq!(last_active_cell(&a), "2026-11-24");
        let a = account(vec![(jira, "2026-03-01T00:00:00Z")], Some("2026-11-20T08:00:00Z"));
        assert_eq!(last_active_cell(&a), "2026-11-20 (api token)");
        assert_eq!(last_active_cell(&account(vec![], None)), "never");
    }
}
