use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{LocalRef, condition::conditions_schema};
use crate::product::Product;

/// Which groups grant billable access to one product (on one site): the groups a per-product
/// inactivity rule takes people out of, and whose members are counted as seats.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "seatwarden.io",
    version = "v1alpha1",
    kind = "GroupLicenseMapping",
    namespaced,
    cel,
    status = "GroupLicenseMappingStatus",
    shortname = "glm",
    category = "seatwarden",
    printcolumn(name = "Product", type_ = "string", json_path = ".spec.product"),
    printcolumn(name = "Groups", type_ = "integer", json_path = ".status.resolvedGroupCount"),
    printcolumn(name = "Seats", type_ = "integer", json_path = ".status.seatsInUse"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct GroupLicenseMappingSpec {
    /// The AtlassianOrganization these groups belong to.
    pub organization_ref: LocalRef,
    /// The product these groups grant.
    pub product: Product,
    /// Site name (from the organization's `sites`), when the product runs on several sites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The licensed groups, by name or id, each optionally pinned to one directory.
    #[schemars(length(min = 1, max = 200))]
    pub groups: Vec<GroupRef>,
    /// Overrides the organization's seat price for this product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 100000.0))]
    pub seat_price: Option<f64>,
}

/// A group named by id (stable) or name (readable). Names are resolved to ids on each run.
///
/// A name (or id) can exist in several directories. Without `directory`, such a reference is taken
/// for all of them only when Atlassian says every one grants the mapping's product; otherwise it is
/// ambiguous, resolves to no group, and the mapping's Ready condition says so (AmbiguousGroup).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{"rule": "has(self.name) || has(self.id)", "message": "a group needs a name or an id"}]))]
pub struct GroupRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub id: Option<String>,
    /// The directory (an id, as in the organization's `spec.directories`) whose group this is:
    /// the reference resolves to that directory's group only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub directory: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupLicenseMappingStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_groups: Vec<ResolvedGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_group_count: Option<i32>,
    /// Distinct users holding this product through these groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats_in_use: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedGroup {
    pub id: String,
    pub name: String,
    /// The directory the group is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    pub members: i64,
    /// Synced from an identity provider: seatwarden reports, never modifies, it.
    pub idp_synced: bool,
}
