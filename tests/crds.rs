//! The custom resources: generated CRDs match the committed `crds/`, examples parse and pass the CEL
//! rules offline, and against the real API server: every CRD is Established, every example applies
//! and reads back equal, invalid resources are refused with the field named, and status is written
//! only through the status subresource.

mod support;

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, CustomResourceExt, Resource, ResourceExt,
    api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams},
};
use seatwarden::crd::*;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// One YAML document of an example file, typed.
#[derive(Debug)]
enum Example {
    Secret(Box<Secret>),
    Organization(Box<AtlassianOrganization>),
    Mapping(Box<GroupLicenseMapping>),
    Protected(Box<ProtectedUser>),
    Policy(Box<LifecyclePolicy>),
}

fn parse_as<T: DeserializeOwned>(value: Value, file: &Path, doc: usize) -> T {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{} document {doc}: {e}", file.display()))
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(support::repo_root().join("examples"))
        .expect("examples/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

fn load_examples() -> Vec<(PathBuf, Example)> {
    let mut out = vec![];
    for file in example_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (doc, de) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let value: Value = serde::Deserialize::deserialize(de)
                .unwrap_or_else(|e| panic!("{} document {doc}: invalid YAML: {e}", file.display()));
            if value.is_null() {
                continue;
            }
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            let ex = match kind.as_str() {
                "Secret" => Example::Secret(parse_as(value, &file, doc)),
                "AtlassianOrganization" => Example::Organization(parse_as(value, &file, doc)),
                "GroupLicenseMapping" => Example::Mapping(parse_as(value, &file, doc)),
                "ProtectedUser" => Example::Protected(parse_as(value, &file, doc)),
                "LifecyclePolicy" => Example::Policy(parse_as(value, &file, doc)),
                other => panic!("{} document {doc}: unexpected kind {other:?}", file.display()),
            };
            out.push((file.clone(), ex));
        }
    }
    out
}

#[test]
fn committed_crds_match_generated() {
    let committed = std::fs::read_to_string(support::repo_root().join("crds/seatwarden.yaml"))
        .expect("crds/seatwarden.yaml is committed");
    assert!(
        committed == crds_yaml(),
        "crds/seatwarden.yaml differs from `seatwarden crd`: run `make crds` (it also refreshes the chart's copy) and commit the result"
    );
}

#[test]
fn crds_have_what_kubectl_users_need() {
    for crd in all_crds() {
        let name = crd.name_any();
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&["seatwarden".to_owned()][..]), "{name} category");
        assert!(crd.spec.names.short_names.as_ref().is_some_and(|s| !s.is_empty()), "{name} short name");
        let v = &crd.spec.versions[0];
        assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "{name} status subresource");
        assert!(v.additional_printer_columns.as_ref().is_some_and(|c| c.len() >= 3), "{name} printer columns");
        let schema = serde_json::to_string(&v.schema).unwrap();
        assert!(!schema.contains("uint"), "{name}: unsigned integer formats are not allowed");
    }
    let policy = serde_json::to_string(&LifecyclePolicy::crd()).unwrap();
    for col in ["Mode", "Ready", "Last Run", "Reclaimed"] {
        assert!(policy.contains(&format!("\"name\":\"{col}\"")), "LifecyclePolicy lacks column {col}");
    }
    let org = serde_json::to_string(&AtlassianOrganization::crd()).unwrap();
    for col in ["Connected", "Users"] {
        assert!(org.contains(&format!("\"name\":\"{col}\"")), "AtlassianOrganization lacks column {col}");
    }
}

