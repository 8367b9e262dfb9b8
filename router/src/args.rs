//! Command-line flags of `kthena-router`; every flag has a default and an environment variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::access_log::{Format, Output};
use crate::app::RunOptions;
use crate::kube_client::ApiLimit;
use crate::rate_limit::FailureMode;
use crate::tls::files::CertPaths;

/// kthena-router: routes OpenAI-compatible requests by model to inference engine Pods.
#[derive(Debug, Parser)]
#[command(name = "kthena-router", version)]
pub struct Args {
    /// Port of the inference API.
    #[arg(long, env = "KTHENA_ROUTER_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address the inference API and metrics bind to.
    #[arg(long, env = "KTHENA_ROUTER_LISTEN_ADDRESS", default_value = "0.0.0.0")]
    pub listen_address: IpAddr,
    /// Port of the Prometheus `/metrics` endpoint.
    #[arg(long, env = "KTHENA_ROUTER_METRICS_PORT", default_value_t = 9090)]
    pub metrics_port: u16,
    /// Port of the debug endpoints, bound to 127.0.0.1 only.
    #[arg(long, env = "KTHENA_ROUTER_DEBUG_PORT", default_value_t = 15000)]
    pub debug_port: u16,
    /// Standalone mode: read ModelRoute, ModelServer and Pod manifests from this folder and
    /// watch it, instead of a Kubernetes API server.
    #[arg(long, env = "KTHENA_ROUTER_MANIFESTS")]
    pub manifests: Option<PathBuf>,
    /// How often the manifest folder is checked for changes: the files inotify named, and the
    /// whole folder at most every 100 times what a whole look costs.
    #[arg(long, env = "KTHENA_ROUTER_MANIFESTS_INTERVAL", default_value = "250ms", value_parser = duration)]
    pub manifests_interval: Duration,
    /// Largest accepted request line and headers, in bytes (larger: 431, nothing forwarded).
    /// actix refuses a head over 128 KiB or with over 96 headers before this check.
    #[arg(long, env = "KTHENA_ROUTER_MAX_HEADER_BYTES", default_value_t = 64 << 10)]
    pub max_header_bytes: usize,
    /// Largest accepted request body, in bytes (larger: 413).
    #[arg(long, env = "KTHENA_ROUTER_MAX_BODY_BYTES", default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
    /// Longest a request's headers may take to arrive: the first request's from the
    /// connection's open (then 408), a later one's after the previous request ended and the
    /// idle timeout passed (then the connection closes).
    #[arg(long, env = "KTHENA_ROUTER_REQUEST_HEADERS_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub request_headers_timeout: Duration,
    /// Longest a client connection may stay open with no request under way.
    #[arg(long, env = "KTHENA_ROUTER_IDLE_TIMEOUT", default_value = "60s", value_parser = duration)]
    pub idle_timeout: Duration,
    /// Most client connections open at once on each listener; more wait to be accepted. 0:
    /// a third of the process's file descriptor limit (each connection may hold three: its
    /// own, a duplicate for the headers timeout and one to an engine).
    #[arg(long, env = "KTHENA_ROUTER_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// Most client connections open at once from one client address, over every listener; a
    /// connection past it is closed as it is accepted. 0: no cap.
    #[arg(
        long,
        env = "KTHENA_ROUTER_MAX_CONNECTIONS_PER_IP",
        default_value_t = 0
    )]
    pub max_connections_per_ip: u32,
    /// Longest a client's request body may send no byte (then 408 and the connection closes).
    #[arg(long, env = "KTHENA_ROUTER_REQUEST_BODY_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub request_body_timeout: Duration,
    /// Longest an engine's response body may send no byte once its headers came (then the
    /// client's connection closes; a stream first gets an error event).
    #[arg(long, env = "KTHENA_ROUTER_UPSTREAM_IDLE_TIMEOUT", default_value = "300s", value_parser = duration)]
    pub upstream_idle_timeout: Duration,
    /// Worker threads of the inference API (default: one per CPU).
    #[arg(long, env = "KTHENA_ROUTER_WORKERS", default_value_t = default_workers())]
    pub workers: usize,
    /// On SIGTERM, how long requests and streams in flight may take to finish.
    #[arg(long, env = "DRAIN_TIMEOUT", default_value = "5m", value_parser = duration)]
    pub drain_timeout: Duration,
    /// Write an access log line per request (to `--access-log-output`).
    #[arg(long, env = "ACCESS_LOG_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub access_log: bool,
    /// Serve Gateway API Gateways: ModelRoutes bind to their listeners through parentRefs,
    /// every listener port is served. (Global: `validate` judges model-name conflicts as a
    /// router started with the same value.)
    #[arg(long, global = true, env = "KTHENA_ROUTER_ENABLE_GATEWAY_API", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_gateway_api: bool,
    /// Serve the Gateway API Inference Extension: InferencePools (v1 and v1alpha2),
    /// InferenceModels and InferenceObjectives. Needs `--enable-gateway-api`.
    #[arg(long, env = "KTHENA_ROUTER_ENABLE_GATEWAY_API_INFERENCE_EXTENSION", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_gateway_api_inference_extension: bool,
    /// GatewayClasses with this `controllerName` are ours (as is the class `kthena-router`).
    #[arg(
        long,
        env = "KTHENA_ROUTER_CONTROLLER_NAME",
        default_value = "volcano.sh/kthena-router"
    )]
    pub controller_name: String,
    /// Namespace of the router (the default Gateway lives here).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// Kubernetes mode: watch this namespace only (cluster-scoped kinds are still watched).
    #[arg(long, env = "KTHENA_ROUTER_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Kubernetes mode: the router's own Service (in `--namespace`); its address is the
    /// Gateways' `status.addresses`, and its ports follow the programmed listeners.
    #[arg(
        long,
        env = "KTHENA_ROUTER_SERVICE_NAME",
        default_value = "kthena-router"
    )]
    pub service_name: String,
    /// Access log format.
    #[arg(long, env = "ACCESS_LOG_FORMAT", value_enum, default_value_t = Format::Text)]
    pub access_log_format: Format,
    /// Where access log lines go: `stdout`, `stderr`, or a file path (created when missing,
    /// appended to).
    #[arg(long, env = "ACCESS_LOG_OUTPUT", default_value = "stdout")]
    pub access_log_output: Output,
    /// Certificate chain (PEM) to serve HTTPS on `--port` (in gateway mode: the listeners on
    /// that port); needs `--tls-key`. Unset: plain HTTP.
    #[arg(long, env = "KTHENA_ROUTER_TLS_CERT", value_parser = path_or_empty())]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `--tls-cert`.
    #[arg(long, env = "KTHENA_ROUTER_TLS_KEY", value_parser = path_or_empty())]
    pub tls_key: Option<PathBuf>,
    /// How often `--tls-cert` and `--tls-key` are read again; changed files holding a valid
    /// pair are served from the next handshake on (0: never).
    #[arg(long, env = "KTHENA_ROUTER_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = duration)]
    pub tls_reload_interval: Duration,
    /// CA certificates (PEM) that Pods served over TLS (`workloadPort.protocol: https`) must
    /// present a chain to. Unset: their certificates are not verified (Pods are dialled by IP
    /// and usually hold self-signed certificates; Kthena itself sends them plain HTTP).
    #[arg(long, env = "KTHENA_ROUTER_POD_TLS_CA_FILE", value_parser = path_or_empty())]
    pub pod_tls_ca_file: Option<PathBuf>,
    /// The name a Pod's certificate must carry, instead of the Pod's IP; needs
    /// `--pod-tls-ca-file`.
    #[arg(long, env = "KTHENA_ROUTER_POD_TLS_SERVER_NAME")]
    pub pod_tls_server_name: Option<String>,
    /// Also serve the Prometheus `GET /metrics` on `--port` (it is always on `--metrics-port`).
    #[arg(long, env = "KTHENA_ROUTER_EXPOSE_METRICS_ON_ROUTER_PORT", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub expose_metrics_on_router_port: bool,
    /// Kubernetes mode: API server requests per second, client-side (0: no limit).
    #[arg(long, env = "KTHENA_ROUTER_KUBE_API_QPS", default_value_t = 0.0)]
    pub kube_api_qps: f32,
    /// Kubernetes mode: API server requests that may go at once (0: `max(1, ceil(qps))`);
    /// used only with `--kube-api-qps`.
    #[arg(long, env = "KTHENA_ROUTER_KUBE_API_BURST", default_value_t = 0)]
    pub kube_api_burst: u32,
    /// Scheduler configuration: Kthena's `routerConfiguration` YAML (`scheduler.pluginConfig`,
    /// `scheduler.plugins.Filter/Score`), read again whenever it changes. Unset: Kthena's
    /// defaults.
    #[arg(long, env = "KTHENA_ROUTER_SCHEDULER_CONFIG", value_parser = path_or_empty())]
    pub scheduler_config: Option<PathBuf>,
    /// How often `--scheduler-config` is checked for changes.
    #[arg(long, env = "KTHENA_ROUTER_SCHEDULER_CONFIG_INTERVAL", default_value = "1s", value_parser = duration)]
    pub scheduler_config_interval: Duration,
    /// How often each engine's `/metrics` and `/v1/models` are scraped (a duration, `1s`,
    /// `500ms`, as Kthena's); 0 turns scraping off.
    #[arg(long, env = "METRICS_SCRAPE_INTERVAL", default_value = "1s", value_parser = duration)]
    pub metrics_scrape_interval: Duration,
    /// Scrapes in flight at once, over all pools.
    #[arg(
        long,
        env = "KTHENA_ROUTER_METRICS_SCRAPE_CONCURRENCY",
        default_value_t = 100
    )]
    pub metrics_scrape_concurrency: usize,
    /// Outlier detection: failures in a row (connection errors, timeouts, 5xx) that eject an
    /// endpoint; 0 turns ejection off.
    #[arg(
        long,
        env = "KTHENA_ROUTER_OUTLIER_CONSECUTIVE_FAILURES",
        default_value_t = 5
    )]
    pub outlier_consecutive_failures: u32,
    /// Outlier detection: length of a first ejection (the n-th lasts n times longer).
    #[arg(long, env = "KTHENA_ROUTER_OUTLIER_BASE_EJECTION", default_value = "30s", value_parser = duration)]
    pub outlier_base_ejection: Duration,
    /// Outlier detection: longest ejection.
    #[arg(long, env = "KTHENA_ROUTER_OUTLIER_MAX_EJECTION", default_value = "300s", value_parser = duration)]
    pub outlier_max_ejection: Duration,
    /// Outlier detection: most of a pool, in percent of its endpoints, ejected at once.
    #[arg(long, env = "KTHENA_ROUTER_OUTLIER_MAX_EJECTED_PERCENT", default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub outlier_max_ejected_percent: u32,
    /// Retry budget: retries in flight to a pool, in percent of its requests in flight
    /// (Envoy's budget); a retry beyond it is not made and the request answers its last error.
    #[arg(long, env = "KTHENA_ROUTER_RETRY_BUDGET_PERCENT", default_value_t = 20.0, value_parser = percent)]
    pub retry_budget_percent: f64,
    /// Retry budget: retries in flight to a pool always allowed, whatever the percentage.
    #[arg(
        long,
        env = "KTHENA_ROUTER_RETRY_BUDGET_MIN_CONCURRENCY",
        default_value_t = 3
    )]
    pub retry_budget_min_concurrency: u32,
    /// Global token rate limits (`spec.rateLimit.global.redis`): what a request gets when
    /// its Redis fails at request time (an error, or no answer within
    /// `--rate-limit-redis-timeout`): `closed` refuses it with 429 (Kthena's behaviour),
    /// `open` lets it through. A Redis that has not answered since the start is always
    /// passed through (Kthena's fail-open) until it answers.
    #[arg(
        long,
        env = "KTHENA_ROUTER_RATE_LIMIT_REDIS_FAILURE_MODE",
        value_enum,
        default_value_t = FailureMode::Closed
    )]
    pub rate_limit_redis_failure_mode: FailureMode,
    /// Longest a global rate limit's Redis call or connection attempt may take; past it the
    /// call failed. Bounds the time a dead Redis adds to a request.
    #[arg(long, env = "KTHENA_ROUTER_RATE_LIMIT_REDIS_TIMEOUT", default_value = "500ms", value_parser = duration)]
    pub rate_limit_redis_timeout: Duration,
    /// Priority and fair queueing before the scheduler: one bounded queue per pool, admitting
    /// when the pool has room, highest InferenceObjective priority first, then the user with
    /// the least recent weighted tokens, FIFO per user (see "Priority and fair queueing").
    #[arg(long, env = "ENABLE_FAIRNESS_SCHEDULING", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_fairness_scheduling: bool,
    /// Fairness: how far back a user's tokens and requests count.
    #[arg(long, env = "FAIRNESS_WINDOW_SIZE", default_value = "1h", value_parser = duration)]
    pub fairness_window_size: Duration,
    /// Fairness: weight of a prompt token in a user's usage.
    #[arg(long, env = "FAIRNESS_INPUT_TOKEN_WEIGHT", default_value_t = 1.0, value_parser = weight)]
    pub fairness_input_token_weight: f64,
    /// Fairness: weight of a generated token in a user's usage.
    #[arg(long, env = "FAIRNESS_OUTPUT_TOKEN_WEIGHT", default_value_t = 2.0, value_parser = weight)]
    pub fairness_output_token_weight: f64,
    /// Fairness: weight of the weighted tokens in a user's score (lower goes first).
    #[arg(long, env = "FAIRNESS_PRIORITY_TOKEN_WEIGHT", default_value_t = 1.0, value_parser = weight)]
    pub fairness_priority_token_weight: f64,
    /// Fairness: weight of the request count in a user's score.
    #[arg(long, env = "FAIRNESS_PRIORITY_REQUEST_NUM_WEIGHT", default_value_t = 0.0, value_parser = weight)]
    pub fairness_priority_request_num_weight: f64,
    /// Fairness: most requests admitted per pool and not finished; 0: admissions are paced
    /// by `--fairness-max-qps` instead (Kthena's QPS mode).
    #[arg(long, env = "FAIRNESS_MAX_CONCURRENT", default_value_t = 0)]
    pub fairness_max_concurrent: usize,
    /// Fairness: admissions per second per pool when `--fairness-max-concurrent` is 0.
    #[arg(long, env = "FAIRNESS_MAX_QPS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub fairness_max_qps: u32,
    /// Fairness: longest a request waits in its queue (then 504 "Request processing timed
    /// out in queue").
    #[arg(long, env = "FAIRNESS_QUEUE_TIMEOUT", default_value = "60s", value_parser = duration)]
    pub fairness_queue_timeout: Duration,
    /// Fairness: most requests waiting per pool; past it the newest request of the lowest
    /// priority below the new one's is shed, or the new one is refused (429 with
    /// `x-llm-d-request-dropped-reason: rejected-saturated`).
    #[arg(long, env = "FAIRNESS_MAX_QUEUE_SIZE", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub fairness_max_queue_size: u64,
}

