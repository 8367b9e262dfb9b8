//! Prometheus metrics with Kthena's names and labels. Label values are bounded: models are
//! names that some route serves (`unknown` otherwise), paths are the known OpenAI paths
//! (`other` otherwise), error types come from a fixed list.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Buckets of `kthena_router_request_duration_seconds`, as Kthena's.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// OpenAI-style paths kept as label values; any other path is counted as `other`.
const KNOWN_PATHS: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/messages",
    "/v1/models",
    "/v1/rerank",
    "/v1/score",
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
    "/v1/audio/speech",
    "/v1/images/generations",
    "/v1/moderations",
];

/// The path as a bounded label value.
pub fn path_label(path: &str) -> &'static str {
    path_by_index(path_index(path))
}

/// The index of `path` in [`KNOWN_PATHS`]; `KNOWN_PATHS.len()` for `other`.
pub fn path_index(path: &str) -> usize {
    KNOWN_PATHS
        .iter()
        .position(|p| *p == path)
        .unwrap_or(KNOWN_PATHS.len())
}

fn path_by_index(i: usize) -> &'static str {
    KNOWN_PATHS.get(i).copied().unwrap_or("other")
}

/// The router's metrics, registered in one [`Registry`].
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `kthena_router_requests_total{model,path,status_code,error_type}`.
    pub requests: IntCounterVec,
    /// `kthena_router_request_duration_seconds{model,path,status_code}`.
    pub duration: HistogramVec,
    /// `kthena_router_tokens_total{model,path,token_type}`.
    pub tokens: IntCounterVec,
    /// `kthena_router_active_downstream_requests{model}`.
    pub active_downstream: IntGaugeVec,
    /// `kthena_router_active_upstream_requests{model_route,model_server}`.
    pub active_upstream: IntGaugeVec,
    /// `kthena_router_outlier_ejections_total{pool}`: endpoints ejected by outlier detection.
    pub ejections: IntCounterVec,
    /// `kthena_router_upstream_retries_total{pool,outcome}`: retries made (`retried`) and
    /// refused by the retry budget (`budget_exhausted`).
    pub retries: IntCounterVec,
    /// `kthena_router_prefix_cache_match_ratio{model}`: per scheduled request, the fraction
    /// of its prompt's hashed blocks the best-matching candidate had been sent (0 = miss).
    pub prefix_match: HistogramVec,
    /// `kthena_router_rate_limit_exceeded_total{model,limit_type,path}`: requests a route's
    /// token budget refused (`limit_type` `input_tokens` or `output_tokens`).
    pub rate_limited: IntCounterVec,
    /// Global rate limits' Redis: errors by mode and connection per address.
    pub rate_limit_redis: crate::rate_limit::GlobalMetrics,
    /// The priority and fairness queues (`kthena_router_fairness_queue_*`).
    pub fairness: crate::fair_queue::QueueMetrics,
    /// Tells these metrics' series apart in the workers' caches ([`Metrics::series`]).
    id: usize,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            requests: IntCounterVec::new(
                Opts::new(
                    "kthena_router_requests_total",
                    "Total HTTP requests processed",
                ),
                &["model", "path", "status_code", "error_type"],
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "kthena_router_request_duration_seconds",
                    "End-to-end request latency",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["model", "path", "status_code"],
            )?,
            tokens: IntCounterVec::new(
                Opts::new(
                    "kthena_router_tokens_total",
                    "Total tokens processed or generated",
                ),
                &["model", "path", "token_type"],
            )?,
            active_downstream: IntGaugeVec::new(
                Opts::new(
                    "kthena_router_active_downstream_requests",
                    "Active downstream requests",
                ),
                &["model"],
            )?,
            active_upstream: IntGaugeVec::new(
                Opts::new(
                    "kthena_router_active_upstream_requests",
                    "Active upstream requests",
                ),
                &["model_route", "model_server"],
            )?,
            ejections: IntCounterVec::new(
                Opts::new(
                    "kthena_router_outlier_ejections_total",
                    "Endpoints ejected by outlier detection",
                ),
                &["pool"],
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "kthena_router_upstream_retries_total",
                    "Upstream retries made, and refused by the retry budget",
                ),
                &["pool", "outcome"],
            )?,
            prefix_match: HistogramVec::new(
                HistogramOpts::new(
                    "kthena_router_prefix_cache_match_ratio",
                    "Fraction of the prompt's blocks the best-matching candidate pod had \
                     already cached, per prefix-cache match attempt (0 = miss)",
                )
                .buckets(crate::scheduling::MATCH_RATIO_BUCKETS.to_vec()),
                &["model"],
            )?,
            rate_limited: IntCounterVec::new(
                Opts::new(
                    "kthena_router_rate_limit_exceeded_total",
                    "Number of requests rejected due to rate limiting",
                ),
                &["model", "limit_type", "path"],
            )?,
            rate_limit_redis: crate::rate_limit::GlobalMetrics {
                errors: IntCounterVec::new(
                    Opts::new(
                        "kthena_router_rate_limit_redis_errors_total",
                        "Requests to a global rate limit decided without its Redis: refused \
                         (mode closed) or let through (mode open) because Redis failed, or let \
                         through because it has not answered since the start (not_connected)",
                    ),
                    &["mode"],
                )?,
                connected: IntGaugeVec::new(
                    Opts::new(
                        "kthena_router_rate_limit_redis_connected",
                        "1 while the Redis of global rate limits at this address answers",
                    ),
                    &["address"],
                )?,
            },
            fairness: crate::fair_queue::QueueMetrics::new(registry)?,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        };
        registry.register(Box::new(m.rate_limited.clone()))?;
        registry.register(Box::new(m.rate_limit_redis.errors.clone()))?;
        registry.register(Box::new(m.rate_limit_redis.connected.clone()))?;
        registry.register(Box::new(crate::connection::PER_IP_REFUSED.clone()))?;
        registry.register(Box::new(m.prefix_match.clone()))?;
        registry.register(Box::new(m.ejections.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.duration.clone()))?;
        registry.register(Box::new(m.tokens.clone()))?;
        registry.register(Box::new(m.active_downstream.clone()))?;
        registry.register(Box::new(m.active_upstream.clone()))?;
        Ok(m)
    }
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Each worker's handles of the series of every model label it has served. Resolving a
    /// series in its vector hashes every label value with SipHash under a lock; a request
    /// touches six, so each worker resolves them once per model and keeps the handles.
    static SERIES: RefCell<SeriesCache> = RefCell::default();
}