#[test]
fn every_example_parses_and_passes_cel_rules() {
    let examples = load_examples();
    let count = |f: fn(&Example) -> bool| examples.iter().filter(|(_, e)| f(e)).count();
    assert_eq!(count(|e| matches!(e, Example::Organization(_))), 1);
    assert!(count(|e| matches!(e, Example::Mapping(_))) >= 4, "mappings for Jira, Confluence, JSM, Bitbucket");
    assert!(count(|e| matches!(e, Example::Protected(_))) >= 2);
    assert!(count(|e| matches!(e, Example::Policy(_))) >= 2);
    let mut modes = vec![];
    for (file, ex) in &examples {
        let res = match ex {
            Example::Secret(_) => Ok(()),
            Example::Organization(o) => o.validate_cel(),
            Example::Mapping(m) => m.validate_cel(),
            Example::Protected(p) => p.validate_cel(),
            Example::Policy(p) => {
                modes.push(p.spec.mode);
                p.validate_cel()
            }
        };
        res.unwrap_or_else(|e| panic!("{} fails its CEL rules: {e:?}", file.display()));
    }
    assert!(modes.contains(&PolicyMode::DryRun) && modes.contains(&PolicyMode::Enforce));
    // The examples show a protection with an expiry and an Enforce rule without lead times.
    assert!(examples.iter().any(|(_, e)| matches!(e, Example::Protected(p) if p.spec.expires_at.is_some())));
    assert!(examples.iter().any(|(_, e)| matches!(e, Example::Policy(p)
        if p.spec.mode == PolicyMode::Enforce && p.spec.rules.iter().any(|r| r.notice_lead_times.is_empty()))));
}

fn policy_from(spec: Value) -> LifecyclePolicy {
    serde_json::from_value(json!({
        "apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy",
        "metadata": {"name": "p", "namespace": "n"},
        "spec": spec
    }))
    .expect("typed policy")
}

#[test]
fn cel_rules_refuse_what_spans_fields() {
    let ok = policy_from(json!({"organizationRef": {"name": "o"}, "rules": [
        {"name": "a", "accountInactivity": {"inactiveFor": "90d"}, "action": "Suspend"},
        {"name": "b", "productInactivity": {"product": "Confluence", "inactiveFor": "60d"}, "action": "RemoveLicensedGroups"},
        {"name": "c", "suspendedFor": {"duration": "30d"}, "action": "Deactivate"}
    ]}));
    ok.validate_cel().expect("a valid policy passes");

    let cases = [
        (
            json!({"name": "x", "accountInactivity": {"inactiveFor": "90d"}, "neverActive": {"addedFor": "30d"}, "action": "Suspend"}),
            "exactly one trigger",
        ),
        (json!({"name": "x", "action": "Suspend"}), "exactly one trigger"),
        (
            json!({"name": "x", "productInactivity": {"product": "Confluence", "inactiveFor": "60d"}, "action": "Suspend"}),
            "RemoveLicensedGroups",
        ),
        (
            json!({"name": "x", "accountInactivity": {"inactiveFor": "60d"}, "action": "RemoveLicensedGroups"}),
            "RemoveLicensedGroups",
        ),
        (json!({"name": "x", "suspendedFor": {"duration": "60d"}, "action": "Suspend"}), "escalation"),
    ];
    for (rule, expected) in cases {
        let p = policy_from(json!({"organizationRef": {"name": "o"}, "rules": [rule.clone()]}));
        let err = p.validate_cel().expect_err(&format!("rule {rule} must be refused"));
        assert!(format!("{err:?}").contains(expected), "rule {rule}: error {err:?} should mention {expected:?}");
    }

    let protected: ProtectedUser = serde_json::from_value(json!({
        "apiVersion": "seatwarden.io/v1alpha1", "kind": "ProtectedUser",
        "metadata": {"name": "p"}, "spec": {"reason": "nobody named"}
    }))
    .unwrap();
    let err = protected.validate_cel().expect_err("a protection naming nobody is refused");
    assert!(format!("{err:?}").contains("at least one"));

    let mapping: GroupLicenseMapping = serde_json::from_value(json!({
        "apiVersion": "seatwarden.io/v1alpha1", "kind": "GroupLicenseMapping",
        "metadata": {"name": "m"}, "spec": {"organizationRef": {"name": "o"}, "product": "Confluence", "groups": [{}]}
    }))
    .unwrap();
    let err = mapping.validate_cel().expect_err("a group with neither name nor id is refused");
    assert!(format!("{err:?}").contains("name or an id"));
}

