//! InferencePools as the data plane uses them: Pods selected directly, no ModelServer needed.

use std::collections::BTreeMap;

use crate::ObjectRef;
use crate::http_route::InferencePoolApi;

/// An InferencePool (`inference.networking.k8s.io/v1` or `inference.networking.x-k8s.io/v1alpha2`),
/// converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferencePool {
    /// The pool object.
    pub id: ObjectRef,
    /// Which API the object came from (HTTPRoute backendRefs name the group).
    pub api: InferencePoolApi,
    /// `selector.matchLabels` (v1) / `selector` (v1alpha2): Pods of the pool's namespace.
    pub match_labels: BTreeMap<String, String>,
    /// `targetPorts[0].number` (v1) / `targetPortNumber` (v1alpha2).
    pub port: u16,
    /// `spec.appProtocol` (v1; v1alpha2 has none): HTTP/1.1 or h2c.
    pub protocol: crate::Protocol,
    /// The endpoint picker extension the pool names (`endpointPickerRef` / `extensionRef`),
    /// which this router does not call: it picks endpoints itself.
    pub endpoint_picker: Option<String>,
}
