//! ModelRoute -> [`kthena_core::Route`], its parentRefs, and the route table of a set.

use kthena_core::{self as core, FieldErrors, ObjectRef, RouteTable, validate};

use super::{ConvertError, GATEWAY_GROUP, creation_order, object_ref};

use crate::modelroute::{self, ModelRoute, ParentReference, RateLimitUnit};

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
        rate_limit: spec.rate_limit.as_ref().map(|r| rate_limit(&mut errs, r)),
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

fn rate_limit(errs: &mut FieldErrors, r: &modelroute::RateLimit) -> core::RateLimit {
    if let Some(l) = &r.limit_by
        && (l.kind == modelroute::LimitByType::Header)
            != l.header.as_ref().is_some_and(|h| !h.is_empty())
    {
        errs.push(
            "spec.rateLimit.limitBy",
            "header is set exactly when type is Header",
        );
    }
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
        limit_by: match &r.limit_by {
            None => core::LimitBy::Model,
            Some(l) => match l.kind {
                modelroute::LimitByType::Model => core::LimitBy::Model,
                modelroute::LimitByType::User => core::LimitBy::User,
                modelroute::LimitByType::Header => {
                    core::LimitBy::Header(l.header.clone().unwrap_or_default().to_ascii_lowercase())
                }
            },
        },
    }
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
