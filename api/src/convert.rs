//! The one conversion from api objects to [`kthena_core`] values.
//!
//! The router's data plane, the admission webhook, the status controllers and offline
//! validation all call these functions, so they accept and reject exactly the same objects
//! with the same messages. Every problem is reported with its field path; an object with any
//! problem is not converted at all.

pub mod http_route;

use std::fmt;
use std::time::Duration;

use kthena_core::{self as core, FieldErrors, ObjectRef, RouteTable, validate};

use crate::modelroute::{self, ModelRoute, ParentReference, RateLimitUnit};
use crate::modelserver::{self, ModelServer};

/// Namespace of an object that names none (objects read from files).
pub const DEFAULT_NAMESPACE: &str = "default";
/// API group of Gateway API kinds.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// An object that could not be converted, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConvertError {
    /// Kind of the object, e.g. `ModelRoute`.
    pub kind: &'static str,
    /// The object.
    pub object: ObjectRef,
    /// The problems, each with its field path.
    pub errors: FieldErrors,
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.kind, self.object, self.errors)
    }
}

/// The namespace/name of `obj`, defaulting the namespace.
pub fn object_ref<K: kube::Resource>(obj: &K) -> ObjectRef {
    let meta = obj.meta();
    ObjectRef::new(
        meta.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// The age order of `obj` (`id` is its [`object_ref`]): creation time, then namespace/name.
pub fn creation_order<K: kube::Resource>(obj: &K, id: &ObjectRef) -> core::CreationOrder {
    core::CreationOrder {
        created_unix_nanos: obj
            .meta()
            .creation_timestamp
            .as_ref()
            .and_then(|t| i64::try_from(t.0.as_nanosecond()).ok()),
        namespace: id.namespace.clone(),
        name: id.name.clone(),
    }
}

/// Converts a ModelRoute: regexes compiled, header names lowercased, defaults applied,
/// parentRefs resolved to Gateways, every rule of [`validate::route`] checked.
pub fn model_route(mr: &ModelRoute) -> Result<core::Route, FieldErrors> {
    let id = object_ref(mr);
    let mut errs = FieldErrors::new();
    if mr.metadata.name.as_deref().is_none_or(str::is_empty) {
        errs.push("metadata.name", "must not be empty");
    }
    let spec = &mr.spec;
    for (i, p) in spec.parent_refs.iter().enumerate() {
        let k = parent_ref_key(p, &id.namespace);
        if let Some(first) = spec.parent_refs[..i]
            .iter()
            .position(|o| parent_ref_key(o, &id.namespace) == k)
        {
            errs.push(
                format!("spec.parentRefs[{i}]"),
                format!("duplicate of spec.parentRefs[{first}]"),
            );
        }
    }
    let parents = spec
        .parent_refs
        .iter()
        .enumerate()
        .filter_map(|(i, p)| parent_ref(&mut errs, &format!("spec.parentRefs[{i}]"), p, &id))
        .collect();
    let rules = spec
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule(&mut errs, &format!("spec.rules[{i}]"), r, &id.namespace))
        .collect();
    let route = core::Route {
        order: creation_order(mr, &id),
        id,
        model_name: Some(spec.model_name.clone()).filter(|n| !n.is_empty()),
        lora_adapters: spec.lora_adapters.clone(),
        parents,
        rules,
        rate_limit: spec.rate_limit.as_ref().map(rate_limit),
    };
    errs.extend(validate::route(&route));
    errs.into_result(route)
}

/// A ModelRoute parentRef with its defaults applied, the one place they are: group
/// (`gateway.networking.k8s.io`), kind (`Gateway`), namespace (the route's), name,
/// sectionName (empty is none) and port.
pub type ParentRefKey<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<i32>,
);

