//! The webhook as `kthena-router` serves it in Kubernetes mode: certificate from files, the
//! watchers' objects as the cluster view, real HTTPS on loopback.

use std::sync::Arc;

use kthena_dataplane::state::{ConfigDump, Shared};
use kthena_operator::webhook::{Watched, WebhookOptions, reload_files, start};
use serde_json::{Value, json};

fn route(name: &str, model: &str) -> Value {
    json!({
        "apiVersion": "networking.serving.volcano.sh/v1alpha1", "kind": "ModelRoute",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"modelName": model, "rules": [{"targetModels": [{"modelServerName": "s"}]}]},
    })
}

fn review(object: Value) -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "networking.serving.volcano.sh", "version": "v1alpha1", "kind": "ModelRoute"},
            "resource": {"group": "networking.serving.volcano.sh", "version": "v1alpha1", "resource": "modelroutes"},
            "name": object["metadata"]["name"], "namespace": "team",
            "operation": "CREATE", "userInfo": {"username": "admin"},
            "object": object, "dryRun": false,
        }
    })
    .to_string()
}

#[actix_rt::test]
async fn the_webhook_serves_with_file_certificates_and_sees_the_watched_routes() {
    let issued =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("test certificate");
    let dir = std::env::temp_dir().join(format!("kthena-webhook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_file, issued.cert.pem()).expect("cert");
    std::fs::write(&key_file, issued.key_pair.serialize_pem()).expect("key");
    // The watchers hold a route serving "m" in namespace team.
    let shared = Arc::new(Shared::default());
    shared.dump.store(Arc::new(ConfigDump {
        modelroutes: [Arc::new(
            serde_json::from_value(route("first", "m")).expect("a ModelRoute"),
        )]
        .into_iter()
        .collect(),
        ..ConfigDump::default()
    }));
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr").port()
    };
    let opts = WebhookOptions {
        port,
        cert_file: cert_file.clone(),
        key_file,
        review: Default::default(),
        auto: None,
    };
    let serving = start(&opts, shared).expect("webhook starts");

    let mut roots = rustls::RootCertStore::empty();
    roots.add(issued.cert.der().clone()).expect("trust");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let client = awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(Arc::new(config)))
        .finish();
    let url = format!("https://127.0.0.1:{port}/validate/modelroute");
    let ask = |object: Value| {
        let client = &client;
        let url = &url;
        async move {
            let mut res = client
                .post(url)
                .content_type("application/json")
                .send_body(review(object))
                .await
                .expect("answer");
            assert_eq!(res.status().as_u16(), 200);
            let body: Value = res.json().await.expect("JSON");
            body["response"].clone()
        }
    };
    let clash = ask(route("second", "m")).await;
    assert_eq!(clash["allowed"], false, "{clash}");
    let message = clash["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("spec.modelName") && message.contains("team/first"),
        "{message}"
    );
    let fine = ask(route("second", "other")).await;
    assert_eq!(fine["allowed"], true, "{fine}");
    assert_eq!(fine["uid"], "u-1");
    serving.handle.stop(false).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_certificate_is_a_clear_error() {
    let opts = WebhookOptions {
        port: 0,
        cert_file: "/nonexistent/tls.crt".into(),
        key_file: "/nonexistent/tls.key".into(),
        review: Default::default(),
        auto: None,
    };
    let err = start(&opts, Arc::new(Shared::default())).expect_err("no certificate");
    assert!(err.to_string().contains("/nonexistent/tls.crt"), "{err}");
}

#[actix_rt::test]
async fn renewed_certificate_files_are_served_after_a_reload_and_broken_ones_are_not() {
    let issue = || {
        let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
        (
            c.cert.pem(),
            c.key_pair.serialize_pem(),
            c.cert.der().clone(),
        )
    };
    let dir = std::env::temp_dir().join(format!("kthena-webhook-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
    let write = |cert: &str, key: &str| {
        std::fs::write(&cert_file, cert).expect("cert");
        std::fs::write(&key_file, key).expect("key");
    };
    let (first_pem, first_key, first) = issue();
    write(&first_pem, &first_key);
    let opts = WebhookOptions {
        port: 0,
        cert_file: cert_file.clone(),
        key_file: key_file.clone(),
        review: Default::default(),
        auto: None,
    };
    let serving = start(&opts, Arc::new(Shared::default())).expect("webhook starts");
    assert_eq!(serving.cert.leaf(), first);
    assert!(!reload_files(&opts, &serving.cert).expect("unchanged"));

    let (next_pem, next_key, next) = issue();
    write(&next_pem, &next_key);
    assert!(reload_files(&opts, &serving.cert).expect("reloaded"));
    assert_eq!(serving.cert.leaf(), next);

    // Half-way through a rotation (new certificate, old key) and garbage: the last good stays.
    write(&first_pem, &next_key);
    assert!(reload_files(&opts, &serving.cert).is_err());
    write("garbage", "garbage");
    assert!(reload_files(&opts, &serving.cert).is_err());
    std::fs::remove_file(&key_file).expect("remove");
    let err = reload_files(&opts, &serving.cert).expect_err("missing");
    assert!(err.to_string().contains("tls.key"), "{err}");
    assert_eq!(serving.cert.leaf(), next);
    serving.handle.stop(false).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_webhook_judges_gateways_of_our_classes_only() {
    use kthena_webhook::{Cluster, Scope};
    let shared = Arc::new(Shared::default());
    shared
        .status_inputs
        .store(Arc::new(kthena_dataplane::state::StatusInputs {
            gateway_classes: vec!["mine".to_owned()].into(),
            ..Default::default()
        }));
    let Scope::Classes(classes) = Watched(shared).scope() else {
        panic!("a router judges its own classes only");
    };
    assert_eq!(
        classes.into_iter().collect::<Vec<_>>(),
        ["kthena-router", "mine"]
    );
}
