//! Gateway API Inference Extension types: real manifests deserialize with upstream defaults,
//! enumerated strings are exact, and our generated schemas have the same fields as upstream's.

use std::collections::BTreeSet;

use kthena_api::inference::{v1, v1alpha2};
use kube::CustomResourceExt;
use pretty_assertions::assert_eq;
use serde_json::Value;

const UPSTREAM_V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/upstream-crds/inference-extension-v1.5.0.yaml"
);
const UPSTREAM_V0_5_1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/upstream-crds/inference-extension-v0.5.1-v1alpha2.yaml"
);

#[test]
fn v1_pool_manifest_gets_upstream_defaults() {
    let pool: v1::InferencePool = serde_norway::from_str(
        r#"
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: qwen, namespace: llm}
spec:
  selector:
    matchLabels: {app: vllm-qwen}
  targetPorts:
  - number: 8000
  endpointPickerRef:
    name: qwen-epp
    port: {number: 9002}
"#,
    )
    .expect("v1 pool parses");
    let spec = &pool.spec;
    assert_eq!(spec.selector.match_labels["app"], "vllm-qwen");
    assert_eq!(spec.target_ports, vec![v1::Port { number: 8000 }]);
    assert_eq!(spec.app_protocol, v1::AppProtocol::Http);
    let epp = spec.endpoint_picker_ref.as_ref().expect("picker named");
    assert_eq!((epp.group.as_str(), epp.kind.as_str()), ("", "Service"));
    assert_eq!(
        (epp.name.as_str(), epp.port),
        ("qwen-epp", Some(v1::Port { number: 9002 }))
    );
    assert_eq!(epp.failure_mode, v1::FailureMode::FailClose);
    assert_eq!(pool.status, None);
}

#[test]
fn v1_pool_manifest_reads_explicit_values_and_parent_status() {
    let pool: v1::InferencePool = serde_norway::from_str(
        r#"
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: qwen}
spec:
  selector: {matchLabels: {app: vllm}}
  targetPorts: [{number: 8000}, {number: 8001}]
  appProtocol: kubernetes.io/h2c
  endpointPickerRef: {group: example.com, kind: Picker, name: epp, failureMode: FailOpen}
status:
  parents:
  - parentRef: {name: gw, namespace: infra}
    controllerName: kthena.volcano.sh/router
    conditions:
    - {type: Accepted, status: "True", reason: Accepted, message: "", lastTransitionTime: "2025-01-01T00:00:00Z", observedGeneration: 3}
"#,
    )
    .expect("v1 pool with status parses");
    assert_eq!(pool.spec.app_protocol, v1::AppProtocol::H2c);
    let epp = pool
        .spec
        .endpoint_picker_ref
        .as_ref()
        .expect("picker named");
    assert_eq!(
        (epp.group.as_str(), epp.kind.as_str(), epp.port),
        ("example.com", "Picker", None)
    );
    assert_eq!(epp.failure_mode, v1::FailureMode::FailOpen);
    let parents = pool
        .status
        .and_then(|s| s.parents)
        .expect("status has parents");
    let parent = &parents[0];
    let gw = &parent.parent_ref;
    assert_eq!(
        (
            gw.group.as_str(),
            gw.kind.as_str(),
            gw.name.as_str(),
            gw.namespace.as_deref()
        ),
        ("gateway.networking.k8s.io", "Gateway", "gw", Some("infra"))
    );
    assert_eq!(
        parent.controller_name.as_deref(),
        Some("kthena.volcano.sh/router")
    );
    let condition = &parent.conditions.as_ref().expect("conditions")[0];
    assert_eq!(
        (condition.type_.as_str(), condition.observed_generation),
        ("Accepted", Some(3))
    );
}

