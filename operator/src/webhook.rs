//! The admission webhook served by `kthena-router` in Kubernetes mode: the rules of
//! `kthena-webhook`, over the objects the router's watchers hold, with a certificate from
//! files (cert-manager or manual certificate management mounts them).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use gateway_api::apis::standard::gateways::Gateway;
use kthena_api::modelroute::ModelRoute;
use kthena_router::state::Shared;

/// Where and how the webhook is served.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// `--webhook-port`.
    pub port: u16,
    /// `--webhook-tls-cert-file`: PEM chain.
    pub cert_file: PathBuf,
    /// `--webhook-tls-private-key-file`: PEM key.
    pub key_file: PathBuf,
    /// Rule options.
    pub review: kthena_webhook::Options,
    /// `auto` certificate management, used when the certificate files do not exist.
    pub auto: Option<AutoCerts>,
}

/// Where `auto` certificate management keeps and publishes the webhook's certificate.
#[derive(Debug, Clone)]
pub struct AutoCerts {
    /// Namespace of the router (Secret and Service).
    pub namespace: String,
    /// `--cert-secret-name`: the Secret every replica shares.
    pub secret_name: String,
    /// `--webhook-service-name`: the Service the API server calls (the certificate's name).
    pub service_name: String,
    /// `--webhook-configuration-name`: the ValidatingWebhookConfiguration whose `caBundle`
    /// is written.
    pub configuration_name: String,
}

/// The objects the watchers hold, as the webhook's view of the cluster: the ModelRoutes and
/// Gateways of the configuration in force (valid or not).
#[derive(Debug, Clone)]
pub struct Watched(pub Arc<Shared>);

impl kthena_webhook::Cluster for Watched {
    fn model_routes(&self) -> Vec<ModelRoute> {
        let dump = self.0.dump.load();
        dump.modelroutes
            .iter()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    fn gateways(&self) -> Vec<Gateway> {
        let dump = self.0.dump.load();
        dump.gateways
            .iter()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect()
    }
}

/// Why the webhook could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A certificate file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The certificate or key is unusable.
    #[error("webhook certificate: {0}")]
    Tls(#[from] kthena_webhook::Error),
    /// `auto` certificates could not be made, stored or published.
    #[error(transparent)]
    Auto(Box<crate::webhook_certs::CertError>),
    /// The port could not be bound.
    #[error("binding the webhook port {port}: {source}")]
    Bind {
        /// The port.
        port: u16,
        /// The error.
        source: std::io::Error,
    },
}

/// Binds the webhook port and starts serving on the current actix system.
pub fn start(
    opts: &WebhookOptions,
    shared: Arc<Shared>,
) -> Result<actix_web::dev::ServerHandle, StartError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| StartError::Read {
            path: path.clone(),
            source,
        })
    };
    let tls = kthena_webhook::tls_config(&read(&opts.cert_file)?, &read(&opts.key_file)?)?;
    serve_on(opts, tls, shared)
}

/// True when the certificate files exist (cert-manager or manual management).
pub fn has_files(opts: &WebhookOptions) -> bool {
    opts.cert_file.exists() && opts.key_file.exists()
}

/// `auto` certificate management: the certificate of the shared Secret (generated and stored
/// when missing), the CA written into the ValidatingWebhookConfiguration, then serving.
pub async fn start_auto(
    opts: &WebhookOptions,
    auto: &AutoCerts,
    client: &kube::Client,
    shared: Arc<Shared>,
) -> Result<actix_web::dev::ServerHandle, StartError> {
    use crate::webhook_certs::{ensure_secret, patch_ca_bundle};
    let boxed = |e| StartError::Auto(Box::new(e));
    let bundle = ensure_secret(
        client,
        &auto.namespace,
        &auto.secret_name,
        &auto.service_name,
    )
    .await
    .map_err(boxed)?;
    let tls = kthena_webhook::tls_config(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes())?;
    let handle = serve_on(opts, tls, shared)?;
    match patch_ca_bundle(
        client,
        &auto.configuration_name,
        &auto.namespace,
        &auto.service_name,
        &bundle.ca_pem,
    )
    .await
    .map_err(boxed)?
    {
        None => {
            tracing::warn!(configuration = %auto.configuration_name, "no ValidatingWebhookConfiguration to write the caBundle into: the API server does not call the webhook")
        }
        Some(n) => {
            tracing::info!(configuration = %auto.configuration_name, changed = n, "caBundle in place")
        }
    }
    Ok(handle)
}

fn serve_on(
    opts: &WebhookOptions,
    tls: rustls::ServerConfig,
    shared: Arc<Shared>,
) -> Result<actix_web::dev::ServerHandle, StartError> {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), opts.port);
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Bind {
        port: opts.port,
        source,
    })?;
    let state = kthena_webhook::State::new(Arc::new(Watched(shared)), opts.review);
    let server =
        kthena_webhook::serve(listener, tls, state).map_err(|source| StartError::Bind {
            port: opts.port,
            source,
        })?;
    let handle = server.handle();
    actix_rt::spawn(server);
    tracing::info!(server = "webhook", addr = %addr, "listening");
    Ok(handle)
}
