//! Kubernetes mode: kube-runtime watchers keep a store per kind; after a change (debounced)
//! the objects the watch events named are compared with what was converted (an object is
//! converted once per `resourceVersion`; after a list, the whole kind), and only the objects
//! new, changed or gone go through the same [`Combined`] step as the manifest folder to the
//! Index.
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
use super::assemble::{Change, Combined, Converted};
use crate::actors::index::{Apply, Index};
use crate::state::ObjectKind;

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

/// The kinds watched with `gateway`: always ModelRoute, ModelServer, Pod,
/// ExternalModelProvider and the Secrets labelled as provider credentials
/// ([`CREDENTIAL_LABEL`]); with the Gateway API GatewayClass, Gateway, HTTPRoute,
/// ReferenceGrant, Namespace, Service and `kubernetes.io/tls` Secrets; with the Inference
/// Extension both InferencePools, InferenceModel and InferenceObjective.
pub fn watched_kinds(gateway: &GatewayOptions) -> Vec<ObjectKind> {
    use ObjectKind as K;
    let mut kinds = vec![
        K::ModelRoute,
        K::ModelServer,
        K::Pod,
        K::ExternalModelProvider,
        K::Secret,
    ];
    if gateway.enabled {
        kinds.extend([
            K::GatewayClass,
            K::Gateway,
            K::HttpRoute,
            K::ReferenceGrant,
            K::Namespace,
            K::Service,
        ]);
        if gateway.inference_extension {
            kinds.extend([
                K::InferencePool,
                K::InferencePoolV1alpha2,
                K::InferenceModel,
                K::InferenceObjective,
            ]);
        }
    }
    kinds
}

/// The label a Secret carries to be read as an ExternalModelProvider credential (Kthena's).
pub const CREDENTIAL_LABEL: &str =
    "networking.serving.volcano.sh/external-model-provider-credential=true";

/// The selector of API-key Secrets ([`crate::auth::API_KEY_LABEL`]) that are not also
/// provider credentials (those are watched already).
const API_KEY_SELECTOR: &str = "networking.serving.volcano.sh/api-key=true,\
     networking.serving.volcano.sh/external-model-provider-credential!=true";

/// The objects of several watches of one kind, whose selections do not overlap.
struct Several(Vec<Box<dyn Objects>>);

impl Objects for Several {
    fn changes(&mut self, gw: &GatewayOptions, named: Option<&BTreeSet<Named>>) -> Vec<Change> {
        let mut out = Vec::new();
        for o in &mut self.0 {
            // A watch that does not hold a named object says nothing of it (it never did).
            out.extend(o.changes(gw, named));
        }
        out
    }
}

/// A watched kind's objects, each converted once per `resourceVersion`.
trait Objects: Send {
    /// The kind's changes since the last call: objects new or at a new `resourceVersion`
    /// (converted), and objects gone. Only the objects `named` (namespace, name) are looked
    /// at, or every object when `None` (after a list).
    fn changes(&mut self, gw: &GatewayOptions, named: Option<&BTreeSet<Named>>) -> Vec<Change>;
}

/// An object's namespace (none when cluster-scoped) and name, as a watch event names it.
type Named = (Option<String>, String);

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
    fn changes(&mut self, gw: &GatewayOptions, named: Option<&BTreeSet<Named>>) -> Vec<Change> {
        let mut out = Vec::new();
        let Some(named) = named else {
            let mut seen = std::collections::HashSet::new();
            for o in self.store.state() {
                let key = reflector::ObjectRef::from_obj(o.as_ref());
                seen.insert(key.clone());
                self.look(key, Some(&o), gw, &mut out);
            }
            let gone: Vec<_> = self
                .cache
                .keys()
                .filter(|k| !seen.contains(*k))
                .cloned()
                .collect();
            for k in gone {
                self.look(k, None, gw, &mut out);
            }
            return out;
        };
        for (namespace, name) in named {
            let mut key = reflector::ObjectRef::<K>::new(name);
            key.namespace = namespace.clone();
            let object = self.store.get(&key);
            self.look(key, object.as_ref(), gw, &mut out);
        }
        out
    }
}

impl<K> Typed<K>
where
    K: Resource + Clone + Send + Sync + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone + Send + Sync + Default,
{
    /// The change of object `key`, now `object` (`None`: gone), against its last conversion.
    fn look(
        &mut self,
        key: reflector::ObjectRef<K>,
        object: Option<&Arc<K>>,
        gw: &GatewayOptions,
        out: &mut Vec<Change>,
    ) {
        let Some(o) = object else {
            if let Some(k) = self.cache.remove(&key).and_then(|(_, c)| c.key()) {
                out.push(Change::Delete(k));
            }
            return;
        };
        let version = o.meta().resource_version.clone();
        // An object without a resourceVersion is converted every time.
        if let (Some((seen, _)), Some(v)) = (self.cache.get(&key), &version)
            && seen == v
        {
            return;
        }
        let converted = Arc::new(Converted::new(
            "apiserver".to_owned(),
            (self.wrap)(o.as_ref().clone()),
            gw,
        ));
        let before = self
            .cache
            .insert(key, (version.unwrap_or_default(), converted.clone()));
        if let Some(old) = before.and_then(|(_, c)| c.key())
            && Some(&old) != converted.key().as_ref()
        {
            out.push(Change::Delete(old));
        }
        out.push(Change::Upsert(converted));
    }
}

