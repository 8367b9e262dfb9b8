//! The Prometheus metrics the router scrapes, under vLLM's (`vllm:*`) or SGLang's
//! (`sglang:*`) names, labelled `model_name` like both engines: every series carries the
//! first served model name, whichever model or adapter a request named.
//!
//! | what | `--engine vllm` | `--engine sglang` |
//! |---|---|---|
//! | running requests | `vllm:num_requests_running` | `sglang:num_running_reqs` |
//! | waiting requests | `vllm:num_requests_waiting` | `sglang:num_queue_reqs` |
//! | KV blocks held, 0..1 | `vllm:kv_cache_usage_perc` | `sglang:token_usage` |
//! | time to first token | `vllm:time_to_first_token_seconds` | `sglang:time_to_first_token_seconds` |
//! | inter-token latency | `vllm:inter_token_latency_seconds` | `sglang:inter_token_latency_seconds` |
//! | request latency | `vllm:e2e_request_latency_seconds` | `sglang:e2e_request_latency_seconds` |
//! | prompt tokens | `vllm:prompt_tokens_total` | `sglang:prompt_tokens_total` |
//! | generated tokens | `vllm:generation_tokens_total` | `sglang:generation_tokens_total` |
//! | prompt tokens looked up | `vllm:prefix_cache_queries_total` | — |
//! | of those, cached | `vllm:prefix_cache_hits_total` | `sglang:cached_tokens_total` |
//! | cached / looked up | — | `sglang:cache_hit_rate` |

use std::{fmt, time::Duration};

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::engine::{Admission, Snapshot};

/// Which engine the mock impersonates in `/metrics` (`--engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EngineKind {
    /// vLLM: `vllm:*` metrics.
    #[default]
    Vllm,
    /// SGLang: `sglang:*` metrics.
    Sglang,
}

impl EngineKind {
    /// `vllm` or `sglang`, also the `owned_by` of `/v1/models`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vllm => "vllm",
            Self::Sglang => "sglang",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// vLLM's buckets for `vllm:time_to_first_token_seconds`.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// vLLM's buckets for `vllm:inter_token_latency_seconds`.
const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];

/// vLLM's buckets for `vllm:e2e_request_latency_seconds`.
const E2E_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// (name, help) of one metric.
type Name = (&'static str, &'static str);

/// The names of every metric of one engine kind.
struct Names {
    running: Name,
    waiting: Name,
    usage: Name,
    ttft: Name,
    itl: Name,
    e2e: Name,
    prompt: Name,
    generation: Name,
    hits: Name,
    queries: Option<Name>,
    hit_rate: Option<Name>,
}

const VLLM: Names = Names {
    running: (
        "vllm:num_requests_running",
        "Number of requests in model execution batches.",
    ),
    waiting: (
        "vllm:num_requests_waiting",
        "Number of requests waiting to be processed.",
    ),
    usage: (
        "vllm:kv_cache_usage_perc",
        "KV-cache usage. 1 means 100 percent usage.",
    ),
    ttft: (
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
    ),
    itl: (
        "vllm:inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
    ),
    e2e: (
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
    ),
    prompt: (
        "vllm:prompt_tokens_total",
        "Number of prefill tokens processed.",
    ),
    generation: (
        "vllm:generation_tokens_total",
        "Number of generation tokens processed.",
    ),
    hits: (
        "vllm:prefix_cache_hits_total",
        "Prefix cache hits, in terms of number of cached tokens.",
    ),
    queries: Some((
        "vllm:prefix_cache_queries_total",
        "Prefix cache queries, in terms of number of queried tokens.",
    )),
    hit_rate: None,
};

const SGLANG: Names = Names {
    running: ("sglang:num_running_reqs", "The number of running requests."),
    waiting: (
        "sglang:num_queue_reqs",
        "The number of requests in the waiting queue.",
    ),
    usage: ("sglang:token_usage", "The token usage."),
    ttft: (
        "sglang:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
    ),
    itl: (
        "sglang:inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
    ),
    e2e: (
        "sglang:e2e_request_latency_seconds",
        "Histogram of End-to-end request latency in seconds",
    ),
    prompt: (
        "sglang:prompt_tokens_total",
        "Number of prefill tokens processed.",
    ),
    generation: (
        "sglang:generation_tokens_total",
        "Number of generation tokens processed.",
    ),
    hits: (
        "sglang:cached_tokens_total",
        "Number of cached prompt tokens.",
    ),
    queries: None,
    hit_rate: Some(("sglang:cache_hit_rate", "The prefix cache hit rate.")),
};

