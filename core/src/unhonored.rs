//! Spec fields that convert and validate but that this router does not act on yet. Each is
//! named with its field path, so status (condition `FieldsHonored=False/FieldNotHonored`) and
//! the admission webhook (a warning) say so instead of accepting it silently. When a field's
//! feature lands, its entry here goes.

use crate::{FieldErrors, InferenceObjective, ModelServer, Route};

/// The fields of `route` that are not honored yet.
pub fn model_route(_route: &Route) -> FieldErrors {
    // Every ModelRoute field is acted on (external providers are called since #19).
    FieldErrors::new()
}

/// The fields of `objective` that are not honored yet.
pub fn inference_objective(objective: &InferenceObjective) -> FieldErrors {
    let mut out = FieldErrors::new();
    if objective.priority != 0 {
        out.push(
            "spec.priority",
            "requests are queued and shed by priority only when the router runs with \
             --enable-fairness-scheduling (ENABLE_FAIRNESS_SCHEDULING); without it every \
             objective is served alike",
        );
    }
    out
}

/// The fields of `server` that are not honored yet.
pub fn model_server(server: &ModelServer) -> FieldErrors {
    let mut out = FieldErrors::new();
    if server.pd_group.is_some() {
        out.push(
            "spec.workloadSelector.pdGroup",
            "prefill/decode disaggregation is not done yet: every selected Pod serves whole requests",
        );
    }
    if server.kv_connector.is_some() {
        out.push(
            "spec.kvConnector",
            "KV connectors are not used yet (they matter with pdGroup only)",
        );
    }
    if server.session_sticky.is_some() {
        out.push(
            "spec.trafficPolicy.sessionSticky",
            "session stickiness is not applied yet: each request is picked on its own",
        );
    }
    out
}
