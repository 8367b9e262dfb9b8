//! The production `configure()` under `actix_web::test`, with snapshots published directly.

use std::sync::Arc;

use actix_web::{App, test, web};
use arc_swap::ArcSwap;
use kthena_core::{
    Backend, BuildOptions, CreationOrder, ObjectRef, Route, RouteTable, Rule, Target,
};
use kthena_router::access_log::{AccessLog, Format};
use kthena_router::exchange::Observability;
use kthena_router::handlers::{self, RouterContext};
use kthena_router::metrics::Metrics;
use kthena_router::pool::{PoolKey, PoolSnapshot};
use kthena_router::state::Shared;

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
        .into(),
    ));
    if ready {
        shared.set_ready();
    }
    let registry = prometheus::Registry::new();
    let obs = Arc::new(Observability {
        metrics: Metrics::new(&registry).expect("metrics register"),
        access_log: AccessLog {
            enabled: false,
            format: Format::Text,
        },
    });
    RouterContext {
        shared,
        obs,
        max_body_bytes: 64,
    }
}

macro_rules! app {
    ($ctx:expr) => {
        test::init_service(
            App::new()
                .app_data(web::Data::new($ctx))
                .app_data(web::Data::new(kthena_router::upstream::client()))
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
