//! Kubernetes API types of kthena-rs and the one conversion from them to the routing core.
//!
//! In: YAML/JSON objects of the Kthena router API (`networking.serving.volcano.sh/v1alpha1`
//! ModelRoute, ModelServer, ExternalModelProvider) and of the Gateway API Inference Extension
//! (InferencePool, InferenceModel, InferenceObjective). Gateway API kinds come from the
//! `gateway-api` crate and are re-exported as [`gateway`].
//!
//! Out: [`kthena_core`] values built by [`convert`], the only place where api objects become
//! routing data, shared by the webhook, the operator and the router; CRD manifests for our own
//! kinds ([`crds`]); condition types and reasons as constants ([`conditions`]).

pub mod conditions;
pub mod convert;
pub mod crds;
pub mod externalmodelprovider;
pub mod inference;
pub mod kind;
pub mod manifest;
pub mod modelroute;
pub mod modelserver;
pub mod router_config;

pub use gateway_api as gateway;
pub use kind::{KindSet, ObjectKind};

/// API group of the Kthena router kinds.
pub const GROUP: &str = "networking.serving.volcano.sh";
/// API version of the Kthena router kinds.
pub const VERSION: &str = "v1alpha1";