#[test]
fn v1alpha2_pool_manifest_gets_upstream_defaults() {
    let pool: v1alpha2::InferencePool = serde_norway::from_str(
        r#"
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferencePool
metadata: {name: llama, namespace: llm}
spec:
  selector: {app: vllm-llama}
  targetPortNumber: 8000
  extensionRef: {name: llama-epp}
status:
  parent:
  - parentRef: {kind: Status, name: default}
"#,
    )
    .expect("v1alpha2 pool parses");
    let spec = &pool.spec;
    assert_eq!(spec.selector["app"], "vllm-llama");
    assert_eq!(spec.target_port_number, 8000);
    let ext = &spec.extension_ref;
    assert_eq!(
        (ext.group.as_str(), ext.kind.as_str(), ext.name.as_str()),
        ("", "Service", "llama-epp")
    );
    assert_eq!(ext.port_number, None);
    assert_eq!(
        ext.failure_mode,
        v1alpha2::inferencepool::FailureMode::FailClose
    );
    let parents = pool
        .status
        .and_then(|s| s.parents)
        .expect("status has parent");
    let gw = &parents[0].parent_ref;
    assert_eq!(
        (gw.group.as_str(), gw.kind.as_str()),
        ("gateway.networking.k8s.io", "Status")
    );
}

#[test]
fn inference_model_manifest_reads_criticality_and_weights() {
    use v1alpha2::inferencemodel::{Criticality, TargetModel};
    let model: v1alpha2::InferenceModel = serde_norway::from_str(
        r#"
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: {name: food-review, namespace: llm}
spec:
  modelName: food-review
  criticality: Critical
  poolRef: {name: llama}
  targetModels:
  - {name: food-review-1, weight: 90}
  - {name: food-review-2, weight: 10}
"#,
    )
    .expect("InferenceModel parses");
    let spec = &model.spec;
    assert_eq!(spec.model_name, "food-review");
    assert_eq!(spec.criticality, Some(Criticality::Critical));
    let pool = &spec.pool_ref;
    assert_eq!(
        (pool.group.as_str(), pool.kind.as_str(), pool.name.as_str()),
        ("inference.networking.x-k8s.io", "InferencePool", "llama")
    );
    let target = |name: &str, weight| TargetModel {
        name: name.to_owned(),
        weight: Some(weight),
    };
    assert_eq!(
        spec.target_models,
        Some(vec![
            target("food-review-1", 90),
            target("food-review-2", 10)
        ])
    );
}

#[test]
fn inference_objective_manifest_points_at_the_v1_pool_group_by_default() {
    let objective: v1alpha2::InferenceObjective = serde_norway::from_str(
        r#"
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: {name: chat, namespace: llm}
spec:
  priority: -10
  poolRef: {name: qwen}
"#,
    )
    .expect("InferenceObjective parses");
    assert_eq!(objective.spec.priority, Some(-10));
    let pool = &objective.spec.pool_ref;
    assert_eq!(
        (pool.group.as_str(), pool.kind.as_str(), pool.name.as_str()),
        ("inference.networking.k8s.io", "InferencePool", "qwen")
    );
}

#[test]
fn enumerated_strings_accept_only_the_exact_upstream_spelling() {
    use v1alpha2::inferencemodel::Criticality;
    let app = |s: &str| serde_json::from_value::<v1::AppProtocol>(Value::from(s)).ok();
    let mode = |s: &str| serde_json::from_value::<v1::FailureMode>(Value::from(s)).ok();
    let crit = |s: &str| serde_json::from_value::<Criticality>(Value::from(s)).ok();
    assert_eq!(app("http"), Some(v1::AppProtocol::Http));
    assert_eq!(app("kubernetes.io/h2c"), Some(v1::AppProtocol::H2c));
    assert_eq!(mode("FailOpen"), Some(v1::FailureMode::FailOpen));
    assert_eq!(crit("Sheddable"), Some(Criticality::Sheddable));
    for bad in ["HTTP", "Http", "h2c", "H2c"] {
        assert_eq!(app(bad), None, "appProtocol {bad}");
    }
    for bad in ["failOpen", "FAILCLOSE", "fail-open"] {
        assert_eq!(mode(bad), None, "failureMode {bad}");
    }
    for bad in ["critical", "STANDARD", "sheddable"] {
        assert_eq!(crit(bad), None, "criticality {bad}");
    }
}

