//! The status of every object the router reads, computed by `kthena_core::status` from the
//! configuration in force, in each kind's own Kubernetes shape (camelCase JSON, conditions
//! with `observedGeneration`, without `lastTransitionTime`, which the writer adds).
//!
//! Standalone mode serves the report at `/debug/status`; in Kubernetes mode the status writer
//! merges each entry into the stored object.
//!
//! The rules (which condition, which reason) are `kthena_core::status`'s; this module only
//! renders them. Gateway API kinds (GatewayClass, Gateway, HTTPRoute) are built as the
//! `gateway-api` crate's typed status structs, so no field can be missing, misspelt or of the
//! wrong type; their conditions carry a placeholder `lastTransitionTime` that is taken out
//! when rendered ([`untimed`]), because only the writer may set it (it keeps the stored time of
//! a condition that did not change). The Kthena and Inference Extension kinds are rendered as
//! JSON in the shapes of their CRDs (`kthena_api`).

use std::collections::{BTreeSet, HashMap};

use gateway_api::apis::standard::gatewayclasses::GatewayClassStatus;
use gateway_api::apis::standard::gateways::{
    GatewayStatus, GatewayStatusAddresses, GatewayStatusListeners,
    GatewayStatusListenersSupportedKinds,
};
use gateway_api::apis::standard::httproutes::{
    HttpRouteStatus, HttpRouteStatusParents, HttpRouteStatusParentsParentRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition as MetaCondition;
use kthena_api::KindSet;

use kthena_core::http_route::{BackendTarget, HttpRouteTable};
use kthena_core::status::{self, BackendState, Condition, ParentStatus};
use kthena_core::{ListenerRef, ObjectRef};
use serde::Serialize;
use serde_json::{Value, json};

use crate::pool::PoolKey;
use crate::state::{ObjectKind, PoolMap, StatusInputs};

/// The computed status of one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// Its kind.
    pub kind: ObjectKind,
    /// Namespace (empty for cluster-scoped kinds).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `metadata.generation` the status describes, when known.
    pub generation: Option<i64>,
    /// The `status` stanza.
    pub status: Value,
}

/// Everything the report reads.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The converted objects.
    pub inputs: &'a StatusInputs,
    /// The pools in force, with their endpoints.
    pub pools: &'a PoolMap,
    /// The HTTPRoute table of each listener.
    pub tables: &'a HashMap<ListenerRef, HttpRouteTable>,
    /// `--controller-name`, written in route `parents[]` entries.
    pub controller_name: &'a str,
    /// The router queues requests by priority (`--enable-fairness-scheduling`):
    /// InferenceObjectives' `priority` is honored.
    pub priority_queueing: bool,
}

/// `cs` in the Kubernetes type, with a placeholder `lastTransitionTime` ([`untimed`] takes it
/// out again).
fn typed_conditions(cs: &[Condition], generation: Option<i64>) -> Vec<MetaCondition> {
    cs.iter()
        .map(|c| MetaCondition {
            type_: c.kind.to_owned(),
            status: if c.status { "True" } else { "False" }.to_owned(),
            reason: c.reason.to_owned(),
            message: c.message.clone(),
            observed_generation: generation,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        })
        .collect()
}

/// A typed status as JSON, without the placeholder `lastTransitionTime` of its conditions.
fn untimed(typed: &impl Serialize) -> Value {
    fn visit(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Array(cs)) = map.get_mut("conditions") {
                    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                        c.remove("lastTransitionTime");
                    }
                }
                map.values_mut().for_each(visit);
            }
            Value::Array(items) => items.iter_mut().for_each(visit),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(typed).expect("a status struct serializes");
    visit(&mut v);
    v
}

fn conditions(cs: &[Condition], generation: Option<i64>) -> Value {
    cs.iter()
        .map(|c| {
            let mut v = json!({
                "type": c.kind,
                "status": if c.status { "True" } else { "False" },
                "reason": c.reason,
                "message": c.message,
            });
            if let Some(g) = generation {
                v["observedGeneration"] = json!(g);
            }
            v
        })
        .collect()
}

