//! Command-line flags of `kthena-router`; every flag has a default and an environment variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::access_log::Format;
use crate::app::RunOptions;

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
    /// How often the manifest folder is checked for changes.
    #[arg(long, env = "KTHENA_ROUTER_MANIFESTS_INTERVAL", default_value = "250ms", value_parser = duration)]
    pub manifests_interval: Duration,
    /// Largest accepted request body, in bytes (larger: 413).
    #[arg(long, env = "KTHENA_ROUTER_MAX_BODY_BYTES", default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
    /// Worker threads of the inference API (default: one per CPU).
    #[arg(long, env = "KTHENA_ROUTER_WORKERS", default_value_t = default_workers())]
    pub workers: usize,
    /// On SIGTERM, how long requests and streams in flight may take to finish.
    #[arg(long, env = "DRAIN_TIMEOUT", default_value = "5m", value_parser = duration)]
    pub drain_timeout: Duration,
    /// Write an access log line per request to stdout.
    #[arg(long, env = "ACCESS_LOG_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub access_log: bool,
    /// Serve Gateway API Gateways: ModelRoutes bind to their listeners through parentRefs,
    /// every listener port is served.
    #[arg(long, env = "KTHENA_ROUTER_ENABLE_GATEWAY_API", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
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
            workers,
            drain_timeout,
            access_log,
            access_log_format,
            enable_gateway_api,
            enable_gateway_api_inference_extension,
            controller_name,
            namespace,
            watch_namespace,
            service_name,
        } = self;
        RunOptions {
            port,
            listen_address,
            metrics_port,
            debug_port,
            manifests,
            manifests_interval,
            max_body_bytes,
            workers: workers.max(1),
            drain_timeout,
            access_log: crate::access_log::AccessLog {
                enabled: access_log,
                format: access_log_format,
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
