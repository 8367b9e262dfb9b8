//! Kubernetes mode: kube-runtime watchers keep a store per kind; every change (debounced)
//! combines the configuration from the stores, through the same conversion and [`combine`]
//! step as the manifest folder, and hands it to the Index. An object is converted once per
//! `resourceVersion`.
//!
//! Watchers retry with backoff and never end the process. A kind whose CRD is not installed is
//! logged once, counts as synced (empty) and is picked up when the CRD appears. The first
//! configuration is applied only after every watcher's initial list, so readiness means
//! "every initial sync done".

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, SpawnHandle};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service};
use kthena_api::inference::{v1, v1alpha2};
use kthena_api::manifest::Object;
use kthena_api::modelroute::ModelRoute;
use kthena_api::modelserver::ModelServer;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::GatewayOptions;
use super::assemble::{Converted, combine};
use crate::actors::index::{Apply, Index};

/// Where the router runs and what it watches.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// Gateway API settings.
    pub gateway: GatewayOptions,
    /// Watch one namespace only (cluster-scoped kinds are still watched cluster-wide).
    pub watch_namespace: Option<String>,
    /// The router's own Service (`--service-name`, in `gateway.namespace`): its address is
    /// the Gateways' `status.addresses`.
    pub service_name: String,
    /// Quiet time after a change before the configuration is rebuilt.
    pub debounce: Duration,
}

/// The kinds watched with `gateway`: always ModelRoute, ModelServer and Pod; with the Gateway
/// API GatewayClass, Gateway, HTTPRoute, ReferenceGrant, Namespace, Service and
/// `kubernetes.io/tls` Secrets; with the Inference Extension both InferencePools,
/// InferenceModel and InferenceObjective.
pub fn watched_kinds(gateway: &GatewayOptions) -> Vec<&'static str> {
    let mut kinds = vec!["ModelRoute", "ModelServer", "Pod"];
    if gateway.enabled {
        kinds.extend([
            "GatewayClass",
            "Gateway",
            "HTTPRoute",
            "ReferenceGrant",
            "Namespace",
            "Service",
            "Secret",
        ]);
        if gateway.inference_extension {
            kinds.extend([
                "InferencePool",
                "InferencePool.v1alpha2",
                "InferenceModel",
                "InferenceObjective",
            ]);
        }
    }
    kinds
}

/// A watched kind's objects, each converted once per `resourceVersion`.
trait Objects: Send {
    fn converted(&mut self, gw: &GatewayOptions) -> Vec<Arc<Converted>>;
}

struct Typed<K: Resource + Clone + 'static>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    store: Store<K>,
    wrap: fn(K) -> Object,
    /// The last conversion of each object, with the `resourceVersion` it was made from.
    cache: HashMap<reflector::ObjectRef<K>, (String, Arc<Converted>)>,
}

impl<K: Resource + Clone + 'static> Typed<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    fn new(store: Store<K>, wrap: fn(K) -> Object) -> Self {
        Self {
            store,
            wrap,
            cache: HashMap::new(),
        }
    }
}

impl<K> Objects for Typed<K>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync + Default,
{
    fn converted(&mut self, gw: &GatewayOptions) -> Vec<Arc<Converted>> {
        let mut next = HashMap::new();
        let mut out = Vec::new();
        for o in self.store.state() {
            let key = reflector::ObjectRef::from_obj(o.as_ref());
            let version = o.meta().resource_version.clone();
            let converted = match (self.cache.remove(&key), &version) {
                (Some((seen, c)), Some(v)) if &seen == v => c,
                _ => Arc::new(Converted::new(
                    "apiserver".to_owned(),
                    (self.wrap)(o.as_ref().clone()),
                    gw,
                )),
            };
            if let Some(v) = version {
                next.insert(key, (v, converted.clone()));
            }
            out.push(converted);
        }
        self.cache = next;
        out
    }
}

/// The Kubernetes source actor: owns the stores, rebuilds and applies the configuration.
pub struct KubeSource {
    options: KubeOptions,
    index: Addr<Index>,
    stores: Vec<Box<dyn Objects>>,
    services: Option<Store<Service>>,
    /// Kinds whose initial list has not finished.
    pending: BTreeSet<&'static str>,
    dirty: bool,
    scheduled: Option<SpawnHandle>,
    /// Problems logged at the last build, so each is logged once.
    logged: BTreeSet<String>,
}