impl Sources<'_> {
    fn generation(&self, kind: ObjectKind, id: &ObjectRef) -> Option<i64> {
        self.inputs.generations.get(&(kind, id.clone())).copied()
    }

    fn entry(&self, kind: ObjectKind, id: &ObjectRef, status: Value) -> ObjectStatus {
        ObjectStatus {
            kind,
            namespace: id.namespace.clone(),
            name: id.name.clone(),
            generation: self.generation(kind, id),
            status,
        }
    }

    /// The spec's text of parentRef `p` of route `id`, or one built from it.
    fn spec_parent(&self, kind: ObjectKind, id: &ObjectRef, p: &kthena_core::ParentRef) -> Value {
        self.inputs
            .parent_refs
            .get(&(kind, id.clone()))
            .and_then(|refs| refs.iter().find(|(c, _)| c == p))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| {
                let mut v = json!({
                    "group": kthena_core::gateway::GATEWAY_GROUP,
                    "kind": "Gateway",
                    "namespace": p.gateway.namespace,
                    "name": p.gateway.name,
                });
                if let Some(s) = &p.section_name {
                    v["sectionName"] = json!(s);
                }
                if let Some(port) = p.port {
                    v["port"] = json!(port);
                }
                v
            })
    }

    fn parents(
        &self,
        kind: ObjectKind,
        id: &ObjectRef,
        ps: &[ParentStatus],
        generation: Option<i64>,
    ) -> Value {
        ps.iter()
            .map(|p| {
                json!({
                    "parentRef": self.spec_parent(kind, id, &p.parent),
                    "controllerName": self.controller_name,
                    "conditions": conditions(&p.conditions, generation),
                })
            })
            .collect()
    }

    /// An HTTPRoute's `status.parents`: ours, each with its parentRef as the spec writes it.
    fn http_route_parents(
        &self,
        id: &ObjectRef,
        ps: &[ParentStatus],
        generation: Option<i64>,
    ) -> Vec<HttpRouteStatusParents> {
        ps.iter()
            .map(|p| HttpRouteStatusParents {
                parent_ref: self
                    .typed_parent_ref(id, &self.spec_parent(ObjectKind::HttpRoute, id, &p.parent)),
                controller_name: self.controller_name.to_owned(),
                conditions: typed_conditions(&p.conditions, generation),
            })
            .collect()
    }

    /// A parentRef as the spec wrote it, in the typed status shape.
    fn typed_parent_ref(&self, id: &ObjectRef, spec: &Value) -> HttpRouteStatusParentsParentRef {
        serde_json::from_value(spec.clone()).unwrap_or_else(|e| {
            // The conversion read this parentRef from the same JSON: it has a name.
            tracing::warn!(route = %id, error = %e, "parentRef does not read as a status parentRef");
            HttpRouteStatusParentsParentRef {
                name: spec["name"].as_str().unwrap_or_default().to_owned(),
                ..Default::default()
            }
        })
    }

    /// How an HTTPRoute backendRef resolves.
    fn backend(&self, target: &BackendTarget) -> BackendState {
        match target {
            BackendTarget::InferencePool { api, pool } => {
                if !self.inputs.inference_extension {
                    BackendState::InvalidKind(format!(
                        "InferencePool {pool} (--enable-gateway-api-inference-extension is off)"
                    ))
                } else if self
                    .pools
                    .contains_key(&PoolKey::InferencePool(*api, pool.clone()))
                {
                    BackendState::Resolved
                } else {
                    BackendState::NotFound(format!("InferencePool {pool}"))
                }
            }
            BackendTarget::Service { service, port } => {
                match self.inputs.services.iter().find(|s| &s.id == service) {
                    None => BackendState::NotFound(format!("Service {service}")),
                    Some(s) if s.port(*port).is_none() => {
                        BackendState::NotFound(format!("Service {service} port {port}"))
                    }
                    Some(s) if s.selector.is_none() => BackendState::NotFound(format!(
                        "Service {service} has no selector (EndpointSlices are not read)"
                    )),
                    Some(s) => match s.port(*port) {
                        Some(p) if p.protocol.is_none() => {
                            BackendState::UnsupportedProtocol(format!(
                                "Service {service} port {port} (appProtocol {})",
                                p.app_protocol.as_deref().unwrap_or_default()
                            ))
                        }
                        _ => BackendState::Resolved,
                    },
                }
            }
            BackendTarget::Unsupported {
                group,
                kind,
                object,
            } => BackendState::InvalidKind(format!("{group}/{kind} {object}")),
            BackendTarget::NotPermitted(inner) => {
                let (group, kind, object) = inner.group_kind_object();
                let group = if group.is_empty() { "core" } else { group };
                BackendState::NotPermitted(format!("{group}/{kind} {object}"))
            }
        }
    }

    fn gateway_classes(&self, out: &mut Vec<ObjectStatus>) {
        for name in self.inputs.gateway_classes.iter() {
            let id = ObjectRef::new("", name.clone());
            let generation = self.generation(ObjectKind::GatewayClass, &id);
            let accepted = status::gateway_class(self.controller_name);
            let status = untimed(&GatewayClassStatus {
                conditions: Some(typed_conditions(&accepted, generation)),
                supported_features: None,
            });
            out.push(self.entry(ObjectKind::GatewayClass, &id, status));
        }
    }

    fn gateways(&self, out: &mut Vec<ObjectStatus>) {
        let inputs = self.inputs;
        let attached = |l: &ListenerRef| {
            let http = self
                .tables
                .get(l)
                .map_or(0, |t| t.routes().len() - t.skipped().len());
            let model = inputs.routes.values().filter(|r| r.serves(l)).count();
            http + model
        };
        let addresses: Vec<GatewayStatusAddresses> = inputs
            .addresses
            .iter()
            .map(|a| {
                let kind = if a.parse::<std::net::IpAddr>().is_ok() {
                    "IPAddress"
                } else {
                    "Hostname"
                };
                GatewayStatusAddresses {
                    r#type: Some(kind.to_owned()),
                    value: a.clone(),
                }
            })
            .collect();
        for g in inputs.gateways.iter() {
            let generation = self.generation(ObjectKind::Gateway, &g.id);
            let certificate = |l: &ListenerRef| {
                inputs
                    .bad_certificates
                    .iter()
                    .find(|(r, ..)| r == l)
                    .map(|(_, why, e)| (*why, e.clone()))
            };
            let s = status::gateway(
                g,
                attached,
                |port| !inputs.unbound_ports.contains(&port),
                certificate,
                &inputs.conflicts,
            );
            let listeners: Vec<GatewayStatusListeners> = s
                .listeners
                .iter()
                .map(|l| GatewayStatusListeners {
                    name: l.name.clone(),
                    supported_kinds: Some(
                        l.supported_kinds
                            .iter()
                            .map(|(g, k)| GatewayStatusListenersSupportedKinds {
                                group: Some((*g).to_owned()),
                                kind: (*k).to_owned(),
                            })
                            .collect(),
                    ),
                    attached_routes: i32::try_from(l.attached_routes).unwrap_or(i32::MAX),
                    conditions: typed_conditions(&l.conditions, generation),
                })
                .collect();
            let status = untimed(&GatewayStatus {
                addresses: Some(addresses.clone()),
                attached_listener_sets: None,
                conditions: Some(typed_conditions(&s.conditions, generation)),
                listeners: Some(listeners),
            });
            out.push(self.entry(ObjectKind::Gateway, &g.id, status));
        }
    }

    /// The ModelRoutes' statuses: all of them, or those of `only` (a route's conflicts are
    /// judged against every route claiming one of its names, whichever are recomputed).
    fn model_routes(&self, only: Option<&BTreeSet<ObjectRef>>, out: &mut Vec<ObjectStatus>) {
        let inputs = self.inputs;
        let listeners = kthena_core::gateway::served_listeners(&inputs.gateways, &inputs.conflicts);
        let backend_exists = |b: &kthena_core::Backend| match b {
            kthena_core::Backend::ModelServer(id) => {
                self.pools.contains_key(&PoolKey::ModelServer(id.clone()))
            }
            kthena_core::Backend::ExternalProvider(id) => {
                inputs.providers.iter().any(|(p, _)| &p.id == id)
            }
        };
        let judged: Vec<&kthena_core::Route> = match only {
            None => inputs.routes.values().map(|r| &**r).collect(),
            Some(ids) => ids
                .iter()
                .filter_map(|id| inputs.routes.get(id))
                .map(|r| &**r)
                .collect(),
        };
        let conflicts = match only {
            None => status::model_name_conflicts(
                judged.iter().copied(),
                inputs.gateway_mode,
                &listeners,
            ),
            Some(_) => {
                let mut rivals: BTreeSet<&ObjectRef> = BTreeSet::new();
                for r in &judged {
                    for c in kthena_core::claims::claims(r) {
                        rivals.extend(inputs.route_refs.claiming(c.name()));
                    }
                }
                status::model_name_conflicts(
                    rivals
                        .into_iter()
                        .filter_map(|id| inputs.routes.get(id))
                        .map(|r| &**r),
                    inputs.gateway_mode,
                    &listeners,
                )
            }
        };
        for r in judged {
            let generation = self.generation(ObjectKind::ModelRoute, &r.id);
            let mut s = status::model_route(r, inputs.gateway_mode, &listeners, backend_exists);
            if let Some(c) = conflicts.iter().find(|c| c.route == r.id)
                && s.conditions[0].status
            {
                s.conditions[0] = status::conflicted(c);
            }
            s.conditions.push(status::fields_honored(
                &kthena_core::unhonored::model_route(r),
            ));
            let mut status = json!({
                "conditions": conditions(&s.conditions, generation),
            });
            if let Some(g) = generation {
                status["observedGeneration"] = json!(g);
            }
            if !s.parents.is_empty() {
                status["parents"] =
                    self.parents(ObjectKind::ModelRoute, &r.id, &s.parents, generation);
            }
            out.push(self.entry(ObjectKind::ModelRoute, &r.id, status));
        }
    }

    /// The ModelServers' statuses: all of them, or those of `only`.
    fn upstreams(&self, only: Option<&BTreeSet<ObjectRef>>, out: &mut Vec<ObjectStatus>) {
        let mut one = |id: &ObjectRef, cell: &crate::state::PoolCell| {
            let ready = cell.load().endpoints.len();
            let generation = self.generation(ObjectKind::ModelServer, id);
            let mut server_conditions = status::ready(ready);
            server_conditions.push(status::fields_honored(
                self.inputs
                    .unhonored_servers
                    .get(id)
                    .unwrap_or(&kthena_core::FieldErrors::new()),
            ));
            let mut status = json!({
                "conditions": conditions(&server_conditions, generation),
                "readyEndpoints": ready,
            });
            if let Some(g) = generation {
                status["observedGeneration"] = json!(g);
            }
            out.push(self.entry(ObjectKind::ModelServer, id, status));
        };
        match only {
            None => {
                for (key, cell) in self.pools {
                    if let PoolKey::ModelServer(id) = key {
                        one(id, cell);
                    }
                }
            }
            Some(ids) => {
                for id in ids {
                    if let Some(cell) = self.pools.get(&PoolKey::ModelServer(id.clone())) {
                        one(id, cell);
                    }
                }
            }
        }
    }

    /// The ExternalModelProviders' statuses: `Ready` and `CredentialsResolved`.
    fn external_providers(&self, out: &mut Vec<ObjectStatus>) {
        for (p, state) in self.inputs.providers.iter() {
            let generation = self.generation(ObjectKind::ExternalModelProvider, &p.id);
            let cs = status::external_provider(state);
            let mut status = json!({"conditions": conditions(&cs, generation)});
            if let Some(g) = generation {
                status["observedGeneration"] = json!(g);
            }
            out.push(self.entry(ObjectKind::ExternalModelProvider, &p.id, status));
        }
    }

    fn http_routes(&self, out: &mut Vec<ObjectStatus>) {
        for r in self.inputs.http_routes.iter() {
            let id = &r.route.id;
            let generation = self.generation(ObjectKind::HttpRoute, id);
            let ps = status::http_route_parents(
                r,
                &self.inputs.gateways,
                &self.inputs.namespaces,
                |t| self.backend(t),
            );
            let status = untimed(&HttpRouteStatus {
                parents: self.http_route_parents(id, &ps, generation),
            });
            out.push(self.entry(ObjectKind::HttpRoute, id, status));
        }
    }

    fn inference_pools(&self, out: &mut Vec<ObjectStatus>) {
        for p in self.inputs.pools.iter() {
            let (kind, field) = match p.api {
                kthena_core::InferencePoolApi::V1 => (ObjectKind::InferencePool, "parents"),
                kthena_core::InferencePoolApi::V1Alpha2 => {
                    (ObjectKind::InferencePoolV1alpha2, "parent")
                }
            };
            let generation = self.generation(kind, &p.id);
            let parents: Vec<Value> = status::inference_pool_parents(p, &self.inputs.http_routes)
                .iter()
                .map(|(g, cs)| {
                    let mut entry = json!({
                        "parentRef": {
                            "group": kthena_core::gateway::GATEWAY_GROUP,
                            "kind": "Gateway",
                            "namespace": g.namespace,
                            "name": g.name,
                        },
                        "conditions": conditions(cs, generation),
                    });
                    if kind == ObjectKind::InferencePool {
                        entry["controllerName"] = json!(self.controller_name);
                    }
                    entry
                })
                .collect();
            let status = json!({ field: parents });
            out.push(self.entry(kind, &p.id, status));
        }
    }

    fn inference_objectives(&self, out: &mut Vec<ObjectStatus>) {
        for o in self.inputs.objectives.iter() {
            let generation = self.generation(ObjectKind::InferenceObjective, &o.id);
            let pool_served = self
                .pools
                .contains_key(&PoolKey::InferencePool(o.pool.0, o.pool.1.clone()));
            let unhonored = if self.priority_queueing {
                kthena_core::FieldErrors::new()
            } else {
                kthena_core::unhonored::inference_objective(o)
            };
            let cs = status::inference_objective(pool_served, &unhonored);
            let status = json!({"conditions": conditions(&cs, generation)});
            out.push(self.entry(ObjectKind::InferenceObjective, &o.id, status));
        }
    }

    fn inference_models(&self, out: &mut Vec<ObjectStatus>) {
        let owners = kthena_core::inference_model::owners(&self.inputs.inference_models);
        for m in self.inputs.inference_models.iter() {
            let generation = self.generation(ObjectKind::InferenceModel, &m.id);
            let key = (m.pool.0, m.pool.1.clone(), m.model_name.clone());
            let first = owners.get(&key).map_or(&m.id, |owner| &owner.id);
            let pool_served = self
                .pools
                .contains_key(&PoolKey::InferencePool(m.pool.0, m.pool.1.clone()));
            let accepted = status::inference_model(&m.model_name, first, &m.id, pool_served);
            let status = json!({"conditions": conditions(&accepted, generation)});
            out.push(self.entry(ObjectKind::InferenceModel, &m.id, status));
        }
    }

    fn invalid(
        &self,
        judged: impl Fn(ObjectKind, &ObjectRef) -> bool,
        out: &mut Vec<ObjectStatus>,
    ) {
        for bad in self.inputs.invalid.values() {
            if !judged(bad.kind, &bad.id) {
                continue;
            }
            let cs = status::invalid(&bad.errors);
            let g = bad.generation;
            let status = match bad.kind {
                ObjectKind::ModelRoute
                | ObjectKind::ModelServer
                | ObjectKind::ExternalModelProvider => {
                    let mut s = json!({"conditions": conditions(&cs, g)});
                    if let Some(g) = g {
                        s["observedGeneration"] = json!(g);
                    }
                    s
                }
                ObjectKind::Gateway => untimed(&GatewayStatus {
                    conditions: Some(typed_conditions(&status::invalid_gateway(&bad.errors), g)),
                    ..Default::default()
                }),
                ObjectKind::HttpRoute => {
                    let refs = self
                        .inputs
                        .parent_refs
                        .get(&(ObjectKind::HttpRoute, bad.id.clone()))
                        .cloned()
                        .unwrap_or_default();
                    let parents: Vec<HttpRouteStatusParents> = refs
                        .iter()
                        .filter(|(p, _)| self.inputs.gateways.iter().any(|g| g.id == p.gateway))
                        .map(|(_, spec)| HttpRouteStatusParents {
                            parent_ref: self.typed_parent_ref(&bad.id, spec),
                            controller_name: self.controller_name.to_owned(),
                            conditions: typed_conditions(
                                &status::unsupported_value(&bad.errors),
                                g,
                            ),
                        })
                        .collect();
                    untimed(&HttpRouteStatus { parents })
                }
                ObjectKind::InferenceModel | ObjectKind::InferenceObjective => {
                    json!({"conditions": conditions(&cs, g)})
                }
                // InferencePools report per parent Gateway only; Pods and Services get none.
                _ => continue,
            };
            out.push(self.entry(bad.kind, &bad.id, status));
        }
    }
}

