//! The record of one proxied request: filled in as the request goes, turned into metrics and
//! an access log line exactly once, when the response ends (or the client goes away).

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::IntGauge;

use crate::access_log::{AccessLog, Entry, ErrorField};
use crate::error::RouterError;
use crate::metrics::{Metrics, ModelSeries, path_index, path_label};
use crate::usage::Usage;

/// Metrics and access log, shared by every worker.
#[derive(Debug)]
pub struct Observability {
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Access log settings.
    pub access_log: AccessLog,
}

/// What happened to one request.
#[derive(Debug)]
pub struct Exchange {
    obs: Arc<Observability>,
    started: Instant,
    arrived: std::time::SystemTime,
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    protocol: &'static str,
    /// `x-request-id` sent upstream.
    pub request_id: String,
    /// The body's `model` as sent by the client.
    pub model_name: String,
    /// The authenticated user (the JWT's `sub`), empty without authentication.
    pub user: String,
    /// The authenticated user's groups.
    pub groups: Vec<String>,
    /// The token budget drawn from, when the route's limit is per user or header value.
    pub budget: String,
    /// The series of the bounded metric label: the route's model or LoRA name, `unknown`
    /// before routing.
    series: Rc<ModelSeries>,
    /// `namespace/name` of the Gateway the request came through (gateway mode).
    pub gateway: String,
    /// `namespace/name` of the ModelRoute.
    pub route: String,
    /// `namespace/name` of the HTTPRoute (gateway mode).
    pub http_route: String,
    /// `namespace/name` of the InferencePool (gateway mode).
    pub pool: String,
    /// `namespace/name` of the ModelServer.
    pub server: String,
    /// `namespace/name` of the Pod of the last attempt.
    pub pod: String,
    /// `namespace/name` of the ExternalModelProvider.
    pub provider: String,
    /// Who produced an error answer (`router`, `upstream`); empty when none or not told.
    pub error_origin: &'static str,
    /// The error a response passed through from upstream stands for (type and message),
    /// recorded when its body ends.
    pub upstream_error: Option<(&'static str, String)>,
    /// The `model` sent upstream.
    pub upstream_model: String,
    /// Upstream attempts made.
    pub attempts: u32,
    /// The chosen Pod's score per scheduler plugin (logged in the JSON format).
    pub scores: Vec<(&'static str, f64)>,
    /// Pods this request's failures ejected, comma-separated.
    pub ejected: String,
    /// Upstream status of the last attempt.
    pub upstream_status: Option<u16>,
    /// When the first upstream attempt started.
    pub upstream_started: Option<Instant>,
    /// When the response headers arrived.
    pub headers_at: Option<Instant>,
    /// Token usage from the engine.
    pub usage: Option<Usage>,
    /// The tokens the request reserved from its route's budget, settled at the end.
    pub reservation: Option<crate::rate_limit::Reservation>,
    /// The request's slot in its pool's fairness queue, given back (and the user charged the
    /// answer's tokens) at the end.
    pub permit: Option<crate::fair_queue::Permit>,
    upstream: Option<IntGauge>,
    done: bool,
    /// Keeps the client's connection busy until the response ends.
    pub busy: Option<crate::connection::Busy>,
}

impl Exchange {
    /// Starts the record of a request.
    pub fn begin(
        obs: Arc<Observability>,
        method: &str,
        path: &str,
        protocol: &'static str,
    ) -> Self {
        let series = obs.metrics.series("unknown");
        series.downstream.inc();
        Self {
            started: Instant::now(),
            arrived: std::time::SystemTime::now(),
            method: method.to_owned(),
            path: path.to_owned(),
            protocol,
            request_id: String::new(),
            model_name: String::new(),
            user: String::new(),
            groups: Vec::new(),
            budget: String::new(),
            series,
            gateway: String::new(),
            route: String::new(),
            http_route: String::new(),
            pool: String::new(),
            server: String::new(),
            pod: String::new(),
            provider: String::new(),
            error_origin: "",
            upstream_error: None,
            upstream_model: String::new(),
            attempts: 0,
            scores: Vec::new(),
            ejected: String::new(),
            upstream_status: None,
            upstream_started: None,
            headers_at: None,
            usage: None,
            reservation: None,
            permit: None,
            upstream: None,
            obs,
            done: false,
            busy: None,
        }
    }

    /// Records the route's model name: the downstream gauge moves to that label.
    pub fn set_model_label(&mut self, label: &str) {
        self.series.downstream.dec();
        self.series = self.obs.metrics.series(label);
        self.series.downstream.inc();
    }

    /// The series of the request's model label.
    pub fn series(&self) -> &Rc<ModelSeries> {
        &self.series
    }

    /// Counts the request as active upstream until it finishes.
    pub fn upstream_active(&mut self) {
        if self.upstream.is_none() {
            let g = self.obs.metrics.active_upstream.with_label_values(&[
                &self.route,
                if self.provider.is_empty() {
                    &self.server
                } else {
                    &self.provider
                },
            ]);
            g.inc();
            self.upstream = Some(g);
        }
    }

    /// What served the request, for the access log's `backend_type`.
    pub fn backend_type(&self) -> &'static str {
        if !self.provider.is_empty() {
            "external_provider"
        } else if !self.server.is_empty() {
            "model_server"
        } else if !self.pool.is_empty() {
            "inference_pool"
        } else {
            ""
        }
    }

    /// The object that served the request, `namespace/name`.
    pub fn backend_name(&self) -> &str {
        if !self.provider.is_empty() {
            &self.provider
        } else if !self.server.is_empty() {
            &self.server
        } else {
            &self.pool
        }
    }

    /// Finishes the record with the router's own error answer.
    pub fn fail(mut self, err: &RouterError) {
        let status = actix_web::ResponseError::status_code(err).as_u16();
        if !self.provider.is_empty() && self.error_origin.is_empty() {
            self.error_origin = "router";
        }
        self.finish_with(status, Some((err.kind(), &err.to_string())));
    }

    /// Finishes the record of a response whose body was (or was not entirely) sent.
    pub fn finish(mut self, status: u16, stream_error: Option<&str>) {
        let upstream = self.upstream_error.take();
        let error = match stream_error {
            Some(m) => Some(("stream_error", m)),
            None => upstream.as_ref().map(|(k, m)| (*k, m.as_str())),
        };
        self.finish_with(status, error);
    }

    fn finish_with(&mut self, status: u16, error: Option<(&str, &str)>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        if let Some(r) = self.reservation.take() {
            r.settle(self.usage);
        }
        if let Some(p) = self.permit.take() {
            p.finish(self.usage);
        }
        let end = Instant::now();
        let total = end - self.started;
        let m = &self.obs.metrics;
        if status == 200 && error.is_none() {
            let s = self.series.success(m, path_index(&self.path));
            s.requests.inc();
            s.duration.observe(total.as_secs_f64());
            if let Some(u) = self.usage {
                s.input.inc_by(u.prompt_tokens);
                s.output.inc_by(u.completion_tokens);
            }
        } else {
            let path = path_label(&self.path);
            let digits = status_digits(status);
            let code = std::str::from_utf8(&digits).unwrap_or("000");
            let model = &*self.series.label;
            m.requests
                .with_label_values(&[model, path, code, error.map_or("", |e| e.0)])
                .inc();
            m.duration
                .with_label_values(&[model, path, code])
                .observe(total.as_secs_f64());
            if let Some(u) = self.usage {
                m.tokens
                    .with_label_values(&[model, path, "input"])
                    .inc_by(u.prompt_tokens);
                m.tokens
                    .with_label_values(&[model, path, "output"])
                    .inc_by(u.completion_tokens);
            }
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if !self.obs.access_log.enabled {
            return;
        }
        let up = self.upstream_started.unwrap_or(end);
        let headers = self.headers_at.unwrap_or(end);
        self.obs.access_log.write(&Entry {
            timestamp: crate::access_log::timestamp(self.arrived),
            method: &self.method,
            path: &self.path,
            protocol: self.protocol,
            status_code: status,
            error: error.map(|(kind, message)| ErrorField { kind, message }),
            model_name: &self.model_name,
            user: &self.user,
            rate_limit_budget: &self.budget,
            gateway: &self.gateway,
            model_route: &self.route,
            http_route: &self.http_route,
            inference_pool: &self.pool,
            model_server: &self.server,
            selected_pod: &self.pod,
            backend_type: self.backend_type(),
            backend_name: self.backend_name(),
            error_origin: self.error_origin,
            request_id: &self.request_id,
            upstream_model: &self.upstream_model,
            upstream_status_code: self.upstream_status,
            upstream_attempts: self.attempts,
            scheduler_scores: &self.scores,
            ejected_pods: &self.ejected,
            input_tokens: self.usage.map_or(0, |u| u.prompt_tokens),
            output_tokens: self.usage.map_or(0, |u| u.completion_tokens),
            duration_total: ms(total),
            duration_request_processing: ms(up.saturating_duration_since(self.started)),
            duration_upstream_processing: ms(headers.saturating_duration_since(up)),
            duration_response_processing: ms(end.saturating_duration_since(headers)),
        });
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if !self.done {
            // The client went away before the response ended (499, as nginx logs it).
            self.finish_with(
                499,
                Some(("client_disconnected", "client closed the connection")),
            );
        }
        self.series.downstream.dec();
        if let Some(g) = &self.upstream {
            g.dec();
        }
    }
}

/// An HTTP status (100..=999) as its three digits, without allocating a String.
fn status_digits(status: u16) -> [u8; 3] {
    let s = status.min(999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_digits_are_the_three_digits() {
        for (s, d) in [(200, b"200"), (404, b"404"), (503, b"503"), (101, b"101")] {
            assert_eq!(&super::status_digits(s), d);
        }
    }
}
