//! One run of an organization's due policies inside the operator: read credentials, take one
//! snapshot, run the engine, then write status, events and metrics for every kind involved.

use std::{collections::HashMap, sync::Arc};

use jiff::Timestamp;
use k8s_openapi::{api::core::v1::Secret, apimachinery::pkg::apis::meta::v1::Time};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{events::EventType, reflector::ObjectRef},
};
use serde_json::json;

use super::{Context, Error, FIELD_MANAGER, schedule, status, write_policy_status};
use crate::{
    atlassian::{AtlassianClient, Credentials, Secret as SecretValue, SiteUser},
    crd::{
        ActionOutcome, AtlassianOrganization, AtlassianOrganizationStatus, ConditionStatus, DailyActions,
        GroupLicenseMapping, GroupLicenseMappingStatus, LifecyclePolicy, LifecyclePolicyStatus, NO_NOTICE_DELIVERY,
        NoticeDelivery, PolicyMode, ProtectedUser, ProtectedUserStatus, ProtectionState, ResolvedGroup, RunPhase,
        UserCounts, set_condition,
    },
    engine::{OrgInputs, RunDeps, run_due_policies},
    execute::atlassian::ClientWriter,
    notify::MailboxNotifier,
    record::{ClusterAudit, ConfigMapLedgerStore, RunRecord},
    snapshot::{DirectorySnapshot, UserStatus},
};

/// What the operator remembers per organization between reconciles: the statuses it wrote last,
/// because the watch cache may not show them yet when the next policy of the organization wakes.
#[derive(Default)]
pub struct OrgState {
    written: HashMap<String, LifecyclePolicyStatus>,
}

impl OrgState {
    /// The policy with the newest status we know of (ours, or the cache's if it is newer).
    pub fn effective(&self, policy: &LifecyclePolicy) -> LifecyclePolicy {
        let mut p = policy.clone();
        if let Some(ours) = self.written.get(&policy.name_any()) {
            let theirs = p.status.as_ref().and_then(|s| s.last_run_time.clone()).map(|t| t.0);
            let mine = ours.last_run_time.clone().map(|t| t.0);
            if mine > theirs || (mine == theirs && p.status.as_ref() != Some(ours)) && mine.is_some() {
                p.status = Some(ours.clone());
            }
        }
        p
    }

    /// Remembers a status written outside a run (the next run time while a policy waits).
    pub fn remember(&mut self, policy: &str, status: LifecyclePolicyStatus) {
        if let Some(known) = self.written.get_mut(policy) {
            *known = status;
        }
    }
}

async fn secret_value(ctx: &Context, ns: &str, name: &str, key: &str) -> Result<String, String> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let secret = api.get(name).await.map_err(|e| format!("Secret {ns}/{name}: {}", short_kube_error(&e)))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(key)).map(|s| s.clone().into_bytes()))
        .ok_or_else(|| format!("Secret {ns}/{name} has no key {key:?}"))?;
    String::from_utf8(bytes)
        .map(|s| s.trim().to_owned())
        .map_err(|_| format!("Secret {ns}/{name} key {key:?} is not UTF-8"))
}

fn short_kube_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

pub async fn credentials(ctx: &Context, org: &AtlassianOrganization) -> Result<Credentials, String> {
    let ns = org.namespace().unwrap_or_default();
    let c = &org.spec.credentials;
    let key = secret_value(ctx, &ns, &c.api_key_secret_ref.name, &c.api_key_secret_ref.key).await?;
    let site_user = match &c.site_user {
        Some(su) => Some(SiteUser {
            email: su.email.clone(),
            api_token: SecretValue::new(
                secret_value(ctx, &ns, &su.api_token_secret_ref.name, &su.api_token_secret_ref.key).await?,
            ),
        }),
        None => None,
    };
    Ok(Credentials { org_api_key: SecretValue::new(key), site_user })
}

fn in_namespace<K: kube::Resource + Clone>(store: &kube::runtime::reflector::Store<K>, ns: &str) -> Vec<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    let mut v: Vec<K> =
        store.state().iter().filter(|o| o.namespace().as_deref() == Some(ns)).map(|o| (**o).clone()).collect();
    v.sort_by_key(|o| o.name_any());
    v
}

