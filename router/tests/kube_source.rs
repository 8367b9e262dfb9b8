//! The Kubernetes source against a scripted fake API server (kube `Client` over
//! `tower_test::mock`): the first configuration waits for every initial list, a kind whose
//! CRD is missing does not block it, and the watched objects are what gets served.

use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use http::{Request, Response};
use kthena_dataplane::actors::index::Index;
use kthena_dataplane::actors::route_set::RouteSet;
use kthena_dataplane::source::GatewayOptions;
use kthena_dataplane::source::kube::{KubeOptions, KubeSource};
use kthena_dataplane::state::Shared;
use kube::client::Body;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn list(kind: &str, api_version: &str, items: Value) -> Value {
    json!({"kind": format!("{kind}List"), "apiVersion": api_version,
           "metadata": {"resourceVersion": "10"}, "items": items})
}

fn respond(reply: tower_test::mock::SendResponse<Response<Body>>, code: u16, body: &Value) {
    let response = Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).expect("json")))
        .expect("response");
    reply.send_response(response);
}

#[actix_rt::test]
async fn first_configuration_waits_for_every_list_and_survives_a_missing_crd() {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "default");
    let shared = Arc::new(Shared::default());
    let route_set = RouteSet::new(shared.clone(), Default::default()).start();
    let index = Index::new(shared.clone(), route_set, None, None).start();
    let options = KubeOptions {
        gateway: GatewayOptions::default(),
        watch_namespace: Some("team".into()),
        service_name: "kthena-router".into(),
        debounce: Duration::from_millis(1),
    };
    let _source = KubeSource::start(client, options, index);
    let mut applied = shared.applied.subscribe();

    let route = json!({
        "apiVersion": "networking.serving.volcano.sh/v1alpha1", "kind": "ModelRoute",
        "metadata": {"name": "r", "namespace": "team", "generation": 1, "resourceVersion": "5"},
        "spec": {"modelName": "m", "rules": [{"targetModels": [{"modelServerName": "s"}]}]},
    });
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team", "labels": {"app": "engine"}, "resourceVersion": "6"},
        "status": {"phase": "Running", "podIP": "10.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}]},
    });
    // Watch requests stay open: held here so the watchers wait instead of reconnecting.
    let mut open = Vec::new();
    let mut listed = Vec::new();
    while listed.len() < 5 {
        let (request, reply) = tokio::time::timeout(WAIT, handle.next_request())
            .await
            .expect("a request within the deadline")
            .expect("client alive");
        let path = request.uri().path().to_owned();
        let watch = request
            .uri()
            .query()
            .is_some_and(|q| q.contains("watch=true"));
        if watch {
            open.push(reply);
            continue;
        }
        assert!(
            path.contains("/namespaces/team/"),
            "--watch-namespace limits the lists: {path}"
        );
        // Nothing is applied before every initial list is done.
        assert_eq!(*applied.borrow(), 0, "applied before {path} was listed");
        if path.ends_with("/modelroutes") {
            respond(
                reply,
                200,
                &list(
                    "ModelRoute",
                    "networking.serving.volcano.sh/v1alpha1",
                    json!([route]),
                ),
            );
        } else if path.ends_with("/pods") {
            respond(reply, 200, &list("Pod", "v1", json!([pod])));
        } else if path.ends_with("/externalmodelproviders") {
            respond(
                reply,
                200,
                &list(
                    "ExternalModelProvider",
                    "networking.serving.volcano.sh/v1alpha1",
                    json!([]),
                ),
            );
        } else if path.ends_with("/secrets") {
            // Only the Secrets labelled as provider credentials are listed.
            let query = request.uri().query().unwrap_or_default().to_owned();
            assert!(
                query.contains("labelSelector=networking.serving.volcano.sh%2Fexternal-model-provider-credential%3Dtrue"),
                "{query}"
            );
            respond(reply, 200, &list("Secret", "v1", json!([])));
        } else if path.ends_with("/modelservers") {
            // The CRD is not installed: 404. Served as empty, retried in the background.
            respond(
                reply,
                404,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "the server could not find the requested resource"}),
            );
        } else {
            panic!("unexpected list {path}");
        }
        listed.push(path);
    }
    tokio::time::timeout(WAIT, applied.changed())
        .await
        .expect("a configuration is applied once every kind is listed")
        .expect("shared alive");
    assert!(shared.is_ready());
    let inputs = shared.status_inputs.load();
    assert_eq!(inputs.routes.len(), 1);
    assert_eq!(
        inputs
            .routes
            .values()
            .next()
            .expect("a route")
            .id
            .to_string(),
        "team/r"
    );
    assert_eq!(shared.dump.load().pods.len(), 1);
    drop(open);
}
