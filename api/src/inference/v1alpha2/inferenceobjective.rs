//! InferenceObjective `inference.networking.x-k8s.io/v1alpha2` (Inference Extension v1.5.0):
//! the serving priority of requests that name it, within one InferencePool.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of an InferenceObjective: the pool it applies to and the priority of its requests.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inference.networking.x-k8s.io",
    version = "v1alpha2",
    kind = "InferenceObjective",
    namespaced,
    status = "InferenceObjectiveStatus",
    derive = "PartialEq",
    doc = "InferenceObjective is the Schema for the InferenceObjectives API.",
    printcolumn(
        name = "Inference Pool",
        type_ = "string",
        json_path = ".spec.poolRef.name"
    ),
    printcolumn(name = "Priority", type_ = "string", json_path = ".spec.priority"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct InferenceObjectiveSpec {
    /// Priority of the requests against others of the same pool; higher is served first,
    /// negative values are allowed, consumers treat unset as 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// The InferencePool this objective applies to, in the same namespace.
    pub pool_ref: PoolObjectReference,
}

/// Reference to the InferencePool an InferenceObjective applies to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolObjectReference {
    /// API group of the pool; `inference.networking.k8s.io` (the v1 pool) when unspecified.
    #[serde(default = "default_pool_group")]
    #[schemars(length(max = 253))]
    pub group: String,
    /// Kind of the pool; `InferencePool` when unspecified.
    #[serde(default = "default_pool_kind")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    /// Name of the pool.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Observed state of an InferenceObjective.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InferenceObjectiveStatus {
    /// Conditions of the InferenceObjective; the known type is `Accepted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8))]
    pub conditions: Option<Vec<Condition>>,
}

fn default_pool_group() -> String {
    "inference.networking.k8s.io".to_owned()
}

fn default_pool_kind() -> String {
    "InferencePool".to_owned()
}
