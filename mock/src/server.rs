//! Shared state, route registration and the HTTP server.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use actix_web::{
    App, HttpResponse, HttpServer,
    dev::{Server, Service as _},
    http::header::{HeaderName, HeaderValue},
    middleware::DefaultHeaders,
    web,
};

use crate::{
    MockError, completions, control,
    engine::EngineConfig,
    lora,
    metrics::{EngineKind, Metrics},
    sim::Sim,
    tokens::{BlockHash, model_seed},
};

/// Header naming the mock instance that answered, so tests can tell endpoints apart.
pub const POD_HEADER: &str = "x-mock-pod";
/// Header telling the HTTP version the request arrived with (`HTTP/1.1`, `HTTP/2.0`), so tests
/// see how the router spoke to the engine.
pub const VERSION_HEADER: &str = "x-mock-http-version";

/// How the mock behaves; built from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Model names requests may use; the first one labels the metrics and parents adapters.
    pub served_model_names: Vec<String>,
    /// LoRA adapters loaded at start, as (name, path).
    pub loras: Vec<(String, String)>,
    /// Delay before the first token.
    pub time_to_first_token: Duration,
    /// Delay between two tokens.
    pub inter_token_latency: Duration,
    /// Tokens generated per request (fewer when the request's `max_tokens` is smaller).
    pub tokens: usize,
    /// Fraction of completion requests answered 500: every Nth request fails with
    /// N = round(1 / rate), so 1.0 fails all, 0.5 every second one and 0 none.
    pub failure_rate: f64,
    /// Close the connection after this many bytes of a completion's body (an engine dying
    /// mid-answer); `None`: whole answers.
    pub cut_body_after: Option<usize>,
    /// Value of the `x-mock-pod` response header.
    pub pod_name: String,
    /// Whose metric names `/metrics` uses.
    pub engine: EngineKind,
    /// KV-cache blocks (`--kv-cache-blocks`).
    pub kv_cache_blocks: usize,
    /// Tokens per KV-cache block (`--block-size`).
    pub block_size: usize,
    /// Most requests running at once; more wait in a FIFO queue (`--max-num-seqs`).
    pub max_num_seqs: usize,
    /// Prefill time of every prompt token not found in the prefix cache, added to the time
    /// to first token (`--prefill-time-per-token`).
    pub prefill_time_per_token: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            served_model_names: vec!["mock-model".to_owned()],
            loras: Vec::new(),
            time_to_first_token: Duration::ZERO,
            inter_token_latency: Duration::ZERO,
            tokens: 8,
            failure_rate: 0.0,
            cut_body_after: None,
            pod_name: "mock".to_owned(),
            engine: EngineKind::Vllm,
            kv_cache_blocks: 2048,
            block_size: 16,
            max_num_seqs: 256,
            prefill_time_per_token: Duration::ZERO,
        }
    }
}

/// A configuration the mock cannot run with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No served model name.
    #[error("at least one served model name is required")]
    NoServedModel,
    /// `--failure-rate` outside 0..=1.
    #[error("failure rate {0} is not within 0.0..=1.0")]
    FailureRate(f64),
    /// `--pod-name` cannot be sent as a header value.
    #[error("pod name {0:?} is not a valid header value")]
    PodName(String),
    /// `--kv-cache-blocks`, `--block-size` or `--max-num-seqs` is 0.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A loaded LoRA adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lora {
    /// Name requests use as `model`.
    pub name: String,
    /// Path given when it was loaded.
    pub path: String,
}

/// State shared by every worker: configuration, loaded adapters, failure injection and the
/// simulated engine with its metrics.
#[derive(Debug)]
pub struct State {
    config: Config,
    pod_header: HeaderValue,
    failures: Mutex<Failures>,
    loras: RwLock<Vec<Lora>>,
    started: u64,
    sim: Arc<Sim>,
}

/// `--failure-rate` as changed at runtime: every `every`th counted request fails.
#[derive(Debug)]
struct Failures {
    rate: f64,
    every: Option<u64>,
    count: u64,
}

impl Failures {
    fn new(rate: f64) -> Result<Self, ConfigError> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(ConfigError::FailureRate(rate));
        }
        Ok(Self {
            rate,
            every: (rate > 0.0).then(|| (1.0 / rate).round().max(1.0) as u64),
            count: 0,
        })
    }
}

