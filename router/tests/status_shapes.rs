//! The status stanzas the router computes for Gateway API objects are built from the
//! `gateway-api` crate's typed status structs, with a placeholder `lastTransitionTime` taken out
//! when rendered. Every example, read in gateway mode, is reported, and each Gateway, HTTPRoute
//! and GatewayClass status (with the `lastTransitionTime` the status writer adds) reads into the
//! typed struct and writes back unchanged: taking the placeholder out lost nothing else.

use std::sync::Arc;

use gateway_api::apis::standard::{gatewayclasses, gateways, httproutes};
use kthena_dataplane::source::GatewayOptions;
use kthena_dataplane::source::assemble::assemble;
use kthena_dataplane::state::ObjectKind;
use kthena_dataplane::status::{Sources, report};
use serde_json::Value;

/// `status` with a `lastTransitionTime` on every condition, as the writer stores it.
fn timed(mut status: Value) -> Value {
    fn visit(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Array(cs)) = map.get_mut("conditions") {
                    for c in cs {
                        c["lastTransitionTime"] = Value::from("2026-12-03T10:00:00Z");
                    }
                }
                for (_, child) in map.iter_mut() {
                    visit(child);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(visit),
            _ => {}
        }
    }
    visit(&mut status);
    status
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(what: &str, status: &Value) {
    let typed: T = serde_json::from_value(status.clone())
        .unwrap_or_else(|e| panic!("{what}: does not read as the typed status: {e}\n{status:#}"));
    let back = serde_json::to_value(&typed).expect("serializes");
    assert_eq!(
        &back, status,
        "{what}: the typed status writes back otherwise"
    );
}

#[test]
fn gateway_api_statuses_have_the_typed_shape() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let class = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\n\
        metadata: {name: kthena-router, generation: 1}\n\
        spec: {controllerName: volcano.sh/kthena-router}\n";
    let objects: Vec<_> = kthena_api::manifest::load(&dir)
        .expect("examples")
        .into_iter()
        .map(|(origin, o)| (origin.display().to_string(), o))
        .chain(
            kthena_api::manifest::parse_str(class, "class")
                .expect("a GatewayClass")
                .into_iter()
                .map(|o| ("class".to_owned(), o)),
        )
        .collect();
    let gw = GatewayOptions {
        enabled: true,
        inference_extension: true,
        addresses: vec!["10.0.0.1".into()],
        ..GatewayOptions::default()
    };
    let (config, _) = assemble(objects, &gw);
    let inputs = config.status_inputs(true);
    let pools = Arc::new(Default::default());
    let tables = Default::default();
    let statuses = report(Sources {
        inputs: &inputs,
        pools: &pools,
        tables: &tables,
        controller_name: &config.controller_name,
        priority_queueing: false,
    });
    let mut seen = std::collections::BTreeMap::new();
    for s in &statuses {
        let what = format!("{} {}/{}", s.kind, s.namespace, s.name);
        let status = timed(s.status.clone());
        match s.kind {
            ObjectKind::Gateway => round_trip::<gateways::GatewayStatus>(&what, &status),
            ObjectKind::HttpRoute => round_trip::<httproutes::HttpRouteStatus>(&what, &status),
            ObjectKind::GatewayClass => {
                round_trip::<gatewayclasses::GatewayClassStatus>(&what, &status)
            }
            _ => continue,
        }
        *seen.entry(s.kind).or_insert(0) += 1;
    }
    for kind in [
        ObjectKind::Gateway,
        ObjectKind::HttpRoute,
        ObjectKind::GatewayClass,
    ] {
        assert!(
            seen.contains_key(&kind),
            "no {kind} status checked: {seen:?}"
        );
    }
}
