//! The production routes under `actix_web::test`: shapes, usage, streams, errors, LoRA
//! adapters, failure injection and metrics, as the router and e2e tests will see them.

use std::time::Duration;

use actix_web::{App, body::MessageBody, dev::ServiceResponse, http::StatusCode, test, web};
use kthena_mock::{Config, State, configure};
use serde_json::{Value, json};

fn state(config: Config) -> web::Data<State> {
    web::Data::new(State::new(config).expect("valid test config"))
}

fn config() -> Config {
    Config {
        served_model_names: vec!["base".to_owned(), "alias".to_owned()],
        tokens: 8,
        pod_name: "pod-a".to_owned(),
        ..Config::default()
    }
}

async fn post(
    state: &web::Data<State>,
    path: &str,
    body: Value,
) -> ServiceResponse<impl MessageBody> {
    let state = state.clone();
    let app = test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await;
    let req = test::TestRequest::post()
        .uri(path)
        .set_json(body)
        .to_request();
    test::call_service(&app, req).await
}

async fn get(state: &web::Data<State>, path: &str) -> (StatusCode, String) {
    let state = state.clone();
    let app = test::init_service(App::new().configure(move |cfg| configure(cfg, state))).await;
    let resp = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
    let status = resp.status();
    let body = test::read_body(resp).await;
    (
        status,
        String::from_utf8(body.to_vec()).expect("utf-8 body"),
    )
}

fn header<B>(resp: &ServiceResponse<B>, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_owned()
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hello there!"}]})
}

/// The JSON payloads of an SSE body, `[DONE]` as the string "[DONE]".
fn events(body: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(body).expect("utf-8 stream");
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "stream must end with [DONE]: {text}"
    );
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let data = event
                .strip_prefix("data: ")
                .expect("every event is a data line");
            if data == "[DONE]" {
                Value::String(data.to_owned())
            } else {
                serde_json::from_str(data).expect("chunk is JSON")
            }
        })
        .collect()
}

#[actix_web::test]
async fn chat_answer_has_openai_shape_and_matching_usage() {
    let state = state(config());
    let resp = post(&state, "/v1/chat/completions", chat("alias")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "x-mock-pod"), "pod-a");
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "alias");
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    assert!(body["created"].as_u64().is_some());
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        "This is simulated message from alias! This is"
    );
    assert_eq!(choice["finish_reason"], "stop");
    // "Hello there!" is 12 characters: 3 tokens.
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 8, "total_tokens": 11})
    );
}

#[actix_web::test]
async fn completion_answer_is_text_completion_and_max_tokens_cuts_with_length() {
    let state = state(config());
    let body = json!({"model": "base", "prompt": "abcdefgh", "max_tokens": 3});
    let resp = post(&state, "/v1/completions", body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["text"], "This is simulated");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5})
    );
}

#[actix_web::test]
async fn chat_stream_sends_role_one_token_per_chunk_stop_and_done_without_usage() {
    let state = state(config());
    let mut body = chat("base");
    body["stream"] = json!(true);
    let resp = post(&state, "/v1/chat/completions", body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), "text/event-stream");
    let events = events(&test::read_body(resp).await);
    // role + 8 tokens + final + [DONE]
    assert_eq!(events.len(), 11, "{events:#?}");
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = events[1..9]
        .iter()
        .map(|e| {
            e["choices"][0]["delta"]["content"]
                .as_str()
                .expect("token chunk")
        })
        .collect();
    assert_eq!(text, "This is simulated message from base! This is");
    for event in &events[..10] {
        assert_eq!(event["object"], "chat.completion.chunk");
        assert_eq!(event["id"], events[0]["id"]);
        assert!(
            event.get("usage").is_none(),
            "no usage without include_usage"
        );
    }
    assert_eq!(events[9]["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[9]["choices"][0]["delta"], json!({}));
    assert_eq!(events[10], "[DONE]");
}

#[actix_web::test]
async fn stream_with_include_usage_ends_with_usage_only_chunk_before_done() {
    let state = state(config());
    let mut body = chat("base");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let events = events(&test::read_body(post(&state, "/v1/chat/completions", body).await).await);
    assert_eq!(events.len(), 12);
    let usage = &events[10];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 8, "total_tokens": 11})
    );
    assert_eq!(events[11], "[DONE]");
}

#[actix_web::test]
async fn completion_stream_uses_text_chunks_and_counts_streamed_tokens() {
    let state = state(Config {
        tokens: 2,
        ..config()
    });
    let body = json!({"model": "base", "prompt": "hi", "stream": true,
        "stream_options": {"include_usage": true}});
    let events = events(&test::read_body(post(&state, "/v1/completions", body).await).await);
    let texts: Vec<&str> = events[..3]
        .iter()
        .map(|e| e["choices"][0]["text"].as_str().expect("text chunk"))
        .collect();
    assert_eq!(texts, ["This", " is", ""]);
    assert_eq!(events[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[3]["choices"], json!([]));
    assert_eq!(events[3]["usage"]["completion_tokens"], 2);
    assert_eq!(events[4], "[DONE]");
}

#[actix_web::test]
async fn unknown_model_is_404_with_nested_openai_error() {
    let state = state(config());
    let resp = post(&state, "/v1/chat/completions", chat("nope")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&resp, "x-mock-pod"), "pod-a");
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(
        body,
        json!({"error": {"message": "The model `nope` does not exist.",
            "type": "NotFoundError", "param": null, "code": 404}})
    );
}