impl Debug for KubeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSource")
            .field("pending", &self.pending)
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Message)]
#[rtype(result = "()")]
enum Event {
    /// A kind's initial list is complete (or its CRD is absent).
    Synced(&'static str),
    /// Something of a kind changed.
    Changed(&'static str),
}

impl KubeSource {
    /// Starts a watcher per kind of [`watched_kinds`] and the actor that turns their stores
    /// into configurations for `index`.
    pub fn start(client: Client, options: KubeOptions, index: Addr<Index>) -> Addr<Self> {
        let kinds = watched_kinds(&options.gateway);
        KubeSource::create(move |ctx| {
            let me = ctx.address();
            let ns = options.watch_namespace.clone();
            let mut stores: Vec<Box<dyn Objects>> = Vec::new();
            let mut services = None;
            let cfg = watcher::Config::default;
            for kind in &kinds {
                match *kind {
                    "ModelRoute" => stores.push(watch::<ModelRoute>(
                        nsapi(&client, &ns),
                        kind,
                        cfg(),
                        &me,
                        |o| Object::ModelRoute(Box::new(o)),
                    )),
                    "ModelServer" => stores.push(watch::<ModelServer>(
                        nsapi(&client, &ns),
                        kind,
                        cfg(),
                        &me,
                        |o| Object::ModelServer(Box::new(o)),
                    )),
                    "Pod" => {
                        stores.push(watch::<Pod>(nsapi(&client, &ns), kind, cfg(), &me, |o| {
                            Object::Pod(Box::new(o))
                        }))
                    }
                    "GatewayClass" => stores.push(watch::<
                        gateway_api::apis::standard::gatewayclasses::GatewayClass,
                    >(
                        Api::all(client.clone()),
                        kind,
                        cfg(),
                        &me,
                        |o| Object::GatewayClass(Box::new(o)),
                    )),
                    "Gateway" => {
                        stores.push(watch::<gateway_api::apis::standard::gateways::Gateway>(
                            nsapi(&client, &ns),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::Gateway(Box::new(o)),
                        ))
                    }
                    "HTTPRoute" => {
                        stores.push(watch::<gateway_api::apis::standard::httproutes::HttpRoute>(
                            nsapi(&client, &ns),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::HttpRoute(Box::new(o)),
                        ))
                    }
                    "ReferenceGrant" => stores.push(watch::<
                        gateway_api::apis::standard::referencegrants::ReferenceGrant,
                    >(
                        nsapi(&client, &ns),
                        kind,
                        cfg(),
                        &me,
                        |o| Object::ReferenceGrant(Box::new(o)),
                    )),
                    "Namespace" => stores.push(watch::<Namespace>(
                        Api::all(client.clone()),
                        kind,
                        cfg(),
                        &me,
                        |o| Object::Namespace(Box::new(o)),
                    )),
                    "Service" => {
                        let (store, writer) = reflector::store::<Service>();
                        spawn_watch(
                            nsapi::<Service>(&client, &ns),
                            kind,
                            cfg(),
                            writer,
                            me.clone(),
                        );
                        services = Some(store.clone());
                        stores.push(Box::new(Typed::new(store, |o| {
                            Object::Service(Box::new(o))
                        })));
                    }
                    "Secret" => stores.push(watch::<Secret>(
                        nsapi(&client, &ns),
                        kind,
                        cfg().fields("type=kubernetes.io/tls"),
                        &me,
                        |o| Object::Secret(Box::new(o)),
                    )),
                    "InferencePool" => stores.push(watch::<v1::InferencePool>(
                        nsapi(&client, &ns),
                        kind,
                        cfg(),
                        &me,
                        |o| Object::InferencePool(Box::new(o)),
                    )),
                    "InferencePool.v1alpha2" => stores.push(watch::<v1alpha2::InferencePool>(
                        nsapi(&client, &ns),
                        kind,
                        cfg(),
                        &me,
                        |o| Object::InferencePoolV1alpha2(Box::new(o)),
                    )),
                    "InferenceModel" => stores.push(watch::<v1alpha2::InferenceModel>(
                        nsapi(&client, &ns),
                        kind,
                        cfg(),
                        &me,
                        |o| Object::InferenceModel(Box::new(o)),
                    )),
                    "InferenceObjective" => stores.push(watch::<v1alpha2::InferenceObjective>(
                        nsapi(&client, &ns),
                        kind,
                        cfg(),
                        &me,
                        |o| Object::InferenceObjective(Box::new(o)),
                    )),
                    other => tracing::error!(kind = other, "no watcher for this kind"),
                }
            }
            tracing::info!(kinds = ?kinds, namespace = ns.as_deref().unwrap_or("(all)"), "watching the API server");
            KubeSource {
                options,
                index,
                stores,
                services,
                pending: kinds.into_iter().collect(),
                dirty: true,
                scheduled: None,
                logged: BTreeSet::new(),
            }
        })
    }

    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if !self.pending.is_empty() || !self.dirty || self.scheduled.is_some() {
            return;
        }
        let handle = ctx.run_later(self.options.debounce, |act, _| {
            act.scheduled = None;
            act.build();
        });
        self.scheduled = Some(handle);
    }

    /// The router Service's address: load-balancer ingress, else the cluster IP.
    fn service_addresses(&self) -> Vec<String> {
        let Some(store) = &self.services else {
            return Vec::new();
        };
        let key = reflector::ObjectRef::<Service>::new(&self.options.service_name)
            .within(&self.options.gateway.namespace);
        let Some(svc) = store.get(&key) else {
            return Vec::new();
        };
        let ingress: Vec<String> = svc
            .status
            .iter()
            .flat_map(|s| s.load_balancer.iter())
            .flat_map(|lb| lb.ingress.iter().flatten())
            .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            .collect();
        if !ingress.is_empty() {
            return ingress;
        }
        svc.spec
            .iter()
            .filter_map(|s| s.cluster_ip.clone())
            .filter(|ip| !ip.is_empty() && ip != "None")
            .collect()
    }

    fn build(&mut self) {
        self.dirty = false;
        let gw = &self.options.gateway;
        let converted: Vec<Arc<Converted>> = self
            .stores
            .iter_mut()
            .flat_map(|s| s.converted(gw))
            .collect();
        let count = converted.len();
        let (mut config, problems) = combine(converted.iter().map(AsRef::as_ref), gw);
        let now: BTreeSet<String> = problems.iter().map(ToString::to_string).collect();
        for p in now.difference(&self.logged) {
            tracing::warn!(problem = %p, "object not served");
        }
        self.logged = now;
        if self.options.gateway.enabled {
            let addresses = self.service_addresses();
            if !addresses.is_empty() {
                config.addresses = addresses;
            }
        }
        tracing::info!(
            objects = count,
            modelroutes = config.routes.len(),
            modelservers = config.servers.len(),
            pods = config.pods.len(),
            invalid = problems.len(),
            "configuration rebuilt from the API server"
        );
        self.index.do_send(Apply(config));
    }
}

/// `Api` of a namespaced kind: one namespace with `--watch-namespace`, else all.
fn nsapi<K>(client: &Client, ns: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn watch<K>(
    api: Api<K>,
    kind: &'static str,
    cfg: watcher::Config,
    me: &Addr<KubeSource>,
    wrap: fn(K) -> Object,
) -> Box<dyn Objects>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + std::hash::Hash + Eq + Clone + Send + Sync,
{
    let (store, writer) = reflector::store::<K>();
    spawn_watch(api, kind, cfg, writer, me.clone());
    Box::new(Typed::new(store, wrap))
}

fn spawn_watch<K>(
    api: Api<K>,
    kind: &'static str,
    cfg: watcher::Config,
    writer: reflector::store::Writer<K>,
    me: Addr<KubeSource>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + std::hash::Hash + Eq + Clone + Send + Sync,
{
    // On the control runtime: decoding watch events never holds up the actors.
    crate::control::runtime().spawn(async move {
        let stream = watcher(api, cfg).default_backoff().reflect(writer);
        let mut stream = std::pin::pin!(stream);
        let mut absent = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::InitDone) => {
                    if absent {
                        tracing::info!(kind, "CRD installed: watching");
                        absent = false;
                    }
                    me.do_send(Event::Synced(kind));
                    me.do_send(Event::Changed(kind));
                }
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                    me.do_send(Event::Changed(kind));
                }
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Err(watcher::Error::InitialListFailed(kube::Error::Api(s))) if s.code == 404 => {
                    if !absent {
                        tracing::warn!(
                            kind,
                            "the CRD of this kind is not installed: serving without it, retrying with backoff"
                        );
                        absent = true;
                    }
                    me.do_send(Event::Synced(kind));
                }
                Err(e) => tracing::warn!(kind, error = %e, "watch failed: retrying with backoff"),
            }
        }
        tracing::error!(kind, "watch stream ended");
    });
}

