//! InferenceModel `inference.networking.x-k8s.io/v1alpha2` (Inference Extension v0.5.1): a
//! model name served by an InferencePool, with its criticality and weighted target models.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of an InferenceModel: the public model name, the pool serving it, and how requests
/// split over the models (or LoRA adapters) registered in the model servers.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inference.networking.x-k8s.io",
    version = "v1alpha2",
    kind = "InferenceModel",
    namespaced,
    status = "InferenceModelStatus",
    derive = "PartialEq",
    doc = "InferenceModel is the Schema for the InferenceModels API.",
    printcolumn(name = "Model Name", type_ = "string", json_path = ".spec.modelName"),
    printcolumn(
        name = "Inference Pool",
        type_ = "string",
        json_path = ".spec.poolRef.name"
    ),
    printcolumn(
        name = "Criticality",
        type_ = "string",
        json_path = ".spec.criticality"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct InferenceModelSpec {
    /// Model name as set in the `model` parameter of incoming requests; unique per pool
    /// (the oldest InferenceModel wins) and immutable.
    #[schemars(length(max = 256))]
    pub model_name: String,
    /// Importance relative to other models of the same pool under resource pressure; no
    /// default, consumers treat unset as [`Criticality::Standard`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,
    /// Versions of the model for traffic splitting; when unset the target is `modelName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub target_models: Option<Vec<TargetModel>>,
    /// The InferencePool serving this model, in the same namespace.
    pub pool_ref: PoolObjectReference,
}

/// How important it is to serve a model compared to other models of the same pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Criticality {
    /// Served first; queued rather than shed.
    Critical,
    /// The default class when unset.
    Standard,
    /// First to be dropped under pressure.
    Sheddable,
}

/// A deployed model or LoRA adapter, as registered in the model server, with its share of
/// traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetModel {
    /// Name of the adapter or base model, as the model server knows it.
    #[schemars(length(max = 253))]
    pub name: String,
    /// Proportional weight, `weight / sum(weights)`, 1 to 1000000; set on all target models
    /// or on none (then traffic splits evenly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub weight: Option<i32>,
}

/// Reference to the InferencePool serving an InferenceModel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolObjectReference {
    /// API group of the pool; `inference.networking.x-k8s.io` when unspecified.
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

/// Observed state of an InferenceModel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InferenceModelStatus {
    /// Conditions of the InferenceModel; the known type is `Accepted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8))]
    pub conditions: Option<Vec<Condition>>,
}

fn default_pool_group() -> String {
    "inference.networking.x-k8s.io".to_owned()
}

fn default_pool_kind() -> String {
    "InferencePool".to_owned()
}
