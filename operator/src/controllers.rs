//! The controllers of Kubernetes mode, started beside the data plane: leader election, the
//! status writer fed by every configuration the router applies, Kthena's default
//! GatewayClass/Gateway, and the managed Service ports. Only the Lease holder writes status
//! and Service ports; creating the defaults is safe from every replica.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kthena_dataplane::app::{Running, StopControllers};
use tokio::sync::watch;

use crate::desired::DesiredStatus;
use crate::lease::LeaderElector;
use crate::status_writer::StatusWriter;

/// Longest wait for the Lease release on shutdown.
pub const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Settings of the controllers.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// This replica's identity in the Lease (the Pod name).
    pub identity: String,
    /// Name of the Lease, in the router's namespace.
    pub lease_name: String,
    /// Keep the router Service's ports equal to the programmed listener ports.
    pub manage_service_ports: bool,
    /// Field manager of every write.
    pub field_manager: String,
    /// Every object's status is checked again this often.
    pub resync: Duration,
    /// The admission webhook, when enabled.
    pub webhook: Option<crate::webhook::WebhookOptions>,
}

/// Starts every controller on the current actix system. The returned function, run on
/// shutdown, releases the Lease (waiting at most [`RELEASE_WAIT`]) so that another replica
/// takes over at once.
pub fn start(running: Running, opts: ControllerOptions) -> StopControllers {
    let Running {
        shared,
        client,
        options,
        port,
    } = running;
    let namespace = options.gateway.namespace.clone();
    let webhook: std::rc::Rc<std::cell::RefCell<Option<actix_web::dev::ServerHandle>>> =
        Default::default();
    let not_served = |e: &crate::webhook::StartError| {
        tracing::error!(error = %e, "admission webhook not served: `kubectl apply` of invalid objects is not refused early (their status still says why)");
    };
    match opts.webhook.clone() {
        Some(w) if crate::webhook::has_files(&w) || w.auto.is_none() => {
            if let Ok(serving) = crate::webhook::start(&w, shared.clone()).inspect_err(not_served) {
                let cert = serving.cert.clone();
                *webhook.borrow_mut() = Some(serving.handle);
                actix_rt::spawn(reload_files(w, cert));
            }
        }
        Some(w) => {
            let (client, shared, slot) = (client.clone(), shared.clone(), webhook.clone());
            actix_rt::spawn(async move {
                let Some(auto) = w.auto.clone() else { return };
                let mut wait = Duration::from_secs(1);
                loop {
                    match crate::webhook::start_auto(&w, &auto, &client, shared.clone()).await {
                        Ok(serving) => {
                            *slot.borrow_mut() = Some(serving.handle);
                            return refresh_auto(auto, client, serving.cert).await;
                        }
                        Err(e @ crate::webhook::StartError::Auto(_)) => {
                            tracing::warn!(error = %e, retry_in = ?wait, "webhook certificates");
                            tokio::time::sleep(wait).await;
                            wait = (wait * 2).min(Duration::from_secs(60));
                        }
                        Err(e) => return not_served(&e),
                    }
                }
            });
        }
        None => {}
    }
    let (leader_tx, leader_rx) = watch::channel(false);
    let elector = LeaderElector::new(
        client.clone(),
        namespace.clone(),
        opts.lease_name.clone(),
        opts.identity.clone(),
    );
    tracing::info!(lease = %format!("{namespace}/{}", opts.lease_name), identity = %opts.identity, "competing for the status-writer lease");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let elector_task = actix_rt::spawn(elector.run(leader_tx, async move {
        let _ = stop_rx.await;
    }));

    let (desired_tx, desired_rx) = watch::channel(Arc::new(Vec::<Arc<DesiredStatus>>::new()));
    let writer = StatusWriter::new(client.clone(), opts.field_manager.clone());
    actix_rt::spawn(writer.run(desired_rx, leader_rx.clone(), opts.resync));

    let controller_name = options.gateway.controller_name.clone();
    let priority_queueing = options.fairness.is_some();
    let status_shared = shared.clone();
    actix_rt::spawn(async move {
        let mut applied = status_shared.applied.subscribe();
        status_shared.track_status();
        // The last desired status of each object: after a change only the objects it can
        // alter are computed again (`Changes::status_dirty`); the others stay the same `Arc`s,
        // which the writer recognises without comparing them.
        let mut cache = kthena_dataplane::status::StatusCache::<Arc<DesiredStatus>>::default();
        // A configuration applied before this task subscribed is not announced again: its
        // statuses are computed at once (`track_status` marked every object).
        let mut due = status_shared.is_ready();
        loop {
            if !due {
                if applied.changed().await.is_err() {
                    return;
                }
                applied.mark_unchanged();
            }
            due = false;
            let dirty = status_shared.take_status_dirty();
            if dirty.is_empty() {
                continue;
            }
            let inputs = status_shared.status_inputs.load();
            let pools = status_shared.pools.load();
            let tables = status_shared.http_routes.load();
            let gateways: Vec<(String, String)> = inputs
                .gateways
                .iter()
                .map(|g| (g.id.namespace.clone(), g.id.name.clone()))
                .collect();
            let recomputed = cache.update(
                kthena_dataplane::status::Sources {
                    inputs: &inputs,
                    pools: &pools,
                    tables: &tables,
                    controller_name: &controller_name,
                    priority_queueing,
                },
                &dirty,
                |o| crate::report::desired_one(o, &controller_name, &gateways).map(Arc::new),
            );
            let desired: Vec<Arc<DesiredStatus>> = cache.values().cloned().collect();
            tracing::debug!(objects = desired.len(), recomputed, "statuses computed");
            if desired_tx.send(Arc::new(desired)).is_err() {
                return;
            }
        }
    });

    if options.gateway.enabled {
        let client = client.clone();
        let namespace = namespace.clone();
        let controller_name = options.gateway.controller_name.clone();
        actix_rt::spawn(async move {
            let mut wait = Duration::from_secs(1);
            loop {
                match crate::defaults::ensure(&client, &namespace, port, &controller_name).await {
                    Ok(done) => {
                        tracing::info!(
                            created_class = done.created_class,
                            created_gateway = done.created_gateway,
                            "default GatewayClass and Gateway present"
                        );
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?wait, "creating the default GatewayClass/Gateway");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(60));
                    }
                }
            }
        });
    }

    if options.gateway.enabled && opts.manage_service_ports {
        let service = options.service_name.clone();
        let field_manager = opts.field_manager.clone();
        let mut leader = leader_rx;
        actix_rt::spawn(async move {
            let mut applied = shared.applied.subscribe();
            loop {
                if *leader.borrow_and_update() {
                    let mut ports: BTreeSet<u16> = shared.ports.load().keys().copied().collect();
                    ports.insert(port);
                    match crate::service_ports::reconcile(
                        &client,
                        &namespace,
                        &service,
                        &ports,
                        &field_manager,
                    )
                    .await
                    {
                        Ok(crate::service_ports::Outcome::NoService) => {
                            tracing::warn!(service = %format!("{namespace}/{service}"), "the router Service does not exist: its ports are not managed");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "updating the router Service ports"),
                    }
                }
                tokio::select! {
                    r = applied.changed() => if r.is_err() { return },
                    r = leader.changed() => if r.is_err() { return },
                }
            }
        });
    }
    Box::new(move || {
        Box::pin(async move {
            let handle = webhook.borrow_mut().take();
            if let Some(w) = handle {
                w.stop(true).await;
            }
            let _ = stop_tx.send(());
            if tokio::time::timeout(RELEASE_WAIT, elector_task)
                .await
                .is_err()
            {
                tracing::warn!(
                    "the Lease was not released in time: another replica takes over when it lapses"
                );
            }
        })
    })
}

