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
    // "<|user|>\nHello there!\n" (the chat template) is 22 bytes: 6 tokens of 4 bytes.
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 6, "completion_tokens": 8, "total_tokens": 14})
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
        json!({"prompt_tokens": 6, "completion_tokens": 8, "total_tokens": 14})
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
        "vllm:e2e_request_latency_seconds_count{model_name=\"base\"} 1",
        "vllm:prompt_tokens_total{model_name=\"base\"} 6",
        "vllm:generation_tokens_total{model_name=\"base\"} 3",
        "vllm:prefix_cache_queries_total{model_name=\"base\"} 6",
        "vllm:prefix_cache_hits_total{model_name=\"base\"} 0",
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

/// The value of the series `name{model_name="base"}` in a metrics text.
fn metric(text: &str, name: &str) -> f64 {
    let prefix = format!("{name}{{model_name=\"base\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[actix_web::test]
async fn repeated_prompt_hits_the_prefix_cache_and_gets_a_shorter_ttft() {
    let state = state(Config {
        prefill_time_per_token: Duration::from_millis(1),
        tokens: 2,
        loras: vec![("lora-A".to_owned(), "/lora/a".to_owned())],
        ..config()
    });
    // 200 bytes: 50 tokens, 3 full blocks of 16.
    let prompt = "x".repeat(200);
    let ttft_sum = "vllm:time_to_first_token_seconds_sum";

    let body = json!({"model": "base", "prompt": prompt});
    let resp = post(&state, "/v1/completions", body.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let first: Value = test::read_body_json(resp).await;
    assert_eq!(first["usage"]["prompt_tokens"], 50);
    let (_, text) = get(&state, "/metrics").await;
    assert_eq!(metric(&text, "vllm:prefix_cache_queries_total"), 50.0);
    assert_eq!(metric(&text, "vllm:prefix_cache_hits_total"), 0.0);
    let first_ttft = metric(&text, ttft_sum);
    assert!(
        first_ttft >= 0.050,
        "50 uncached tokens × 1 ms: {first_ttft}"
    );

    // An alias of the base model shares its cache: 48 tokens hit, 2 are computed.
    let body = json!({"model": "alias", "prompt": prompt});
    assert_eq!(
        post(&state, "/v1/completions", body).await.status(),
        StatusCode::OK
    );
    let (_, text) = get(&state, "/metrics").await;
    assert_eq!(metric(&text, "vllm:prefix_cache_queries_total"), 100.0);
    assert_eq!(metric(&text, "vllm:prefix_cache_hits_total"), 48.0);
    let second_ttft = metric(&text, ttft_sum) - first_ttft;
    assert!(
        second_ttft < first_ttft,
        "cached prefix: {second_ttft} s, cold: {first_ttft} s"
    );
    assert_eq!(
        metric(&text, "vllm:kv_cache_usage_perc"),
        0.0,
        "finished requests hold nothing"
    );

    // A LoRA adapter has its own blocks: no hit.
    let body = json!({"model": "lora-A", "prompt": prompt});
    assert_eq!(
        post(&state, "/v1/completions", body).await.status(),
        StatusCode::OK
    );
    let (_, text) = get(&state, "/metrics").await;
    assert_eq!(metric(&text, "vllm:prefix_cache_hits_total"), 48.0);
}

#[actix_web::test]
async fn second_request_waits_behind_max_num_seqs_one() {
    let state = state(Config {
        max_num_seqs: 1,
        kv_cache_blocks: 10,
        ..config()
    });
    let mut body = chat("base");
    body["stream"] = json!(true);
    let gauges = |text: &str| {
        (
            metric(text, "vllm:num_requests_running"),
            metric(text, "vllm:num_requests_waiting"),
        )
    };

    // Streams answer their headers at once; the engine admits the first and queues the rest.
    let first = post(&state, "/v1/chat/completions", body.clone()).await;
    let second = post(&state, "/v1/chat/completions", body.clone()).await;
    assert_eq!(second.status(), StatusCode::OK);
    let (_, text) = get(&state, "/metrics").await;
    assert_eq!(gauges(&text), (1.0, 1.0));
    // 6 prompt + 8 generated tokens: one block of 16 out of 10.
    assert_eq!(metric(&text, "vllm:kv_cache_usage_perc"), 0.1);

    // A waiting client that goes away leaves the queue.
    let third = post(&state, "/v1/chat/completions", body).await;
    assert_eq!(state.metrics().waiting(), 2);
    drop(third);
    assert_eq!(state.metrics().waiting(), 1);

    // The first one ends: the second one runs.
    events(&test::read_body(first).await);
    let (_, text) = get(&state, "/metrics").await;
    assert_eq!(gauges(&text), (1.0, 0.0));
    let events = events(&test::read_body(second).await);
    assert_eq!(events.len(), 11, "a queued stream is complete: {events:#?}");
    let (_, text) = get(&state, "/metrics").await;
    assert_eq!(gauges(&text), (0.0, 0.0));
    assert_eq!(metric(&text, "vllm:kv_cache_usage_perc"), 0.0);
    assert_eq!(metric(&text, "vllm:e2e_request_latency_seconds_count"), 2.0);
}

#[actix_web::test]
async fn sglang_engine_exposes_sglang_metric_names() {
    let state = state(Config {
        engine: kthena_mock::EngineKind::Sglang,
        tokens: 3,
        ..config()
    });
    let body: Value =
        test::read_body_json(post(&state, "/v1/chat/completions", chat("base")).await).await;
    assert_eq!(
        body["object"], "chat.completion",
        "the API stays OpenAI-compatible"
    );
    test::read_body(post(&state, "/v1/chat/completions", chat("base")).await).await;

    let (status, text) = get(&state, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "sglang:num_running_reqs{model_name=\"base\"} 0",
        "sglang:num_queue_reqs{model_name=\"base\"} 0",
        "sglang:token_usage{model_name=\"base\"} 0",
        "sglang:time_to_first_token_seconds_count{model_name=\"base\"} 2",
        "sglang:inter_token_latency_seconds_count{model_name=\"base\"} 4",
        "sglang:e2e_request_latency_seconds_count{model_name=\"base\"} 2",
        "sglang:prompt_tokens_total{model_name=\"base\"} 12",
        "sglang:generation_tokens_total{model_name=\"base\"} 6",
        "sglang:cached_tokens_total{model_name=\"base\"} 0",
        "sglang:cache_hit_rate{model_name=\"base\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(!text.contains("vllm:"), "{text}");

    let (_, models) = get(&state, "/v1/models").await;
    let models: Value = serde_json::from_str(&models).expect("models JSON");
    assert_eq!(models["data"][0]["owned_by"], "sglang");
}

#[actix_web::test]
async fn sglang_cache_hit_rate_is_cached_over_prompt_tokens() {
    let state = state(Config {
        engine: kthena_mock::EngineKind::Sglang,
        ..config()
    });
    // 64 tokens: 4 blocks, the second request hits 3 (the last token is always computed).
    let body = json!({"prompt": "abcd".repeat(64)});
    for _ in 0..2 {
        test::read_body(post(&state, "/v1/completions", body.clone()).await).await;
    }
    let (_, text) = get(&state, "/metrics").await;
    assert_eq!(metric(&text, "sglang:cached_tokens_total"), 48.0);
    assert_eq!(metric(&text, "sglang:cache_hit_rate"), 48.0 / 128.0);
}

#[actix_web::test]
async fn failure_rate_endpoint_changes_the_rate_at_runtime() {
    let state = state(config());
    let status = |resp: ServiceResponse<_>| resp.status();
    assert_eq!(
        status(post(&state, "/v1/completions", json!({"prompt": "x"})).await),
        StatusCode::OK
    );

    let resp = post(&state, "/mock/failure_rate", json!({"rate": 1.0})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(body, json!({"rate": 1.0}));
    let resp = post(&state, "/v1/completions", json!({"prompt": "x"})).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(state.failure_rate(), 1.0);

    // Every second request from the change on, deterministically.
    let resp = post(&state, "/mock/failure_rate", json!({"rate": 0.5})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(status(
            post(&state, "/v1/completions", json!({"prompt": "x"})).await,
        ));
    }
    let (ok, err) = (StatusCode::OK, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(statuses, [ok, err, ok, err]);

    for bad in [
        json!({"rate": 1.5}),
        json!({"rate": -0.1}),
        json!({}),
        json!({"rate": "x"}),
    ] {
        let resp = post(&state, "/mock/failure_rate", bad.clone()).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = test::read_body_json(resp).await;
        assert_eq!(body["error"]["type"], "BadRequestError", "{bad}");
    }
    assert_eq!(state.failure_rate(), 0.5, "a bad body changes nothing");

    let resp = post(&state, "/mock/failure_rate", json!({"rate": 0.0})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        status(post(&state, "/v1/completions", json!({"prompt": "x"})).await),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn prompt_longer_than_the_kv_cache_is_400_with_vllm_message() {
    let state = state(Config {
        kv_cache_blocks: 2,
        block_size: 16,
        ..config()
    });
    // 25 prompt tokens + 8 generated > 32.
    let resp = post(
        &state,
        "/v1/completions",
        json!({"prompt": "y".repeat(100)}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(
        body["error"],
        json!({"message": "This model's maximum context length is 32 tokens. However, you \
            requested 33 tokens (25 in the messages, 8 in the completion). Please reduce the \
            length of the messages or completion.",
            "type": "BadRequestError", "param": null, "code": 400})
    );
    let (_, text) = get(&state, "/metrics").await;
    assert_eq!(
        metric(&text, "vllm:num_requests_waiting"),
        0.0,
        "never queued"
    );
}