/// The status of every object, sorted by kind, namespace and name.
pub fn report(sources: Sources<'_>) -> Vec<ObjectStatus> {
    report_kinds(sources, KindSet::all())
}

/// The status of every object of `kinds`, sorted by kind, namespace and name.
pub fn report_kinds(sources: Sources<'_>, kinds: KindSet) -> Vec<ObjectStatus> {
    report_dirty(sources, &Dirty::kinds(kinds)).statuses
}

/// What applied changes can have altered in status, gathered by the Index from each
/// configuration's [`crate::source::Changes`] until a status reader takes it: whole kinds, or
/// some objects and the facts that lead to more of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirty {
    /// Kinds computed whole.
    pub kinds: KindSet,
    /// Objects computed again (ModelRoutes and ModelServers; an object of another kind
    /// recomputes its kind).
    pub objects: BTreeSet<(ObjectKind, ObjectRef)>,
    /// Names claimed by ModelRoute versions that are gone: the routes claiming them now may
    /// have lost or gained a conflict.
    pub names: BTreeSet<String>,
    /// ModelServers that appeared or disappeared: the routes naming them resolve differently.
    pub servers: BTreeSet<ObjectRef>,
}

impl Dirty {
    /// Every object of every kind.
    pub fn all() -> Self {
        Self::kinds(KindSet::all())
    }

