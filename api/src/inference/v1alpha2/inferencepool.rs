//! InferencePool `inference.networking.x-k8s.io/v1alpha2` (Inference Extension v0.5.1): the
//! pre-GA pool, a label map of model server Pods on one port, fronted by an extension.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of a v1alpha2 InferencePool: which Pods serve, on which port, and which extension
/// picks among them.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inference.networking.x-k8s.io",
    version = "v1alpha2",
    kind = "InferencePool",
    namespaced,
    status = "InferencePoolStatus",
    derive = "PartialEq",
    doc = "InferencePool is the Schema for the InferencePools API."
)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolSpec {
    /// Labels of the model server Pods in the pool, matched in the pool's namespace only;
    /// a plain map as in a Service selector.
    pub selector: BTreeMap<String, String>,
    /// Port number of the selected model servers, 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub target_port_number: i32,
    /// The endpoint picker, configured as an extension service.
    pub extension_ref: ExtensionRef,
}

/// Reference to the endpoint picker extension (usually a Service) and how to connect to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionRef {
    /// API group of the referent; `""` (the core group) when unspecified.
    #[serde(default)]
    #[schemars(length(max = 253))]
    pub group: String,
    /// Kind of the referent; `Service` when unspecified. ExternalName Services are not
    /// supported.
    #[serde(default = "default_service_kind")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    /// Name of the referent.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Port of the extension service; implementations infer 9002 for a Service when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port_number: Option<i32>,
    /// What the gateway does when the extension does not respond; `FailClose` when
    /// unspecified.
    #[serde(default)]
    pub failure_mode: FailureMode,
}

/// How a gateway handles a non-responsive extension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum FailureMode {
    /// Route to any pool endpoint without the extension's choice.
    FailOpen,
    /// Reject the request, the default.
    #[default]
    FailClose,
}

/// Observed state of a v1alpha2 InferencePool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InferencePoolStatus {
    /// Parents (usually Gateways) of the pool and the pool's status for each; at most 32.
    /// An entry `kind: Status, name: default` means no Gateway is associated. Upstream's JSON
    /// name is the singular `parent`.
    #[serde(rename = "parent", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub parents: Option<Vec<PoolStatus>>,
}

/// Observed state of a v1alpha2 InferencePool from one Gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatus {
    /// The Gateway this entry is about.
    pub parent_ref: ParentGatewayReference,
    /// Conditions of the pool for this Gateway; known types are `Accepted` and
    /// `ResolvedRefs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8))]
    pub conditions: Option<Vec<Condition>>,
}

/// Reference to the Gateway that observed an InferencePool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParentGatewayReference {
    /// API group of the referent; `gateway.networking.k8s.io` when unspecified.
    #[serde(default = "default_gateway_group")]
    #[schemars(length(max = 253))]
    pub group: String,
    /// Kind of the referent; `Gateway` when unspecified.
    #[serde(default = "default_gateway_kind")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    /// Name of the referent.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the referent; the referring object's namespace when unspecified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

fn default_service_kind() -> String {
    "Service".to_owned()
}

fn default_gateway_group() -> String {
    "gateway.networking.k8s.io".to_owned()
}

fn default_gateway_kind() -> String {
    "Gateway".to_owned()
}
