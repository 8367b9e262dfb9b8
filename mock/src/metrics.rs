//! The `vllm:*` Prometheus metrics the router scrapes, labelled `model_name` like vLLM does:
//! every series carries the first served model name, whichever model or adapter a request
//! named.

use std::time::Duration;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// In-flight requests that fill the simulated KV cache completely.
pub const KV_CACHE_CAPACITY: f64 = 16.0;

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

/// The mock's own registry and the series of its one `model_name`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    running: IntGauge,
    kv_cache_usage: Gauge,
    ttft: Histogram,
    itl: Histogram,
    prompt_tokens: IntCounter,
    generation_tokens: IntCounter,
}

impl Metrics {
    /// Registers every metric in a fresh registry, labelled with `model_name`.
    pub fn new(model_name: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let labels = &[model_name];
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let vec = IntGaugeVec::new(Opts::new(name, help), &["model_name"])?;
            registry.register(Box::new(vec.clone()))?;
            Ok(vec.with_label_values(labels))
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let vec = IntCounterVec::new(Opts::new(name, help), &["model_name"])?;
            registry.register(Box::new(vec.clone()))?;
            Ok(vec.with_label_values(labels))
        };
        let histogram =
            |name: &str, help: &str, buckets: &[f64]| -> Result<Histogram, prometheus::Error> {
                let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
                let vec = HistogramVec::new(opts, &["model_name"])?;
                registry.register(Box::new(vec.clone()))?;
                Ok(vec.with_label_values(labels))
            };

        let running = gauge(
            "vllm:num_requests_running",
            "Number of requests in model execution batches.",
        )?;
        gauge(
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed (always 0 in the mock).",
        )?;
        let kv_vec = GaugeVec::new(
            Opts::new(
                "vllm:kv_cache_usage_perc",
                "KV-cache usage. 1 means 100 percent usage (running requests / 16 in the mock).",
            ),
            &["model_name"],
        )?;
        registry.register(Box::new(kv_vec.clone()))?;
        Ok(Self {
            running,
            kv_cache_usage: kv_vec.with_label_values(labels),
            ttft: histogram(
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                TTFT_BUCKETS,
            )?,
            itl: histogram(
                "vllm:inter_token_latency_seconds",
                "Histogram of inter-token latency in seconds.",
                ITL_BUCKETS,
            )?,
            prompt_tokens: counter(
                "vllm:prompt_tokens_total",
                "Number of prefill tokens processed.",
            )?,
            generation_tokens: counter(
                "vllm:generation_tokens_total",
                "Number of generation tokens processed.",
            )?,
            registry,
        })
    }

    /// Counts a request as running until the returned guard is dropped (when the response,
    /// or the stream, ends or the client goes away), and counts its prompt tokens.
    pub fn start(&self, prompt_tokens: u64) -> InFlight {
        self.prompt_tokens.inc_by(prompt_tokens);
        self.running.inc();
        InFlight(self.running.clone())
    }

    /// Records one generated token that took `latency`: the time to first token when
    /// `first`, otherwise the gap since the previous token.
    pub fn token(&self, first: bool, latency: Duration) {
        let histogram = if first { &self.ttft } else { &self.itl };
        histogram.observe(latency.as_secs_f64());
        self.generation_tokens.inc();
    }

    /// Requests currently running.
    pub fn running(&self) -> i64 {
        self.running.get()
    }

    /// Prometheus text exposition of every metric, with the KV-cache gauge refreshed.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let usage = (self.running.get().max(0) as f64 / KV_CACHE_CAPACITY).min(1.0);
        self.kv_cache_usage.set(usage);
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// A running request; dropping it decrements `vllm:num_requests_running`.
#[derive(Debug)]
pub struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The `Content-Type` of [`Metrics::render`]'s output.
pub fn content_type() -> String {
    TextEncoder::new().format_type().to_owned()
}