    /// Every object of `kinds`.
    pub fn kinds(kinds: KindSet) -> Self {
        Self {
            kinds,
            ..Self::default()
        }
    }

    /// True when nothing is to be computed again.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
            && self.objects.is_empty()
            && self.names.is_empty()
            && self.servers.is_empty()
    }

    /// Adds what `other` names.
    pub fn merge(&mut self, other: Dirty) {
        self.kinds = self.kinds.union(other.kinds);
        self.objects.extend(other.objects);
        self.names.extend(other.names);
        self.servers.extend(other.servers);
    }

    /// The objects of `kind` to compute again, `None` when the whole kind is.
    fn of(&self, kind: ObjectKind) -> Option<BTreeSet<ObjectRef>> {
        (!self.kinds.contains(kind)).then(|| {
            self.objects
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, id)| id.clone())
                .collect()
        })
    }
}

/// What [`report_dirty`] judged: the objects of its kinds and objects that have a status now.
#[derive(Debug, Clone, PartialEq)]
pub struct Recomputed {
    /// Kinds judged whole.
    pub kinds: KindSet,
    /// Objects of other kinds judged: those without an entry in `statuses` have no status now
    /// (deleted, or no longer served).
    pub objects: BTreeSet<(ObjectKind, ObjectRef)>,
    /// Their statuses, sorted by kind, namespace and name.
    pub statuses: Vec<ObjectStatus>,
}

