//! Objects -> one [`Config`]: the step both sources share (the manifest folder and the
//! Kubernetes watchers), through the one api -> core conversion.
//!
//! Every object is converted on its own. An object that does not convert is left out and
//! reported as a [`Problem`] (with its field paths); the standalone source refuses a folder
//! with problems, the Kubernetes source serves the rest and writes the problem into the
//! object's status.

use std::collections::{BTreeSet, HashSet};

use kthena_api::convert;
use kthena_api::manifest::Object;
use kthena_core::{FieldErrors, ObjectRef};

use super::{Config, DEFAULT_CLASS_NAME, GatewayOptions, TlsSecret};
use crate::pool::PodInfo;
use crate::state::{Invalid, StatusKind};

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

/// Converts `objects` (each with its origin) into a configuration and the problems found.
///
/// Gateway API kinds are read only with `gw.enabled`, Inference Extension kinds only with
/// `gw.inference_extension` too. An object defined twice is a problem.
pub fn assemble(
    objects: impl IntoIterator<Item = (String, Object)>,
    gw: &GatewayOptions,
) -> (Config, Vec<Problem>) {
    let mut config = Config::default();
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    let mut ignored = BTreeSet::new();
    let mut our_classes: BTreeSet<String> = [DEFAULT_CLASS_NAME.to_owned()].into();
    let mut gateways = Vec::new();
    let mut grants = Vec::new();
    let inference = gw.enabled && gw.inference_extension;
    for (origin, object) in objects {
        let mut take = |kind: StatusKind,
                        id: ObjectRef,
                        generation: Option<i64>,
                        result: Result<(), FieldErrors>| {
            if !seen.insert((kind, id.clone())) {
                let mut errors = FieldErrors::new();
                errors.push("metadata.name", "defined more than once");
                problems.push(Problem {
                    origin: origin.clone(),
                    kind,
                    id,
                    generation,
                    errors,
                });
                return;
            }
            if let Some(g) = generation {
                config.generations.insert((kind, id.clone()), g);
            }
            if let Err(errors) = result {
                problems.push(Problem {
                    origin: origin.clone(),
                    kind,
                    id,
                    generation,
                    errors,
                });
            }
        };
        match object {
            Object::ModelRoute(mr) => {
                let id = convert::object_ref(mr.as_ref());
                config.parent_refs.insert(
                    (StatusKind::ModelRoute, id),
                    spec_parent_refs(&mr.spec.parent_refs, &convert::object_ref(mr.as_ref())),
                );
                let r = convert::model_route(&mr).map(|r| config.routes.push(r));
                take(
                    StatusKind::ModelRoute,
                    convert::object_ref(mr.as_ref()),
                    convert::generation(mr.as_ref()),
                    r,
                );
                config.dump.modelroutes.push(json(&mr));
            }
            Object::ModelServer(ms) => {
                let r = convert::model_server(&ms).map(|s| config.servers.push(s));
                take(
                    StatusKind::ModelServer,
                    convert::object_ref(ms.as_ref()),
                    convert::generation(ms.as_ref()),
                    r,
                );
                config.dump.modelservers.push(json(&ms));
            }
            Object::Pod(pod) => {
                let info = PodInfo::from_pod(&pod);
                take(StatusKind::Pod, info.id.clone(), None, Ok(()));
                config.pods.push(info);
                config.dump.pods.push(json(&pod));
            }
            Object::Service(svc) => {
                let r = convert::service(&svc).map(|s| config.services.push(s));
                take(
                    StatusKind::Service,
                    convert::object_ref(svc.as_ref()),
                    None,
                    r,
                );
            }
            Object::Namespace(ns) => {
                let name = ns.metadata.name.clone().unwrap_or_default();
                config
                    .namespaces
                    .insert(name, ns.metadata.labels.clone().unwrap_or_default());
            }
            Object::GatewayClass(c) if gw.enabled => {
                let name = c.metadata.name.clone().unwrap_or_default();
                if c.spec.controller_name == gw.controller_name {
                    our_classes.insert(name.clone());
                    let id = ObjectRef::new("", name.clone());
                    take(
                        StatusKind::GatewayClass,
                        id,
                        convert::generation(c.as_ref()),
                        Ok(()),
                    );
                    config.gateway_classes.push(name);
                }
            }
            Object::Gateway(g) if gw.enabled => {
                config.dump.gateways.push(json(&g));
                let r = convert::gateway(&g).map(|c| gateways.push(c));
                take(
                    StatusKind::Gateway,
                    convert::object_ref(g.as_ref()),
                    convert::generation(g.as_ref()),
                    r,
                );
            }
            Object::HttpRoute(r) if gw.enabled => {
                config.dump.httproutes.push(json(&r));
                let id = convert::object_ref(r.as_ref());
                let result = convert::http_route::http_route(&r).map(|route| {
                    let refs = r.spec.parent_refs.as_deref().unwrap_or_default();
                    let parents = convert::gateway_parents(refs, &id);
                    config.parent_refs.insert(
                        (StatusKind::HttpRoute, id.clone()),
                        spec_parent_refs(refs, &id),
                    );
                    config
                        .http_routes
                        .push(kthena_core::gateway::ParentedHttpRoute { route, parents });
                });
                take(
                    StatusKind::HttpRoute,
                    id,
                    convert::generation(r.as_ref()),
                    result,
                );
            }
            Object::ReferenceGrant(g) if gw.enabled => {
                grants.push(convert::reference_grant(&g));
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
                if let (Some(cert_pem), Some(key_pem)) = (field("tls.crt"), field("tls.key")) {
                    config
                        .tls_secrets
                        .insert(id, TlsSecret { cert_pem, key_pem });
                }
            }
            Object::InferencePool(p) if inference => {
                config.dump.inferencepools.push(json(&p));
                let r = convert::inference_pool_v1(&p).map(|p| config.pools.push(p));
                take(
                    StatusKind::InferencePool,
                    convert::object_ref(p.as_ref()),
                    convert::generation(p.as_ref()),
                    r,
                );
            }
            Object::InferencePoolV1alpha2(p) if inference => {
                config.dump.inferencepools.push(json(&p));
                let r = convert::inference_pool_v1alpha2(&p).map(|p| config.pools.push(p));
                take(
                    StatusKind::InferencePoolV1alpha2,
                    convert::object_ref(p.as_ref()),
                    convert::generation(p.as_ref()),
                    r,
                );
            }
            Object::InferenceModel(m) if inference => {
                config.dump.inferencemodels.push(json(&m));
                let r = convert::inference_model(&m).map(|m| config.inference_models.push(m));
                take(
                    StatusKind::InferenceModel,
                    convert::object_ref(m.as_ref()),
                    convert::generation(m.as_ref()),
                    r,
                );
            }
            Object::InferenceObjective(o) if inference => {
                config.dump.inferenceobjectives.push(json(&o));
                let r = convert::inference_objective(&o).map(|o| config.objectives.push(o));
                take(
                    StatusKind::InferenceObjective,
                    convert::object_ref(o.as_ref()),
                    convert::generation(o.as_ref()),
                    r,
                );
            }
            Object::Other { api_version, kind } => {
                ignored.insert(format!("{api_version}/{kind}"));
            }
            other => {
                ignored.insert(kind_name(&other).to_owned());
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
    serde_json::to_value(o).unwrap_or_default()
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