/// `p` with its defaults applied, for a route in `route_namespace`.
pub fn parent_ref_key<'a>(p: &'a ParentReference, route_namespace: &'a str) -> ParentRefKey<'a> {
    (
        p.group.as_deref().unwrap_or(GATEWAY_GROUP),
        p.kind.as_deref().unwrap_or("Gateway"),
        p.namespace.as_deref().unwrap_or(route_namespace),
        p.name.as_str(),
        p.section_name.as_deref().filter(|s| !s.is_empty()),
        p.port,
    )
}

fn parent_ref(
    errs: &mut FieldErrors,
    path: &str,
    p: &ParentReference,
    route: &ObjectRef,
) -> Option<core::ParentRef> {
    let (group, kind, ..) = parent_ref_key(p, &route.namespace);
    if group != GATEWAY_GROUP || kind != "Gateway" {
        let shown = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{group}/{kind}")
        };
        errs.push(
            format!("{path}.kind"),
            format!("unsupported parent {shown:?}: only {GATEWAY_GROUP}/Gateway"),
        );
        return None;
    }
    if p.name.is_empty() {
        errs.push(format!("{path}.name"), "must not be empty");
        return None;
    }
    let port = match p.port {
        None => None,
        Some(n) => match u16::try_from(n) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                errs.push(
                    format!("{path}.port"),
                    format!("must be between 1 and 65535, got {n}"),
                );
                return None;
            }
        },
    };
    Some(core::ParentRef {
        gateway: ObjectRef::new(
            p.namespace
                .clone()
                .unwrap_or_else(|| route.namespace.clone()),
            p.name.clone(),
        ),
        section_name: p.section_name.clone().filter(|s| !s.is_empty()),
        port,
    })
}

fn rule(errs: &mut FieldErrors, path: &str, r: &modelroute::RouteRule, ns: &str) -> core::Rule {
    match r.target_models.len() {
        0 => errs.push(
            format!("{path}.targetModels"),
            "must have at least 1 target",
        ),
        n if n > validate::MAX_TARGETS => errs.push(
            format!("{path}.targetModels"),
            format!("must have at most {} items, got {n}", validate::MAX_TARGETS),
        ),
        _ => {}
    }
    let model_match = r
        .model_match
        .as_ref()
        .map(|m| model_match(errs, &format!("{path}.modelMatch"), m));
    let targets = r
        .target_models
        .iter()
        .enumerate()
        .filter_map(|(j, t)| {
            let path = format!("{path}.targetModels[{j}]");
            let server = t.model_server_name.as_deref().filter(|s| !s.is_empty());
            let provider = t.external_model_provider_name.as_deref().filter(|s| !s.is_empty());
            let backend = match (server, provider) {
                (Some(s), None) => core::Backend::ModelServer(ObjectRef::new(ns, s)),
                (None, Some(p)) => core::Backend::ExternalProvider(ObjectRef::new(ns, p)),
                (Some(_), Some(_)) => {
                    errs.push(
                        path,
                        "exactly one of modelServerName or externalModelProviderName must be set, got both",
                    );
                    return None;
                }
                (None, None) => {
                    errs.push(
                        path,
                        "exactly one of modelServerName or externalModelProviderName must be set, got neither",
                    );
                    return None;
                }
            };
            Some(core::Target { backend, weight: t.weight })
        })
        .collect();
    let name = Some(r.name.clone()).filter(|n| !n.is_empty());
    core::Rule::new(name, model_match, targets)
}

fn model_match(errs: &mut FieldErrors, path: &str, m: &modelroute::ModelMatch) -> core::ModelMatch {
    let headers = m
        .headers
        .iter()
        .filter_map(|(name, sm)| {
            let path = format!("{path}.headers[{name}]");
            if let Err(e) = validate::header_name(name) {
                errs.push(&path, e);
                return None;
            }
            string_match(errs, &path, sm).map(|sm| (name.to_ascii_lowercase(), sm))
        })
        .collect();
    core::ModelMatch {
        headers,
        uri: m
            .uri
            .as_ref()
            .and_then(|u| string_match(errs, &format!("{path}.uri"), u)),
        body_model: m.body.as_ref().and_then(|b| b.model.clone()),
    }
}

