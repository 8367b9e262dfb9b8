//! Requests a ModelRoute sends to an ExternalModelProvider: the provider resolved with its
//! credential ([`ProviderTarget`], published by the Index with each configuration), the
//! request built (allowed client headers, static headers, credential, `anthropic-version`,
//! `model` rewritten, `include_usage` on OpenAI streams, OpenAI chat translated for
//! Anthropic), sent once over the egress client ([`crate::upstream::egress`]), and the
//! answer relayed chunk by chunk: a provider's own error status passes through as it came,
//! recorded with `error_origin=upstream`.
//!
//! The credential is a sensitive `HeaderValue`: it is never logged, dumped or formatted.

pub mod anthropic;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use kthena_core::provider::{self, AuthScheme, Plan, ProviderKind};
use kthena_core::{CredentialState, ExternalProvider, ObjectRef};

use crate::body::BodyView;
use crate::error::RouterError;
use crate::exchange::Exchange;
use crate::handlers::RouterContext;
use crate::source::SecretData;
use crate::upstream::Clients;

/// The longest a provider may take to answer with its response headers.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Every provider in force, by namespace and name.
pub type ProviderMap = foldhash::HashMap<ObjectRef, Arc<ProviderTarget>>;

/// A provider as requests use it: its spec, its parsed base URL and its credential.
pub struct ProviderTarget {
    /// The converted spec.
    pub spec: Arc<ExternalProvider>,
    /// Whether the credential resolved.
    pub state: CredentialState,
    credential: Option<(HeaderName, HeaderValue)>,
    authority: awc::http::uri::Authority,
    base_path: String,
}

impl std::fmt::Debug for ProviderTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTarget")
            .field("id", &self.spec.id)
            .field("state", &self.state)
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

/// The credential state of `spec` against the Secrets in force.
pub fn credential_state(
    spec: &ExternalProvider,
    secrets: &HashMap<ObjectRef, SecretData>,
) -> CredentialState {
    credential(spec, secrets).0
}

fn credential(
    spec: &ExternalProvider,
    secrets: &HashMap<ObjectRef, SecretData>,
) -> (CredentialState, Option<(HeaderName, HeaderValue)>) {
    let Some(auth) = &spec.auth else {
        return (CredentialState::NotRequired, None);
    };
    let Some(data) = secrets.get(&auth.secret) else {
        return (CredentialState::SecretNotFound(auth.secret.clone()), None);
    };
    let value = match data.0.get(&auth.key) {
        Some(v) if !v.trim_ascii().is_empty() => v.trim_ascii(),
        _ => {
            return (
                CredentialState::KeyNotFound(auth.secret.clone(), auth.key.clone()),
                None,
            );
        }
    };
    let (name, value) = match auth.scheme {
        AuthScheme::Bearer => {
            let mut v = b"Bearer ".to_vec();
            v.extend_from_slice(value);
            (header::AUTHORIZATION, v)
        }
        AuthScheme::ApiKey => (HeaderName::from_static("x-api-key"), value.to_vec()),
    };
    match HeaderValue::from_bytes(&value) {
        Ok(mut v) => {
            v.set_sensitive(true);
            (CredentialState::Resolved, Some((name, v)))
        }
        Err(_) => (
            CredentialState::Invalid(auth.secret.clone(), auth.key.clone()),
            None,
        ),
    }
}

impl ProviderTarget {
    /// `spec` with its credential looked up in `secrets`; `None` when its base URL does not
    /// parse as a URI (the conversion checked its shape already).
    pub fn resolve(
        spec: Arc<ExternalProvider>,
        secrets: &HashMap<ObjectRef, SecretData>,
    ) -> Option<Self> {
        let rest = spec.base_url.strip_prefix("https://")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let authority = awc::http::uri::Authority::try_from(authority).ok()?;
        let (state, credential) = credential(&spec, secrets);
        Some(Self {
            base_path: path.trim_end_matches('/').to_owned(),
            spec,
            state,
            credential,
            authority,
        })
    }
}

/// Every provider of `providers` resolved against `secrets`.
pub fn resolve_all(
    providers: &[Arc<ExternalProvider>],
    secrets: &HashMap<ObjectRef, SecretData>,
) -> ProviderMap {
    providers
        .iter()
        .filter_map(|p| {
            let t = ProviderTarget::resolve(p.clone(), secrets);
            if t.is_none() {
                tracing::warn!(provider = %p.id, "provider base URL does not parse: not served");
            }
            t.map(|t| (p.id.clone(), Arc::new(t)))
        })
        .collect()
}

