//! Objects -> [`Config`]s: the step both sources share (the manifest folder and the
//! Kubernetes watchers), through the one api -> core conversion.
//!
//! Every object is converted on its own, once ([`Converted::new`]); the sources keep the
//! conversions and reconvert an object only when it changes (a changed file, a new
//! `resourceVersion`). A source hands only the objects that changed to its [`Combined`]
//! ([`Change`]: upsert or delete, per object), which keeps the configuration between changes
//! and says what changed ([`Config::changes`]), so one change costs its objects, whatever the
//! size of the configuration. An object that does not convert is left out and reported as a
//! [`Problem`] (with its field paths); its status says why, and the folder source lets its
//! last valid version stand in.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kthena_api::convert;
use kthena_api::inference::v1alpha2;
use kthena_api::manifest::Object;
use kthena_api::modelroute::ModelRoute;
use kthena_api::modelserver::ModelServer;
use kthena_core::{FieldErrors, ObjectRef, Route};

use super::{Config, DEFAULT_CLASS_NAME, GatewayOptions, SecretData, TlsSecret};
use crate::pool::PodInfo;
use crate::state::{DumpedPool, Invalid, ObjectKind};

/// An object that was left out.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Where it came from (file, or `apiserver`).
    pub origin: String,
    /// Its kind.
    pub kind: ObjectKind,
    /// The object.
    pub id: ObjectRef,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// What is wrong, each with its field path.
    pub errors: FieldErrors,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = &self.origin;
        let kind = self.kind.name();
        let id = &self.id;
        let mut first = true;
        for e in self.errors.as_slice() {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{origin}: {kind} {id}: {e}")?;
        }
        Ok(())
    }
}

/// One object converted on its own, once: what it adds to a configuration (or why it cannot
/// be served), and the object itself for the debug dump. A source keeps these and reconverts
/// an object only when it changes; [`Combined`] builds configurations from them without
/// converting anything again.
#[derive(Debug, Clone)]
pub struct Converted {
    /// Where it came from (file and document, or `apiserver`).
    pub origin: String,
    part: Part,
}

/// Identity of an object that takes part in duplicate detection and status.
#[derive(Debug, Clone)]
struct Tracked {
    kind: ObjectKind,
    id: ObjectRef,
    generation: Option<i64>,
    /// Why it is left out, when it is.
    errors: Option<FieldErrors>,
}

#[derive(Debug, Clone)]
enum Part {
    ModelRoute {
        tracked: Tracked,
        route: Option<Arc<Route>>,
        parent_refs: ParentRefsOf,
        object: Arc<ModelRoute>,
    },
    ModelServer {
        tracked: Tracked,
        server: Option<Arc<kthena_core::ModelServer>>,
        object: Arc<ModelServer>,
    },
    Pod {
        tracked: Tracked,
        info: Arc<PodInfo>,
        object: Arc<Pod>,
    },
    Service {
        tracked: Tracked,
        service: Option<kthena_core::Service>,
    },
    Namespace {
        name: String,
        labels: std::collections::BTreeMap<String, String>,
    },
    /// A GatewayClass with our controllerName.
    OurClass {
        tracked: Tracked,
        name: String,
    },
    Gateway {
        tracked: Tracked,
        gateway: Option<kthena_core::Gateway>,
        object: Arc<gateway_api::apis::standard::gateways::Gateway>,
    },
    HttpRoute {
        tracked: Tracked,
        route: Option<kthena_core::gateway::ParentedHttpRoute>,
        parent_refs: ParentRefsOf,
        object: Arc<gateway_api::apis::standard::httproutes::HttpRoute>,
    },
    ReferenceGrant(kthena_core::reference_grant::ReferenceGrant),
    /// A Secret: its TLS pair (gateway mode), its values (provider credentials) and, when
    /// labelled as one, its API key (hashed; the key itself is not kept).
    Secret(
        ObjectRef,
        Option<TlsSecret>,
        Option<SecretData>,
        Option<crate::auth::ApiKeyEntry>,
    ),
    Provider {
        tracked: Tracked,
        provider: Option<Arc<kthena_core::ExternalProvider>>,
        object: Arc<kthena_api::externalmodelprovider::ExternalModelProvider>,
    },
    InferencePool {
        tracked: Tracked,
        pool: Option<kthena_core::InferencePool>,
        object: DumpedPool,
    },
    InferenceModel {
        tracked: Tracked,
        model: Option<kthena_core::InferenceModel>,
        object: Arc<v1alpha2::InferenceModel>,
    },
    InferenceObjective {
        tracked: Tracked,
        objective: Option<kthena_core::InferenceObjective>,
        object: Arc<v1alpha2::InferenceObjective>,
    },
    /// A kind not used with these flags (or not at all).
    Ignored(String),
}