/// `None` when no kind is set (Kthena treats an empty match as matching everything).
fn string_match(
    errs: &mut FieldErrors,
    path: &str,
    m: &modelroute::StringMatch,
) -> Option<core::StringMatch> {
    match (&m.exact, &m.prefix, &m.regex) {
        (Some(e), None, None) => Some(core::StringMatch::Exact(e.clone())),
        (None, Some(p), None) => Some(core::StringMatch::Prefix(p.clone())),
        (None, None, Some(r)) => match core::StringMatch::regex(r) {
            Ok(m) => Some(m),
            Err(e) => {
                errs.push(format!("{path}.regex"), e);
                None
            }
        },
        (None, None, None) => None,
        _ => {
            errs.push(path, "at most one of exact, prefix or regex may be set");
            None
        }
    }
}

fn rate_limit(r: &modelroute::RateLimit) -> core::RateLimit {
    core::RateLimit {
        input_tokens_per_unit: r.input_tokens_per_unit,
        output_tokens_per_unit: r.output_tokens_per_unit,
        unit: match r.unit {
            RateLimitUnit::Second => core::RateUnit::Second,
            RateLimitUnit::Minute => core::RateUnit::Minute,
            RateLimitUnit::Hour => core::RateUnit::Hour,
            RateLimitUnit::Day => core::RateUnit::Day,
            RateLimitUnit::Month => core::RateUnit::Month,
        },
        global_redis_address: r
            .global
            .as_ref()
            .and_then(|g| g.redis.as_ref())
            .map(|r| r.address.clone()),
    }
}

/// Converts a ModelServer: durations parsed, defaults applied, every rule of
/// [`validate::model_server`] checked.
pub fn model_server(ms: &ModelServer) -> Result<core::ModelServer, FieldErrors> {
    let mut errs = FieldErrors::new();
    let spec = &ms.spec;
    let port = match u16::try_from(spec.workload_port.port) {
        Ok(p) if p > 0 => p,
        _ => {
            errs.push(
                "spec.workloadPort.port",
                format!(
                    "must be between 1 and 65535, got {}",
                    spec.workload_port.port
                ),
            );
            0
        }
    };
    let policy = spec.traffic_policy.clone().unwrap_or_default();
    let timeout = policy
        .timeout
        .as_deref()
        .and_then(|t| duration(&mut errs, "spec.trafficPolicy.timeout", t))
        .unwrap_or(core::model_server::DEFAULT_TIMEOUT);
    let retry = match &policy.retry {
        None => core::RetryPolicy::default(),
        Some(r) => core::RetryPolicy {
            attempts: u32::try_from(r.attempts).unwrap_or_else(|_| {
                errs.push(
                    "spec.trafficPolicy.retry.attempts",
                    format!("must not be negative, got {}", r.attempts),
                );
                0
            }),
            interval: duration(
                &mut errs,
                "spec.trafficPolicy.retry.retryInterval",
                &r.retry_interval,
            )
            .unwrap_or(core::model_server::DEFAULT_RETRY_INTERVAL),
        },
    };
    let server = core::ModelServer {
        id: object_ref(ms),
        model: spec.model.clone().filter(|m| !m.is_empty()),
        engine: match spec.inference_engine {
            modelserver::InferenceEngine::Vllm => core::Engine::Vllm,
            modelserver::InferenceEngine::Sglang => core::Engine::Sglang,
        },
        match_labels: spec.workload_selector.match_labels.clone(),
        pd_group: spec
            .workload_selector
            .pd_group
            .as_ref()
            .map(|g| core::PdGroup {
                group_key: g.group_key.clone(),
                prefill_labels: g.prefill_labels.clone(),
                decode_labels: g.decode_labels.clone(),
            }),
        port,
        protocol: match spec.workload_port.protocol {
            modelserver::WorkloadProtocol::Http => core::Protocol::Http,
            modelserver::WorkloadProtocol::Https => core::Protocol::Https,
        },
        timeout,
        retry,
        kv_connector: spec.kv_connector.as_ref().map(|k| match k.type_ {
            modelserver::KvConnectorType::Http => core::KvConnector::Http,
            modelserver::KvConnectorType::Lmcache => core::KvConnector::Lmcache,
            modelserver::KvConnectorType::Nixl => core::KvConnector::Nixl,
            modelserver::KvConnectorType::Mooncake => core::KvConnector::Mooncake,
        }),
    };
    errs.extend(validate::model_server(&server));
    errs.into_result(server)
}

