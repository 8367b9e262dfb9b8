//! The HTTP surface on `--port`: OpenAI requests routed by model, `/v1/models`, health.

use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use kthena_core::scheduler::RequestContext;
use kthena_core::{Backend, RequestView};
use serde_json::json;

use crate::body::BodyView;
use crate::error::RouterError;
use crate::exchange::{Exchange, Observability};
use crate::pool::PoolKey;
use crate::proxy::{self, Outbound};
use crate::state::Shared;
use crate::upstream::Clients;

/// What every worker's handlers share.
#[derive(Debug, Clone)]
pub struct RouterContext {
    /// Snapshots published by the actors.
    pub shared: Arc<Shared>,
    /// Metrics and access log.
    pub obs: Arc<Observability>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest accepted request line and headers (`--max-header-bytes`).
    pub max_header_bytes: usize,
    /// The registry `GET /metrics` renders on this port (`--expose-metrics-on-router-port`,
    /// `--port` only); None: `/metrics` is an ordinary path.
    pub metrics: Option<prometheus::Registry>,
    /// TLS toward Pods (`workloadPort.protocol: https`), for each worker's clients.
    pub pod_tls: Arc<rustls::ClientConfig>,
    /// Outlier detection.
    pub outlier: kthena_core::outlier::OutlierPolicy,
    /// Retries in flight per pool (`--retry-budget-*`).
    pub retry_budget: kthena_core::retry_budget::RetryBudget,
    /// How long a request body or an upstream body may stall, and a connection wait.
    pub timeouts: Timeouts,
    /// Most client connections open at once on a listener (`--max-connections`).
    pub max_connections: usize,
    /// ModelRoutes' token budgets, per model name.
    pub rate_limits: Arc<crate::rate_limit::RateLimits>,
    /// JWT authentication of `/v1/` requests (the configuration file's `auth` section).
    pub auth: Option<Arc<crate::auth::Authenticator>>,
    /// The priority and fairness queues (`--enable-fairness-scheduling`); None: off.
    pub fairness: Option<Arc<crate::fair_queue::Fairness>>,
}

/// The longest a body may go without a byte, either way, and a client connection may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A request's headers, from its connection's open or the previous request's end on
    /// it, beyond the idle timeout for the latter (`--request-headers-timeout`; see
    /// [`crate::connection`]).
    pub request_headers: std::time::Duration,
    /// A client connection with no request under way (`--idle-timeout`).
    pub idle: std::time::Duration,
    /// Between two chunks of a client's request body (`--request-body-timeout`): 408 after.
    pub request_body: std::time::Duration,
    /// Between two chunks of an engine's response body (`--upstream-idle-timeout`): the
    /// client's connection is closed after (a stream first gets an error event).
    pub upstream_idle: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            request_headers: std::time::Duration::from_secs(10),
            idle: std::time::Duration::from_secs(60),
            request_body: std::time::Duration::from_secs(30),
            upstream_idle: std::time::Duration::from_secs(300),
        }
    }
}

/// Registers `/healthz` and `/readyz` alone (the metrics port: probes there are answered
/// when the router port holds `--max-connections`). The app must carry
/// `web::Data<RouterContext>`.
pub fn probes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// Registers the router's routes. The app must carry `web::Data<RouterContext>` and a
/// per-worker `web::Data<upstream::Clients>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // A static scope and a default service: a `{tail:.*}` pattern would run a regex per request.
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/models", web::get().to(models))
        .service(
            web::scope("/v1")
                .route("/models", web::get().to(models))
                .default_service(web::to(v1)),
        )
        // Other paths: only HTTPRoutes (gateway mode) can serve them.
        .default_service(web::to(v1));
}

/// Any other request: POSTs with a JSON `model` are routed by ModelRoutes (on `/v1/` paths)
/// and HTTPRoutes; HTTPRoutes take any method, body or content type.
async fn v1(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<RouterContext>,
    client: web::Data<Clients>,
) -> HttpResponse {
    infer(req, payload, ctx, client).await
}

/// The Prometheus text when this port exposes metrics, else what any other path gets.
async fn metrics(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<RouterContext>,
    client: web::Data<Clients>,
) -> HttpResponse {
    match &ctx.metrics {
        Some(registry) => HttpResponse::Ok()
            .content_type(crate::metrics::CONTENT_TYPE)
            .body(crate::metrics::render(registry)),
        None => v1(req, payload, ctx, client).await,
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"message": "ok"}))
}