// ---- against the real API server ----

fn with_namespace<K: Resource + serde::Serialize + DeserializeOwned>(obj: &K, ns: &str) -> K {
    let mut v = serde_json::to_value(obj).unwrap();
    v["metadata"]["namespace"] = json!(ns);
    serde_json::from_value(v).unwrap()
}

async fn apply_and_read_back<K>(client: &kube::Client, ns: &str, obj: &K) -> (Value, Value)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let obj = with_namespace(obj, ns);
    let applied = api
        .patch(&obj.name_any(), &PatchParams::apply("seatwarden-tests"), &Patch::Apply(&obj))
        .await
        .unwrap_or_else(|e| panic!("{} applies: {e}", obj.name_any()));
    let read = api.get(&applied.name_any()).await.unwrap();
    (serde_json::to_value(&obj).unwrap()["spec"].clone(), serde_json::to_value(&read).unwrap()["spec"].clone())
}

#[tokio::test]
async fn crds_install_and_examples_apply_and_read_back_equal() {
    let Some(client) = support::kube_client().await else { return };
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "examples").await;
    for (file, ex) in load_examples() {
        let (sent, read) = match &ex {
            Example::Secret(s) => {
                let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
                let s = with_namespace(s.as_ref(), &ns);
                api.patch(&s.name_any(), &PatchParams::apply("seatwarden-tests"), &Patch::Apply(&s)).await.unwrap();
                continue;
            }
            Example::Organization(o) => apply_and_read_back(&client, &ns, o.as_ref()).await,
            Example::Mapping(m) => apply_and_read_back(&client, &ns, m.as_ref()).await,
            Example::Protected(p) => apply_and_read_back(&client, &ns, p.as_ref()).await,
            Example::Policy(p) => apply_and_read_back(&client, &ns, p.as_ref()).await,
        };
        // The server adds schema defaults; everything we sent must come back unchanged.
        assert_json_subset(&sent, &read, &file.display().to_string());
    }
}

/// Every field of `sent` is present and equal in `read` (the server may add defaults).
fn assert_json_subset(sent: &Value, read: &Value, ctx: &str) {
    match (sent, read) {
        (Value::Object(s), Value::Object(r)) => {
            for (k, v) in s {
                let rv = r.get(k).unwrap_or_else(|| panic!("{ctx}: field {k} lost on the server"));
                assert_json_subset(v, rv, &format!("{ctx}.{k}"));
            }
        }
        (Value::Array(s), Value::Array(r)) => {
            assert_eq!(s.len(), r.len(), "{ctx}: list length changed");
            for (i, (a, b)) in s.iter().zip(r).enumerate() {
                assert_json_subset(a, b, &format!("{ctx}[{i}]"));
            }
        }
        (Value::Number(a), Value::Number(b)) => assert_eq!(a.as_f64(), b.as_f64(), "{ctx}"),
        _ => assert_eq!(sent, read, "{ctx}"),
    }
}

