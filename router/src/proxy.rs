//! Forwarding to the engine with awc: attempts, timeouts, retries, and the streamed response.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use futures_util::Stream;

use crate::error::RouterError;
use crate::exchange::Exchange;
use std::sync::Arc;

use kthena_core::scheduler::RequestContext;

use crate::handlers::RouterContext;
use crate::pool::{Endpoint, Failure, InFlight, PoolSnapshot, now_ms};
use crate::state::PoolCell;
use crate::upstream::Clients;
use crate::usage::{JsonCapture, SseFilter};

/// Headers that describe one connection and are never forwarded (RFC 9110 §7.6.1), plus the
/// ones the proxy sets itself.
const HOP_BY_HOP: &[&str] = &[
    // The router holds the whole request body already: 100-continue was answered downstream.
    "expect",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// True when `name` must not cross the proxy, including headers listed in `Connection`.
fn hop_by_hop(name: &HeaderName, connection: Option<&HeaderValue>) -> bool {
    let n = name.as_str();
    HOP_BY_HOP.contains(&n)
        || connection
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(n)))
}

/// What to send upstream.
#[derive(Debug)]
pub struct Outbound<'a> {
    /// The client request (method, path, query, headers).
    pub req: &'a HttpRequest,
    /// The body, already rewritten.
    pub body: Bytes,
    /// The ModelServer's endpoints.
    pub pool: PoolCell,
    /// The request is a stream.
    pub stream: bool,
    /// The router injected `include_usage`; hide the usage chunk from the client.
    pub hide_usage: bool,
    /// Path (and no query change) sent upstream instead of the client's (URLRewrite).
    pub path: Option<String>,
    /// Request headers sent upstream instead of the client's (HTTPRoute filters); hop-by-hop
    /// headers are still dropped.
    pub headers: Option<Vec<(String, String)>>,
    /// `Host` sent upstream (URLRewrite hostname).
    pub host: Option<String>,
    /// Edits of the response headers (ResponseHeaderModifier), in order.
    pub response_headers: Vec<kthena_core::http_route::HeaderModifier>,
    /// Per-attempt timeout instead of the pool's (HTTPRoute timeouts).
    pub attempt_timeout: Option<std::time::Duration>,
    /// Keep the client's `Authorization` and `x-api-key` from the engine.
    pub strip_credentials: bool,
}

impl<'a> Outbound<'a> {
    /// A request forwarded as the client sent it, apart from `body`.
    pub fn new(
        req: &'a HttpRequest,
        body: Bytes,
        pool: PoolCell,
        stream: bool,
        hide_usage: bool,
    ) -> Self {
        Self {
            req,
            body,
            pool,
            stream,
            hide_usage,
            path: None,
            headers: None,
            host: None,
            response_headers: Vec::new(),
            attempt_timeout: None,
            strip_credentials: false,
        }
    }
}

/// The scheduler's choice for one request: the ranked endpoints, walked by the attempts.
struct Plan {
    ranked: smallvec::SmallVec<[Arc<Endpoint>; kthena_core::scheduler::DEFAULT_TOP_N]>,
    next: usize,
}

/// Ranks the endpoints of `snap` for `sctx`, leaving out `tried` unless nothing else is left.
fn plan(
    scheduler: &kthena_core::scheduler::Scheduler,
    sctx: &RequestContext<'_>,
    snap: &PoolSnapshot,
    tried: &[u64],
    ex: &mut Exchange,
) -> Result<Plan, RouterError> {
    let now = now_ms();
    let mut candidates = snap.candidates(now);
    if candidates.iter().any(|c| !tried.contains(&c.key)) {
        candidates.retain(|c| !tried.contains(&c.key));
    }
    let decision = scheduler
        .schedule(sctx, &candidates)
        .map_err(|e| RouterError::CantSchedule(e.to_string()))?;
    if tried.is_empty() {
        ex.scores = decision.scores;
        if let Some(ratio) = sctx.prefix_match_ratio() {
            ex.series().prefix_match.observe(ratio);
        }
    }
    let ranked = decision
        .ranked
        .iter()
        .filter_map(|&i| snap.by_key(candidates[i].key).cloned())
        .collect();
    Ok(Plan { ranked, next: 0 })
}

