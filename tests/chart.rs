//! The Helm chart, the container image recipe, the dashboard and the alerts, checked with the real
//! tools: helm (lint, template, the values schema), the real API server (server-side dry run of every
//! rendered object, RBAC decisions of the rendered Roles), promtool (the alerts' and the dashboard's
//! PromQL parse, and the alerts fire, or stay quiet, on series built for each case), and the binary
//! itself (its dynamic libraries are those distroless cc ships). Tools come from .ci/install-deps.sh;
//! without them a test skips, except under CI where it fails.

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use k8s_openapi::{
    api::authorization::v1::SubjectAccessReview,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams},
    discovery::{Scope, pinned_kind},
    runtime::wait::{await_condition, conditions},
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------------
// Tools

const HELM_CACHE: &str = "/var/cache/seatwarden-ci/helm-v3.18.0/helm";

/// A tool's path: $ENV_VAR, then the cached copy, then PATH. None (skip) outside CI when missing.
fn tool(name: &str, env_var: &str, cached: Option<&str>) -> Option<PathBuf> {
    let candidates = std::env::var_os(env_var).map(PathBuf::from).into_iter().chain(cached.map(PathBuf::from)).chain(
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>()),
    );
    for c in candidates {
        if c.is_file() {
            return Some(c);
        }
    }
    assert!(std::env::var_os("CI").is_none(), "CI is set but {name} is missing: run .ci/install-deps.sh");
    eprintln!("skipping: {name} not found (.ci/install-deps.sh installs it)");
    None
}

fn helm() -> Option<PathBuf> {
    tool("helm", "HELM", Some(HELM_CACHE))
}

fn promtool() -> Option<PathBuf> {
    tool("promtool", "PROMTOOL", None)
}

fn chart_dir() -> PathBuf {
    support::repo_root().join("charts/seatwarden")
}

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The one value an install must give (there is no public image).
const REPOSITORY: &str = "registry.example.com/platform/seatwarden";

/// A values file with image.repository set, for helm `-f` before the test's own values (which may
/// override or, with `repository: null`, remove it).
fn required_values(dir: &Path) -> PathBuf {
    let f = dir.join("required.yaml");
    std::fs::write(&f, format!("image: {{repository: {REPOSITORY}}}\n")).unwrap();
    f
}

/// `helm template` of the chart with a values file (YAML text) in a namespace.
fn helm_template(helm: &Path, release: &str, namespace: &str, values: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let values_file = dir.path().join("values.yaml");
    std::fs::write(&values_file, values).unwrap();
    run(Command::new(helm)
        .args(["template", release])
        .arg(chart_dir())
        .args(["--namespace", namespace, "-f"])
        .arg(required_values(dir.path()))
        .arg("-f")
        .arg(&values_file)
        .args(extra))
}

/// Every YAML document of a rendered stream, as JSON values (empty documents dropped).
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|de| serde::Deserialize::deserialize(de).expect("helm renders valid YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn render(helm: &Path, release: &str, namespace: &str, values: &str) -> Vec<Value> {
    let out = helm_template(helm, release, namespace, values, &[]);
    assert!(out.ok, "helm template failed:\n{}", out.stderr);
    documents(&out.stdout)
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = find(docs, kind);
    assert_eq!(found.len(), 1, "expected exactly one {kind}, got {}", found.len());
    found[0]
}

/// Every option on: leader election with two replicas, the monitoring objects, the NetworkPolicy,
/// the dashboard, a process-wide dry run and named credential Secrets.
fn all_options(extra: &str) -> String {
    format!(
        r#"
replicaCount: 2
leaderElection: {{enabled: true, leaseName: seatwarden}}
dryRun: true
logFormat: text
credentialSecrets: [atlassian-org-api-key, smtp-credentials]
serviceMonitor: {{enabled: true, labels: {{release: prometheus}}}}
prometheusRule:
  enabled: true
  runIntervalSeconds: 3600
  additionalAlertLabels: {{team: platform}}
dashboard: {{enabled: true, annotations: {{grafana_folder: Atlassian}}}}
networkPolicy:
  enabled: true
  apiServer: {{cidrs: [10.0.0.1/32]}}
  dns:
    to:
      - namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: kube-system}}}}
        podSelector: {{matchLabels: {{k8s-app: kube-dns}}}}
  extraEgress:
    - to: [{{ipBlock: {{cidr: 10.1.2.3/32}}}}]
      ports: [{{port: 3128, protocol: TCP}}]
{extra}
"#
    )
}

// ---------------------------------------------------------------------------------------------------
// Chart structure and values

/// The chart carries a copy of crds/seatwarden.yaml (`make crds` writes both). What a user installs
/// is checked: the copy and the packaged archive's CRDs are byte for byte what `seatwarden crd`
/// prints, and helm renders every one.
#[test]
fn chart_crds_are_the_generated_crds() {
    let generated = seatwarden::crd::crds_yaml();
    let chart = std::fs::read_to_string(chart_dir().join("crds/seatwarden.yaml")).expect("the chart carries crds/");
    let repo = std::fs::read_to_string(support::repo_root().join("crds/seatwarden.yaml")).unwrap();
    assert!(chart == repo, "charts/seatwarden/crds/seatwarden.yaml differs from crds/seatwarden.yaml: run `make crds`");
    assert!(
        chart == generated,
        "charts/seatwarden/crds/seatwarden.yaml differs from `seatwarden crd`: run `make crds`"
    );

    let Some(helm) = helm() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(&helm).arg("package").arg(chart_dir()).arg("--destination").arg(dir.path()));
    assert!(out.ok, "helm package: {}", out.stderr);
    let archive = dir.path().join("seatwarden-0.1.0.tgz");
    let out = run(Command::new("tar").arg("xzf").arg(&archive).arg("-C").arg(dir.path()));
    assert!(out.ok, "tar: {}", out.stderr);
    let packaged = std::fs::read_to_string(dir.path().join("seatwarden/crds/seatwarden.yaml"))
        .expect("the packaged chart has crds/seatwarden.yaml as a file");
    assert!(packaged == generated, "the packaged chart's CRDs differ from `seatwarden crd`");

    let out = helm_template(&helm, "sw", "seatwarden", "", &["--include-crds"]);
    assert!(out.ok, "{}", out.stderr);
    let rendered: BTreeSet<String> = find(&documents(&out.stdout), "CustomResourceDefinition")
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = seatwarden::crd::all_crds().iter().map(|c| c.name_any()).collect();
    assert_eq!(rendered, expected);
}