/// The status of every object `dirty` can have altered. A ModelRoute named is judged with
/// every route that now claims one of its names (or one a gone version claimed), and with
/// every route naming a ModelServer that appeared or disappeared; the cost follows those
/// routes, not the number of objects.
pub fn report_dirty(sources: Sources<'_>, dirty: &Dirty) -> Recomputed {
    use ObjectKind as K;
    let mut kinds = dirty.kinds;
    // Only ModelRoutes and ModelServers are recomputed object by object.
    for (kind, _) in &dirty.objects {
        if !matches!(kind, K::ModelRoute | K::ModelServer) {
            kinds = kinds.union(KindSet::of(&[*kind]));
        }
    }
    let mut objects: BTreeSet<(ObjectKind, ObjectRef)> = BTreeSet::new();
    let routes = (!kinds.contains(K::ModelRoute)).then(|| {
        let inputs = sources.inputs;
        let mut ids = dirty.of(K::ModelRoute).unwrap_or_default();
        let mut names: BTreeSet<&str> = dirty.names.iter().map(String::as_str).collect();
        for id in &ids {
            if let Some(r) = inputs.routes.get(id) {
                names.extend(kthena_core::claims::claims(r).map(|c| c.name()));
            }
        }
        let mut more: Vec<ObjectRef> = names
            .into_iter()
            .flat_map(|n| inputs.route_refs.claiming(n))
            .cloned()
            .collect();
        more.extend(
            dirty
                .servers
                .iter()
                .flat_map(|s| inputs.route_refs.naming(s))
                .cloned(),
        );
        ids.extend(more);
        ids
    });
    let servers = dirty.of(K::ModelServer);
    if let Some(ids) = &routes {
        objects.extend(ids.iter().map(|id| (K::ModelRoute, id.clone())));
    }
    if let Some(ids) = &servers {
        objects.extend(ids.iter().map(|id| (K::ModelServer, id.clone())));
    }

    let mut out = Vec::new();
    let whole = |k: &[ObjectKind]| k.iter().any(|k| kinds.contains(*k));
    if whole(&[K::GatewayClass]) {
        sources.gateway_classes(&mut out);
    }
    if whole(&[K::Gateway]) {
        sources.gateways(&mut out);
    }
    if whole(&[K::HttpRoute]) {
        sources.http_routes(&mut out);
    }
    match &routes {
        None => sources.model_routes(None, &mut out),
        Some(ids) if !ids.is_empty() => sources.model_routes(Some(ids), &mut out),
        Some(_) => {}
    }
    match &servers {
        None => sources.upstreams(None, &mut out),
        Some(ids) if !ids.is_empty() => sources.upstreams(Some(ids), &mut out),
        Some(_) => {}
    }
    if whole(&[K::InferencePool, K::InferencePoolV1alpha2]) {
        sources.inference_pools(&mut out);
    }
    if whole(&[K::ExternalModelProvider]) {
        sources.external_providers(&mut out);
    }
    if whole(&[K::InferenceModel]) {
        sources.inference_models(&mut out);
    }
    if whole(&[K::InferenceObjective]) {
        sources.inference_objectives(&mut out);
    }
    sources.invalid(
        |kind, id| kinds.contains(kind) || objects.contains(&(kind, id.clone())),
        &mut out,
    );
    out.retain(|o| kinds.contains(o.kind) || matches!(o.kind, K::ModelRoute | K::ModelServer));
    out.sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
    Recomputed {
        kinds,
        objects,
        statuses: out,
    }
}

