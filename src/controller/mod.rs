//! The operator: a kube-runtime Controller on LifecyclePolicy that watches AtlassianOrganization,
//! ProtectedUser and GroupLicenseMapping and maps their changes to the policies they affect.
//!
//! A reconcile decides due-ness first ([`schedule::due`]) so the operator's own status writes never
//! start runs. When a policy is due, every due policy of its organization runs together on one
//! snapshot ([`crate::engine::run_due_policies`]), under a per-organization lock.

pub mod http;
pub mod lease;
pub mod org;
pub mod schedule;
pub mod status;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        Controller, WatchStreamExt,
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use serde_json::json;

use crate::{
    clock::Clock,
    crd::{
        AtlassianOrganization, GroupLicenseMapping, LifecyclePolicy, LifecyclePolicyStatus, PolicyMode, ProtectedUser,
    },
    metrics::Metrics,
    record::audit::ClusterAudit,
};

pub const FIELD_MANAGER: &str = "seatwarden";

/// Process-wide settings of `seatwarden run`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub process_dry_run: bool,
    /// True once the process was asked to stop (SIGTERM: a `helm upgrade` that sets `dryRun`, a
    /// rollout, a node drain): a run in progress stops before its next batch of writes and records
    /// the rest Deferred, instead of going on until the grace period kills it.
    pub shutting_down: tokio::sync::watch::Receiver<bool>,
    pub run_retention_count: usize,
    pub run_retention_age: jiff::SignedDuration,
    /// Where mail goes when an organization has no SMTP settings (a local mailbox folder).
    pub mailbox_dir: std::path::PathBuf,
}

/// Shared by every reconcile: built once in [`Context::new`].
pub struct Context {
    pub client: Client,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub clock: Clock,
    pub settings: Settings,
    pub leader: Arc<AtomicBool>,
    /// Confirmed before every write (Atlassian, ledger, audit trail).
    pub fence: Arc<dyn crate::record::Fence>,
    pub policies: Store<LifecyclePolicy>,
    pub organizations: Store<AtlassianOrganization>,
    pub protections: Store<ProtectedUser>,
    pub mappings: Store<GroupLicenseMapping>,
    /// Set once every watch cache is filled. No run starts before: acting before the ProtectedUsers
    /// are loaded would act on protected people.
    pub caches_ready: Arc<AtomicBool>,
    /// One lock per organization (namespace/name): its policies run one at a time, and remember
    /// what they last did before the watch caches catch up with their status writes.
    orgs: Mutex<HashMap<String, Arc<tokio::sync::Mutex<org::OrgState>>>>,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        metrics: Metrics,
        reporter: Reporter,
        clock: Clock,
        settings: Settings,
        leader: Arc<AtomicBool>,
        fence: Arc<dyn crate::record::Fence>,
        stores: (
            Store<LifecyclePolicy>,
            Store<AtlassianOrganization>,
            Store<ProtectedUser>,
            Store<GroupLicenseMapping>,
        ),
    ) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            clock,
            settings,
            leader,
            fence,
            policies: stores.0,
            organizations: stores.1,
            protections: stores.2,
            mappings: stores.3,
            caches_ready: Arc::new(AtomicBool::new(false)),
            orgs: Mutex::new(HashMap::new()),
        }
    }

    fn org_state(&self, key: &str) -> Arc<tokio::sync::Mutex<org::OrgState>> {
        self.orgs.lock().expect("org map lock").entry(key.to_owned()).or_default().clone()
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    pub async fn now(&self) -> Timestamp {
        match self.clock.now().await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "clock unreadable; using the system clock");
                Timestamp::now()
            }
        }
    }

    pub async fn event(
        &self,
        obj: &impl Resource<DynamicType = ()>,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let mut note = note;
        if note.len() > 1000 {
            note.truncate(note.floor_char_boundary(1000));
        }
        let ev = Event { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Run(String),
}

impl Error {
    /// Bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Run(_) => "run",
        }
    }
}