/// Sends a request a ModelRoute picked provider `id` for.
pub async fn forward(
    req: &HttpRequest,
    body: &Bytes,
    view: &BodyView,
    id: &ObjectRef,
    ctx: &RouterContext,
    clients: &Clients,
    mut ex: Exchange,
) -> Result<HttpResponse, (RouterError, Exchange)> {
    ex.provider = id.key();
    let Some(target) = ctx.shared.providers.load().get(id).cloned() else {
        return Err((RouterError::ProviderNotFound(id.clone()), ex));
    };
    if !target.state.usable() {
        return Err((RouterError::ProviderNotReady(id.clone()), ex));
    }
    let spec = &target.spec;
    let path = req.path();
    let Some(plan) = spec.plan(path) else {
        return Err((
            RouterError::ProviderPath(kind_name(spec.kind), path.to_owned()),
            ex,
        ));
    };
    ex.upstream_model = spec.model.clone().unwrap_or_else(|| view.model.clone());
    let (upstream_body, upstream_path, translate) = match plan {
        Plan::PassThrough => {
            // Only OpenAI completion streams know `stream_options`.
            let inject = spec.kind == ProviderKind::OpenAi
                && matches!(path, "/v1/chat/completions" | "/v1/completions")
                && view.needs_usage_injection();
            (
                (view.rewrite(body, spec.model.as_deref(), inject), inject),
                path,
                None,
            )
        }
        Plan::ChatToMessages => match anthropic::chat_to_messages(body, &ex.upstream_model) {
            Ok(b) => (
                (Bytes::from(b), false),
                "/v1/messages",
                Some(view.include_usage),
            ),
            Err(e) => return Err((RouterError::InvalidJson(e), ex)),
        },
    };
    let (upstream_body, hide_usage) = upstream_body;
    let request = build(req, &target, upstream_path, clients, &ex.request_id);
    ex.attempts = 1;
    ex.upstream_started = Some(std::time::Instant::now());
    ex.upstream_active();
    let sent = actix_rt::time::timeout(RESPONSE_TIMEOUT, request.send_body(upstream_body)).await;
    let mut resp = match sent {
        Err(_) => return Err((RouterError::UpstreamTimeout(RESPONSE_TIMEOUT), ex)),
        Ok(Err(e)) => {
            tracing::debug!(provider = %id, error = %e, "provider request failed");
            return Err((RouterError::ProviderProxy(id.clone(), e.to_string()), ex));
        }
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status();
    ex.upstream_status = Some(status.as_u16());
    if !status.is_success() {
        ex.error_origin = "upstream";
        ex.upstream_error = Some((
            "upstream_response",
            format!("provider {id} returned HTTP {}", status.as_u16()),
        ));
    }
    let stream = view.stream;
    match translate {
        Some(include_usage) if stream && status.is_success() => {
            let relay = crate::proxy::Relay {
                stream,
                hide_usage: false,
                path,
                response_headers: &[],
                translate: Some(anthropic::StreamTranslator::new(include_usage)),
            };
            Ok(crate::proxy::respond(
                resp,
                None,
                relay,
                ex,
                ctx.timeouts.upstream_idle,
            ))
        }
        Some(_) => {
            // A whole answer (or an error): read, translated, sent.
            ex.headers_at = Some(std::time::Instant::now());
            let raw = match resp.body().limit(ctx.max_body_bytes.max(16 << 20)).await {
                Ok(b) => b,
                Err(e) => {
                    return Err((RouterError::ProviderProxy(id.clone(), e.to_string()), ex));
                }
            };
            let out = if status.is_success() {
                match anthropic::message_to_chat(&raw) {
                    Ok((b, usage)) => {
                        ex.usage = usage;
                        b
                    }
                    Err(e) => {
                        return Err((RouterError::ProviderProxy(id.clone(), e), ex));
                    }
                }
            } else {
                anthropic::error_to_openai(&raw, status.as_u16())
            };
            let mut builder = HttpResponse::build(status);
            for name in ["retry-after", "request-id", "x-request-id"] {
                if let Some(v) = resp.headers().get(name) {
                    builder.insert_header((name, v.clone()));
                }
            }
            ex.finish(status.as_u16(), None);
            Ok(builder.content_type("application/json").body(out))
        }
        None => {
            let relay = crate::proxy::Relay {
                stream,
                hide_usage,
                path,
                response_headers: &[],
                translate: None,
            };
            Ok(crate::proxy::respond(
                resp,
                None,
                relay,
                ex,
                ctx.timeouts.upstream_idle,
            ))
        }
    }
}

/// `OpenAI` or `Anthropic`, as the spec spells the kind.
fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "OpenAI",
        ProviderKind::Anthropic => "Anthropic",
    }
}

