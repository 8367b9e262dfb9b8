//! Inference Extension kinds: InferencePool (v1 and v1alpha2), InferenceModel,
//! InferenceObjective.

use kthena_core::{self as core, FieldErrors, ObjectRef, validate};

use super::{creation_order, object_ref};

fn pool_port(errs: &mut FieldErrors, path: &str, n: i32) -> u16 {
    match u16::try_from(n) {
        Ok(p) if p > 0 => p,
        _ => {
            errs.push(path, format!("must be between 1 and 65535, got {n}"));
            0
        }
    }
}

fn pool_selector(
    errs: &mut FieldErrors,
    path: &str,
    labels: &std::collections::BTreeMap<String, String>,
) {
    if labels.is_empty() {
        errs.push(path, "must have at least 1 label");
    }
    for (k, v) in labels {
        if let Err(e) = validate::label_key(k).and_then(|()| validate::label_value(v)) {
            errs.push(format!("{path}[{k}]"), e);
        }
    }
}

/// Converts an `inference.networking.k8s.io/v1` InferencePool (the first target port serves).
pub fn inference_pool_v1(
    p: &crate::inference::v1::InferencePool,
) -> Result<core::InferencePool, FieldErrors> {
    let mut errs = FieldErrors::new();
    pool_selector(
        &mut errs,
        "spec.selector.matchLabels",
        &p.spec.selector.match_labels,
    );
    let port = match p.spec.target_ports.first() {
        Some(t) => pool_port(&mut errs, "spec.targetPorts[0].number", t.number),
        None => {
            errs.push("spec.targetPorts", "must have at least 1 port");
            0
        }
    };
    // The first port is served; the others must be ports too (an endpoint picker may choose
    // them).
    for (i, t) in p.spec.target_ports.iter().enumerate().skip(1) {
        pool_port(
            &mut errs,
            &format!("spec.targetPorts[{i}].number"),
            t.number,
        );
    }
    errs.into_result(core::InferencePool {
        id: object_ref(p),
        api: core::http_route::InferencePoolApi::V1,
        match_labels: p.spec.selector.match_labels.clone(),
        port,
        protocol: match p.spec.app_protocol {
            crate::inference::v1::AppProtocol::Http => core::Protocol::Http,
            crate::inference::v1::AppProtocol::H2c => core::Protocol::H2c,
        },
        endpoint_picker: p
            .spec
            .endpoint_picker_ref
            .as_ref()
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty()),
    })
}

/// Converts an `inference.networking.x-k8s.io/v1alpha2` InferencePool.
pub fn inference_pool_v1alpha2(
    p: &crate::inference::v1alpha2::InferencePool,
) -> Result<core::InferencePool, FieldErrors> {
    let mut errs = FieldErrors::new();
    pool_selector(&mut errs, "spec.selector", &p.spec.selector);
    let port = pool_port(
        &mut errs,
        "spec.targetPortNumber",
        p.spec.target_port_number,
    );
    errs.into_result(core::InferencePool {
        id: object_ref(p),
        api: core::http_route::InferencePoolApi::V1Alpha2,
        match_labels: p.spec.selector.clone(),
        port,
        protocol: core::Protocol::Http,
        endpoint_picker: Some(p.spec.extension_ref.name.clone()).filter(|n| !n.is_empty()),
    })
}

/// Converts an `inference.networking.x-k8s.io/v1alpha2` InferenceModel. Target weights are
/// all set or all unset (then equal), 1 to 1,000,000.
pub fn inference_model(
    m: &crate::inference::v1alpha2::InferenceModel,
) -> Result<core::InferenceModel, FieldErrors> {
    use crate::inference::v1alpha2::inferencemodel::Criticality;
    let mut errs = FieldErrors::new();
    let id = object_ref(m);
    let spec = &m.spec;
    if spec.model_name.is_empty() {
        errs.push("spec.modelName", "must not be empty");
    }
    let r = &spec.pool_ref;
    if r.name.is_empty() {
        errs.push("spec.poolRef.name", "must not be empty");
    }
    let api = core::http_route::InferencePoolApi::from_group(&r.group);
    if api.is_none() || r.kind != "InferencePool" {
        errs.push(
            "spec.poolRef",
            format!(
                "unsupported pool {:?}: only InferencePool of the inference.networking groups",
                format!("{}/{}", r.group, r.kind)
            ),
        );
    }
    let targets = spec.target_models.as_deref().unwrap_or_default();
    let set = targets.iter().filter(|t| t.weight.is_some()).count();
    if set != 0 && set != targets.len() {
        errs.push(
            "spec.targetModels",
            "weights must be set on all targets or on none",
        );
    }
    let mut converted = Vec::with_capacity(targets.len());
    for (i, t) in targets.iter().enumerate() {
        let weight = t.weight.unwrap_or(1);
        match u32::try_from(weight) {
            Ok(w) if (1..=1_000_000).contains(&w) => converted.push((t.name.clone(), w)),
            _ => errs.push(
                format!("spec.targetModels[{i}].weight"),
                format!("must be between 1 and 1000000, got {weight}"),
            ),
        }
        if t.name.is_empty() {
            errs.push(format!("spec.targetModels[{i}].name"), "must not be empty");
        }
    }
    let criticality = match spec.criticality {
        Some(Criticality::Critical) => core::inference_model::Criticality::Critical,
        Some(Criticality::Sheddable) => core::inference_model::Criticality::Sheddable,
        Some(Criticality::Standard) | None => core::inference_model::Criticality::Standard,
    };
    let pool = (
        api.unwrap_or(core::http_route::InferencePoolApi::V1Alpha2),
        ObjectRef::new(id.namespace.clone(), r.name.clone()),
    );
    let order = creation_order(m, &id);
    errs.into_result(core::InferenceModel::new(
        id,
        spec.model_name.clone(),
        pool,
        criticality,
        order,
        converted,
    ))
}

/// Converts an `inference.networking.x-k8s.io/v1alpha2` InferenceObjective.
pub fn inference_objective(
    o: &crate::inference::v1alpha2::InferenceObjective,
) -> Result<core::InferenceObjective, FieldErrors> {
    let mut errs = FieldErrors::new();
    let id = object_ref(o);
    let r = &o.spec.pool_ref;
    let api = core::http_route::InferencePoolApi::from_group(&r.group);
    if api.is_none() || (!r.kind.is_empty() && r.kind != "InferencePool") {
        errs.push(
            "spec.poolRef",
            format!(
                "unsupported pool {:?}: only InferencePool of the inference.networking groups",
                format!("{}/{}", r.group, r.kind)
            ),
        );
    }
    if r.name.is_empty() {
        errs.push("spec.poolRef.name", "must not be empty");
    }
    errs.into_result(core::InferenceObjective {
        pool: (
            api.unwrap_or(core::http_route::InferencePoolApi::V1),
            ObjectRef::new(id.namespace.clone(), r.name.clone()),
        ),
        id,
        priority: o.spec.priority.unwrap_or(0),
    })
}