/// Sends `out` to the endpoints the scheduler ranks for `sctx`, best first, retrying on the
/// next one as the pool's retry policy allows; a failure counts toward the endpoint's
/// outlier ejection. Answers with the streamed upstream response.
pub async fn forward(
    client: &Clients,
    out: Outbound<'_>,
    sctx: &RequestContext<'_>,
    ctx: &RouterContext,
    mut ex: Exchange,
) -> Result<HttpResponse, (RouterError, Exchange)> {
    if let Some(fairness) = &ctx.fairness {
        let user = crate::fair_queue::user_of(&ex.user, out.req.headers());
        let priority = sctx.priority.unwrap_or(0);
        match fairness
            .admit(&out.pool, user, priority, &ex.series().label)
            .await
        {
            Ok(permit) => ex.permit = Some(permit),
            Err(refusal) => return Err((RouterError::Queue(refusal), ex)),
        }
    }
    let cell = ctx.shared.scheduler.load_full();
    let first = out.pool.load_full();
    let attempts = 1 + first.upstream.retry.attempts;
    let interval = first.upstream.retry.interval;
    let mut tried: Vec<u64> = Vec::new();
    let mut plan = match plan(&cell.scheduler, sctx, &first, &tried, &mut ex) {
        Ok(p) => p,
        Err(e) => return Err((e, ex)),
    };
    drop(first);
    let mut last_err = None;
    ex.upstream_started = Some(std::time::Instant::now());
    // Held from this request's first retry to its end: the retry budget counts it.
    let mut retrying: Option<RetrySlot> = None;
    for attempt in 0..attempts {
        if attempt > 0 {
            let unit = kthena_core::scheduler::random::next_f64();
            let pause = kthena_core::retry_budget::jittered(interval, unit);
            let _pausing = Counted::new(out.pool.load().retries.clone(), |c| &c.pausing);
            actix_rt::time::sleep(pause).await;
        }
        // Each attempt sees the current endpoints: the next ranked one still in the pool, or
        // a new ranking of what is left.
        let snap = out.pool.load_full();
        let endpoint = loop {
            if let Some(e) = plan.ranked.get(plan.next).cloned() {
                plan.next += 1;
                if snap.by_key(e.key).is_some() && !tried.contains(&e.key) {
                    break Some(e);
                }
                continue;
            }
            if snap.endpoints.is_empty() {
                break None;
            }
            plan = match self::plan(&cell.scheduler, sctx, &snap, &tried, &mut ex) {
                Ok(p) => p,
                Err(e) => return Err((e, ex)),
            };
            match plan.ranked.first().cloned() {
                Some(e) => {
                    plan.next = 1;
                    break Some(e);
                }
                None => break None,
            }
        };
        let Some(endpoint) = endpoint else {
            return Err((RouterError::NoAvailablePods(snap.upstream.key.clone()), ex));
        };
        let guard = endpoint.begin();
        tried.push(endpoint.key);
        ex.attempts = attempt + 1;
        ex.pod = endpoint.pod.key();
        ex.upstream_active();
        let timeout = out.attempt_timeout.unwrap_or(snap.upstream.timeout);
        let request = build_request(
            client,
            snap.upstream.protocol,
            &out,
            &endpoint.authority,
            &ex.request_id,
        );
        let last = attempt + 1 == attempts;
        let failure = match actix_rt::time::timeout(timeout, request.send_body(out.body.clone()))
            .await
        {
            Err(_) => {
                tracing::debug!(pod = %endpoint.pod, ?timeout, "upstream timed out");
                last_err = Some(RouterError::UpstreamTimeout(timeout));
                Failure::Timeout
            }
            Ok(Err(e)) => {
                tracing::debug!(pod = %endpoint.pod, error = %e, "upstream request failed");
                last_err = Some(RouterError::Upstream(format!("{}: {e}", endpoint.pod)));
                match e {
                    awc::error::SendRequestError::Connect(_) => Failure::Connect,
                    _ => Failure::ServerError,
                }
            }
            Ok(Ok(resp)) if resp.status().is_server_error() => {
                ex.upstream_status = Some(resp.status().as_u16());
                outlier_failure(ctx, &snap, &endpoint, Failure::ServerError, &mut ex);
                if last || !retry_permit(ctx, &snap, &mut retrying) {
                    return Ok(respond(
                        resp,
                        Some(guard),
                        out.relay(),
                        ex,
                        ctx.timeouts.upstream_idle,
                    ));
                }
                tracing::debug!(pod = %endpoint.pod, status = %resp.status(), "retrying after 5xx");
                continue;
            }
            Ok(Ok(resp)) => {
                endpoint.health.succeeded();
                if resp.status().is_success() {
                    cell.scheduler.served(sctx, endpoint.key);
                }
                return Ok(respond(
                    resp,
                    Some(guard),
                    out.relay(),
                    ex,
                    ctx.timeouts.upstream_idle,
                ));
            }
        };
        outlier_failure(ctx, &snap, &endpoint, failure, &mut ex);
        if !last && !retry_permit(ctx, &snap, &mut retrying) {
            break;
        }
    }
    let err = last_err.unwrap_or_else(|| RouterError::Upstream("no attempt made".into()));
    Err((err, ex))
}

