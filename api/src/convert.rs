//! The one conversion from api objects to [`kthena_core`] values.
//!
//! The router's data plane, the admission webhook, the status controllers and offline
//! validation all call these functions, so they accept and reject exactly the same objects
//! with the same messages. Every problem is reported with its field path; an object with any
//! problem is not converted at all.
//!
//! One module per kind (`model_route`, `model_server`, `external_provider`, `gateway`, `http_route`, `inference`,
//! `service`, `pod` with Secret, Namespace and GatewayClass), their functions re-exported here; this file holds what every kind shares
//! (identity, creation order, generation).

mod external_provider;
mod gateway;
pub mod http_route;
mod inference;
mod model_route;
mod model_server;
mod pod;
mod service;

pub use external_provider::*;
pub use gateway::*;
pub use inference::*;
pub use model_route::*;
pub use model_server::*;
pub use pod::*;
pub use service::*;

use std::fmt;

use kthena_core::{self as core, FieldErrors, ObjectRef};

/// Namespace of an object that names none (objects read from files).
pub const DEFAULT_NAMESPACE: &str = "default";
/// API group of Gateway API kinds.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// An object that could not be converted, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConvertError {
    /// Kind of the object, e.g. `ModelRoute`.
    pub kind: &'static str,
    /// The object.
    pub object: ObjectRef,
    /// The problems, each with its field path.
    pub errors: FieldErrors,
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.object, self.errors)
    }
}

/// The namespace/name of `obj`, defaulting the namespace.
pub fn object_ref<K: kube::Resource>(obj: &K) -> ObjectRef {
    let meta = obj.meta();
    ObjectRef::new(
        meta.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// The age order of `obj` (`id` is its [`object_ref`]): creation time, then namespace/name.
pub fn creation_order<K: kube::Resource>(obj: &K, id: &ObjectRef) -> core::CreationOrder {
    core::CreationOrder {
        created_unix_nanos: obj
            .meta()
            .creation_timestamp
            .as_ref()
            .and_then(|t| i64::try_from(t.0.as_nanosecond()).ok()),
        namespace: id.namespace.clone(),
        name: id.name.clone(),
    }
}

/// `metadata.generation`, the number every status condition of the object repeats.
pub fn generation(o: &impl kube::Resource) -> Option<i64> {
    o.meta().generation
}
