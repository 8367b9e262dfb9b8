//! `ModelServer` (`networking.serving.volcano.sh/v1alpha1`): a set of inference engine Pods
//! and how to talk to them, field for field as in Kthena, plus a status Kthena leaves empty.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Pods running one model on one inference engine.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "networking.serving.volcano.sh",
    version = "v1alpha1",
    kind = "ModelServer",
    doc = "ModelServer is a set of inference engine Pods serving one model, and how to reach them.",
    namespaced,
    status = "ModelServerStatus",
    shortname = "ms",
    category = "kthena",
    cel,
    derive = "PartialEq",
    printcolumn(json_path = ".spec.inferenceEngine", name = "Engine", type_ = "string"),
    printcolumn(
        json_path = ".spec.workloadPort.port",
        name = "Port",
        type_ = "integer"
    ),
    printcolumn(
        json_path = ".status.readyEndpoints",
        name = "Ready",
        type_ = "integer"
    ),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ModelServerSpec {
    /// The model the engine serves; when set, requests of non-LoRA routes carry this `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub model: Option<String>,
    /// The inference engine.
    pub inference_engine: InferenceEngine,
    /// Which Pods (in the same namespace) run the engine.
    pub workload_selector: WorkloadSelector,
    /// The engine's port on each Pod.
    pub workload_port: WorkloadPort,
    /// Timeouts and retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<TrafficPolicy>,
    /// How KV cache moves between prefill and decode Pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_connector: Option<KvConnectorSpec>,
}

/// Inference engine kind.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InferenceEngine {
    /// vLLM.
    #[serde(rename = "vLLM")]
    Vllm,
    /// SGLang.
    #[serde(rename = "SGLang")]
    Sglang,
}

/// Pod selection.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    /// Labels every selected Pod carries.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Prefill/decode disaggregation groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pd_group: Option<PdGroup>,
}

/// Prefill and decode Pods pair up when they share the value of label `groupKey`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PdGroup {
    /// Label whose value identifies a group.
    pub group_key: String,
    /// Labels of prefill Pods.
    pub prefill_labels: BTreeMap<String, String>,
    /// Labels of decode Pods.
    pub decode_labels: BTreeMap<String, String>,
}

/// The engine's port.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadPort {
    /// Port number.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// `http` (default) or `https`.
    #[serde(default)]
    pub protocol: WorkloadProtocol,
}

/// Protocol spoken by the engine.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadProtocol {
    /// Plain HTTP.
    #[default]
    Http,
    /// HTTPS.
    Https,
}

/// Timeouts and retries toward the engine.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// Wait for response headers, per attempt (Go duration, e.g. `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Retries on connect errors, 5xx and timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Send the requests of one session to the same Pod (Kthena's session sticky).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_sticky: Option<SessionSticky>,
}

/// Session stickiness: after the ModelRoute's weighted pick, a request whose session key
/// (the first non-empty source) is bound goes to the bound Pod while it is usable.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionSticky {
    /// How long a binding lasts after its last request, in seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub session_affinity_seconds: Option<i32>,
    /// Where the session key is read, in order; the first non-empty one is the key.
    #[schemars(length(min = 1, max = 16))]
    pub sources: Vec<SessionSource>,
}

/// One place a session key is read from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionSource {
    /// What `name` names.
    #[serde(rename = "type")]
    pub type_: SessionSourceType,
    /// Header (case-insensitive), query parameter, cookie (case-sensitive) or JWT claim.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// Where a session key is read.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionSourceType {
    /// A request header.
    Header,
    /// A URL query parameter.
    Query,
    /// A cookie.
    Cookie,
    /// A claim of the request's verified JWT.
    #[serde(rename = "JWTClaim")]
    JwtClaim,
}

/// Retry policy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Retries after the first attempt.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub attempts: i32,
    /// Pause before each retry (Go duration, default `100ms`).
    #[serde(default = "default_retry_interval")]
    pub retry_interval: String,
}

fn default_retry_interval() -> String {
    "100ms".to_owned()
}

/// KV cache connector.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct KvConnectorSpec {
    /// Connector kind (default `http`).
    #[serde(default, rename = "type")]
    pub type_: KvConnectorType,
}

/// KV cache connector kind.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum KvConnectorType {
    /// Plain HTTP.
    #[default]
    Http,
    /// LMCache.
    Lmcache,
    /// NIXL.
    Nixl,
    /// Mooncake.
    Mooncake,
}

/// What the router made of the server. Kthena never writes status; kthena-rs does.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelServerStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (see [`crate::conditions`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Pods that are Running, Ready and selected.
    #[serde(default)]
    pub ready_endpoints: i32,
}