/// Runs every due policy of `ns/org_name` on one snapshot and records the results.
pub async fn run_organization(
    ctx: &Context,
    state: &mut OrgState,
    ns: &str,
    org_name: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let policies: Vec<LifecyclePolicy> = in_namespace(&ctx.policies, ns)
        .into_iter()
        .filter(|p| p.spec.organization_ref.name == org_name)
        .map(|p| state.effective(&p))
        .collect();
    let due: Vec<&LifecyclePolicy> = policies
        .iter()
        .filter(|p| p.spec.mode != PolicyMode::Paused && p.validate_cel().is_ok())
        .filter(|p| matches!(schedule::due(p, now), schedule::Due::Now(_)))
        .collect();
    if due.is_empty() {
        return Ok(());
    }
    let Some(org) = ctx.organizations.get(&ObjectRef::new(org_name).within(ns)) else {
        for p in &due {
            let msg =
                format!("AtlassianOrganization {ns}/{org_name} does not exist; create it or fix spec.organizationRef");
            write_policy_status(&ctx.client, p, status::failed(p, "OrganizationNotFound", &msg, now, false)).await?;
        }
        return Ok(());
    };
    let protections: Vec<ProtectedUser> = in_namespace(&ctx.protections, ns);
    let mappings: Vec<GroupLicenseMapping> =
        in_namespace(&ctx.mappings, ns).into_iter().filter(|m| m.spec.organization_ref.name == org_name).collect();

    let timer = std::time::Instant::now();
    let (client, snapshot) = match take_snapshot(ctx, &org, now).await {
        Ok(s) => s,
        Err((reason, message)) => {
            write_org_status(ctx, &org, None, now, Some((&reason, &message))).await?;
            for p in &due {
                let st = status::failed(p, &reason, &format!("{message}; seatwarden retries every minute"), now, false);
                state.written.remove(&p.name_any());
                write_policy_status(&ctx.client, p, st).await?;
                ctx.metrics.reconcile_errors.with_label_values(&[&p.name_any(), "snapshot"]).inc();
                ctx.event(*p, EventType::Warning, "RunFailed", "Snapshot", message.clone()).await;
            }
            return Ok(());
        }
    };

    let writer = ClientWriter::new(&client, &snapshot);
    let ledger_store = ConfigMapLedgerStore::new(ctx.client.clone(), ns, org_name).fenced(ctx.fence.clone());
    let audit = ClusterAudit::new(ctx.client.clone(), ns).fenced(ctx.fence.clone());
    // Unusable mail settings don't stop a run: notices fail (so actions that need them wait) and
    // the policy's status says why.
    let (notifier, summary_recipients, mail_problem): (Box<dyn crate::notify::Notifier>, _, _) =
        match notifier_for(ctx, &org).await {
            Ok((n, s)) => (n, s, None),
            Err(e) => {
                let why = format!("mail settings unusable: {e}");
                (Box::new(UndeliverableNotifier(why.clone())), None, Some(why))
            }
        };
    let premises = ClusterPremises {
        client: ctx.client.clone(),
        namespace: ns.to_owned(),
        process_dry_run: ctx.settings.process_dry_run,
        shutting_down: ctx.settings.shutting_down.clone(),
    };
    let deps = RunDeps {
        directory: &writer,
        ledger_store: &ledger_store,
        audit: &audit,
        notifier: notifier.as_ref(),
        clock: &ctx.clock,
        fence: ctx.fence.as_ref(),
        premises: Some(&premises),
        fail: crate::execute::FailPoints::process(),
        metrics: Some(&ctx.metrics),
        process_dry_run: ctx.settings.process_dry_run,
        concurrency: org.spec.request_budget.concurrency.max(1) as usize,
        summary_recipients: summary_recipients.as_deref(),
    };
    // The daily cap counts accounts acted on today, from the audit trail: every action is recorded
    // there before it is applied (invariant 5), so the count is persisted with the run and a crash
    // can't lose it. The planner reads it from the organization's status, as `plan` does.
    let today = now.strftime("%Y-%m-%d").to_string();
    let records = audit.list(None).await.map_err(|e| Error::Run(format!("audit trail: {e}")))?;
    let mut org_today = (*org).clone();
    org_today.status.get_or_insert_default().actions_today =
        Some(DailyActions { day: today.clone(), count: accounts_acted_on(&records, org_name, &today) });
    let inputs =
        OrgInputs { organization: &org_today, policies: &policies, protections: &protections, mappings: &mappings };
    let due_names: Vec<String> = due.iter().map(|p| p.name_any()).collect();
    let products: Vec<&str> = mappings.iter().map(|m| m.spec.product.label()).collect();
    for p in &due {
        ctx.metrics.init_policy(&p.name_any(), p.spec.mode.label(), &products);
    }
    let (plan, runs) =
        run_due_policies(&inputs, &due_names, &snapshot, &deps).await.map_err(|e| Error::Run(e.to_string()))?;

    write_org_status(ctx, &org, Some(&snapshot), now, None).await?;
    let records = audit.list(None).await.map_err(|e| Error::Run(format!("audit trail: {e}")))?;
    record_daily_actions(ctx, &org, &today, accounts_acted_on(&records, org_name, &today)).await?;
    write_mapping_statuses(ctx, &mappings, &snapshot, now).await?;
    write_protection_statuses(ctx, &protections, &snapshot, now).await?;
    record_org_metrics(ctx, org_name, &snapshot, &mappings, now);

    for run in &runs {
        let Some(p) = due.iter().find(|p| p.name_any() == run.policy) else { continue };
        let run_now = p.annotations().get(schedule::RUN_NOW_ANNOTATION).cloned();
        let end = ctx.now().await;
        let next = schedule::next_run(p, end);
        let mut st = status::after_run(p, run, end, next, ctx.settings.process_dry_run, run_now);
        notice_delivery_condition(ctx, p, &org, &mut st, end).await;
        // A Warning Event when a product the policy onboards into reaches its user limit (once,
        // not every run while it stays there).
        let at_limit = |s: &LifecyclePolicyStatus| {
            s.conditions.iter().find(|c| c.type_ == status::PRODUCT_USER_LIMIT_REACHED && c.status == "True").cloned()
        };
        if let Some(c) = at_limit(&st)
            && p.status.as_ref().and_then(at_limit).is_none()
        {
            ctx.event(*p, EventType::Warning, status::PRODUCT_USER_LIMIT_REACHED, "Reconcile", c.message).await;
        }
        if let Some(why) = &mail_problem {
            set_condition(
                &mut st.conditions,
                status::DEGRADED,
                ConditionStatus::True,
                "MailUnavailable",
                format!("{why}; notices are not delivered and the actions that need them wait"),
                p.metadata.generation,
                end,
            );
        }
        let trigger = match schedule::due(p, now) {
            schedule::Due::Now(t) => Some(t),
            _ => None,
        };
        let outside_window = p
            .spec
            .schedule
            .window
            .as_ref()
            .and_then(|w| schedule::validate_window(w).ok())
            .is_some_and(|w| !w.contains(now));
        if let Some(ls) = st.last_run.as_mut() {
            ls.users_evaluated = snapshot.accounts.len() as i64;
            ls.trigger = trigger;
            ls.outside_window = outside_window;
        }
        if outside_window {
            ctx.event(
                *p,
                EventType::Normal,
                "RunNowOverride",
                "Reconcile",
                format!(
                    "the {} annotation started this run outside the schedule's window",
                    schedule::RUN_NOW_ANNOTATION
                ),
            )
            .await;
        }
        write_policy_status(&ctx.client, p, st.clone()).await?;
        state.written.insert(run.policy.clone(), st);

        let name = run.policy.as_str();
        let m = &ctx.metrics;
        m.reconcile_runs.with_label_values(&[name]).inc();
        m.reconcile_duration.with_label_values(&[name]).observe(timer.elapsed().as_secs_f64());
        m.pending_notices.with_label_values(&[name]).set(run.plan.notices.len() as i64);
        m.safety_halted.with_label_values(&[name]).set(run.plan.halt.is_some() as i64);
        if let Some(cur) = run.plan.totals.savings.currency.as_deref() {
            let value = p
                .status
                .as_ref()
                .and_then(|s| s.projected_monthly_savings.as_deref())
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok());
            if let Some(v) = state
                .written
                .get(name)
                .and_then(|s| s.projected_monthly_savings.as_deref())
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .or(value)
            {
                m.projected_monthly_savings.with_label_values(&[name, cur]).set(v);
            }
        }
        if let Some(h) = &run.plan.halt {
            m.safety_halts.with_label_values(&[name]).inc();
            ctx.event(
                *p,
                EventType::Warning,
                "SafetyHalted",
                "Reconcile",
                format!("{}: nothing was applied", h.message),
            )
            .await;
        } else {
            m.last_successful_run.with_label_values(&[name]).set(end.as_millisecond() as f64 / 1000.0);
            let r = &run.report;
            let note = format!(
                "{} run {}: {} planned, {} applied, {} failed, {} deferred, {} notices sent{}",
                p.spec.mode.label(),
                run.record_names.first().map(String::as_str).unwrap_or("(nothing to record)"),
                run.plan.actions.len(),
                r.applied,
                r.failed,
                run.plan.deferred.len(),
                r.notices_sent,
                if ctx.settings.process_dry_run { " (process --dry-run: nothing written)" } else { "" }
            );
            let (t, reason) = if r.failed > 0 {
                (EventType::Warning, "RunCompletedWithFailures")
            } else {
                (EventType::Normal, "RunCompleted")
            };
            ctx.event(*p, t, reason, "Reconcile", note).await;
        }
    }
    tracing::info!(
        organization = org_name,
        namespace = ns,
        users = snapshot.accounts.len(),
        policies = runs.len(),
        plan_actions = plan.all_actions().count(),
        "organization run finished"
    );
    super::prune_runs(ctx, ns, now).await;
    Ok(())
}

