//! Build-time rules of an HTTPRoute, with the field paths of the Kubernetes object.
//!
//! The CRD's own schema and CEL rules catch most of these at the API server; they are checked
//! again here because routes also come from manifest folders and older CRDs, and so the webhook,
//! the status and the data plane agree on what is usable.

use super::{Filter, HeaderModifier, HttpRoute, HttpRule, PathMatch, PathModifier};
use crate::FieldErrors;
use crate::validate::header_name;

/// Largest backend weight.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// Redirect status codes the spec allows.
const REDIRECT_CODES: [u16; 5] = [301, 302, 303, 307, 308];

/// Problems that make `route` unusable; such a route is left out of every table.
pub fn validate(route: &HttpRoute) -> FieldErrors {
    let mut errs = FieldErrors::new();
    for (i, h) in route.hostnames.iter().enumerate() {
        if let Err(e) = hostname(h, true) {
            errs.push(format!("spec.hostnames[{i}]"), e);
        }
    }
    for (i, rule) in route.rules.iter().enumerate() {
        rule_errors(&mut errs, &format!("spec.rules[{i}]"), rule);
    }
    errs
}

fn rule_errors(errs: &mut FieldErrors, path: &str, rule: &HttpRule) {
    for (j, m) in rule.matches().iter().enumerate() {
        let path = format!("{path}.matches[{j}]");
        if let PathMatch::Exact(v) | PathMatch::Prefix(v) = &m.path
            && !v.starts_with('/')
        {
            errs.push(
                format!("{path}.path.value"),
                format!("must start with \"/\", got {v:?}"),
            );
        }
        for (k, (name, _)) in m.headers.iter().enumerate() {
            if let Err(e) = header_name(name) {
                errs.push(format!("{path}.headers[{k}].name"), e);
            }
        }
        for (k, (name, _)) in m.query.iter().enumerate() {
            if name.is_empty() {
                errs.push(format!("{path}.queryParams[{k}].name"), "must not be empty");
            }
        }
        if let Some(method) = &m.method
            && header_name(method).is_err()
        {
            errs.push(
                format!("{path}.method"),
                format!("invalid method {method:?}"),
            );
        }
    }

    let filters = rule.filters();
    let has = |kind: &str| filters.iter().any(|f| f.kind() == kind);
    if has("RequestRedirect") && has("URLRewrite") {
        errs.push(
            format!("{path}.filters"),
            "requestRedirect and urlRewrite cannot be used in the same rule",
        );
    }
    if has("RequestRedirect") && !rule.backends().is_empty() {
        errs.push(
            format!("{path}.backendRefs"),
            format!(
                "must be empty when the rule has a requestRedirect filter, got {} backends",
                rule.backends().len()
            ),
        );
    }
    for (j, f) in filters.iter().enumerate() {
        let fpath = format!("{path}.filters[{j}]");
        if !matches!(f, Filter::Unsupported { .. })
            && filters[..j].iter().any(|g| g.kind() == f.kind())
        {
            errs.push(&fpath, format!("{} filter cannot be repeated", f.kind()));
        }
        let fpath = format!("{fpath}.{}", f.field());
        match f {
            Filter::RequestHeaderModifier(m) | Filter::ResponseHeaderModifier(m) => {
                header_modifier(errs, &fpath, m);
            }
            Filter::RequestRedirect(r) => {
                if let Some(s) = &r.scheme
                    && s != "http"
                    && s != "https"
                {
                    errs.push(
                        format!("{fpath}.scheme"),
                        format!("unsupported scheme {s:?}: must be http or https"),
                    );
                }
                if let Some(h) = &r.hostname
                    && let Err(e) = hostname(h, false)
                {
                    errs.push(format!("{fpath}.hostname"), e);
                }
                if r.port == Some(0) {
                    errs.push(
                        format!("{fpath}.port"),
                        "must be between 1 and 65535, got 0",
                    );
                }
                if !REDIRECT_CODES.contains(&r.status_code) {
                    errs.push(
                        format!("{fpath}.statusCode"),
                        format!(
                            "unsupported status code {}: must be one of 301, 302, 303, 307, 308",
                            r.status_code
                        ),
                    );
                }
                path_modifier(errs, &format!("{fpath}.path"), r.path.as_ref(), rule);
            }
            Filter::UrlRewrite(r) => {
                if let Some(h) = &r.hostname
                    && let Err(e) = hostname(h, false)
                {
                    errs.push(format!("{fpath}.hostname"), e);
                }
                path_modifier(errs, &format!("{fpath}.path"), r.path.as_ref(), rule);
            }
            Filter::Unsupported { .. } => {}
        }
    }

    for (k, b) in rule.backends().iter().enumerate() {
        let bpath = format!("{path}.backendRefs[{k}]");
        if b.weight > MAX_WEIGHT {
            errs.push(
                format!("{bpath}.weight"),
                format!("must be at most {MAX_WEIGHT}, got {}", b.weight),
            );
        }
        let (_, _, object) = b.target.group_kind_object();
        if object.name.is_empty() {
            errs.push(format!("{bpath}.name"), "must not be empty");
        }
    }

    let t = rule.timeouts();
    if let (Some(request), Some(backend)) = (t.request, t.backend_request)
        && !request.is_zero()
        && backend > request
    {
        errs.push(
            format!("{path}.timeouts.backendRequest"),
            format!("must not be longer than request ({request:?}), got {backend:?}"),
        );
    }
}