/// Parses a Go duration (`1m30s`, `100ms`) that must not be negative, as Kubernetes'
/// `metav1.Duration` fields and the router's duration flags are written.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match text.parse::<kube::core::Duration>() {
        Ok(d) if d.is_negative() => Err(format!("must not be negative, got {text:?}")),
        Ok(d) => Ok(d.into()),
        Err(e) => Err(format!("invalid duration {text:?}: {e}")),
    }
}

fn duration(errs: &mut FieldErrors, path: &str, text: &str) -> Option<Duration> {
    parse_duration(text).map_err(|e| errs.push(path, e)).ok()
}

/// Builds the route table from every ModelRoute: the ones that convert are indexed, the
/// others are returned as errors naming the route and the field, and left out.
pub fn route_table<'a>(
    routes: impl IntoIterator<Item = &'a ModelRoute>,
    options: core::BuildOptions,
) -> (RouteTable, Vec<ConvertError>) {
    let mut errors = Vec::new();
    let converted: Vec<core::Route> = routes
        .into_iter()
        .filter_map(|mr| {
            model_route(mr)
                .map_err(|e| {
                    errors.push(ConvertError {
                        kind: "ModelRoute",
                        object: object_ref(mr),
                        errors: e,
                    })
                })
                .ok()
        })
        .collect();
    (RouteTable::build(converted, options), errors)
}

/// Converts a Gateway: listeners with ports in range, protocols, lowercase hostnames.
pub fn gateway(
    g: &gateway_api::apis::standard::gateways::Gateway,
) -> Result<core::Gateway, FieldErrors> {
    let mut errs = FieldErrors::new();
    let listeners = g
        .spec
        .listeners
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let path = format!("spec.listeners[{i}]");
            // A sectionName names exactly one listener only when names are unique.
            if let Some(first) = g.spec.listeners[..i].iter().position(|o| o.name == l.name) {
                errs.push(
                    format!("{path}.name"),
                    format!("duplicate listener name {:?}: spec.listeners[{first}] has it", l.name),
                );
            }
            let port = match u16::try_from(l.port) {
                Ok(p) if p > 0 => p,
                _ => {
                    errs.push(
                        format!("{path}.port"),
                        format!("must be between 1 and 65535, got {}", l.port),
                    );
                    return None;
                }
            };
            let protocol = match l.protocol.as_str() {
                "HTTP" => core::gateway::Protocol::Http,
                "HTTPS" => core::gateway::Protocol::Https,
                other => core::gateway::Protocol::Other(other.to_owned()),
            };
            let allowed = l.allowed_routes.as_ref();
            let from = allowed.and_then(|a| a.namespaces.as_ref());
            use gateway_api::apis::standard::gateways::GatewayListenersAllowedRoutesNamespacesFrom as From;
            let allowed_namespaces = match from.and_then(|n| n.from.as_ref()) {
                Some(From::All) => core::gateway::AllowedNamespaces::All,
                Some(From::Selector) => core::gateway::AllowedNamespaces::Selector(
                    from.and_then(|n| n.selector.as_ref())
                        .and_then(|s| s.match_labels.clone())
                        .unwrap_or_default(),
                ),
                Some(From::Same) | None => core::gateway::AllowedNamespaces::Same,
            };
            let kinds = allowed.and_then(|a| a.kinds.as_ref());
            let allows_http_routes = kinds.is_none_or(|ks| {
                ks.is_empty()
                    || ks.iter().any(|k| {
                        k.kind == "HTTPRoute" && k.group.as_deref().is_none_or(|g| g == GATEWAY_GROUP)
                    })
            }) && matches!(protocol, core::gateway::Protocol::Http | core::gateway::Protocol::Https);
            let gw_ns = g.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
            let certificate_refs = l
                .tls
                .as_ref()
                .and_then(|t| t.certificate_refs.as_ref())
                .into_iter()
                .flatten()
                .filter(|c| {
                    c.group.as_deref().unwrap_or("").is_empty() && c.kind.as_deref().unwrap_or("Secret") == "Secret"
                })
                .map(|c| ObjectRef::new(c.namespace.as_deref().unwrap_or(gw_ns), c.name.clone()))
                .collect();
            Some(core::gateway::Listener {
                name: l.name.clone(),
                port,
                protocol,
                hostname: l.hostname.as_ref().map(|h| h.to_ascii_lowercase()),
                allowed_namespaces,
                allows_http_routes,
                certificate_refs,
            })
        })
        .collect();
    errs.into_result(core::Gateway {
        id: object_ref(g),
        order: creation_order(g, &object_ref(g)),
        class_name: g.spec.gateway_class_name.clone(),
        listeners,
        implicit: false,
    })
}

