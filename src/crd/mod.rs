//! The custom resources of group `seatwarden.io`, version `v1alpha1`.
//!
//! `AtlassianOrganization` (the connection), `GroupLicenseMapping` (which groups are billable seats),
//! `ProtectedUser` (who is never touched), `LifecyclePolicy` (what to do) and `LifecycleRun` (the
//! audit trail). `seatwarden crd` prints them; `crds/` holds the committed copy.

pub mod condition;
pub mod duration;
// kube's printcolumn(...) repeats `type_ =`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
mod mapping;
#[allow(clippy::duplicated_attributes)]
mod organization;
#[allow(clippy::duplicated_attributes)]
mod policy;
#[allow(clippy::duplicated_attributes)]
mod protected;
#[allow(clippy::duplicated_attributes)]
mod run;

use kube::{CustomResourceExt, core::crd::merge_crds};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use condition::{ConditionStatus, set_condition};
pub use duration::Duration;
pub use mapping::*;
pub use organization::*;
pub use policy::*;
pub use protected::*;
pub use run::*;

pub const GROUP: &str = "seatwarden.io";
pub const VERSION: &str = "v1alpha1";
pub const CATEGORY: &str = "seatwarden";

/// A reference to another seatwarden object in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalRef {
    /// Name of the object, in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key of a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// Secret name, in the object's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Every CRD, in a stable order.
pub fn all_crds() -> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> {
    [
        AtlassianOrganization::crd(),
        GroupLicenseMapping::crd(),
        ProtectedUser::crd(),
        LifecyclePolicy::crd(),
        LifecycleRun::crd(),
    ]
    .into_iter()
    .map(without_null_enum_values)
    .collect()
}

/// An optional enum derives `enum: [A, B, null]`. `nullable: true` already admits null, and older
/// API servers (1.20) mis-decode a CRD whose enum lists null, so the null is dropped.
fn without_null_enum_values(
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                    values.retain(|x| !x.is_null());
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(&crd).expect("CRD serializes");
    walk(&mut value);
    serde_json::from_value(value).expect("CRD deserializes")
}

/// All CRDs as one YAML stream, as `seatwarden crd` prints and `crds/` holds.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in all_crds() {
        // merge_crds of a single version is a no-op check that the CRD is well-formed.
        let crd = merge_crds(vec![crd], VERSION).expect("a single-version CRD always merges");
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd).expect("CRDs serialize to YAML"));
    }
    out
}

/// The file name each CRD has under `crds/`.
pub fn crd_file_name(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}
