//! The Index actor: applies whole configurations, in order, to the other actors.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AtomicResponse, Context, Handler, Message, WrapFuture};
use arc_swap::ArcSwap;
use kthena_core::{ListenerRef, ObjectRef, PortListeners};

use super::endpoint_pool::{EndpointPool, Update};
use super::listener::{Listener, Stop};
use super::route_set::{RouteSet, SetRoutes};
use crate::handlers::RouterContext;
use crate::pool::{PodIndex, PodInfo, PoolKey, PoolSnapshot, Upstream};
use crate::source::{Config, TlsSecret};
use crate::state::{PoolCell, PoolMap, Shared, same_arcs};

/// Starts one EndpointPool per ModelServer, feeds them Pods, and hands routes to the RouteSet.
///
/// Order keeps requests in flight safe: new pools are published before routes that may use
/// them, and pools are removed only after the routes no longer name them.
#[derive(Debug)]
pub struct Index {
    shared: Arc<Shared>,
    route_set: Addr<RouteSet>,
    pools: HashMap<PoolKey, Pool>,
    /// Every Pod of the configuration in force.
    pods: PodIndex,
    /// The ModelServers, InferencePools and Service pools the pools were made from.
    servers: Vec<Arc<kthena_core::ModelServer>>,
    inference_pools: Vec<kthena_core::InferencePool>,
    services: Vec<Upstream>,
    unhonored_servers: Arc<HashMap<ObjectRef, kthena_core::FieldErrors>>,
    spawner: Option<ListenerSpawner>,
    listeners: HashMap<u16, Addr<Listener>>,
    tls_keys: HashMap<u16, crate::tls::SharedKeys>,
}

/// One running EndpointPool and what it was last given, so that only pools whose upstream
/// or selected Pods changed get an update.
#[derive(Debug)]
struct Pool {
    addr: Addr<EndpointPool>,
    cell: PoolCell,
    upstream: Upstream,
    members: Vec<PodInfo>,
}

/// How the Index starts a Listener actor for a Gateway port (gateway mode).
#[derive(Debug, Clone)]
pub struct ListenerSpawner {
    /// Handlers' context.
    pub ctx: RouterContext,
    /// Address to bind.
    pub address: IpAddr,
    /// `--port`, already served by its own listener.
    pub main_port: u16,
    /// Worker threads per listener.
    pub workers: usize,
    /// Drain time on stop.
    pub drain: Duration,
}

impl Index {
    /// An Index publishing into `shared` and driving `route_set`.
    pub fn new(
        shared: Arc<Shared>,
        route_set: Addr<RouteSet>,
        spawner: Option<ListenerSpawner>,
    ) -> Self {
        Self {
            shared,
            route_set,
            pools: HashMap::new(),
            pods: PodIndex::default(),
            servers: Vec::new(),
            inference_pools: Vec::new(),
            services: Vec::new(),
            unhonored_servers: Arc::default(),
            spawner,
            listeners: HashMap::new(),
            tls_keys: HashMap::new(),
        }
    }

