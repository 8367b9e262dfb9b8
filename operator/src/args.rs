//! Flags of the `kthena-router` binary: the data plane's ([`kthena_dataplane::args::Args`]) and
//! those of the Kubernetes-mode controllers.

use std::time::Duration;

use clap::Parser;

use crate::controllers::ControllerOptions;

/// kthena-router: routes OpenAI-compatible requests by model to inference engine Pods.
#[derive(Debug, Parser)]
#[command(name = "kthena-router", version)]
#[group(skip)]
pub struct Args {
    /// Data plane flags.
    #[command(flatten)]
    pub router: kthena_dataplane::args::Args,
    /// Kubernetes mode: this replica's identity in the status-writer Lease.
    #[arg(long, env = "POD_NAME", default_value_t = default_identity())]
    pub pod_name: String,
    /// Kubernetes mode: name of the Lease (in `--namespace`) whose holder writes status.
    #[arg(
        long,
        env = "KTHENA_ROUTER_LEASE_NAME",
        default_value = "kthena-router"
    )]
    pub lease_name: String,
    /// Kubernetes mode: keep the ports of `--service-name` equal to the programmed Gateway
    /// listener ports (false: you manage the Service).
    #[arg(long, env = "KTHENA_ROUTER_MANAGE_SERVICE_PORTS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub manage_service_ports: bool,
    /// Kubernetes mode: every object's status is checked again this often.
    #[arg(long, env = "KTHENA_ROUTER_STATUS_RESYNC", default_value = "5m", value_parser = duration)]
    pub status_resync: Duration,
    /// Admit a ModelRoute whose modelName (or LoRA name) another ModelRoute serves on the same
    /// listeners; the oldest wins at request time (Kthena's behaviour).
    #[arg(long, env = "KTHENA_ROUTER_ALLOW_DUPLICATE_MODEL_NAMES", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", global = true)]
    pub allow_duplicate_model_names: bool,
    /// Kubernetes mode: serve the admission webhook (`/validate/*`, HTTPS).
    #[arg(long, env = "KTHENA_ROUTER_ENABLE_WEBHOOK", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_webhook: bool,
    /// Port of the admission webhook.
    #[arg(long, env = "KTHENA_ROUTER_WEBHOOK_PORT", default_value_t = 8443)]
    pub webhook_port: u16,
    /// The webhook's certificate chain (PEM), e.g. mounted from a cert-manager Certificate.
    #[arg(
        long,
        env = "KTHENA_ROUTER_WEBHOOK_TLS_CERT_FILE",
        default_value = "/etc/tls/tls.crt"
    )]
    pub webhook_tls_cert_file: std::path::PathBuf,
    /// The webhook's private key (PEM).
    #[arg(
        long,
        env = "KTHENA_ROUTER_WEBHOOK_TLS_PRIVATE_KEY_FILE",
        default_value = "/etc/tls/tls.key"
    )]
    pub webhook_tls_private_key_file: std::path::PathBuf,
    /// Kubernetes mode, `auto` certificates (when the certificate files do not exist): the
    /// Secret holding the webhook's generated CA and certificate, shared by every replica.
    #[arg(
        long,
        env = "KTHENA_ROUTER_CERT_SECRET_NAME",
        default_value = "kthena-router-webhook-certs"
    )]
    pub cert_secret_name: String,
    /// The webhook's Service (the certificate is for `<name>.<namespace>.svc`).
    #[arg(
        long,
        env = "KTHENA_ROUTER_WEBHOOK_SERVICE_NAME",
        default_value = "kthena-router-webhook"
    )]
    pub webhook_service_name: String,
    /// The ValidatingWebhookConfiguration whose `caBundle` `auto` mode writes.
    #[arg(
        long,
        env = "KTHENA_ROUTER_WEBHOOK_CONFIGURATION_NAME",
        default_value = "kthena-router-validating-webhook"
    )]
    pub webhook_configuration_name: String,
    /// A command instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands of `kthena-router`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check manifests with the admission webhook's rules, offline; exit status 1 when any
    /// object is denied.
    Validate {
        /// Files or folders (read without subfolders); cross-object rules see every object
        /// given.
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        files: Vec<std::path::PathBuf>,
    },
}

