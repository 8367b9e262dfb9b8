//! The production `configure()` under `actix_web::test`, with snapshots published directly.

use std::sync::Arc;

use actix_web::{App, test, web};
use arc_swap::ArcSwap;
use kthena_core::{
    Backend, BuildOptions, CreationOrder, ObjectRef, Route, RouteTable, Rule, Target,
};
use kthena_dataplane::access_log::{self, AccessLog, Format, Output, Sink};
use kthena_dataplane::exchange::Observability;
use kthena_dataplane::handlers::{self, RouterContext};
use kthena_dataplane::metrics::Metrics;
use kthena_dataplane::pool::{PoolKey, PoolSnapshot};
use kthena_dataplane::state::Shared;

fn route(name: &str, model: &str, server: &str) -> Route {
    Route {
        id: ObjectRef::new("default", name),
        order: CreationOrder {
            created_unix_nanos: Some(1),
            namespace: "default".into(),
            name: name.into(),
        },
        model_name: Some(model.into()),
        lora_adapters: vec![format!("{model}-lora")],
        parents: vec![],
        rules: vec![Rule::new(
            None,
            None,
            vec![Target {
                backend: Backend::ModelServer(ObjectRef::new("default", server)),
                weight: 100,
            }],
        )],
        rate_limit: None,
    }
}

fn context(ready: bool) -> RouterContext {
    context_with(ready, quiet_log(), false)
}

/// A context logging to `access_log`, and serving `/metrics` when `expose_metrics`.
fn context_with(ready: bool, access_log: AccessLog, expose_metrics: bool) -> RouterContext {
    let shared = Arc::new(Shared::default());
    let routes = vec![route("r", "m", "empty"), route("ghost", "g", "missing")];
    shared
        .routes
        .store(Arc::new(RouteTable::build(routes, BuildOptions::default())));
    let server = kthena_core::ModelServer {
        id: ObjectRef::new("default", "empty"),
        model: None,
        engine: kthena_core::Engine::Vllm,
        match_labels: [("app".to_owned(), "x".to_owned())].into(),
        pd_group: None,
        port: 8000,
        protocol: kthena_core::Protocol::Http,
        timeout: std::time::Duration::from_secs(1),
        retry: kthena_core::RetryPolicy::default(),
        kv_connector: None,
        session_sticky: None,
    };
    let cell = Arc::new(ArcSwap::from_pointee(PoolSnapshot::build(
        server.into(),
        &[],
        None,
    )));
    shared.pools.store(Arc::new(
        [(
            PoolKey::ModelServer(ObjectRef::new("default", "empty")),
            cell,
        )]
        .into_iter()
        .collect(),
    ));
    if ready {
        shared.set_ready();
    }
    let registry = prometheus::Registry::new();
    let obs = Arc::new(Observability {
        metrics: Metrics::new(&registry).expect("metrics register"),
        access_log,
    });
    RouterContext {
        shared,
        obs,
        max_body_bytes: 64,
        max_connections: 1_000,
        max_header_bytes: 64 << 10,
        metrics: expose_metrics.then_some(registry),
        pod_tls: pod_tls(),
        outlier: Default::default(),
        retry_budget: Default::default(),
        timeouts: Default::default(),
        rate_limits: Default::default(),
        fairness: None,
        auth: None,
    }
}

fn pod_tls() -> Arc<rustls::ClientConfig> {
    kthena_dataplane::upstream::tls::client_config(&Default::default()).expect("default pod TLS")
}

macro_rules! app {
    ($ctx:expr) => {
        test::init_service(
            App::new()
                .app_data(web::Data::new($ctx))
                .app_data(web::Data::new(kthena_dataplane::upstream::Clients::new(
                    pod_tls(),
                )))
                .configure(handlers::configure),
        )
        .await
    };
}

#[actix_web::test]
async fn readiness_follows_the_first_configuration() {
    for (ready, status, body) in [
        (false, 503, "router is not ready"),
        (true, 200, "router is ready"),
    ] {
        let app = app!(context(ready));
        let resp =
            test::call_service(&app, test::TestRequest::get().uri("/readyz").to_request()).await;
        assert_eq!(resp.status().as_u16(), status);
        let got: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(got["message"], body);
    }
    let app = app!(context(false));
    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/healthz").to_request()).await;
    assert_eq!(resp.status().as_u16(), 200);
}