/// A run's premises read fresh from the API server (not the watch caches, which may lag).
struct ClusterPremises {
    client: kube::Client,
    namespace: String,
    process_dry_run: bool,
    shutting_down: tokio::sync::watch::Receiver<bool>,
}

impl crate::engine::PremiseSource for ClusterPremises {
    fn current<'a>(
        &'a self,
        policy: &'a str,
    ) -> crate::execute::BoxFut<'a, Result<crate::engine::CurrentPremises, String>> {
        Box::pin(async move {
            let policies: Api<LifecyclePolicy> = Api::namespaced(self.client.clone(), &self.namespace);
            let protections: Api<ProtectedUser> = Api::namespaced(self.client.clone(), &self.namespace);
            let policy = policies.get_opt(policy).await.map_err(|e| format!("reading the policy: {e}"))?;
            let protections = protections
                .list(&kube::api::ListParams::default())
                .await
                .map_err(|e| format!("reading the ProtectedUsers: {e}"))?
                .items;
            Ok(crate::engine::CurrentPremises {
                policy,
                protections,
                process_dry_run: self.process_dry_run,
                shutting_down: *self.shutting_down.borrow(),
            })
        })
    }
}

/// NoticeDeliveryUnavailable on a policy whose rules need notices while the organization has no
/// way to deliver them (with a Warning Event when it starts); lifted once delivery is configured.
async fn notice_delivery_condition(
    ctx: &Context,
    policy: &LifecyclePolicy,
    org: &AtlassianOrganization,
    st: &mut LifecyclePolicyStatus,
    now: Timestamp,
) {
    let needs_notices = policy.spec.rules.iter().any(|r| !r.notice_lead_times.is_empty());
    let was = st.conditions.iter().any(|c| c.type_ == status::NOTICE_DELIVERY_UNAVAILABLE && c.status == "True");
    if needs_notices && org.spec.notice_delivery() == NoticeDelivery::Unavailable {
        set_condition(
            &mut st.conditions,
            status::NOTICE_DELIVERY_UNAVAILABLE,
            ConditionStatus::True,
            "NoMailTransport",
            NO_NOTICE_DELIVERY,
            policy.metadata.generation,
            now,
        );
        if !was {
            ctx.event(policy, EventType::Warning, "NoticeDeliveryUnavailable", "Notify", NO_NOTICE_DELIVERY.to_owned())
                .await;
        }
    } else if st.conditions.iter().any(|c| c.type_ == status::NOTICE_DELIVERY_UNAVAILABLE) {
        let why = if needs_notices {
            "notices are delivered (spec.mail or spec.localMailbox)"
        } else {
            "no rule of this policy sends notices"
        };
        set_condition(
            &mut st.conditions,
            status::NOTICE_DELIVERY_UNAVAILABLE,
            ConditionStatus::False,
            "NoticeDeliveryConfigured",
            why,
            policy.metadata.generation,
            now,
        );
    }
}