#[test]
fn generated_schemas_match_upstream_crds() {
    let cases = [
        (UPSTREAM_V1, v1::InferencePool::crd()),
        (UPSTREAM_V1, v1alpha2::InferenceObjective::crd()),
        (UPSTREAM_V0_5_1, v1alpha2::InferencePool::crd()),
        (UPSTREAM_V0_5_1, v1alpha2::InferenceModel::crd()),
    ];
    for (file, crd) in cases {
        let ours = serde_json::to_value(crd).expect("CRD serializes");
        let (group, kind) = (&ours["spec"]["group"], &ours["spec"]["names"]["kind"]);
        let version = &ours["spec"]["versions"][0];
        let upstream = upstream_version(file, group, kind, &version["name"]);
        let context = format!("{kind} {group}/{}", version["name"]);
        let mut theirs = facts(&upstream["schema"]);
        // The one deliberate difference: the Inference Extension made `endpointPickerRef`
        // optional in v1.6.0 (the router then picks endpoints itself); these CRDs are v1.5.0.
        if kind == "InferencePool" && version["name"] == "v1" {
            assert!(
                theirs.remove("spec.endpointPickerRef required"),
                "{context}"
            );
        }
        assert_eq!(facts(&version["schema"]), theirs, "{context} schema");
        for key in ["additionalPrinterColumns", "subresources"] {
            assert_eq!(version[key], upstream[key], "{context} {key}");
        }
        let names = |crd: &Value| crd["spec"]["names"]["shortNames"].clone();
        assert_eq!(
            names(&ours),
            names(&upstream_crd(file, group, kind)),
            "{context} shortNames"
        );
    }
}

/// The CRD of `group`/`kind` among the YAML documents of an upstream file.
fn upstream_crd(file: &str, group: &Value, kind: &Value) -> Value {
    let text = std::fs::read_to_string(file).expect("upstream CRD file is readable");
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("upstream YAML parses"))
        .find(|crd: &Value| &crd["spec"]["group"] == group && &crd["spec"]["names"]["kind"] == kind)
        .unwrap_or_else(|| panic!("{file} has no {kind} in {group}"))
}

/// The `spec.versions[]` entry named `version` of an upstream CRD.
fn upstream_version(file: &str, group: &Value, kind: &Value, version: &Value) -> Value {
    let crd = upstream_crd(file, group, kind);
    let versions = crd["spec"]["versions"]
        .as_array()
        .expect("versions is a list");
    let found = versions.iter().find(|v| &v["name"] == version);
    found
        .unwrap_or_else(|| panic!("{kind} has no version {version}"))
        .clone()
}

/// Every property path under `spec` and `status`, which of them are required, and their enum
/// values and defaults, except inside `conditions`: those are k8s-openapi's `Condition`, and
/// upstream defaults them to an apiserver placeholder.
fn facts(schema: &Value) -> BTreeSet<String> {
    let root = &schema["openAPIV3Schema"]["properties"];
    let mut out = BTreeSet::new();
    walk(&root["spec"], "spec", true, &mut out);
    walk(&root["status"], "status", true, &mut out);
    out
}

fn walk(schema: &Value, prefix: &str, values: bool, out: &mut BTreeSet<String>) {
    let Some(properties) = schema["properties"].as_object() else {
        return; // a scalar, or a map (additionalProperties): stop descending
    };
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    for (name, property) in properties {
        let path = format!("{prefix}.{name}");
        let values = values && name != "conditions";
        out.insert(path.clone());
        if required.contains(&Value::from(name.as_str())) {
            out.insert(format!("{path} required"));
        }
        for key in ["enum", "default"].into_iter().filter(|_| values) {
            if !property[key].is_null() {
                out.insert(format!("{path} {key}={}", property[key]));
            }
        }
        match property.get("items") {
            Some(items) => walk(items, &format!("{path}[]"), values, out),
            None => walk(property, &path, values, out),
        }
    }
}

#[test]
fn v1_pool_without_endpoint_picker_is_valid_and_picked_natively() {
    let pool: v1::InferencePool = serde_norway::from_str(
        r#"
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: {name: qwen, namespace: default}
spec:
  targetPorts:
  - number: 8000
  selector:
    matchLabels: {app: qwen}
"#,
    )
    .expect("a v1 pool without endpointPickerRef parses");
    assert_eq!(pool.spec.endpoint_picker_ref, None);
    let core = kthena_api::convert::inference_pool_v1(&pool).expect("converts");
    assert_eq!((core.port, core.endpoint_picker), (8000, None));
}
