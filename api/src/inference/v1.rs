//! `inference.networking.k8s.io/v1`: the GA InferencePool (Inference Extension v1.5.0).

pub mod inferencepool;

pub use inferencepool::{
    AppProtocol, EndpointPickerRef, FailureMode, InferencePool, InferencePoolSpec,
    InferencePoolStatus, LabelSelector, ParentReference, ParentStatus, Port,
};
