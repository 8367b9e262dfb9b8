//! HTTPRoute (`gateway.networking.k8s.io/v1`, Gateway API v1.5.1 types of the `gateway-api`
//! crate) -> [`kthena_core::HttpRoute`].
//!
//! Upstream defaults are applied here, as the API server would: a rule without matches and a
//! match without path get `PathPrefix /`, header and query matches are `Exact`, a backendRef is
//! a core `Service` in the route's namespace with weight 1, a redirect answers 302. Every rule
//! of [`kthena_core::http_route::validate`] is then checked.

use std::str::FromStr;
use std::time::Duration;

use gateway_api::apis::standard::httproutes::{
    HttpRoute, HttpRouteRules, HttpRouteRulesBackendRefs, HttpRouteRulesFilters,
    HttpRouteRulesFiltersRequestRedirect, HttpRouteRulesFiltersRequestRedirectPathType,
    HttpRouteRulesFiltersRequestRedirectScheme, HttpRouteRulesFiltersType,
    HttpRouteRulesFiltersUrlRewrite, HttpRouteRulesFiltersUrlRewritePathType,
    HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesMethod,
    HttpRouteRulesMatchesPathType, HttpRouteRulesMatchesQueryParamsType, HttpRouteRulesTimeouts,
};
use kthena_core::http_route::{
    self as hr, BackendRef, BackendTarget, Filter, FullRegex, HeaderModifier, HttpMatch,
    InferencePoolApi, PathMatch, PathModifier, Redirect, Timeouts, UrlRewrite, ValueMatch,
};
use kthena_core::{self as core, FieldErrors, ObjectRef};

use super::object_ref;

/// Converts an HTTPRoute: defaults applied, regexes compiled, header names lowercased, backend
/// namespaces resolved, every rule of [`hr::validate`] checked.
///
/// A backendRef of a group/kind we do not serve becomes [`BackendTarget::Unsupported`] rather
/// than an error, so the route stays usable and its status can say `InvalidKind`. Filter types
/// we do not implement become [`Filter::Unsupported`]. Filters on a backendRef
/// (implementation-specific) are rejected.
pub fn http_route(r: &HttpRoute) -> Result<core::HttpRoute, FieldErrors> {
    let id = object_ref(r);
    let mut errs = FieldErrors::new();
    if r.metadata.name.as_deref().is_none_or(str::is_empty) {
        errs.push("metadata.name", "must not be empty");
    }
    let spec = &r.spec;
    let rules = spec
        .rules
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, rule)| http_rule(&mut errs, &format!("spec.rules[{i}]"), rule, &id.namespace))
        .collect();
    let route = core::HttpRoute {
        order: super::creation_order(r, &id),
        id,
        hostnames: spec.hostnames.clone().unwrap_or_default(),
        rules,
    };
    errs.extend(hr::validate(&route));
    errs.into_result(route)
}

fn http_rule(errs: &mut FieldErrors, path: &str, r: &HttpRouteRules, ns: &str) -> core::HttpRule {
    let matches = r
        .matches
        .iter()
        .flatten()
        .enumerate()
        .map(|(j, m)| http_match(errs, &format!("{path}.matches[{j}]"), m))
        .collect();
    let filters = r
        .filters
        .iter()
        .flatten()
        .enumerate()
        .map(|(j, f)| filter(errs, &format!("{path}.filters[{j}]"), f))
        .collect();
    let backends = r
        .backend_refs
        .iter()
        .flatten()
        .enumerate()
        .map(|(j, b)| backend(errs, &format!("{path}.backendRefs[{j}]"), b, ns))
        .collect();
    let timeouts = r
        .timeouts
        .as_ref()
        .map(|t| timeouts(errs, &format!("{path}.timeouts"), t))
        .unwrap_or_default();
    let name = r.name.clone().filter(|n| !n.is_empty());
    core::HttpRule::new(name, matches, filters, backends, timeouts)
}

