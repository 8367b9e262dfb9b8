//! A vLLM-compatible mock inference engine.
//!
//! In: OpenAI requests as vLLM's HTTP server takes them (`POST /v1/chat/completions`,
//! `POST /v1/completions`, `GET /v1/models`, `POST /v1/load_lora_adapter`,
//! `POST /v1/unload_lora_adapter`, `GET /health`, `GET /metrics`).
//! Out: the same response shapes vLLM sends — JSON objects, SSE streams with one token per
//! chunk, an optional usage-only chunk and `data: [DONE]`, nested OpenAI error bodies and
//! Prometheus text with the `vllm:*` metrics the router scrapes.
//!
//! The generated text is always `This is simulated message from <model>!`, cut or repeated to
//! the configured number of tokens (one word per token), so tests can predict every byte.
//! Latency (time to first token, inter-token latency) and failures (every Nth request answers
//! 500) are configurable; every response carries an `x-mock-pod` header naming the instance.
//!
//! [`server::configure`] registers the routes on any actix-web `App`, so tests drive the
//! production handlers under `actix_web::test`; [`server::bind`] is what the binary runs.

pub mod completions;
pub mod duration;
pub mod error;
pub mod generate;
pub mod lora;
pub mod metrics;
pub mod openai;
pub mod server;
pub mod tls;

pub use error::MockError;
pub use server::{Config, Listen, State, bind, configure};
