//! The admission webhook served by `kthena-router` in Kubernetes mode: the rules of
//! `kthena-webhook`, over the objects the router's watchers hold, with a certificate from
//! files (cert-manager or manual certificate management mounts them).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gateway_api::apis::standard::gateways::Gateway;
use kthena_api::modelroute::ModelRoute;
use kthena_dataplane::state::Shared;

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
            .map(|r| r.as_ref().clone())
            .collect()
    }

    fn gateways(&self) -> Vec<Gateway> {
        let dump = self.0.dump.load();
        dump.gateways.iter().map(|g| g.as_ref().clone()).collect()
    }

    /// The class `kthena-router` and the GatewayClasses with our controllerName.
    fn scope(&self) -> kthena_webhook::Scope {
        let inputs = self.0.status_inputs.load();
        let mut classes: std::collections::BTreeSet<String> =
            inputs.gateway_classes.iter().cloned().collect();
        classes.insert(kthena_dataplane::source::DEFAULT_CLASS_NAME.to_owned());
        kthena_webhook::Scope::Classes(classes)
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

/// How often certificate files are read again (cert-manager renews the mounted Secret by
/// swapping the files).
pub const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// How often `auto` mode checks the Secret (renewal, another replica's renewal) and the
/// `caBundle` (e.g. emptied again by `helm upgrade`).
pub const SECRET_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// A running webhook.
#[derive(Debug)]
pub struct Serving {
    /// Stops the server.
    pub handle: actix_web::dev::ServerHandle,
    /// The certificate it presents; replacing it takes effect at the next handshake.
    pub cert: Arc<kthena_webhook::ServingCert>,
}

fn read_files(opts: &WebhookOptions) -> Result<(Vec<u8>, Vec<u8>), StartError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| StartError::Read {
            path: path.clone(),
            source,
        })
    };
    Ok((read(&opts.cert_file)?, read(&opts.key_file)?))
}

/// Binds the webhook port and starts serving the certificate files on the current actix
/// system.
pub fn start(opts: &WebhookOptions, shared: Arc<Shared>) -> Result<Serving, StartError> {
    let (cert_pem, key_pem) = read_files(opts)?;
    let cert = kthena_webhook::ServingCert::from_pem(&cert_pem, &key_pem)?;
    serve_on(opts, Arc::new(cert), shared)
}

/// Reads the certificate files again and serves them from the next handshake on when they
/// changed (true). On error (unreadable, or a key that is not the certificate's, as between
/// the two reads of a rotation) the certificate in use stays.
pub fn reload_files(
    opts: &WebhookOptions,
    cert: &kthena_webhook::ServingCert,
) -> Result<bool, StartError> {
    let (cert_pem, key_pem) = read_files(opts)?;
    Ok(cert.replace(&cert_pem, &key_pem)?)
}

/// True when the certificate files exist (cert-manager or manual management).
pub fn has_files(opts: &WebhookOptions) -> bool {
    opts.cert_file.exists() && opts.key_file.exists()
}

/// `auto` certificate management: the certificate of the shared Secret (generated and stored
/// when missing, renewed when ending), the CA written into the ValidatingWebhookConfiguration,
/// then serving.
pub async fn start_auto(
    opts: &WebhookOptions,
    auto: &AutoCerts,
    client: &kube::Client,
    shared: Arc<Shared>,
) -> Result<Serving, StartError> {
    let bundle = auto_bundle(auto, client).await?;
    let cert = kthena_webhook::ServingCert::from_pem(
        bundle.cert_pem.as_bytes(),
        bundle.key_pem.as_bytes(),
    )?;
    let serving = serve_on(opts, Arc::new(cert), shared)?;
    match publish_ca(auto, client, &bundle).await? {
        None => {
            tracing::warn!(configuration = %auto.configuration_name, "no ValidatingWebhookConfiguration to write the caBundle into: the API server does not call the webhook")
        }
        Some(n) => {
            tracing::info!(configuration = %auto.configuration_name, changed = n, "caBundle in place")
        }
    }
    Ok(serving)
}

/// `auto` mode's periodic check: the Secret's certificate (renewed here when ending, or by
/// another replica) is served from the next handshake on (true when it changed), and its CA
/// is written into the configuration again where it is missing.
pub async fn refresh_auto(
    auto: &AutoCerts,
    client: &kube::Client,
    cert: &kthena_webhook::ServingCert,
) -> Result<bool, StartError> {
    let bundle = auto_bundle(auto, client).await?;
    let changed = cert.replace(bundle.cert_pem.as_bytes(), bundle.key_pem.as_bytes())?;
    publish_ca(auto, client, &bundle).await?;
    Ok(changed)
}

async fn auto_bundle(
    auto: &AutoCerts,
    client: &kube::Client,
) -> Result<crate::webhook_certs::Bundle, StartError> {
    crate::webhook_certs::ensure_secret(
        client,
        &auto.namespace,
        &auto.secret_name,
        &auto.service_name,
        jiff::Timestamp::now(),
    )
    .await
    .map_err(|e| StartError::Auto(Box::new(e)))
}

async fn publish_ca(
    auto: &AutoCerts,
    client: &kube::Client,
    bundle: &crate::webhook_certs::Bundle,
) -> Result<Option<usize>, StartError> {
    crate::webhook_certs::patch_ca_bundle(
        client,
        &auto.configuration_name,
        &auto.namespace,
        &auto.service_name,
        &bundle.ca_pem,
    )
    .await
    .map_err(|e| StartError::Auto(Box::new(e)))
}

fn serve_on(
    opts: &WebhookOptions,
    cert: Arc<kthena_webhook::ServingCert>,
    shared: Arc<Shared>,
) -> Result<Serving, StartError> {
    let tls = kthena_webhook::tls_config(cert.clone())?;
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
    Ok(Serving { handle, cert })
}
