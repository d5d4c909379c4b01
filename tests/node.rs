//! `helm install` as a platform team runs it, on a real node: a single-node Kubernetes v1.20.2
//! (kubelet, containerd, runc, the CNI bridge, kube-proxy) started by .ci/node-env.sh, the operator
//! image built by .ci/image.sh and imported into containerd, the chart from this repository
//! installed by helm with its CRDs. The simulator runs on the host, on the node's address, so the
//! pod reaches it through the pod network as it would reach Atlassian.
//!
//! These tests need root and the node; `make e2e` (.ci/e2e.sh, part of `make test`) starts both and
//! runs them with `--ignored`. Run any other way without the node they fail, naming what is missing.

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use kube::{
    Api, Client, Config,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::{Value, json};

const HELM_CACHE: &str = "/var/cache/seatwarden-ci/helm-v3.18.0/helm";
const RELEASE: &str = "seatwarden";

// ---------------------------------------------------------------------------------------------------
// The node and the tools

/// What .ci/e2e.sh hands the tests: the node's folder (kubeconfig, containerd socket, pid files), its
/// address, and the two operator images already imported into containerd.
struct Node {
    dir: PathBuf,
    ip: Ipv4Addr,
    image_a: String,
    image_b: String,
    helm: PathBuf,
    client: Client,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need the real node that `make e2e` (.ci/e2e.sh) starts")
    })
}