    /// Publishes the listeners of every port and serves exactly the ports of the Gateways.
    /// Serves exactly the ports of the Gateways and publishes their listeners. Returns the
    /// ports that could not be bound and the HTTPS listeners whose certificate is unusable.
    fn apply_gateways(
        &mut self,
        gateways: &[kthena_core::Gateway],
        secrets: &HashMap<ObjectRef, TlsSecret>,
        grants: &kthena_core::ReferenceGrants,
    ) -> GatewayOutcome {
        use kthena_core::gateway::Protocol;
        let mut unbound = Vec::new();
        let mut bad_certs = Vec::new();
        let Some(spawner) = self.spawner.clone() else {
            return GatewayOutcome::default();
        };
        let conflicts = kthena_core::gateway::conflicts(gateways, Some(spawner.main_port));
        for c in &conflicts {
            tracing::warn!(listener = %format!("{}/{}", c.listener.gateway, c.listener.section_name), reason = c.reason, message = %c.message, "listener not served");
        }
        let mut ports: HashMap<u16, PortListeners> = HashMap::new();
        let mut protocols: HashMap<u16, Protocol> = HashMap::new();
        let mut keys: HashMap<u16, crate::tls::PortKeys> = HashMap::new();
        for g in gateways {
            for l in &g.listeners {
                if matches!(l.protocol, Protocol::Other(_)) {
                    tracing::warn!(gateway = %g.id, listener = %l.name, protocol = ?l.protocol, "listener protocol not served");
                    continue;
                }
                let r = l.reference(&g.id);
                if conflicts.iter().any(|c| c.listener == r) {
                    continue;
                }
                protocols
                    .entry(l.port)
                    .or_insert_with(|| l.protocol.clone());
                if l.protocol == Protocol::Https {
                    use kthena_core::conditions::reasons;
                    let key = match l.certificate_refs.first() {
                        None => Err((
                            reasons::INVALID_CERTIFICATE_REF,
                            "no certificateRefs".to_owned(),
                        )),
                        Some(s)
                            if !grants.permits(kthena_core::reference_grant::Reference {
                                from_group: kthena_core::gateway::GATEWAY_GROUP,
                                from_kind: "Gateway",
                                from_namespace: &g.id.namespace,
                                to_group: "",
                                to_kind: "Secret",
                                to: s,
                            }) =>
                        {
                            Err((
                                reasons::REF_NOT_PERMITTED,
                                format!(
                                    "Secret {s} is in another namespace and no ReferenceGrant there allows Gateways of {} to use it",
                                    g.id.namespace
                                ),
                            ))
                        }
                        Some(s) => secrets
                            .get(s)
                            .ok_or_else(|| format!("Secret {s} not found"))
                            .and_then(crate::tls::certified_key)
                            .map_err(|e| (reasons::INVALID_CERTIFICATE_REF, e)),
                    };
                    match key {
                        Ok(k) => keys
                            .entry(l.port)
                            .or_default()
                            .push((l.hostname.clone(), k)),
                        Err((reason, e)) => {
                            tracing::error!(gateway = %g.id, listener = %l.name, error = %e, "HTTPS listener not served");
                            bad_certs.push((r, reason, e));
                            continue;
                        }
                    }
                }
                ports.entry(l.port).or_default().add(&g.id, l);
            }
        }
        for (port, k) in &keys {
            match self.tls_keys.get(port) {
                Some(shared) => shared.store(Arc::new(k.clone())),
                None => {
                    self.tls_keys
                        .insert(*port, Arc::new(arc_swap::ArcSwap::from_pointee(k.clone())));
                }
            }
        }
        for port in ports.keys().copied().filter(|p| *p != spawner.main_port) {
            if self.listeners.contains_key(&port) {
                continue;
            }
            let addr = SocketAddr::new(spawner.address, port);
            match TcpListener::bind(addr) {
                Ok(socket) => {
                    let mut l =
                        Listener::new(socket, spawner.ctx.clone(), spawner.workers, spawner.drain);
                    let https = protocols.get(&port) == Some(&Protocol::Https);
                    if let (true, Some(shared)) = (https, self.tls_keys.get(&port)) {
                        l = l.with_tls(crate::tls::server_config(shared.clone()));
                    }
                    let server = if https { "gateway-https" } else { "gateway" };
                    tracing::info!(server = %server, addr = %addr, "listening");
                    self.listeners.insert(port, l.start());
                }
                Err(e) => {
                    tracing::error!(port, error = %e, "cannot bind a Gateway listener port");
                    unbound.push(port);
                }
            }
        }
        self.listeners.retain(|port, addr| {
            let keep = ports.contains_key(port);
            if !keep {
                tracing::info!(port, "Gateway listener port no longer used: draining");
                addr.do_send(Stop {
                    graceful: true,
                    drain: spawner.drain,
                });
            }
            keep
        });
        self.tls_keys.retain(|port, _| keys.contains_key(port));
        // An unbound port serves nothing: requests cannot reach it anyway.
        for port in &unbound {
            ports.remove(port);
        }
        self.shared.ports.store(Arc::new(ports));
        GatewayOutcome {
            unbound,
            bad_certs,
            conflicts,
        }
    }

