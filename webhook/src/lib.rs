//! Admission webhook of kthena-rs.
//!
//! In: Kubernetes `AdmissionReview` v1 requests over HTTPS for ModelRoutes, ModelServers,
//! InferencePools (v1 and v1alpha2), InferenceModels, HTTPRoutes and Gateways, plus a view of
//! the other objects already in the cluster ([`Cluster`]).
//!
//! Out: an `AdmissionReview` answer that allows the object or denies it listing every problem
//! as `field: message`. The rules ([`rules::review`]) are pure: they run the same
//! `kthena_api::convert` functions as the router's data plane, so an object the webhook admits
//! is one the router can use, and add the checks that need other objects (parent Gateways,
//! model names claimed by other ModelRoutes). Offline validation calls [`rules::review`] with
//! [`Objects`] read from files.

pub mod cluster;
pub mod rules;
pub mod server;

pub use cluster::{Cluster, Objects, Scope};
pub use rules::{Options, review};
pub use server::{Endpoint, Error, ServingCert, State, answer, configure, serve, tls_config};
