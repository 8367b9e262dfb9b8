//! A vLLM-compatible mock inference engine that simulates what a router can observe of a real
//! vLLM or SGLang engine: prefix-cache hits, KV-cache usage, queueing and latencies.
//!
//! In: OpenAI requests as vLLM's HTTP server takes them (`POST /v1/chat/completions`,
//! `POST /v1/completions`, `GET /v1/models`, `POST /v1/load_lora_adapter`,
//! `POST /v1/unload_lora_adapter`, `GET /health`, `GET /metrics`), plus the test control
//! `POST /mock/failure_rate` `{"rate": 0.0..=1.0}`.
//! Out: the same response shapes vLLM sends — JSON objects, SSE streams with one token per
//! chunk, an optional usage-only chunk and `data: [DONE]`, nested OpenAI error bodies (404
//! ``The model `X` does not exist.`` for a model neither served nor loaded as an adapter) and
//! Prometheus text with vLLM's `vllm:*` or, with `--engine sglang`, SGLang's `sglang:*`
//! metrics (names in [`metrics`]).
//!
//! The generated text is always `This is simulated message from <model>!`, cut or repeated to
//! the configured number of tokens (one word per token), so tests can predict every byte.
//! Every response carries an `x-mock-pod` header naming the instance; failures (every Nth
//! request answers 500, N = round(1/rate)) are set by `--failure-rate` and changed at runtime.
//!
//! The simulation, each part pure and tested without sockets or sleeps:
//! - [`tokens`]: a prompt (chat messages rendered as `<|role|>\ncontent\n` each) is split into
//!   4-byte tokens; `usage.prompt_tokens` is their number. Full blocks of `--block-size`
//!   tokens get chained hashes, seeded per LoRA adapter.
//! - [`kv_cache`]: `--kv-cache-blocks` blocks; a request pins its longest cached prefix and
//!   allocates the rest; finished requests' prompt blocks stay cached, evicted in LRU order.
//!   KV usage = blocks held by running requests / all blocks, as vLLM v1.
//! - [`engine`]: at most `--max-num-seqs` running requests, the others wait in a FIFO queue;
//!   blocks for the prompt and every generated token are allocated upfront at admission.
//! - [`sim`]: the engine behind one mutex; tickets wake waiting requests.
//!
//! Time to first token = time queued + `--time-to-first-token` + uncached prompt tokens ×
//! `--prefill-time-per-token`; then one token every `--inter-token-latency`. The histograms
//! observe the real elapsed times, measured from the request's arrival.
//!
//! [`server::configure`] registers the routes on any actix-web `App`, so tests drive the
//! production handlers under `actix_web::test`; [`server::bind`] is what the binary runs.

pub mod completions;
pub mod control;
pub mod duration;
pub mod engine;
pub mod error;
pub mod generate;
pub mod kv_cache;
pub mod lora;
pub mod metrics;
pub mod openai;
pub mod server;
pub mod sim;
pub mod tls;
pub mod tokens;

pub use error::MockError;
pub use metrics::EngineKind;
pub use server::{Config, Listen, State, bind, configure};
