//! `auto` webhook certificates: generated certificates verify for the Service's DNS name, the
//! shared Secret and the caBundle against a scripted fake API server.

#[path = "support/fake_api.rs"]
mod fake_api;

use std::sync::Arc;

use fake_api::{bounded, pair};
use http::Method;
use jiff::{SignedDuration, Timestamp};
use kthena_operator::webhook_certs::{Bundle, ensure_secret, generate, patch_ca_bundle, renewal};
use serde_json::json;

/// A TLS handshake in memory: a client trusting only `ca_pem` connects to `name`.
fn handshake(bundle: &Bundle, name: &str) -> Result<(), String> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let cert = kthena_webhook::ServingCert::from_pem(
        bundle.cert_pem.as_bytes(),
        bundle.key_pem.as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let server = kthena_webhook::tls_config(Arc::new(cert)).map_err(|e| e.to_string())?;
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
    let bundle = generate("kthena-router-webhook", "kthena", Timestamp::now()).expect("generate");
    handshake(&bundle, "kthena-router-webhook.kthena.svc").expect("svc name");
    handshake(&bundle, "kthena-router-webhook.kthena.svc.cluster.local").expect("full name");
    assert!(handshake(&bundle, "other.kthena.svc").is_err());
}

const SECRET: &str = "/api/v1/namespaces/kthena/secrets/kthena-router-webhook-certs";
const SERVICE: &str = "kthena-router-webhook";

/// `bundle` as the Secret the API server returns, at `resource_version`.
fn secret(bundle: &Bundle, resource_version: &str) -> serde_json::Value {
    let b64 = |s: &str| {
        serde_json::to_value(k8s_openapi::ByteString(s.as_bytes().to_vec())).expect("json")
    };
    let mut data = json!({
        "ca.crt": b64(&bundle.ca_pem), "tls.crt": b64(&bundle.cert_pem), "tls.key": b64(&bundle.key_pem),
    });
    if let Some(key) = &bundle.ca_key_pem {
        data["ca.key"] = b64(key);
    }
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "kthena-router-webhook-certs", "namespace": "kthena", "resourceVersion": resource_version},
        "type": "kubernetes.io/tls",
        "data": data,
    })
}