#[tokio::test]
async fn invalid_resources_are_refused_with_the_field_named() {
    let Some(client) = support::kube_client().await else { return };
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "invalid").await;
    let ar = ApiResource::erase::<LifecyclePolicy>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
    let base = json!({"organizationRef": {"name": "acme"}, "rules": [
        {"name": "r", "accountInactivity": {"inactiveFor": "90d"}, "action": "Suspend"}
    ]});
    let mut cases: Vec<(&str, Value, &str)> = vec![];
    let mut bad_enum = base.clone();
    bad_enum["mode"] = json!("Sometimes");
    cases.push(("bad enum", bad_enum, "spec.mode"));
    let mut negative = base.clone();
    negative["caps"] = json!({"maxActionsPerRun": -1});
    cases.push(("negative number", negative, "spec.caps.maxActionsPerRun"));
    let mut negative_days = base.clone();
    negative_days["rules"][0]["accountInactivity"]["inactiveFor"] = json!("-30d");
    cases.push(("negative number of days", negative_days, "spec.rules[0].accountInactivity.inactiveFor"));
    let mut malformed = base.clone();
    malformed["rules"][0]["accountInactivity"]["inactiveFor"] = json!("90 days");
    cases.push(("malformed duration", malformed, "spec.rules[0].accountInactivity.inactiveFor"));
    // Spans counted in days refuse minutes (ambiguous) and hours (below a day).
    let mut minutes = base.clone();
    minutes["rules"][0]["accountInactivity"]["inactiveFor"] = json!("6m");
    cases.push(("m in an inactivity threshold", minutes, "spec.rules[0].accountInactivity.inactiveFor"));
    let mut hours = base.clone();
    hours["rules"][0]["noticeLeadTimes"] = json!(["36h"]);
    cases.push(("hours in a lead time", hours, "spec.rules[0].noticeLeadTimes"));
    let mut grace = base.clone();
    grace["newAccountGracePeriod"] = json!("30m");
    cases.push(("minutes in the grace period", grace, "spec.newAccountGracePeriod"));
    let mut zone = base.clone();
    zone["schedule"] = json!({"window": {"start": "08:00", "end": "18:00", "timeZone": "Berlin time"}});
    cases.push(("a time zone that is no IANA name", zone, "spec.schedule.window.timeZone"));
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("organizationRef");
    cases.push(("missing required field", missing, "spec.organizationRef"));
    let mut percent = base.clone();
    percent["caps"] = json!({"maxActionPercent": 150});
    cases.push(("out of range", percent, "spec.caps.maxActionPercent"));

    for (i, (what, spec, field)) in cases.into_iter().enumerate() {
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy",
            "metadata": {"name": format!("bad-{i}")}, "spec": spec
        }))
        .unwrap();
        let err = api.create(&PostParams::default(), &obj).await.expect_err(&format!("{what} must be refused"));
        // 1.20 names list items without their index (`spec.rules.x`), newer servers with it.
        let msg = strip_indices(&err.to_string());
        let field = strip_indices(field);
        assert!(msg.contains(&field), "{what}: the server's error should name {field}: {msg}");
    }
}

fn strip_indices(s: &str) -> String {
    let re = regex::Regex::new(r"\[[0-9]+\]").unwrap();
    re.replace_all(s, "").into_owned()
}

#[tokio::test]
async fn status_is_written_only_through_the_status_subresource() {
    let Some(client) = support::kube_client().await else { return };
    support::install_crds(&client).await;
    let ns = support::namespace(&client, "status").await;
    let api: Api<LifecyclePolicy> = Api::namespaced(client.clone(), &ns);
    let mut p = policy_from(json!({"organizationRef": {"name": "acme"}}));
    p.metadata.namespace = Some(ns.clone());
    p.status = Some(LifecyclePolicyStatus { seats_reclaimed: Some(99), ..Default::default() });
    let created = api.create(&PostParams::default(), &p).await.unwrap();
    assert!(
        created.status.is_none() || created.status.as_ref().unwrap().seats_reclaimed.is_none(),
        "status on create is dropped"
    );

    // A status sent to the main resource is ignored ...
    let pp = PatchParams::apply("seatwarden-tests").force();
    let patch = json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy",
        "spec": {"organizationRef": {"name": "acme"}}, "status": {"seatsReclaimed": 7}});
    let after = api.patch("p", &pp, &Patch::Apply(&patch)).await.unwrap();
    assert!(after.status.and_then(|s| s.seats_reclaimed).is_none(), "status via the main resource must be ignored");

    // ... the status subresource writes it, and a spec sent there is ignored.
    let patch = json!({"apiVersion": "seatwarden.io/v1alpha1", "kind": "LifecyclePolicy",
        "spec": {"organizationRef": {"name": "elsewhere"}}, "status": {"seatsReclaimed": 7}});
    let after =
        api.patch_status("p", &PatchParams::apply("seatwarden-status").force(), &Patch::Apply(&patch)).await.unwrap();
    assert_eq!(after.status.and_then(|s| s.seats_reclaimed), Some(7));
    assert_eq!(after.spec.organization_ref.name, "acme", "spec via /status must be ignored");
}