/// The mock's own registry and the series of its one `model_name`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    running: IntGauge,
    waiting: IntGauge,
    kv_usage: Gauge,
    hit_rate: Option<Gauge>,
    ttft: Histogram,
    itl: Histogram,
    e2e: Histogram,
    prompt_tokens: IntCounter,
    generation_tokens: IntCounter,
    prefix_queries: Option<IntCounter>,
    prefix_hits: IntCounter,
}

impl Metrics {
    /// Registers every metric of `kind` in a fresh registry, labelled with `model_name`.
    pub fn new(kind: EngineKind, model_name: &str) -> Result<Self, prometheus::Error> {
        let names = match kind {
            EngineKind::Vllm => &VLLM,
            EngineKind::Sglang => &SGLANG,
        };
        let registry = Registry::new();
        let labels = &[model_name];
        let int_gauge = |(name, help): Name| -> Result<IntGauge, prometheus::Error> {
            let vec = IntGaugeVec::new(Opts::new(name, help), &["model_name"])?;
            registry.register(Box::new(vec.clone()))?;
            Ok(vec.with_label_values(labels))
        };
        let gauge = |(name, help): Name| -> Result<Gauge, prometheus::Error> {
            let vec = GaugeVec::new(Opts::new(name, help), &["model_name"])?;
            registry.register(Box::new(vec.clone()))?;
            Ok(vec.with_label_values(labels))
        };
        let counter = |(name, help): Name| -> Result<IntCounter, prometheus::Error> {
            let vec = IntCounterVec::new(Opts::new(name, help), &["model_name"])?;
            registry.register(Box::new(vec.clone()))?;
            Ok(vec.with_label_values(labels))
        };
        let histogram =
            |(name, help): Name, buckets: &[f64]| -> Result<Histogram, prometheus::Error> {
                let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
                let vec = HistogramVec::new(opts, &["model_name"])?;
                registry.register(Box::new(vec.clone()))?;
                Ok(vec.with_label_values(labels))
            };
        Ok(Self {
            running: int_gauge(names.running)?,
            waiting: int_gauge(names.waiting)?,
            kv_usage: gauge(names.usage)?,
            hit_rate: names.hit_rate.map(gauge).transpose()?,
            ttft: histogram(names.ttft, TTFT_BUCKETS)?,
            itl: histogram(names.itl, ITL_BUCKETS)?,
            e2e: histogram(names.e2e, E2E_BUCKETS)?,
            prompt_tokens: counter(names.prompt)?,
            generation_tokens: counter(names.generation)?,
            prefix_queries: names.queries.map(counter).transpose()?,
            prefix_hits: counter(names.hits)?,
            registry,
        })
    }

    /// Shows the engine's running and waiting requests, KV usage and hit rate.
    pub fn engine(&self, snapshot: &Snapshot) {
        self.running
            .set(i64::try_from(snapshot.running).unwrap_or(i64::MAX));
        self.waiting
            .set(i64::try_from(snapshot.waiting).unwrap_or(i64::MAX));
        self.kv_usage.set(snapshot.kv_usage);
        if let Some(rate) = &self.hit_rate {
            rate.set(snapshot.hit_rate());
        }
    }

    /// Counts an admitted request's prompt tokens and prefix-cache lookup.
    pub fn admitted(&self, admission: &Admission) {
        self.prompt_tokens.inc_by(admission.prompt_tokens as u64);
        if let Some(queries) = &self.prefix_queries {
            queries.inc_by(admission.prompt_tokens as u64);
        }
        self.prefix_hits.inc_by(admission.cached_tokens as u64);
    }

    /// Records one generated token that took `latency`: the time to first token (since the
    /// request arrived) when `first`, otherwise the gap since the previous token.
    pub fn token(&self, first: bool, latency: Duration) {
        let histogram = if first { &self.ttft } else { &self.itl };
        histogram.observe(latency.as_secs_f64());
        self.generation_tokens.inc();
    }

    /// Records a request answered completely `latency` after it arrived.
    pub fn finished(&self, latency: Duration) {
        self.e2e.observe(latency.as_secs_f64());
    }

    /// Requests currently running.
    pub fn running(&self) -> i64 {
        self.running.get()
    }

    /// Requests currently waiting.
    pub fn waiting(&self) -> i64 {
        self.waiting.get()
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// The `Content-Type` of [`Metrics::render`]'s output.
pub fn content_type() -> String {
    TextEncoder::new().format_type().to_owned()
}