/// The upstream request: the provider's URL for `path` (the client's query kept), the
/// client headers a provider may see, the static headers, the credential, `anthropic-version`
/// for Anthropic, a JSON content type and the request id.
fn build(
    req: &HttpRequest,
    target: &ProviderTarget,
    path: &str,
    clients: &Clients,
    request_id: &str,
) -> awc::ClientRequest {
    let spec = &target.spec;
    let path_and_query = provider::upstream_path(&target.base_path, path, req.uri().query());
    let mut parts = awc::http::uri::Parts::default();
    parts.scheme = Some(awc::http::uri::Scheme::HTTPS);
    parts.authority = Some(target.authority.clone());
    parts.path_and_query = awc::http::uri::PathAndQuery::try_from(path_and_query).ok();
    let client = clients.provider(spec.insecure_skip_verify);
    let mut up = match awc::http::Uri::from_parts(parts) {
        Ok(uri) => client.post(uri),
        // Reported by awc when sent.
        Err(_) => client.post(format!("https://{}{path}", target.authority)),
    }
    .no_decompress();
    for (name, value) in req.headers() {
        if provider::FORWARDED_HEADERS.contains(&name.as_str()) {
            up = up.append_header((name.clone(), value.clone()));
        }
    }
    for (name, value) in &spec.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            up = up.insert_header((n, v));
        }
    }
    if let Some((name, value)) = &target.credential {
        up = up.insert_header((name.clone(), value.clone()));
    }
    if spec.kind == ProviderKind::Anthropic && !req.headers().contains_key("anthropic-version") {
        up = up.insert_header(("anthropic-version", provider::ANTHROPIC_VERSION));
    }
    if !req.headers().contains_key(header::CONTENT_TYPE) || path != req.path() {
        up = up.insert_header((header::CONTENT_TYPE, "application/json"));
    }
    if !req.headers().contains_key("x-request-id")
        && let Ok(v) = HeaderValue::from_str(request_id)
    {
        up = up.insert_header(("x-request-id", v));
    }
    up
}

#[cfg(test)]
mod tests {
    use super::*;
    use kthena_core::provider::ProviderAuth;

    fn spec(auth: Option<ProviderAuth>) -> Arc<ExternalProvider> {
        Arc::new(ExternalProvider {
            id: ObjectRef::new("default", "p"),
            kind: ProviderKind::OpenAi,
            base_url: "https://api.example:8443/v1".into(),
            model: None,
            insecure_skip_verify: false,
            auth,
            headers: Vec::new(),
        })
    }

    #[test]
    fn credentials_resolve_from_secrets_and_never_print() {
        let auth = ProviderAuth {
            scheme: AuthScheme::Bearer,
            secret: ObjectRef::new("default", "keys"),
            key: "token".into(),
        };
        let mut secrets = HashMap::new();
        let t = ProviderTarget::resolve(spec(Some(auth.clone())), &secrets).expect("parses");
        assert_eq!(
            t.state,
            CredentialState::SecretNotFound(auth.secret.clone())
        );
        secrets.insert(
            auth.secret.clone(),
            SecretData(Arc::new([("other".to_owned(), b"x".to_vec())].into())),
        );
        let t = ProviderTarget::resolve(spec(Some(auth.clone())), &secrets).expect("parses");
        assert_eq!(
            t.state,
            CredentialState::KeyNotFound(auth.secret.clone(), "token".into())
        );
        secrets.insert(
            auth.secret.clone(),
            SecretData(Arc::new(
                [("token".to_owned(), b"sk-secret\n".to_vec())].into(),
            )),
        );
        let t = ProviderTarget::resolve(spec(Some(auth.clone())), &secrets).expect("parses");
        assert_eq!(t.state, CredentialState::Resolved);
        let (name, value) = t.credential.as_ref().expect("a credential");
        assert_eq!(name, header::AUTHORIZATION);
        assert_eq!(value.as_bytes(), b"Bearer sk-secret");
        assert_eq!(
            (t.authority.as_str(), t.base_path.as_str()),
            ("api.example:8443", "/v1")
        );
        let printed = format!("{t:?} {:?}", secrets);
        assert!(!printed.contains("sk-secret"), "{printed}");
        let none = ProviderTarget::resolve(spec(None), &secrets).expect("parses");
        assert_eq!(none.state, CredentialState::NotRequired);
    }
}