/// One count of a pool's [`RetryCounts`], held until dropped.
struct Counted {
    counts: Arc<crate::pool::RetryCounts>,
    field: fn(&crate::pool::RetryCounts) -> &std::sync::atomic::AtomicUsize,
}

impl Counted {
    /// Adds one to `field` of `counts` for as long as the value lives.
    fn new(
        counts: Arc<crate::pool::RetryCounts>,
        field: fn(&crate::pool::RetryCounts) -> &std::sync::atomic::AtomicUsize,
    ) -> Self {
        field(&counts).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self { counts, field }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        (self.field)(&self.counts).fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A request retrying: one of its pool's retrying requests until dropped.
type RetrySlot = Counted;

/// True when this request may retry: it already holds a slot of `snap`'s retry budget, or it
/// takes one now (the budget counts requests retrying, not attempts). Counted either way.
fn retry_permit(ctx: &RouterContext, snap: &PoolSnapshot, slot: &mut Option<RetrySlot>) -> bool {
    use std::sync::atomic::Ordering;
    let pool = snap.upstream.key.id().to_string();
    let allowed = slot.is_some() || {
        // In flight to the pool: on an endpoint (this request's failed attempt is still
        // counted there) or pausing before a retry.
        let requests: usize = snap.endpoints.iter().map(|e| e.in_flight()).sum::<usize>()
            + snap.retries.pausing.load(Ordering::Relaxed);
        let taken = snap
            .retries
            .retrying
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                ctx.retry_budget.allows(requests, r).then_some(r + 1)
            })
            .is_ok();
        if taken {
            // The slot was taken by the update above: the guard only gives it back.
            *slot = Some(Counted {
                counts: snap.retries.clone(),
                field: |c| &c.retrying,
            });
        } else {
            tracing::debug!(pool = %pool, requests, "retry budget exhausted: no retry");
        }
        taken
    };
    let outcome = if allowed {
        "retried"
    } else {
        "budget_exhausted"
    };
    ctx.obs
        .metrics
        .retries
        .with_label_values(&[&pool, outcome])
        .inc();
    allowed
}

/// Counts a failed attempt toward `endpoint`'s ejection; logs and counts an ejection.
fn outlier_failure(
    ctx: &RouterContext,
    snap: &PoolSnapshot,
    endpoint: &Endpoint,
    failure: Failure,
    ex: &mut Exchange,
) {
    let now = now_ms();
    let ejected = snap.ejected(now);
    if let Some(length) =
        endpoint
            .health
            .failed(&ctx.outlier, failure, now, ejected, snap.endpoints.len())
    {
        tracing::warn!(pod = %endpoint.pod, pool = %snap.upstream.key, ?failure, ?length, "endpoint ejected by outlier detection");
        ctx.obs
            .metrics
            .ejections
            .with_label_values(&[&snap.upstream.key.id().to_string()])
            .inc();
        if !ex.ejected.is_empty() {
            ex.ejected.push(',');
        }
        ex.ejected.push_str(&endpoint.pod.to_string());
    }
}