fn http_match(errs: &mut FieldErrors, path: &str, m: &HttpRouteRulesMatches) -> HttpMatch {
    let path_match = match &m.path {
        None => PathMatch::Prefix("/".into()),
        Some(p) => {
            let value = p.value.clone().unwrap_or_else(|| "/".into());
            match p.r#type {
                Some(HttpRouteRulesMatchesPathType::Exact) => PathMatch::Exact(value),
                None | Some(HttpRouteRulesMatchesPathType::PathPrefix) => PathMatch::Prefix(value),
                Some(HttpRouteRulesMatchesPathType::RegularExpression) => {
                    regex(errs, &format!("{path}.path.value"), &value)
                        .map_or_else(|| PathMatch::Prefix("/".into()), PathMatch::Regex)
                }
            }
        }
    };
    let headers = m
        .headers
        .iter()
        .flatten()
        .enumerate()
        .map(|(k, h)| {
            let is_regex = h.r#type == Some(HttpRouteRulesMatchesHeadersType::RegularExpression);
            let vpath = format!("{path}.headers[{k}].value");
            let value = value_match(errs, &vpath, is_regex, &h.value);
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    let query = m
        .query_params
        .iter()
        .flatten()
        .enumerate()
        .map(|(k, q)| {
            let is_regex =
                q.r#type == Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression);
            let vpath = format!("{path}.queryParams[{k}].value");
            (
                q.name.clone(),
                value_match(errs, &vpath, is_regex, &q.value),
            )
        })
        .collect();
    HttpMatch {
        path: path_match,
        headers,
        query,
        method: m.method.as_ref().map(|m| method(m).to_owned()),
    }
}

fn regex(errs: &mut FieldErrors, path: &str, pattern: &str) -> Option<FullRegex> {
    FullRegex::new(pattern).map_err(|e| errs.push(path, e)).ok()
}

/// A regex that does not compile is reported and replaced by a placeholder, so the indexes of
/// later entries (and their error paths) stay those of the spec.
fn value_match(errs: &mut FieldErrors, path: &str, is_regex: bool, value: &str) -> ValueMatch {
    if is_regex {
        regex(errs, path, value).map_or_else(|| ValueMatch::Exact(String::new()), ValueMatch::Regex)
    } else {
        ValueMatch::Exact(value.to_owned())
    }
}

fn method(m: &HttpRouteRulesMatchesMethod) -> &'static str {
    match m {
        HttpRouteRulesMatchesMethod::Get => "GET",
        HttpRouteRulesMatchesMethod::Head => "HEAD",
        HttpRouteRulesMatchesMethod::Post => "POST",
        HttpRouteRulesMatchesMethod::Put => "PUT",
        HttpRouteRulesMatchesMethod::Delete => "DELETE",
        HttpRouteRulesMatchesMethod::Connect => "CONNECT",
        HttpRouteRulesMatchesMethod::Options => "OPTIONS",
        HttpRouteRulesMatchesMethod::Trace => "TRACE",
        HttpRouteRulesMatchesMethod::Patch => "PATCH",
    }
}

/// A filter whose settings are missing is reported and kept as [`Filter::Unsupported`], so
/// the filter indexes stay those of the spec.
fn filter(errs: &mut FieldErrors, path: &str, f: &HttpRouteRulesFilters) -> Filter {
    let missing = |errs: &mut FieldErrors, field: &str, kind: &str| {
        errs.push(
            format!("{path}.{field}"),
            format!("must be set when type is {kind}"),
        );
        Filter::Unsupported { kind: kind.into() }
    };
    match f.r#type {
        HttpRouteRulesFiltersType::RequestHeaderModifier => match &f.request_header_modifier {
            Some(m) => Filter::RequestHeaderModifier(HeaderModifier {
                set: pairs(m.set.iter().flatten().map(|h| (&h.name, &h.value))),
                add: pairs(m.add.iter().flatten().map(|h| (&h.name, &h.value))),
                remove: lowercase(m.remove.iter().flatten()),
            }),
            None => missing(errs, "requestHeaderModifier", "RequestHeaderModifier"),
        },
        HttpRouteRulesFiltersType::ResponseHeaderModifier => match &f.response_header_modifier {
            Some(m) => Filter::ResponseHeaderModifier(HeaderModifier {
                set: pairs(m.set.iter().flatten().map(|h| (&h.name, &h.value))),
                add: pairs(m.add.iter().flatten().map(|h| (&h.name, &h.value))),
                remove: lowercase(m.remove.iter().flatten()),
            }),
            None => missing(errs, "responseHeaderModifier", "ResponseHeaderModifier"),
        },
        HttpRouteRulesFiltersType::RequestRedirect => match &f.request_redirect {
            Some(r) => {
                Filter::RequestRedirect(redirect(errs, &format!("{path}.requestRedirect"), r))
            }
            None => missing(errs, "requestRedirect", "RequestRedirect"),
        },
        HttpRouteRulesFiltersType::UrlRewrite => match &f.url_rewrite {
            Some(r) => Filter::UrlRewrite(url_rewrite(errs, &format!("{path}.urlRewrite"), r)),
            None => missing(errs, "urlRewrite", "URLRewrite"),
        },
        HttpRouteRulesFiltersType::RequestMirror => Filter::Unsupported {
            kind: "RequestMirror".into(),
        },
        HttpRouteRulesFiltersType::ExtensionRef => Filter::Unsupported {
            kind: "ExtensionRef".into(),
        },
        HttpRouteRulesFiltersType::Cors => Filter::Unsupported {
            kind: "CORS".into(),
        },
    }
}

fn pairs<'a>(list: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<(String, String)> {
    list.map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect()
}

fn lowercase<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    names.map(|n| n.to_ascii_lowercase()).collect()
}