fn pool_port(errs: &mut FieldErrors, path: &str, n: i32) -> u16 {
    match u16::try_from(n) {
        Ok(p) if p > 0 => p,
        _ => {
            errs.push(path, format!("must be between 1 and 65535, got {n}"));
            0
        }
    }
}

fn pool_selector(
    errs: &mut FieldErrors,
    path: &str,
    labels: &std::collections::BTreeMap<String, String>,
) {
    if labels.is_empty() {
        errs.push(path, "must have at least 1 label");
    }
    for (k, v) in labels {
        if let Err(e) = validate::label_key(k).and_then(|()| validate::label_value(v)) {
            errs.push(format!("{path}[{k}]"), e);
        }
    }
}

/// Converts an `inference.networking.k8s.io/v1` InferencePool (the first target port serves).
pub fn inference_pool_v1(
    p: &crate::inference::v1::InferencePool,
) -> Result<core::InferencePool, FieldErrors> {
    let mut errs = FieldErrors::new();
    pool_selector(
        &mut errs,
        "spec.selector.matchLabels",
        &p.spec.selector.match_labels,
    );
    let port = match p.spec.target_ports.first() {
        Some(t) => pool_port(&mut errs, "spec.targetPorts[0].number", t.number),
        None => {
            errs.push("spec.targetPorts", "must have at least 1 port");
            0
        }
    };
    // The first port is served; the others must be ports too (an endpoint picker may choose
    // them).
    for (i, t) in p.spec.target_ports.iter().enumerate().skip(1) {
        pool_port(
            &mut errs,
            &format!("spec.targetPorts[{i}].number"),
            t.number,
        );
    }
    errs.into_result(core::InferencePool {
        id: object_ref(p),
        api: core::http_route::InferencePoolApi::V1,
        match_labels: p.spec.selector.match_labels.clone(),
        port,
        protocol: match p.spec.app_protocol {
            crate::inference::v1::AppProtocol::Http => core::Protocol::Http,
            crate::inference::v1::AppProtocol::H2c => core::Protocol::H2c,
        },
        endpoint_picker: p
            .spec
            .endpoint_picker_ref
            .as_ref()
            .map(|r| r.name.clone())
            .filter(|n| !n.is_empty()),
    })
}