/// Fails every delivery with the reason the organization's mail can't be used.
struct UndeliverableNotifier(String);

impl crate::notify::Notifier for UndeliverableNotifier {
    fn deliver<'a>(&'a self, _message: &'a crate::notify::Message) -> crate::notify::DeliveryFuture<'a> {
        Box::pin(async move { Err(crate::notify::NotifyError::Transient(self.0.clone())) })
    }
}

/// SMTP (and the summary webhook) when the organization has mail settings; the local mailbox
/// folder only when the organization asks for it (`localMailbox`); else nothing delivers notices.
/// Returns the notifier and who receives run summaries.
async fn notifier_for(
    ctx: &Context,
    org: &AtlassianOrganization,
) -> Result<(Box<dyn crate::notify::Notifier>, Option<Vec<String>>), Error> {
    let ns = org.namespace().unwrap_or_default();
    let Some(mail) = &org.spec.mail else {
        if !org.spec.local_mailbox {
            return Ok((Box::new(UndeliverableNotifier(NO_NOTICE_DELIVERY.to_owned())), None));
        }
        let mailbox = MailboxNotifier::new(ctx.settings.mailbox_dir.join(&ns).join(org.name_any()))
            .map_err(|e| Error::Run(format!("mailbox: {e}")))?;
        return Ok((Box::new(mailbox), None));
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let read = |name: String| {
        let secrets = secrets.clone();
        let ns = ns.clone();
        async move {
            secrets.get(&name).await.map_err(|e| Error::Run(format!("Secret {ns}/{name}: {}", short_kube_error(&e))))
        }
    };
    let credentials = match &mail.credentials_secret_ref {
        Some(r) => Some(
            crate::notify::smtp::SmtpCredentials::from_secret(&read(r.name.clone()).await?, r)
                .map_err(|e| Error::Run(e.to_string()))?,
        ),
        None => None,
    };
    let webhook = match &mail.summary_webhook_secret_ref {
        Some(r) => Some(
            crate::notify::smtp::secret_value(&read(r.name.clone()).await?, &r.name, &r.key)
                .map_err(|e| Error::Run(e.to_string()))?,
        ),
        None => None,
    };
    let router = crate::notify::route::RoutingNotifier::for_organization(
        mail,
        credentials,
        webhook.as_deref(),
        // Short in-run retries: a notice that still fails is retried by the next run, and its
        // action waits until then.
        crate::notify::retry::RetryPolicy {
            max_attempts: 2,
            initial_delay: std::time::Duration::from_secs(1),
            max_delay: std::time::Duration::from_secs(5),
            multiplier: 2,
        },
        Default::default(),
    )
    .map_err(|e| Error::Run(format!("mail settings: {e}")))?;
    let summaries = router.handles(crate::notify::MessageKind::Summary).then(|| mail.admin_recipients.clone());
    Ok((Box::new(router), summaries))
}

async fn take_snapshot(
    ctx: &Context,
    org: &AtlassianOrganization,
    now: Timestamp,
) -> Result<(AtlassianClient, DirectorySnapshot), (String, String)> {
    let credentials = credentials(ctx, org).await.map_err(|m| ("CredentialsUnavailable".to_owned(), m))?;
    let mut config = crate::atlassian::ClientConfig::from_spec(&org.spec)
        .map_err(|e| ("InvalidOrganization".to_owned(), e.to_string()))?;
    config.api_key_owner = org.spec.credentials.api_key_owner_account_id.clone();
    let client = AtlassianClient::with_observer(config, &credentials, Arc::new(ctx.metrics.clone()))
        .map_err(|e| ("InvalidOrganization".to_owned(), e.to_string()))?;
    let snapshot = client
        .snapshot(now)
        .await
        .map_err(|e| ("AtlassianUnreachable".to_owned(), format!("reading the organization failed: {e}")))?;
    Ok((client, snapshot))
}

fn counts(snapshot: &DirectorySnapshot) -> UserCounts {
    let mut c = UserCounts { total: snapshot.accounts.len() as i64, ..Default::default() };
    for u in &snapshot.accounts {
        match u.status() {
            UserStatus::Active => c.active += 1,
            UserStatus::Suspended => c.suspended += 1,
            UserStatus::Deactivated => c.deactivated += 1,
            UserStatus::InvitedNeverActive => c.invited += 1,
        }
    }
    c
}

async fn write_org_status(
    ctx: &Context,
    org: &AtlassianOrganization,
    snapshot: Option<&DirectorySnapshot>,
    now: Timestamp,
    failure: Option<(&str, &str)>,
) -> Result<(), Error> {
    let mut s: AtlassianOrganizationStatus = org.status.clone().unwrap_or_default();
    let generation = org.metadata.generation;
    s.observed_generation = generation;
    match (snapshot, failure) {
        (Some(snap), _) => {
            s.users = Some(counts(snap));
            s.last_sync_time = Some(Time(now));
            s.directories = snap.directories.iter().map(|d| d.id.clone()).collect();
            let fallbacks = snap.report.v1_fallback_calls + snap.report.last_active_fallback_calls;
            let msg = format!(
                "read {} users in {} directories with {} calls{}",
                snap.accounts.len(),
                snap.directories.len(),
                snap.report.calls,
                if fallbacks > 0 {
                    format!(" ({fallbacks} fallback calls: {})", snap.report.notes.join("; "))
                } else {
                    String::new()
                }
            );
            set_condition(&mut s.conditions, "Connected", ConditionStatus::True, "SnapshotTaken", msg, generation, now);
        }
        (None, Some((reason, message))) => {
            set_condition(&mut s.conditions, "Connected", ConditionStatus::False, reason, message, generation, now);
        }
        (None, None) => {}
    }
    patch_status(ctx, org, &s).await
}

/// Accounts the organization's policies acted on during the UTC day `day` (YYYY-MM-DD): distinct
/// account ids with a destructive action applied that day, sent without an answer (Unknown), or
/// recorded by a run still Running (a crash may have left it applied). Restorations, onboarding and notices don't count, as in the
/// planner's cap; neither do DryRun runs (their actions stay Planned in a finished run).
pub fn accounts_acted_on(records: &[RunRecord], organization: &str, day: &str) -> i64 {
    const CAPPED: [&str; 4] = ["suspend", "deactivate", "remove-from-directory", "remove-group"];
    let accounts: std::collections::BTreeSet<&str> = records
        .iter()
        .filter(|r| r.organization == organization)
        .flat_map(|r| r.actions.iter().map(move |a| (r.phase == Some(RunPhase::Running), a)))
        .filter(|(_, a)| CAPPED.contains(&a.action.as_str()))
        .filter(|(running, a)| {
            matches!(a.outcome, ActionOutcome::Applied | ActionOutcome::Unknown)
                || (*running && a.outcome == ActionOutcome::Planned)
        })
        .map(|(_, a)| a)
        .filter(|a| a.time.0.strftime("%Y-%m-%d").to_string() == day)
        .map(|a| a.account_id.as_str())
        .collect();
    accounts.len() as i64
}

/// Writes the day's count (see [`accounts_acted_on`]) into the organization's status.
async fn record_daily_actions(ctx: &Context, org: &AtlassianOrganization, day: &str, count: i64) -> Result<(), Error> {
    let api: Api<AtlassianOrganization> = Api::namespaced(ctx.client.clone(), &org.namespace().unwrap_or_default());
    let fresh = api.get(&org.name_any()).await?;
    let mut s = fresh.status.clone().unwrap_or_default();
    let today = Some(DailyActions { day: day.to_owned(), count });
    if s.actions_today == today {
        return Ok(());
    }
    s.actions_today = today;
    patch_status(ctx, &fresh, &s).await
}

async fn patch_status<K>(ctx: &Context, obj: &K, status: &impl serde::Serialize) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status});
    api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