#[actix_web::test]
async fn models_lists_model_and_lora_names() {
    let app = app!(context(true));
    let resp = test::call_service(
        &app,
        test::TestRequest::get().uri("/v1/models").to_request(),
    )
    .await;
    let got: serde_json::Value = test::read_body_json(resp).await;
    let ids: Vec<&str> = got["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["g", "g-lora", "m", "m-lora"]);
    assert_eq!(got["data"][0]["object"], "model");
    assert_eq!(got["data"][0]["owned_by"], "kthena");
}

#[actix_web::test]
async fn errors_are_openai_shaped_with_kthena_texts() {
    let app = app!(context(true));
    let cases = [
        ("{", 400, "invalid_request_error", "invalid request body"),
        (
            r#"{"prompt":"x"}"#,
            404,
            "model_not_found",
            "model not found",
        ),
        (
            r#"{"model":"other"}"#,
            404,
            "route_not_found",
            "route not found",
        ),
        (
            r#"{"model":"g"}"#,
            404,
            "model_server_not_found",
            "can't find model server: default/missing",
        ),
        (
            r#"{"model":"m"}"#,
            503,
            "no_available_pods",
            "no available pods for model server: default/empty",
        ),
        (
            r#"{"model":"m","prompt":"way more than sixty-four bytes of prompt text here"}"#,
            413,
            "request_too_large",
            "larger than 64 bytes",
        ),
    ];
    for (body, status, kind, message) in cases {
        let req = test::TestRequest::post()
            .uri("/v1/completions")
            .insert_header(("content-type", "application/json"))
            .set_payload(body)
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status().as_u16(), status, "{body}");
        let got: serde_json::Value = test::read_body_json(resp).await;
        assert_eq!(got["error"]["type"], kind, "{body}");
        assert_eq!(got["error"]["code"], status, "{body}");
        let text = got["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{body}: {text}");
    }
}

#[actix_web::test]
async fn other_methods_on_v1_are_refused_with_405() {
    let app = app!(context(true));
    let req = test::TestRequest::get()
        .uri("/v1/chat/completions")
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers().get("allow").unwrap(), "POST");
    let got: serde_json::Value = test::read_body_json(resp).await;
    assert_eq!(got["error"]["code"], 405);
}

/// POSTs a request for a model no route serves (answered, logged and counted): the status.
macro_rules! unrouted {
    ($app:expr) => {{
        let req = test::TestRequest::post()
            .uri("/v1/completions")
            .insert_header(("content-type", "application/json"))
            .set_payload(r#"{"model":"nobody-serves-this"}"#)
            .to_request();
        test::call_service($app, req).await.status().as_u16()
    }};
}

#[actix_web::test]
async fn metrics_are_served_on_the_router_port_only_when_exposed() {
    let app = app!(context_with(true, quiet_log(), true));
    assert_eq!(unrouted!(&app), 404);
    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers().get("content-type").unwrap(),
        kthena_dataplane::metrics::CONTENT_TYPE
    );
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(
        body.contains("kthena_router_requests_total{") && body.contains("route_not_found"),
        "{body}"
    );

    // Off (the default): `/metrics` is an ordinary path, refused like any GET there.
    let app = app!(context_with(true, quiet_log(), false));
    assert_eq!(unrouted!(&app), 404);
    let resp =
        test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(resp.status().as_u16(), 405);
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert!(!body.contains("kthena_router_"), "{body}");
}

fn quiet_log() -> AccessLog {
    AccessLog {
        enabled: false,
        format: Format::Text,
        sink: Sink::Stdout,
    }
}

#[actix_web::test]
async fn a_request_writes_its_access_log_line_to_the_file() {
    let dir = std::env::temp_dir().join(format!("kthena-access-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    std::fs::write(&path, "earlier line\n").unwrap();
    let log = access_log::Options {
        enabled: true,
        format: Format::Text,
        output: Output::File(path.clone()),
    }
    .open()
    .expect("log file opens");
    let app = app!(context_with(true, log, false));
    assert_eq!(unrouted!(&app), 404);
    // Lines are batched per thread; shutdown writes every thread's batch out.
    access_log::flush_all();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], "earlier line", "appended, not truncated");
    assert!(
        lines[1].contains("\"POST /v1/completions HTTP/1.1\" 404")
            && lines[1].contains("model_name=nobody-serves-this"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