impl Actor for KubeSource {
    type Context = Context<Self>;
}

impl Handler<Event> for KubeSource {
    type Result = ();

    fn handle(&mut self, event: Event, ctx: &mut Context<Self>) {
        match event {
            Event::Synced(kind) => {
                if self.pending.remove(kind) && self.pending.is_empty() {
                    tracing::info!("every initial list done");
                }
            }
            Event::Changed(kind) => {
                tracing::trace!(kind, "changed");
                self.dirty = true;
            }
        }
        self.schedule(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(version: &str) -> ModelServer {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "networking.serving.volcano.sh/v1alpha1",
            "kind": "ModelServer",
            "metadata": {"name": "s", "namespace": "team", "resourceVersion": version},
            "spec": {"inferenceEngine": "vLLM", "workloadSelector": {"matchLabels": {"app": "x"}},
                     "workloadPort": {"port": 8000}},
        }))
        .expect("a ModelServer")
    }

    #[test]
    fn an_object_is_converted_again_only_when_its_resource_version_changes() {
        let (store, mut writer) = reflector::store::<ModelServer>();
        let mut typed = Typed::new(store, |o| Object::ModelServer(Box::new(o)));
        writer.apply_watcher_event(&watcher::Event::Apply(server("1")));
        let first = typed.converted(&GatewayOptions::default());
        let again = typed.converted(&GatewayOptions::default());
        assert_eq!((first.len(), again.len()), (1, 1));
        assert!(
            Arc::ptr_eq(&first[0], &again[0]),
            "same version: not converted again"
        );
        writer.apply_watcher_event(&watcher::Event::Apply(server("2")));
        let changed = typed.converted(&GatewayOptions::default());
        assert!(
            !Arc::ptr_eq(&first[0], &changed[0]),
            "new version: converted again"
        );
        writer.apply_watcher_event(&watcher::Event::Delete(server("2")));
        assert!(typed.converted(&GatewayOptions::default()).is_empty());
        assert!(typed.cache.is_empty(), "a deleted object is forgotten");
    }
}
