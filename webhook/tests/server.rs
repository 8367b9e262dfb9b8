//! The admission server over real HTTPS on 127.0.0.1: AdmissionReview v1 in and out, 400 for
//! what is not a review, 413 for oversized bodies, and TLS 1.2+ only.

#[path = "support/corpus.rs"]
mod corpus;

use std::net::TcpListener;
use std::sync::Arc;

use corpus::{context, examples, file_name, invalid_examples, load};
use kthena_webhook::server::Endpoint;

use kthena_api::manifest::{self, Object};
use kthena_webhook::server::{MAX_BODY_BYTES, PROTOCOL_VERSIONS};
use kthena_webhook::{Objects, Options, ServingCert, State, serve, tls_config};
use serde_json::{Value, json};

/// A running webhook and a client that trusts its certificate.
struct Webhook {
    base: String,
    client: awc::Client,
    handle: actix_web::dev::ServerHandle,
    cert: Arc<ServingCert>,
    /// The certificate served at start.
    first: rustls::pki_types::CertificateDer<'static>,
}

/// A self-signed certificate for localhost and 127.0.0.1: (certificate PEM, key PEM, DER).
fn self_signed() -> (String, String, rustls::pki_types::CertificateDer<'static>) {
    let issued =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("test certificate");
    (
        issued.cert.pem(),
        issued.key_pair.serialize_pem(),
        issued.cert.der().clone(),
    )
}

/// A client trusting only `trusted`, speaking only `versions`.
fn client(
    trusted: rustls::pki_types::CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> awc::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted).expect("trust the test certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("client versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(config)))
        .finish()
}

