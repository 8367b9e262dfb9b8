//! ExternalModelProvider -> [`kthena_core::ExternalProvider`], and a Secret's data as
//! provider credentials.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1;
use kthena_core::provider::{self, AuthScheme, ProviderAuth, ProviderKind};
use kthena_core::{self as core, FieldErrors, ObjectRef, validate};

use super::object_ref;
use crate::externalmodelprovider::{self as emp, ExternalModelProvider};

/// Converts an ExternalModelProvider, checking Kthena's rules: an `https://` base URL with a
/// host and no user info, query or fragment; static header names valid and not reserved,
/// values without CR or LF; a Secret reference with a name and a key, not optional.
pub fn external_provider(p: &ExternalModelProvider) -> Result<core::ExternalProvider, FieldErrors> {
    let mut errs = FieldErrors::new();
    let spec = &p.spec;
    let id = object_ref(p);
    let base_url = match base_url(&spec.base_url) {
        Ok(u) => u,
        Err(e) => {
            errs.push("spec.baseURL", e);
            String::new()
        }
    };
    if let Some(m) = &spec.model
        && m.len() > 256
    {
        errs.push("spec.model", "must be at most 256 characters");
    }
    let kind = match spec.provider_type {
        emp::ProviderType::OpenAI => ProviderKind::OpenAi,
        emp::ProviderType::Anthropic => ProviderKind::Anthropic,
    };
    let mut headers = Vec::new();
    for (name, value) in &spec.headers {
        let path = format!("spec.headers[{name}]");
        if let Err(e) = validate::header_name(name) {
            errs.push(path, e);
        } else if provider::RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            errs.push(path, format!("header {name:?} is reserved"));
        } else if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            errs.push(path, "header value must not contain CR or LF");
        } else {
            headers.push((name.clone(), value.clone()));
        }
    }
    let auth = spec.auth.as_ref().map(|a| {
        let r = &a.secret_ref;
        if r.name.is_empty() {
            errs.push("spec.auth.secretRef.name", "must not be empty");
        }
        if r.key.is_empty() {
            errs.push("spec.auth.secretRef.key", "must not be empty");
        }
        if r.optional == Some(true) {
            errs.push("spec.auth.secretRef.optional", "must not be true");
        }
        let scheme = match (a.scheme, kind) {
            (Some(emp::AuthScheme::Bearer), _) => AuthScheme::Bearer,
            (Some(emp::AuthScheme::ApiKey), _) => AuthScheme::ApiKey,
            (None, ProviderKind::OpenAi) => AuthScheme::Bearer,
            (None, ProviderKind::Anthropic) => AuthScheme::ApiKey,
        };
        ProviderAuth {
            scheme,
            secret: ObjectRef::new(id.namespace.clone(), r.name.clone()),
            key: r.key.clone(),
        }
    });
    errs.into_result(core::ExternalProvider {
        id,
        kind,
        base_url,
        model: spec.model.clone().filter(|m| !m.is_empty()),
        insecure_skip_verify: spec.insecure_skip_verify,
        auth,
        headers,
    })
}

/// `url` checked and without a trailing `/`.
fn base_url(url: &str) -> Result<String, String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(format!("must be an https:// URL, got {url:?}"));
    };
    if url.contains(['?', '#']) {
        return Err(format!("must have no query or fragment, got {url:?}"));
    }
    if url
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!(
            "must not contain spaces or control characters, got {url:?}"
        ));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("must have no user info, got {url:?}"));
    }
    let host = match authority.rsplit_once(':') {
        // An IPv6 literal's colons are inside brackets.
        Some((host, port)) if !port.contains(']') => {
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("invalid port {port:?} in {url:?}"));
            }
            host
        }
        _ => authority,
    };
    if host.is_empty() {
        return Err(format!("must have a host, got {url:?}"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// A Secret's values by key (`data`, then `stringData` for keys `data` lacks), for provider
/// credentials. `None` when it holds none.
pub fn secret_data(secret: &v1::Secret) -> Option<BTreeMap<String, Vec<u8>>> {
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.entry(k.clone())
            .or_insert_with(|| v.clone().into_bytes());
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::base_url;

    #[test]
    fn base_urls_follow_kthenas_rules() {
        for ok in [
            "https://api.openai.com/v1",
            "https://api.anthropic.com",
            "https://127.0.0.1:8443/",
            "https://[::1]:8443/v1",
        ] {
            assert!(base_url(ok).is_ok(), "{ok} refused");
        }
        assert_eq!(
            base_url("https://api.example/v1/").as_deref(),
            Ok("https://api.example/v1")
        );
        for bad in [
            "http://api.example",
            "https://",
            "https://user:pw@api.example",
            "https://api.example/v1?x=1",
            "https://api.example/#f",
            "https://api.example:0",
            "https://api.example:http",
        ] {
            assert!(base_url(bad).is_err(), "{bad} accepted");
        }
    }
}
