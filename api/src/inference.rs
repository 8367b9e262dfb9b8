//! Gateway API Inference Extension kinds, as consumed (not shipped) by kthena-rs.
//!
//! In: InferencePool, InferenceModel and InferenceObjective objects written against the upstream
//! CRDs that users install themselves. Out: typed Rust values, field for field with the upstream
//! `openAPIV3Schema`, for the watchers and the [`crate::convert`] layer.
//!
//! InferencePool exists under two groups with the same kind name, so each API version has its
//! own module:
//! - [`v1`]: `inference.networking.k8s.io/v1` InferencePool (upstream v1.5.0).
//! - [`v1alpha2`]: `inference.networking.x-k8s.io/v1alpha2` InferencePool and InferenceModel
//!   (upstream v0.5.1, still common in the field) and InferenceObjective (upstream v1.5.0).

pub mod v1;
pub mod v1alpha2;