impl State {
    /// Validates `config` and builds the state, with its own metrics registry.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let first = config
            .served_model_names
            .first()
            .ok_or(ConfigError::NoServedModel)?;
        let metrics = Metrics::new(config.engine, first)?;
        let failures = Failures::new(config.failure_rate)?;
        for (name, value) in [
            ("kv cache blocks", config.kv_cache_blocks),
            ("block size", config.block_size),
            ("max num seqs", config.max_num_seqs),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        let engine = EngineConfig {
            num_blocks: config.kv_cache_blocks,
            block_size: config.block_size,
            max_num_seqs: config.max_num_seqs,
        };
        let pod_header = HeaderValue::from_str(&config.pod_name)
            .map_err(|_| ConfigError::PodName(config.pod_name.clone()))?;
        let loras = config
            .loras
            .iter()
            .map(|(name, path)| Lora {
                name: name.clone(),
                path: path.clone(),
            })
            .collect();
        Ok(Self {
            pod_header,
            failures: Mutex::new(failures),
            loras: RwLock::new(loras),
            started: now(),
            sim: Arc::new(Sim::new(engine, metrics)),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        self.sim.metrics()
    }

    /// The simulated engine.
    pub fn sim(&self) -> &Arc<Sim> {
        &self.sim
    }

    /// Unix seconds when the mock started (`created` of `/v1/models`).
    pub fn started(&self) -> u64 {
        self.started
    }

    /// The first served model name.
    pub fn base_model(&self) -> &str {
        self.config
            .served_model_names
            .first()
            .map(String::as_str)
            .expect("State::new rejects an empty served model list")
    }

    /// The model a request names, checked against served names and loaded adapters;
    /// a request without `model` gets the first served name, as in vLLM.
    pub fn resolve_model(&self, requested: Option<&str>) -> Result<String, MockError> {
        self.resolve(requested).map(|(model, _)| model)
    }

    /// [`State::resolve_model`] and the seed of the model's prefix-cache hash chain: every
    /// served name shares the base model's blocks, each adapter has its own.
    pub fn resolve(&self, requested: Option<&str>) -> Result<(String, BlockHash), MockError> {
        let Some(model) = requested else {
            return Ok((self.base_model().to_owned(), model_seed(None)));
        };
        if self.config.served_model_names.iter().any(|m| m == model) {
            return Ok((model.to_owned(), model_seed(None)));
        }
        match self.loras().iter().find(|l| l.name == model) {
            Some(lora) => Ok((model.to_owned(), model_seed(Some((&lora.name, &lora.path))))),
            None => Err(MockError::ModelNotFound(model.to_owned())),
        }
    }

    /// Counts a completion request and fails it when the failure rate says so.
    pub fn check_failure(&self) -> Result<(), MockError> {
        let mut failures = self.failures();
        let Some(every) = failures.every else {
            return Ok(());
        };
        failures.count += 1;
        if failures.count.is_multiple_of(every) {
            Err(MockError::Injected(failures.count))
        } else {
            Ok(())
        }
    }

    /// The failure rate now (`--failure-rate`, or as last set at runtime).
    pub fn failure_rate(&self) -> f64 {
        self.failures().rate
    }

    /// Changes the failure rate; counting restarts, so with rate 1/N the Nth request from
    /// now on is the first to fail.
    pub fn set_failure_rate(&self, rate: f64) -> Result<(), ConfigError> {
        *self.failures() = Failures::new(rate)?;
        Ok(())
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, Failures> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The loaded adapters, in load order.
    pub fn loras(&self) -> RwLockReadGuard<'_, Vec<Lora>> {
        self.loras.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The loaded adapters, for loading or unloading.
    pub fn loras_mut(&self) -> RwLockWriteGuard<'_, Vec<Lora>> {
        self.loras.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Registers every route of the mock, with `state` as app data and the `x-mock-pod` header
/// on every answer (errors included).
pub fn configure(cfg: &mut web::ServiceConfig, state: web::Data<State>) {
    let pod = (
        HeaderName::from_static(POD_HEADER),
        state.pod_header.clone(),
    );
    cfg.app_data(state).service(
        web::scope("")
            .wrap_fn(|req, srv| {
                let version = HeaderValue::from_str(&format!("{:?}", req.version()));
                let call = srv.call(req);
                async move {
                    let mut res = call.await?;
                    if let Ok(v) = version {
                        res.headers_mut()
                            .insert(HeaderName::from_static(VERSION_HEADER), v);
                    }
                    Ok(res)
                }
            })
            .wrap(DefaultHeaders::new().add(pod))
            .route("/v1/chat/completions", web::post().to(completions::chat))
            .route("/v1/completions", web::post().to(completions::completion))
            .route("/v1/models", web::get().to(lora::models))
            .route("/v1/load_lora_adapter", web::post().to(lora::load))
            .route("/v1/unload_lora_adapter", web::post().to(lora::unload))
            .route("/mock/failure_rate", web::post().to(control::failure_rate))
            .route("/health", web::get().to(HttpResponse::Ok))
            .route("/metrics", web::get().to(metrics)),
    );
}

async fn metrics(state: web::Data<State>) -> HttpResponse {
    match state.metrics().render() {
        Ok(text) => HttpResponse::Ok()
            .content_type(crate::metrics::content_type())
            .body(text),
        Err(error) => HttpResponse::InternalServerError().body(error.to_string()),
    }
}

/// How the mock's port speaks.
#[derive(Debug, Clone, Default)]
pub struct Listen {
    /// Serve HTTPS with this configuration (`--ssl-certfile`, `--ssl-keyfile`).
    pub tls: Option<rustls::ServerConfig>,
    /// Accept h2c (HTTP/2 with prior knowledge) on plain TCP too.
    pub http2: bool,
}

/// Binds `listen` (port 0 picks a free port) with `workers` workers and TCP_NODELAY on
/// accepted sockets, speaking as `how` says. Returns the bound address and the server, which
/// serves once awaited.
pub fn bind(
    listen: SocketAddr,
    workers: usize,
    how: Listen,
    state: web::Data<State>,
) -> std::io::Result<(SocketAddr, Server)> {
    let server = HttpServer::new(move || {
        let state = state.clone();
        App::new().configure(move |cfg| configure(cfg, state))
    })
    .workers(workers.max(1))
    .tcp_nodelay(true)
    // As vLLM aborts a request whose client disconnected: the handler is dropped at the
    // client's end of stream, and with it the request's place in the running set.
    .h1_allow_half_closed(false);
    let server = match (how.tls, how.http2) {
        (Some(config), _) => server.bind_rustls_0_23(listen, config)?,
        (None, true) => server.bind_auto_h2c(listen)?,
        (None, false) => server.bind(listen)?,
    };
    let addr = server.addrs().first().copied().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("{listen} resolved to no address"),
        )
    })?;
    Ok((addr, server.run()))
}

/// Unix seconds now, for `created` fields.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
