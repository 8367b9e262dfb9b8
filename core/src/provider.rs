//! ExternalModelProviders: a model API outside the cluster (OpenAI- or Anthropic-shaped) that
//! a ModelRoute target can name beside ModelServers. What flows in: the converted spec; what
//! flows out: which request paths a provider serves and how ([`ExternalProvider::plan`]), the
//! upstream URL ([`upstream_path`]), and the provider's credential state for status
//! ([`CredentialState`]). Secret values never enter this crate.

use crate::ObjectRef;

/// The API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI-compatible: `/v1/chat/completions`, `/v1/completions`, `/v1/responses`.
    OpenAi,
    /// Anthropic Messages: `/v1/messages` (and OpenAI chat requests, translated).
    Anthropic,
}

/// How the credential is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <credential>`.
    Bearer,
    /// `x-api-key: <credential>`.
    ApiKey,
}

/// Where the credential is: a key of a Secret in the provider's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAuth {
    /// How it is sent (defaulted by provider kind when the spec leaves it out).
    pub scheme: AuthScheme,
    /// The Secret.
    pub secret: ObjectRef,
    /// The key in the Secret's data.
    pub key: String,
}

/// A converted, valid ExternalModelProvider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalProvider {
    /// Namespace and name.
    pub id: ObjectRef,
    /// The API it speaks.
    pub kind: ProviderKind,
    /// `https://host[:port][/path]`, without a trailing `/`.
    pub base_url: String,
    /// Model sent upstream instead of the client's.
    pub model: Option<String>,
    /// Do not verify the provider's certificate.
    pub insecure_skip_verify: bool,
    /// Credentials; `None` sends none.
    pub auth: Option<ProviderAuth>,
    /// Static headers added to each request.
    pub headers: Vec<(String, String)>,
}

/// What the router does with a request path sent to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Sent as it came, apart from `model` (and `include_usage` on OpenAI streams).
    PassThrough,
    /// An OpenAI chat request translated to Anthropic Messages, the answer translated back.
    ChatToMessages,
}

/// The `anthropic-version` header value sent to Anthropic providers when the client sends
/// none.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Client request headers a provider may see; every other one (the client's own
/// `Authorization` first) stays with the router.
pub const FORWARDED_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "anthropic-version",
    "anthropic-beta",
    "x-request-id",
    "traceparent",
    "tracestate",
    "baggage",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
];

/// Header names a provider's static `headers` may not set: the credentials' and the
/// connection's own.
pub const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "trailer",
    "te",
];

impl ExternalProvider {
    /// How a request on `path` is served, or `None` when this provider does not serve it.
    pub fn plan(&self, path: &str) -> Option<Plan> {
        match (self.kind, path) {
            (
                ProviderKind::OpenAi,
                "/v1/chat/completions" | "/v1/completions" | "/v1/responses",
            ) => Some(Plan::PassThrough),
            (ProviderKind::Anthropic, "/v1/messages") => Some(Plan::PassThrough),
            (ProviderKind::Anthropic, "/v1/chat/completions") => Some(Plan::ChatToMessages),
            _ => None,
        }
    }

    /// The credential's scheme, or `None` when the provider sends none.
    pub fn scheme(&self) -> Option<AuthScheme> {
        self.auth.as_ref().map(|a| a.scheme)
    }
}

/// The path (and query) sent to a provider at `base_path` (the base URL's path, no trailing
/// `/`) for a request on `path`: a base path that already ends the API version (`/v1`, as
/// OpenAI's `https://api.openai.com/v1`) is not given the request's `/v1` again.
pub fn upstream_path(base_path: &str, path: &str, query: Option<&str>) -> String {
    let base = base_path.trim_end_matches('/');
    let rest = path.trim_start_matches('/');
    let rest = if base.ends_with("/v1") {
        rest.strip_prefix("v1/")
            .or_else(|| (rest == "v1").then_some(""))
            .unwrap_or(rest)
    } else {
        rest
    };
    let mut out = String::with_capacity(base.len() + rest.len() + 2);
    out.push_str(base);
    if !rest.is_empty() {
        out.push('/');
        out.push_str(rest);
    }
    if out.is_empty() {
        out.push('/');
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Whether a provider's credential can be used, for `CredentialsResolved` and `Ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialState {
    /// The spec asks for no credential.
    NotRequired,
    /// The Secret and its key exist.
    Resolved,
    /// The Secret does not exist (or is not readable by the router).
    SecretNotFound(ObjectRef),
    /// The Secret lacks the key (or holds an empty value there).
    KeyNotFound(ObjectRef, String),
    /// The value cannot be sent as a header (control characters).
    Invalid(ObjectRef, String),
}

impl CredentialState {
    /// True when requests can be sent.
    pub fn usable(&self) -> bool {
        matches!(
            self,
            CredentialState::NotRequired | CredentialState::Resolved
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_path_joins_base_and_request_path() {
        let cases = [
            ("", "/v1/chat/completions", None, "/v1/chat/completions"),
            ("/v1", "/v1/chat/completions", None, "/v1/chat/completions"),
            ("/v1/", "/v1/messages", None, "/v1/messages"),
            (
                "/openai",
                "/v1/chat/completions",
                None,
                "/openai/v1/chat/completions",
            ),
            (
                "/api/v1",
                "/v1/responses",
                Some("a=b"),
                "/api/v1/responses?a=b",
            ),
            ("", "/v1/messages", Some(""), "/v1/messages"),
        ];
        for (base, path, query, want) in cases {
            assert_eq!(upstream_path(base, path, query), want, "{base} + {path}");
        }
    }

    #[test]
    fn each_kind_serves_its_paths() {
        let mut p = ExternalProvider {
            id: ObjectRef::new("default", "p"),
            kind: ProviderKind::OpenAi,
            base_url: "https://api.example".into(),
            model: None,
            insecure_skip_verify: false,
            auth: None,
            headers: Vec::new(),
        };
        assert_eq!(p.plan("/v1/chat/completions"), Some(Plan::PassThrough));
        assert_eq!(p.plan("/v1/responses"), Some(Plan::PassThrough));
        assert_eq!(p.plan("/v1/messages"), None);
        assert_eq!(p.plan("/v1/embeddings"), None);
        p.kind = ProviderKind::Anthropic;
        assert_eq!(p.plan("/v1/messages"), Some(Plan::PassThrough));
        assert_eq!(p.plan("/v1/chat/completions"), Some(Plan::ChatToMessages));
        assert_eq!(p.plan("/v1/completions"), None);
    }
}