/// The last computed status of every object, kept up to date by [`report_dirty`] one
/// [`Dirty`] set at a time: what the Kubernetes status writer is handed after each change.
/// `T` is what the caller keeps per status (the writer's desired status, or the status itself).
#[derive(Debug, Clone)]
pub struct StatusCache<T> {
    by_kind: std::collections::BTreeMap<ObjectKind, imbl::OrdMap<ObjectRef, T>>,
}

impl<T> Default for StatusCache<T> {
    fn default() -> Self {
        Self {
            by_kind: Default::default(),
        }
    }
}

impl<T: Clone> StatusCache<T> {
    /// Recomputes what `dirty` names and keeps `make` of each status (`None`: keep nothing for
    /// that object). Returns how many statuses were computed.
    pub fn update(
        &mut self,
        sources: Sources<'_>,
        dirty: &Dirty,
        mut make: impl FnMut(&ObjectStatus) -> Option<T>,
    ) -> usize {
        let r = report_dirty(sources, dirty);
        for kind in ObjectKind::ALL.iter().filter(|k| r.kinds.contains(**k)) {
            self.by_kind.insert(*kind, imbl::OrdMap::new());
        }
        for (kind, id) in &r.objects {
            if let Some(m) = self.by_kind.get_mut(kind) {
                m.remove(id);
            }
        }
        for s in &r.statuses {
            if let Some(t) = make(s) {
                self.by_kind
                    .entry(s.kind)
                    .or_default()
                    .insert(ObjectRef::new(s.namespace.clone(), s.name.clone()), t);
            }
        }
        r.statuses.len()
    }

    /// Every status kept, by kind, namespace and name.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.by_kind.values().flat_map(|m| m.values())
    }
}
