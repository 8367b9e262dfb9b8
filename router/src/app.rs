//! Wiring: the actors, the config source, the listener, metrics and debug servers, shutdown.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use kthena_core::BuildOptions;
use prometheus::Registry;

use crate::actors::index::{Index, ListenerSpawner};
use crate::actors::listener::{Listener, Stop};
use crate::actors::route_set::RouteSet;
use crate::exchange::Observability;
use crate::handlers::RouterContext;
use crate::metrics::{self, Metrics};
use crate::source::kube::{KubeOptions, KubeSource};
use crate::source::manifests::ManifestWatcher;
use crate::state::Shared;
use crate::tls::files::CertFiles;

/// Everything [`run`] needs, from the flags.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Inference API port (0: any free port).
    pub port: u16,
    /// Address of the inference API and metrics.
    pub listen_address: IpAddr,
    /// Metrics port.
    pub metrics_port: u16,
    /// Debug port (localhost).
    pub debug_port: u16,
    /// Standalone manifest folder.
    pub manifests: Option<PathBuf>,
    /// Folder check interval.
    pub manifests_interval: Duration,
    /// Body size limit.
    pub max_body_bytes: usize,
    /// Request line and headers size limit.
    pub max_header_bytes: usize,
    /// Body stall limits, both ways, and client connection waits.
    pub timeouts: crate::handlers::Timeouts,
    /// Client connections per listener (0: from the descriptor limit).
    pub max_connections: usize,
    /// Client connections per client address, over every listener (0: no cap).
    pub max_connections_per_ip: u32,
    /// Worker threads.
    pub workers: usize,
    /// Drain time on shutdown.
    pub drain_timeout: Duration,
    /// Access log settings.
    pub access_log: crate::access_log::Options,
    /// `--tls-cert` and `--tls-key`: serve HTTPS on `--port`.
    pub tls: Option<crate::tls::files::CertPaths>,
    /// How often the TLS files are read again (0: never).
    pub tls_reload_interval: Duration,
    /// How Pods spoken to over TLS are verified (`--pod-tls-*`).
    pub pod_tls: crate::upstream::tls::PodTls,
    /// Serve `GET /metrics` on `--port` too.
    pub expose_metrics_on_router_port: bool,
    /// Kubernetes mode: client-side limit of API server requests.
    pub kube_api: crate::kube_client::ApiLimit,
    /// Gateway API settings.
    pub gateway: crate::source::GatewayOptions,
    /// Kubernetes mode: `--watch-namespace`.
    pub watch_namespace: Option<String>,
    /// Kubernetes mode: `--service-name`, the router's Service.
    pub service_name: String,
    /// `--scheduler-config`: Kthena's router configuration file.
    pub scheduler_config: Option<PathBuf>,
    /// How often the scheduler configuration is read again.
    pub scheduler_config_interval: Duration,
    /// Engine scrape interval (0: off).
    pub metrics_scrape_interval: Duration,
    /// Scrapes in flight at once.
    pub metrics_scrape_concurrency: usize,
    /// Outlier detection.
    pub outlier: kthena_core::outlier::OutlierPolicy,
    /// Retries in flight per pool.
    pub retry_budget: kthena_core::retry_budget::RetryBudget,
    /// Global token rate limits: Redis failure mode and call timeout.
    pub rate_limit: crate::rate_limit::GlobalOptions,
    /// `--enable-fairness-scheduling` and its settings; None: off.
    pub fairness: Option<crate::fair_queue::FairnessOptions>,
}

