//! The Index actor: applies configurations, in order, to the other actors, doing only what
//! their [`crate::source::Changes`] call for.

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
use crate::pool::{PodIndex, PodInfo, PoolKey, PoolSnapshot, SelectorIndex, Upstream};
use crate::source::{Config, TlsSecret};
use crate::state::{ObjectKind, PoolCell, PoolMap, Shared};

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
    /// The pools by what they select.
    selectors: SelectorIndex,
    /// The pools of InferencePools and Services (recomputed when those kinds change).
    other_upstreams: HashSet<PoolKey>,
    /// The accepted-but-not-honoured fields of each ModelServer that has some.
    unhonored_servers: imbl::OrdMap<ObjectRef, kthena_core::FieldErrors>,
    /// What serving the Gateways found last time they changed.
    outcome: GatewayOutcome,
    /// No configuration applied yet: the first applies everything.
    first: bool,
    spawner: Option<ListenerSpawner>,
    listeners: HashMap<u16, Addr<Listener>>,
    tls_keys: HashMap<u16, crate::tls::SharedKeys>,
    /// How the pools scrape their engines.
    scraping: Option<super::endpoint_pool::Scraping>,
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
        scraping: Option<super::endpoint_pool::Scraping>,
    ) -> Self {
        Self {
            shared,
            route_set,
            pools: HashMap::new(),
            pods: PodIndex::default(),
            selectors: SelectorIndex::default(),
            other_upstreams: HashSet::new(),
            unhonored_servers: imbl::OrdMap::new(),
            outcome: GatewayOutcome::default(),
            first: true,
            spawner,
            listeners: HashMap::new(),
            tls_keys: HashMap::new(),
            scraping,
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
#[derive(Debug, Default, Clone)]
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
        // Only what changed is recomputed (the configuration says what): one changed Pod
        // costs its pools, one changed ModelServer its pool, one changed ModelRoute the model
        // names it claims; the other kinds' parts are redone when one of them changed.
        let changes = &config.changes;
        let others = changes.others || self.first;
        let mut dirty = if others {
            crate::status::Dirty::all()
        } else {
            changes.status_dirty()
        };
        self.first = false;
        let mut touched: HashSet<PoolKey> = HashSet::new();
        for (before, after) in &changes.pods {
            match (before, after) {
                (_, Some(p)) => {
                    self.pods.upsert(p.clone());
                }
                (Some(b), None) => {
                    self.pods.delete(&b.id);
                }
                (None, None) => {}
            }
        }
        for p in changes
            .pods
            .iter()
            .flat_map(|(before, after)| before.iter().chain(after.iter()))
        {
            let p: &PodInfo = p;
            for key in self.selectors.candidates(&p.id.namespace, &p.labels) {
                if self
                    .pools
                    .get(key)
                    .is_some_and(|pool| pool.upstream.selects(&p.id.namespace, &p.labels))
                {
                    touched.insert(key.clone());
                }
            }
        }
        // The pools whose upstream changed: (key, the upstream now, or None when gone).
        let mut upstreams: Vec<(PoolKey, Option<Upstream>)> = Vec::new();
        for (before, after) in &changes.servers {
            match (before, after) {
                (_, Some(s)) => {
                    let fields = kthena_core::unhonored::model_server(s);
                    if fields.is_empty() {
                        self.unhonored_servers.remove(&s.id);
                    } else {
                        self.unhonored_servers.insert(s.id.clone(), fields);
                    }
                    let upstream = Upstream::from(&**s);
                    upstreams.push((upstream.key.clone(), Some(upstream)));
                }
                (Some(b), None) => {
                    self.unhonored_servers.remove(&b.id);
                    upstreams.push((PoolKey::ModelServer(b.id.clone()), None));
                }
                (None, None) => {}
            }
        }
        if others {
            let now: Vec<Upstream> = config
                .pools
                .iter()
                .cloned()
                .map(Upstream::from)
                .chain(service_upstreams(&config))
                .collect();
            let keys: HashSet<PoolKey> = now.iter().map(|u| u.key.clone()).collect();
            for gone in self.other_upstreams.difference(&keys) {
                upstreams.push((gone.clone(), None));
            }
            upstreams.extend(now.into_iter().map(|u| (u.key.clone(), Some(u))));
            self.other_upstreams = keys;
        }
        let mut added = false;
        let mut acks = Vec::new();
        let mut removed: Vec<PoolKey> = Vec::new();
        for (key, upstream) in upstreams {
            let Some(upstream) = upstream else {
                removed.push(key);
                continue;
            };
            match self.pools.get_mut(&key) {
                Some(pool) if pool.upstream == upstream && !touched.contains(&key) => {}
                Some(pool) => {
                    touched.remove(&key);
                    let members = self.pods.selected(&upstream);
                    if pool.upstream != upstream {
                        self.selectors.remove(&pool.upstream);
                        self.selectors.insert(&upstream);
                    }
                    if pool.upstream != upstream || pool.members != members {
                        if let PoolKey::ModelServer(id) = &key {
                            dirty.objects.insert((ObjectKind::ModelServer, id.clone()));
                        }
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
                    let snapshot = PoolSnapshot::build(upstream.clone(), &members, None);
                    let cell: PoolCell = Arc::new(ArcSwap::from_pointee(snapshot));
                    let addr =
                        EndpointPool::new(cell.clone(), self.shared.clone(), self.scraping.clone())
                            .start();
                    self.selectors.insert(&upstream);
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
        for key in &touched {
            let Some(pool) = self.pools.get_mut(key) else {
                continue;
            };
            let members = self.pods.selected(&pool.upstream);
            if pool.members != members {
                if let PoolKey::ModelServer(id) = key {
                    dirty.objects.insert((ObjectKind::ModelServer, id.clone()));
                }
                acks.push(pool.addr.send(Update {
                    upstream: pool.upstream.clone(),
                    pods: Arc::new(members.clone()),
                }));
                pool.members = members;
            }
        }
        if added {
            self.publish_pools();
        }
        if others {
            self.outcome =
                self.apply_gateways(&config.gateways, &config.tls_secrets, &config.grants);
            self.shared.objectives.store(config.objectives.clone());
            self.shared.api_keys.store(config.api_keys.clone());
            self.shared
                .providers
                .store(Arc::new(crate::provider::resolve_all(
                    &config.providers,
                    &config.credentials,
                )));
        }
        let outcome = self.outcome.clone();
        self.shared.dump.store(Arc::new(config.dump.clone()));
        // Published with `applied`, once the data plane serves this configuration: a status
        // never says Accepted or ResolvedRefs ahead of the tables that act on it.
        let status_inputs = Arc::new(crate::state::StatusInputs {
            unbound_ports: outcome.unbound,
            bad_certificates: outcome.bad_certs,
            conflicts: outcome.conflicts,
            unhonored_servers: self.unhonored_servers.clone(),
            ..config.status_inputs(self.spawner.is_some())
        });
        let (routes_changed, pods_changed) = (changes.routes.len(), changes.pods.len());
        let set = self.route_set.send(SetRoutes {
            routes: config.changes.routes.clone(),
            others: others.then(|| super::route_set::OtherRoutes {
                http_routes: config.http_routes.clone(),
                gateways: config.gateways.clone(),
                inference_models: config.inference_models.clone(),
                namespaces: config.namespaces.clone(),
            }),
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
                // Pools are removed once the routes no longer name them; dropping the last
                // address stops the pool actor.
                let before = act.pools.len();
                for key in &removed {
                    if let Some(pool) = act.pools.remove(key) {
                        act.selectors.remove(&pool.upstream);
                    }
                }
                if act.pools.len() != before {
                    act.publish_pools();
                }
                act.shared.status_inputs.store(status_inputs);
                act.shared.mark_status_dirty(dirty);
                act.shared.set_ready();
                act.shared.applied.send_modify(|n| *n += 1);
                tracing::info!(
                    routes = routes_changed,
                    pods = pods_changed,
                    others,
                    "configuration in force"
                );
            },
        )))
    }
}