impl Webhook {
    /// Starts the server on a free port of 127.0.0.1 with a fresh certificate for localhost,
    /// reviewing against `cluster`; the client speaks only `versions`.
    fn start_with(
        cluster: Objects,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Self {
        let (cert_pem, key_pem, der) = self_signed();
        let cert = Arc::new(
            ServingCert::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).expect("certificate"),
        );
        let tls = tls_config(cert.clone()).expect("server TLS");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("bound address").port();
        // The examples are written for gateway mode.
        let options = Options {
            gateway_mode: true,
            ..Options::default()
        };
        let state = State::new(Arc::new(cluster), options);
        let server = serve(listener, tls, state).expect("server starts");
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            base: format!("https://127.0.0.1:{port}"),
            client: client(der.clone(), versions),
            handle,
            cert,
            first: der,
        }
    }

    fn start(cluster: Objects) -> Self {
        Self::start_with(cluster, PROTOCOL_VERSIONS)
    }

    /// POSTs `body` to `path`: the status and the body.
    async fn post(&self, path: &str, body: String) -> (u16, Vec<u8>) {
        let mut res = self
            .client
            .post(format!("{}{path}", self.base))
            .insert_header(("content-type", "application/json"))
            .send_body(body)
            .await
            .expect("request answered");
        let body = res
            .body()
            .limit(MAX_BODY_BYTES)
            .await
            .expect("response body");
        (res.status().as_u16(), body.to_vec())
    }

    /// POSTs an AdmissionReview and returns its `response`.
    async fn review(&self, path: &str, review: &Value) -> Value {
        let (status, body) = self.post(path, review.to_string()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let answer: Value = serde_json::from_slice(&body).expect("JSON answer");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer}");
        assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
        answer["response"].clone()
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// The one object of an example file, as JSON.
fn example(file: &str) -> Value {
    let objects = manifest::load(&examples().join(file)).expect("example parses");
    let (_, object) = objects.into_iter().next().expect("one object");
    to_json(&object)
}

fn to_json(object: &Object) -> Value {
    let value = match object {
        Object::ModelRoute(o) => serde_json::to_value(o),
        Object::ModelServer(o) => serde_json::to_value(o),
        Object::Gateway(o) => serde_json::to_value(o),
        Object::HttpRoute(o) => serde_json::to_value(o),
        Object::InferencePool(o) => serde_json::to_value(o),
        Object::InferencePoolV1alpha2(o) => serde_json::to_value(o),
        Object::InferenceModel(o) => serde_json::to_value(o),
        Object::InferenceObjective(o) => serde_json::to_value(o),
        other => panic!("no JSON for {other:?} in this test"),
    };
    value.expect("serializable")
}

/// An AdmissionReview v1 for `object` (CREATE unless `operation` says otherwise).
fn admission_review(uid: &str, operation: &str, object: Value) -> Value {
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
    let (group, version) = api_version
        .rsplit_once('/')
        .unwrap_or(("", api_version.as_str()));
    let kind = object["kind"].clone();
    let (name, namespace) = (
        object["metadata"]["name"].clone(),
        object["metadata"]["namespace"].clone(),
    );
    let (object, old) = match operation {
        "DELETE" => (Value::Null, object),
        _ => (object, Value::Null),
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": "things"},
            "name": name,
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin"},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

#[actix_rt::test]
async fn a_valid_model_route_is_allowed_with_its_uid_echoed() {
    let webhook = Webhook::start(Objects::default());
    let review = admission_review("uid-1", "CREATE", example("modelroute-subset.yaml"));
    let response = webhook.review("/validate/modelroute", &review).await;
    assert_eq!(response["uid"], "uid-1", "{response}");
    assert_eq!(response["allowed"], true, "{response}");
    webhook.stop().await;
}

#[actix_rt::test]
async fn fields_not_honored_yet_are_allowed_with_a_warning_naming_them() {
    let webhook = Webhook::start(Objects::default());
    let mut server = example("modelserver-deepseek-r1-1-5b.yaml");
    server["spec"]["workloadSelector"]["pdGroup"] = serde_json::json!({
        "groupKey": "g", "prefillLabels": {"role": "p"}, "decodeLabels": {"role": "d"}});
    let review = admission_review("uid-w", "CREATE", server);
    let response = webhook.review("/validate/modelserver", &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    let warnings = response["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{response}");
    let w = warnings[0].as_str().unwrap_or_default();
    assert!(w.starts_with("spec.workloadSelector.pdGroup: "), "{w}");
    // External providers are called: a route naming one gets no warning.
    let mut route = example("modelroute-subset.yaml");
    route["spec"]["rules"][0]["targetModels"][1] =
        serde_json::json!({"externalModelProviderName": "openai", "weight": 30});
    let review = admission_review("uid-p", "CREATE", route);
    let response = webhook.review("/validate/modelroute", &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response.get("warnings"), None, "{response}");
    // Nothing unhonored (global rate limits are shared through Redis): no warnings at all.
    for (uid, file) in [
        ("uid-n", "modelroute-subset.yaml"),
        ("uid-g", "modelroute-global-rate-limit.yaml"),
    ] {
        let review = admission_review(uid, "CREATE", example(file));
        let response = webhook.review("/validate/modelroute", &review).await;
        assert_eq!(response.get("warnings"), None, "{file}: {response}");
    }
    webhook.stop().await;
}

#[actix_rt::test]
async fn an_invalid_model_route_is_denied_naming_the_field() {
    let webhook = Webhook::start(Objects::default());
    let mut route = example("modelroute-subset.yaml");
    route["spec"]["rules"][0]["targetModels"][0]["weight"] = json!(101);
    route["spec"]["loraAdapters"] = json!([""]);
    let response = webhook
        .review(
            "/validate/modelroute",
            &admission_review("uid-2", "CREATE", route),
        )
        .await;
    assert_eq!(response["uid"], "uid-2", "{response}");
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "spec.loraAdapters[0]: lora adapter name cannot be an empty string; \
         spec.rules[0].targetModels[0].weight: must be at most 100, got 101",
        "{response}"
    );
    webhook.stop().await;
}

#[actix_rt::test]
async fn a_model_name_served_on_the_same_listener_is_denied_naming_the_other_route() {
    let context = manifest::load(&examples().join("invalid/context")).expect("context");
    let webhook = Webhook::start(context.into_iter().map(|(_, o)| o).collect());
    let route = example("invalid/modelroute-duplicate-modelname-on-gateway.yaml");
    let response = webhook
        .review(
            "/validate/modelroute",
            &admission_review("uid-3", "CREATE", route),
        )
        .await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "spec.modelName: \"deepseek-r1-taken\" is already served by ModelRoute \
         default/deepseek-existing on Gateway default/default listener http",
        "{response}"
    );
    webhook.stop().await;
}

#[actix_rt::test]
async fn every_endpoint_admits_a_valid_object_of_its_kind() {
    let webhook = Webhook::start(Objects::default());
    let inference_pools = manifest::load(&examples().join("inferencepool.yaml")).expect("pools");
    let mut cases = vec![
        (
            "/validate/modelserver",
            example("modelserver-deepseek-r1-7b.yaml"),
        ),
        ("/validate/inferencemodel", example("inferencemodel.yaml")),
        ("/validate/httproute", example("httproute.yaml")),
        ("/validate/gateway", example("gateway.yaml")),
    ];
    for (_, pool) in &inference_pools {
        cases.push(("/validate/inferencepool", to_json(pool)));
    }
    assert_eq!(cases.len(), 6);
    for (path, object) in cases {
        let response = webhook
            .review(path, &admission_review("uid", "CREATE", object))
            .await;
        assert_eq!(response["allowed"], true, "{path}: {response}");
    }
    webhook.stop().await;
}

#[actix_rt::test]
async fn an_invalid_inference_pool_is_denied_naming_the_field() {
    let webhook = Webhook::start(Objects::default());
    let pool = example("invalid/inferencepool-v1alpha2-port-0.yaml");
    let response = webhook
        .review(
            "/validate/inferencepool",
            &admission_review("uid", "UPDATE", pool),
        )
        .await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "spec.targetPortNumber: must be between 1 and 65535, got 0"
    );
    webhook.stop().await;
}

#[actix_rt::test]
async fn a_kind_sent_to_another_kinds_endpoint_is_denied() {
    let webhook = Webhook::start(Objects::default());
    let server = example("modelserver-deepseek-r1-7b.yaml");
    let response = webhook
        .review(
            "/validate/modelroute",
            &admission_review("uid", "CREATE", server),
        )
        .await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(
        response["status"]["message"],
        "/validate/modelroute validates ModelRoute, not \
         networking.serving.volcano.sh/v1alpha1 ModelServer"
    );
    webhook.stop().await;
}

#[actix_rt::test]
async fn an_object_that_does_not_deserialize_is_denied() {
    let webhook = Webhook::start(Objects::default());
    let mut route = example("modelroute-simple.yaml");
    route["spec"]["rules"][0]["targetModels"][0]["weight"] = json!(-1);
    let response = webhook
        .review(
            "/validate/modelroute",
            &admission_review("uid", "CREATE", route),
        )
        .await;
    assert_eq!(response["allowed"], false, "{response}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("invalid ModelRoute: "), "{message}");
    webhook.stop().await;
}

#[actix_rt::test]
async fn delete_is_allowed_even_for_an_invalid_object() {
    let webhook = Webhook::start(Objects::default());
    let route = example("invalid/modelroute-weight-101.yaml");
    let response = webhook
        .review(
            "/validate/modelroute",
            &admission_review("uid-del", "DELETE", route),
        )
        .await;
    assert_eq!(response["uid"], "uid-del", "{response}");
    assert_eq!(response["allowed"], true, "{response}");
    webhook.stop().await;
}

#[actix_rt::test]
async fn malformed_json_is_answered_400() {
    let webhook = Webhook::start(Objects::default());
    let (status, _) = webhook
        .post("/validate/modelroute", "{\"apiVersion\": ".to_owned())
        .await;
    assert_eq!(status, 400);
    webhook.stop().await;
}

#[actix_rt::test]
async fn a_review_without_request_is_answered_400() {
    let webhook = Webhook::start(Objects::default());
    let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"});
    let (status, body) = webhook
        .post("/validate/modelroute", review.to_string())
        .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    webhook.stop().await;
}

#[actix_rt::test]
async fn an_oversized_body_is_answered_413() {
    let webhook = Webhook::start(Objects::default());
    let mut route = example("modelroute-simple.yaml");
    route["metadata"]["annotations"] = json!({"padding": "x".repeat(MAX_BODY_BYTES)});
    let review = admission_review("uid", "CREATE", route);
    let (status, _) = webhook
        .post("/validate/modelroute", review.to_string())
        .await;
    assert_eq!(status, 413);
    webhook.stop().await;
}

#[actix_rt::test]
async fn healthz_answers_200() {
    let webhook = Webhook::start(Objects::default());
    let res = webhook
        .client
        .get(format!("{}/healthz", webhook.base))
        .send()
        .await
        .expect("answered");
    assert_eq!(res.status().as_u16(), 200);
    webhook.stop().await;
}

#[actix_rt::test]
async fn tls_1_2_and_1_3_are_offered_and_nothing_older() {
    let versions: Vec<_> = PROTOCOL_VERSIONS.iter().map(|v| v.version).collect();
    assert_eq!(
        versions,
        [
            rustls::ProtocolVersion::TLSv1_3,
            rustls::ProtocolVersion::TLSv1_2
        ]
    );
    for only in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let webhook = Webhook::start_with(Objects::default(), &[only]);
        let res = webhook
            .client
            .get(format!("{}/healthz", webhook.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{:?} handshake: {e}", only.version));
        assert_eq!(res.status().as_u16(), 200);
        webhook.stop().await;
    }
}

#[actix_rt::test]
async fn every_example_is_allowed_over_https() {
    let objects = load(&examples());
    let webhook = Webhook::start(objects.iter().map(|(_, o)| o.clone()).collect());
    let mut failures = Vec::new();
    let mut reviewed = 0;
    for (file, object) in &objects {
        let Some(endpoint) = Endpoint::of(object) else {
            continue;
        };
        let review = admission_review("uid", "CREATE", to_json(object));
        let response = webhook.review(endpoint.path(), &review).await;
        reviewed += 1;
        if response["allowed"] != true {
            failures.push(format!("{}: {response}", file_name(file)));
        }
    }
    assert!(reviewed >= 15, "only {reviewed} objects reviewed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    webhook.stop().await;
}

#[actix_rt::test]
async fn every_invalid_example_is_denied_over_https_naming_its_field() {
    let webhook = Webhook::start(context());
    let cases = invalid_examples();
    assert!(cases.len() >= 30, "only {} invalid examples", cases.len());
    let mut failures = Vec::new();
    for (file, object, expect) in &cases {
        let name = file_name(file);
        let Some(endpoint) = Endpoint::of(object) else {
            failures.push(format!("{name}: no endpoint validates it"));
            continue;
        };
        let review = admission_review(name, "CREATE", to_json(object));
        let response = webhook.review(endpoint.path(), &review).await;
        let message = response["status"]["message"].as_str().unwrap_or_default();
        if response["allowed"] != false || response["uid"] != name {
            failures.push(format!("{name}: {response}"));
        } else if !message.contains(&format!("{expect}: ")) {
            failures.push(format!("{name}: {expect:?} not named in {message:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    webhook.stop().await;
}

#[actix_rt::test]
async fn a_replaced_certificate_is_served_from_the_next_connection_without_restart() {
    let webhook = Webhook::start(Objects::default());
    let healthz = format!("{}/healthz", webhook.base);
    // A new client per check: a new connection, a new handshake.
    let handshake = |trusted: &rustls::pki_types::CertificateDer<'static>| {
        let client = client(trusted.clone(), PROTOCOL_VERSIONS);
        let url = healthz.clone();
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    };
    let first = webhook.first.clone();
    let (next_pem, next_key, next) = self_signed();
    assert_eq!(handshake(&first).await.ok(), Some(200));
    assert!(handshake(&next).await.is_err(), "not served yet");

    // Broken replacements change nothing.
    let (_, other_key, _) = self_signed();
    for key in [b"not a key".as_slice(), other_key.as_bytes()] {
        assert!(webhook.cert.replace(next_pem.as_bytes(), key).is_err());
    }
    assert_eq!(handshake(&first).await.ok(), Some(200));

    let replaced = webhook
        .cert
        .replace(next_pem.as_bytes(), next_key.as_bytes());
    assert!(replaced.expect("replaced"));
    let again = webhook
        .cert
        .replace(next_pem.as_bytes(), next_key.as_bytes());
    assert!(
        !again.expect("same again"),
        "the same certificate is no change"
    );
    assert_eq!(webhook.cert.leaf(), next);
    assert_eq!(handshake(&next).await.ok(), Some(200));
    assert!(handshake(&first).await.is_err(), "the old one is gone");
    webhook.stop().await;
}
