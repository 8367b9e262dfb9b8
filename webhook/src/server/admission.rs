//! One admission decision: the request's object read as a typed object, then reviewed.

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use super::Endpoint;
use crate::{Cluster, Options, rules};

/// Allows or denies `request` (which arrived on `endpoint`). DELETE and CONNECT are allowed:
/// removing an object never makes the others unusable. A denial lists every problem as
/// `field: message`, separated by `; `.
pub(super) fn decide(
    endpoint: Endpoint,
    request: &AdmissionRequest<DynamicObject>,
    cluster: &dyn Cluster,
    options: Options,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    let (uid, namespace, name) = (
        request.uid.as_str(),
        request.namespace.as_deref().unwrap_or_default(),
        request.name.as_str(),
    );
    if matches!(request.operation, Operation::Delete | Operation::Connect) {
        return response;
    }
    let Some(object) = &request.object else {
        tracing::warn!(uid, "admission request without object");
        return response.deny("the admission request has no object");
    };
    let object = match typed(endpoint, request, object) {
        Ok(o) => o,
        Err(e) => {
            tracing::info!(uid, namespace, name, error = %e, "denied unreadable object");
            return response.deny(e);
        }
    };
    let old = request
        .old_object
        .as_ref()
        .and_then(|o| match typed(endpoint, request, o) {
            Ok(o) => Some(o),
            Err(e) => {
                // The stored version only adds the immutability checks; review without it.
                tracing::warn!(uid, namespace, name, error = %e, "stored object unreadable");
                None
            }
        });
    match rules::review(&object, old.as_ref(), cluster, options) {
        Ok(()) => {
            tracing::debug!(uid, kind = endpoint.kind(), namespace, name, "allowed");
            let warnings = rules::warnings(&object);
            let mut response = response;
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            response
        }
        Err(errs) => {
            tracing::info!(uid, kind = endpoint.kind(), namespace, name, problems = %errs, "denied");
            response.deny(errs)
        }
    }
}

/// `object` as the kind of the request, with namespace and name filled from the request
/// when the object leaves them out (objects created with `generateName` or without namespace).
fn typed(
    endpoint: Endpoint,
    request: &AdmissionRequest<DynamicObject>,
    object: &DynamicObject,
) -> Result<kthena_api::manifest::Object, String> {
    let mut value = serde_json::to_value(object).map_err(|e| format!("unreadable object: {e}"))?;
    if let Some(meta) = value
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        let mut fill = |field: &str, from: Option<&str>| {
            let missing = meta
                .get(field)
                .and_then(serde_json::Value::as_str)
                .is_none_or(str::is_empty);
            if let Some(v) = from.filter(|v| missing && !v.is_empty()) {
                meta.insert(field.to_owned(), v.into());
            }
        };
        fill("namespace", request.namespace.as_deref());
        fill("name", Some(request.name.as_str()));
    }
    endpoint.decode(&request.kind, value)
}
