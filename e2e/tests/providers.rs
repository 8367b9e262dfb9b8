//! ExternalModelProviders as ModelRoute targets, against provider mocks on loopback that
//! speak HTTPS with a certificate of a test CA (trusted by the router through
//! `SSL_CERT_FILE`, as the platform's roots are read), in OpenAI's and Anthropic's shapes,
//! and record what they received. Never the real services.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use kthena_e2e::{Env, Router, client, post};
use serde_json::{Value, json};

const OPENAI_KEY: &str = "sk-test-openai-7d1e9a";
const ANTHROPIC_KEY: &str = "sk-ant-test-42c0b5";
const CLIENT_TOKEN: &str = "client-token-should-stay-home";

/// A CA and a server certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem).
fn loopback_cert() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// The API shape a mock speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    OpenAi,
    Anthropic,
}

/// One request a mock received.
#[derive(Debug, Clone)]
struct Captured {
    method: String,
    /// Path and query.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body upstream")
    }
}

/// An HTTPS provider mock on 127.0.0.1: HTTP/1.1 with keep-alive, one thread per connection.
/// `?mock_status=429` answers 429 in the provider's error shape.
struct ProviderMock {
    addr: SocketAddr,
    captured: Arc<Mutex<Vec<Captured>>>,
    connections: Arc<AtomicUsize>,
}

impl ProviderMock {
    fn start(shape: Shape, cert_pem: &str, key_pem: &str) -> Self {
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("certificate PEM");
        let key =
            rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server certificate"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the mock");
        let addr = listener.local_addr().expect("mock address");
        let captured = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (c, n) = (captured.clone(), connections.clone());
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                n.fetch_add(1, Ordering::SeqCst);
                let (config, c) = (config.clone(), c.clone());
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    serve(shape, rustls::StreamOwned::new(conn, tcp), &c);
                });
            }
        });
        Self {
            addr,
            captured,
            connections,
        }
    }

    fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn requests(&self) -> Vec<Captured> {
        self.captured.lock().expect("capture lock").clone()
    }

    fn last(&self) -> Captured {
        self.requests().pop().expect("the mock received a request")
    }
}

/// Serves requests on one connection until it closes.
fn serve(shape: Shape, stream: impl Read + Write, captured: &Mutex<Vec<Captured>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Captured {
            method,
            target,
            headers,
            body,
        };
        let (status, content_type, answer) = answer(shape, &request);
        captured.lock().expect("capture lock").push(request);
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{}\r\n",
            answer.len(),
            if status.starts_with("429") {
                "retry-after: 7\r\n"
            } else {
                ""
            }
        );
        let w = reader.get_mut();
        if w.write_all(head.as_bytes()).is_err()
            || w.write_all(answer.as_bytes()).is_err()
            || w.flush().is_err()
        {
            return;
        }
    }
}

/// Status line, content type and body for `r`.
fn answer(shape: Shape, r: &Captured) -> (&'static str, &'static str, String) {
    if r.target.contains("mock_status=429") {
        let body = match shape {
            Shape::OpenAi => json!({"error": {"message": "slow down", "type": "rate_limit_error"}}),
            Shape::Anthropic => {
                json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
            }
        };
        return (
            "429 Too Many Requests",
            "application/json",
            body.to_string(),
        );
    }
    let req: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let model = req["model"].as_str().unwrap_or_default().to_owned();
    let stream = req["stream"] == true;
    match (shape, stream) {
        (Shape::OpenAi, false) => (
            "200 OK",
            "application/json",
            json!({
                "id": "chatcmpl-provider-mock",
                "object": "chat.completion",
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello from the provider"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
            })
            .to_string(),
        ),
        (Shape::OpenAi, true) => {
            let mut out = String::new();
            for word in ["hello", " from", " the provider"] {
                let c = json!({"id": "chatcmpl-provider-mock", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": null}]});
                out.push_str(&format!("data: {c}\n\n"));
            }
            if req["stream_options"]["include_usage"] == true {
                let u = json!({"id": "chatcmpl-provider-mock", "object": "chat.completion.chunk", "model": model,
                    "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}});
                out.push_str(&format!("data: {u}\n\n"));
            }
            out.push_str("data: [DONE]\n\n");
            ("200 OK", "text/event-stream", out)
        }
        (Shape::Anthropic, false) => (
            "200 OK",
            "application/json",
            json!({
                "id": "msg_provider_mock",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": "hello from claude"}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 4, "output_tokens": 6},
            })
            .to_string(),
        ),
        (Shape::Anthropic, true) => {
            let events = [
                ("message_start", json!({"type": "message_start", "message": {"id": "msg_provider_mock", "type": "message", "role": "assistant", "model": model, "content": [], "usage": {"input_tokens": 4, "output_tokens": 1}}})),
                ("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
                ("ping", json!({"type": "ping"})),
                ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hello"}})),
                ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " from claude"}})),
                ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 6}})),
                ("message_stop", json!({"type": "message_stop"})),
            ];
            let out: String = events
                .iter()
                .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
                .collect();
            ("200 OK", "text/event-stream", out)
        }
    }
}