    fn publish_pools(&self) {
        let map: PoolMap = self
            .pools
            .iter()
            .map(|(id, pool)| (id.clone(), pool.cell.clone()))
            .collect();
        self.shared.pools.store(Arc::new(map));
    }
}

/// What serving the Gateways found, for their status.
#[derive(Debug, Default)]
struct GatewayOutcome {
    /// Ports that could not be bound.
    unbound: Vec<u16>,
    /// HTTPS listeners whose certificate is unusable: reason and message.
    bad_certs: Vec<(ListenerRef, &'static str, String)>,
    /// Listeners conflicting with older ones.
    conflicts: Vec<kthena_core::gateway::ListenerConflict>,
}

/// The Service pools HTTPRoutes name: one per (Service, port) that exists with a selector.
fn service_upstreams(config: &Config) -> Vec<Upstream> {
    let mut wanted: Vec<(&ObjectRef, u16)> = config
        .http_routes
        .iter()
        .flat_map(|r| r.route.rules.iter())
        .flat_map(|rule| rule.backends())
        .filter_map(|b| match &b.target {
            kthena_core::BackendTarget::Service { service, port } => Some((service, *port)),
            _ => None,
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    wanted
        .into_iter()
        .filter_map(|(id, port)| {
            let service = config.services.iter().find(|s| &s.id == id)?;
            Upstream::for_service(service, port)
        })
        .collect()
}

impl Actor for Index {
    type Context = Context<Self>;
}

/// Apply a complete configuration; the next one waits until this one is in force.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Apply(pub Config);

impl Handler<Apply> for Index {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, Apply(config): Apply, _: &mut Context<Self>) -> Self::Result {
        // Only what changed is recomputed: Pods by their conversion (the source shares an
        // unchanged Pod's), pools only when their upstream or one of their Pods changed.
        let pod_changes = self.pods.apply(&config.pods);
        let touched: HashSet<PoolKey> = if pod_changes.changed.is_empty() {
            HashSet::new()
        } else {
            let changed: Vec<&PodInfo> = pod_changes
                .changed
                .iter()
                .flat_map(|(before, after)| before.iter().chain(after.iter()))
                .map(|p| &**p)
                .collect();
            self.pools
                .iter()
                .filter(|(_, pool)| {
                    changed
                        .iter()
                        .any(|p| pool.upstream.selects(&p.id.namespace, &p.labels))
                })
                .map(|(key, _)| key.clone())
                .collect()
        };
        let services = service_upstreams(&config);
        let servers_same = same_arcs(&self.servers, &config.servers);
        if !servers_same {
            self.servers = config.servers.clone();
            self.unhonored_servers = Arc::new(
                config
                    .servers
                    .iter()
                    .map(|s| (s.id.clone(), kthena_core::unhonored::model_server(s)))
                    .filter(|(_, fields)| !fields.is_empty())
                    .collect(),
            );
        }
        let structural =
            !servers_same || self.inference_pools != config.pools || self.services != services;
        let inference_pools = config.pools.clone();
        let mut added = false;
        let mut acks = Vec::new();
        let mut wanted: Option<HashSet<PoolKey>> = None;
        if structural {
            let upstreams: Vec<Upstream> = self
                .servers
                .iter()
                .map(|s| Upstream::from(&**s))
                .chain(config.pools.iter().cloned().map(Upstream::from))
                .chain(services.iter().cloned())
                .collect();
            wanted = Some(upstreams.iter().map(|u| u.key.clone()).collect());
            for upstream in upstreams {
                match self.pools.get_mut(&upstream.key) {
                    Some(pool) if pool.upstream == upstream && !touched.contains(&upstream.key) => {
                    }
                    Some(pool) => {
                        let members = self.pods.selected(&upstream);
                        if pool.upstream != upstream || pool.members != members {
                            acks.push(pool.addr.send(Update {
                                upstream: upstream.clone(),
                                pods: Arc::new(members.clone()),
                            }));
                            pool.upstream = upstream;
                            pool.members = members;
                        }
                    }
                    None => {
                        let members = self.pods.selected(&upstream);
                        let key = upstream.key.clone();
                        let snapshot = PoolSnapshot::build(upstream.clone(), &members, None);
                        let cell: PoolCell = Arc::new(ArcSwap::from_pointee(snapshot));
                        let addr = EndpointPool::new(cell.clone()).start();
                        self.pools.insert(
                            key,
                            Pool {
                                addr,
                                cell,
                                upstream,
                                members,
                            },
                        );
                        added = true;
                    }
                }
            }
            self.inference_pools = inference_pools.clone();
            self.services = services;
        } else {
            for key in &touched {
                let Some(pool) = self.pools.get_mut(key) else {
                    continue;
                };
                let members = self.pods.selected(&pool.upstream);
                if pool.members != members {
                    acks.push(pool.addr.send(Update {
                        upstream: pool.upstream.clone(),
                        pods: Arc::new(members.clone()),
                    }));
                    pool.members = members;
                }
            }
        }
        if added {
            self.publish_pools();
        }
        let outcome = self.apply_gateways(&config.gateways, &config.tls_secrets, &config.grants);
        self.shared.dump.store(Arc::new(config.dump));
        self.shared
            .status_inputs
            .store(Arc::new(crate::state::StatusInputs {
                routes: config.routes.clone(),
                gateways: config.gateways.clone(),
                http_routes: config.http_routes.clone(),
                gateway_mode: self.spawner.is_some(),
                unbound_ports: outcome.unbound,
                bad_certificates: outcome.bad_certs,
                pools: inference_pools,
                gateway_classes: config.gateway_classes,
                conflicts: outcome.conflicts,
                namespaces: config.namespaces.clone(),
                services: config.services,
                generations: config.generations,
                parent_refs: config.parent_refs,
                invalid: config.invalid,
                addresses: config.addresses,
                inference_models: config.inference_models.clone(),
                objectives: config.objectives.clone(),
                inference_extension: config.inference_extension,
                controller_name: config.controller_name,
                unhonored_servers: self.unhonored_servers.clone(),
            }));
        self.shared.objectives.store(Arc::new(config.objectives));
        let set = self.route_set.send(SetRoutes {
            routes: config.routes,
            http_routes: config.http_routes,
            gateways: config.gateways,
            inference_models: config.inference_models,
            namespaces: config.namespaces,
        });
        // In force once every changed pool has published and the route table is built:
        // status readers woken by `applied` see both.
        let routes = async move {
            for ack in futures_util::future::join_all(acks).await {
                if let Err(e) = ack {
                    tracing::error!(error = %e, "endpoint pool unavailable");
                }
            }
            set.await
        };
        AtomicResponse::new(Box::pin(routes.into_actor(self).map(
            move |result, act, _| {
                if let Err(e) = result {
                    tracing::error!(error = %e, "route set unavailable");
                    return;
                }
                if let Some(wanted) = wanted {
                    let before = act.pools.len();
                    // Dropping the last address stops the pool actor.
                    act.pools.retain(|id, _| wanted.contains(id));
                    if act.pools.len() != before {
                        act.publish_pools();
                    }
                }
                act.shared.set_ready();
                act.shared.applied.send_modify(|n| *n += 1);
            },
        )))
    }
}
