//! What this router wants the `status` of one object to be: the input of [`crate::merge`] and of
//! the [`crate::status_writer::StatusWriter`]. Pure data, no I/O.

use kube::discovery::ApiResource;
use serde_json::Value;

/// Which object a status belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusTarget {
    /// Group, version, kind and plural of the object (the plural builds the URL).
    pub api: ApiResource,
    /// Namespace of the object; `None` for a cluster-scoped kind (GatewayClass).
    pub namespace: Option<String>,
    /// Name of the object.
    pub name: String,
}

impl std::fmt::Display for StatusTarget {
    /// `Kind ns/name`, or `Kind name` when cluster-scoped: for log lines.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.api.kind, ns, self.name),
            None => write!(f, "{} {}", self.api.kind, self.name),
        }
    }
}

/// What this router computed for one object.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredStatus {
    /// The object the status is for.
    pub target: StatusTarget,
    /// `metadata.generation` the status was computed from (`None` = unknown: never stale).
    pub generation: Option<i64>,
    /// The status in the object's own JSON shape (camelCase, as stored by the API server).
    ///
    /// Conditions come WITHOUT `lastTransitionTime` (the merge sets it) but WITH
    /// `observedGeneration`. Example for a Gateway:
    ///
    /// ```json
    /// {"conditions":[{"type":"Accepted","status":"True","reason":"Accepted","message":"..","observedGeneration":3}],
    ///  "addresses":[{"type":"IPAddress","value":"10.0.0.1"}],
    ///  "listeners":[{"name":"http","supportedKinds":[{"group":"gateway.networking.k8s.io","kind":"HTTPRoute"}],
    ///                "attachedRoutes":2,"conditions":[]}]}
    /// ```
    ///
    /// - HTTPRoute: `{"parents":[{"parentRef":{..exact spec parentRef..},"controllerName":"volcano.sh/kthena-router","conditions":[..]}]}`
    /// - InferencePool (v1): `{"parents":[{"parentRef":{"group":"gateway.networking.k8s.io","kind":"Gateway","namespace":"ns","name":"gw"},"conditions":[..]}]}`
    /// - ModelRoute: `{"observedGeneration":2,"conditions":[..],"parents":[..]}`
    /// - ModelServer: `{"observedGeneration":2,"conditions":[..],"readyEndpoints":3}`
    ///
    /// A value that is not a JSON object is treated as `{}` (nothing to write).
    pub status: Value,
    /// Which entries of the stored `status.parents[]` are ours.
    pub parents: ParentOwnership,
}

/// Which entries of `status.parents[]` are ours (we replace or remove them; the others are kept
/// untouched, in place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParentOwnership {
    /// Entries whose `controllerName` equals this one (HTTPRoute; Gateway API rule: keep every
    /// other controller's entries).
    ControllerName(String),
    /// Entries whose `parentRef` names one of these Gateways, as `(namespace, name)`
    /// (InferencePool: its entries carry no `controllerName`).
    Gateways(Vec<(String, String)>),
    /// Nobody else writes `parents[]`: the whole status is ours.
    Whole,
}