/// The Kubernetes source actor: owns the stores, rebuilds and applies the configuration.
pub struct KubeSource {
    options: KubeOptions,
    index: Addr<Index>,
    /// Each watched kind's objects.
    stores: Vec<(ObjectKind, Box<dyn Objects>)>,
    services: Option<Store<Service>>,
    /// Kinds whose initial list has not finished.
    pending: BTreeSet<ObjectKind>,
    /// Kinds changed since the last build: the objects their events named, or `None` after
    /// a list (every object is compared).
    dirty: HashMap<ObjectKind, Option<BTreeSet<Named>>>,
    scheduled: Option<SpawnHandle>,
    /// The objects in force and the configuration built from them.
    combined: Combined,
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
    Synced(ObjectKind),
    /// Objects of a kind changed: the one a watch event names, or any (after a list).
    Changed(ObjectKind, Option<Named>),
}

impl KubeSource {
    /// Starts a watcher per kind of [`watched_kinds`] and the actor that turns their stores
    /// into configurations for `index`.
    pub fn start(client: Client, options: KubeOptions, index: Addr<Index>) -> Addr<Self> {
        let kinds = watched_kinds(&options.gateway);
        KubeSource::create(move |ctx| {
            let me = ctx.address();
            let ns = options.watch_namespace.clone();
            let mut stores: Vec<(ObjectKind, Box<dyn Objects>)> = Vec::new();
            let mut services = None;
            let cfg = watcher::Config::default;
            for kind in &kinds {
                let kind = *kind;
                match kind {
                    ObjectKind::ModelRoute => stores.push((
                        kind,
                        watch::<ModelRoute>(nsapi(&client, &ns), kind, cfg(), &me, |o| {
                            Object::ModelRoute(Box::new(o))
                        }),
                    )),
                    ObjectKind::ModelServer => stores.push((
                        kind,
                        watch::<ModelServer>(nsapi(&client, &ns), kind, cfg(), &me, |o| {
                            Object::ModelServer(Box::new(o))
                        }),
                    )),
                    // Pods are reduced as they arrive: the store keeps what routing needs.
                    ObjectKind::Pod => stores.push((
                        kind,
                        watch_reduced::<Pod>(
                            nsapi(&client, &ns),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::Pod(Box::new(o)),
                            kthena_api::convert::reduce_pod,
                        ),
                    )),
                    ObjectKind::GatewayClass => stores.push((
                        kind,
                        watch::<gateway_api::apis::standard::gatewayclasses::GatewayClass>(
                            Api::all(client.clone()),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::GatewayClass(Box::new(o)),
                        ),
                    )),
                    ObjectKind::Gateway => stores.push((
                        kind,
                        watch::<gateway_api::apis::standard::gateways::Gateway>(
                            nsapi(&client, &ns),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::Gateway(Box::new(o)),
                        ),
                    )),
                    ObjectKind::HttpRoute => stores.push((
                        kind,
                        watch::<gateway_api::apis::standard::httproutes::HttpRoute>(
                            nsapi(&client, &ns),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::HttpRoute(Box::new(o)),
                        ),
                    )),
                    ObjectKind::ReferenceGrant => stores.push((
                        kind,
                        watch::<gateway_api::apis::standard::referencegrants::ReferenceGrant>(
                            nsapi(&client, &ns),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::ReferenceGrant(Box::new(o)),
                        ),
                    )),
                    ObjectKind::Namespace => stores.push((
                        kind,
                        watch::<Namespace>(Api::all(client.clone()), kind, cfg(), &me, |o| {
                            Object::Namespace(Box::new(o))
                        }),
                    )),
                    ObjectKind::Service => {
                        let (store, writer) = reflector::store::<Service>();
                        spawn_watch(
                            nsapi::<Service>(&client, &ns),
                            kind,
                            cfg(),
                            writer,
                            me.clone(),
                        );
                        services = Some(store.clone());
                        stores.push((
                            kind,
                            Box::new(Typed::new(store, |o| Object::Service(Box::new(o)))),
                        ));
                    }
                    ObjectKind::Secret => {
                        // Provider credentials and API keys (labelled) and, in gateway mode,
                        // certificates (by type): watches that never select the same Secret.
                        let mut credentials = cfg().labels(CREDENTIAL_LABEL);
                        let mut api_keys = cfg().labels(API_KEY_SELECTOR);
                        let mut watches = Vec::new();
                        if options.gateway.enabled {
                            credentials = credentials.fields("type!=kubernetes.io/tls");
                            api_keys = api_keys.fields("type!=kubernetes.io/tls");
                            watches.push(watch::<Secret>(
                                nsapi(&client, &ns),
                                kind,
                                cfg().fields("type=kubernetes.io/tls"),
                                &me,
                                |o| Object::Secret(Box::new(o)),
                            ));
                        }
                        watches.push(watch::<Secret>(
                            nsapi(&client, &ns),
                            kind,
                            credentials,
                            &me,
                            |o| Object::Secret(Box::new(o)),
                        ));
                        watches.push(watch::<Secret>(
                            nsapi(&client, &ns),
                            kind,
                            api_keys,
                            &me,
                            |o| Object::Secret(Box::new(o)),
                        ));
                        stores.push((kind, Box::new(Several(watches))));
                    }
                    ObjectKind::ExternalModelProvider => stores.push((
                        kind,
                        watch::<kthena_api::externalmodelprovider::ExternalModelProvider>(
                            nsapi(&client, &ns),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::ExternalModelProvider(Box::new(o)),
                        ),
                    )),
                    ObjectKind::InferencePool => stores.push((
                        kind,
                        watch::<v1::InferencePool>(nsapi(&client, &ns), kind, cfg(), &me, |o| {
                            Object::InferencePool(Box::new(o))
                        }),
                    )),
                    ObjectKind::InferencePoolV1alpha2 => stores.push((
                        kind,
                        watch::<v1alpha2::InferencePool>(
                            nsapi(&client, &ns),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::InferencePoolV1alpha2(Box::new(o)),
                        ),
                    )),
                    ObjectKind::InferenceModel => stores.push((
                        kind,
                        watch::<v1alpha2::InferenceModel>(
                            nsapi(&client, &ns),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::InferenceModel(Box::new(o)),
                        ),
                    )),
                    ObjectKind::InferenceObjective => stores.push((
                        kind,
                        watch::<v1alpha2::InferenceObjective>(
                            nsapi(&client, &ns),
                            kind,
                            cfg(),
                            &me,
                            |o| Object::InferenceObjective(Box::new(o)),
                        ),
                    )),
                }
            }
            tracing::info!(kinds = ?kinds, namespace = ns.as_deref().unwrap_or("(all)"), "watching the API server");
            KubeSource {
                index,
                stores,
                services,
                dirty: kinds.iter().map(|k| (*k, None)).collect(),
                pending: kinds.into_iter().collect(),
                scheduled: None,
                combined: Combined::new(options.gateway.clone()),
                options,
            }
        })
    }