#[actix_web::test]
async fn invalid_json_and_missing_messages_are_400() {
    let state = state(config());
    let resp = post(&state, "/v1/chat/completions", json!({"model": "base"})).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body["error"]["type"], "BadRequestError");

    let state2 = state.clone();
    let app = test::init_service(App::new().configure(move |cfg| configure(cfg, state2))).await;
    let req = test::TestRequest::post()
        .uri("/v1/completions")
        .set_payload("{not json")
        .to_request();
    assert_eq!(
        test::call_service(&app, req).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[actix_web::test]
async fn missing_model_uses_first_served_name() {
    let state = state(config());
    let body = json!({"messages": [{"role": "user", "content": "x"}]});
    let body: Value = test::read_body_json(post(&state, "/v1/chat/completions", body).await).await;
    assert_eq!(body["model"], "base");
}

#[actix_web::test]
async fn lora_adapters_load_list_serve_and_unload() {
    let state = state(Config {
        loras: vec![("pre".to_owned(), "/lora/pre".to_owned())],
        ..config()
    });
    let load = json!({"lora_name": "lora-A", "lora_path": "/lora/a"});

    let resp = post(&state, "/v1/load_lora_adapter", load.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = test::read_body(resp).await;
    assert_eq!(text, "Success: LoRA adapter 'lora-A' added successfully.");

    let resp = post(&state, "/v1/load_lora_adapter", load).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(
        body["error"]["message"],
        "The lora adapter 'lora-A' has already been loaded."
    );

    let (status, models) = get(&state, "/v1/models").await;
    assert_eq!(status, StatusCode::OK);
    let models: Value = serde_json::from_str(&models).expect("models JSON");
    assert_eq!(models["object"], "list");
    let rows: Vec<(&str, &str, Value)> = models["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|m| {
            assert_eq!(m["object"], "model");
            assert_eq!(m["owned_by"], "vllm");
            (
                m["id"].as_str().expect("id"),
                m["root"].as_str().expect("root"),
                m["parent"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("base", "base", Value::Null),
            ("alias", "alias", Value::Null),
            ("pre", "/lora/pre", json!("base")),
            ("lora-A", "/lora/a", json!("base")),
        ]
    );

    let body: Value =
        test::read_body_json(post(&state, "/v1/chat/completions", chat("lora-A")).await).await;
    assert_eq!(body["model"], "lora-A");

    let unload = json!({"lora_name": "lora-A"});
    let resp = post(&state, "/v1/unload_lora_adapter", unload.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        test::read_body(resp).await,
        "Success: LoRA adapter 'lora-A' removed successfully."
    );
    let resp = post(&state, "/v1/unload_lora_adapter", unload).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = post(&state, "/v1/chat/completions", chat("lora-A")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn failure_rate_one_fails_every_request_with_500() {
    let state = state(Config {
        failure_rate: 1.0,
        ..config()
    });
    for _ in 0..3 {
        let resp = post(&state, "/v1/chat/completions", chat("base")).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: Value = test::read_body_json(resp).await;
        assert_eq!(body["error"]["type"], "InternalServerError");
        assert_eq!(body["error"]["code"], 500);
    }
}

#[actix_web::test]
async fn failure_rate_half_fails_every_second_request() {
    let state = state(Config {
        failure_rate: 0.5,
        ..config()
    });
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            post(&state, "/v1/completions", json!({"prompt": "x"}))
                .await
                .status(),
        );
    }
    let ok = StatusCode::OK;
    let err = StatusCode::INTERNAL_SERVER_ERROR;
    assert_eq!(statuses, [ok, err, ok, err]);
}

#[actix_web::test]
async fn metrics_expose_vllm_names_with_model_name_label_and_observed_tokens() {
    let state = state(Config {
        time_to_first_token: Duration::from_millis(2),
        inter_token_latency: Duration::from_millis(1),
        tokens: 3,
        ..config()
    });
    let mut body = chat("alias");
    body["stream"] = json!(true);
    test::read_body(post(&state, "/v1/chat/completions", body).await).await;

    let (status, text) = get(&state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "vllm:num_requests_running{model_name=\"base\"} 0",
        "vllm:num_requests_waiting{model_name=\"base\"} 0",
        "vllm:kv_cache_usage_perc{model_name=\"base\"} 0",
        "vllm:time_to_first_token_seconds_count{model_name=\"base\"} 1",
        "vllm:inter_token_latency_seconds_count{model_name=\"base\"} 2",
        "vllm:prompt_tokens_total{model_name=\"base\"} 3",
        "vllm:generation_tokens_total{model_name=\"base\"} 3",
        "# TYPE vllm:time_to_first_token_seconds histogram",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    // The first token waited at least the configured 2 ms: nothing in the 1 ms bucket.
    assert!(
        text.contains(
            "vllm:time_to_first_token_seconds_bucket{model_name=\"base\",le=\"0.001\"} 0"
        )
    );
}

#[actix_web::test]
async fn running_gauge_counts_open_streams() {
    let state = state(config());
    let mut body = chat("base");
    body["stream"] = json!(true);
    let resp = post(&state, "/v1/chat/completions", body).await;
    assert_eq!(state.metrics().running(), 1, "stream not yet consumed");
    test::read_body(resp).await;
    assert_eq!(state.metrics().running(), 0);
}

#[actix_web::test]
async fn health_is_200_and_empty() {
    let state = state(config());
    assert_eq!(
        get(&state, "/health").await,
        (StatusCode::OK, String::new())
    );
}
