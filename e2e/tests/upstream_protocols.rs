//! How the router speaks to Pods: TLS for `workloadPort.protocol: https` (with and without
//! certificate verification) and HTTP/2 with prior knowledge for `appProtocol:
//! kubernetes.io/h2c` backends (InferencePool and Service), against mock engines that speak
//! only what they are started to speak.

use kthena_e2e::{Env, chat, client, free_port, get, post};

/// A CA and an engine certificate it signed for `engine.test`: (ca.pem, cert.pem, key.pem).
fn signed_engine_cert() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("engine key");
    let cert = rcgen::CertificateParams::new(vec!["engine.test".to_owned()])
        .expect("engine params")
        .signed_by(&key, &ca, &ca_key)
        .expect("engine certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The `FieldsHonored` condition of ModelServer `name` in `/debug/status`.
async fn fields_honored(router: &kthena_e2e::Router, name: &str) -> serde_json::Value {
    let status = router.debug("/debug/status").await.json();
    status["modelservers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == name)
        .and_then(|s| s["status"]["conditions"].as_array())
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "FieldsHonored")
        .cloned()
        .unwrap_or_else(|| panic!("no FieldsHonored for {name}: {status}"))
}

#[actix_rt::test]
async fn https_pods_are_spoken_to_over_tls_verified_as_the_flags_say() {
    let mut env = Env::new();
    let (ca, cert, key) = signed_engine_cert();
    // Beside the manifests: the folder source reads `*.yaml`, `*.yml` and `*.json` only.
    env.write("ca.pem", &ca);
    env.write("engine.pem", &cert);
    env.write("engine.key", &key);
    let (other_ca, _, _) = signed_engine_cert();
    env.write("other-ca.pem", &other_ca);
    let dir = env.dir.clone();
    let path = |f: &str| dir.join(f).to_str().expect("utf-8 path").to_owned();
    env.mock(
        "tls-0",
        &[("app", "tls")],
        &[
            "--served-model-name",
            "secure",
            "--ssl-certfile",
            &path("engine.pem"),
            "--ssl-keyfile",
            &path("engine.key"),
        ],
    );
    let port = env.port.expect("mock started");
    env.write(
        "ms-tls.yaml",
        &format!(
            "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelServer\n\
             metadata: {{name: tls, namespace: default}}\nspec:\n  inferenceEngine: vLLM\n  \
             workloadSelector: {{matchLabels: {{app: tls}}}}\n  workloadPort: {{port: {port}, protocol: https}}\n"
        ),
    );
    env.route("secure", "secure", "tls");
    let c = client();

    // Default: encrypted, certificate not verified (dialled by IP, as Pods are).
    let router = env.router(&[]);
    let a = post(&c, &router.url("/v1/chat/completions"), &[], chat("secure")).await;
    assert_eq!(
        (a.status, a.pod.as_deref()),
        (200, Some("tls-0")),
        "{}",
        a.body
    );
    let honored = fields_honored(&router, "tls").await;
    assert_eq!(honored["status"], "True", "{honored}");
    drop(router);

    // Verified against the CA that signed it, by the name it carries.
    let verified = env.router(&[
        "--pod-tls-ca-file",
        &path("ca.pem"),
        "--pod-tls-server-name",
        "engine.test",
    ]);
    let a = post(
        &c,
        &verified.url("/v1/chat/completions"),
        &[],
        chat("secure"),
    )
    .await;
    assert_eq!(
        (a.status, a.pod.as_deref()),
        (200, Some("tls-0")),
        "{}",
        a.body
    );
    drop(verified);

    // Another CA: the handshake fails and the client gets the router's error, not the engine.
    let refused = env.router(&[
        "--pod-tls-ca-file",
        &path("other-ca.pem"),
        "--pod-tls-server-name",
        "engine.test",
    ]);
    let a = post(
        &c,
        &refused.url("/v1/chat/completions"),
        &[],
        chat("secure"),
    )
    .await;
    assert!(
        a.status >= 500 && a.pod.is_none(),
        "{} {}",
        a.status,
        a.body
    );
    drop(refused);

    // The right CA, but the Pod's IP is not in the certificate.
    let by_ip = env.router(&["--pod-tls-ca-file", &path("ca.pem")]);
    let a = post(&c, &by_ip.url("/v1/chat/completions"), &[], chat("secure")).await;
    assert!(
        a.status >= 500 && a.pod.is_none(),
        "{} {}",
        a.status,
        a.body
    );
}

#[actix_rt::test]
async fn a_server_name_without_a_ca_stops_the_start_with_a_clear_error() {
    let env = Env::new();
    let out = std::process::Command::new(kthena_e2e::binary("kthena-router"))
        .args(["--manifests", env.dir.to_str().expect("utf-8 path")])
        .args(["--pod-tls-server-name", "engine.test"])
        .args(["--port", "0", "--metrics-port", "0", "--debug-port", "0"])
        .output()
        .expect("router runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--pod-tls-server-name needs --pod-tls-ca-file"),
        "{stderr}"
    );
}