async fn write_mapping_statuses(
    ctx: &Context,
    mappings: &[GroupLicenseMapping],
    snap: &DirectorySnapshot,
    now: Timestamp,
) -> Result<(), Error> {
    for m in mappings {
        // The planner's own resolution: the status says exactly what the plan licenses.
        let resolution = crate::policy::resolve_mapping(snap, &m.spec);
        let resolved: Vec<ResolvedGroup> = resolution
            .groups
            .iter()
            .map(|&idx| {
                let group = &snap.groups[idx as usize];
                ResolvedGroup {
                    id: group.id.clone(),
                    name: group.name.clone(),
                    directory: Some(snap.directory_id(group.directory).to_owned()),
                    members: group.member_count as i64,
                    idp_synced: group.idp_synced,
                }
            })
            .collect();
        let seat_holders = licensed_holders(snap, &resolution.groups);
        let mut s: GroupLicenseMappingStatus = m.status.clone().unwrap_or_default();
        let generation = m.metadata.generation;
        s.observed_generation = generation;
        s.resolved_group_count = Some(resolved.len() as i32);
        s.seats_in_use = Some(seat_holders as i64);
        s.resolved_groups = resolved;
        match mapping_condition(&resolution.problems, m.spec.product.label()) {
            None => set_condition(
                &mut s.conditions,
                "Ready",
                ConditionStatus::True,
                "GroupsResolved",
                "every group was found",
                generation,
                now,
            ),
            Some((reason, message)) => {
                set_condition(&mut s.conditions, "Ready", ConditionStatus::False, reason, message, generation, now)
            }
        }
        if m.status.as_ref() != Some(&s) {
            patch_status(ctx, m, &s).await?;
        }
    }
    Ok(())
}

