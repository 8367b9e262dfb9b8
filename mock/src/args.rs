//! Command line of `kthena-mock`: every flag has a default and a `KTHENA_MOCK_*` env var.

use std::{io::Write, net::SocketAddr, path::PathBuf, time::Duration};

use actix_web::web;
use anyhow::Context;
use clap::Parser;
use kthena_mock::{Config, EngineKind, Listen, State, duration::parse_duration};
use tracing_subscriber::EnvFilter;

/// A vLLM-compatible mock inference engine for tests, benchmarks and demos.
#[derive(Debug, Parser)]
#[command(name = "kthena-mock", version, about)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, env = "KTHENA_MOCK_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,

    /// Model names served (repeatable or comma-separated); the first labels the metrics.
    #[arg(
        long,
        env = "KTHENA_MOCK_SERVED_MODEL_NAME",
        value_delimiter = ',',
        default_value = "mock-model"
    )]
    served_model_name: Vec<String>,

    /// LoRA adapters loaded at start, comma-separated, each `name` or `name=path`.
    #[arg(long, env = "KTHENA_MOCK_LORA", value_delimiter = ',')]
    lora: Vec<String>,

    /// Whose metric names `/metrics` uses: `vllm` (`vllm:*`) or `sglang` (`sglang:*`); the
    /// HTTP API is OpenAI-compatible either way.
    #[arg(long, env = "KTHENA_MOCK_ENGINE", value_enum, default_value_t = EngineKind::Vllm)]
    engine: EngineKind,

    /// KV-cache blocks of the simulated engine; a request waits while too few are free, and a
    /// prompt plus `max_tokens` beyond blocks × block size is rejected (400).
    #[arg(long, env = "KTHENA_MOCK_KV_CACHE_BLOCKS", default_value_t = 2048)]
    kv_cache_blocks: usize,

    /// Tokens per KV-cache block (the prefix cache matches whole blocks), as vLLM's flag.
    #[arg(long, env = "KTHENA_MOCK_BLOCK_SIZE", default_value_t = 16)]
    block_size: usize,

    /// Most requests running at once, as vLLM's flag; more wait in a FIFO queue.
    #[arg(long, env = "KTHENA_MOCK_MAX_NUM_SEQS", default_value_t = 256)]
    max_num_seqs: usize,

    /// Delay before the first token, after admission, e.g. `50ms` (a bare number is
    /// milliseconds).
    #[arg(long, env = "KTHENA_MOCK_TIME_TO_FIRST_TOKEN", default_value = "0", value_parser = parse_duration)]
    time_to_first_token: Duration,

    /// Delay between two tokens, e.g. `5ms` (a bare number is milliseconds).
    #[arg(long, env = "KTHENA_MOCK_INTER_TOKEN_LATENCY", default_value = "0", value_parser = parse_duration)]
    inter_token_latency: Duration,

    /// Prefill time per prompt token not found in the prefix cache, added to the time to
    /// first token, e.g. `20us` (a bare number is milliseconds).
    #[arg(long, env = "KTHENA_MOCK_PREFILL_TIME_PER_TOKEN", default_value = "0", value_parser = parse_duration)]
    prefill_time_per_token: Duration,

    /// Completion tokens generated per request (fewer when the request's max_tokens is lower);
    /// the default, 6, is exactly one "This is simulated message from <model>!".
    #[arg(long, env = "KTHENA_MOCK_TOKENS", default_value_t = 6)]
    tokens: usize,

    /// Fraction of completion requests answered 500, deterministically: every Nth request
    /// fails with N = round(1/rate); 1.0 fails all, 0 none. Tests change it at runtime with
    /// `POST /mock/failure_rate {"rate": 0.5}`.
    #[arg(long, env = "KTHENA_MOCK_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    failure_rate: f64,

    /// Close the connection after this many bytes of every completion's body (JSON and
    /// streamed): an engine that dies mid-answer. Unset: answers are whole.
    #[arg(long, env = "KTHENA_MOCK_CUT_BODY_AFTER")]
    cut_body_after: Option<usize>,

    /// Name echoed in the `x-mock-pod` header of every response.
    #[arg(long, env = "KTHENA_MOCK_POD_NAME", default_value = "mock")]
    pod_name: String,

    /// Serve HTTPS with this certificate chain (PEM), as vLLM's `--ssl-certfile`; needs
    /// `--ssl-keyfile`.
    #[arg(long, env = "KTHENA_MOCK_SSL_CERTFILE")]
    ssl_certfile: Option<PathBuf>,

    /// Private key (PEM) of `--ssl-certfile`, as vLLM's `--ssl-keyfile`.
    #[arg(long, env = "KTHENA_MOCK_SSL_KEYFILE")]
    ssl_keyfile: Option<PathBuf>,

    /// Also accept HTTP/2 with prior knowledge on plain TCP (h2c, what an
    /// `appProtocol: kubernetes.io/h2c` backend speaks). Off, like vLLM, plain TCP is
    /// HTTP/1.1 only. Over TLS, h2 and http/1.1 are offered by ALPN either way.
    #[arg(long, env = "KTHENA_MOCK_HTTP2", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    http2: bool,

    /// HTTP worker threads.
    #[arg(long, env = "KTHENA_MOCK_WORKERS", default_value_t = 1)]
    workers: usize,
}

impl Args {
    /// Binds, prints `kthena-mock listening on <ip>:<port>` on stdout, then serves until
    /// the process is stopped.
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            listen,
            served_model_name,
            lora,
            engine,
            kv_cache_blocks,
            block_size,
            max_num_seqs,
            time_to_first_token,
            inter_token_latency,
            prefill_time_per_token,
            tokens,
            failure_rate,
            cut_body_after,
            pod_name,
            ssl_certfile,
            ssl_keyfile,
            http2,
            workers,
        } = self;
        let tls = match (ssl_certfile, ssl_keyfile) {
            (Some(cert), Some(key)) => Some(
                kthena_mock::tls::server_config(&cert, &key)
                    .with_context(|| format!("--ssl-certfile {}", cert.display()))?,
            ),
            (None, None) => None,
            _ => {
                anyhow::bail!("--ssl-certfile and --ssl-keyfile go together: give both or neither")
            }
        };
        tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .with_writer(std::io::stderr)
            .init();

        let served_model_names = served_model_name
            .into_iter()
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .collect();
        let loras = lora
            .iter()
            .map(|item| item.trim())
            .filter(|item| !item.is_empty())
            .map(|item| match item.split_once('=') {
                Some((name, path)) => (name.to_owned(), path.to_owned()),
                None => (item.to_owned(), item.to_owned()),
            })
            .collect();
        let config = Config {
            served_model_names,
            loras,
            time_to_first_token,
            inter_token_latency,
            tokens,
            failure_rate,
            cut_body_after,
            pod_name,
            engine,
            kv_cache_blocks,
            block_size,
            max_num_seqs,
            prefill_time_per_token,
        };
        tracing::info!(?config, workers, "starting");
        let state = web::Data::new(State::new(config)?);
        let how = Listen { tls, http2 };
        let (addr, server) = kthena_mock::bind(listen, workers, how, state)
            .with_context(|| format!("cannot listen on {listen}"))?;

        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "kthena-mock listening on {addr}")?;
        stdout.flush()?;
        drop(stdout);

        server.await.context("server failed")
    }
}

/// A fraction within 0.0..=1.0.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?} is not a number within 0.0..=1.0")),
    }
}