async fn readyz(ctx: web::Data<RouterContext>) -> HttpResponse {
    if ctx.shared.is_ready() {
        HttpResponse::Ok().json(json!({"message": "router is ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({"message": "router is not ready"}))
    }
}

async fn models(ctx: web::Data<RouterContext>) -> HttpResponse {
    let table = ctx.shared.routes.load();
    let mut names: Vec<&str> = table.model_names().collect();
    names.sort_unstable();
    let data: Vec<_> = names
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "kthena"}))
        .collect();
    HttpResponse::Ok().json(json!({"object": "list", "data": data}))
}

/// The request attributes ModelRoute rules look at.
struct View<'a> {
    model: &'a str,
    path: &'a str,
    headers: &'a HeaderMap,
}

impl RequestView for View<'_> {
    fn model(&self) -> &str {
        self.model
    }
    fn path(&self) -> &str {
        self.path
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn infer(
    req: HttpRequest,
    payload: web::Payload,
    ctx: web::Data<RouterContext>,
    client: web::Data<Clients>,
) -> HttpResponse {
    // As Go's `Request.Proto` (Kthena's access log token): `HTTP/2.0`, not `HTTP/2`.
    let protocol = match req.version() {
        actix_web::http::Version::HTTP_2 => "HTTP/2.0",
        actix_web::http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let mut ex = Exchange::begin(ctx.obs.clone(), req.method().as_str(), req.path(), protocol);
    ex.busy = crate::connection::Busy::of(&req);
    ex.request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    if let Some(auth) = &ctx.auth
        && kthena_core::auth::applies_to(req.path())
    {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let api_key = req.headers().get("x-api-key").and_then(|v| v.to_str().ok());
        match auth.authenticate(header, api_key, &ctx.shared.api_keys.load()) {
            Ok(p) => {
                ex.user = p.user;
                ex.groups = p.groups;
            }
            Err(refusal) => {
                let err = RouterError::Unauthorized(refusal.0);
                ex.fail(&err);
                return err.error_response();
            }
        }
    }
    match route(&req, payload, &ctx, &client, ex).await {
        Ok(resp) => resp,
        Err((err, ex)) => {
            ex.fail(&err);
            err.error_response()
        }
    }
}

/// The size of `req`'s request line and headers as an HTTP/1.1 client sends them (each
/// header `name: value` and its line end).
fn head_bytes(req: &HttpRequest) -> usize {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    let line = req.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + line
}

async fn route(
    req: &HttpRequest,
    payload: web::Payload,
    ctx: &RouterContext,
    client: &Clients,
    mut ex: Exchange,
) -> Result<HttpResponse, (RouterError, Exchange)> {
    let head = head_bytes(req);
    if head > ctx.max_header_bytes {
        return Err((RouterError::HeadersTooLarge(head, ctx.max_header_bytes), ex));
    }
    let body = match read_body(req, payload, ctx.max_body_bytes, ctx.timeouts.request_body).await {
        Ok(b) => b,
        Err(e) => return Err((e, ex)),
    };
    // The body's `model`, when it is a JSON object carrying one. Only ModelRoutes need it:
    // HTTPRoutes serve any request, and see the model (when there is one) as a header.
    let is_post = req.method() == actix_web::http::Method::POST;
    let parsed = BodyView::parse(&body);
    let view = parsed.as_ref().ok();
    if let Some(v) = view {
        ex.model_name.clone_from(&v.model);
    }
    // kthena-rs `auth.access`: who may call the model, and whether the engine sees the
    // client's credentials.
    let mut strip_credentials = false;
    if let (Some(auth), Some(v)) = (&ctx.auth, view)
        && kthena_core::auth::applies_to(req.path())
        && let Some(access) = auth.config().access(&v.model)
    {
        let caller = kthena_core::auth::Principal {
            user: std::mem::take(&mut ex.user),
            groups: std::mem::take(&mut ex.groups),
        };
        let refusal =
            (!access.allows(&caller)).then(|| kthena_core::auth::forbidden(&caller, &v.model));
        (ex.user, ex.groups) = (caller.user, caller.groups);
        if let Some(refusal) = refusal {
            return Err((RouterError::Forbidden(refusal), ex));
        }
        strip_credentials = !access.forward_authorization;
    }
    let table = ctx.shared.routes.load();
    let ports = ctx.shared.ports.load();
    let via = if table.gateway_mode() {
        let host = req
            .headers()
            .get(actix_web::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host());
        let port = req.app_config().local_addr().port();
        match ports.get(&port).and_then(|l| l.select(host)) {
            Some(l) => Some(l),
            None => return Err((RouterError::NoListener, ex)),
        }
    } else {
        None
    };
    if let Some(l) = via {
        ex.gateway = l.gateway.key();
    }
    // ModelRoutes first, for POSTs with a model on /v1/ paths (as in Kthena); then the
    // listener's HTTPRoutes.
    let selection = match view {
        Some(v) if is_post && req.path().starts_with("/v1/") => {
            let request = View {
                model: &v.model,
                path: req.path(),
                headers: req.headers(),
            };
            table.select(&request, via).ok()
        }
        _ => None,
    };
    let inbound = Inbound {
        req,
        body: &body,
        view,
        strip_credentials,
    };
    if let Some(selection) = selection {
        let view = view.expect("a ModelRoute was selected for a parsed body");
        return to_model_server(inbound, view, selection, ctx, client, ex).await;
    }
    let tables = ctx.shared.http_routes.load();
    if let Some(table) = via.and_then(|l| tables.get(l).map(|t| (t, l.port))) {
        let hv = HttpView {
            req,
            model: view.map(|v| v.model.as_str()),
        };
        if let Some(sel) = table.0.select(&hv) {
            return to_http_route(inbound, &hv, sel, table.1, ctx, client, ex).await;
        }
    }
    // Nothing serves it: say why in the terms of the ModelRoute path.
    let err = if !is_post {
        RouterError::MethodNotAllowed(req.method().to_string(), req.path().to_owned())
    } else {
        match parsed {
            Err(e) => e,
            Ok(_) => RouterError::RouteNotFound,
        }
    };
    Err((err, ex))
}

/// A request with its body read and peeked at.
#[derive(Clone, Copy)]
struct Inbound<'a> {
    req: &'a HttpRequest,
    body: &'a Bytes,
    /// The JSON body's `model` and stream flags, when the body is a JSON object with a model.
    view: Option<&'a BodyView>,
    /// Keep `Authorization` and `x-api-key` from the engine (`auth.access[].forwardAuthorization`).
    strip_credentials: bool,
}

/// Proxies a request a ModelRoute selected to its ModelServer.
async fn to_model_server(
    Inbound {
        req,
        body,
        strip_credentials,
        ..
    }: Inbound<'_>,
    view: &BodyView,
    selection: kthena_core::Selection<'_>,
    ctx: &RouterContext,
    client: &Clients,
    mut ex: Exchange,
) -> Result<HttpResponse, (RouterError, Exchange)> {
    ex.set_model_label(&view.model);
    ex.route = selection.route.id.key();
    // The route's token budget, keyed by its model name (a LoRA adapter's name is not
    // limited, as in Kthena): the prompt's estimated tokens are reserved now, and settled
    // with the answer's usage when the exchange finishes. A global limit is one Redis call,
    // bounded by `--rate-limit-redis-timeout`.
    if let Some(limit) = &selection.route.rate_limit
        && !selection.lora
    {
        let model = selection.route.model_name.as_deref().unwrap_or(&view.model);
        let estimate = kthena_core::rate_limit::estimate_tokens(view.prompt(body));
        // With `limitBy`, one budget per user or header value.
        let header = match &limit.limit_by {
            kthena_core::LimitBy::Header(h) => {
                req.headers().get(h.as_str()).and_then(|v| v.to_str().ok())
            }
            _ => None,
        };
        let budget = kthena_core::rate_limit::budget_key(model, &limit.limit_by, &ex.user, header);
        if limit.limit_by != kthena_core::LimitBy::Model {
            ex.budget.clone_from(&budget);
        }
        match ctx.rate_limits.admit(&budget, limit, estimate).await {
            Ok(reservation) => ex.reservation = Some(reservation),
            Err(exceeded) => {
                ctx.obs
                    .metrics
                    .rate_limited
                    .with_label_values(&[
                        &view.model,
                        exceeded.limit_type(),
                        crate::metrics::path_label(req.path()),
                    ])
                    .inc();
                return Err((RouterError::RateLimited(exceeded), ex));
            }
        }
    }
    let server_id = match &selection.target.backend {
        Backend::ModelServer(id) => id,
        Backend::ExternalProvider(id) => {
            return crate::provider::forward(req, body, view, id, ctx, client, ex).await;
        }
    };
    ex.server = server_id.key();
    let key = PoolKey::ModelServer(server_id.clone());
    let Some(pool) = ctx.shared.pools.load().get(&key).cloned() else {
        return Err((RouterError::ModelServerNotFound(server_id.clone()), ex));
    };
    let snap = pool.load();
    if snap.endpoints.is_empty() {
        return Err((RouterError::NoAvailablePods(key), ex));
    }
    // LoRA routes keep the adapter name; others carry the ModelServer's model, when set.
    let upstream_model = if selection.lora {
        None
    } else {
        snap.upstream.model.as_deref()
    };
    ex.upstream_model = upstream_model.unwrap_or(&view.model).to_owned();
    let inject = view.needs_usage_injection();
    let rewritten = view.rewrite(body, upstream_model, inject);
    drop(snap);
    let target = ex.upstream_model.clone();
    let series = ex.series().clone();
    let headers = HeaderView(req.headers());
    let mut sctx = RequestContext::new(&view.model, &target, view.prompt(body));
    sctx.lora = selection.lora;
    sctx.headers = &headers;
    sctx.label = &series.label;
    sctx.want_scores = ctx.obs.access_log.wants_scores();
    let mut out = Outbound::new(req, rewritten, pool, view.stream, inject);
    out.strip_credentials = strip_credentials;
    proxy::forward(client, out, &sctx, ctx, ex).await
}

/// Request headers as scheduler plugins look them up.
struct HeaderView<'a>(&'a actix_web::http::header::HeaderMap);

