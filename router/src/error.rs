//! Errors answered to clients, OpenAI-shaped: `{"error":{"message","type","code"}}`, with
//! Kthena's status codes and texts in `message`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use kthena_core::ObjectRef;

/// Why a request was not proxied (or failed upstream).
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The body is not a JSON object.
    #[error("invalid request body: {0}")]
    InvalidJson(String),
    /// The body has no non-empty string `model`.
    #[error("model not found")]
    ModelNotFound,
    /// Gateway mode: no listener of the port accepts the request's host.
    #[error("no matching listener found")]
    NoListener,
    /// Not a POST, and no HTTPRoute serves the request (only HTTPRoutes take other methods).
    #[error("method {0} is not allowed on {1}")]
    MethodNotAllowed(String, String),
    /// No ModelRoute serves the request.
    #[error("route not found")]
    RouteNotFound,
    /// The HTTPRoute rule has no backend to send to (no backendRefs, or all weights 0).
    #[error("no backend for httproute {0}")]
    NoBackend(ObjectRef),
    /// The HTTPRoute backend names a pool that does not exist.
    #[error("backend not found: {0}")]
    BackendNotFound(crate::pool::PoolKey),
    /// The HTTPRoute backend is of a kind this router does not serve yet.
    #[error("unsupported backend: {0}")]
    UnsupportedBackend(String),
    /// The HTTPRoute backend is in another namespace and no ReferenceGrant allows it.
    #[error("backend reference not permitted by any ReferenceGrant: {0}")]
    RefNotPermitted(String),
    /// The HTTPRoute rule has a filter this router does not implement.
    #[error("unsupported httproute filter: {0}")]
    UnsupportedFilter(String),
    /// The chosen target names a ModelServer that does not exist.
    #[error("can't find model server: {0}")]
    ModelServerNotFound(ObjectRef),
    /// The chosen target names an ExternalModelProvider that does not exist.
    #[error("can't find external model provider: {0}")]
    ProviderNotFound(ObjectRef),
    /// The provider's credential does not resolve (Kthena's text).
    #[error("external provider {0} is not ready")]
    ProviderNotReady(ObjectRef),
    /// The provider does not serve the request's path (Kthena's text).
    #[error("provider type {0:?} does not support path {1:?}")]
    ProviderPath(&'static str, String),
    /// The provider could not be reached, or its answer could not be read.
    #[error("request to external provider {0} failed: {1}")]
    ProviderProxy(ObjectRef, String),
    /// The ModelServer (or InferencePool) has no Running and Ready Pod.
    #[error("no available pods for {0}")]
    NoAvailablePods(crate::pool::PoolKey),
    /// The scheduler's filters left no endpoint (Kthena's 400 and text).
    #[error("{0}")]
    CantSchedule(String),
    /// The request line and headers are larger than `--max-header-bytes`.
    #[error("request headers are {0} bytes, over the limit of {1}")]
    HeadersTooLarge(usize, usize),
    /// The body is larger than `--max-body-bytes`.
    #[error("request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The client sent no byte of its body for `--request-body-timeout`.
    #[error("request body stalled: no byte for {0:?}")]
    BodyStalled(std::time::Duration),
    /// The body could not be read from the client.
    #[error("reading request body: {0}")]
    ClientBody(String),
    /// Every attempt failed to connect or answered 5xx.
    #[error("request to all pods failed: {0}")]
    Upstream(String),
    /// No response headers within the ModelServer's timeout.
    #[error("upstream timed out after {0:?}")]
    UpstreamTimeout(std::time::Duration),
    /// The route's token budget refused the request (Kthena's texts).
    #[error("{}", .0.message())]
    RateLimited(kthena_core::rate_limit::Exceeded),
    /// JWT authentication refused the request (Kthena's texts).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is authenticated but the model's access entry does not allow them.
    #[error("{0}")]
    Forbidden(String),
    /// The fairness queue refused the request: shed under saturation (429), or waited
    /// `--fairness-queue-timeout` (504, Kthena's text).
    #[error("{}", match .0 {
        crate::fair_queue::Refusal::Saturated => "request shed: the pool is saturated and its queue is full; the lowest priority is shed first",
        crate::fair_queue::Refusal::Timeout => "Request processing timed out in queue",
    })]
    Queue(crate::fair_queue::Refusal),
}