fn build_request(
    clients: &Clients,
    protocol: kthena_core::Protocol,
    out: &Outbound<'_>,
    authority: &awc::http::uri::Authority,
    request_id: &str,
) -> awc::ClientRequest {
    use awc::http::uri::{PathAndQuery, Scheme, Uri};
    let (client, scheme) = clients.for_protocol(protocol);
    let req = out.req;
    let uri = req.uri();
    let path_and_query = match (&out.path, uri.query()) {
        (Some(path), Some(q)) => PathAndQuery::try_from(format!("{path}?{q}")),
        (Some(path), None) => PathAndQuery::try_from(path.as_str()),
        (None, _) => Ok(uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"))),
    };
    // From parts: the authority and the request's path are already parsed.
    let target = path_and_query.ok().and_then(|pq| {
        let mut parts = awc::http::uri::Parts::default();
        parts.scheme = Some(if scheme == "https" {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        });
        parts.authority = Some(authority.clone());
        parts.path_and_query = Some(pq);
        Uri::from_parts(parts).ok()
    });
    let target = match target {
        Some(t) => t,
        // A rewritten path that is not a valid URI path: awc reports it when sending.
        None => {
            let raw = format!(
                "{scheme}://{authority}{}",
                out.path.as_deref().unwrap_or("/")
            );
            return client.request(req.method().clone(), raw.as_str());
        }
    };
    let mut up = client.request(req.method().clone(), target).no_decompress();
    let headers = req.headers();
    let connection = headers.get(header::CONNECTION);
    match &out.headers {
        None => {
            for (name, value) in headers.iter() {
                // The response is read on the way (usage, SSE events): ask for it uncompressed.
                if !hop_by_hop(name, connection)
                    && name != header::ACCEPT_ENCODING
                    && !(out.strip_credentials && credential(name.as_str()))
                {
                    up = up.append_header((name.clone(), value.clone()));
                }
            }
        }
        Some(list) => {
            for (name, value) in list {
                let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(value),
                ) else {
                    continue;
                };
                if !hop_by_hop(&name, connection)
                    && name != header::ACCEPT_ENCODING
                    && !(out.strip_credentials && credential(name.as_str()))
                {
                    up = up.append_header((name, value));
                }
            }
        }
    }
    if let Some(host) = out
        .host
        .as_deref()
        .and_then(|h| HeaderValue::from_str(h).ok())
    {
        up = up.insert_header((header::HOST, host));
    }
    if !headers.contains_key("x-request-id")
        && let Ok(v) = HeaderValue::from_str(request_id)
    {
        up = up.insert_header(("x-request-id", v));
    }
    up
}

/// A header carrying the client's credentials (kept from the engine when the model's access
/// entry says so).
fn credential(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("x-api-key")
}

/// How a response is relayed to the client.
pub(crate) struct Relay<'a> {
    /// The client asked for a stream.
    pub stream: bool,
    /// Hide the usage chunk the router asked for.
    pub hide_usage: bool,
    /// The client's request path.
    pub path: &'a str,
    /// Edits of the response headers.
    pub response_headers: &'a [kthena_core::http_route::HeaderModifier],
    /// Anthropic stream events translated to OpenAI chunks on the way.
    pub translate: Option<crate::provider::anthropic::StreamTranslator>,
}

impl Outbound<'_> {
    fn relay(&self) -> Relay<'_> {
        Relay {
            stream: self.stream,
            hide_usage: self.hide_usage,
            path: self.req.path(),
            response_headers: &self.response_headers,
            translate: None,
        }
    }
}

