//! `inference.networking.x-k8s.io/v1alpha2`: the experimental Inference Extension group.
//!
//! InferencePool and InferenceModel follow upstream v0.5.1; InferenceObjective (the successor
//! of InferenceModel) follows upstream v1.5.0. Each kind keeps its own reference types, since
//! their defaults differ between releases (e.g. the `poolRef` group); only the kinds, specs and
//! statuses are re-exported here.

pub mod inferencemodel;
pub mod inferenceobjective;
pub mod inferencepool;

pub use inferencemodel::{InferenceModel, InferenceModelSpec, InferenceModelStatus};
pub use inferenceobjective::{
    InferenceObjective, InferenceObjectiveSpec, InferenceObjectiveStatus,
};
pub use inferencepool::{InferencePool, InferencePoolSpec, InferencePoolStatus};