impl kthena_core::scheduler::Headers for HeaderView<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Headers naming the InferenceObjective of a request (the Inference Extension's v1 name,
/// then llm-d's).
const OBJECTIVE_HEADERS: [&str; 2] = [
    "x-gateway-inference-objective",
    "x-llm-d-inference-objective",
];

/// The request as HTTPRoute rules see it: when the body carries a `model`, that is the
/// `X-Gateway-Model-Name` header, whatever the client sent in it; otherwise the headers are
/// the client's.
struct HttpView<'a> {
    req: &'a HttpRequest,
    model: Option<&'a str>,
}

/// Header carrying the body's model to HTTPRoute matches (and upstream).
const MODEL_NAME_HEADER: &str = "x-gateway-model-name";

impl kthena_core::http_route::HttpRequestView for HttpView<'_> {
    fn method(&self) -> &str {
        self.req.method().as_str()
    }
    fn path(&self) -> &str {
        self.req.path()
    }
    fn query(&self) -> Option<&str> {
        self.req.uri().query()
    }
    fn header(&self, name: &str) -> Option<&str> {
        if name == MODEL_NAME_HEADER && self.model.is_some() {
            return self.model;
        }
        self.req.headers().get(name).and_then(|v| v.to_str().ok())
    }
    fn host(&self) -> Option<&str> {
        self.req
            .headers()
            .get(actix_web::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.req.uri().host())
    }
}