/// The client's response for `resp`, its body relayed chunk by chunk (usage read on the way,
/// `guard` held until it ends).
pub(crate) fn respond<S>(
    resp: awc::ClientResponse<S>,
    guard: Option<InFlight>,
    out: Relay<'_>,
    mut ex: Exchange,
    idle_timeout: std::time::Duration,
) -> HttpResponse
where
    S: Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
{
    let status = resp.status();
    ex.upstream_status = Some(status.as_u16());
    ex.headers_at = Some(std::time::Instant::now());
    let mut builder = HttpResponse::build(status);
    if out.response_headers.is_empty() {
        copy_response_headers(resp.headers(), &mut builder);
    } else {
        let mut list: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter(|(n, _)| !hop_by_hop(n, resp.headers().get(header::CONNECTION)))
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        for m in out.response_headers {
            m.apply(&mut list);
        }
        for (n, v) in list {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(n.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                builder.append_header((n, v));
            }
        }
    }
    let sse = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let length = resp
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let translating = out.translate.is_some();
    if translating {
        builder.insert_header((header::CONTENT_TYPE, "text/event-stream"));
    }
    let mode = if let Some(t) = out.translate {
        Mode::Translate(Box::new(t))
    } else if sse || out.stream {
        Mode::Sse(SseFilter::new(out.hide_usage))
    } else {
        // The body passes unchanged, so its length does too.
        if let Some(n) = length {
            builder.no_chunking(n);
        }
        Mode::Json(JsonCapture::default())
    };
    builder.streaming(UpstreamBody {
        inner: resp,
        mode,
        ex: Some(ex),
        status: status.as_u16(),
        ended: false,
        failed: None,
        flush_first: false,
        expected: length,
        received: 0,
        idle: None,
        idle_timeout,
        // Only OpenAI's completion streams promise a `[DONE]` (an HTTPRoute's backend may
        // stream anything; an engine's error answer to a stream request is plain JSON).
        openai_stream: translating
            || out.stream
                && sse
                && status.is_success()
                && matches!(out.path, "/v1/chat/completions" | "/v1/completions"),
        _guard: guard,
    })
}

fn copy_response_headers(from: &HeaderMap, to: &mut actix_web::HttpResponseBuilder) {
    let connection = from.get(header::CONNECTION);
    for (name, value) in from.iter() {
        if !hop_by_hop(name, connection) {
            to.append_header((name.clone(), value.clone()));
        }
    }
}

enum Mode {
    Sse(SseFilter),
    Json(JsonCapture),
    Translate(Box<crate::provider::anthropic::StreamTranslator>),
}

/// The upstream body on its way to the client: chunks pass as they arrive; usage is read on
/// the way; the record is finished when the body ends or the client goes away (drop).
struct UpstreamBody<S> {
    inner: awc::ClientResponse<S>,
    mode: Mode,
    ex: Option<Exchange>,
    status: u16,
    ended: bool,
    /// The upstream body failed after an SSE error event was sent: the failure comes next,
    /// so the client's connection closes without the stream's end.
    failed: Option<awc::error::PayloadError>,
    /// Pending once before `failed` is returned, so the error event is written first.
    flush_first: bool,
    /// The upstream's `content-length`: awc ends a body whose connection closed early as if
    /// it were whole, so the bytes are counted against it.
    expected: Option<u64>,
    /// Body bytes received from upstream.
    received: u64,
    /// The client asked for an OpenAI stream, which ends with `data: [DONE]`.
    openai_stream: bool,
    /// Fires when the engine sent no byte for `idle_timeout`; made the first time the body
    /// waits, so an answer that arrives at once costs no timer.
    idle: Option<Pin<Box<actix_rt::time::Sleep>>>,
    idle_timeout: std::time::Duration,
    _guard: Option<InFlight>,
}

impl<S> UpstreamBody<S> {
    fn finish(&mut self, error: Option<&str>) {
        if let Some(mut ex) = self.ex.take() {
            ex.usage = match &self.mode {
                Mode::Sse(f) => f.usage,
                Mode::Json(c) => c.usage(),
                Mode::Translate(t) => t.usage,
            };
            ex.finish(self.status, error);
        }
    }
}

