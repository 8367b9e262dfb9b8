//! Validation rules on converted objects, with the field paths of the Kubernetes objects.
//!
//! `kthena_api::convert` runs these after shaping an object, so the data plane, the admission
//! webhook and offline validation report the same problems with the same words.

use std::collections::{BTreeMap, HashSet};

use crate::{Backend, FieldErrors, ModelServer, Route};

/// Most LoRA adapters one ModelRoute may list.
pub const MAX_LORA_ADAPTERS: usize = 10;
/// Most rules one ModelRoute may have.
pub const MAX_RULES: usize = 16;
/// Most targets one rule may have.
pub const MAX_TARGETS: usize = 16;
/// Largest target weight.
pub const MAX_WEIGHT: u32 = 100;

/// Problems that make `route` unusable; such a route is left out of the route table.
pub fn route(route: &Route) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if route.model_name.is_none() && route.lora_adapters.is_empty() {
        errs.push("spec", "modelName and loraAdapters cannot both be empty");
    }
    if route.lora_adapters.len() > MAX_LORA_ADAPTERS {
        errs.push(
            "spec.loraAdapters",
            format!(
                "must have at most {MAX_LORA_ADAPTERS} items, got {}",
                route.lora_adapters.len()
            ),
        );
    }
    let mut seen = HashSet::new();
    for (i, lora) in route.lora_adapters.iter().enumerate() {
        if lora.is_empty() {
            errs.push(
                format!("spec.loraAdapters[{i}]"),
                "lora adapter name cannot be an empty string",
            );
        } else if !seen.insert(lora.as_str()) {
            errs.push(
                format!("spec.loraAdapters[{i}]"),
                format!("duplicate lora adapter {lora:?}"),
            );
        }
    }
    if route.rules.len() > MAX_RULES {
        errs.push(
            "spec.rules",
            format!(
                "must have at most {MAX_RULES} items, got {}",
                route.rules.len()
            ),
        );
    }
    if let Some(crate::RateLimit {
        limit_by: crate::LimitBy::Header(name),
        ..
    }) = &route.rate_limit
        && !name.is_empty()
        && let Err(e) = header_name(name)
    {
        errs.push("spec.rateLimit.limitBy.header", e);
    }
    let lora = !route.lora_adapters.is_empty();
    for (i, rule) in route.rules.iter().enumerate() {
        let path = format!("spec.rules[{i}].targetModels");
        let targets = rule.targets();
        // All weights 0 cannot send traffic anywhere: invalid, never a silent fall-through.
        // (A rule without targets is reported by the conversion.)
        if !targets.is_empty() && targets.iter().all(|t| t.weight == 0) {
            errs.push(
                &path,
                "total weight must be greater than 0, got 0 (every target has weight 0)",
            );
        }
        if lora {
            for (j, t) in targets.iter().enumerate() {
                if let Backend::ExternalProvider(provider) = &t.backend
                    && !provider.name.is_empty()
                {
                    errs.push(
                        format!("{path}[{j}].externalModelProviderName"),
                        format!(
                            "a route with loraAdapters cannot target external model provider \
                             {:?}: only ModelServers serve LoRA adapters",
                            provider.name
                        ),
                    );
                }
            }
        }
        for (j, t) in targets.iter().enumerate() {
            if t.weight > MAX_WEIGHT {
                errs.push(
                    format!("{path}[{j}].weight"),
                    format!("must be at most {MAX_WEIGHT}, got {}", t.weight),
                );
            }
            if t.backend.object().name.is_empty() {
                let field = match t.backend {
                    Backend::ModelServer(_) => "modelServerName",
                    Backend::ExternalProvider(_) => "externalModelProviderName",
                };
                errs.push(format!("{path}[{j}].{field}"), "must not be empty");
            }
        }
    }
    errs
}

/// Problems that make `server` unusable.
pub fn model_server(server: &ModelServer) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let selector = "spec.workloadSelector.matchLabels";
    if server.match_labels.is_empty() {
        errs.push(selector, "must have at least 1 label");
    }
    labels(&mut errs, selector, &server.match_labels);
    if let Some(pd) = &server.pd_group {
        let path = "spec.workloadSelector.pdGroup";
        if pd.group_key.is_empty() {
            errs.push(format!("{path}.groupKey"), "must not be empty");
        } else if let Err(e) = label_key(&pd.group_key) {
            errs.push(format!("{path}.groupKey"), e);
        }
        for (field, set) in [
            ("prefillLabels", &pd.prefill_labels),
            ("decodeLabels", &pd.decode_labels),
        ] {
            if set.is_empty() {
                errs.push(format!("{path}.{field}"), "must have at least 1 label");
            }
            labels(&mut errs, &format!("{path}.{field}"), set);
        }
    }
    errs
}

fn labels(errs: &mut FieldErrors, path: &str, set: &BTreeMap<String, String>) {
    for (k, v) in set {
        if let Err(e) = label_key(k) {
            errs.push(format!("{path}[{k}]"), e);
        }
        if let Err(e) = label_value(v) {
            errs.push(format!("{path}[{k}]"), e);
        }
    }
}

/// Checks a Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters of alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let ok = !p.is_empty() && p.len() <= 253 && p.split('.').all(dns_label);
        if !ok {
            return Err(format!(
                "invalid label key {key:?}: prefix must be a DNS subdomain"
            ));
        }
    }
    if name.is_empty() || !is_label_name(name) {
        return Err(format!(
            "invalid label key {key:?}: name must be 1-63 alphanumerics, '-', '_' or '.', \
             starting and ending with an alphanumeric"
        ));
    }
    Ok(())
}

/// Checks a Kubernetes label value: empty, or what a label name allows.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: must be at most 63 alphanumerics, '-', '_' or '.', \
             starting and ending with an alphanumeric"
        ))
    }
}

/// An RFC 1123 DNS label: 1-63 lowercase alphanumerics or '-', not starting or ending with '-'.
pub fn dns_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Checks an HTTP header name (an RFC 9110 token).
pub fn header_name(name: &str) -> Result<(), String> {
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    if !name.is_empty() && name.bytes().all(token) {
        Ok(())
    } else {
        Err(format!("invalid header name {name:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_and_values() {
        for ok in ["app", "app.kubernetes.io/name", "a_b-c.d", "x/y"] {
            assert_eq!(label_key(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "Foo/bar",
            "a/",
            "/a",
            "a b",
            &"x".repeat(64),
        ] {
            assert!(label_key(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(label_value(""), Ok(()));
        assert!(label_value("v 1").is_err());
    }

    #[test]
    fn header_names() {
        assert_eq!(header_name("user-type"), Ok(()));
        assert!(header_name("user type").is_err());
        assert!(header_name("").is_err());
    }
}