/// Proxies a request an HTTPRoute of the listener selected: redirect, filters, backend.
async fn to_http_route(
    Inbound {
        req,
        body,
        view,
        strip_credentials,
    }: Inbound<'_>,
    hv: &HttpView<'_>,
    sel: kthena_core::http_route::HttpSelection<'_>,
    listener_port: u16,
    ctx: &RouterContext,
    client: &Clients,
    mut ex: Exchange,
) -> Result<HttpResponse, (RouterError, Exchange)> {
    use kthena_core::http_route::{BackendTarget, Filter};
    ex.http_route = sel.route.id.key();
    if let Some(kind) = sel.rule.unsupported_filter() {
        return Err((RouterError::UnsupportedFilter(kind.to_owned()), ex));
    }
    if let Some(redirect) = sel.rule.redirect() {
        let location = redirect.location(hv, &sel.matched.path, "http", listener_port);
        let status = actix_web::http::StatusCode::from_u16(redirect.status_code)
            .unwrap_or(actix_web::http::StatusCode::FOUND);
        ex.finish(status.as_u16(), None);
        return Ok(HttpResponse::build(status)
            .insert_header(("location", location))
            .finish());
    }
    let Some(backend) = sel.backend else {
        return Err((RouterError::NoBackend(sel.route.id.clone()), ex));
    };
    let key = match &backend.target {
        BackendTarget::InferencePool { api, pool } => PoolKey::InferencePool(*api, pool.clone()),
        BackendTarget::Service { service, port } => PoolKey::Service(service.clone(), *port),
        BackendTarget::NotPermitted(target) => {
            let (group, kind, object) = target.group_kind_object();
            let what = if group.is_empty() {
                format!("{kind} {object}")
            } else {
                format!("{group}/{kind} {object}")
            };
            return Err((RouterError::RefNotPermitted(what), ex));
        }
        BackendTarget::Unsupported {
            group,
            kind,
            object,
        } => {
            return Err((
                RouterError::UnsupportedBackend(format!("{group}/{kind} {object}")),
                ex,
            ));
        }
    };
    ex.pool = key.id().to_string();
    let Some(pool) = ctx.shared.pools.load().get(&key).cloned() else {
        return Err((RouterError::BackendNotFound(key), ex));
    };
    if pool.load().endpoints.is_empty() {
        return Err((RouterError::NoAvailablePods(key), ex));
    }
    // An InferenceModel for this model on this pool splits it over its target models.
    let models = ctx.shared.inference_models.load();
    let mut criticality = None;
    let (rewritten, stream, inject) = match view {
        Some(view) => {
            let target = match models.get(&(key.clone(), view.model.clone())) {
                Some(m) => {
                    criticality = Some(m.criticality);
                    ex.set_model_label(&m.model_name);
                    m.pick_target()
                }
                None => None,
            };
            ex.upstream_model = target.unwrap_or(&view.model).to_owned();
            let inject = view.needs_usage_injection();
            (view.rewrite(body, target, inject), view.stream, inject)
        }
        // Not an OpenAI body: passed on as it came.
        None => (body.clone(), false, false),
    };
    let mut out = Outbound::new(req, rewritten, pool, stream, inject);
    out.strip_credentials = strip_credentials;
    // Request headers as the backend sees them: the model header set (only when the body
    // carries a model), then the filters.
    let mut headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(n, _)| view.is_none() || n.as_str() != MODEL_NAME_HEADER)
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    if let Some(view) = view {
        headers.push((MODEL_NAME_HEADER.to_owned(), view.model.clone()));
    }
    for filter in sel.rule.filters() {
        match filter {
            Filter::RequestHeaderModifier(m) => m.apply(&mut headers),
            Filter::ResponseHeaderModifier(m) => out.response_headers.push(m.clone()),
            Filter::UrlRewrite(r) => {
                out.path = r.rewritten_path(&sel.matched.path, req.path());
                if let Some(host) = &r.hostname {
                    headers.retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
                    out.host = Some(host.clone());
                }
            }
            Filter::RequestRedirect(_) | Filter::Unsupported { .. } => {}
        }
    }
    out.headers = Some(headers);
    let timeouts = sel.rule.timeouts();
    out.attempt_timeout = timeouts
        .backend_request
        .or(timeouts.request)
        .filter(|t| !t.is_zero());
    let model = view.map_or("", |v| v.model.as_str());
    let target = if ex.upstream_model.is_empty() {
        model.to_owned()
    } else {
        ex.upstream_model.clone()
    };
    let series = ex.series().clone();
    let header_view = HeaderView(req.headers());
    let mut sctx = RequestContext::new(model, &target, view.map_or(&[][..], |v| v.prompt(body)));
    sctx.headers = &header_view;
    sctx.label = &series.label;
    sctx.want_scores = ctx.obs.access_log.wants_scores();
    if let PoolKey::InferencePool(api, pool) = &key
        && let Some(name) = OBJECTIVE_HEADERS
            .iter()
            .find_map(|h| req.headers().get(*h).and_then(|v| v.to_str().ok()))
    {
        sctx.priority = ctx
            .shared
            .objectives
            .load()
            .iter()
            .find(|o| o.pool.0 == *api && o.pool.1 == *pool && o.id.name == name)
            .map(|o| o.priority.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32);
    }
    // No objective: the InferenceModel's criticality, mapped as the Inference Extension did.
    if sctx.priority.is_none() {
        sctx.priority = criticality.map(kthena_core::inference_model::Criticality::priority);
    }
    proxy::forward(client, out, &sctx, ctx, ex).await
}

/// The whole request body, refusing more than `limit` bytes (413) and a body that sends no
/// byte for `stall` (408): a stalled upload holds at most what it sent (and never more than
/// `limit`) until then.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    stall: std::time::Duration,
) -> Result<Bytes, RouterError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(RouterError::BodyTooLarge(limit));
    }
    // Room for what is announced, up to 256 KiB: a client that announces a large body and
    // sends little holds no more than it sent (a larger body grows the buffer as it arrives).
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit).min(256 << 10));
    loop {
        let next = actix_rt::time::timeout(stall, payload.next())
            .await
            .map_err(|_| RouterError::BodyStalled(stall))?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| RouterError::ClientBody(e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(RouterError::BodyTooLarge(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