/// Converts an `inference.networking.x-k8s.io/v1alpha2` InferencePool.
pub fn inference_pool_v1alpha2(
    p: &crate::inference::v1alpha2::InferencePool,
) -> Result<core::InferencePool, FieldErrors> {
    let mut errs = FieldErrors::new();
    pool_selector(&mut errs, "spec.selector", &p.spec.selector);
    let port = pool_port(
        &mut errs,
        "spec.targetPortNumber",
        p.spec.target_port_number,
    );
    errs.into_result(core::InferencePool {
        id: object_ref(p),
        api: core::http_route::InferencePoolApi::V1Alpha2,
        match_labels: p.spec.selector.clone(),
        port,
        protocol: core::Protocol::Http,
        endpoint_picker: Some(p.spec.extension_ref.name.clone()).filter(|n| !n.is_empty()),
    })
}

/// The Gateways among a route's `parentRefs` (other parent kinds are not ours and are left
/// out), namespaces defaulted to the route's.
pub fn gateway_parents(refs: &[ParentReference], route: &ObjectRef) -> Vec<core::ParentRef> {
    let mut ignored = FieldErrors::new();
    refs.iter()
        .filter(|p| {
            p.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
                && p.kind.as_deref().unwrap_or("Gateway") == "Gateway"
        })
        .filter_map(|p| parent_ref(&mut ignored, "spec.parentRefs", p, route))
        .collect()
}

/// Converts an `inference.networking.x-k8s.io/v1alpha2` InferenceModel. Target weights are
/// all set or all unset (then equal), 1 to 1,000,000.
pub fn inference_model(
    m: &crate::inference::v1alpha2::InferenceModel,
) -> Result<core::InferenceModel, FieldErrors> {
    use crate::inference::v1alpha2::inferencemodel::Criticality;
    let mut errs = FieldErrors::new();
    let id = object_ref(m);
    let spec = &m.spec;
    if spec.model_name.is_empty() {
        errs.push("spec.modelName", "must not be empty");
    }
    let r = &spec.pool_ref;
    if r.name.is_empty() {
        errs.push("spec.poolRef.name", "must not be empty");
    }
    let api = core::http_route::InferencePoolApi::from_group(&r.group);
    if api.is_none() || r.kind != "InferencePool" {
        errs.push(
            "spec.poolRef",
            format!(
                "unsupported pool {:?}: only InferencePool of the inference.networking groups",
                format!("{}/{}", r.group, r.kind)
            ),
        );
    }
    let targets = spec.target_models.as_deref().unwrap_or_default();
    let set = targets.iter().filter(|t| t.weight.is_some()).count();
    if set != 0 && set != targets.len() {
        errs.push(
            "spec.targetModels",
            "weights must be set on all targets or on none",
        );
    }
    let mut converted = Vec::with_capacity(targets.len());
    for (i, t) in targets.iter().enumerate() {
        let weight = t.weight.unwrap_or(1);
        match u32::try_from(weight) {
            Ok(w) if (1..=1_000_000).contains(&w) => converted.push((t.name.clone(), w)),
            _ => errs.push(
                format!("spec.targetModels[{i}].weight"),
                format!("must be between 1 and 1000000, got {weight}"),
            ),
        }
        if t.name.is_empty() {
            errs.push(format!("spec.targetModels[{i}].name"), "must not be empty");
        }
    }
    let criticality = match spec.criticality {
        Some(Criticality::Critical) => core::inference_model::Criticality::Critical,
        Some(Criticality::Sheddable) => core::inference_model::Criticality::Sheddable,
        Some(Criticality::Standard) | None => core::inference_model::Criticality::Standard,
    };
    let pool = (
        api.unwrap_or(core::http_route::InferencePoolApi::V1Alpha2),
        ObjectRef::new(id.namespace.clone(), r.name.clone()),
    );
    let order = creation_order(m, &id);
    errs.into_result(core::InferenceModel::new(
        id,
        spec.model_name.clone(),
        pool,
        criticality,
        order,
        converted,
    ))
}