/// Accounts holding a seat through these groups: live (active or invited) in a directory where
/// they are in one of them. Accounts, not directory entries.
fn licensed_holders(snap: &DirectorySnapshot, groups: &[crate::snapshot::GroupIdx]) -> usize {
    snap.accounts
        .iter()
        .filter(|u| u.memberships.iter().any(|m| m.is_live() && m.groups.iter().any(|g| groups.contains(g))))
        .count()
}

/// The mapping's Ready=False condition (reason, message) when a reference resolved to no group:
/// the most pressing reason (a wrong directory id, then an ambiguous name, then a missing group),
/// every problem in the message.
fn mapping_condition(problems: &[crate::policy::MappingProblem], product: &str) -> Option<(&'static str, String)> {
    let rank = |reason: &str| match reason {
        "UnknownDirectory" => 0,
        "AmbiguousGroup" => 1,
        _ => 2,
    };
    let reason = problems.iter().map(|p| p.reason()).min_by_key(|r| rank(r))?;
    let message = problems.iter().map(|p| p.message(product)).collect::<Vec<_>>().join("; ");
    let message = if reason == "UnresolvedGroup" { format!("{message}; fix spec.groups") } else { message };
    Some((reason, message))
}

async fn write_protection_statuses(
    ctx: &Context,
    protections: &[ProtectedUser],
    snap: &DirectorySnapshot,
    now: Timestamp,
) -> Result<(), Error> {
    let counts = crate::policy::protection_matches(snap, protections, now);
    for p in protections {
        let expired = p.spec.expires_at.as_ref().is_some_and(|t| t.0 <= now);
        let matched = counts.get(&p.name_any()).copied().unwrap_or(0) as i64;
        let mut s: ProtectedUserStatus = p.status.clone().unwrap_or_default();
        let generation = p.metadata.generation;
        s.observed_generation = generation;
        s.matched_users = Some(matched);
        s.state = Some(if expired { ProtectionState::Expired } else { ProtectionState::Active });
        let (st, reason, msg) = if expired {
            (
                ConditionStatus::False,
                "Expired",
                "the protection has expired; its users are no longer protected".to_owned(),
            )
        } else {
            (ConditionStatus::True, "Protecting", format!("protecting {matched} users"))
        };
        set_condition(&mut s.conditions, "Ready", st, reason, msg, generation, now);
        if p.status.as_ref() != Some(&s) {
            patch_status(ctx, p, &s).await?;
        }
    }
    Ok(())
}