fn duration(text: &str) -> Result<Duration, String> {
    kthena_api::convert::parse_duration(text)
}

/// Prints every denied object with its problems; an error (exit status 1) when any.
#[allow(clippy::print_stdout)] // the command's output
fn validate(files: &[std::path::PathBuf], options: kthena_webhook::Options) -> anyhow::Result<()> {
    let (read, denied) = crate::validate::run(files, options)?;
    for d in &denied {
        for p in &d.problems {
            println!("{}: {}: {p}", d.file.display(), d.object);
        }
    }
    if denied.is_empty() {
        println!("{read} objects valid");
        Ok(())
    } else {
        anyhow::bail!("{} of {read} objects denied", denied.len())
    }
}

fn default_identity() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| format!("kthena-router-{}", std::process::id()))
}

impl Args {
    /// Runs the router (and, in Kubernetes mode, the controllers) until SIGINT or SIGTERM.
    pub async fn run(self) -> anyhow::Result<()> {
        let Args {
            router,
            pod_name,
            lease_name,
            manage_service_ports,
            status_resync,
            allow_duplicate_model_names,
            enable_webhook,
            webhook_port,
            webhook_tls_cert_file,
            webhook_tls_private_key_file,
            cert_secret_name,
            webhook_service_name,
            webhook_configuration_name,
            command,
        } = self;
        let review = kthena_webhook::Options {
            allow_duplicate_model_names,
            gateway_mode: router.enable_gateway_api,
        };
        if let Some(Command::Validate { files }) = command {
            return validate(&files, review);
        }
        router.check().map_err(anyhow::Error::msg)?;
        let controllers = ControllerOptions {
            identity: pod_name,
            lease_name,
            manage_service_ports,
            field_manager: "kthena-router".to_owned(),
            resync: status_resync,
            webhook: enable_webhook.then_some(crate::webhook::WebhookOptions {
                port: webhook_port,
                cert_file: webhook_tls_cert_file,
                key_file: webhook_tls_private_key_file,
                review,
                auto: Some(crate::webhook::AutoCerts {
                    namespace: router.namespace.clone(),
                    secret_name: cert_secret_name,
                    service_name: webhook_service_name,
                    configuration_name: webhook_configuration_name,
                }),
            }),
        };
        kthena_dataplane::app::run(
            router.into_options(),
            Some(Box::new(move |running| {
                crate::controllers::start(running, controllers)
            })),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Args;

    #[test]
    fn flags_are_consistent_and_parse() {
        Args::command().debug_assert();
        let a = Args::try_parse_from([
            "kthena-router",
            "--enable-gateway-api",
            "--manage-service-ports=false",
            "--pod-name",
            "router-0",
            "--watch-namespace",
            "team",
        ])
        .expect("valid flags");
        assert!(a.router.enable_gateway_api && !a.manage_service_ports);
        assert_eq!(a.pod_name, "router-0");
        assert_eq!(a.router.watch_namespace.as_deref(), Some("team"));
        let lone =
            Args::try_parse_from(["kthena-router", "--enable-gateway-api-inference-extension"])
                .expect("parses");
        assert!(lone.router.check().is_err(), "needs --enable-gateway-api");
    }

    #[test]
    fn data_plane_tls_metrics_kube_api_and_access_log_flags_reach_the_binary() {
        let a = Args::try_parse_from([
            "kthena-router",
            "--tls-cert=/etc/router-tls/tls.crt",
            "--tls-key=/etc/router-tls/tls.key",
            "--expose-metrics-on-router-port",
            "--kube-api-qps=20",
            "--kube-api-burst=40",
            "--access-log-output=stderr",
        ])
        .expect("valid flags");
        a.router.check().expect("consistent");
        let opts = a.router.into_options();
        assert!(opts.tls.is_some() && opts.expose_metrics_on_router_port);
        assert_eq!((opts.kube_api.qps, opts.kube_api.burst), (20.0, 40));
        assert_eq!(
            opts.access_log.output,
            kthena_dataplane::access_log::Output::Stderr
        );
        let half = Args::try_parse_from(["kthena-router", "--tls-key=/k"]).expect("parses");
        let err = half.router.check().expect_err("both or neither");
        assert!(err.contains("--tls-cert"), "{err}");
    }
}
