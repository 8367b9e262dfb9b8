//! The default GatewayClass/Gateway and the managed Service ports against a scripted fake
//! API server (kube `Client` over `tower_test::mock`), and the status report's mapping.

#[path = "support/fake_api.rs"]
mod fake_api;

use std::collections::BTreeSet;

use fake_api::{bounded, pair};
use http::Method;
use k8s_openapi::api::core::v1::ServicePort;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kthena_dataplane::state::ObjectKind;
use kthena_dataplane::status::ObjectStatus;
use kthena_operator::defaults::{self, Ensured};
use kthena_operator::desired::ParentOwnership;
use kthena_operator::service_ports::{self, Outcome, desired_ports};
use pretty_assertions::assert_eq;
use serde_json::json;

const CLASS: &str = "/apis/gateway.networking.k8s.io/v1/gatewayclasses/kthena-router";
const GATEWAYS: &str = "/apis/gateway.networking.k8s.io/v1/namespaces/kthena/gateways";

#[tokio::test]
async fn missing_defaults_are_created_with_our_controller_and_port() {
    let (client, mut api) = pair();
    let task = tokio::spawn(async move {
        defaults::ensure(&client, "kthena", 8080, "volcano.sh/kthena-router").await
    });
    api.expect(Method::GET, CLASS).await.fail(404, "NotFound");
    let create = api
        .expect(
            Method::POST,
            "/apis/gateway.networking.k8s.io/v1/gatewayclasses",
        )
        .await;
    assert_eq!(
        create.body["spec"]["controllerName"],
        "volcano.sh/kthena-router"
    );
    let body = create.body.clone();
    create.respond(201, &body);
    api.expect(Method::GET, &format!("{GATEWAYS}/default"))
        .await
        .fail(404, "NotFound");
    let create = api.expect(Method::POST, GATEWAYS).await;
    let listener = &create.body["spec"]["listeners"][0];
    assert_eq!(
        (
            &create.body["spec"]["gatewayClassName"],
            &listener["name"],
            &listener["port"],
            &listener["protocol"],
            &listener["allowedRoutes"]["namespaces"]["from"]
        ),
        (
            &json!("kthena-router"),
            &json!("default"),
            &json!(8080),
            &json!("HTTP"),
            &json!("All")
        )
    );
    let body = create.body.clone();
    create.respond(201, &body);
    let done = bounded("ensure", task)
        .await
        .expect("task")
        .expect("ensure");
    assert_eq!(
        done,
        Ensured {
            created_class: true,
            created_gateway: true
        }
    );
}

#[tokio::test]
async fn existing_defaults_are_left_alone_even_when_changed() {
    let (client, mut api) = pair();
    let task = tokio::spawn(async move {
        defaults::ensure(&client, "kthena", 8080, "volcano.sh/kthena-router").await
    });
    let mut class =
        serde_json::to_value(defaults::default_class("someone.else/controller")).expect("json");
    class["apiVersion"] = json!("gateway.networking.k8s.io/v1");
    class["kind"] = json!("GatewayClass");
    api.expect(Method::GET, CLASS).await.respond(200, &class);
    let mut gw = serde_json::to_value(defaults::default_gateway("kthena", 9999)).expect("json");
    gw["apiVersion"] = json!("gateway.networking.k8s.io/v1");
    gw["kind"] = json!("Gateway");
    api.expect(Method::GET, &format!("{GATEWAYS}/default"))
        .await
        .respond(200, &gw);
    let done = bounded("ensure", task)
        .await
        .expect("task")
        .expect("ensure");
    assert_eq!(done, Ensured::default());
    api.expect_end().await;
}

#[tokio::test]
async fn a_default_created_meanwhile_by_another_replica_is_fine() {
    let (client, mut api) = pair();
    let task = tokio::spawn(async move {
        defaults::ensure(&client, "kthena", 8080, "volcano.sh/kthena-router").await
    });
    api.expect(Method::GET, CLASS).await.fail(404, "NotFound");
    api.expect(
        Method::POST,
        "/apis/gateway.networking.k8s.io/v1/gatewayclasses",
    )
    .await
    .fail(409, "AlreadyExists");
    api.expect(Method::GET, &format!("{GATEWAYS}/default"))
        .await
        .fail(404, "NotFound");
    api.expect(Method::POST, GATEWAYS)
        .await
        .fail(409, "AlreadyExists");
    let done = bounded("ensure", task)
        .await
        .expect("task")
        .expect("ensure");
    assert_eq!(done, Ensured::default());
}