/// A fairness weight: a finite number of at least 0.
fn weight(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(w) if w.is_finite() && w >= 0.0 => Ok(w),
        _ => Err(format!("{text:?} is not a weight (a number of at least 0)")),
    }
}

/// A percentage, 0 to 100.
fn percent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a percentage from 0 to 100")),
    }
}

/// A path, where an empty value is accepted (clap's path parser refuses it) and means unset.
fn path_or_empty() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}

/// An empty path (e.g. `KTHENA_ROUTER_TLS_CERT=""` from a chart) means unset, as in Kthena.
fn set(path: Option<&PathBuf>) -> Option<&PathBuf> {
    path.filter(|p| !p.as_os_str().is_empty())
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn duration(text: &str) -> Result<Duration, String> {
    kthena_api::convert::parse_duration(text)
}

impl Args {
    /// Checks flags that depend on each other.
    pub fn check(&self) -> Result<(), String> {
        if self.enable_gateway_api_inference_extension && !self.enable_gateway_api {
            return Err(
                "--enable-gateway-api-inference-extension requires --enable-gateway-api".to_owned(),
            );
        }
        match (set(self.tls_cert.as_ref()), set(self.tls_key.as_ref())) {
            (Some(_), None) => {
                return Err("--tls-cert is set but --tls-key is not: give both or neither".into());
            }
            (None, Some(_)) => {
                return Err("--tls-key is set but --tls-cert is not: give both or neither".into());
            }
            _ => {}
        }
        if !(self.kube_api_qps.is_finite() && self.kube_api_qps >= 0.0) {
            return Err(format!(
                "--kube-api-qps must be 0 (no limit) or a positive number, got {}",
                self.kube_api_qps
            ));
        }
        Ok(())
    }

    /// The options of [`crate::app::run`].
    pub fn into_options(self) -> RunOptions {
        let Args {
            port,
            listen_address,
            metrics_port,
            debug_port,
            manifests,
            manifests_interval,
            max_body_bytes,
            max_header_bytes,
            request_headers_timeout,
            idle_timeout,
            max_connections,
            max_connections_per_ip,
            request_body_timeout,
            upstream_idle_timeout,
            workers,
            drain_timeout,
            access_log,
            access_log_format,
            access_log_output,
            tls_cert,
            tls_key,
            tls_reload_interval,
            pod_tls_ca_file,
            pod_tls_server_name,
            expose_metrics_on_router_port,
            kube_api_qps,
            kube_api_burst,
            enable_gateway_api,
            enable_gateway_api_inference_extension,
            controller_name,
            namespace,
            watch_namespace,
            service_name,
            scheduler_config,
            scheduler_config_interval,
            metrics_scrape_interval,
            metrics_scrape_concurrency,
            outlier_consecutive_failures,
            outlier_base_ejection,
            outlier_max_ejection,
            outlier_max_ejected_percent,
            retry_budget_percent,
            retry_budget_min_concurrency,
            rate_limit_redis_failure_mode,
            rate_limit_redis_timeout,
            enable_fairness_scheduling,
            fairness_window_size,
            fairness_input_token_weight,
            fairness_output_token_weight,
            fairness_priority_token_weight,
            fairness_priority_request_num_weight,
            fairness_max_concurrent,
            fairness_max_qps,
            fairness_queue_timeout,
            fairness_max_queue_size,
        } = self;
        let tls = match (set(tls_cert.as_ref()), set(tls_key.as_ref())) {
            (Some(cert), Some(key)) => Some(CertPaths {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        RunOptions {
            port,
            listen_address,
            metrics_port,
            debug_port,
            manifests,
            manifests_interval,
            max_body_bytes,
            max_header_bytes,
            max_connections,
            max_connections_per_ip,
            timeouts: crate::handlers::Timeouts {
                request_headers: request_headers_timeout,
                idle: idle_timeout,
                request_body: request_body_timeout,
                upstream_idle: upstream_idle_timeout,
            },
            workers: workers.max(1),
            drain_timeout,
            access_log: crate::access_log::Options {
                enabled: access_log,
                format: access_log_format,
                output: access_log_output,
            },
            tls,
            tls_reload_interval,
            pod_tls: crate::upstream::tls::PodTls {
                ca_file: set(pod_tls_ca_file.as_ref()).cloned(),
                server_name: pod_tls_server_name.filter(|n| !n.is_empty()),
            },
            expose_metrics_on_router_port,
            kube_api: ApiLimit {
                qps: kube_api_qps,
                burst: kube_api_burst,
            },
            gateway: crate::source::GatewayOptions {
                enabled: enable_gateway_api,
                controller_name,
                namespace,
                port,
                inference_extension: enable_gateway_api_inference_extension,
                addresses: vec![listen_address.to_string()],
            },
            watch_namespace,
            service_name,
            scheduler_config: set(scheduler_config.as_ref()).cloned(),
            scheduler_config_interval,
            metrics_scrape_interval,
            metrics_scrape_concurrency,
            outlier: kthena_core::outlier::OutlierPolicy {
                consecutive_failures: outlier_consecutive_failures,
                base_ejection: outlier_base_ejection,
                max_ejection: outlier_max_ejection,
                max_ejected_percent: outlier_max_ejected_percent,
            },
            retry_budget: kthena_core::retry_budget::RetryBudget {
                percent: retry_budget_percent,
                min_concurrency: retry_budget_min_concurrency,
            },
            rate_limit: crate::rate_limit::GlobalOptions {
                failure_mode: rate_limit_redis_failure_mode,
                timeout: rate_limit_redis_timeout,
            },
            fairness: enable_fairness_scheduling.then_some(crate::fair_queue::FairnessOptions {
                window: fairness_window_size,
                weights: kthena_core::fair_queue::Weights {
                    input: fairness_input_token_weight,
                    output: fairness_output_token_weight,
                    token: fairness_priority_token_weight,
                    request_num: fairness_priority_request_num_weight,
                },
                max_concurrent: fairness_max_concurrent,
                max_qps: fairness_max_qps,
                queue_timeout: fairness_queue_timeout,
                max_queue: usize::try_from(fairness_max_queue_size).unwrap_or(usize::MAX),
            }),
        }
    }
}

impl Args {
    /// Runs the router until SIGINT or SIGTERM.
    pub async fn run(self) -> anyhow::Result<()> {
        self.check().map_err(anyhow::Error::msg)?;
        crate::app::run(self.into_options(), None).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use clap::{CommandFactory, Parser};

    use super::Args;
    use crate::access_log::Output;
    use crate::kube_client::ApiLimit;
    use crate::tls::files::CertPaths;

    fn parse(flags: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("kthena-router").chain(flags.iter().copied()))
            .expect("valid flags")
    }

    #[test]
    fn data_plane_flags_have_kthena_env_names() {
        let cmd = Args::command();
        for (id, env) in [
            ("tls_cert", "KTHENA_ROUTER_TLS_CERT"),
            ("tls_key", "KTHENA_ROUTER_TLS_KEY"),
            ("tls_reload_interval", "KTHENA_ROUTER_TLS_RELOAD_INTERVAL"),
            (
                "expose_metrics_on_router_port",
                "KTHENA_ROUTER_EXPOSE_METRICS_ON_ROUTER_PORT",
            ),
            ("pod_tls_ca_file", "KTHENA_ROUTER_POD_TLS_CA_FILE"),
            ("pod_tls_server_name", "KTHENA_ROUTER_POD_TLS_SERVER_NAME"),
            ("kube_api_qps", "KTHENA_ROUTER_KUBE_API_QPS"),
            ("kube_api_burst", "KTHENA_ROUTER_KUBE_API_BURST"),
            ("access_log_output", "ACCESS_LOG_OUTPUT"),
            (
                "rate_limit_redis_failure_mode",
                "KTHENA_ROUTER_RATE_LIMIT_REDIS_FAILURE_MODE",
            ),
            (
                "rate_limit_redis_timeout",
                "KTHENA_ROUTER_RATE_LIMIT_REDIS_TIMEOUT",
            ),
        ] {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id() == id)
                .unwrap_or_else(|| panic!("no flag {id}"));
            assert_eq!(arg.get_env().and_then(|e| e.to_str()), Some(env), "{id}");
        }
    }

    #[test]
    fn data_plane_flags_default_to_plain_http_stdout_and_no_limit() {
        let opts = parse(&[]).into_options();
        assert_eq!(opts.tls, None);
        assert_eq!(opts.tls_reload_interval, Duration::from_secs(10));
        assert!(!opts.expose_metrics_on_router_port);
        assert_eq!(opts.kube_api, ApiLimit { qps: 0.0, burst: 0 });
        assert_eq!(opts.access_log.output, Output::Stdout);
    }

    /// Global rate limits fail closed by default (Kthena's), and the flag turns that open.
    #[test]
    fn global_rate_limits_fail_closed_unless_told_open() {
        use crate::rate_limit::FailureMode;
        let opts = parse(&[]).into_options();
        assert_eq!(opts.rate_limit.failure_mode, FailureMode::Closed);
        assert_eq!(opts.rate_limit.timeout, Duration::from_millis(500));
        let opts = parse(&[
            "--rate-limit-redis-failure-mode",
            "open",
            "--rate-limit-redis-timeout",
            "1s",
        ])
        .into_options();
        assert_eq!(opts.rate_limit.failure_mode, FailureMode::Open);
        assert_eq!(opts.rate_limit.timeout, Duration::from_secs(1));
        let bad = Args::try_parse_from(["kthena-router", "--rate-limit-redis-failure-mode=half"]);
        assert!(bad.is_err());
    }

    #[test]
    fn data_plane_flags_parse() {
        let args = parse(&[
            "--tls-cert",
            "/etc/router-tls/tls.crt",
            "--tls-key",
            "/etc/router-tls/tls.key",
            "--tls-reload-interval",
            "1m",
            "--expose-metrics-on-router-port",
            "--kube-api-qps",
            "2.5",
            "--kube-api-burst",
            "10",
            "--access-log-output",
            "/var/log/kthena/access.log",
        ]);
        args.check().expect("consistent");
        let opts = args.into_options();
        assert_eq!(
            opts.tls,
            Some(CertPaths {
                cert: "/etc/router-tls/tls.crt".into(),
                key: "/etc/router-tls/tls.key".into(),
            })
        );
        assert_eq!(opts.tls_reload_interval, Duration::from_secs(60));
        assert!(opts.expose_metrics_on_router_port);
        assert_eq!(
            opts.kube_api,
            ApiLimit {
                qps: 2.5,
                burst: 10
            }
        );
        assert_eq!(
            opts.access_log.output,
            Output::File(PathBuf::from("/var/log/kthena/access.log"))
        );
        let explicit = parse(&["--expose-metrics-on-router-port=false"]);
        assert!(!explicit.expose_metrics_on_router_port);
        assert_eq!(
            parse(&["--access-log-output", "stderr"]).access_log_output,
            Output::Stderr
        );
        assert_eq!(
            parse(&["--access-log-output="]).access_log_output,
            Output::Stdout
        );
    }

    #[test]
    fn tls_cert_and_key_come_together() {
        let err = parse(&["--tls-cert", "c.pem"]).check().expect_err("no key");
        assert!(err.contains("--tls-key"), "{err}");
        let err = parse(&["--tls-key", "k.pem"]).check().expect_err("no cert");
        assert!(err.contains("--tls-cert"), "{err}");
        // Empty values (a chart's unset default) mean unset, as in Kthena.
        let empty = parse(&["--tls-cert", "", "--tls-key", ""]);
        empty.check().expect("neither");
        assert_eq!(empty.into_options().tls, None);
        let err = parse(&["--tls-cert", "c.pem", "--tls-key", ""])
            .check()
            .expect_err("empty key");
        assert!(err.contains("--tls-key"), "{err}");
    }

    #[test]
    fn negative_or_nan_kube_api_qps_is_refused() {
        for qps in ["-1", "NaN", "inf"] {
            let err = parse(&[&format!("--kube-api-qps={qps}")])
                .check()
                .expect_err(qps);
            assert!(err.contains("--kube-api-qps"), "{err}");
        }
        parse(&["--kube-api-qps", "0.5"])
            .check()
            .expect("fractional qps");
    }
}