#[actix_rt::test]
async fn h2c_backends_are_spoken_to_with_http2_prior_knowledge() {
    let mut env = Env::new();
    env.mock(
        "h2-0",
        &[("app", "h2")],
        &["--served-model-name", "m", "--http2"],
    );
    env.mock("h1-0", &[("app", "h1")], &["--served-model-name", "m"]);
    let engine = env.port.expect("mock started");
    let port = free_port();
    let pool = |name: &str, app: &str, proto: &str| {
        format!(
            "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {{name: {name}, namespace: default}}\n\
             spec:\n  selector: {{matchLabels: {{app: {app}}}}}\n  targetPorts: [{{number: {engine}}}]\n{proto}"
        )
    };
    env.write(
        "world.yaml",
        &[
            format!(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: default}}\n\
                 spec:\n  gatewayClassName: kthena-router\n  listeners:\n  - {{name: http, port: {port}, protocol: HTTP}}\n"
            ),
            pool("h2c-pool", "h2", "  appProtocol: kubernetes.io/h2c\n"),
            pool("h1-pool", "h2", ""),
            // An h1-only engine behind an h2c pool: the router must not fall back to HTTP/1.1.
            pool("wrong-pool", "h1", "  appProtocol: kubernetes.io/h2c\n"),
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: h2c-svc, namespace: default}}\n\
                 spec:\n  selector: {{app: h2}}\n  ports:\n  - {{name: grpc, port: 80, targetPort: {engine}, appProtocol: kubernetes.io/h2c}}\n  \
                 - {{name: ws, port: 81, targetPort: {engine}, appProtocol: kubernetes.io/ws}}\n"
            ),
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: default}\n\
             spec:\n  parentRefs: [{name: gw}]\n  rules:\n  \
             - matches: [{path: {type: PathPrefix, value: /h2c}}]\n    \
               filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n    \
               backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: h2c-pool}]\n  \
             - matches: [{path: {type: PathPrefix, value: /h1}}]\n    \
               filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n    \
               backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: h1-pool}]\n  \
             - matches: [{path: {type: PathPrefix, value: /wrong}}]\n    \
               filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n    \
               backendRefs: [{group: inference.networking.k8s.io, kind: InferencePool, name: wrong-pool}]\n  \
             - matches: [{path: {type: PathPrefix, value: /svc}}]\n    \
               filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n    \
               backendRefs: [{name: h2c-svc, port: 80}]\n"
                .to_owned(),
            // WebSocket upgrades are not proxied: a backend the router cannot speak to.
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: ws, namespace: default}\n\
             spec:\n  parentRefs: [{name: gw}]\n  rules:\n  \
             - matches: [{path: {type: PathPrefix, value: /ws}}]\n    \
               backendRefs: [{name: h2c-svc, port: 81}]\n"
                .to_owned(),
        ]
        .join("---\n"),
    );
    let router = env.gateway_router(port);
    let c = client();
    for (prefix, version) in [
        ("/h2c", "HTTP/2.0"),
        ("/h1", "HTTP/1.1"),
        ("/svc", "HTTP/2.0"),
    ] {
        let health = get(&c, &router.url(&format!("{prefix}/health"))).await;
        assert_eq!(
            (
                health.status,
                health.pod.as_deref(),
                health.http_version.as_deref()
            ),
            (200, Some("h2-0"), Some(version)),
            "{prefix}: {}",
            health.body
        );
        let a = post(
            &c,
            &router.url(&format!("{prefix}/v1/chat/completions")),
            &[],
            chat("m"),
        )
        .await;
        assert_eq!(
            (a.status, a.http_version.as_deref()),
            (200, Some(version)),
            "{prefix}: {}",
            a.body
        );
    }
    let ws = get(&c, &router.url("/ws/health")).await;
    assert_eq!((ws.status, ws.pod.as_deref()), (500, None), "{}", ws.body);
    let status = router.debug("/debug/status").await.json();
    let resolved = |name: &str| {
        status["httproutes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["name"] == name)
            .and_then(|r| r["status"]["parents"][0]["conditions"].as_array().cloned())
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "ResolvedRefs")
            .unwrap_or_else(|| panic!("no ResolvedRefs for {name}: {status}"))
    };
    assert_eq!(resolved("r")["status"], "True", "{status}");
    let ws = resolved("ws");
    assert_eq!(
        (ws["status"].as_str(), ws["reason"].as_str()),
        (Some("False"), Some("UnsupportedProtocol")),
        "{ws}"
    );
    assert!(
        ws["message"]
            .as_str()
            .is_some_and(|m| m.contains("default/h2c-svc port 81 (appProtocol kubernetes.io/ws)")),
        "{ws}"
    );
    let wrong = get(&c, &router.url("/wrong/health")).await;
    assert!(
        wrong.status >= 500 && wrong.pod.is_none(),
        "{} {}",
        wrong.status,
        wrong.body
    );
}