#[test]
fn helm_lint_passes_with_default_values_and_with_every_option() {
    let Some(helm) = helm() else { return };
    for (what, values) in [("defaults", String::new()), ("all options", all_options("watchNamespace: team-a"))] {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("values.yaml");
        std::fs::write(&f, &values).unwrap();
        let out = run(Command::new(&helm)
            .args(["lint", "--strict"])
            .arg(chart_dir())
            .arg("-f")
            .arg(required_values(dir.path()))
            .arg("-f")
            .arg(&f));
        assert!(out.ok, "helm lint --strict ({what}) failed:\n{}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("0 chart(s) failed"), "{}", out.stdout);
    }
}

#[test]
fn values_schema_rejects_bad_values() {
    let Some(helm) = helm() else { return };
    // Each case must fail, and for the reason given (the message names the key or the rule).
    let cases = [
        ("replicaCount: -1", "replicaCount"),
        ("replicaCount: two", "replicaCount"),
        ("logFormat: xml", "logFormat"),
        ("serviceMonitor: {enable: true}", "enable"),
        ("prometheusRule: {runIntervalSeconds: 1h}", "runIntervalSeconds"),
        ("networkPolicy: {atlassian: {cidrs: [atlassian.com]}}", "cidrs"),
        ("credentialSecrets: [Bad_Name]", "credentialSecrets"),
        ("watchNamespace: Team A", "watchNamespace"),
        ("image: {digest: latest}", "digest"),
        // There is no public image: the repository must be named.
        ("image: {repository: null}", "repository"),
        ("image: {repository: \"\"}", "repository"),
        ("runRetention: {age: forever}", "age"),
        // Not a schema rule but the chart's own: two replicas without a lease are two writers.
        ("replicaCount: 2", "leaderElection.enabled"),
    ];
    for (values, needle) in cases {
        let out = helm_template(&helm, "sw", "seatwarden", values, &[]);
        assert!(!out.ok, "helm accepted `{values}`");
        assert!(out.stderr.contains(needle), "`{values}` failed without naming {needle}:\n{}", out.stderr);
    }
    // The control: valid variations of the same keys pass, so the failures above are the values'.
    for values in [
        "replicaCount: 0",
        "replicaCount: 2\nleaderElection: {enabled: true}",
        "logFormat: text",
        "prometheusRule: {runIntervalSeconds: 3600}",
        "credentialSecrets: [atlassian-org-api-key]",
        "watchNamespace: team-a",
        "runRetention: {age: 30d, count: 10}",
    ] {
        let out = helm_template(&helm, "sw", "seatwarden", values, &[]);
        assert!(out.ok, "helm refused valid `{values}`:\n{}", out.stderr);
    }
}

/// A default install stops before anything is rendered, and says what to set and why: by the values
/// schema, and by the template when the schema is skipped.
#[test]
fn an_install_without_image_repository_says_what_to_set() {
    let Some(helm) = helm() else { return };
    let plain = run(Command::new(&helm).args(["template", "sw"]).arg(chart_dir()));
    assert!(!plain.ok, "helm template rendered without image.repository");
    assert!(
        plain.stderr.contains("image: repository is required"),
        "the schema's refusal names image.repository:\n{}",
        plain.stderr
    );
    let skipped = run(Command::new(&helm).args(["template", "sw", "--skip-schema-validation"]).arg(chart_dir()));
    assert!(!skipped.ok, "helm template rendered without image.repository (schema skipped)");
    assert!(
        skipped.stderr.contains("image.repository is required: there is no public seatwarden image"),
        "the template's refusal explains:\n{}",
        skipped.stderr
    );
}

/// The chart installs on what it supports (1.20 and later, the version the real-node test runs) and
/// refuses older clusters by name.
#[test]
fn kube_version_range_is_what_is_tested() {
    let Some(helm) = helm() else { return };
    for (version, ok) in [("1.19.16", false), ("1.20.2", true), ("1.24.0", true), ("1.25.0", true), ("1.34.1", true)] {
        let out = helm_template(&helm, "sw", "seatwarden", "", &["--kube-version", version]);
        assert_eq!(out.ok, ok, "kube {version}: {}", out.stderr);
        if !ok {
            assert!(out.stderr.contains("kubeVersion"), "the refusal names kubeVersion: {}", out.stderr);
        }
    }
}

/// NOTES: the namespace on every kubectl line, how to check the pod, how to preview with plan.
/// (helm renders NOTES only for install, which wants a cluster even for a client-side dry run: the
/// shared test API server.)
#[tokio::test]
async fn notes_say_how_to_check_the_pod_and_preview_with_plan() {
    let Some(helm) = helm() else { return };
    let Some(_client) = support::kube_client().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(&helm)
        .args(["install", "sw"])
        .arg(chart_dir())
        .args(["--dry-run=client", "--namespace", "platform", "--set", "watchNamespace=team-a", "-f"])
        .arg(required_values(dir.path())));
    assert!(out.ok, "helm install --dry-run=client: {}", out.stderr);
    let notes = out.stdout.split("NOTES:").nth(1).expect("helm prints the NOTES");
    for needle in [
        "kubectl -n platform rollout status deployment/sw-seatwarden",
        "kubectl -n platform get pods -l app.kubernetes.io/instance=sw",
        "kubectl -n platform logs deployment/sw-seatwarden",
        "kubectl -n team-a create secret generic atlassian-org-api-key",
        "seatwarden plan -f",
        "kubectl get lifecycleruns -n team-a",
    ] {
        assert!(notes.contains(needle), "NOTES lack `{needle}`:\n{notes}");
    }
    for line in notes
        .lines()
        .filter(|l| l.trim_start().starts_with("kubectl ") && !l.contains("--server-side") && !l.contains("replace"))
    {
        assert!(line.contains(" -n ") || line.contains(" -A"), "a kubectl line without -n: {line}");
    }
}

/// The flags the chart passes, without their values (`--x=y` → `--x`).
fn flag_names(args: &[Value]) -> Vec<String> {
    args.iter().map(|a| a.as_str().unwrap().split('=').next().unwrap().to_owned()).collect()
}

