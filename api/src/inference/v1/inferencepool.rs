//! InferencePool `inference.networking.k8s.io/v1`: a set of model server Pods fronted by an
//! Endpoint Picker (EPP) extension.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Spec of an InferencePool: which Pods serve, on which ports, and which Endpoint Picker
/// chooses among them.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "inference.networking.k8s.io",
    version = "v1",
    kind = "InferencePool",
    namespaced,
    status = "InferencePoolStatus",
    shortname = "infpool",
    derive = "PartialEq",
    doc = "InferencePool is the Schema for the InferencePools API."
)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolSpec {
    /// Which Pods are members of this pool, by label, within the pool's namespace only.
    pub selector: LabelSelector,
    /// Ports exposed by the pool; every `podIP:number` is a distinct endpoint for the EPP.
    #[schemars(length(min = 1, max = 8))]
    pub target_ports: Vec<Port>,
    /// Application protocol of all target ports; HTTP/1.1 when unspecified.
    #[serde(default)]
    pub app_protocol: AppProtocol,
    /// The Endpoint Picker extension and its associated configuration. Optional (as in the
    /// Inference Extension from v1.6.0): without one the router picks endpoints itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_picker_ref: Option<EndpointPickerRef>,
}

/// A label selector restricted to `matchLabels`, so it maps onto a Service selector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Required `{key, value}` pairs; a Pod must carry every one of them (AND).
    pub match_labels: BTreeMap<String, String>,
}

/// A network port of the selected model server Pods or of the Endpoint Picker service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Port {
    /// Port number, 1 to 65535.
    #[schemars(range(min = 1, max = 65535))]
    pub number: i32,
}

/// Application protocol spoken on an InferencePool's target ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AppProtocol {
    /// `http`: HTTP/1.1, the default.
    #[default]
    #[serde(rename = "http")]
    Http,
    /// `kubernetes.io/h2c`: HTTP/2 over cleartext.
    #[serde(rename = "kubernetes.io/h2c")]
    H2c,
}

/// Reference to the Endpoint Picker extension (usually a Service).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPickerRef {
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
    /// Port of the Endpoint Picker service (the Service port, not the target port); required
    /// when the referent is a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// What the parent does when the Endpoint Picker does not respond; `FailClose` when
    /// unspecified.
    #[serde(default)]
    pub failure_mode: FailureMode,
}

/// How a parent handles a non-responsive Endpoint Picker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum FailureMode {
    /// Route to any pool endpoint without the picker's choice.
    FailOpen,
    /// Reject the request, the default.
    #[default]
    FailClose,
}

/// Observed state of an InferencePool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolStatus {
    /// Parents (typically Gateways) associated with the pool, and the pool's status with
    /// respect to each; at most 32. Empty means no parent is associated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub parents: Option<Vec<ParentStatus>>,
}

/// Observed state of an InferencePool from one parent, i.e. a Gateway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParentStatus {
    /// Conditions of the pool for this parent; supported types are `Accepted` and
    /// `ResolvedRefs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8))]
    pub conditions: Option<Vec<Condition>>,
    /// Controller that wrote this entry, `DOMAIN/PATH` as in GatewayClass `controllerName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_name: Option<String>,
    /// The parent resource this entry is about.
    pub parent_ref: ParentReference,
}

/// Reference to a parent of an InferencePool, a Gateway unless told otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// API group of the parent; `gateway.networking.k8s.io` when unspecified.
    #[serde(default = "default_gateway_group")]
    #[schemars(length(max = 253))]
    pub group: String,
    /// Kind of the parent; `Gateway` when unspecified.
    #[serde(default = "default_gateway_kind")]
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    /// Name of the parent.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the parent; the pool's own namespace when unspecified.
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
