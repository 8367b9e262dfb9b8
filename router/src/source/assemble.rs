//! Objects -> one [`Config`]: the step both sources share (the manifest folder and the
//! Kubernetes watchers), through the one api -> core conversion.
//!
//! Every object is converted on its own, once ([`Converted::new`]); the sources keep the
//! conversions and reconvert an object only when it changes (a changed file, a new
//! `resourceVersion`). [`combine`] builds a configuration from converted objects. An object
//! that does not convert is left out and reported as a [`Problem`] (with its field paths);
//! its status says why, and the folder source lets its last valid version stand in.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kthena_api::convert;
use kthena_api::inference::v1alpha2;
use kthena_api::manifest::Object;
use kthena_api::modelroute::ModelRoute;
use kthena_api::modelserver::ModelServer;
use kthena_core::{FieldErrors, ObjectRef, Route};

use super::{Config, DEFAULT_CLASS_NAME, GatewayOptions, TlsSecret};
use crate::pool::PodInfo;
use crate::state::{DumpedPool, Invalid, StatusKind};

/// An object that was left out.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Where it came from (file, or `apiserver`).
    pub origin: String,
    /// Its kind.
    pub kind: StatusKind,
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
/// an object only when it changes; [`combine`] builds a configuration from them without
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
    kind: StatusKind,
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
    Secret(ObjectRef, TlsSecret),
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
    kind: StatusKind,
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
                    StatusKind::ModelRoute,
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
                    StatusKind::ModelServer,
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
                let info = PodInfo::from_pod(&pod);
                let (tracked, _) = tracked(StatusKind::Pod, info.id.clone(), None, Ok(()));
                Part::Pod {
                    tracked,
                    info: Arc::new(info),
                    object: Arc::from(pod),
                }
            }
            Object::Service(svc) => {
                let (tracked, service) = tracked(
                    StatusKind::Service,
                    convert::object_ref(svc.as_ref()),
                    None,
                    convert::service(&svc),
                );
                Part::Service { tracked, service }
            }
            Object::Namespace(ns) => Part::Namespace {
                name: ns.metadata.name.clone().unwrap_or_default(),
                labels: ns.metadata.labels.clone().unwrap_or_default(),
            },
            Object::GatewayClass(c) if gw.enabled => {
                let name = c.metadata.name.clone().unwrap_or_default();
                if c.spec.controller_name == gw.controller_name {
                    let (tracked, _) = tracked(
                        StatusKind::GatewayClass,
                        ObjectRef::new("", name.clone()),
                        convert::generation(c.as_ref()),
                        Ok(()),
                    );
                    Part::OurClass { tracked, name }
                } else {
                    Part::Ignored("GatewayClass of another controller".to_owned())
                }
            }
            Object::Gateway(g) if gw.enabled => {
                let (tracked, gateway) = tracked(
                    StatusKind::Gateway,
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
                    StatusKind::HttpRoute,
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
            Object::Secret(secret) if gw.enabled => {
                let id = convert::object_ref(secret.as_ref());
                let field = |k: &str| {
                    secret
                        .data
                        .as_ref()
                        .and_then(|d| d.get(k))
                        .map(|b| b.0.clone())
                        .or_else(|| {
                            secret
                                .string_data
                                .as_ref()
                                .and_then(|d| d.get(k))
                                .map(|s| s.clone().into_bytes())
                        })
                };
                match (field("tls.crt"), field("tls.key")) {
                    (Some(cert_pem), Some(key_pem)) => {
                        Part::Secret(id, TlsSecret { cert_pem, key_pem })
                    }
                    _ => Part::Ignored("Secret without tls.crt and tls.key".to_owned()),
                }
            }
            Object::InferencePool(p) if inference => {
                let (tracked, pool) = tracked(
                    StatusKind::InferencePool,
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
                    StatusKind::InferencePoolV1alpha2,
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
                    StatusKind::InferenceModel,
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
                    StatusKind::InferenceObjective,
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
            other => Part::Ignored(kind_name(&other).to_owned()),
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
            | Part::InferenceObjective { tracked, .. } => Some(tracked),
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
/// [`Converted::new`] for each, then [`combine`].
pub fn assemble(
    objects: impl IntoIterator<Item = (String, Object)>,
    gw: &GatewayOptions,
) -> (Config, Vec<Problem>) {
    let converted: Vec<Converted> = objects
        .into_iter()
        .map(|(origin, o)| Converted::new(origin, o, gw))
        .collect();
    combine(converted.iter(), gw)
}

/// Builds a configuration from objects converted earlier, and the problems found: each
/// object refused by the conversion, and each one defined more than once (the first wins).
/// Nothing is converted again; the cross-object steps (our GatewayClasses, the implicit
/// default Gateway, ReferenceGrants) run over the converted values.
pub fn combine<'a>(
    objects: impl IntoIterator<Item = &'a Converted>,
    gw: &GatewayOptions,
) -> (Config, Vec<Problem>) {
    let mut config = Config::default();
    let mut problems = Vec::new();
    let objects = objects.into_iter();
    // One entry per object on every change: sized up front (growing it rehashed every key
    // several times) with a fast hasher (the keys are our own objects).
    let mut seen =
        foldhash::HashSet::with_capacity_and_hasher(objects.size_hint().0, Default::default());
    let mut ignored = BTreeSet::new();
    let mut our_classes: BTreeSet<String> = [DEFAULT_CLASS_NAME.to_owned()].into();
    let mut gateways = Vec::new();
    let mut grants = Vec::new();
    let inference = gw.enabled && gw.inference_extension;
    for c in objects {
        if let Some(t) = c.tracked() {
            if !seen.insert((t.kind, &t.id)) {
                let mut errors = FieldErrors::new();
                errors.push("metadata.name", "defined more than once");
                problems.push(Problem {
                    origin: c.origin.clone(),
                    kind: t.kind,
                    id: t.id.clone(),
                    generation: t.generation,
                    errors,
                });
                continue;
            }
            if let Some(g) = t.generation {
                config.generations.insert((t.kind, t.id.clone()), g);
            }
            if let Some(errors) = &t.errors {
                problems.push(Problem {
                    origin: c.origin.clone(),
                    kind: t.kind,
                    id: t.id.clone(),
                    generation: t.generation,
                    errors: errors.clone(),
                });
            }
        }
        match &c.part {
            Part::ModelRoute {
                tracked,
                route,
                parent_refs,
                object,
            } => {
                // Absent is empty: most ModelRoutes have no parentRefs.
                if !parent_refs.is_empty() {
                    config.parent_refs.insert(
                        (StatusKind::ModelRoute, tracked.id.clone()),
                        parent_refs.clone(),
                    );
                }
                config.routes.extend(route.clone());
                config.dump.modelroutes.push(object.clone());
            }
            Part::ModelServer { server, object, .. } => {
                config.servers.extend(server.clone());
                config.dump.modelservers.push(object.clone());
            }
            Part::Pod { info, object, .. } => {
                config.pods.push(info.clone());
                config.dump.pods.push(object.clone());
            }
            Part::Service { service, .. } => config.services.extend(service.clone()),
            Part::Namespace { name, labels } => {
                config.namespaces.insert(name.clone(), labels.clone());
            }
            Part::OurClass { name, .. } => {
                our_classes.insert(name.clone());
                config.gateway_classes.push(name.clone());
            }
            Part::Gateway {
                gateway, object, ..
            } => {
                config.dump.gateways.push(object.clone());
                gateways.extend(gateway.clone());
            }
            Part::HttpRoute {
                tracked,
                route,
                parent_refs,
                object,
            } => {
                config.dump.httproutes.push(object.clone());
                config.parent_refs.insert(
                    (StatusKind::HttpRoute, tracked.id.clone()),
                    parent_refs.clone(),
                );
                config.http_routes.extend(route.clone());
            }
            Part::ReferenceGrant(g) => grants.push(g.clone()),
            Part::Secret(id, secret) => {
                config.tls_secrets.insert(id.clone(), secret.clone());
            }
            Part::InferencePool { pool, object, .. } => {
                config.dump.inferencepools.push(object.clone());
                config.pools.extend(pool.clone());
            }
            Part::InferenceModel { model, object, .. } => {
                config.dump.inferencemodels.push(object.clone());
                config.inference_models.extend(model.clone());
            }
            Part::InferenceObjective {
                objective, object, ..
            } => {
                config.dump.inferenceobjectives.push(object.clone());
                config.objectives.extend(objective.clone());
            }
            Part::Ignored(kind) => {
                ignored.insert(kind.clone());
            }
        }
    }
    let grants = kthena_core::ReferenceGrants::new(grants);
    if gw.enabled {
        gateways.retain(|g| our_classes.contains(&g.class_name));
        let default = gw.default_gateway();
        if !gateways.iter().any(|g| g.id == default.id) {
            gateways.push(default);
        }
        config.gateways = gateways;
        for r in &mut config.http_routes {
            r.route.refuse_unpermitted(&grants);
        }
    }
    config.grants = grants;
    config.addresses = gw.addresses.clone();
    config.inference_extension = inference;
    config.controller_name = gw.controller_name.clone();
    config.invalid = problems.iter().map(Invalid::from).collect();
    if !ignored.is_empty() {
        tracing::debug!(kinds = ?ignored, "objects of kinds not used with these flags were ignored");
    }
    (config, problems)
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

fn kind_name(o: &Object) -> &'static str {
    match o {
        Object::ExternalModelProvider(_) => "ExternalModelProvider",
        Object::GatewayClass(_) => "GatewayClass",
        Object::Gateway(_) => "Gateway",
        Object::HttpRoute(_) => "HTTPRoute",
        Object::ReferenceGrant(_) => "ReferenceGrant",
        Object::Secret(_) => "Secret",
        Object::InferencePool(_) | Object::InferencePoolV1alpha2(_) => "InferencePool",
        Object::InferenceModel(_) => "InferenceModel",
        Object::InferenceObjective(_) => "InferenceObjective",
        _ => "other",
    }
}