/// `ensure_secret` for the router's Secret and Service in namespace kthena, at `now`.
async fn ensure(
    client: &kube::Client,
    now: Timestamp,
) -> Result<Bundle, kthena_operator::webhook_certs::CertError> {
    ensure_secret(
        client,
        "kthena",
        "kthena-router-webhook-certs",
        SERVICE,
        now,
    )
    .await
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

#[tokio::test]
async fn a_missing_secret_is_created_with_a_generated_bundle() {
    let (client, mut api) = pair();
    let task = tokio::spawn(async move {
        ensure_secret(
            &client,
            "kthena",
            "kthena-router-webhook-certs",
            "kthena-router-webhook",
            Timestamp::now(),
        )
        .await
    });
    api.expect(Method::GET, SECRET).await.fail(404, "NotFound");
    let create = api
        .expect(Method::POST, "/api/v1/namespaces/kthena/secrets")
        .await;
    assert_eq!(create.body["type"], "kubernetes.io/tls");
    for key in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
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
    let theirs = generate(SERVICE, "kthena", Timestamp::now()).expect("generate");
    let stored = secret(&theirs, "3");
    let (client, mut api) = pair();
    let task = tokio::spawn(async move { ensure(&client, Timestamp::now()).await });
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

#[test]
fn an_ending_certificate_is_renewed_under_the_same_ca() {
    let now = Timestamp::now();
    // Issued 340 days ago: 25 days left, within the 30-day renewal window.
    let old = generate(SERVICE, "kthena", now - days(340)).expect("generate");
    let fresh = generate(SERVICE, "kthena", now).expect("generate");
    assert_eq!(
        renewal(&fresh, SERVICE, "kthena", now).expect("check"),
        None
    );
    assert_eq!(
        renewal(&old, SERVICE, "kthena", now - days(300)).expect("check"),
        None,
        "325 days left is not renewed"
    );
    let renewed = renewal(&old, SERVICE, "kthena", now)
        .expect("check")
        .expect("renewed");
    assert_eq!(renewed.ca_pem, old.ca_pem, "the caBundle stays valid");
    assert_eq!(renewed.ca_key_pem, old.ca_key_pem);
    assert_ne!(renewed.cert_pem, old.cert_pem);
    assert_ne!(renewed.key_pem, old.key_pem);
    handshake(&renewed, "kthena-router-webhook.kthena.svc").expect("verifies with the old CA");
    assert_eq!(
        renewal(&renewed, SERVICE, "kthena", now).expect("check"),
        None
    );
}

#[test]
fn a_certificate_for_another_service_name_is_reissued() {
    let now = Timestamp::now();
    let bundle = generate(SERVICE, "kthena", now).expect("generate");
    let renewed = renewal(&bundle, "renamed", "kthena", now)
        .expect("check")
        .expect("reissued");
    assert_eq!(renewed.ca_pem, bundle.ca_pem);
    handshake(&renewed, "renamed.kthena.svc").expect("new name");
    assert!(handshake(&renewed, "kthena-router-webhook.kthena.svc").is_err());
}

#[test]
fn without_the_ca_key_or_with_an_ending_ca_a_new_ca_is_made() {
    let now = Timestamp::now();
    let mut keyless = generate(SERVICE, "kthena", now - days(340)).expect("generate");
    keyless.ca_key_pem = None;
    let renewed = renewal(&keyless, SERVICE, "kthena", now)
        .expect("check")
        .expect("renewed");
    assert_ne!(renewed.ca_pem, keyless.ca_pem);
    assert!(renewed.ca_key_pem.is_some());
    handshake(&renewed, "kthena-router-webhook.kthena.svc").expect("usable");

    // A CA with less than a certificate's lifetime left is replaced with the certificate.
    let old_ca = generate(SERVICE, "kthena", now - days(3400)).expect("generate");
    let renewed = renewal(&old_ca, SERVICE, "kthena", now)
        .expect("check")
        .expect("renewed");
    assert_ne!(renewed.ca_pem, old_ca.ca_pem);
}

#[tokio::test]
async fn an_ending_secret_is_renewed_with_the_resource_version_read() {
    let now = Timestamp::now();
    let old = generate(SERVICE, "kthena", now - days(340)).expect("generate");
    let (client, mut api) = pair();
    let task = tokio::spawn(async move { ensure(&client, now).await });
    api.expect(Method::GET, SECRET)
        .await
        .respond(200, &secret(&old, "12"));
    let patch = api.expect(Method::PATCH, SECRET).await;
    assert_eq!(patch.body["metadata"]["resourceVersion"], "12");
    let stored = secret(&old, "12");
    assert_eq!(patch.body["data"]["ca.crt"], stored["data"]["ca.crt"]);
    assert_ne!(patch.body["data"]["tls.crt"], stored["data"]["tls.crt"]);
    let mut written = stored.clone();
    written["data"] = patch.body["data"].clone();
    patch.respond(200, &written);
    let bundle = bounded("ensure", task)
        .await
        .expect("task")
        .expect("bundle");
    assert_eq!(bundle.ca_pem, old.ca_pem);
    handshake(&bundle, "kthena-router-webhook.kthena.svc").expect("usable");
    assert_eq!(
        renewal(&bundle, SERVICE, "kthena", now).expect("check"),
        None
    );
}

#[tokio::test]
async fn a_renewal_another_replica_wrote_first_is_used() {
    let now = Timestamp::now();
    let old = generate(SERVICE, "kthena", now - days(340)).expect("generate");
    let theirs = renewal(&old, SERVICE, "kthena", now)
        .expect("check")
        .expect("renewed");
    let (client, mut api) = pair();
    let task = tokio::spawn(async move { ensure(&client, now).await });
    api.expect(Method::GET, SECRET)
        .await
        .respond(200, &secret(&old, "12"));
    api.expect(Method::PATCH, SECRET)
        .await
        .fail(409, "Conflict");
    api.expect(Method::GET, SECRET)
        .await
        .respond(200, &secret(&theirs, "13"));
    let bundle = bounded("ensure", task)
        .await
        .expect("task")
        .expect("bundle");
    assert_eq!(bundle, theirs);
}