/// A tick every `period`, the first one `period` from now; late ticks are not made up.
fn every(period: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// Serves renewed certificate files (cert-manager rotation) without a restart.
async fn reload_files(
    opts: crate::webhook::WebhookOptions,
    cert: Arc<kthena_webhook::ServingCert>,
) {
    let mut ticks = every(crate::webhook::FILE_CHECK_INTERVAL);
    loop {
        ticks.tick().await;
        match crate::webhook::reload_files(&opts, &cert) {
            Ok(true) => {
                tracing::info!(file = %opts.cert_file.display(), "webhook certificate reloaded")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "webhook certificate files not reloaded; serving the previous certificate")
            }
        }
    }
}

/// `auto` mode: renews the Secret's certificate when it ends, serves another replica's
/// renewal, and keeps the caBundle written.
async fn refresh_auto(
    auto: crate::webhook::AutoCerts,
    client: kube::Client,
    cert: Arc<kthena_webhook::ServingCert>,
) {
    let mut ticks = every(crate::webhook::SECRET_CHECK_INTERVAL);
    loop {
        ticks.tick().await;
        match crate::webhook::refresh_auto(&auto, &client, &cert).await {
            Ok(true) => tracing::info!(secret = %auto.secret_name, "webhook certificate reloaded"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "webhook certificate check failed; serving the previous certificate")
            }
        }
    }
}