    fn schedule(&mut self, ctx: &mut Context<Self>) {
        if !self.pending.is_empty() || self.dirty.is_empty() || self.scheduled.is_some() {
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

    /// Applies the changes of the kinds changed since the last build.
    fn build(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        let gw = &self.options.gateway;
        let changes: Vec<Change> = self
            .stores
            .iter_mut()
            .filter_map(|(kind, s)| dirty.get(kind).map(|named| s.changes(gw, named.as_ref())))
            .flatten()
            .collect();
        let count = changes.len();
        let (mut config, problems) = self.combined.apply(changes);
        for p in &problems {
            tracing::warn!(problem = %p, "object not served");
        }
        if self.options.gateway.enabled {
            let addresses = self.service_addresses();
            if !addresses.is_empty() {
                config.addresses = Arc::new(addresses);
            }
        }
        tracing::info!(
            changed = count,
            modelroutes = config.routes.len(),
            modelservers = config.servers.len(),
            pods = config.pods.len(),
            invalid = config.invalid.len(),
            "configuration updated from the API server"
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
    kind: ObjectKind,
    cfg: watcher::Config,
    me: &Addr<KubeSource>,
    wrap: fn(K) -> Object,
) -> Box<dyn Objects>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + std::hash::Hash + Eq + Clone + Send + Sync,
{
    watch_reduced(api, kind, cfg, me, wrap, |_| {})
}

/// [`watch`], each object passed through `reduce` before it is stored.
fn watch_reduced<K>(
    api: Api<K>,
    kind: ObjectKind,
    cfg: watcher::Config,
    me: &Addr<KubeSource>,
    wrap: fn(K) -> Object,
    reduce: fn(&mut K),
) -> Box<dyn Objects>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + std::hash::Hash + Eq + Clone + Send + Sync,
{
    let (store, writer) = reflector::store::<K>();
    spawn_watch_reduced(api, kind, cfg, writer, me.clone(), reduce);
    Box::new(Typed::new(store, wrap))
}

fn spawn_watch<K>(
    api: Api<K>,
    kind: ObjectKind,
    cfg: watcher::Config,
    writer: reflector::store::Writer<K>,
    me: Addr<KubeSource>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + std::hash::Hash + Eq + Clone + Send + Sync,
{
    spawn_watch_reduced(api, kind, cfg, writer, me, |_| {});
}

/// [`spawn_watch`], each object passed through `reduce` before it is stored.
fn spawn_watch_reduced<K>(
    api: Api<K>,
    kind: ObjectKind,
    cfg: watcher::Config,
    writer: reflector::store::Writer<K>,
    me: Addr<KubeSource>,
    reduce: fn(&mut K),
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + std::hash::Hash + Eq + Clone + Send + Sync,
{
    // On the control runtime: decoding watch events never holds up the actors.
    crate::control::runtime().spawn(async move {
        let stream = watcher(api, cfg)
            .default_backoff()
            .modify(reduce)
            .reflect(writer);
        let mut stream = std::pin::pin!(stream);
        let mut absent = false;
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::InitDone) => {
                    if absent {
                        tracing::info!(kind = ?kind, "CRD installed: watching");
                        absent = false;
                    }
                    me.do_send(Event::Synced(kind));
                    me.do_send(Event::Changed(kind, None));
                }
                Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => {
                    let meta = o.meta();
                    let named = (meta.namespace.clone(), meta.name.clone().unwrap_or_default());
                    me.do_send(Event::Changed(kind, Some(named)));
                }
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Err(watcher::Error::InitialListFailed(kube::Error::Api(s))) if s.code == 404 => {
                    if !absent {
                        tracing::warn!(kind = ?kind,
                            "the CRD of this kind is not installed: serving without it, retrying with backoff"
                        );
                        absent = true;
                    }
                    me.do_send(Event::Synced(kind));
                }
                Err(e) => tracing::warn!(kind = ?kind, error = %e, "watch failed: retrying with backoff"),
            }
        }
        tracing::error!(kind = ?kind, "watch stream ended");
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
                if self.pending.remove(&kind) && self.pending.is_empty() {
                    tracing::info!("every initial list done");
                }
            }
            Event::Changed(kind, named) => {
                tracing::trace!(kind = ?kind, ?named, "changed");
                let entry = self
                    .dirty
                    .entry(kind)
                    .or_insert_with(|| Some(BTreeSet::new()));
                match (entry, named) {
                    (Some(set), Some(n)) => {
                        set.insert(n);
                    }
                    (entry, _) => *entry = None,
                }
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
        let gw = GatewayOptions::default();
        writer.apply_watcher_event(&watcher::Event::Apply(server("1")));
        let first = typed.changes(&gw, None);
        let Some(Change::Upsert(converted)) = first.first() else {
            panic!("a new object is an upsert: {first:?}");
        };
        assert_eq!(first.len(), 1);
        assert!(
            typed.changes(&gw, None).is_empty(),
            "same version: no change"
        );
        writer.apply_watcher_event(&watcher::Event::Apply(server("2")));
        let changed = typed.changes(&gw, None);
        match changed.as_slice() {
            [Change::Upsert(c)] => assert!(!Arc::ptr_eq(c, converted), "converted again"),
            other => panic!("one upsert expected: {other:?}"),
        }
        writer.apply_watcher_event(&watcher::Event::Delete(server("2")));
        match typed.changes(&gw, None).as_slice() {
            [Change::Delete(k)] => assert_eq!(Some(k), converted.key().as_ref()),
            other => panic!("one delete expected: {other:?}"),
        }
        assert!(typed.cache.is_empty(), "a deleted object is forgotten");
    }

    #[test]
    fn a_named_change_looks_at_that_object_only() {
        let (store, mut writer) = reflector::store::<ModelServer>();
        let mut typed = Typed::new(store, |o| Object::ModelServer(Box::new(o)));
        let gw = GatewayOptions::default();
        writer.apply_watcher_event(&watcher::Event::Apply(server("1")));
        assert_eq!(typed.changes(&gw, None).len(), 1);
        writer.apply_watcher_event(&watcher::Event::Apply(server("2")));
        let other: BTreeSet<Named> = [(Some("team".to_owned()), "other".to_owned())].into();
        assert!(
            typed.changes(&gw, Some(&other)).is_empty(),
            "not named: not looked at"
        );
        let this: BTreeSet<Named> = [(Some("team".to_owned()), "s".to_owned())].into();
        assert!(matches!(
            typed.changes(&gw, Some(&this)).as_slice(),
            [Change::Upsert(_)]
        ));
        writer.apply_watcher_event(&watcher::Event::Delete(server("2")));
        assert!(matches!(
            typed.changes(&gw, Some(&this)).as_slice(),
            [Change::Delete(_)]
        ));
    }
}
