//! Shared helpers for tests that need the real kube-apiserver that `make test` starts.
#![allow(dead_code)]

use std::{path::PathBuf, time::Duration};

use k8s_openapi::{
    api::core::v1::Namespace, apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, ResourceExt,
    api::PostParams,
    runtime::wait::{await_condition, conditions},
};
use tokio::sync::OnceCell;

/// A client for the shared test API server, or None when there is none and we are not in CI.
/// With `CI` set, a missing or unreachable server fails the test instead of skipping it.
pub async fn kube_client() -> Option<Client> {
    seatwarden::tls::install_crypto_provider();
    let in_ci = std::env::var_os("CI").is_some();
    if std::env::var_os("KUBECONFIG").is_none() {
        assert!(!in_ci, "CI is set but KUBECONFIG is not: `make test` starts the API server and exports it");
        eprintln!("skipping: no KUBECONFIG (run through `make test` to start a real API server)");
        return None;
    }
    let client = match Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            assert!(!in_ci, "CI is set but no kube client could be built: {e}");
            eprintln!("skipping: no kube client: {e}");
            return None;
        }
    };
    match client.apiserver_version().await {
        Ok(_) => Some(client),
        Err(e) => {
            assert!(!in_ci, "CI is set but the API server is unreachable: {e}");
            eprintln!("skipping: API server unreachable: {e}");
            None
        }
    }
}

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Installs every CRD once per test binary (server-side apply) and waits until each is Established.
pub async fn install_crds(client: &Client) {
    CRDS.get_or_init(|| async {
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in seatwarden::crd::all_crds() {
            create_or_replace_crd(&api, crd).await;
        }
        for crd in seatwarden::crd::all_crds() {
            let name = crd.name_any();
            tokio::time::timeout(
                Duration::from_secs(30),
                await_condition(api.clone(), &name, conditions::is_crd_established()),
            )
            .await
            .unwrap_or_else(|_| panic!("CRD {name} not Established within 30 s"))
            .expect("watch CRD");
        }
    })
    .await;
}

/// Server-side apply of a CRD with CEL rules fails on the 1.20 test server ("x-kubernetes-validations:
/// field not declared in schema"), while create and replace store it and drop the rules, as 1.20
/// does with fields it doesn't know. So create, and replace when it exists.
pub async fn create_or_replace_crd(api: &Api<CustomResourceDefinition>, mut crd: CustomResourceDefinition) {
    let name = crd.name_any();
    match api.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // Tests in other binaries may replace the same CRD concurrently: read again on conflict.
            for attempt in 0.. {
                let existing = api.get(&name).await.expect("get CRD");
                crd.metadata.resource_version = existing.metadata.resource_version;
                match api.replace(&name, &PostParams::default(), &crd).await {
                    Ok(_) => break,
                    Err(kube::Error::Api(e)) if e.code == 409 && attempt < 5 => continue,
                    Err(e) => panic!("replace CRD {name}: {e}"),
                }
            }
        }
        Err(e) => panic!("create CRD {name}: {e}"),
    }
}

/// A fresh namespace for one test, so tests sharing the server don't see each other.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{}", std::process::id() as u64 * 1000 + rand::random::<u16>() as u64 % 1000);
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.expect("create namespace");
    name
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shared_dir() -> PathBuf {
    std::env::var_os("SEATWARDEN_SHARED_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("../shared"))
}