/// `metadata.generation`, the number every status condition of the object repeats.
pub fn generation(o: &impl kube::Resource) -> Option<i64> {
    o.meta().generation
}

/// Converts a ReferenceGrant (`gateway.networking.k8s.io`, v1 or v1beta1).
pub fn reference_grant(
    g: &gateway_api::apis::standard::referencegrants::ReferenceGrant,
) -> core::ReferenceGrant {
    use core::reference_grant::{GrantFrom, GrantTo};
    core::ReferenceGrant {
        id: object_ref(g),
        from: g
            .spec
            .from
            .iter()
            .map(|f| GrantFrom {
                group: f.group.clone(),
                kind: f.kind.clone(),
                namespace: f.namespace.clone(),
            })
            .collect(),
        to: g
            .spec
            .to
            .iter()
            .map(|t| GrantTo {
                group: t.group.clone(),
                kind: t.kind.clone(),
                name: t.name.clone().filter(|n| !n.is_empty()),
            })
            .collect(),
    }
}

/// Converts a core Service: its selector and TCP ports (`targetPort` defaults to `port`).
pub fn service(s: &k8s_openapi::api::core::v1::Service) -> Result<core::Service, FieldErrors> {
    use core::service::{ServicePort, TargetPort};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let mut errs = FieldErrors::new();
    let spec = s.spec.clone().unwrap_or_default();
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        if p.protocol.as_deref().is_some_and(|proto| proto != "TCP") {
            continue;
        }
        let path = format!("spec.ports[{i}]");
        let Ok(port) = u16::try_from(p.port)
            .map_err(|_| ())
            .and_then(|n| if n == 0 { Err(()) } else { Ok(n) })
        else {
            errs.push(
                format!("{path}.port"),
                format!("must be between 1 and 65535, got {}", p.port),
            );
            continue;
        };
        let target = match &p.target_port {
            None => TargetPort::Number(port),
            Some(IntOrString::Int(n)) => match u16::try_from(*n) {
                Ok(0) => TargetPort::Number(port),
                Ok(t) => TargetPort::Number(t),
                Err(_) => {
                    errs.push(
                        format!("{path}.targetPort"),
                        format!("must be between 1 and 65535, got {n}"),
                    );
                    continue;
                }
            },
            Some(IntOrString::String(name)) => match name.parse::<u16>() {
                Ok(t) if t > 0 => TargetPort::Number(t),
                _ => TargetPort::Name(name.clone()),
            },
        };
        ports.push(ServicePort {
            port,
            target,
            protocol: core::Protocol::from_app_protocol(p.app_protocol.as_deref()),
            app_protocol: p.app_protocol.clone(),
        });
    }
    errs.into_result(core::Service {
        id: object_ref(s),
        selector: spec.selector.filter(|sel| !sel.is_empty()),
        ports,
    })
}

/// Converts an `inference.networking.x-k8s.io/v1alpha2` InferenceObjective.
pub fn inference_objective(
    o: &crate::inference::v1alpha2::InferenceObjective,
) -> Result<core::InferenceObjective, FieldErrors> {
    let mut errs = FieldErrors::new();
    let id = object_ref(o);
    let r = &o.spec.pool_ref;
    let api = core::http_route::InferencePoolApi::from_group(&r.group);
    if api.is_none() || (!r.kind.is_empty() && r.kind != "InferencePool") {
        errs.push(
            "spec.poolRef",
            format!(
                "unsupported pool {:?}: only InferencePool of the inference.networking groups",
                format!("{}/{}", r.group, r.kind)
            ),
        );
    }
    if r.name.is_empty() {
        errs.push("spec.poolRef.name", "must not be empty");
    }
    errs.into_result(core::InferenceObjective {
        pool: (
            api.unwrap_or(core::http_route::InferencePoolApi::V1),
            ObjectRef::new(id.namespace.clone(), r.name.clone()),
        ),
        id,
        priority: o.spec.priority.unwrap_or(0),
    })
}