fn header_modifier(errs: &mut FieldErrors, path: &str, m: &HeaderModifier) {
    let names = m
        .set
        .iter()
        .map(|(n, _)| ("set", n))
        .chain(m.add.iter().map(|(n, _)| ("add", n)))
        .chain(m.remove.iter().map(|n| ("remove", n)));
    let mut seen: Vec<(&str, &String)> = Vec::new();
    let mut index = (0, "");
    for (list, name) in names {
        if index.1 != list {
            index = (0, list);
        }
        let field = if list == "remove" {
            format!("{path}.remove[{}]", index.0)
        } else {
            format!("{path}.{list}[{}].name", index.0)
        };
        index.0 += 1;
        if let Err(e) = header_name(name) {
            errs.push(field, e);
        } else if let Some((other, _)) = seen.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)) {
            errs.push(
                field,
                format!("header {name:?} is already modified by {other}: one action per header"),
            );
        } else {
            seen.push((list, name));
        }
    }
}

fn path_modifier(errs: &mut FieldErrors, path: &str, m: Option<&PathModifier>, rule: &HttpRule) {
    match m {
        Some(PathModifier::ReplaceFullPath(p)) if !p.starts_with('/') => {
            errs.push(
                format!("{path}.replaceFullPath"),
                format!("must start with \"/\", got {p:?}"),
            );
        }
        Some(PathModifier::ReplacePrefixMatch(p)) => {
            let field = format!("{path}.replacePrefixMatch");
            if !p.is_empty() && !p.starts_with('/') {
                errs.push(&field, format!("must start with \"/\", got {p:?}"));
            }
            match rule.matches() {
                [m] if matches!(m.path, PathMatch::Prefix(_)) => {}
                [m] => errs.push(
                    field,
                    format!("requires a PathPrefix match, got {}", m.path.kind()),
                ),
                ms => errs.push(
                    field,
                    format!(
                        "requires exactly one PathPrefix match in the rule, got {} matches",
                        ms.len()
                    ),
                ),
            }
        }
        None | Some(PathModifier::ReplaceFullPath(_)) => {}
    }
}

/// Checks a route or filter hostname: a lowercase DNS name (RFC 1123), not an IP address;
/// `*.` in front when `wildcard` allows it.
fn hostname(h: &str, wildcard: bool) -> Result<(), String> {
    let name = if wildcard {
        h.strip_prefix("*.").unwrap_or(h)
    } else {
        h
    };
    if name.len() > 253 || !name.split('.').all(crate::validate::dns_label) {
        let star = if wildcard {
            ", optionally starting with \"*.\""
        } else {
            ""
        };
        return Err(format!(
            "invalid hostname {h:?}: must be a lowercase DNS name{star}"
        ));
    }
    if name
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "invalid hostname {h:?}: must be a name, not an IP address"
        ));
    }
    Ok(())
}