#[test]
fn deployment_is_hardened_and_passes_the_operator_its_settings() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, "sw", "seatwarden", "");
    let deploy = one(&docs, "Deployment");
    let spec = &deploy["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["strategy"]["type"], "Recreate", "one replica must never overlap with its successor");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["runAsUser"], 65532);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["ports"], json!([{"name": "http", "containerPort": 9464, "protocol": "TCP"}]));
    assert_eq!(c["livenessProbe"]["httpGet"], json!({"path": "/healthz", "port": "http"}));
    assert_eq!(c["readinessProbe"]["httpGet"], json!({"path": "/readyz", "port": "http"}));
    assert_eq!(c["image"], format!("{REPOSITORY}:0.1.0"), "the image tag defaults to appVersion");
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(
        args,
        ["--metrics-addr=0.0.0.0:9464", "--log-format=json", "--run-retention-count=200", "--run-retention-age=90d"],
        "defaults: every namespace, no dry run, no leader election"
    );
    let env: BTreeMap<&str, &Value> =
        c["env"].as_array().unwrap().iter().map(|e| (e["name"].as_str().unwrap(), e)).collect();
    assert_eq!(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
    assert_eq!(env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
    assert_eq!(env["RUST_LOG"]["value"], "info");
    let service = one(&docs, "Service");
    assert_eq!(service["spec"]["ports"][0]["name"], "http");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(service["spec"]["selector"], spec["selector"]["matchLabels"]);
    for kind in ["ServiceMonitor", "PrometheusRule", "NetworkPolicy", "ConfigMap"] {
        assert!(find(&docs, kind).is_empty(), "{kind} is opt-in");
    }

    let docs = render(&helm, "sw", "seatwarden", &all_options("watchNamespace: team-a"));
    let deploy = one(&docs, "Deployment");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["spec"]["strategy"]["type"], "RollingUpdate");
    let args = deploy["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap().clone();
    let args: Vec<&str> = args.iter().map(|a| a.as_str().unwrap()).collect();
    for want in [
        "--watch-namespace=team-a",
        "--dry-run",
        "--leader-election",
        "--lease-name=seatwarden",
        "--lease-namespace=seatwarden",
        "--log-format=text",
    ] {
        assert!(args.contains(&want), "{want} missing from {args:?}");
    }
    let monitor = one(&docs, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["selector"]["matchLabels"], one(&docs, "Service")["metadata"]["labels"]
        .as_object()
        .map(|l| {
            json!({"app.kubernetes.io/name": l["app.kubernetes.io/name"], "app.kubernetes.io/instance": l["app.kubernetes.io/instance"]})
        })
        .unwrap());
    let np = one(&docs, "NetworkPolicy");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    let egress_ports: BTreeSet<i64> = np["spec"]["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["ports"].as_array().unwrap().iter().map(|p| p["port"].as_i64().unwrap()))
        .collect();
    assert_eq!(egress_ports, BTreeSet::from([53, 443, 587, 3128, 6443]), "API server, DNS, HTTPS, SMTP, extra");
    assert_eq!(np["spec"]["ingress"][0]["ports"], json!([{"port": "http", "protocol": "TCP"}]));
    let dash = one(&docs, "ConfigMap");
    assert_eq!(dash["metadata"]["labels"]["grafana_dashboard"], "1");

    // Once the operator's `run` subcommand exists, every flag the chart passes must be one it takes.
    let help = run(Command::new(env!("CARGO_BIN_EXE_seatwarden")).args(["run", "--help"]));
    if help.ok {
        for flag in flag_names(deploy["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap()) {
            assert!(help.stdout.contains(&flag), "`seatwarden run` has no {flag} flag:\n{}", help.stdout);
        }
    } else {
        eprintln!(
            "note: `seatwarden run --help` failed (the run subcommand is not built yet); flags not cross-checked"
        );
    }
}

#[test]
fn every_rbac_rule_carries_a_comment() {
    let text = std::fs::read_to_string(chart_dir().join("templates/rbac.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_start().starts_with("- apiGroups:") {
            rules += 1;
            let prev = lines[..i].iter().rev().find(|l| !l.trim().starts_with("{{")).unwrap();
            assert!(prev.trim_start().starts_with('#'), "rbac.yaml line {}: rule without a comment", i + 1);
        }
    }
    assert!(rules >= 8, "found only {rules} rules");
}

#[test]
fn rbac_scope_follows_the_values() {
    let Some(helm) = helm() else { return };
    let rules_of = |r: &Value| r["rules"].as_array().unwrap().clone();
    let secrets_rule =
        |rules: &[Value]| rules.iter().find(|r| r["resources"] == json!(["secrets"])).cloned().expect("a secrets rule");

    let docs = render(&helm, "sw", "seatwarden", "");
    let role = one(&docs, "ClusterRole");
    assert!(find(&docs, "Role").is_empty(), "no Role without leader election or watchNamespace");
    let binding = one(&docs, "ClusterRoleBinding");
    assert_eq!(
        binding["subjects"][0],
        json!({"kind": "ServiceAccount", "name": "sw-seatwarden", "namespace": "seatwarden"})
    );
    let secrets = secrets_rule(&rules_of(role));
    assert_eq!(secrets["verbs"], json!(["get"]), "secrets are read by name, never listed");
    assert!(secrets.get("resourceNames").is_none());
    for rule in rules_of(role) {
        assert!(!rule["verbs"].as_array().unwrap().contains(&json!("*")), "no wildcard verbs");
        assert!(!rule["resources"].as_array().unwrap().contains(&json!("*")), "no wildcard resources");
    }

    let docs = render(&helm, "sw", "seatwarden", &all_options("watchNamespace: team-a"));
    assert!(find(&docs, "ClusterRole").is_empty() && find(&docs, "ClusterRoleBinding").is_empty());
    let roles = find(&docs, "Role");
    assert_eq!(roles.len(), 2, "the watched namespace's Role and the lease Role");
    let main = roles.iter().find(|r| r["metadata"]["namespace"] == "team-a").unwrap();
    assert_eq!(secrets_rule(&rules_of(main))["resourceNames"], json!(["atlassian-org-api-key", "smtp-credentials"]));
    let lease = roles.iter().find(|r| r["metadata"]["namespace"] == "seatwarden").unwrap();
    assert!(rules_of(lease).iter().all(|r| r["resources"] == json!(["leases"])));
}

// ---------------------------------------------------------------------------------------------------
// Against the real API server

static MONITORING_CRDS: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// The prometheus-operator kinds, from ../shared (the 1.20 variant of ServiceMonitor; see its README).
async fn install_monitoring_crds(client: &Client) {
    MONITORING_CRDS
        .get_or_init(|| async {
            let dir = support::shared_dir().join("reference/crds");
            let api: Api<CustomResourceDefinition> = Api::all(client.clone());
            let mut names = vec![];
            for file in
                ["monitoring.coreos.com_servicemonitors.k8s-1.20.yaml", "monitoring.coreos.com_prometheusrules.yaml"]
            {
                let path = dir.join(file);
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let crd: CustomResourceDefinition = serde_yaml::from_str(&text).expect("a CRD");
                names.push(crd.name_any());
                support::create_or_replace_crd(&api, crd).await;
            }
            for name in names {
                tokio::time::timeout(
                    Duration::from_secs(30),
                    await_condition(api.clone(), &name, conditions::is_crd_established()),
                )
                .await
                .unwrap_or_else(|_| panic!("CRD {name} not Established"))
                .expect("watch CRD");
            }
        })
        .await;
}

fn gvk_of(doc: &Value) -> GroupVersionKind {
    let api_version = doc["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap())
}

async fn api_for(client: &Client, doc: &Value) -> (Api<DynamicObject>, ApiResource) {
    let (ar, caps) = pinned_kind(client, &gvk_of(doc)).await.unwrap_or_else(|e| panic!("{}: {e}", doc["kind"]));
    let api = match caps.scope {
        Scope::Namespaced => {
            let ns = doc["metadata"]["namespace"].as_str().expect("namespaced objects carry their namespace");
            Api::namespaced_with(client.clone(), ns, &ar)
        }
        Scope::Cluster => Api::all_with(client.clone(), &ar),
    };
    (api, ar)
}

/// A server-side dry run of a create, as `helm install` would do it; for an object that exists
/// already (a CRD installed by another test), a dry-run replace.
async fn dry_run_create(client: &Client, doc: &Value) -> Result<(), kube::Error> {
    let (api, _) = api_for(client, doc).await;
    let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
    let pp = PostParams { dry_run: true, field_manager: Some("helm".into()) };
    match api.create(&pp, &obj).await {
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Another test may update the same CRD between our read and our replace: read again.
            let mut obj = obj;
            let mut attempt = 0;
            loop {
                obj.metadata.resource_version = api.get(&obj.name_any()).await?.metadata.resource_version;
                match api.replace(&obj.name_any(), &pp, &obj).await {
                    Err(kube::Error::Api(e)) if e.code == 409 && attempt < 5 => attempt += 1,
                    other => return other.map(|_| ()),
                }
            }
        }
        other => other.map(|_| ()),
    }
}

#[tokio::test]
async fn every_rendered_manifest_passes_a_server_side_dry_run() {
    let Some(client) = support::kube_client().await else { return };
    let Some(helm) = helm() else { return };
    install_monitoring_crds(&client).await;
    let ns = support::namespace(&client, "chart").await;
    let watched = support::namespace(&client, "chart-watched").await;

    let sets = [
        ("defaults", String::new()),
        ("all options, every namespace", all_options("")),
        ("all options, one namespace", all_options(&format!("watchNamespace: {watched}"))),
    ];
    let mut kinds_seen = BTreeSet::new();
    for (what, values) in &sets {
        let out = helm_template(&helm, "sw", &ns, values, &["--include-crds"]);
        assert!(out.ok, "{what}: {}", out.stderr);
        for doc in documents(&out.stdout) {
            kinds_seen.insert(doc["kind"].as_str().unwrap().to_owned());
            if let Err(e) = dry_run_create(&client, &doc).await {
                panic!("{what}: the API server refused {} {}: {e}", doc["kind"], doc["metadata"]["name"]);
            }
        }
    }
    for kind in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "ConfigMap",
    ] {
        assert!(kinds_seen.contains(kind), "no {kind} was rendered and checked");
    }

    // The control: the dry run really validates against the CRD schemas, so a bad alert is refused.
    let docs = render(&helm, "sw", &ns, &all_options(""));
    let mut bad = one(&docs, "PrometheusRule").clone();
    bad["spec"]["groups"][0]["rules"][0]["for"] = json!("five minutes");
    let err = dry_run_create(&client, &bad).await.expect_err("an invalid `for` must be refused");
    assert!(err.to_string().contains("for"), "{err}");
}

async fn allowed(client: &Client, sa: &str, ns: &str, attrs: Value) -> bool {
    let sar: SubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": format!("system:serviceaccount:{ns}:{sa}"), "resourceAttributes": attrs},
    }))
    .unwrap();
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let res = api.create(&PostParams::default(), &sar).await.expect("SubjectAccessReview");
    res.status.expect("status").allowed
}