/// Writes a policy's status by server-side apply, skipping the patch when nothing changed (a no-op
/// patch would still wake every watcher).
pub async fn write_policy_status(
    client: &Client,
    policy: &LifecyclePolicy,
    status: LifecyclePolicyStatus,
) -> Result<(), kube::Error> {
    if policy.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<LifecyclePolicy> = Api::namespaced(client.clone(), &policy.namespace().unwrap_or_default());
    let patch = json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy", "status": status});
    api.patch_status(&policy.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

async fn reconcile(policy: Arc<LifecyclePolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !ctx.caches_ready.load(Ordering::SeqCst) {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let now = ctx.now().await;
    let ns = policy.namespace().unwrap_or_default();
    let org_key = format!("{ns}/{}", policy.spec.organization_ref.name);

    if policy.spec.mode == PolicyMode::Paused {
        write_policy_status(&ctx.client, &policy, status::paused(&policy, now)).await?;
        return Ok(Action::await_change());
    }
    // CEL rules are enforced by the API server from Kubernetes 1.25; checked here too, so an older
    // server (or a CRD installed without them) never lets a malformed policy act.
    if let Err(e) = policy.validate_cel() {
        let msg = format!("the policy breaks a validation rule: {e:?}; fix the spec");
        write_policy_status(&ctx.client, &policy, status::failed(&policy, "InvalidSpec", &msg, now, true)).await?;
        return Ok(Action::await_change());
    }
    let state = ctx.org_state(&org_key);
    let mut state = state.lock().await;
    let effective = state.effective(&policy);
    match schedule::due(&effective, now) {
        schedule::Due::Later(wait) => {
            // Say when the next run is (a spec change outside the window waits for it too).
            let next = Time(now.checked_add(wait).unwrap_or(now));
            let mut st = effective.status.clone().unwrap_or_default();
            if st.next_run_time.as_ref() != Some(&next) {
                st.next_run_time = Some(next);
                write_policy_status(&ctx.client, &effective, st.clone()).await?;
                state.remember(&policy.name_any(), st);
            }
            return Ok(Action::requeue(requeue_after(wait)));
        }
        schedule::Due::Invalid(why) => {
            let msg = format!("{why}; the policy does not run until the spec is fixed");
            write_policy_status(&ctx.client, &effective, status::failed(&effective, "InvalidSpec", &msg, now, true))
                .await?;
            return Ok(Action::await_change());
        }
        schedule::Due::Now(why) => {
            tracing::info!(policy = %policy.name_any(), namespace = %ns, why = why.describe(), "policy due")
        }
    }
    // Standbys keep their caches warm and do nothing else.
    if !ctx.is_leader() {
        return Ok(Action::requeue(Duration::from_secs(10)));
    }
    org::run_organization(&ctx, &mut state, &ns, &policy.spec.organization_ref.name, now).await?;
    let refreshed = state.effective(&policy);
    Ok(match schedule::due(&refreshed, ctx.now().await) {
        schedule::Due::Later(wait) => Action::requeue(requeue_after(wait)),
        schedule::Due::Invalid(_) => Action::await_change(),
        schedule::Due::Now(_) => Action::requeue(Duration::from_secs(60)),
    })
}

/// Wake-ups are capped at 5 minutes so a driven clock (tests, demo) or a changed window is noticed.
fn requeue_after(wait: jiff::SignedDuration) -> Duration {
    let secs = wait.as_secs().clamp(1, 300) as u64;
    Duration::from_secs(secs)
}

fn error_policy(policy: Arc<LifecyclePolicy>, error: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(policy = %policy.name_any(), error = %error, "reconcile failed");
    ctx.metrics.reconcile_errors.with_label_values(&[&policy.name_any(), error.metric_label()]).inc();
    Action::requeue(Duration::from_secs(30))
}

/// What the controller runs with, assembled by `seatwarden run`.
pub struct Runtime {
    pub client: Client,
    pub watch_namespace: Option<String>,
    pub metrics: Metrics,
    pub reporter: Reporter,
    pub clock: Clock,
    pub settings: Settings,
    /// True while this replica holds the lease (always, without leader election).
    pub leader: Arc<AtomicBool>,
    /// Confirmed before every write: [`lease::LeaseFence`] with leader election.
    pub fence: Arc<dyn crate::record::Fence>,
    /// Set once every watch cache is filled (/readyz).
    pub ready: Arc<AtomicBool>,
}

/// Runs the controller until `shutdown` resolves.
pub async fn run(rt: Runtime, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let Runtime { client, watch_namespace, metrics, reporter, clock, settings, leader, fence, ready } = rt;
    fn api<K>(client: &Client, ns: &Option<String>) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        match ns {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let policies: Api<LifecyclePolicy> = api(&client, &watch_namespace);
    let orgs: Api<AtlassianOrganization> = api(&client, &watch_namespace);
    let protections: Api<ProtectedUser> = api(&client, &watch_namespace);
    let mappings: Api<GroupLicenseMapping> = api(&client, &watch_namespace);

    let wc = watcher::Config::default();
    let controller = Controller::new(policies, wc.clone());
    let policy_store = controller.store();

    // Reflectors for the inputs: the reconciler reads them from memory, with no extra LIST calls.
    let (org_store, org_writer) = kube::runtime::reflector::store();
    let (pu_store, pu_writer) = kube::runtime::reflector::store();
    let (glm_store, glm_writer) = kube::runtime::reflector::store();
    let org_stream = kube::runtime::reflector(org_writer, watcher(orgs, wc.clone())).applied_objects();
    let pu_stream = kube::runtime::reflector(pu_writer, watcher(protections, wc.clone())).applied_objects();
    let glm_stream = kube::runtime::reflector(glm_writer, watcher(mappings, wc.clone())).applied_objects();

    let ctx = Arc::new(Context::new(
        client,
        metrics,
        reporter,
        clock,
        settings,
        leader,
        fence,
        (policy_store.clone(), org_store.clone(), pu_store.clone(), glm_store.clone()),
    ));

    let s1 = policy_store.clone();
    let s2 = policy_store.clone();
    let s3 = policy_store.clone();
    let controller = controller
        .watches_stream(org_stream, move |org: AtlassianOrganization| {
            policies_of_org(&s1, &org.namespace().unwrap_or_default(), &org.name_any())
        })
        .watches_stream(pu_stream, move |pu: ProtectedUser| {
            let ns = pu.namespace().unwrap_or_default();
            s2.state()
                .iter()
                .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect::<Vec<_>>()
        })
        .watches_stream(glm_stream, move |m: GroupLicenseMapping| {
            policies_of_org(&s3, &m.namespace().unwrap_or_default(), &m.spec.organization_ref.name)
        })
        .graceful_shutdown_on(shutdown);

    let ready_ctx = ctx.clone();
    tokio::spawn(async move {
        // kube's readiness signal wakes only its most recent waiter, so poll with a timeout. The
        // policy store is not waited on here: the controller itself waits on it (and holds every
        // reconcile until it is filled), and a second waiter could take its wake-up.
        async fn filled<K: Resource + Clone>(store: &Store<K>)
        where
            K::DynamicType: std::hash::Hash + Eq + Clone,
        {
            while !matches!(
                tokio::time::timeout(Duration::from_millis(200), store.wait_until_ready()).await,
                Ok(Ok(()))
            ) {}
        }
        filled(&ready_ctx.organizations).await;
        filled(&ready_ctx.protections).await;
        filled(&ready_ctx.mappings).await;
        tracing::info!("caches filled: organizations, protections, mappings");
        ready_ctx.caches_ready.store(true, Ordering::SeqCst);
        ready.store(true, Ordering::SeqCst);
    });

    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "reconcile stream");
            }
        })
        .await;
}

fn policies_of_org(store: &Store<LifecyclePolicy>, ns: &str, org: &str) -> Vec<ObjectRef<LifecyclePolicy>> {
    store
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns) && p.spec.organization_ref.name == org)
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// Prunes LifecycleRuns of a namespace by count and age.
pub async fn prune_runs(ctx: &Context, ns: &str, now: Timestamp) {
    let audit = ClusterAudit::new(ctx.client.clone(), ns);
    if let Err(e) = audit.prune(ctx.settings.run_retention_count, ctx.settings.run_retention_age, now).await {
        tracing::warn!(error = %e, namespace = ns, "LifecycleRun retention failed");
    }
}

/// Seats reclaimed by product, for status.
pub fn by_product(m: &BTreeMap<crate::product::Product, i64>) -> BTreeMap<String, i64> {
    m.iter().map(|(p, n)| (p.label().to_owned(), *n)).collect()
}
