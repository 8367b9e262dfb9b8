//! Desired statuses of the kinds the router writes, for tests.

#![allow(dead_code)] // each test crate uses a different subset

use kthena_operator::desired::{DesiredStatus, ParentOwnership, StatusTarget};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::{Value, json};

/// Our controller name, as written in HTTPRoute `parents[].controllerName`.
pub const CONTROLLER: &str = "volcano.sh/kthena-router";

fn target(group: &str, version: &str, kind: &str, plural: &str, name: &str) -> StatusTarget {
    StatusTarget {
        api: ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, kind),
            plural,
        ),
        namespace: Some("ns".to_owned()),
        name: name.to_owned(),
    }
}

/// Gateway `ns/<name>` at `generation`.
pub fn gateway(name: &str, generation: i64, status: Value) -> DesiredStatus {
    DesiredStatus {
        target: target(
            "gateway.networking.k8s.io",
            "v1",
            "Gateway",
            "gateways",
            name,
        ),
        generation: Some(generation),
        status,
        parents: ParentOwnership::Whole,
    }
}

/// HTTPRoute `ns/<name>` at `generation`, owning the parents with our controller name.
pub fn http_route(name: &str, generation: i64, status: Value) -> DesiredStatus {
    DesiredStatus {
        target: target(
            "gateway.networking.k8s.io",
            "v1",
            "HTTPRoute",
            "httproutes",
            name,
        ),
        generation: Some(generation),
        status,
        parents: ParentOwnership::ControllerName(CONTROLLER.to_owned()),
    }
}

/// InferencePool `ns/<name>` at `generation`, owning the parents naming `gateways` (in `ns`).
pub fn inference_pool(
    name: &str,
    generation: i64,
    gateways: &[&str],
    status: Value,
) -> DesiredStatus {
    DesiredStatus {
        target: target(
            "inference.networking.k8s.io",
            "v1",
            "InferencePool",
            "inferencepools",
            name,
        ),
        generation: Some(generation),
        status,
        parents: ParentOwnership::Gateways(
            gateways
                .iter()
                .map(|g| ("ns".to_owned(), (*g).to_owned()))
                .collect(),
        ),
    }
}

/// ModelServer `ns/<name>` at `generation` (the whole status is ours).
pub fn model_server(name: &str, generation: i64, status: Value) -> DesiredStatus {
    DesiredStatus {
        target: target(
            "networking.serving.volcano.sh",
            "v1alpha1",
            "ModelServer",
            "modelservers",
            name,
        ),
        generation: Some(generation),
        status,
        parents: ParentOwnership::Whole,
    }
}

/// A condition as the router computes it (no `lastTransitionTime`).
pub fn cond(type_: &str, status: &str, reason: &str, generation: i64) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": "", "observedGeneration": generation})
}

/// A condition as stored, with its `lastTransitionTime`.
pub fn stored_cond(type_: &str, status: &str, reason: &str, generation: i64, at: &str) -> Value {
    let mut c = cond(type_, status, reason, generation);
    c["lastTransitionTime"] = json!(at);
    c
}

/// A Gateway parentRef `ns/<name>` as the API server stores it (defaults filled in).
pub fn gateway_ref(name: &str) -> Value {
    json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "ns", "name": name})
}