impl<S> Stream for UpstreamBody<S>
where
    S: Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    type Item = Result<Bytes, awc::error::PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.flush_first {
            // The server writes what it holds while the body is pending, and drops it with the
            // connection on an error: the error event goes out before the failure does.
            this.flush_first = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(e) = this.failed.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            let next = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => {
                    let timeout = this.idle_timeout;
                    let idle = this
                        .idle
                        .get_or_insert_with(|| Box::pin(actix_rt::time::sleep(timeout)));
                    match idle.as_mut().poll(cx) {
                        Poll::Pending => Poll::Pending,
                        Poll::Ready(()) => Poll::Ready(Some(Err(awc::error::PayloadError::Io(
                            std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                format!("the engine sent nothing for {:?}", this.idle_timeout),
                            ),
                        )))),
                    }
                }
                // awc ends a body as whole when the connection closes early: a body shorter
                // than its length, or an OpenAI stream without its `[DONE]`, was cut.
                Poll::Ready(None)
                    if this.expected.is_some_and(|n| this.received < n)
                        || this.openai_stream
                            && match &this.mode {
                                Mode::Sse(f) => !f.done && !f.pending_done(),
                                Mode::Translate(t) => !t.done,
                                Mode::Json(_) => false,
                            } =>
                {
                    Poll::Ready(Some(Err(awc::error::PayloadError::Incomplete(None))))
                }
                other => other,
            };
            match next {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.received += chunk.len() as u64;
                    if let Some(idle) = this.idle.as_mut() {
                        idle.as_mut()
                            .reset(actix_rt::time::Instant::now() + this.idle_timeout);
                    }
                    let out = match &mut this.mode {
                        Mode::Sse(f) => f.push(chunk),
                        Mode::Json(c) => {
                            c.push(&chunk);
                            chunk
                        }
                        Mode::Translate(t) => t.push(&chunk),
                    };
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    // The response has started: the client learns of the failure from a
                    // connection closed before the body's end (never a short body that
                    // reads as whole) and, in a stream, from an error event first.
                    this.ended = true;
                    let message = e.to_string();
                    tracing::warn!(error = %message, status = this.status, "upstream body cut short; closing the client's connection");
                    this.finish(Some(&message));
                    if let Mode::Sse(_) | Mode::Translate(_) = this.mode {
                        this.failed = Some(e);
                        this.flush_first = true;
                        return Poll::Ready(Some(Ok(stream_error_event(&message))));
                    }
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    let tail = match &mut this.mode {
                        Mode::Sse(f) => f.finish(),
                        Mode::Json(_) => Bytes::new(),
                        Mode::Translate(t) => t.finish(),
                    };
                    this.ended = true;
                    this.finish(None);
                    return Poll::Ready((!tail.is_empty()).then_some(Ok(tail)));
                }
            }
        }
    }
}

/// An SSE event in OpenAI's error shape, for a stream the engine cut short.
fn stream_error_event(cause: &str) -> Bytes {
    let body = serde_json::json!({"error": {
        "message": format!("the engine's stream ended before it was complete: {cause}"),
        "type": "stream_error",
        "code": 502,
    }});
    Bytes::from(format!("data: {body}\n\n"))
}

impl<S> Drop for UpstreamBody<S> {
    fn drop(&mut self) {
        // Ended early: the Exchange's own drop logs the client disconnect.
        self.ex.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_headers_do_not_cross_the_proxy() {
        let connection = HeaderValue::from_static("close, X-Session-Hop");
        let cases = [
            ("connection", true),
            ("keep-alive", true),
            ("transfer-encoding", true),
            ("expect", true),
            ("host", true),
            ("content-length", true),
            ("x-session-hop", true),
            ("authorization", false),
            ("user-type", false),
            ("x-request-id", false),
        ];
        for (name, dropped) in cases {
            let name = HeaderName::from_static(name);
            assert_eq!(hop_by_hop(&name, Some(&connection)), dropped, "{name}");
        }
    }
}