fn record_org_metrics(
    ctx: &Context,
    org: &str,
    snap: &DirectorySnapshot,
    mappings: &[GroupLicenseMapping],
    now: Timestamp,
) {
    let c = counts(snap);
    let m = &ctx.metrics;
    for (status, n) in [
        ("active", c.active),
        ("suspended", c.suspended),
        ("deactivated", c.deactivated),
        ("invited-never-active", c.invited),
    ] {
        m.users.with_label_values(&[org, status]).set(n);
    }
    // Modelled products only: metric labels stay a bounded set.
    for product in snap.activity_products.iter().filter_map(|p| p.known()) {
        for days in [30i64, 60, 90, 180, 365] {
            let cutoff = now.checked_sub(jiff::SignedDuration::from_hours(24 * days)).unwrap_or(now);
            let n = snap
                .accounts
                .iter()
                .filter(|u| u.status() == UserStatus::Active && u.has_access_to(product))
                .filter(|u| u.last_active_on(product).is_some_and(|t| t < cutoff))
                .count();
            m.inactive_users.with_label_values(&[org, product.label(), &format!("{days}d")]).set(n as i64);
        }
    }
    for mapping in mappings {
        let holders = licensed_holders(snap, &crate::policy::resolve_mapping(snap, &mapping.spec).groups);
        m.licensed_seats.with_label_values(&[org, mapping.spec.product.label()]).set(holders as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{PolicyMode, RunAction};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn action(account: &str, action: &str, outcome: ActionOutcome, at: &str) -> RunAction {
        RunAction {
            time: Time(at.parse().unwrap()),
            account_id: account.into(),
            email: None,
            action: action.into(),
            group: None,
            group_name: None,
            rule: "r".into(),
            reason: String::new(),
            outcome,
            error: None,
            directory: None,
        }
    }

    fn run(org: &str, phase: RunPhase, actions: Vec<RunAction>) -> RunRecord {
        RunRecord {
            run_id: "r1".into(),
            policy: "p".into(),
            organization: org.into(),
            mode: PolicyMode::Enforce,
            start_time: "2026-11-25T09:00:00Z".parse().unwrap(),
            end_time: None,
            phase: Some(phase),
            actions,
            actor: None,
        }
    }

    #[test]
    fn a_mapping_condition_names_the_most_pressing_reason_and_every_problem() {
        use crate::policy::MappingProblem;
        assert_eq!(mapping_condition(&[], "jira-software"), None);
        let missing =
            MappingProblem::NotFound { field: "spec.groups[0]".into(), named: "gone".into(), directory: None };
        let ambiguous = MappingProblem::Ambiguous {
            field: "spec.groups[1]".into(),
            named: "jira-users".into(),
            directories: vec!["dir-a".into(), "dir-b".into()],
            not_granting: vec!["dir-b".into()],
        };
        let (reason, message) = mapping_condition(&[missing.clone(), ambiguous], "jira-software").unwrap();
        assert_eq!(reason, "AmbiguousGroup");
        assert!(message.contains("spec.groups[0] names group gone"), "{message}");
        assert!(message.contains("dir-a, dir-b") && message.contains("set spec.groups[1].directory"), "{message}");
        let (reason, message) = mapping_condition(&[missing], "jira-software").unwrap();
        assert_eq!(reason, "UnresolvedGroup");
        assert!(message.ends_with("; fix spec.groups"), "{message}");
    }

    #[test]
    fn the_daily_cap_counts_accounts_acted_on_that_day() {
        use ActionOutcome::*;
        let day = "2026-11-25";
        let records = vec![
            run(
                "acme",
                RunPhase::Completed,
                vec![
                    // Two writes to one account count once.
                    action("a", "remove-group", Applied, "2026-11-25T09:00:00Z"),
                    action("a", "remove-group", Applied, "2026-11-25T09:00:01Z"),
                    action("b", "suspend", Applied, "2026-11-25T10:00:00Z"),
                    // Restorations, onboarding and notices are not capped; failures acted on no one.
                    action("c", "restore", Applied, "2026-11-25T10:00:00Z"),
                    action("d", "add-group", Applied, "2026-11-25T10:00:00Z"),
                    action("e", "notice", Applied, "2026-11-25T10:00:00Z"),
                    action("f", "suspend", Failed, "2026-11-25T10:00:00Z"),
                    // Sent without an answer: Atlassian may have applied it.
                    action("k", "remove-from-directory", Unknown, "2026-11-25T10:00:00Z"),
                    // A finished run's Planned actions were not applied (DryRun, --dry-run).
                    action("g", "suspend", Planned, "2026-11-25T10:00:00Z"),
                    // Yesterday.
                    action("h", "suspend", Applied, "2026-11-24T23:59:59Z"),
                ],
            ),
            // An interrupted run's recorded write may have happened: it counts.
            run("acme", RunPhase::Running, vec![action("i", "deactivate", Planned, "2026-11-25T11:00:00Z")]),
            // Another organization's runs don't.
            run("other", RunPhase::Completed, vec![action("j", "suspend", Applied, "2026-11-25T11:00:00Z")]),
        ];
        assert_eq!(accounts_acted_on(&records, "acme", day), 4);
    }
}