/// What controllers started beside the data plane get (Kubernetes mode).
#[derive(Clone)]
pub struct Running {
    /// The state the actors publish (statuses are computed from it).
    pub shared: Arc<Shared>,
    /// The API server client.
    pub client: kube::Client,
    /// The options the router runs with.
    pub options: RunOptions,
    /// The port `--port` is bound to.
    pub port: u16,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("options", &self.options)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Stops controllers on shutdown (after the drain), e.g. to release a Lease.
pub type StopControllers =
    Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>;

/// Starts controllers (status writer, defaults, ...) once the data plane runs; called in
/// Kubernetes mode only. What it returns runs on shutdown.
pub type Controllers = Box<dyn FnOnce(Running) -> StopControllers>;

fn bind(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let socket =
        TcpListener::bind(addr).with_context(|| format!("binding the {name} port {addr}"))?;
    let bound = socket.local_addr()?;
    tracing::info!(server = %name, addr = %bound, "listening");
    Ok(socket)
}

/// Runs the router until SIGINT or SIGTERM, then drains. Without `--manifests` it runs in
/// Kubernetes mode (in-cluster configuration or `$KUBECONFIG`) and starts `controllers`.
pub async fn run(opts: RunOptions, controllers: Option<Controllers>) -> anyhow::Result<()> {
    // SIGHUP re-reads the configuration; installed first, so it never kills the process.
    let hangups = hangups();
    // Files first: a bad certificate or log path fails the start before anything runs.
    let cert_files = opts
        .tls
        .clone()
        .map(CertFiles::load)
        .transpose()
        .context("router TLS certificate (--tls-cert, --tls-key)")?
        .map(Arc::new);
    let pod_tls = crate::upstream::tls::client_config(&opts.pod_tls)?;
    let access_log = opts.access_log.open()?;
    let client = match &opts.manifests {
        Some(_) => None,
        None => Some(crate::kube_client::client(opts.kube_api).await.context(
            "no --manifests folder, and no Kubernetes configuration (in-cluster service account \
             or $KUBECONFIG) to run in Kubernetes mode",
        )?),
    };
    let registry = Registry::new();
    let obs = Arc::new(Observability {
        metrics: Metrics::new(&registry).context("registering metrics")?,
        access_log,
    });
    let shared = Arc::new(Shared::default());
    crate::scheduling::PrefixCacheCollector::register(shared.clone(), &registry)
        .context("registering metrics")?;
    let timer: Arc<dyn kthena_core::scheduler::PluginTimer> =
        Arc::new(crate::scheduling::PluginMetrics::new(&registry).context("registering metrics")?);
    let scheduler = crate::scheduling::load(
        opts.scheduler_config.as_deref(),
        &Default::default(),
        Some(timer.clone()),
    )
    .map_err(|e| anyhow::anyhow!("--scheduler-config: {e}"))?;
    tracing::info!(
        source = %scheduler.source,
        filters = ?scheduler.scheduler.filter_names().collect::<Vec<_>>(),
        scores = ?scheduler.scheduler.score_names().collect::<Vec<_>>(),
        "scheduler"
    );
    shared.scheduler.store(Arc::new(scheduler));
    if let Some(path) = &opts.scheduler_config {
        crate::scheduling::watch(
            path.clone(),
            opts.scheduler_config_interval,
            shared.clone(),
            Some(timer),
            hangups.clone(),
        );
    }
    let scraping = crate::actors::endpoint_pool::Scraping::new(
        opts.metrics_scrape_interval,
        opts.metrics_scrape_concurrency,
        pod_tls.clone(),
    );
    crate::connection::set_per_ip_limit(opts.max_connections_per_ip);
    let rate_limits = Arc::new(crate::rate_limit::RateLimits::new(
        opts.rate_limit,
        Some(obs.metrics.rate_limit_redis.clone()),
    ));
    follow_global_rate_limits(shared.clone(), rate_limits.clone());
    let fairness = opts.fairness.map(|f| {
        tracing::info!(options = ?f, "priority and fair queueing before the scheduler");
        crate::fair_queue::Fairness::new(f, obs.metrics.fairness.clone())
    });
    let ctx = RouterContext {
        fairness,
        shared: shared.clone(),
        obs,
        max_body_bytes: opts.max_body_bytes,
        max_header_bytes: opts.max_header_bytes,
        max_connections: match opts.max_connections {
            0 => crate::connection::default_max_connections(),
            n => n,
        },
        metrics: None,
        pod_tls,
        outlier: opts.outlier,
        retry_budget: opts.retry_budget,
        timeouts: opts.timeouts,
        rate_limits,
        auth: shared
            .scheduler
            .load()
            .auth
            .clone()
            .map(crate::auth::Authenticator::new),
    };
    if let Some(auth) = &ctx.auth {
        tracing::info!(issuer = %auth.config().issuer, jwks = %auth.config().jwks_uri, "JWT authentication of /v1/ requests");
        if !auth.config().jwks_uri.is_empty() {
            crate::auth::run(auth.clone());
        }
    }

    // Bind every port first, so a port in use fails the start and nothing half-runs.
    let router_socket = bind("router", SocketAddr::new(opts.listen_address, opts.port))?;
    let metrics_socket = bind(
        "metrics",
        SocketAddr::new(opts.listen_address, opts.metrics_port),
    )?;
    let debug_socket = bind(
        "debug",
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), opts.debug_port),
    )?;

    let gateway_mode = opts.gateway.enabled;
    let route_set = RouteSet::new(shared.clone(), BuildOptions { gateway_mode }).start();
    let spawner = gateway_mode.then(|| ListenerSpawner {
        ctx: ctx.clone(),
        address: opts.listen_address,
        main_port: router_socket.local_addr().map_or(opts.port, |a| a.port()),
        workers: opts.workers,
        drain: opts.drain_timeout,
    });
    let index = Index::new(shared.clone(), route_set, spawner, Some(scraping)).start();
    let main_port = router_socket.local_addr().map_or(opts.port, |a| a.port());
    let mut stop_controllers = None;
    match (&opts.manifests, client) {
        (Some(dir), _) => {
            let watcher = ManifestWatcher::new(
                dir.clone(),
                opts.manifests_interval,
                opts.gateway.clone(),
                index,
            )
            .start();
            let mut hangup = hangups.clone();
            actix_rt::spawn(async move {
                while hangup.changed().await.is_ok() {
                    watcher.do_send(crate::source::manifests::Rescan);
                }
            });
        }
        (None, Some(client)) => {
            KubeSource::start(
                client.clone(),
                KubeOptions {
                    gateway: opts.gateway.clone(),
                    watch_namespace: opts.watch_namespace.clone(),
                    service_name: opts.service_name.clone(),
                    debounce: Duration::from_millis(50),
                },
                index,
            );
            if let Some(start) = controllers {
                stop_controllers = Some(start(Running {
                    shared: shared.clone(),
                    client,
                    options: opts.clone(),
                    port: main_port,
                }));
            }
        }
        (None, None) => unreachable!("a client exists whenever --manifests is absent"),
    }
    let listener = router_listener(
        router_socket,
        RouterContext {
            metrics: opts.expose_metrics_on_router_port.then(|| registry.clone()),
            ..ctx.clone()
        },
        (opts.workers, opts.drain_timeout),
        cert_files.clone(),
    )?
    .start();
    if let Some(files) = cert_files {
        tracing::info!(cert = %files.paths().cert.display(), reload = ?opts.tls_reload_interval, "router port serves HTTPS");
        reload_periodically(files, opts.tls_reload_interval, hangups.clone());
    }

    let registry = web::Data::new(registry);
    let probe_data = web::Data::new(ctx.clone());
    let metrics_server = HttpServer::new(move || {
        App::new()
            .app_data(registry.clone())
            .app_data(probe_data.clone())
            .configure(crate::handlers::probes)
            .route(
                "/metrics",
                web::get().to(|r: web::Data<Registry>| async move {
                    HttpResponse::Ok()
                        .content_type(metrics::CONTENT_TYPE)
                        .body(metrics::render(&r))
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(metrics_socket)?
    .run();
    let debug_data = web::Data::new(ctx);
    let debug_server = HttpServer::new(move || {
        App::new()
            .app_data(debug_data.clone())
            .configure(crate::debug::configure)
    })
    .workers(1)
    .disable_signals()
    .listen(debug_socket)?
    .run();
    let side = [metrics_server.handle(), debug_server.handle()];
    actix_rt::spawn(metrics_server);
    actix_rt::spawn(debug_server);

    shutdown_signal().await;
    tracing::info!(drain = ?opts.drain_timeout, "shutting down: draining requests in flight");
    let drain = listener.send(Stop {
        graceful: true,
        drain: opts.drain_timeout,
    });
    tokio_select_second_signal(drain).await;
    if let Some(stop) = stop_controllers {
        stop().await;
    }
    for h in side {
        h.stop(false).await;
    }
    // Worker threads may still be ending: write out the access log lines they buffered.
    crate::access_log::flush_all();
    tracing::info!("stopped");
    Ok(())
}

/// Starts the Redis clients of the global rate limits of each configuration put in force.
fn follow_global_rate_limits(shared: Arc<Shared>, limits: Arc<crate::rate_limit::RateLimits>) {
    let mut applied = shared.applied.subscribe();
    actix_rt::spawn(async move {
        loop {
            limits.follow(&shared.routes.load());
            if applied.changed().await.is_err() {
                return;
            }
        }
    });
}

/// The Listener of `--port` with `(workers, drain timeout)`: HTTPS with the certificate of
/// `cert_files` when given (in gateway mode that is every Gateway listener on this port),
/// HTTP otherwise.
pub fn router_listener(
    socket: TcpListener,
    ctx: RouterContext,
    (workers, drain): (usize, Duration),
    cert_files: Option<Arc<CertFiles>>,
) -> anyhow::Result<Listener> {
    let listener = Listener::new(socket, ctx, workers, drain);
    Ok(match cert_files {
        Some(files) => {
            let config = crate::tls::files::server_config(files)
                .context("router TLS settings (--tls-cert, --tls-key)")?;
            listener.with_tls(config)
        }
        None => listener,
    })
}

/// Reads the TLS files again every `interval` (never when 0) and at each SIGHUP, on the
/// current actix system.
fn reload_periodically(
    files: Arc<CertFiles>,
    interval: Duration,
    mut hangup: tokio::sync::watch::Receiver<u64>,
) {
    actix_rt::spawn(async move {
        let mut tick = actix_rt::time::interval(if interval.is_zero() {
            Duration::from_secs(u64::from(u32::MAX))
        } else {
            interval
        });
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is now: the files were just read
        loop {
            tokio::select! {
                _ = tick.tick(), if !interval.is_zero() => {}
                changed = hangup.changed() => if changed.is_err() { return },
            }
            files.reload_logged();
        }
    });
}

/// A count of the SIGHUPs received: every configuration reader (the manifest folder, the
/// scheduler configuration, the TLS files) reads its files again when it moves. Without a
/// handler a SIGHUP would end the process.
fn hangups() -> tokio::sync::watch::Receiver<u64> {
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    #[cfg(unix)]
    match actix_rt::signal::unix::signal(actix_rt::signal::unix::SignalKind::hangup()) {
        Ok(mut hup) => {
            actix_rt::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reading the configuration files again");
                    tx.send_modify(|n| *n += 1);
                }
            });
        }
        Err(e) => tracing::error!(error = %e, "installing the SIGHUP handler"),
    }
    rx
}

/// Waits for SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match actix_rt::signal::unix::signal(actix_rt::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "installing the SIGTERM handler");
                    let _ = actix_rt::signal::ctrl_c().await;
                    return;
                }
            };
        futures_util::future::select(Box::pin(actix_rt::signal::ctrl_c()), Box::pin(term.recv()))
            .await;
    }
    #[cfg(not(unix))]
    {
        let _ = actix_rt::signal::ctrl_c().await;
    }
}

/// Waits for `drain` to finish, or for a second signal, which exits at once.
async fn tokio_select_second_signal<F: std::future::Future>(drain: F) {
    let second = Box::pin(shutdown_signal());
    if let futures_util::future::Either::Right(_) =
        futures_util::future::select(Box::pin(drain), second).await
    {
        tracing::warn!("second signal: exiting without waiting for requests in flight");
    }
}