/// The API server's RBAC authorizer reads Roles through a cache: wait until a rule just created
/// grants what it should, so the checks that follow see the Roles in effect.
async fn rbac_in_effect(client: &Client, sa: &str, ns: &str, attrs: Value) {
    for _ in 0..100 {
        if allowed(client, sa, ns, attrs.clone()).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the rendered Roles never allowed {attrs} for {sa}");
}

/// Creates the rendered ServiceAccount and RBAC objects for real and returns the cluster-scoped
/// ones, for removal.
async fn apply_rbac(client: &Client, docs: &[Value]) -> Vec<(Api<DynamicObject>, String)> {
    let mut cluster_scoped = vec![];
    for doc in docs.iter().filter(|d| {
        matches!(
            d["kind"].as_str(),
            Some("ServiceAccount" | "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding")
        )
    }) {
        let (api, _) = api_for(client, doc).await;
        let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap_or_else(|e| panic!("create {}: {e}", doc["kind"]));
        if doc["metadata"]["namespace"].is_null() {
            cluster_scoped.push((api, obj.name_any()));
        }
    }
    cluster_scoped
}

/// The rendered Roles, installed for real, allow exactly what the operator does: the API server's
/// own authorizer answers (SubjectAccessReview) for the chart's ServiceAccount.
#[tokio::test]
async fn rendered_rbac_grants_what_the_operator_needs_and_nothing_more() {
    let Some(client) = support::kube_client().await else { return };
    let Some(helm) = helm() else { return };
    let sw = |verb: &str, resource: &str, ns: &str| json!({"group": "seatwarden.io", "verb": verb, "resource": resource, "namespace": ns});
    let sub = |verb: &str, resource: &str, sub: &str, ns: &str| json!({"group": "seatwarden.io", "verb": verb, "resource": resource, "subresource": sub, "namespace": ns});
    let core = |verb: &str, resource: &str, name: &str, ns: &str| json!({"verb": verb, "resource": resource, "name": name, "namespace": ns});
    let lease = |verb: &str, name: &str, ns: &str| json!({"group": "coordination.k8s.io", "verb": verb, "resource": "leases", "name": name, "namespace": ns});
    let event =
        |group: &str, ns: &str| json!({"group": group, "verb": "create", "resource": "events", "namespace": ns});

    // One namespace, named Secrets, no leader election.
    let ns = support::namespace(&client, "chart-rbac").await;
    let watched = support::namespace(&client, "chart-rbac-w").await;
    let release = format!("sw{}", rand::random::<u16>());
    let values = format!("watchNamespace: {watched}\ncredentialSecrets: [atlassian-org-api-key]\n");
    let docs = render(&helm, &release, &ns, &values);
    let cleanup = apply_rbac(&client, &docs).await;
    assert!(cleanup.is_empty(), "a namespaced install creates nothing cluster-wide");
    let sa = format!("{release}-seatwarden");
    rbac_in_effect(&client, &sa, &ns, sw("list", "lifecyclepolicies", &watched)).await;
    let w = watched.as_str();
    let expect = [
        (sw("list", "lifecyclepolicies", w), true),
        (sw("watch", "protectedusers", w), true),
        (sw("get", "atlassianorganizations", w), true),
        (sw("watch", "grouplicensemappings", w), true),
        (sub("patch", "lifecyclepolicies", "status", w), true),
        (sub("patch", "atlassianorganizations", "status", w), true),
        (sw("create", "lifecycleruns", w), true),
        (sw("delete", "lifecycleruns", w), true),
        (core("create", "configmaps", "", w), true),
        (core("delete", "configmaps", "ledger-0", w), true),
        (core("get", "secrets", "atlassian-org-api-key", w), true),
        (event("events.k8s.io", w), true),
        // The specs are the users': no update, no delete of their resources.
        (sw("update", "lifecyclepolicies", w), false),
        (sw("patch", "lifecyclepolicies", w), false),
        (sw("delete", "protectedusers", w), false),
        (sw("create", "atlassianorganizations", w), false),
        // Secrets: only the named ones, never listed.
        (core("get", "secrets", "someone-elses-secret", w), false),
        (core("list", "secrets", "", w), false),
        (core("watch", "secrets", "", w), false),
        // Nothing outside the watched namespace, no pods, no lease without leader election.
        (sw("list", "lifecyclepolicies", &ns), false),
        (sw("list", "lifecyclepolicies", "default"), false),
        (core("get", "pods", "", w), false),
        (lease("create", "", &ns), false),
        (event("", w), false),
    ];
    for (attrs, want) in &expect {
        assert_eq!(allowed(&client, &sa, &ns, attrs.clone()).await, *want, "namespaced install: {attrs}");
    }

    // Every namespace, leader election on.
    let ns2 = support::namespace(&client, "chart-rbac-c").await;
    let release2 = format!("sw{}", rand::random::<u16>());
    let docs = render(&helm, &release2, &ns2, "leaderElection: {enabled: true, leaseName: seatwarden}\n");
    let cleanup = apply_rbac(&client, &docs).await;
    assert_eq!(cleanup.len(), 2, "a ClusterRole and its binding");
    let sa2 = format!("{release2}-seatwarden");
    rbac_in_effect(&client, &sa2, &ns2, sw("list", "lifecyclepolicies", "any-namespace")).await;
    let expect = [
        (sw("list", "lifecyclepolicies", "any-namespace"), true),
        (sub("patch", "lifecyclepolicies", "status", "any-namespace"), true),
        (core("get", "secrets", "anything", "any-namespace"), true),
        (core("list", "secrets", "", "any-namespace"), false),
        (lease("create", "", &ns2), true),
        (lease("get", "seatwarden", &ns2), true),
        (lease("update", "seatwarden", &ns2), true),
        (lease("patch", "seatwarden", &ns2), true),
        (lease("update", "another-lease", &ns2), false),
        (lease("delete", "seatwarden", &ns2), false),
        (lease("get", "seatwarden", "kube-system"), false),
    ];
    let results = {
        let mut r = vec![];
        for (attrs, want) in &expect {
            r.push((attrs.clone(), *want, allowed(&client, &sa2, &ns2, attrs.clone()).await));
        }
        r
    };
    for (api, name) in cleanup {
        api.delete(&name, &DeleteParams::default()).await.expect("delete cluster-scoped RBAC");
    }
    for (attrs, want, got) in results {
        assert_eq!(got, want, "cluster-wide install: {attrs}");
    }
}

// ---------------------------------------------------------------------------------------------------
// PromQL: the alerts and the dashboard

/// Metric name → label names, from the operator's own exposition with one series of every metric.
fn exported_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let m = seatwarden::metrics::Metrics::new();
    m.touch_every_metric();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in m.render().lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let series = line.rsplit_once(' ').unwrap().0;
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let entry = out.entry(name.to_owned()).or_default();
        for pair in labels.trim_end_matches('}').split(',').filter(|p| !p.is_empty()) {
            entry.insert(pair.split_once('=').unwrap().0.to_owned());
        }
    }
    // Only names the operator declares: the exposition's series are METRIC_NAMES plus histogram suffixes.
    for name in out.keys() {
        let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(
            seatwarden::metrics::METRIC_NAMES.contains(&name.as_str())
                || seatwarden::metrics::METRIC_NAMES.contains(&base),
            "{name} is exported but not in METRIC_NAMES"
        );
    }
    for name in seatwarden::metrics::METRIC_NAMES {
        assert!(
            out.contains_key(*name) || out.contains_key(&format!("{name}_bucket")),
            "{name} has no series here: extend exported_metrics() in tests/chart.rs"
        );
    }
    out
}

/// The vector selectors of a PromQL expression: (metric name, label names matched on). A small
/// tokenizer, enough for our expressions: strings are skipped, identifiers followed by `(` are
/// functions, identifiers inside `{}` or in a by/without/on/ignoring/group_x list are labels, the
/// rest are metric names (keywords aside).
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    // Aggregations may put `by (..)` between their name and `(`, so they are keywords too.
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "atan2",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
    let chars: Vec<char> = expr.chars().collect();
    let mut out: Vec<(String, Vec<String>)> = vec![];
    let (mut i, mut in_braces, mut label_list_pending, mut in_label_list) = (0, false, false, false);
    let mut last_was_metric = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            let q = c;
            i += 1;
            while i < chars.len() && chars[i] != q {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let next = chars.get(j).copied();
            if in_braces {
                assert_ne!(word, "__name__", "selecting metrics by __name__ hides them from this check: {expr}");
                if last_was_metric && let Some(last) = out.last_mut() {
                    last.1.push(word);
                }
            } else if in_label_list {
            } else if LABEL_LISTS.contains(&word.as_str()) {
                label_list_pending = true;
                last_was_metric = false;
            } else if KEYWORDS.contains(&word.to_lowercase().as_str()) || next == Some('(') {
                last_was_metric = false;
            } else {
                out.push((word, vec![]));
                last_was_metric = true;
                continue;
            }
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            // Numbers and durations (5m, 1e3, 0.95).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        match c {
            '{' => in_braces = true,
            '}' => {
                in_braces = false;
                last_was_metric = false;
            }
            '(' if label_list_pending => {
                in_label_list = true;
                label_list_pending = false;
            }
            ')' if in_label_list => in_label_list = false,
            c if c.is_whitespace() => {}
            _ => {
                if !in_braces {
                    last_was_metric = false;
                }
            }
        }
        i += 1;
    }
    out
}