type ParentRefsOf = Arc<Vec<(kthena_core::ParentRef, serde_json::Value)>>;

fn tracked<T>(
    kind: ObjectKind,
    id: ObjectRef,
    generation: Option<i64>,
    result: Result<T, FieldErrors>,
) -> (Tracked, Option<T>) {
    let (value, errors) = match result {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    (
        Tracked {
            kind,
            id,
            generation,
            errors,
        },
        value,
    )
}

impl Converted {
    /// Converts one object through the one api -> core conversion.
    ///
    /// Gateway API kinds are read only with `gw.enabled`, Inference Extension kinds only with
    /// `gw.inference_extension` too; other kinds are kept as ignored.
    pub fn new(origin: String, object: Object, gw: &GatewayOptions) -> Self {
        let inference = gw.enabled && gw.inference_extension;
        let part = match object {
            Object::ModelRoute(mr) => {
                let id = convert::object_ref(mr.as_ref());
                let parent_refs = spec_parent_refs(&mr.spec.parent_refs, &id);
                let (tracked, route) = tracked(
                    ObjectKind::ModelRoute,
                    id,
                    convert::generation(mr.as_ref()),
                    convert::model_route(&mr),
                );
                Part::ModelRoute {
                    tracked,
                    route: route.map(Arc::new),
                    parent_refs: Arc::new(parent_refs),
                    object: Arc::from(mr),
                }
            }
            Object::ModelServer(ms) => {
                let (tracked, server) = tracked(
                    ObjectKind::ModelServer,
                    convert::object_ref(ms.as_ref()),
                    convert::generation(ms.as_ref()),
                    convert::model_server(&ms),
                );
                Part::ModelServer {
                    tracked,
                    server: server.map(Arc::new),
                    object: Arc::from(ms),
                }
            }
            Object::Pod(pod) => {
                let info = convert::pod(&pod);
                let (tracked, _) = tracked(ObjectKind::Pod, info.id.clone(), None, Ok(()));
                Part::Pod {
                    tracked,
                    info: Arc::new(info),
                    object: Arc::from(pod),
                }
            }
            Object::Service(svc) => {
                let (tracked, service) = tracked(
                    ObjectKind::Service,
                    convert::object_ref(svc.as_ref()),
                    None,
                    convert::service(&svc),
                );
                Part::Service { tracked, service }
            }
            Object::Namespace(ns) => {
                let (name, labels) = convert::namespace(&ns);
                Part::Namespace { name, labels }
            }
            Object::GatewayClass(c) if gw.enabled => {
                match convert::our_gateway_class(&c, &gw.controller_name) {
                    Some(name) => {
                        let (tracked, _) = tracked(
                            ObjectKind::GatewayClass,
                            ObjectRef::new("", name.clone()),
                            convert::generation(c.as_ref()),
                            Ok(()),
                        );
                        Part::OurClass { tracked, name }
                    }
                    None => Part::Ignored("GatewayClass of another controller".to_owned()),
                }
            }
            Object::Gateway(g) if gw.enabled => {
                let (tracked, gateway) = tracked(
                    ObjectKind::Gateway,
                    convert::object_ref(g.as_ref()),
                    convert::generation(g.as_ref()),
                    convert::gateway(&g),
                );
                Part::Gateway {
                    tracked,
                    gateway,
                    object: Arc::from(g),
                }
            }
            Object::HttpRoute(r) if gw.enabled => {
                let id = convert::object_ref(r.as_ref());
                let refs = r.spec.parent_refs.as_deref().unwrap_or_default();
                // Kept for an invalid route too: its status is written per parent.
                let parent_refs = spec_parent_refs(refs, &id);
                let result = convert::http_route::http_route(&r).map(|route| {
                    let parents = convert::gateway_parents(refs, &id);
                    kthena_core::gateway::ParentedHttpRoute { route, parents }
                });
                let (tracked, route) = tracked(
                    ObjectKind::HttpRoute,
                    id,
                    convert::generation(r.as_ref()),
                    result,
                );
                Part::HttpRoute {
                    tracked,
                    route,
                    parent_refs: Arc::new(parent_refs),
                    object: Arc::from(r),
                }
            }
            Object::ReferenceGrant(g) if gw.enabled => {
                Part::ReferenceGrant(convert::reference_grant(&g))
            }
            Object::Secret(secret) => {
                let tls = if gw.enabled {
                    convert::tls_secret(&secret)
                } else {
                    None
                };
                let id = convert::object_ref(secret.as_ref());
                let raw = convert::secret_data(&secret);
                let api_key = crate::auth::is_api_key(&secret)
                    .then(|| crate::auth::ApiKeyEntry::from_secret(&id, raw.as_ref()));
                // An API-key Secret's values are hashed above, never kept, unless it is also a
                // provider's credential.
                let keep = api_key.is_none() || crate::auth::is_credential(&secret);
                let data = raw.filter(|_| keep).map(|d| SecretData(Arc::new(d)));
                if tls.is_none() && data.is_none() && api_key.is_none() {
                    Part::Ignored("Secret without data".to_owned())
                } else {
                    Part::Secret(id, tls, data, api_key)
                }
            }
            Object::ExternalModelProvider(p) => {
                let (tracked, provider) = tracked(
                    ObjectKind::ExternalModelProvider,
                    convert::object_ref(p.as_ref()),
                    convert::generation(p.as_ref()),
                    convert::external_provider(&p),
                );
                Part::Provider {
                    tracked,
                    provider: provider.map(Arc::new),
                    object: Arc::from(p),
                }
            }
            Object::InferencePool(p) if inference => {
                let (tracked, pool) = tracked(
                    ObjectKind::InferencePool,
                    convert::object_ref(p.as_ref()),
                    convert::generation(p.as_ref()),
                    convert::inference_pool_v1(&p),
                );
                Part::InferencePool {
                    tracked,
                    pool,
                    object: DumpedPool::V1(Arc::from(p)),
                }
            }
            Object::InferencePoolV1alpha2(p) if inference => {
                let (tracked, pool) = tracked(
                    ObjectKind::InferencePoolV1alpha2,
                    convert::object_ref(p.as_ref()),
                    convert::generation(p.as_ref()),
                    convert::inference_pool_v1alpha2(&p),
                );
                Part::InferencePool {
                    tracked,
                    pool,
                    object: DumpedPool::V1alpha2(Arc::from(p)),
                }
            }
            Object::InferenceModel(m) if inference => {
                let (tracked, model) = tracked(
                    ObjectKind::InferenceModel,
                    convert::object_ref(m.as_ref()),
                    convert::generation(m.as_ref()),
                    convert::inference_model(&m),
                );
                Part::InferenceModel {
                    tracked,
                    model,
                    object: Arc::from(m),
                }
            }
            Object::InferenceObjective(o) if inference => {
                let (tracked, objective) = tracked(
                    ObjectKind::InferenceObjective,
                    convert::object_ref(o.as_ref()),
                    convert::generation(o.as_ref()),
                    convert::inference_objective(&o),
                );
                Part::InferenceObjective {
                    tracked,
                    objective,
                    object: Arc::from(o),
                }
            }
            Object::Other { api_version, kind } => Part::Ignored(format!("{api_version}/{kind}")),
            other => Part::Ignored(other.kind().map_or("other", ObjectKind::name).to_owned()),
        };
        Self { origin, part }
    }

    fn tracked(&self) -> Option<&Tracked> {
        match &self.part {
            Part::ModelRoute { tracked, .. }
            | Part::ModelServer { tracked, .. }
            | Part::Pod { tracked, .. }
            | Part::Service { tracked, .. }
            | Part::OurClass { tracked, .. }
            | Part::Gateway { tracked, .. }
            | Part::HttpRoute { tracked, .. }
            | Part::InferencePool { tracked, .. }
            | Part::InferenceModel { tracked, .. }
            | Part::InferenceObjective { tracked, .. }
            | Part::Provider { tracked, .. } => Some(tracked),
            Part::Namespace { .. }
            | Part::ReferenceGrant(_)
            | Part::Secret(..)
            | Part::Ignored(_) => None,
        }
    }

    /// True when the conversion refused the object (it is left out, or a stand-in serves).
    pub fn is_refused(&self) -> bool {
        self.tracked().is_some_and(|t| t.errors.is_some())
    }

    /// Why the conversion refused the object, when it did.
    pub fn problem(&self) -> Option<Problem> {
        let t = self.tracked()?;
        Some(Problem {
            origin: self.origin.clone(),
            kind: t.kind,
            id: t.id.clone(),
            generation: t.generation,
            errors: t.errors.clone()?,
        })
    }

    /// The same object, reported as coming from `origin`.
    pub fn with_origin(&self, origin: String) -> Self {
        Self {
            origin,
            part: self.part.clone(),
        }
    }
}

/// Converts `objects` (each with its origin) into a configuration and the problems found:
/// [`Converted::new`] for each, then one [`Combined::apply`]. An object defined twice is
/// reported and the first one wins.
pub fn assemble(
    objects: impl IntoIterator<Item = (String, Object)>,
    gw: &GatewayOptions,
) -> (Config, Vec<Problem>) {
    let mut combined = Combined::new(gw.clone());
    let mut seen = std::collections::HashSet::new();
    let mut problems = Vec::new();
    let mut changes = Vec::new();
    for (origin, o) in objects {
        let c = Arc::new(Converted::new(origin, o, gw));
        if let Some(key) = c.key()
            && !seen.insert(key)
        {
            problems.extend(c.duplicate());
            continue;
        }
        changes.push(Change::Upsert(c));
    }
    let (config, found) = combined.apply(changes);
    problems.extend(found);
    (config, problems)
}

/// Which entry of a configuration an object is: its kind and its identity after conversion
/// (an absent namespace is `default`), so two documents naming one object have one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    slot: Slot,
    id: ObjectRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Slot {
    Kind(ObjectKind),
    Namespace,
    ReferenceGrant,
    Secret,
}

impl Converted {
    /// The configuration entry this object is; `None` for an ignored one, which is no entry.
    pub fn key(&self) -> Option<Key> {
        let (slot, id) = match &self.part {
            Part::Namespace { name, .. } => (Slot::Namespace, ObjectRef::new("", name.clone())),
            Part::ReferenceGrant(g) => (Slot::ReferenceGrant, g.id.clone()),
            Part::Secret(id, ..) => (Slot::Secret, id.clone()),
            Part::Ignored(_) => return None,
            _ => {
                let t = self.tracked().expect("every other part is tracked");
                (Slot::Kind(t.kind), t.id.clone())
            }
        };
        Some(Key { slot, id })
    }

    /// This object reported as a second definition of an object already defined.
    pub fn duplicate(&self) -> Option<Problem> {
        let t = self.tracked()?;
        let mut errors = FieldErrors::new();
        errors.push("metadata.name", "defined more than once");
        Some(Problem {
            origin: self.origin.clone(),
            kind: t.kind,
            id: t.id.clone(),
            generation: t.generation,
            errors,
        })
    }

    /// True for the kinds [`Combined`] keeps in persistent maps (ModelRoute, ModelServer,
    /// Pod); every other kind is recombined with its kind when one of them changes.
    fn is_hot(&self) -> bool {
        matches!(
            self.part,
            Part::ModelRoute { .. } | Part::ModelServer { .. } | Part::Pod { .. }
        )
    }
}

/// One change of a source's objects.
#[derive(Debug, Clone)]
pub enum Change {
    /// The object is new or changed (its [`Converted::key`] says which entry).
    Upsert(Arc<Converted>),
    /// The object is gone.
    Delete(Key),
}

/// The objects in force of one source and the configuration built from them, kept between
/// changes: [`Combined::apply`] costs the objects that changed, not the configuration.
///
/// ModelRoutes, ModelServers and Pods (the kinds that number in thousands) live in
/// persistent maps updated per object; every other kind is recombined (our GatewayClasses,
/// the implicit default Gateway, ReferenceGrants over HTTPRoutes) when one of its objects
/// changes, and shared unchanged otherwise.
#[derive(Debug)]
pub struct Combined {
    gw: GatewayOptions,
    /// Every other kind's objects in force.
    others: std::collections::BTreeMap<Key, Arc<Converted>>,
    /// The many-object kinds, by key.
    hot: HashMap<Key, Arc<Converted>>,
    /// The per-object map entries of the other kinds (replaced when they are recombined).
    other_entries: Vec<(ObjectKind, ObjectRef)>,
    config: Config,
}

type HashMap<K, V> = std::collections::HashMap<K, V>;

impl Combined {
    /// Nothing in force yet.
    pub fn new(gw: GatewayOptions) -> Self {
        let mut c = Self {
            gw,
            others: Default::default(),
            hot: HashMap::new(),
            other_entries: Vec::new(),
            config: Config::default(),
        };
        c.recombine_others();
        c
    }

    /// Applies `changes` (in order; a later change of one key wins) and returns the
    /// configuration in force, with [`Config::changes`] saying what changed since the
    /// previous one, and the problems of the objects changed (each refused object).
    pub fn apply(&mut self, changes: impl IntoIterator<Item = Change>) -> (Config, Vec<Problem>) {
        let mut problems = Vec::new();
        let mut others_changed = false;
        // Net effect per key: the first `before` and the last `after`.
        let mut routes: HashMap<ObjectRef, kthena_core::table::RouteChange> = HashMap::new();
        let mut servers: HashMap<ObjectRef, super::ServerChange> = HashMap::new();
        let mut pods: HashMap<ObjectRef, crate::pool::PodChange> = HashMap::new();
        let mut objects = BTreeSet::new();
        for change in changes {
            let (key, after) = match change {
                Change::Upsert(c) => match c.key() {
                    Some(k) => (k, Some(c)),
                    None => {
                        if let Part::Ignored(kind) = &c.part {
                            tracing::debug!(origin = %c.origin, kind = %kind, "object of a kind not used with these flags ignored");
                        }
                        continue;
                    }
                },
                Change::Delete(k) => (k, None),
            };
            if let Some(p) = after.as_ref().and_then(|c| c.problem()) {
                problems.push(p);
            }
            let hot = after
                .as_ref()
                .map_or(self.hot.contains_key(&key), |c| c.is_hot());
            if !hot {
                let before = match &after {
                    Some(c) => self.others.insert(key, c.clone()),
                    None => self.others.remove(&key),
                };
                others_changed |= !same(before.as_ref(), after.as_ref());
                continue;
            }
            let before = match &after {
                Some(c) => self.hot.insert(key, c.clone()),
                None => self.hot.remove(&key),
            };
            if same(before.as_ref(), after.as_ref()) {
                continue;
            }
            if let Some(b) = &before {
                self.remove_hot(b);
            }
            if let Some(a) = &after {
                self.insert_hot(a);
            }
            let id = key_id(&before, &after);
            let kind = after
                .as_ref()
                .or(before.as_ref())
                .and_then(|c| c.tracked())
                .expect("hot kinds are tracked")
                .kind;
            if kind != ObjectKind::Pod {
                objects.insert((kind, id.clone()));
            }
            let (b, a) = (part(&before), part(&after));
            match (b.or(a), a.or(b)) {
                (Some(Part::ModelRoute { .. }), Some(Part::ModelRoute { .. })) => {
                    record(
                        &mut routes,
                        id,
                        b.and_then(Part::route),
                        a.and_then(Part::route),
                    );
                }
                (Some(Part::ModelServer { .. }), Some(Part::ModelServer { .. })) => {
                    record(
                        &mut servers,
                        id,
                        b.and_then(Part::server),
                        a.and_then(Part::server),
                    );
                }
                (Some(Part::Pod { .. }), Some(Part::Pod { .. })) => {
                    record(&mut pods, id, b.and_then(Part::pod), a.and_then(Part::pod));
                }
                _ => unreachable!("one key is one kind"),
            }
        }
        if others_changed {
            self.recombine_others();
        }
        let mut config = self.config.clone();
        config.changes = super::Changes {
            routes: routes.into_values().filter(changed).collect(),
            servers: servers.into_values().filter(changed).collect(),
            pods: pods.into_values().filter(changed).collect(),
            objects: objects.into_iter().collect(),
            others: others_changed,
        };
        (config, problems)
    }

    fn insert_hot(&mut self, c: &Converted) {
        let config = &mut self.config;
        let t = c.tracked().expect("hot kinds are tracked");
        let key = t.track(config);
        match &c.part {
            Part::ModelRoute {
                route,
                parent_refs,
                object,
                ..
            } => {
                // Absent is empty: most ModelRoutes have no parentRefs.
                if !parent_refs.is_empty() {
                    config.parent_refs.insert(key, parent_refs.clone());
                }
                if let Some(r) = route {
                    config.route_refs.insert(r);
                    config.routes.insert(t.id.clone(), r.clone());
                }
                config
                    .dump
                    .modelroutes
                    .0
                    .insert(t.id.clone(), object.clone());
            }
            Part::ModelServer { server, object, .. } => {
                if let Some(s) = server {
                    config.servers.insert(t.id.clone(), s.clone());
                }
                config
                    .dump
                    .modelservers
                    .0
                    .insert(t.id.clone(), object.clone());
            }
            Part::Pod { info, object, .. } => {
                config.pods.insert(t.id.clone(), info.clone());
                config.dump.pods.0.insert(t.id.clone(), object.clone());
            }
            _ => unreachable!("only hot kinds"),
        }
    }

    fn remove_hot(&mut self, c: &Converted) {
        let config = &mut self.config;
        let t = c.tracked().expect("hot kinds are tracked");
        let key = (t.kind, t.id.clone());
        config.generations.remove(&key);
        config.invalid.remove(&key);
        config.parent_refs.remove(&key);
        match &c.part {
            Part::ModelRoute { route, .. } => {
                if let Some(r) = route {
                    config.route_refs.remove(r);
                }
                config.routes.remove(&t.id);
                config.dump.modelroutes.0.remove(&t.id);
            }
            Part::ModelServer { .. } => {
                config.servers.remove(&t.id);
                config.dump.modelservers.0.remove(&t.id);
            }
            Part::Pod { .. } => {
                config.pods.remove(&t.id);
                config.dump.pods.0.remove(&t.id);
            }
            _ => unreachable!("only hot kinds"),
        }
    }

    /// Rebuilds every part of the configuration made of the other kinds, and their entries
    /// in the per-object maps; the cross-object steps (our GatewayClasses, the implicit
    /// default Gateway, ReferenceGrants) run over the converted values.
    fn recombine_others(&mut self) {
        let gw = &self.gw;
        let config = &mut self.config;
        let mut our_classes: BTreeSet<String> = [DEFAULT_CLASS_NAME.to_owned()].into();
        let mut gateway_classes = Vec::new();
        let mut gateways = Vec::new();
        let mut grants = Vec::new();
        let mut pools = Vec::new();
        let mut http_routes = Vec::new();
        let mut inference_models = Vec::new();
        let mut objectives = Vec::new();
        let mut services = Vec::new();
        let mut namespaces = kthena_core::gateway::Namespaces::default();
        let mut tls_secrets = std::collections::HashMap::new();
        let mut credentials = std::collections::HashMap::new();
        let mut api_keys = Vec::new();
        let mut providers = Vec::new();
        let mut dump_providers = Vec::new();
        let mut dump_gateways = Vec::new();
        let mut dump_httproutes = Vec::new();
        let mut dump_pools = Vec::new();
        let mut dump_models = Vec::new();
        let mut dump_objectives = Vec::new();
        // Their per-object entries are rebuilt below.
        for key in self.other_entries.drain(..) {
            config.generations.remove(&key);
            config.parent_refs.remove(&key);
            config.invalid.remove(&key);
        }
        for c in self.others.values() {
            if let Some(t) = c.tracked() {
                self.other_entries.push(t.track(config));
            }
            match &c.part {
                Part::Service { service, .. } => services.extend(service.clone()),
                Part::Namespace { name, labels } => namespaces.insert(name.clone(), labels.clone()),
                Part::OurClass { name, .. } => {
                    our_classes.insert(name.clone());
                    gateway_classes.push(name.clone());
                }
                Part::Gateway {
                    gateway, object, ..
                } => {
                    dump_gateways.push(object.clone());
                    gateways.extend(gateway.clone());
                }
                Part::HttpRoute {
                    tracked,
                    route,
                    parent_refs,
                    object,
                } => {
                    dump_httproutes.push(object.clone());
                    config.parent_refs.insert(
                        (ObjectKind::HttpRoute, tracked.id.clone()),
                        parent_refs.clone(),
                    );
                    http_routes.extend(route.clone());
                }
                Part::ReferenceGrant(g) => grants.push(g.clone()),
                Part::Secret(id, tls, data, api_key) => {
                    if let Some(tls) = tls {
                        tls_secrets.insert(id.clone(), tls.clone());
                    }
                    if let Some(data) = data {
                        credentials.insert(id.clone(), data.clone());
                    }
                    if let Some(entry) = api_key {
                        api_keys.push(entry.clone());
                    }
                }
                Part::Provider {
                    provider, object, ..
                } => {
                    dump_providers.push(object.clone());
                    providers.extend(provider.clone());
                }
                Part::InferencePool { pool, object, .. } => {
                    dump_pools.push(object.clone());
                    pools.extend(pool.clone());
                }
                Part::InferenceModel { model, object, .. } => {
                    dump_models.push(object.clone());
                    inference_models.extend(model.clone());
                }
                Part::InferenceObjective {
                    objective, object, ..
                } => {
                    dump_objectives.push(object.clone());
                    objectives.extend(objective.clone());
                }
                Part::ModelRoute { .. }
                | Part::ModelServer { .. }
                | Part::Pod { .. }
                | Part::Ignored(_) => {}
            }
        }
        let grants = kthena_core::ReferenceGrants::new(grants);
        if gw.enabled {
            gateways.retain(|g| our_classes.contains(&g.class_name));
            let default = gw.default_gateway();
            if !gateways.iter().any(|g| g.id == default.id) {
                gateways.push(default);
            }
            for r in &mut http_routes {
                r.route.refuse_unpermitted(&grants);
            }
        }
        config.gateways = Arc::new(gateways);
        config.gateway_classes = Arc::new(gateway_classes);
        config.grants = Arc::new(grants);
        config.pools = Arc::new(pools);
        config.http_routes = Arc::new(http_routes);
        config.inference_models = Arc::new(inference_models);
        config.objectives = Arc::new(objectives);
        config.services = Arc::new(services);
        config.namespaces = Arc::new(namespaces);
        config.tls_secrets = Arc::new(tls_secrets);
        config.credentials = Arc::new(credentials);
        config.api_keys = Arc::new(crate::auth::ApiKeys::new(api_keys));
        config.providers = Arc::new(providers);
        config.dump.externalmodelproviders = Arc::new(dump_providers);
        config.dump.gateways = Arc::new(dump_gateways);
        config.dump.httproutes = Arc::new(dump_httproutes);
        config.dump.inferencepools = Arc::new(dump_pools);
        config.dump.inferencemodels = Arc::new(dump_models);
        config.dump.inferenceobjectives = Arc::new(dump_objectives);
        config.addresses = Arc::new(gw.addresses.clone());
        config.inference_extension = gw.enabled && gw.inference_extension;
        config.controller_name = gw.controller_name.clone();
    }
}

impl Part {
    fn route(&self) -> Option<Arc<Route>> {
        match self {
            Part::ModelRoute { route, .. } => route.clone(),
            _ => None,
        }
    }

    fn server(&self) -> Option<Arc<kthena_core::ModelServer>> {
        match self {
            Part::ModelServer { server, .. } => server.clone(),
            _ => None,
        }
    }

    fn pod(&self) -> Option<Arc<PodInfo>> {
        match self {
            Part::Pod { info, .. } => Some(info.clone()),
            _ => None,
        }
    }
}

/// One object as it was and as it is.
type BeforeAfter<T> = (Option<Arc<T>>, Option<Arc<T>>);

/// Records one object's change in `changes`: the first `before` seen for it and this `after`.
fn record<T>(
    changes: &mut HashMap<ObjectRef, BeforeAfter<T>>,
    id: ObjectRef,
    before: Option<Arc<T>>,
    after: Option<Arc<T>>,
) {
    changes.entry(id).or_insert((before, None)).1 = after;
}

fn part(c: &Option<Arc<Converted>>) -> Option<&Part> {
    c.as_ref().map(|c| &c.part)
}

/// True unless `before` and `after` are one allocation (or both absent).
fn changed<T>((before, after): &(Option<Arc<T>>, Option<Arc<T>>)) -> bool {
    match (before, after) {
        (Some(b), Some(a)) => !Arc::ptr_eq(b, a),
        (None, None) => false,
        _ => true,
    }
}

impl Tracked {
    /// Enters this object's generation and, when it is refused, its problems in `config`;
    /// returns its key there.
    fn track(&self, config: &mut Config) -> (ObjectKind, ObjectRef) {
        let key = (self.kind, self.id.clone());
        if let Some(g) = self.generation {
            config.generations.insert(key.clone(), g);
        }
        if let Some(errors) = &self.errors {
            config.invalid.insert(
                key.clone(),
                Invalid {
                    kind: self.kind,
                    id: self.id.clone(),
                    generation: self.generation,
                    errors: errors.clone(),
                },
            );
        }
        key
    }
}

/// The same conversion (one allocation), or both absent.
fn same(a: Option<&Arc<Converted>>, b: Option<&Arc<Converted>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// The object `before` or `after` is (they are one key).
fn key_id(before: &Option<Arc<Converted>>, after: &Option<Arc<Converted>>) -> ObjectRef {
    let c = after
        .as_ref()
        .or(before.as_ref())
        .expect("a change has a side");
    c.tracked().expect("hot kinds are tracked").id.clone()
}

impl From<&Problem> for Invalid {
    fn from(p: &Problem) -> Self {
        Invalid {
            kind: p.kind,
            id: p.id.clone(),
            generation: p.generation,
            errors: p.errors.clone(),
        }
    }
}

/// Each Gateway parentRef converted, with the spec's own text, which status repeats.
fn spec_parent_refs(
    refs: &[kthena_api::modelroute::ParentReference],
    id: &ObjectRef,
) -> Vec<(kthena_core::ParentRef, serde_json::Value)> {
    refs.iter()
        .filter_map(|p| {
            let one = convert::gateway_parents(std::slice::from_ref(p), id);
            one.into_iter().next().map(|c| (c, json(p)))
        })
        .collect()
}

fn json<T: serde::Serialize>(o: &T) -> serde_json::Value {
    serde_json::to_value(o).expect("API objects serialize to JSON")
}