fn port(name: &str, port: i32, target: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port,
        target_port: Some(IntOrString::Int(target)),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }
}

#[test]
fn service_ports_follow_programmed_listeners_and_keep_the_users() {
    let http = port("http", 80, 8080);
    let metrics = port("metrics", 9090, 9090);
    let set = |ports: &[u16]| ports.iter().copied().collect::<BTreeSet<u16>>();
    // --port is served through the user's 80 -> 8080: nothing to add.
    assert_eq!(
        desired_ports(std::slice::from_ref(&http), &set(&[8080])),
        None
    );
    // A Gateway on 8081 appears: exposed as gw-8081.
    let added = desired_ports(&[http.clone(), metrics.clone()], &set(&[8080, 8081]))
        .expect("a port to add");
    assert_eq!(
        added,
        vec![http.clone(), metrics.clone(), port("gw-8081", 8081, 8081)]
    );
    // Unchanged once added.
    assert_eq!(desired_ports(&added, &set(&[8080, 8081])), None);
    // The Gateway goes: its managed port goes, the user's ports stay.
    assert_eq!(
        desired_ports(&added, &set(&[8080])),
        Some(vec![http, metrics])
    );
}

#[tokio::test]
async fn service_ports_are_patched_with_the_version_read() {
    let (client, mut api) = pair();
    let task = tokio::spawn(async move {
        let ports: BTreeSet<u16> = [8080, 8081].into();
        service_ports::reconcile(&client, "kthena", "kthena-router", &ports, "kthena-router").await
    });
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kthena-router", "namespace": "kthena", "resourceVersion": "41"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    });
    let path = "/api/v1/namespaces/kthena/services/kthena-router";
    api.expect(Method::GET, path).await.respond(200, &svc);
    let patch = api.expect(Method::PATCH, path).await;
    assert_eq!(patch.body["metadata"]["resourceVersion"], "41");
    assert_eq!(
        patch.body["spec"]["ports"][1],
        json!({"name": "gw-8081", "port": 8081, "targetPort": 8081, "protocol": "TCP"})
    );
    let body = svc.clone();
    patch.respond(200, &body);
    let outcome = bounded("reconcile", task)
        .await
        .expect("task")
        .expect("reconcile");
    assert_eq!(outcome, Outcome::Patched);
}

#[test]
fn report_entries_map_to_their_api_and_parent_ownership() {
    let entry = |kind, namespace: &str| ObjectStatus {
        kind,
        namespace: namespace.to_owned(),
        name: "x".to_owned(),
        generation: Some(4),
        status: json!({}),
    };
    let report = vec![
        entry(ObjectKind::GatewayClass, ""),
        entry(ObjectKind::Gateway, "ns"),
        entry(ObjectKind::HttpRoute, "ns"),
        entry(ObjectKind::ModelRoute, "ns"),
        entry(ObjectKind::InferencePoolV1alpha2, "ns"),
        entry(ObjectKind::Pod, "ns"),
    ];
    let gateways = vec![("ns".to_owned(), "gw".to_owned())];
    let desired = kthena_operator::report::desired(&report, "volcano.sh/kthena-router", &gateways);
    let got: Vec<(String, String, Option<String>, ParentOwnership)> = desired
        .iter()
        .map(|d| {
            (
                d.target.api.api_version.clone(),
                d.target.api.plural.clone(),
                d.target.namespace.clone(),
                d.parents.clone(),
            )
        })
        .collect();
    let ns = Some("ns".to_owned());
    assert_eq!(
        got,
        vec![
            (
                "gateway.networking.k8s.io/v1".into(),
                "gatewayclasses".into(),
                None,
                ParentOwnership::Whole
            ),
            (
                "gateway.networking.k8s.io/v1".into(),
                "gateways".into(),
                ns.clone(),
                ParentOwnership::Whole
            ),
            (
                "gateway.networking.k8s.io/v1".into(),
                "httproutes".into(),
                ns.clone(),
                ParentOwnership::ControllerName("volcano.sh/kthena-router".into())
            ),
            (
                "networking.serving.volcano.sh/v1alpha1".into(),
                "modelroutes".into(),
                ns.clone(),
                ParentOwnership::Whole
            ),
            (
                "inference.networking.x-k8s.io/v1alpha2".into(),
                "inferencepools".into(),
                ns,
                ParentOwnership::Gateways(gateways.clone())
            ),
        ]
    );
    assert!(desired.iter().all(|d| d.generation == Some(4)));
}