/// Checks every selector of `expr` against the exported metrics and their labels; returns the names.
fn check_metrics(expr: &str, exported: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Vec<String> {
    // Labels Prometheus adds to every target scraped through the ServiceMonitor.
    const TARGET_LABELS: &[&str] = &["namespace", "pod", "instance", "job", "service", "container", "endpoint"];
    let sel = selectors(expr);
    assert!(!sel.is_empty(), "{from}: no metric in `{expr}`");
    for (name, labels) in &sel {
        let known = exported
            .get(name)
            .unwrap_or_else(|| panic!("{from}: `{name}` is not a metric the operator exports (in `{expr}`)"));
        for l in labels {
            assert!(
                known.contains(l) || TARGET_LABELS.contains(&l.as_str()),
                "{from}: {name} has no label {l} (in `{expr}`)"
            );
        }
    }
    sel.into_iter().map(|(n, _)| n).collect()
}

#[test]
fn the_promql_tokenizer_finds_metrics_and_their_labels() {
    let s = selectors(
        r#"histogram_quantile(0.95, sum by (le, policy) (rate(a_bucket{policy=~"x|y", le!="1"}[5m]))) > on (policy) group_left (x) b offset 1h and bool c"#,
    );
    assert_eq!(
        s,
        vec![
            ("a_bucket".to_owned(), vec!["policy".to_owned(), "le".to_owned()]),
            ("b".to_owned(), vec![]),
            ("c".to_owned(), vec![]),
        ]
    );
    assert_eq!(selectors(r#"time() - max(up{job="x"})"#), vec![("up".to_owned(), vec!["job".to_owned()])]);
}

fn promtool_check_rules(promtool: &Path, groups: &Value) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, serde_yaml::to_string(&json!({"groups": groups})).unwrap()).unwrap();
    run(Command::new(promtool).args(["check", "rules"]).arg(&file))
}

#[test]
fn dashboard_queries_parse_and_use_only_exported_metrics() {
    let (Some(helm), Some(promtool)) = (helm(), promtool()) else { return };
    let docs = render(&helm, "sw", "seatwarden", &all_options(""));
    let cm = one(&docs, "ConfigMap");
    let dash: Value = serde_json::from_str(cm["data"]["seatwarden.json"].as_str().unwrap()).expect("dashboard JSON");
    let exported = exported_metrics();

    // Grafana's variables get a value of the kind they take at run time, so promtool can parse.
    let substitute = |e: &str| {
        e.replace("$__rate_interval", "5m")
            .replace("$__interval", "1m")
            .replace("$__range", "1d")
            .replace("$inactive_for", "90d")
            .replace("$organization", ".*")
            .replace("$policy", ".*")
    };
    let mut panels = vec![];
    let mut stack: Vec<Value> = dash["panels"].as_array().unwrap().clone();
    while let Some(p) = stack.pop() {
        if let Some(inner) = p["panels"].as_array() {
            stack.extend(inner.iter().cloned());
        }
        panels.push(p);
    }
    let ids: BTreeSet<i64> = panels.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");

    let mut rules = vec![];
    let mut used = BTreeSet::new();
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap();
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}: uses the dashboard's data source");
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}: no queries");
        for (i, t) in targets.iter().enumerate() {
            let expr = substitute(t["expr"].as_str().unwrap());
            used.extend(check_metrics(&expr, &exported, title));
            rules.push(json!({"record": format!("dashboard:panel{}:{i}", p["id"]), "expr": expr}));
        }
    }
    for var in dash["templating"]["list"].as_array().unwrap().iter().filter(|v| v["type"] == "query") {
        let q = var["query"]["query"].as_str().unwrap();
        let inner = q.strip_prefix("label_values(").and_then(|s| s.strip_suffix(')')).expect("label_values(m, l)");
        let (metric, label) = inner.split_once(',').unwrap();
        let labels =
            exported.get(metric.trim()).unwrap_or_else(|| panic!("variable {}: unknown {metric}", var["name"]));
        assert!(labels.contains(label.trim()), "variable {}: {metric} has no label {label}", var["name"]);
    }
    let out = promtool_check_rules(&promtool, &json!([{"name": "dashboard", "rules": rules}]));
    assert!(out.ok, "the dashboard's PromQL does not parse:\n{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains(&format!("SUCCESS: {} rules found", rules.len())), "{}", out.stdout);

    // What a platform team looks for is there.
    for needed in [
        "seatwarden_seats_reclaimed_total",
        "seatwarden_projected_monthly_savings",
        "seatwarden_inactive_users",
        "seatwarden_actions_total",
        "seatwarden_pending_notices",
        "seatwarden_atlassian_requests_total",
        "seatwarden_atlassian_request_duration_seconds_bucket",
        "seatwarden_atlassian_rate_limited_total",
        "seatwarden_atlassian_rate_limit_wait_seconds_total",
    ] {
        assert!(used.contains(needed), "the dashboard does not show {needed}");
    }
}

/// Replaces `{{ $labels.x }}` and `{{ $value | humanizeDuration }}` the way Prometheus would.
fn expand(template: &str, labels: &BTreeMap<&str, &str>, value: &str) -> String {
    let mut s = template.replace("{{ $value | humanizeDuration }}", value);
    for (k, v) in labels {
        s = s.replace(&format!("{{{{ $labels.{k} }}}}", k = k), v);
    }
    assert!(!s.contains("{{"), "unexpanded template in {s}");
    s
}

