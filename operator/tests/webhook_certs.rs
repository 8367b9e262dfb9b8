//! `auto` webhook certificates: generated certificates verify for the Service's DNS name, the
//! shared Secret and the caBundle against a scripted fake API server.

#[path = "support/fake_api.rs"]
mod fake_api;

use std::sync::Arc;

use fake_api::{bounded, pair};
use http::Method;
use kthena_operator::webhook_certs::{ensure_secret, generate, patch_ca_bundle};
use serde_json::json;

/// A TLS handshake in memory: a client trusting only `ca_pem` connects to `name`.
fn handshake(bundle: &kthena_operator::webhook_certs::Bundle, name: &str) -> Result<(), String> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let server = kthena_webhook::tls_config(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(bundle.ca_pem.as_bytes()).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let mut c = rustls::ClientConnection::new(Arc::new(client), name).map_err(|e| e.to_string())?;
    let mut s = rustls::ServerConnection::new(Arc::new(server)).map_err(|e| e.to_string())?;
    for _ in 0..10 {
        let mut buf = Vec::new();
        c.write_tls(&mut buf).map_err(|e| e.to_string())?;
        s.read_tls(&mut buf.as_slice()).map_err(|e| e.to_string())?;
        s.process_new_packets().map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.write_tls(&mut buf).map_err(|e| e.to_string())?;
        c.read_tls(&mut buf.as_slice()).map_err(|e| e.to_string())?;
        c.process_new_packets().map_err(|e| e.to_string())?;
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
    }
    Err("handshake did not finish".to_owned())
}

#[test]
fn generated_certificate_verifies_for_the_service_names_only() {
    let bundle = generate("kthena-router-webhook", "kthena").expect("generate");
    handshake(&bundle, "kthena-router-webhook.kthena.svc").expect("svc name");
    handshake(&bundle, "kthena-router-webhook.kthena.svc.cluster.local").expect("full name");
    assert!(handshake(&bundle, "other.kthena.svc").is_err());
}

const SECRET: &str = "/api/v1/namespaces/kthena/secrets/kthena-router-webhook-certs";

#[tokio::test]
async fn a_missing_secret_is_created_with_a_generated_bundle() {
    let (client, mut api) = pair();
    let task = tokio::spawn(async move {
        ensure_secret(
            &client,
            "kthena",
            "kthena-router-webhook-certs",
            "kthena-router-webhook",
        )
        .await
    });
    api.expect(Method::GET, SECRET).await.fail(404, "NotFound");
    let create = api
        .expect(Method::POST, "/api/v1/namespaces/kthena/secrets")
        .await;
    assert_eq!(create.body["type"], "kubernetes.io/tls");
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        assert!(
            create.body["data"][key].is_string(),
            "{key}: {}",
            create.body
        );
    }
    let body = create.body.clone();
    create.respond(201, &body);
    let bundle = bounded("ensure", task)
        .await
        .expect("task")
        .expect("bundle");
    handshake(&bundle, "kthena-router-webhook.kthena.svc").expect("usable");
}

#[tokio::test]
async fn a_secret_another_replica_created_first_is_used() {
    let theirs = generate("kthena-router-webhook", "kthena").expect("generate");
    let b64 = |s: &str| {
        serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec())).expect("json")
    };
    let stored = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "kthena-router-webhook-certs", "namespace": "kthena"},
        "type": "kubernetes.io/tls",
        "data": {"ca.crt": b64(&theirs.ca_pem), "tls.crt": b64(&theirs.cert_pem), "tls.key": b64(&theirs.key_pem)},
    });
    let (client, mut api) = pair();
    let task = tokio::spawn(async move {
        ensure_secret(
            &client,
            "kthena",
            "kthena-router-webhook-certs",
            "kthena-router-webhook",
        )
        .await
    });
    api.expect(Method::GET, SECRET).await.fail(404, "NotFound");
    api.expect(Method::POST, "/api/v1/namespaces/kthena/secrets")
        .await
        .fail(409, "AlreadyExists");
    api.expect(Method::GET, SECRET).await.respond(200, &stored);
    let bundle = bounded("ensure", task)
        .await
        .expect("task")
        .expect("bundle");
    assert_eq!(bundle, theirs);
}

#[tokio::test]
async fn the_ca_bundle_is_written_into_our_webhooks_only_once() {
    let vwc = |ours_bundle: Option<&str>| {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "kthena-router-validating-webhook", "resourceVersion": "7"},
            "webhooks": [
                {"name": "validate-modelroute.volcano.sh", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                 "clientConfig": {"service": {"name": "kthena-router-webhook", "namespace": "kthena", "path": "/validate/modelroute"},
                                  "caBundle": ours_bundle}},
                {"name": "someone.else.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                 "clientConfig": {"service": {"name": "other", "namespace": "kthena"}}},
            ],
        })
    };
    let path = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/kthena-router-validating-webhook";
    let (client, mut api) = pair();
    let task = tokio::spawn(async move {
        let first = patch_ca_bundle(
            &client,
            "kthena-router-validating-webhook",
            "kthena",
            "kthena-router-webhook",
            "CA PEM",
        )
        .await;
        let second = patch_ca_bundle(
            &client,
            "kthena-router-validating-webhook",
            "kthena",
            "kthena-router-webhook",
            "CA PEM",
        )
        .await;
        (first, second)
    });
    api.expect(Method::GET, path).await.respond(200, &vwc(None));
    let patch = api.expect(Method::PATCH, path).await;
    assert_eq!(patch.body["metadata"]["resourceVersion"], "7");
    let encoded = serde_json::to_value(k8s_openapi::ByteString(b"CA PEM".to_vec())).expect("json");
    assert_eq!(
        patch.body["webhooks"][0]["clientConfig"]["caBundle"],
        encoded
    );
    assert!(patch.body["webhooks"][1]["clientConfig"]["caBundle"].is_null());
    patch.respond(200, &vwc(encoded.as_str()));
    api.expect(Method::GET, path)
        .await
        .respond(200, &vwc(encoded.as_str()));
    let (first, second) = bounded("patch", task).await.expect("task");
    assert_eq!(first.expect("first"), Some(1));
    assert_eq!(second.expect("second"), Some(0));
}