/// The test CA in the manifest folder's neighbour file, the router's trust (`SSL_CERT_FILE`).
fn write_ca(env: &Env, ca: &str) -> String {
    env.write("provider-ca.pem", ca);
    env.dir
        .join("provider-ca.pem")
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

/// Provider `name` of `kind` at `base_url`, credential in Secret `<name>-key` key `token`
/// (written when `key` is given), upstream model `model`.
fn provider(env: &Env, name: &str, kind: &str, base_url: &str, model: &str, key: Option<&str>) {
    env.write(
        &format!("emp-{name}.yaml"),
        &format!(
            "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ExternalModelProvider\n\
             metadata: {{name: {name}, namespace: default}}\nspec:\n  providerType: {kind}\n  \
             baseURL: {base_url}\n  model: {model}\n  headers: {{x-team: e2e}}\n  \
             auth:\n    secretRef: {{name: {name}-key, key: token}}\n"
        ),
    );
    if let Some(key) = key {
        secret(env, name, key);
    }
}

fn secret(env: &Env, name: &str, key: &str) {
    env.write(
        &format!("secret-{name}.yaml"),
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-key\n  namespace: default\n  \
             labels: {{networking.serving.volcano.sh/external-model-provider-credential: \"true\"}}\n\
             stringData: {{token: {key}}}\n"
        ),
    );
}

/// A router that trusts `ca` and ignores any proxy of the test's environment.
fn router(env: &Env, ca: &str) -> Router {
    env.router_with_env(
        &["--access-log-format", "json"],
        &[
            ("RUST_LOG", "debug,h2=info,rustls=info,kube=info"),
            ("SSL_CERT_FILE", ca),
            ("NO_PROXY", "*"),
            ("ACCESS_LOG_FORMAT", "json"),
        ],
    )
}

/// Fails when a credential appears anywhere the router wrote or shows.
async fn assert_no_credentials(router: &Router) {
    let mut seen = router.process.output();
    for path in [
        "/debug/status",
        "/debug/config_dump/externalmodelproviders",
        "/debug/config_dump/modelroutes",
    ] {
        seen.push_str(&router.debug(path).await.body);
    }
    for key in [OPENAI_KEY, ANTHROPIC_KEY] {
        assert!(!seen.contains(key), "credential {key} leaked:\n{seen}");
    }
    assert!(
        !seen.contains(CLIENT_TOKEN),
        "the client's token was logged"
    );
}

/// The JSON access log line of the next request for `model`.
fn access_log(router: &Router, model: &str) -> Value {
    let line = router
        .process
        .wait_for(&format!("\"model_name\":\"{model}\""));
    let start = line.find('{').expect("a JSON line");
    serde_json::from_str(&line[start..]).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// 200 requests over a route 80/20 between a ModelServer and an OpenAI provider: the
/// provider gets its share, each body byte-identical except `model` (and `include_usage`
/// on streams, other `stream_options` kept), authorised with the Secret's key, never the
/// client's token; connections to it are reused; the access log names the provider.
#[actix_rt::test]
async fn route_splits_80_20_between_a_model_server_and_an_openai_provider() {
    let mut env = Env::new();
    let (ca, cert, key) = loopback_cert();
    let mock = ProviderMock::start(Shape::OpenAi, &cert, &key);
    env.mock(
        "engine-0",
        &[("app", "engine")],
        &["--served-model-name", "mixed"],
    );
    env.model_server("engine", "engine", "");
    provider(
        &env,
        "openai",
        "OpenAI",
        &mock.base_url(),
        "gpt-mock",
        Some(OPENAI_KEY),
    );
    env.write(
        "mr-mixed.yaml",
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {name: mixed, namespace: default}\nspec:\n  modelName: mixed\n  rules:\n  \
         - targetModels:\n    - {modelServerName: engine, weight: 80}\n    \
         - {externalModelProviderName: openai, weight: 20}\n",
    );
    let ca_path = write_ca(&env, &ca);
    let router = router(&env, &ca_path);
    let c = client();
    // Odd spacing and member order: only the model's bytes may change.
    let body = r#"{ "messages":[{"role":"user","content":"hi"}],  "model" : "mixed", "temperature":0.25, "n":1 }"#;
    let url = router.url("/v1/chat/completions");
    let auth = format!("Bearer {CLIENT_TOKEN}");
    let total = 200;
    let mut from_provider = 0;
    for _ in 0..total {
        let a = post(&c, &url, &[("authorization", &auth)], body).await;
        assert_eq!(a.status, 200, "{}", a.body);
        if a.json()["id"] == "chatcmpl-provider-mock" {
            from_provider += 1;
        }
    }
    let seen = mock.requests();
    assert_eq!(seen.len(), from_provider);
    assert!(
        (30..=50).contains(&from_provider),
        "provider served {from_provider} of {total}"
    );
    let expected = body.replace(r#""model" : "mixed""#, r#""model" : "gpt-mock""#);
    for r in &seen {
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("POST", "/v1/chat/completions")
        );
        assert_eq!(String::from_utf8_lossy(&r.body), expected);
        assert_eq!(
            r.header("authorization"),
            Some(&*format!("Bearer {OPENAI_KEY}"))
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-team"), Some("e2e"));
        assert_eq!(r.header("anthropic-version"), None);
    }
    // Kept-alive connections: far fewer than requests (one pool per router worker).
    let connections = mock.connections.load(Ordering::SeqCst);
    eprintln!("provider share: {from_provider}/{total}; connections: {connections}");
    assert!(
        connections <= 4,
        "{connections} connections for {from_provider} requests"
    );

    // A stream: `include_usage` added beside the client's own option; the usage chunk the
    // router asked for is not shown to the client.
    let stream_body = r#"{"model":"mixed","stream":true,"stream_options":{"vendor_option":"keep"},"messages":[{"role":"user","content":"hi"}]}"#;
    let before = mock.requests().len();
    let mut streamed = None;
    for _ in 0..50 {
        let a = post(&c, &url, &[], stream_body).await;
        assert_eq!(a.status, 200, "{}", a.body);
        if mock.requests().len() > before {
            streamed = Some(a);
            break;
        }
    }
    let streamed = streamed.expect("a stream reached the provider within 50 requests");
    assert!(
        streamed
            .body
            .contains(r#""object":"chat.completion.chunk""#),
        "{}",
        streamed.body
    );
    assert!(
        streamed.body.trim_end().ends_with("data: [DONE]"),
        "{}",
        streamed.body
    );
    assert!(!streamed.body.contains(r#""usage""#), "{}", streamed.body);
    let up = mock.last().json();
    assert_eq!(
        up["stream_options"],
        json!({"include_usage": true, "vendor_option": "keep"})
    );
    assert_eq!(up["model"], "gpt-mock");

    // The access log of a provider request (JSON).
    let _ = post(&c, &url, &[], r#"{"model":"mixed","messages":[]}"#).await;
    let mut line = access_log(&router, "mixed");
    for _ in 0..(total + 60) {
        if line["backend_type"] == "external_provider" {
            break;
        }
        let _ = post(&c, &url, &[], r#"{"model":"mixed","messages":[]}"#).await;
        line = access_log(&router, "mixed");
    }
    assert_eq!(line["backend_type"], "external_provider", "{line}");
    assert_eq!(line["backend_name"], "default/openai");
    assert_eq!(line["model_route"], "default/mixed");
    assert_eq!(line["upstream_model"], "gpt-mock");
    assert_eq!(line["upstream_status_code"], 200);
    assert_eq!(line["upstream_attempts"], 1);
    assert_eq!(line.get("model_server"), None);
    assert_eq!(line.get("selected_pod"), None);
    assert_eq!(line.get("error_origin"), None);
    assert_no_credentials(&router).await;
}

/// An OpenAI client reaches an Anthropic provider: the chat request becomes a Messages
/// request (system, max_tokens, x-api-key, anthropic-version) and the answer, whole or
/// streamed, comes back in OpenAI's shape. A client speaking Anthropic passes through.
#[actix_rt::test]
async fn anthropic_provider_serves_an_openai_client() {
    let env = Env::new();
    let (ca, cert, key) = loopback_cert();
    let mock = ProviderMock::start(Shape::Anthropic, &cert, &key);
    provider(
        &env,
        "claude",
        "Anthropic",
        &format!("{}/v1", mock.base_url()),
        "claude-mock",
        Some(ANTHROPIC_KEY),
    );
    env.write(
        "mr-claude.yaml",
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {name: claude, namespace: default}\nspec:\n  modelName: claude\n  rules:\n  \
         - targetModels: [{externalModelProviderName: claude}]\n",
    );
    let ca_path = write_ca(&env, &ca);
    let router = router(&env, &ca_path);
    let c = client();
    let chat = json!({"model": "claude", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"}]});
    let a = post(
        &c,
        &router.url("/v1/chat/completions"),
        &[],
        chat.to_string(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["id"], "msg_provider_mock");
    assert_eq!(v["choices"][0]["message"]["content"], "hello from claude");
    assert_eq!(v["usage"]["prompt_tokens"], 4);
    let up = mock.last();
    assert_eq!(up.target, "/v1/messages");
    assert_eq!(up.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(up.header("authorization"), None);
    assert_eq!(up.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        up.json(),
        json!({"model": "claude-mock", "system": "Be brief.", "max_tokens": 4096,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]})
    );
    let line = access_log(&router, "claude");
    assert_eq!(line["backend_type"], "external_provider");
    assert_eq!(
        (line["input_tokens"].clone(), line["output_tokens"].clone()),
        (json!(4), json!(6))
    );

    // Streamed: Anthropic events in, OpenAI chunks out, then [DONE].
    let mut stream = chat.clone();
    stream["stream"] = json!(true);
    let a = post(
        &c,
        &router.url("/v1/chat/completions"),
        &[],
        stream.to_string(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let text: String = a
        .body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "hello from claude");
    assert!(
        a.body.contains(r#""object":"chat.completion.chunk""#),
        "{}",
        a.body
    );
    assert!(a.body.trim_end().ends_with("data: [DONE]"), "{}", a.body);
    assert_eq!(mock.last().json()["stream"], true);

    // A client speaking Anthropic: the body passes unchanged but for `model`.
    let native =
        r#"{"model":"claude","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#;
    let a = post(
        &c,
        &router.url("/v1/messages"),
        &[("anthropic-version", "2023-06-01")],
        native,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["type"], "message");
    assert_eq!(
        String::from_utf8_lossy(&mock.last().body),
        native.replace(r#""model":"claude""#, r#""model":"claude-mock""#)
    );

    // A path the provider does not serve.
    let a = post(
        &c,
        &router.url("/v1/completions"),
        &[],
        r#"{"model":"claude","prompt":"x"}"#,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("does not support path"), "{}", a.body);
    assert_no_credentials(&router).await;
}

/// A provider's 429 reaches the client as it came (status, body, retry-after), logged with
/// `error_origin=upstream` and the upstream status; the query reaches the provider.
#[actix_rt::test]
async fn provider_429_passes_through_with_upstream_origin() {
    let env = Env::new();
    let (ca, cert, key) = loopback_cert();
    let mock = ProviderMock::start(Shape::OpenAi, &cert, &key);
    provider(
        &env,
        "openai",
        "OpenAI",
        &mock.base_url(),
        "gpt-mock",
        Some(OPENAI_KEY),
    );
    env.write(
        "mr-limited.yaml",
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {name: limited, namespace: default}\nspec:\n  modelName: limited\n  rules:\n  \
         - targetModels: [{externalModelProviderName: openai}]\n",
    );
    let ca_path = write_ca(&env, &ca);
    let router = router(&env, &ca_path);
    let c = client();
    let resp = c
        .post(router.url("/v1/chat/completions?mock_status=429"))
        .insert_header(("content-type", "application/json"))
        .send_body(kthena_e2e::chat("limited"))
        .await
        .expect("router answers");
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("7")
    );
    let mut resp = resp;
    let body = resp.body().await.expect("body");
    assert!(
        String::from_utf8_lossy(&body).contains(r#""type":"rate_limit_error""#),
        "{body:?}"
    );
    assert_eq!(mock.last().target, "/v1/chat/completions?mock_status=429");
    let line = access_log(&router, "limited");
    assert_eq!(line["status_code"], 429, "{line}");
    assert_eq!(line["upstream_status_code"], 429);
    assert_eq!(line["upstream_attempts"], 1);
    assert_eq!(line["error_origin"], "upstream");
    assert_eq!(line["error"]["type"], "upstream_response");
    assert_eq!(line["output_tokens"], 0);
    let metrics = kthena_e2e::get(&c, &format!("http://{}/metrics", router.metrics)).await;
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l.starts_with("kthena_router_requests_total")
                && l.contains(r#"error_type="upstream_response""#)
                && l.contains(r#"status_code="429""#)),
        "{}",
        metrics.body
    );
    assert_no_credentials(&router).await;
}

/// A provider whose Secret is missing is not Ready (CredentialNotFound) and its requests
/// answer 503; once the Secret is written it turns Ready and serves.
#[actix_rt::test]
async fn provider_without_its_secret_is_not_ready_until_it_appears() {
    let env = Env::new();
    let (ca, cert, key) = loopback_cert();
    let mock = ProviderMock::start(Shape::OpenAi, &cert, &key);
    provider(&env, "openai", "OpenAI", &mock.base_url(), "gpt-mock", None);
    env.write(
        "mr-later.yaml",
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {name: later, namespace: default}\nspec:\n  modelName: later\n  rules:\n  \
         - targetModels: [{externalModelProviderName: openai}]\n",
    );
    let ca_path = write_ca(&env, &ca);
    let router = router(&env, &ca_path);
    let conditions = |status: &Value| {
        status["externalmodelproviders"][0]["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let status = router.debug("/debug/status").await.json();
    let cs = conditions(&status);
    assert_eq!(cs[0]["type"], "Ready", "{status}");
    assert_eq!(
        (cs[0]["status"].as_str(), cs[1]["reason"].as_str()),
        (Some("False"), Some("CredentialNotFound"))
    );
    // The route resolves: the provider exists.
    let route = &status["modelroutes"][0]["status"]["conditions"];
    assert!(
        route
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "ResolvedRefs" && c["status"] == "True"),
        "{route}"
    );
    let c = client();
    let a = post(
        &c,
        &router.url("/v1/chat/completions"),
        &[],
        kthena_e2e::chat("later"),
    )
    .await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(
        a.body
            .contains("external provider default/openai is not ready"),
        "{}",
        a.body
    );
    assert!(mock.requests().is_empty());

    secret(&env, "openai", OPENAI_KEY);
    router.process.wait_for("configuration in force");
    let cs = conditions(&router.debug("/debug/status").await.json());
    assert_eq!(
        (cs[0]["status"].as_str(), cs[1]["reason"].as_str()),
        (Some("True"), Some("CredentialResolved"))
    );
    let a = post(
        &c,
        &router.url("/v1/chat/completions"),
        &[],
        kthena_e2e::chat("later"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_no_credentials(&router).await;
}

/// An HTTP CONNECT proxy on loopback that counts its tunnels.
fn connect_proxy() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
    let addr = listener.local_addr().expect("proxy address");
    let tunnels = Arc::new(AtomicUsize::new(0));
    let count = tunnels.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let target = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let Ok(upstream) = TcpStream::connect(&target) else {
                    let _ = (&client).write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let _ = (&client).write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n");
                let (mut c2, mut u2) = (
                    client.try_clone().expect("clone"),
                    upstream.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                });
                let mut rest = reader;
                let mut upstream = upstream;
                let _ = std::io::copy(&mut rest, &mut upstream);
            });
        }
    });
    (addr, tunnels)
}

/// With `HTTPS_PROXY` set, providers are reached through the proxy's CONNECT tunnel (TLS
/// end to end inside it); the tunnel is kept and reused.
#[actix_rt::test]
async fn providers_are_reached_through_the_https_proxy() {
    let env = Env::new();
    let (ca, cert, key) = loopback_cert();
    let mock = ProviderMock::start(Shape::OpenAi, &cert, &key);
    let (proxy, tunnels) = connect_proxy();
    provider(
        &env,
        "openai",
        "OpenAI",
        &mock.base_url(),
        "gpt-mock",
        Some(OPENAI_KEY),
    );
    env.write(
        "mr-proxied.yaml",
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {name: proxied, namespace: default}\nspec:\n  modelName: proxied\n  rules:\n  \
         - targetModels: [{externalModelProviderName: openai}]\n",
    );
    let ca_path = write_ca(&env, &ca);
    let proxy_url = format!("http://{proxy}");
    let router = env.router_with_env(
        &[],
        &[
            ("RUST_LOG", "info"),
            ("SSL_CERT_FILE", &ca_path),
            ("HTTPS_PROXY", &proxy_url),
            ("NO_PROXY", "example.internal"),
        ],
    );
    let c = client();
    for _ in 0..5 {
        let a = post(
            &c,
            &router.url("/v1/chat/completions"),
            &[],
            kthena_e2e::chat("proxied"),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let n = tunnels.load(Ordering::SeqCst);
    assert!((1..=2).contains(&n), "{n} tunnels for 5 requests");
    assert_eq!(mock.requests().len(), 5);
    assert_eq!(mock.connections.load(Ordering::SeqCst), n);
}