/// By [`Metrics`] (its id), then by model label.
type SeriesCache = foldhash::HashMap<usize, foldhash::HashMap<Box<str>, Rc<ModelSeries>>>;

impl Metrics {
    /// The series of model label `model`, resolved once per worker thread.
    pub fn series(&self, model: &str) -> Rc<ModelSeries> {
        let found = SERIES.with(|s| s.borrow().get(&self.id)?.get(model).cloned());
        if let Some(s) = found {
            return s;
        }
        let s = Rc::new(ModelSeries {
            label: model.into(),
            downstream: self.active_downstream.with_label_values(&[model]),
            prefix_match: self.prefix_match.with_label_values(&[model]),
            paths: Default::default(),
        });
        SERIES.with(|c| {
            c.borrow_mut()
                .entry(self.id)
                .or_default()
                .insert(model.into(), s.clone());
        });
        s
    }
}

/// The series of one model label a request updates, resolved once per worker thread: the
/// active-request gauge, the prefix-match histogram and, per known path, the series of a
/// successful answer (status 200, no error). Other outcomes are rare and looked up each time.
#[derive(Debug)]
pub struct ModelSeries {
    /// The model label.
    pub label: Box<str>,
    /// `kthena_router_active_downstream_requests{model}`.
    pub downstream: IntGauge,
    /// `kthena_router_prefix_cache_match_ratio{model}`.
    pub prefix_match: Histogram,
    paths: [OnceCell<Success>; KNOWN_PATHS.len() + 1],
}

/// The series one successful answer on one path updates.
#[derive(Debug)]
pub struct Success {
    /// `kthena_router_requests_total{model,path,status_code="200",error_type=""}`.
    pub requests: IntCounter,
    /// `kthena_router_request_duration_seconds{model,path,status_code="200"}`.
    pub duration: Histogram,
    /// `kthena_router_tokens_total{model,path,token_type="input"}`.
    pub input: IntCounter,
    /// `kthena_router_tokens_total{model,path,token_type="output"}`.
    pub output: IntCounter,
}

impl ModelSeries {
    /// The series of a successful answer on the path of index `path` ([`path_index`]).
    pub fn success(&self, m: &Metrics, path: usize) -> &Success {
        let path = path.min(KNOWN_PATHS.len());
        self.paths[path].get_or_init(|| {
            let (model, p) = (&*self.label, path_by_index(path));
            Success {
                requests: m.requests.with_label_values(&[model, p, "200", ""]),
                duration: m.duration.with_label_values(&[model, p, "200"]),
                input: m.tokens.with_label_values(&[model, p, "input"]),
                output: m.tokens.with_label_values(&[model, p, "output"]),
            }
        })
    }
}

/// Content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The text exposition of every metric of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(e) = encoder.encode(&registry.gather(), &mut buf) {
        tracing::error!(error = %e, "encoding metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_series_are_the_vectors_series_and_each_registry_keeps_its_own() {
        let (ra, rb) = (Registry::new(), Registry::new());
        let (a, b) = (Metrics::new(&ra).unwrap(), Metrics::new(&rb).unwrap());
        let s = a.series("m");
        assert!(Rc::ptr_eq(&s, &a.series("m")), "resolved once per thread");
        let ok = s.success(&a, path_index("/v1/chat/completions"));
        ok.requests.inc();
        ok.output.inc_by(7);
        s.success(&a, path_index("/not/known")).requests.inc();
        s.downstream.inc();
        let labels = |l: &[&str]| a.requests.with_label_values(l).get();
        assert_eq!(labels(&["m", "/v1/chat/completions", "200", ""]), 1);
        assert_eq!(labels(&["m", "other", "200", ""]), 1);
        assert_eq!(
            a.tokens
                .with_label_values(&["m", "/v1/chat/completions", "output"])
                .get(),
            7
        );
        assert_eq!(a.active_downstream.with_label_values(&["m"]).get(), 1);
        // The other registry's series are untouched, and its cache is its own.
        b.series("m").downstream.inc();
        assert_eq!(a.active_downstream.with_label_values(&["m"]).get(), 1);
        assert_eq!(b.active_downstream.with_label_values(&["m"]).get(), 1);
        assert!(!render(&rb).contains("kthena_router_requests_total{"));
    }
}