impl Node {
    async fn connect() -> Node {
        seatwarden::tls::install_crypto_provider();
        let dir = PathBuf::from(env("SEATWARDEN_NODE_DIR"));
        let kubeconfig = Kubeconfig::read_from(dir.join("kubeconfig")).expect("the node's kubeconfig");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
        let client = Client::try_from(config).unwrap();
        let version = client.apiserver_version().await.expect("the node's API server answers");
        assert_eq!(version.git_version, "v1.20.2", "the node runs the Kubernetes the chart is tested on");
        let helm = std::env::var_os("HELM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(HELM_CACHE));
        assert!(helm.exists(), "no helm at {} (.ci/install-deps.sh installs it)", helm.display());
        Node {
            ip: env("SEATWARDEN_NODE_IP").parse().expect("SEATWARDEN_NODE_IP"),
            image_a: env("SEATWARDEN_E2E_IMAGE_A"),
            image_b: env("SEATWARDEN_E2E_IMAGE_B"),
            dir,
            helm,
            client,
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// helm against the node; panics with helm's output unless it succeeds.
    fn helm(&self, args: &[&str]) -> String {
        let out = self.helm_output(args);
        assert!(out.status.success(), "helm {args:?} failed:\n{}{}", stdout(&out), stderr(&out));
        stdout(&out)
    }

    fn helm_output(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.helm)
            .args(args)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .env("HELM_CACHE_HOME", self.dir.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("helm/config"))
            .env("HELM_DATA_HOME", self.dir.join("helm/data"))
            .output()
            .expect("run helm")
    }

    /// `ctr` on the node's containerd.
    fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("ctr")
            .arg("-a")
            .arg(self.dir.join("containerd/containerd.sock"))
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .expect("run ctr");
        assert!(out.status.success(), "ctr {args:?}: {}", stderr(&out));
        stdout(&out)
    }

    fn api(&self, kind: &str, ns: Option<&str>) -> Api<DynamicObject> {
        let (group, version, plural) = match kind {
            "Pod" => ("", "v1", "pods"),
            "Service" => ("", "v1", "services"),
            "Endpoints" => ("", "v1", "endpoints"),
            "ConfigMap" => ("", "v1", "configmaps"),
            "Secret" => ("", "v1", "secrets"),
            "Namespace" => ("", "v1", "namespaces"),
            "Deployment" => ("apps", "v1", "deployments"),
            "NetworkPolicy" => ("networking.k8s.io", "v1", "networkpolicies"),
            "CustomResourceDefinition" => ("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
            "AtlassianOrganization" => ("seatwarden.io", "v1alpha1", "atlassianorganizations"),
            "GroupLicenseMapping" => ("seatwarden.io", "v1alpha1", "grouplicensemappings"),
            "ProtectedUser" => ("seatwarden.io", "v1alpha1", "protectedusers"),
            "LifecyclePolicy" => ("seatwarden.io", "v1alpha1", "lifecyclepolicies"),
            "LifecycleRun" => ("seatwarden.io", "v1alpha1", "lifecycleruns"),
            other => panic!("no API for {other}"),
        };
        let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        match ns {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        }
    }

    async fn create(&self, doc: &Value) {
        let ns = doc["metadata"]["namespace"].as_str();
        let kind = doc["kind"].as_str().unwrap();
        let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        self.api(kind, ns)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("create {kind} {}: {e}", doc["metadata"]["name"]));
    }

    async fn list(&self, kind: &str, ns: &str, labels: &str) -> Vec<Value> {
        let list = self.api(kind, Some(ns)).list(&ListParams::default().labels(labels)).await.expect("list");
        list.items.into_iter().map(|o| serde_json::to_value(o).unwrap()).collect()
    }

    async fn get(&self, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        self.api(kind, ns).get_opt(name).await.expect("get").map(|o| serde_json::to_value(o).unwrap())
    }

    /// The operator's running pod (Ready, not terminating) and its container's process id on the host.
    async fn operator_pod(&self, ns: &str) -> (Value, u32) {
        let pods = self.list("Pod", ns, &format!("app.kubernetes.io/instance={RELEASE}")).await;
        let running: Vec<_> = pods
            .into_iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null() && p["status"]["phase"] == "Running")
            .collect();
        assert_eq!(running.len(), 1, "one running operator pod");
        let pod = running.into_iter().next().unwrap();
        let id = pod["status"]["containerStatuses"][0]["containerID"].as_str().expect("container id");
        let id = id.strip_prefix("containerd://").expect("a containerd container");
        let tasks = self.ctr(&["tasks", "ls"]);
        let pid = tasks
            .lines()
            .find_map(|l| {
                let f: Vec<_> = l.split_whitespace().collect();
                (f.first() == Some(&id)).then(|| f[1].parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no containerd task {id}:\n{tasks}"));
        (pod, pid)
    }
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The simulated organization, on the node's address so pods reach it; stopped (by its PID) on drop.
struct Sim {
    child: Child,
    port: u16,
}

impl Sim {
    fn start(ip: Ipv4Addr, log: &Path) -> Sim {
        let port = {
            let l = std::net::TcpListener::bind((ip, 0)).expect("a free port on the node address");
            l.local_addr().unwrap().port()
        };
        let child = Command::new(env!("CARGO_BIN_EXE_seatwarden"))
            .args(["sim", "--bind", &ip.to_string(), "--port", &port.to_string(), "--users", "300", "--seed", "7"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start the simulator");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect((ip, port)).is_err() {
            assert!(Instant::now() < deadline, "the simulator did not listen on {ip}:{port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Sim { child, port }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------------
// The process as the kernel sees it

/// The fields of /proc/PID/status the security context decides.
fn proc_status(pid: u32) -> BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("read the process's status")
        .lines()
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.to_owned(), v.trim().to_owned())))
        .collect()
}

/// Mount point -> options, from the process's own mount namespace.
fn proc_mounts(pid: u32) -> BTreeMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .expect("read the process's mounts")
        .lines()
        .map(|l| {
            let f: Vec<_> = l.split(' ').collect();
            (f[4].to_owned(), f[5].to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// NetworkPolicy egress, evaluated as the API server stored it

#[derive(Debug, Clone, Copy, PartialEq)]
enum Proto {
    Tcp,
    Udp,
}

fn in_cidr(ip: Ipv4Addr, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').unwrap_or((cidr, "32"));
    let net: Ipv4Addr = net.parse().expect("an IPv4 CIDR");
    let len: u32 = len.parse().unwrap();
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(net) & mask
}

/// Does the policy's egress admit a connection to ip:port? The NetworkPolicy rules (an empty `to`
/// or `ports` matches everything; ipBlock with `except`; named ports are not used by the chart's
/// egress), for a destination outside the cluster's pods. Peers by pod/namespace selector never
/// match such a destination.
fn egress_allows(policy: &Value, ip: Ipv4Addr, port: u16, proto: Proto) -> bool {
    let spec = &policy["spec"];
    let types: Vec<_> = spec["policyTypes"].as_array().unwrap().iter().filter_map(|t| t.as_str()).collect();
    if !types.contains(&"Egress") {
        return true;
    }
    spec["egress"].as_array().into_iter().flatten().any(|rule| {
        let port_ok = match rule["ports"].as_array() {
            None => true,
            Some(ports) if ports.is_empty() => true,
            Some(ports) => ports.iter().any(|p| {
                let want = if p["protocol"].as_str().unwrap_or("TCP") == "UDP" { Proto::Udp } else { Proto::Tcp };
                want == proto && p["port"].as_u64().is_none_or(|n| n == port as u64)
            }),
        };
        let peer_ok = match rule["to"].as_array() {
            None => true,
            Some(to) if to.is_empty() => true,
            Some(to) => to.iter().any(|peer| {
                let Some(block) = peer.get("ipBlock") else { return false };
                in_cidr(ip, block["cidr"].as_str().unwrap())
                    && !block["except"].as_array().into_iter().flatten().any(|e| in_cidr(ip, e.as_str().unwrap()))
            }),
        };
        port_ok && peer_ok
    })
}

#[test]
fn the_egress_evaluator_follows_the_networkpolicy_rules() {
    let policy = json!({"spec": {"policyTypes": ["Ingress", "Egress"], "egress": [
        {"ports": [{"port": 6443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.255.255.1/32"}}]},
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}}], "ports": [{"port": 443, "protocol": "TCP"}]},
        {"to": [{"namespaceSelector": {}}]},
    ]}});
    let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    assert!(egress_allows(&policy, ip("10.255.255.1"), 6443, Proto::Tcp));
    assert!(!egress_allows(&policy, ip("10.255.255.2"), 6443, Proto::Tcp), "outside the ipBlock");
    assert!(!egress_allows(&policy, ip("10.255.255.1"), 6443, Proto::Udp), "other protocol");
    assert!(!egress_allows(&policy, ip("10.255.255.1"), 10250, Proto::Tcp), "other port");
    assert!(egress_allows(&policy, ip("8.8.8.8"), 53, Proto::Udp), "no `to`: any address");
    assert!(egress_allows(&policy, ip("10.1.2.3"), 443, Proto::Tcp));
    assert!(!egress_allows(&policy, ip("10.9.1.1"), 443, Proto::Tcp), "in `except`");
    assert!(!egress_allows(&policy, ip("192.168.1.1"), 80, Proto::Tcp), "a selector peer is no address");
    let ingress_only = json!({"spec": {"policyTypes": ["Ingress"]}});
    assert!(egress_allows(&ingress_only, ip("1.2.3.4"), 1, Proto::Tcp), "no Egress type: egress open");
}

/// The connections the pod's address made, from the host's conntrack table: (protocol, the address
/// and port they really went to, after kube-proxy's DNAT; the address the pod asked for).
fn pod_flows(pod_ip: &str) -> Vec<(Proto, Ipv4Addr, u16, String)> {
    let out = Command::new("conntrack").args(["-L", "-s", pod_ip]).output().expect("run conntrack");
    assert!(out.status.success(), "conntrack -L: {}", stderr(&out));
    stdout(&out)
        .lines()
        .filter_map(|l| {
            let proto = if l.starts_with("tcp") {
                Proto::Tcp
            } else if l.starts_with("udp") {
                Proto::Udp
            } else {
                return None;
            };
            // The original tuple comes first (src, dst, sport, dport), the reply tuple second: the
            // reply's source is where the connection really went.
            let field = |name: &str, nth: usize| {
                l.split_whitespace().filter_map(|w| w.strip_prefix(name)).nth(nth).map(str::to_owned)
            };
            let asked = format!("{}:{}", field("dst=", 0)?, field("dport=", 0)?);
            let ip = field("src=", 1)?.parse().ok()?;
            let port = field("sport=", 1)?.parse().ok()?;
            Some((proto, ip, port, asked))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// The organization, the examples and the audit trail

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|de| serde::Deserialize::deserialize(de).expect("valid YAML"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// examples/01–04 as a platform team applies them, pointed at the simulator (its URL instead of
/// Atlassian's, no SMTP), plus an Enforce policy without notice lead times, so the first run
/// reclaims seats and the ledger has something to keep across the upgrade.
fn example_objects(ns: &str, sim_url: &str) -> Vec<Value> {
    let mut objects = vec![];
    for file in [
        "examples/01-organization.yaml",
        "examples/02-license-mappings.yaml",
        "examples/03-protected-users.yaml",
        "examples/04-policy-dryrun.yaml",
    ] {
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
                // No SMTP server in the node: the notices go to the pod's mailbox folder, which an
                // organization must ask for explicitly (without it lead-time rules act on no one).
                spec.remove("mail");
                spec.insert("localMailbox".into(), json!(true));
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
            "schedule": {"interval": "24h"},
            "scope": {"accountTypes": ["Managed", "External"]},
            "rules": [{"name": "jira-idle-60d", "productInactivity": {"product": "JiraSoftware", "inactiveFor": "60d"},
                       "action": "RemoveLicensedGroups"}],
            "caps": {"maxActionsPerRun": 20, "maxActionPercent": 50},
        },
    }));
    objects
}

/// The policy's LifecycleRuns: name -> phase.
async fn runs(node: &Node, ns: &str, policy: &str) -> BTreeMap<String, String> {
    node.list("LifecycleRun", ns, &format!("seatwarden.io/policy={policy}"))
        .await
        .into_iter()
        .map(|r| {
            (r["metadata"]["name"].as_str().unwrap().to_owned(), r["status"]["phase"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

async fn wait_completed_run(node: &Node, ns: &str, policy: &str, not_in: &BTreeSet<String>) -> String {
    wait_for(&format!("a new Completed LifecycleRun of {policy}"), 120, || async {
        let all = runs(node, ns, policy).await;
        if let Some((name, phase)) =
            all.iter().find(|(n, p)| !not_in.contains(*n) && *p != "Completed" && !p.is_empty() && *p != "Running")
        {
            panic!("run {name} of {policy} ended {phase}");
        }
        all.into_iter().find(|(n, p)| !not_in.contains(n) && p == "Completed").map(|(n, _)| n)
    })
    .await
}

async fn run_now(node: &Node, ns: &str, policy: &str, value: &str) {
    let patch = json!({"metadata": {"annotations": {"seatwarden.io/run-now": value}}});
    node.api("LifecyclePolicy", Some(ns))
        .patch(policy, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate run-now");
}

/// The ledger as the operator keeps it: every ConfigMap shard's data, by name.
async fn ledger(node: &Node, ns: &str) -> BTreeMap<String, Value> {
    node.list("ConfigMap", ns, "app.kubernetes.io/component=ledger")
        .await
        .into_iter()
        .map(|c| (c["metadata"]["name"].as_str().unwrap().to_owned(), c["data"].clone()))
        .collect()
}

/// Account ids whose ledger record holds groups seatwarden removed.
fn accounts_with_removed_groups(ledger: &BTreeMap<String, Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for data in ledger.values() {
        for text in data.as_object().into_iter().flatten().filter_map(|(_, v)| v.as_str()) {
            let Ok(shard) = serde_json::from_str::<Value>(text) else { continue };
            for (account, record) in shard["users"].as_object().into_iter().flatten() {
                if record["removedGroups"].as_array().is_some_and(|a| !a.is_empty()) {
                    out.insert(account.clone());
                }
            }
        }
    }
    out
}

async fn metrics_via_service(node: &Node, ns: &str) -> String {
    let svc = node.get("Service", Some(ns), RELEASE).await.expect("the chart's Service");
    let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_owned();
    let port = svc["spec"]["ports"][0]["port"].as_u64().unwrap();
    let url = format!("http://{ip}:{port}/metrics");
    let http = reqwest::Client::new();
    wait_for(&format!("{url} through the Service"), 30, || async {
        let r = http.get(&url).timeout(Duration::from_secs(5)).send().await.ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    })
    .await
}

fn sample(metrics: &str, name: &str, label: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(f64::max)
}

// ---------------------------------------------------------------------------------------------------
// The end-to-end test

#[tokio::test]
#[ignore = "needs root and the real node: make e2e"]
async fn helm_install_reconcile_upgrade_and_uninstall_on_a_real_node() {
    let node = Node::connect().await;
    let t0 = Instant::now();
    let ns = "seatwarden";
    let sim = Sim::start(node.ip, &node.dir.join("logs/sim.log"));
    let sim_url = format!("http://{}:{}", node.ip, sim.port);

    // Nothing of the node listens beyond loopback and the node's own address.
    let listening = Command::new("ss").args(["-Hltnup"]).output().expect("run ss");
    let listening = stdout(&listening);
    let mut pids = vec![];
    for entry in std::fs::read_dir(&node.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pid") {
            pids.push(std::fs::read_to_string(&path).unwrap().trim().to_owned());
        }
    }
    assert!(pids.len() >= 7, "pid files of etcd, apiserver, kcm, scheduler, kubelet, kube-proxy, containerd");
    for line in listening.lines() {
        if pids.iter().any(|p| line.contains(&format!("pid={p},"))) {
            let local = line.split_whitespace().nth(4).unwrap();
            let addr = local.rsplit_once(':').unwrap().0;
            assert!(
                addr == "127.0.0.1" || addr == node.ip.to_string(),
                "a node process listens beyond loopback and the node address: {line}"
            );
        }
    }

    // The namespace and the API key Secret, as an admin makes them (the chart never creates Secrets).
    node.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})).await;
    node.create(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "atlassian-org-api-key", "namespace": ns},
        // The simulator's documented default key, not a credential.
        "stringData": {"api-key": "sim-key"},
    }))
    .await;

    // Without image.repository the install stops before anything is created, naming the value.
    let chart = support::repo_root().join("charts/seatwarden");
    let chart = chart.to_str().unwrap();
    let refused = node.helm_output(&["install", RELEASE, chart, "-n", ns]);
    assert!(!refused.status.success(), "helm install without image.repository succeeded");
    assert!(stderr(&refused).contains("repository"), "the refusal names image.repository:\n{}", stderr(&refused));
    // Helm creates crds/ before it checks the values, so the CRDs may be there already; the release
    // and its objects are not.
    assert!(node.get("Deployment", Some(ns), RELEASE).await.is_none(), "no Deployment from a refused install");
    assert!(!node.helm_output(&["status", RELEASE, "-n", ns]).status.success(), "no release from a refused install");

    // helm install: the chart as it is, CRDs included, the local image, waiting for the pod to be Ready.
    let (repo_a, tag_a) = node.image_a.rsplit_once(':').unwrap();
    let install = node.helm(&[
        "install",
        RELEASE,
        chart,
        "-n",
        ns,
        "--wait",
        "--timeout",
        "180s",
        "--set",
        &format!("image.repository={repo_a}"),
        "--set",
        &format!("image.tag={tag_a}"),
        "--set",
        "image.pullPolicy=Never",
        "--set",
        &format!("watchNamespace={ns}"),
        "--set",
        "credentialSecrets={atlassian-org-api-key}",
        "--set",
        "logFormat=text",
    ]);
    eprintln!("helm install --wait returned after {:.1} s", t0.elapsed().as_secs_f64());
    // NOTES tell the admin how to check the pod (with -n) and how to preview with plan.
    for needle in
        [&format!("kubectl -n {ns} rollout status deployment/{RELEASE}") as &str, "seatwarden plan -f", "kubectl -n"]
    {
        assert!(install.contains(needle), "NOTES lack `{needle}`:\n{install}");
    }
    for crd in
        ["atlassianorganizations", "grouplicensemappings", "protectedusers", "lifecyclepolicies", "lifecycleruns"]
    {
        let crd = node.get("CustomResourceDefinition", None, &format!("{crd}.seatwarden.io")).await;
        assert!(crd.is_some(), "helm installed the CRD {crd:?}");
    }

    let (pod, pid) = node.operator_pod(ns).await;
    let ready =
        pod["status"]["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Ready" && c["status"] == "True");
    assert!(ready, "the pod is Ready after helm --wait: {}", pod["status"]);
    let image_id_a = pod["status"]["containerStatuses"][0]["imageID"].as_str().unwrap().to_owned();

    // The security context, on the running process: the kernel's view, not the pod spec.
    let status = proc_status(pid);
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap().replace('\0', " ");
    assert!(cmdline.starts_with("/seatwarden run "), "the container runs the operator: {cmdline}");
    assert_eq!(
        status["Uid"].split_whitespace().collect::<Vec<_>>(),
        ["65532"; 4],
        "runs as 65532 (real, effective, saved, fs)"
    );
    assert_eq!(status["Gid"].split_whitespace().collect::<Vec<_>>(), ["65532"; 4], "group 65532");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status[cap], "0000000000000000", "{cap}: every capability dropped");
    }
    assert_eq!(status["NoNewPrivs"], "1", "allowPrivilegeEscalation: false");
    assert_eq!(status["Seccomp"], "2", "seccomp RuntimeDefault: a filter is in force");
    let mounts = proc_mounts(pid);
    assert!(mounts["/"].split(',').any(|o| o == "ro"), "read-only root filesystem: {}", mounts["/"]);
    assert!(mounts["/tmp"].split(',').any(|o| o == "rw"), "/tmp is the writable emptyDir: {}", mounts["/tmp"]);
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // cgroup v1 here ("N:memory:/path"); the memory limit the kernel enforces is the chart's.
    let memory =
        cgroup.lines().find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_owned())).expect("a memory cgroup");
    let limit = std::fs::read_to_string(format!("/sys/fs/cgroup/memory{memory}/memory.limit_in_bytes")).unwrap();
    assert_eq!(limit.trim(), (256u64 << 20).to_string(), "the chart's 256Mi memory limit is the cgroup's");

    // The examples against the simulator; the organization connects and the policies run.
    for doc in example_objects(ns, &sim_url) {
        node.create(&doc).await;
    }
    let dry_run = wait_completed_run(&node, ns, "report-inactive", &BTreeSet::new()).await;
    let first = wait_completed_run(&node, ns, "reclaim-jira", &BTreeSet::new()).await;
    eprintln!("first LifecycleRuns Completed ({dry_run}, {first}) {:.1} s after start", t0.elapsed().as_secs_f64());
    let org = node.get("AtlassianOrganization", Some(ns), "acme").await.unwrap();
    let connected = org["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["status"] == "True");
    assert!(connected, "the organization reports a True condition: {}", org["status"]);
    let run = node.get("LifecycleRun", Some(ns), &first).await.unwrap();
    assert!(run["status"]["applied"].as_i64().unwrap() > 0, "the Enforce run reclaimed seats: {}", run["status"]);
    let ledger_before = ledger(&node, ns).await;
    let reclaimed = accounts_with_removed_groups(&ledger_before);
    assert!(!ledger_before.is_empty(), "the ledger is in ConfigMaps");
    assert!(!reclaimed.is_empty(), "the ledger remembers the groups it removed: {ledger_before:?}");

    // On 1.20 the CRDs' CEL rules are not enforced: the API server accepts a policy with two triggers
    // in one rule, and the operator's own check marks it InvalidSpec and never runs it.
    node.create(&json!({
        "apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy",
        "metadata": {"name": "two-triggers", "namespace": ns},
        "spec": {
            "organizationRef": {"name": "acme"}, "mode": "Enforce",
            "rules": [{"name": "both", "accountInactivity": {"inactiveFor": "90d"}, "suspendedFor": {"duration": "30d"},
                       "action": "Suspend"}],
        },
    }))
    .await;
    let invalid = wait_for("the invalid policy's InvalidSpec condition", 60, || async {
        let p = node.get("LifecyclePolicy", Some(ns), "two-triggers").await?;
        p["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready" && c["reason"] == "InvalidSpec")
            .cloned()
    })
    .await;
    assert_eq!(invalid["status"], "False", "an InvalidSpec policy is not Ready: {invalid}");
    assert!(runs(&node, ns, "two-triggers").await.is_empty(), "an invalid policy never runs");

    // /metrics from the pod through its Service (ClusterIP, kube-proxy's rules).
    let endpoints = node.get("Endpoints", Some(ns), RELEASE).await.expect("the Service's endpoints");
    let pod_ip = pod["status"]["podIP"].as_str().unwrap().to_owned();
    assert_eq!(endpoints["subsets"][0]["addresses"][0]["ip"], pod_ip, "the Service points at the pod");
    // (The counter moves just after the run's status is written: scrape until it has.)
    let metrics = wait_for("seatwarden_reconcile_runs_total of reclaim-jira through the Service", 30, || async {
        let m = metrics_via_service(&node, ns).await;
        (sample(&m, "seatwarden_reconcile_runs_total", "reclaim-jira").unwrap_or(0.0) >= 1.0).then_some(m)
    })
    .await;
    assert!(
        sample(&metrics, "seatwarden_atlassian_requests_total", "").unwrap_or(0.0) > 0.0,
        "Atlassian requests are counted"
    );

    // helm upgrade to another image: a new pod from it; the ledger and the audit trail are kept, and
    // the next run remembers what the first did.
    let runs_before: BTreeSet<String> = runs(&node, ns, "reclaim-jira").await.into_keys().collect();
    let (repo_b, tag_b) = node.image_b.rsplit_once(':').unwrap();
    node.helm(&[
        "upgrade",
        RELEASE,
        chart,
        "-n",
        ns,
        "--reuse-values",
        "--wait",
        "--timeout",
        "180s",
        "--set",
        &format!("image.repository={repo_b}"),
        "--set",
        &format!("image.tag={tag_b}"),
    ]);
    let (pod_b, _) = node.operator_pod(ns).await;
    assert_ne!(pod_b["metadata"]["uid"], pod["metadata"]["uid"], "a new pod");
    let image_id_b = pod_b["status"]["containerStatuses"][0]["imageID"].as_str().unwrap();
    assert_ne!(image_id_b, image_id_a, "the new pod runs the new image");
    assert!(
        pod_b["spec"]["containers"][0]["image"].as_str().unwrap().ends_with(&format!(":{tag_b}")),
        "{}",
        pod_b["spec"]["containers"][0]["image"]
    );
    let runs_after: BTreeSet<String> = runs(&node, ns, "reclaim-jira").await.into_keys().collect();
    assert!(runs_after.is_superset(&runs_before), "the audit trail survives the upgrade");
    run_now(&node, ns, "reclaim-jira", "after-upgrade").await;
    let second = wait_completed_run(&node, ns, "reclaim-jira", &runs_after).await;
    let ledger_after = ledger(&node, ns).await;
    assert!(
        accounts_with_removed_groups(&ledger_after).is_superset(&reclaimed),
        "the ledger still remembers every group the first run removed"
    );
    let run2 = node.get("LifecycleRun", Some(ns), &second).await.unwrap();
    let again: Vec<_> = run2["spec"]["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["outcome"] == "Applied" && a["action"] == "remove-group")
        .filter(|a| reclaimed.contains(a["accountId"].as_str().unwrap_or("")))
        .collect();
    assert!(again.is_empty(), "after the upgrade no one loses the same seats twice: {again:?}");

    // The NetworkPolicy on: the pod, restarted under it, still reaches the API server (it gets Ready:
    // its caches are filled), the simulator (a run completes) and DNS.
    let api_ep = node.get("Endpoints", Some("default"), "kubernetes").await.unwrap();
    let api_ip: Ipv4Addr = api_ep["subsets"][0]["addresses"][0]["ip"].as_str().unwrap().parse().unwrap();
    let api_port = api_ep["subsets"][0]["ports"][0]["port"].as_u64().unwrap() as u16;
    let resolv =
        std::fs::read_to_string(format!("/proc/{}/root/etc/resolv.conf", node.operator_pod(ns).await.1)).unwrap();
    let dns: Ipv4Addr = resolv
        .lines()
        .find_map(|l| l.strip_prefix("nameserver "))
        .expect("the pod has a nameserver")
        .trim()
        .parse()
        .unwrap();
    let np_values = format!(
        "networkPolicy:\n  enabled: true\n  apiServer: {{cidrs: [{api_ip}/32], ports: [{api_port}]}}\n  dns:\n    to: [{{ipBlock: {{cidr: {dns}/32}}}}]\n  atlassian: {{cidrs: [{ip}/32], ports: [{port}]}}\n  smtp: {{enabled: false}}\n",
        ip = node.ip,
        port = sim.port,
    );
    let values = node.dir.join("networkpolicy-values.yaml");
    std::fs::write(&values, np_values).unwrap();
    node.helm(&[
        "upgrade",
        RELEASE,
        chart,
        "-n",
        ns,
        "--reuse-values",
        "-f",
        values.to_str().unwrap(),
        "--wait",
        "--timeout",
        "180s",
    ]);
    let policy = node.get("NetworkPolicy", Some(ns), RELEASE).await.expect("the chart's NetworkPolicy");
    let old_pod = node.operator_pod(ns).await.0;
    node.api("Pod", Some(ns))
        .delete(old_pod["metadata"]["name"].as_str().unwrap(), &Default::default())
        .await
        .expect("restart the pod under the policy");
    let (pod_np, _) = wait_for("a Ready operator pod under the NetworkPolicy", 120, || async {
        let pods = node.list("Pod", ns, &format!("app.kubernetes.io/instance={RELEASE}")).await;
        pods.into_iter()
            .find(|p| {
                p["metadata"]["uid"] != old_pod["metadata"]["uid"]
                    && p["status"]["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .map(|p| (p, ()))
    })
    .await;
    // A run under the policy: the whole organization read again from the simulator. (Nothing is
    // left to reclaim by now, and a run without actions writes no LifecycleRun: the policy's status
    // says the run happened.)
    let before_status = node.get("LifecyclePolicy", Some(ns), "reclaim-jira").await.unwrap()["status"].clone();
    let before = before_status["lastRunTime"].clone();
    // Everyone the runs without the NetworkPolicy read (the 300 simulated people but for the app
    // accounts, which are no directory users).
    let evaluated_before = before_status["lastRun"]["usersEvaluated"].clone();
    assert!(evaluated_before.as_i64().is_some_and(|n| n > 250 && n <= 300), "{before_status}");
    run_now(&node, ns, "reclaim-jira", "under-networkpolicy").await;
    let status = wait_for("the run under the NetworkPolicy", 120, || async {
        let s = node.get("LifecyclePolicy", Some(ns), "reclaim-jira").await?["status"].clone();
        (s["lastHandledRunNow"] == "under-networkpolicy" && s["lastRunTime"] != before).then_some(s)
    })
    .await;
    let ready = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(ready["status"], "True", "the run under the NetworkPolicy succeeded: {ready}");
    assert_eq!(status["lastRun"]["usersEvaluated"], evaluated_before, "it read every simulated user: {status}");
    // The bridge CNI here does not enforce NetworkPolicy, so the pod's reach proves connectivity, not
    // the policy. The policy itself is checked against what the pod really did: every connection the
    // new pod opened (the host's conntrack, after kube-proxy's DNAT) is one the stored policy admits,
    // as an enforcing CNI would judge it — and the pod did reach the API server and the simulator.
    let pod_np_ip = pod_np["status"]["podIP"].as_str().unwrap();
    let flows = pod_flows(pod_np_ip);
    assert!(flows.iter().any(|f| f.1 == api_ip && f.2 == api_port), "the pod talked to the API server: {flows:?}");
    assert!(flows.iter().any(|f| f.1 == node.ip && f.2 == sim.port), "the pod talked to the simulator: {flows:?}");
    for (proto, ip, port, asked) in &flows {
        assert!(
            egress_allows(&policy, *ip, *port, *proto),
            "the NetworkPolicy would block {proto:?} to {ip}:{port} (asked {asked})"
        );
    }
    for proto in [Proto::Udp, Proto::Tcp] {
        assert!(
            egress_allows(&policy, dns, 53, proto),
            "the NetworkPolicy admits DNS ({proto:?}) to the pod's nameserver {dns}"
        );
    }
    // The control: what the policy is for — everything else stays shut.
    assert!(!egress_allows(&policy, node.ip, 10250, Proto::Tcp), "the kubelet's port is not open to the operator");
    assert!(
        !egress_allows(&policy, "93.184.216.34".parse().unwrap(), 443, Proto::Tcp),
        "no HTTPS beyond the listed Atlassian ranges"
    );

    // helm uninstall: the operator goes, the CRDs and the custom resources stay (as Helm documents).
    node.helm(&["uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "120s"]);
    assert!(node.get("Deployment", Some(ns), RELEASE).await.is_none(), "the Deployment is gone");
    wait_for("the operator pod to go", 60, || async {
        node.list("Pod", ns, &format!("app.kubernetes.io/instance={RELEASE}")).await.is_empty().then_some(())
    })
    .await;
    for crd in
        ["atlassianorganizations", "grouplicensemappings", "protectedusers", "lifecyclepolicies", "lifecycleruns"]
    {
        assert!(
            node.get("CustomResourceDefinition", None, &format!("{crd}.seatwarden.io")).await.is_some(),
            "CRD {crd} kept"
        );
    }
    assert!(node.get("LifecyclePolicy", Some(ns), "reclaim-jira").await.is_some(), "policies kept");
    assert!(node.get("AtlassianOrganization", Some(ns), "acme").await.is_some(), "the organization kept");
    let kept: BTreeSet<String> = runs(&node, ns, "reclaim-jira").await.into_keys().collect();
    assert!(kept.is_superset(&runs_after) && kept.contains(&second), "the audit trail kept");
    assert_eq!(
        ledger(&node, ns).await.keys().collect::<Vec<_>>(),
        ledger_after.keys().collect::<Vec<_>>(),
        "the ledger kept"
    );
    eprintln!("install, reconcile, upgrade, NetworkPolicy and uninstall in {:.1} s", t0.elapsed().as_secs_f64());
    drop(sim);
}