fn redirect(
    errs: &mut FieldErrors,
    path: &str,
    r: &HttpRouteRulesFiltersRequestRedirect,
) -> Redirect {
    let status_code = match r.status_code {
        None => hr::DEFAULT_REDIRECT_STATUS,
        Some(c) => u16::try_from(c).unwrap_or_else(|_| {
            errs.push(
                format!("{path}.statusCode"),
                format!("unsupported status code {c}: must be one of 301, 302, 303, 307, 308"),
            );
            hr::DEFAULT_REDIRECT_STATUS
        }),
    };
    Redirect {
        scheme: r.scheme.as_ref().map(|s| {
            match s {
                HttpRouteRulesFiltersRequestRedirectScheme::Http => "http",
                HttpRouteRulesFiltersRequestRedirectScheme::Https => "https",
            }
            .to_owned()
        }),
        hostname: r.hostname.clone(),
        path: r.path.as_ref().and_then(|p| {
            path_modifier(
                errs,
                &format!("{path}.path"),
                p.r#type == HttpRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath,
                p.replace_full_path.as_deref(),
                p.replace_prefix_match.as_deref(),
            )
        }),
        port: r.port.and_then(|p| match u16::try_from(p) {
            Ok(p) if p > 0 => Some(p),
            _ => {
                errs.push(
                    format!("{path}.port"),
                    format!("must be between 1 and 65535, got {p}"),
                );
                None
            }
        }),
        status_code,
    }
}

fn url_rewrite(
    errs: &mut FieldErrors,
    path: &str,
    r: &HttpRouteRulesFiltersUrlRewrite,
) -> UrlRewrite {
    UrlRewrite {
        hostname: r.hostname.clone(),
        path: r.path.as_ref().and_then(|p| {
            path_modifier(
                errs,
                &format!("{path}.path"),
                p.r#type == HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath,
                p.replace_full_path.as_deref(),
                p.replace_prefix_match.as_deref(),
            )
        }),
    }
}

fn path_modifier(
    errs: &mut FieldErrors,
    path: &str,
    full_path_type: bool,
    full: Option<&str>,
    prefix: Option<&str>,
) -> Option<PathModifier> {
    let (wanted, other, kind) = if full_path_type {
        (
            ("replaceFullPath", full),
            ("replacePrefixMatch", prefix),
            "ReplaceFullPath",
        )
    } else {
        (
            ("replacePrefixMatch", prefix),
            ("replaceFullPath", full),
            "ReplacePrefixMatch",
        )
    };
    if other.1.is_some() {
        errs.push(
            format!("{path}.{}", other.0),
            format!("must not be set when type is {kind}"),
        );
    }
    let Some(value) = wanted.1 else {
        errs.push(
            format!("{path}.{}", wanted.0),
            format!("must be set when type is {kind}"),
        );
        return None;
    };
    Some(if full_path_type {
        PathModifier::ReplaceFullPath(value.to_owned())
    } else {
        PathModifier::ReplacePrefixMatch(value.to_owned())
    })
}

fn backend(
    errs: &mut FieldErrors,
    path: &str,
    b: &HttpRouteRulesBackendRefs,
    ns: &str,
) -> BackendRef {
    let group = b.group.as_deref().unwrap_or("");
    let kind = b.kind.as_deref().unwrap_or("Service");
    let object = ObjectRef::new(b.namespace.as_deref().unwrap_or(ns), b.name.as_str());
    if b.filters.as_ref().is_some_and(|f| !f.is_empty()) {
        errs.push(
            format!("{path}.filters"),
            "filters on a backendRef are not supported; put them on the rule",
        );
    }
    let weight = match b.weight {
        None => 1,
        Some(w) => u32::try_from(w).unwrap_or_else(|_| {
            errs.push(
                format!("{path}.weight"),
                format!("must not be negative, got {w}"),
            );
            0
        }),
    };
    let target = match (group, kind) {
        ("", "Service") => {
            let port = match b.port {
                None => {
                    errs.push(format!("{path}.port"), "must be set for a Service backend");
                    0
                }
                Some(p) => u16::try_from(p).ok().filter(|p| *p > 0).unwrap_or_else(|| {
                    errs.push(
                        format!("{path}.port"),
                        format!("must be between 1 and 65535, got {p}"),
                    );
                    0
                }),
            };
            BackendTarget::Service {
                service: object,
                port,
            }
        }
        (group, "InferencePool") => match InferencePoolApi::from_group(group) {
            Some(api) => BackendTarget::InferencePool { api, pool: object },
            None => unsupported(group, kind, object),
        },
        (group, kind) => unsupported(group, kind, object),
    };
    BackendRef { target, weight }
}

fn unsupported(group: &str, kind: &str, object: ObjectRef) -> BackendTarget {
    BackendTarget::Unsupported {
        group: group.to_owned(),
        kind: kind.to_owned(),
        object,
    }
}

fn timeouts(errs: &mut FieldErrors, path: &str, t: &HttpRouteRulesTimeouts) -> Timeouts {
    Timeouts {
        request: t
            .request
            .as_deref()
            .and_then(|d| duration(errs, &format!("{path}.request"), d)),
        backend_request: t
            .backend_request
            .as_deref()
            .and_then(|d| duration(errs, &format!("{path}.backendRequest"), d)),
    }
}

/// Parses a GEP-2257 duration (`1h2m3s4ms`).
fn duration(errs: &mut FieldErrors, path: &str, text: &str) -> Option<Duration> {
    gateway_api::Duration::from_str(text)
        .map(|d| Duration::new(d.as_secs(), d.subsec_nanos()))
        .map_err(|e| errs.push(path, format!("invalid duration {text:?}: {e}")))
        .ok()
}