#[test]
fn alerts_parse_use_exported_metrics_and_fire_when_they_should() {
    let (Some(helm), Some(promtool)) = (helm(), promtool()) else { return };
    let docs = render(&helm, "sw", "seatwarden", &all_options(""));
    let rule = one(&docs, "PrometheusRule");
    let groups = &rule["spec"]["groups"];

    let out = promtool_check_rules(&promtool, groups);
    assert!(out.ok, "promtool check rules:\n{}{}", out.stdout, out.stderr);

    let exported = exported_metrics();
    let mut alerts: BTreeMap<String, Value> = BTreeMap::new();
    for r in groups[0]["rules"].as_array().unwrap() {
        let name = r["alert"].as_str().expect("only alerting rules").to_owned();
        check_metrics(r["expr"].as_str().unwrap(), &exported, &name);
        assert_eq!(r["labels"]["team"], "platform", "{name}: additionalAlertLabels");
        alerts.insert(name, r.clone());
    }
    let names: BTreeSet<&str> = alerts.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "SeatwardenRunsFailing",
            "SeatwardenSafetyHalt",
            "SeatwardenNoSuccessfulRun",
            "SeatwardenAtlassianRateLimited",
            "SeatwardenNoLeader",
        ])
    );

    // promtool unit tests: series made for each alert, a case where it must fire and one where it
    // must not. The runIntervalSeconds of all_options() is 3600, so "two intervals" is 2 h.
    let expected = |alert: &str, labels: &[(&str, &str)], value: &str| -> Value {
        let rule = &alerts[alert];
        let mut l: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let ann: BTreeMap<String, String> = rule["annotations"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), expand(v.as_str().unwrap(), &l, value)))
            .collect();
        l.insert("severity", rule["labels"]["severity"].as_str().unwrap());
        l.insert("team", "platform");
        json!({"exp_labels": l, "exp_annotations": ann})
    };
    let case = |alert: &str, at: &str, exp: Vec<Value>| json!({"eval_time": at, "alertname": alert, "exp_alerts": exp});
    let p = |policy: &'static str| [("namespace", "ns"), ("policy", policy)];
    let tests = json!([
        {
            "interval": "1m",
            "input_series": [
                // p: completed one run, then every attempt (retried each minute) fails.
                {"series": r#"seatwarden_reconcile_runs_total{namespace="ns",policy="p"}"#, "values": "1x60"},
                {"series": r#"seatwarden_reconcile_errors_total{namespace="ns",policy="p",error="Snapshot"}"#, "values": "0+1x60"},
                // q: failed three times, then its retry completed and so did later runs.
                {"series": r#"seatwarden_reconcile_runs_total{namespace="ns",policy="q"}"#, "values": "0 0 0 0+1x57"},
                {"series": r#"seatwarden_reconcile_errors_total{namespace="ns",policy="q",error="Atlassian"}"#, "values": "0 1 2 3x58"},
                // r: one failure, retried with success a minute later, then quiet for an hour.
                {"series": r#"seatwarden_reconcile_runs_total{namespace="ns",policy="r"}"#, "values": "1x5 2x55"},
                {"series": r#"seatwarden_reconcile_errors_total{namespace="ns",policy="r",error="Atlassian"}"#, "values": "0x4 1x56"},
            ],
            "alert_rule_test": [
                case("SeatwardenRunsFailing", "10m", vec![]),
                case("SeatwardenRunsFailing", "40m", vec![expected("SeatwardenRunsFailing", &p("p"), "")]),
                case("SeatwardenRunsFailing", "20m", vec![expected("SeatwardenRunsFailing", &p("p"), "")]),
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                {"series": r#"seatwarden_safety_halted{namespace="ns",policy="p"}"#, "values": "0 0 1x10"},
                {"series": r#"seatwarden_safety_halted{namespace="ns",policy="q"}"#, "values": "0x12"},
            ],
            "alert_rule_test": [
                case("SeatwardenSafetyHalt", "1m", vec![]),
                case("SeatwardenSafetyHalt", "5m", vec![expected("SeatwardenSafetyHalt", &p("p"), "")]),
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                // p: last success at time 0; q: a success every minute.
                {"series": r#"seatwarden_last_successful_run_timestamp_seconds{namespace="ns",policy="p"}"#, "values": "0x140"},
                {"series": r#"seatwarden_last_successful_run_timestamp_seconds{namespace="ns",policy="q"}"#, "values": "0+60x140"},
            ],
            "alert_rule_test": [
                case("SeatwardenNoSuccessfulRun", "125m", vec![]),
                case("SeatwardenNoSuccessfulRun", "131m", vec![expected("SeatwardenNoSuccessfulRun", &p("p"), "2h 11m 0s")]),
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                // org: a 429 every minute for an hour; site: one burst at minute 3.
                {"series": r#"seatwarden_atlassian_rate_limited_total{namespace="ns",family="org"}"#, "values": "0+1x60"},
                {"series": r#"seatwarden_atlassian_rate_limited_total{namespace="ns",family="site"}"#, "values": "0 0 0 5x57"},
            ],
            "alert_rule_test": [
                case("SeatwardenAtlassianRateLimited", "20m", vec![]),
                case("SeatwardenAtlassianRateLimited", "40m", vec![expected(
                    "SeatwardenAtlassianRateLimited",
                    &[("namespace", "ns"), ("family", "org")],
                    "",
                )]),
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                {"series": r#"seatwarden_leader{namespace="ns",pod="a"}"#, "values": "0x20"},
                {"series": r#"seatwarden_leader{namespace="ns",pod="b"}"#, "values": "0x20"},
                {"series": r#"seatwarden_leader{namespace="ok",pod="a"}"#, "values": "1x20"},
                {"series": r#"seatwarden_leader{namespace="ok",pod="b"}"#, "values": "0x20"},
            ],
            "alert_rule_test": [
                case("SeatwardenNoLeader", "5m", vec![]),
                case("SeatwardenNoLeader", "12m", vec![expected("SeatwardenNoLeader", &[("namespace", "ns")], "")]),
            ],
        },
    ]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), serde_yaml::to_string(&json!({"groups": groups})).unwrap()).unwrap();
    let test_file = dir.path().join("tests.yaml");
    let spec = json!({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests});
    std::fs::write(&test_file, serde_yaml::to_string(&spec).unwrap()).unwrap();
    let out = run(Command::new(&promtool).args(["test", "rules"]).arg(&test_file).current_dir(dir.path()));
    assert!(out.ok, "promtool test rules:\n{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("SUCCESS"), "{}", out.stdout);
}

// ---------------------------------------------------------------------------------------------------
// The container image

#[test]
fn the_binary_links_only_libraries_distroless_cc_ships() {
    let bin = env!("CARGO_BIN_EXE_seatwarden");
    let out = run(Command::new("ldd").arg(bin));
    assert!(out.ok, "ldd {bin}: {}", out.stderr);
    // gcr.io/distroless/cc-debian12 = Debian 12's libc6 + libgcc-s1 (+ libssl, which we don't use).
    const DISTROLESS_CC: &[&str] = &[
        "linux-vdso.so.1",
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "ld-linux-x86-64.so.2",
    ];
    let mut libs = vec![];
    for line in out.stdout.lines() {
        let first = line.split_whitespace().next().unwrap();
        let lib = first.rsplit('/').next().unwrap().to_owned();
        assert!(DISTROLESS_CC.contains(&lib.as_str()), "{bin} needs {lib}, which distroless cc lacks:\n{}", out.stdout);
        libs.push(lib);
    }
    assert!(libs.iter().any(|l| l == "libc.so.6"), "ldd output not understood:\n{}", out.stdout);

    // And no glibc symbol newer than Debian 12's 2.36 (the version the image's libc has).
    let bytes = std::fs::read(bin).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let re = regex::Regex::new(r"GLIBC_2\.([0-9]+)").unwrap();
    let newest = re.captures_iter(&text).map(|c| c[1].parse::<u32>().unwrap()).max().expect("GLIBC versions");
    assert!(newest <= 36, "the binary needs GLIBC_2.{newest}; distroless cc-debian12 has 2.36");
}

#[test]
fn dockerfile_runs_the_operator_non_root_without_a_shell() {
    let text = std::fs::read_to_string(support::repo_root().join("Dockerfile")).expect("Dockerfile");
    let instructions: Vec<String> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(str::trim)
        .map(str::to_owned)
        .collect();
    let froms: Vec<usize> =
        instructions.iter().enumerate().filter(|(_, l)| l.starts_with("FROM ")).map(|(i, _)| i).collect();
    assert!(froms.len() >= 2, "multi-stage: a builder and a runtime stage");
    let builder = &instructions[froms[0]];
    assert!(builder.contains("bookworm"), "build on Debian 12 so glibc matches the runtime: {builder}");
    let last = &instructions[*froms.last().unwrap()..];
    assert!(
        last[0].starts_with("FROM gcr.io/distroless/cc-debian12:nonroot"),
        "runtime stage on distroless cc nonroot: {}",
        last[0]
    );
    for l in last {
        let word = l.split_whitespace().next().unwrap();
        assert!(
            !matches!(word, "RUN" | "SHELL") && !l.contains("/bin/sh") && !l.contains("bash"),
            "the runtime stage has no shell to run: {l}"
        );
    }
    assert!(last.iter().any(|l| l == "USER 65532:65532"), "runs as the nonroot user by number");
    assert_eq!(last.last().unwrap(), r#"ENTRYPOINT ["/seatwarden", "run"]"#);
    assert!(!instructions.iter().any(|l| l.contains("tzdata")), "time zones are built into the binary");
    let ignore = std::fs::read_to_string(support::repo_root().join(".dockerignore")).expect(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"), "the build context leaves target/ out");
}

// ---------------------------------------------------------------------------------------------------
// End to end: a real Prometheus scrapes the operator during a run

/// A child process, killed (by its own handle) when the test ends, passes or panics.
struct Proc {
    name: &'static str,
    child: std::process::Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc { name, child, log }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("--- {} log (last 30 lines) ---\n{}", self.name, lines[lines.len().saturating_sub(30)..].join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `f` every 500 ms until it returns Some, or panics after `secs` with the processes' logs.
async fn wait_for<T, F, Fut>(what: &str, secs: u64, procs: &mut [Proc], mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        // A process that died will not bring what we wait for: say so now, with its log.
        let exited = procs.iter_mut().find_map(|p| p.child.try_wait().ok().flatten().map(|code| (p.name, code)));
        if let Some((name, code)) = exited {
            let logs: Vec<String> = procs.iter().map(|p| p.tail()).collect();
            panic!("{name} exited ({code}) while waiting for {what}\n{}", logs.join("\n"));
        }
        if std::time::Instant::now() > deadline {
            let logs: Vec<String> = procs.iter().map(|p| p.tail()).collect();
            panic!("timed out after {secs} s waiting for {what}\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn prom_get(http: &reqwest::Client, base: &str, path: &str, params: &[(&str, &str)]) -> Option<Value> {
    let url = reqwest::Url::parse_with_params(&format!("{base}{path}"), params).unwrap();
    let body: Value = http.get(url).send().await.ok()?.json().await.ok()?;
    (body["status"] == "success").then(|| body["data"].clone())
}

/// An instant query's result vector.
async fn prom_query(http: &reqwest::Client, base: &str, q: &str) -> Option<Vec<Value>> {
    prom_get(http, base, "/api/v1/query", &[("query", q)]).await.map(|d| d["result"].as_array().unwrap().clone())
}

fn sample_value(v: &Value) -> f64 {
    v["value"][1].as_str().unwrap().parse().unwrap()
}

/// A simulated organization (300 users, fixed seed), the examples' organization and license
/// mappings pointed at it, an Enforce policy, and `seatwarden run` as the chart runs it.
struct E2e {
    // Declared first so the processes stop before their folder goes.
    procs: Vec<Proc>,
    ns: String,
    metrics_port: u16,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl E2e {
    async fn start(client: &Client, helm: &Path, as_chart_service_account: bool) -> E2e {
        support::install_crds(client).await;
        let ns = support::namespace(client, "chart-e2e").await;
        let dir = tempfile::tempdir().unwrap();
        let bin = env!("CARGO_BIN_EXE_seatwarden");

        // The simulated organization (300 users, fixed seed).
        let sim_port = free_port();
        let mut procs = vec![Proc::spawn(
            "sim",
            Command::new(bin).args(["sim", "--port", &sim_port.to_string(), "--users", "300", "--seed", "7"]),
            dir.path(),
        )];
        let sim_url = format!("http://127.0.0.1:{sim_port}");
        wait_for("the simulator", 30, &mut procs, || async {
            std::net::TcpStream::connect(("127.0.0.1", sim_port)).ok().map(|_| ())
        })
        .await;

        // The examples' organization and license mappings, pointed at the simulator, and an Enforce
        // policy without notice lead times so its first run reclaims seats.
        let mut objects = vec![json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "atlassian-org-api-key", "namespace": ns},
            // The simulator's documented default key, not a credential.
            "stringData": {"api-key": "sim-key"},
        })];
        for file in ["examples/01-organization.yaml", "examples/02-license-mappings.yaml"] {
            let text = std::fs::read_to_string(support::repo_root().join(file)).unwrap();
            for mut doc in documents(&text).into_iter().filter(|d| d["kind"] != "Secret") {
                doc["metadata"]["namespace"] = json!(ns);
                if doc["kind"] == "AtlassianOrganization" {
                    let spec = doc["spec"].as_object_mut().unwrap();
                    spec.insert("apiBaseUrl".into(), json!(sim_url));
                    for site in spec["sites"].as_array_mut().unwrap() {
                        site["url"] = json!(sim_url);
                    }
                    spec["bitbucket"]["apiUrl"] = json!(sim_url);
                    // No SMTP here: notices would go to the mailbox folder.
                    spec.remove("mail");
                }
                objects.push(doc);
            }
        }
        objects.push(json!({
            "apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy",
            "metadata": {"name": "reclaim-jira", "namespace": ns},
            "spec": {
                "organizationRef": {"name": "acme"},
                "mode": "Enforce",
                "schedule": {"interval": "1h"},
                "scope": {"accountTypes": ["Managed", "External"]},
                "rules": [{"name": "jira-idle-60d", "productInactivity": {"product": "JiraSoftware", "inactiveFor": "60d"},
                           "action": "RemoveLicensedGroups"}],
                "caps": {"maxActionsPerRun": 20, "maxActionPercent": 50},
            },
        }));
        for doc in &objects {
            let (api, _) = api_for(client, doc).await;
            let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
            api.create(&PostParams::default(), &obj).await.unwrap_or_else(|e| panic!("create {}: {e}", doc["kind"]));
        }

        // The operator as the chart runs it: the rendered Deployment's args and env (leader election on,
        // one namespace, named Secrets) and, when asked, only the permissions of the rendered Roles, by
        // impersonating the chart's ServiceAccount.
        let release = format!("sw{}", rand::random::<u16>());
        let chart_values = format!(
            "watchNamespace: {ns}\ncredentialSecrets: [atlassian-org-api-key]\nleaderElection: {{enabled: true}}\nlogFormat: text\n"
        );
        let chart_docs = render(helm, &release, &ns, &chart_values);
        let kubeconfig_path = PathBuf::from(std::env::var("KUBECONFIG").expect("KUBECONFIG"));
        let kubeconfig = if as_chart_service_account {
            assert!(
                apply_rbac(client, &chart_docs).await.is_empty(),
                "a namespaced install creates nothing cluster-wide"
            );
            let attrs =
                json!({"group": "seatwarden.io", "verb": "list", "resource": "lifecyclepolicies", "namespace": ns});
            rbac_in_effect(client, &format!("{release}-seatwarden"), &ns, attrs).await;
            let sa = format!("system:serviceaccount:{ns}:{release}-seatwarden");
            let mut config: Value = serde_yaml::from_str(&std::fs::read_to_string(&kubeconfig_path).unwrap()).unwrap();
            for user in config["users"].as_array_mut().expect("kubeconfig users") {
                user["user"]["as"] = json!(sa);
            }
            let path = dir.path().join("kubeconfig-sa");
            std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
            path
        } else {
            kubeconfig_path
        };
        let container = &one(&chart_docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
        let metrics_port = free_port();
        let mut operator = Command::new(bin);
        operator.arg("run");
        for arg in container["args"].as_array().unwrap() {
            let arg = arg.as_str().unwrap();
            // Everything as rendered, but the metrics address: loopback on a free port, not 0.0.0.0:9464.
            if arg.starts_with("--metrics-addr=") {
                operator.arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"));
            } else {
                operator.arg(arg);
            }
        }
        for env in container["env"].as_array().unwrap() {
            let name = env["name"].as_str().unwrap();
            let value = match env["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => "seatwarden-chart-e2e".to_owned(),
                Some("metadata.namespace") => ns.clone(),
                Some(other) => panic!("env {name} from an unexpected field {other}"),
                None => env["value"].as_str().unwrap().to_owned(),
            };
            operator.env(name, value);
        }
        operator.arg("--mailbox-dir").arg(dir.path().join("mailbox")).env("KUBECONFIG", &kubeconfig);
        procs.push(Proc::spawn("operator", &mut operator, dir.path()));

        let mut e2e = E2e { procs, ns, metrics_port, dir, http: reqwest::Client::new() };
        // The liveness probe's endpoint answers.
        e2e.wait_endpoint("/healthz").await;
        e2e
    }

    async fn wait_endpoint(&mut self, path: &str) {
        let url = format!("http://127.0.0.1:{}{path}", self.metrics_port);
        let http = self.http.clone();
        wait_for(&format!("the operator's {path}"), 60, &mut self.procs, || async {
            http.get(&url).send().await.ok()?.status().is_success().then_some(())
        })
        .await;
    }

    /// The policy's status once its first run reclaimed seats.
    async fn wait_for_seats(&mut self, client: &Client) -> Value {
        let policies = Api::<DynamicObject>::namespaced_with(
            client.clone(),
            &self.ns,
            &ApiResource::from_gvk(&GroupVersionKind::gvk("seatwarden.io", "v1alpha1", "LifecyclePolicy")),
        );
        wait_for("the policy's first run", 180, &mut self.procs, || async {
            let p = policies.get("reclaim-jira").await.ok()?;
            let status = p.data.get("status")?.clone();
            (status["seatsReclaimed"].as_i64().unwrap_or(0) > 0).then_some(status)
        })
        .await
    }
}

/// The operator (`seatwarden run`) reconciles an Enforce policy against the simulator and the real
/// API server while a real Prometheus (Debian's) scrapes its /metrics and evaluates the chart's
/// alerts: PromQL returns the seats reclaimed that the policy's status reports, every dashboard
/// query runs on the real engine and returns data where the operator exported its metrics, every
/// scraped metric is one METRIC_NAMES lists, and a healthy run fires no alert.
#[tokio::test]
async fn prometheus_scrapes_the_operator_during_a_run_and_reports_the_seats_reclaimed() {
    let Some(client) = support::kube_client().await else { return };
    let (Some(helm), Some(prometheus)) = (helm(), tool("prometheus", "PROMETHEUS", None)) else { return };
    let mut e2e = E2e::start(&client, &helm, false).await;
    let (ns, metrics_port, http) = (e2e.ns.clone(), e2e.metrics_port, e2e.http.clone());
    let dir = e2e.dir.path().to_owned();

    // Prometheus scraping it every second, with the chart's alerts loaded.
    let docs = render(&helm, "sw", &ns, &all_options(""));
    let groups = one(&docs, "PrometheusRule")["spec"]["groups"].clone();
    std::fs::write(dir.join("rules.yaml"), serde_yaml::to_string(&json!({"groups": groups})).unwrap()).unwrap();
    let config = json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [dir.join("rules.yaml")],
        "scrape_configs": [{"job_name": "seatwarden", "static_configs": [{"targets": [format!("127.0.0.1:{metrics_port}")]}]}],
    });
    std::fs::write(dir.join("prometheus.yml"), serde_yaml::to_string(&config).unwrap()).unwrap();
    let prom_port = free_port();
    e2e.procs.push(Proc::spawn(
        "prometheus",
        Command::new(&prometheus)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        &dir,
    ));
    let base = format!("http://127.0.0.1:{prom_port}");

    // The run: the policy's status reports the seats it reclaimed.
    let status = e2e.wait_for_seats(&client).await;
    let seats = status["seatsReclaimed"].as_i64().unwrap();
    let by_product: BTreeMap<String, i64> = serde_json::from_value(status["seatsReclaimedByProduct"].clone()).unwrap();

    // PromQL returns the same seats, in total and by product, from the scrape.
    let scraped = wait_for("Prometheus to scrape the seats reclaimed", 60, &mut e2e.procs, || async {
        let r = prom_query(&http, &base, "sum(seatwarden_seats_reclaimed_total{job=\"seatwarden\"})").await?;
        let v = r.first().map(sample_value)?;
        (v as i64 == seats).then_some(v)
    })
    .await;
    assert_eq!(scraped as i64, seats);
    let per_product: BTreeMap<String, i64> =
        prom_query(&http, &base, "sum by (product) (seatwarden_seats_reclaimed_total)")
            .await
            .unwrap()
            .iter()
            .map(|s| (s["metric"]["product"].as_str().unwrap().to_owned(), sample_value(s) as i64))
            // The operator starts each mapped product's series at 0; status lists products with seats.
            .filter(|(_, n)| *n != 0)
            .collect();
    assert_eq!(per_product, by_product, "seats by product: Prometheus vs the policy's status");

    // What was really scraped. The operator sets a run's metrics one after the other, after the
    // status write, so wait until those a run always sets are all there.
    const RUN_METRICS: &[&str] = &[
        "seatwarden_seats_reclaimed_total",
        "seatwarden_projected_monthly_savings",
        "seatwarden_inactive_users",
        "seatwarden_licensed_seats",
        "seatwarden_actions_total",
        "seatwarden_pending_notices",
        "seatwarden_reconcile_runs_total",
        "seatwarden_reconcile_duration_seconds_bucket",
        "seatwarden_last_successful_run_timestamp_seconds",
        "seatwarden_atlassian_requests_total",
        "seatwarden_atlassian_request_duration_seconds_bucket",
    ];
    let scraped_names: BTreeSet<String> = wait_for("a run's metrics in Prometheus", 60, &mut e2e.procs, || async {
        let names = prom_get(&http, &base, "/api/v1/label/__name__/values", &[]).await?;
        let names: BTreeSet<String> = names
            .as_array()?
            .iter()
            .filter_map(|n| n.as_str())
            .filter(|n| n.starts_with("seatwarden_"))
            .map(str::to_owned)
            .collect();
        RUN_METRICS.iter().all(|m| names.contains(*m)).then_some(names)
    })
    .await;
    // Only METRIC_NAMES (and the series of their histograms).
    for name in &scraped_names {
        let base_name = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(
            seatwarden::metrics::METRIC_NAMES.contains(&base_name),
            "the operator exports {name}, which METRIC_NAMES does not list"
        );
    }

    // Every dashboard query runs on the real engine; those whose metrics were scraped return data
    // (rate() needs at least two samples in its window: wait until the run's series, born at its
    // end, have been scraped a few times).
    wait_for("three scrapes of the run's series", 30, &mut e2e.procs, || async {
        for m in RUN_METRICS {
            // One metric at a time: count_over_time drops the name, so series of two metrics collide.
            let r = prom_query(&http, &base, &format!("min(count_over_time({m}[1m]))")).await?;
            if r.first().map(sample_value)? < 3.0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    let cm = one(&docs, "ConfigMap");
    let dash: Value = serde_json::from_str(cm["data"]["seatwarden.json"].as_str().unwrap()).unwrap();
    let mut exprs = vec![];
    let mut stack: Vec<Value> = dash["panels"].as_array().unwrap().clone();
    while let Some(p) = stack.pop() {
        if let Some(inner) = p["panels"].as_array() {
            stack.extend(inner.iter().cloned());
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push((p["title"].as_str().unwrap().to_owned(), t["expr"].as_str().unwrap().to_owned()));
        }
    }
    let mut with_data = 0;
    for (title, expr) in &exprs {
        let q = expr
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "15s")
            .replace("$__range", "1h")
            .replace("$inactive_for", "90d")
            .replace("$organization", ".*")
            .replace("$policy", ".*");
        let result = prom_query(&http, &base, &q).await.unwrap_or_else(|| panic!("{title}: Prometheus refused `{q}`"));
        let all_scraped = selectors(&q).iter().all(|(m, _)| scraped_names.contains(m));
        if all_scraped {
            assert!(!result.is_empty(), "{title}: `{q}` returned nothing although its metrics were scraped");
            with_data += 1;
        }
    }
    assert!(with_data * 4 >= exprs.len() * 3, "only {with_data} of {} dashboard queries had data", exprs.len());
    // The dashboard's headline number is the seats the run reclaimed, though the operator started
    // (and its counter was born) inside the time range.
    let (_, headline) = exprs.iter().find(|(t, _)| t == "Seats reclaimed (time range)").expect("the headline panel");
    let q = headline.replace("$__range", "1h").replace("$policy", ".*");
    let r = prom_query(&http, &base, &q).await.unwrap();
    assert_eq!(r.first().map(sample_value), Some(seats as f64), "`{q}`");

    // The chart's alerts are loaded and evaluated, and a healthy run fires none of them.
    let rules = wait_for("the alert rules to be evaluated", 30, &mut e2e.procs, || async {
        let data = prom_get(&http, &base, "/api/v1/rules", &[]).await?;
        let rules = data["groups"][0]["rules"].as_array()?.clone();
        rules.iter().all(|r| r["health"] == "ok").then_some(rules)
    })
    .await;
    assert_eq!(rules.len(), groups[0]["rules"].as_array().unwrap().len());
    let active: Vec<String> = rules
        .iter()
        .flat_map(|r| r["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| format!("{} {}", a["labels"]["alertname"], a["state"]))
        .collect();
    assert!(active.is_empty(), "a healthy run fired alerts: {active:?}");
}

/// The operator runs with nothing but the chart's permissions (the rendered Roles, by impersonating
/// its ServiceAccount, with leader election): the run completes, nothing is forbidden, the audit
/// trail and the lease are written, and the endpoints of both probes answer.
#[tokio::test]
async fn the_operator_runs_with_only_the_charts_permissions_and_its_probes_answer() {
    let Some(client) = support::kube_client().await else { return };
    let Some(helm) = helm() else { return };
    let mut e2e = E2e::start(&client, &helm, true).await;
    let status = e2e.wait_for_seats(&client).await;
    let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").cloned();
    assert_eq!(ready.as_ref().map(|c| &c["status"]), Some(&json!("True")), "Ready: {ready:?}");
    let log = std::fs::read_to_string(&e2e.procs[1].log).unwrap();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the chart's Roles refused the operator something:\n{}",
        e2e.procs[1].tail()
    );

    let runs = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        &e2e.ns,
        &ApiResource::from_gvk(&GroupVersionKind::gvk("seatwarden.io", "v1alpha1", "LifecycleRun")),
    );
    assert!(!runs.list(&Default::default()).await.unwrap().items.is_empty(), "the audit trail was written");
    let lease: k8s_openapi::api::coordination::v1::Lease =
        Api::namespaced(client.clone(), &e2e.ns).get("seatwarden").await.expect("the lease exists");
    assert_eq!(lease.spec.and_then(|s| s.holder_identity).as_deref(), Some("seatwarden-chart-e2e"));

    // The readiness probe's endpoint answers once the caches are filled (long done: a run completed).
    // Without it the pod never becomes Ready, the Service has no endpoint and the ServiceMonitor
    // scrapes nothing.
    e2e.wait_endpoint("/readyz").await;
}