impl RouterError {
    /// The `type` of the OpenAI error object, also the `error_type` metric label (bounded).
    pub fn kind(&self) -> &'static str {
        match self {
            RouterError::InvalidJson(_) | RouterError::ClientBody(_) => "invalid_request_error",
            RouterError::ModelNotFound => "model_not_found",
            RouterError::RouteNotFound => "route_not_found",
            RouterError::MethodNotAllowed(..) => "method_not_allowed",
            RouterError::NoListener => "listener_not_found",
            RouterError::ModelServerNotFound(_) => "model_server_not_found",
            RouterError::NoBackend(_) => "no_backend",
            RouterError::BackendNotFound(_) => "backend_not_found",
            RouterError::UnsupportedBackend(_) => "unsupported_backend",
            RouterError::RefNotPermitted(_) => "ref_not_permitted",
            RouterError::UnsupportedFilter(_) => "unsupported_filter",
            RouterError::ProviderNotFound(_) => "provider_discovery",
            RouterError::ProviderNotReady(_) => "provider_config",
            RouterError::ProviderPath(..) => "request_protocol",
            RouterError::ProviderProxy(..) => "external_provider_proxy",
            RouterError::NoAvailablePods(_) => "no_available_pods",
            RouterError::CantSchedule(_) => "scheduling",
            RouterError::BodyTooLarge(_) => "request_too_large",
            RouterError::HeadersTooLarge(..) => "request_header_fields_too_large",
            RouterError::BodyStalled(_) => "request_timeout",
            RouterError::Upstream(_) => "upstream_error",
            RouterError::UpstreamTimeout(_) => "upstream_timeout",
            RouterError::RateLimited(_) => "rate_limit_exceeded",
            RouterError::Unauthorized(_) => "authentication_error",
            RouterError::Forbidden(_) => "permission_error",
            RouterError::Queue(crate::fair_queue::Refusal::Saturated) => "queue_saturated",
            RouterError::Queue(crate::fair_queue::Refusal::Timeout) => "queue_timeout",
        }
    }
}

impl ResponseError for RouterError {
    fn status_code(&self) -> StatusCode {
        match self {
            RouterError::InvalidJson(_)
            | RouterError::ClientBody(_)
            | RouterError::CantSchedule(_) => StatusCode::BAD_REQUEST,
            RouterError::ModelNotFound
            | RouterError::RouteNotFound
            | RouterError::NoListener
            | RouterError::ModelServerNotFound(_) => StatusCode::NOT_FOUND,
            RouterError::MethodNotAllowed(..) => StatusCode::METHOD_NOT_ALLOWED,
            RouterError::ProviderPath(..) => StatusCode::BAD_REQUEST,
            RouterError::ProviderNotFound(_) | RouterError::ProviderNotReady(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            RouterError::ProviderProxy(..) => StatusCode::BAD_GATEWAY,
            // The Gateway API asks for 500 when a rule's backends are all invalid.
            RouterError::NoBackend(_)
            | RouterError::BackendNotFound(_)
            | RouterError::UnsupportedBackend(_)
            | RouterError::RefNotPermitted(_)
            | RouterError::UnsupportedFilter(_) => StatusCode::INTERNAL_SERVER_ERROR,
            RouterError::NoAvailablePods(_) => StatusCode::SERVICE_UNAVAILABLE,
            RouterError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RouterError::HeadersTooLarge(..) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            RouterError::BodyStalled(_) => StatusCode::REQUEST_TIMEOUT,
            RouterError::Upstream(_) => StatusCode::BAD_GATEWAY,
            RouterError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            RouterError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            RouterError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            RouterError::Forbidden(_) => StatusCode::FORBIDDEN,
            RouterError::Queue(crate::fair_queue::Refusal::Saturated) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            RouterError::Queue(crate::fair_queue::Refusal::Timeout) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut builder = HttpResponse::build(status);
        if let RouterError::MethodNotAllowed(..) = self {
            builder.insert_header(("allow", "POST"));
        }
        if let RouterError::Unauthorized(_) = self {
            builder.insert_header(("www-authenticate", "Bearer"));
        }
        if let RouterError::Queue(refusal) = self {
            builder.insert_header((crate::fair_queue::DROPPED_REASON_HEADER, refusal.reason()));
        }
        if let RouterError::RateLimited(e) = self
            && let Some(wait) = e.retry_after()
        {
            // Whole seconds, rounded up: trying sooner is refused again.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            builder.insert_header(("retry-after", secs.max(1).to_string()));
        }
        builder.json(serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": self.kind(),
                "code": status.as_u16(),
            }
        }))
    }
}
