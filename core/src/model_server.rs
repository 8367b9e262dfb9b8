//! The model server model: a ModelServer as the router uses it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::ObjectRef;

/// Wait for response headers when `trafficPolicy.timeout` is not set. Kthena waits forever
/// (its issue #1498); a stalled engine must not hold a client for ever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between retries when `retry.retryInterval` is not set (Kthena's CRD default).
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// A ModelServer, converted and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelServer {
    /// The ModelServer object.
    pub id: ObjectRef,
    /// `spec.model`: when set, requests of non-LoRA routes carry this model upstream.
    pub model: Option<String>,
    /// `spec.inferenceEngine`.
    pub engine: Engine,
    /// `spec.workloadSelector.matchLabels`: Pods in the same namespace with these labels.
    pub match_labels: BTreeMap<String, String>,
    /// `spec.workloadSelector.pdGroup`: prefill/decode disaggregation.
    pub pd_group: Option<PdGroup>,
    /// `spec.workloadPort.port`.
    pub port: u16,
    /// `spec.workloadPort.protocol`.
    pub protocol: Protocol,
    /// `spec.trafficPolicy.timeout`: wait for response headers, per attempt.
    pub timeout: Duration,
    /// `spec.trafficPolicy.retry`.
    pub retry: RetryPolicy,
    /// `spec.kvConnector.type`.
    pub kv_connector: Option<KvConnector>,
    /// `spec.trafficPolicy.sessionSticky`.
    pub session_sticky: Option<SessionSticky>,
}

/// `spec.trafficPolicy.sessionSticky`: which Pod a session's requests go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSticky {
    /// How long a binding lasts after its last request.
    pub affinity: Duration,
    /// Where the session key is read, in order.
    pub sources: Vec<SessionSource>,
}

/// A place a session key is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSource {
    /// A request header (case-insensitive name).
    Header(String),
    /// A URL query parameter.
    Query(String),
    /// A cookie (case-sensitive name).
    Cookie(String),
    /// A claim of the request's verified JWT.
    JwtClaim(String),
}

/// Session bindings last this long after their last request unless set.
pub const DEFAULT_SESSION_AFFINITY: Duration = Duration::from_secs(300);

/// At most this many session key sources.
pub const MAX_SESSION_SOURCES: usize = 16;

impl ModelServer {
    /// True when a Pod with `labels` in `namespace` is a workload of this server.
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        namespace == self.id.namespace
            && self
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// `spec.inferenceEngine`: decides the metrics names scraped and the PD connector default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// vLLM.
    Vllm,
    /// SGLang.
    Sglang,
}

/// How the router talks to a backend's Pods: ModelServer `spec.workloadPort.protocol`
/// (`http`, `https`), InferencePool `spec.appProtocol` and Service `ports[].appProtocol`
/// (`kubernetes.io/h2c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// HTTP/1.1 over plain TCP (default).
    #[default]
    Http,
    /// HTTP over TLS (HTTP/1.1, or HTTP/2 when the Pod offers it by ALPN).
    Https,
    /// HTTP/2 over plain TCP with prior knowledge (`kubernetes.io/h2c`).
    H2c,
}

impl Protocol {
    /// The protocol of a Kubernetes `appProtocol` (a Service port): unset or `http` is
    /// HTTP/1.1, `kubernetes.io/h2c` is h2c; `None` for any other (`kubernetes.io/ws`,
    /// `grpc`, ...), which this router cannot speak, so the backend is not resolved
    /// (`UnsupportedProtocol`, as the Gateway API asks).
    pub fn from_app_protocol(app_protocol: Option<&str>) -> Option<Self> {
        match app_protocol {
            None | Some("http" | "HTTP") => Some(Self::Http),
            Some("kubernetes.io/h2c") => Some(Self::H2c),
            Some(_) => None,
        }
    }
}

/// `spec.trafficPolicy.retry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retries.
    pub attempts: u32,
    /// Pause before each retry.
    pub interval: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 0,
            interval: DEFAULT_RETRY_INTERVAL,
        }
    }
}

/// `spec.workloadSelector.pdGroup`: prefill and decode Pods pair up by the value of `group_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdGroup {
    /// Label whose value groups a prefill Pod with decode Pods.
    pub group_key: String,
    /// Labels of prefill Pods.
    pub prefill_labels: BTreeMap<String, String>,
    /// Labels of decode Pods.
    pub decode_labels: BTreeMap<String, String>,
}

/// `spec.kvConnector.type`: how KV cache moves from prefill to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvConnector {
    /// Plain HTTP (prefill with max_tokens 1, then decode).
    Http,
    /// LMCache.
    Lmcache,
    /// NIXL.
    Nixl,
    /// Mooncake.
    Mooncake,
}
