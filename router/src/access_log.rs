//! One access log line per `/v1/*` request, text (default) or JSON, with Kthena's keys.

use std::io::Write;

use serde::Serialize;

/// Access log format (`ACCESS_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `[ts] "POST /path HTTP/1.1" 200 key=value ... tokens=in/out timings=...`.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where and how requests are logged.
#[derive(Debug, Clone, Copy)]
pub struct AccessLog {
    /// Logging on (`ACCESS_LOG_ENABLED`).
    pub enabled: bool,
    /// Line format.
    pub format: Format,
}

/// A worker's buffer is written out when it grows past this, or at the next flush tick.
const FLUSH_BYTES: usize = 32 * 1024;

/// How often each worker writes out its buffered lines.
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// Lines of this thread not yet written; written out when the thread ends too.
struct Buffer(Vec<u8>);

impl Buffer {
    fn flush(&mut self) {
        if !self.0.is_empty() {
            // A closed stdout must not fail requests; the lines are lost then.
            let _ = std::io::stdout().lock().write_all(&self.0);
            self.0.clear();
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        self.flush();
    }
}

thread_local! {
    static BUFFER: std::cell::RefCell<Buffer> = const { std::cell::RefCell::new(Buffer(Vec::new())) };
}

/// Writes out the lines this thread buffered. Each worker calls it every [`FLUSH_INTERVAL`],
/// so a line reaches stdout within that time while a busy worker pays one write per batch
/// instead of one per request.
pub fn flush_thread() {
    let _ = BUFFER.try_with(|b| b.borrow_mut().flush());
}

/// One request's log record. Durations are in milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Entry<'a> {
    /// RFC 3339 time the request arrived.
    pub timestamp: String,
    /// HTTP method.
    pub method: &'a str,
    /// URL path.
    pub path: &'a str,
    /// `HTTP/1.1`, ...
    pub protocol: &'a str,
    /// Status sent to the client.
    pub status_code: u16,
    /// Error type and message, when the router answered with an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorField<'a>>,
    /// The body's `model`.
    pub model_name: &'a str,
    /// The Gateway the request came through, `namespace/name` (gateway mode).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub gateway: &'a str,
    /// The ModelRoute, `namespace/name`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub model_route: &'a str,
    /// The HTTPRoute, `namespace/name` (gateway mode).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub http_route: &'a str,
    /// The InferencePool, `namespace/name` (gateway mode).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub inference_pool: &'a str,
    /// The ModelServer, `namespace/name`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub model_server: &'a str,
    /// The Pod that answered, `namespace/name`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub selected_pod: &'a str,
    /// `x-request-id`.
    pub request_id: &'a str,
    /// The `model` sent upstream.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub upstream_model: &'a str,
    /// Upstream status of the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status_code: Option<u16>,
    /// Upstream attempts made.
    pub upstream_attempts: u32,
    /// Prompt tokens reported by the engine.
    pub input_tokens: u64,
    /// Completion tokens reported by the engine.
    pub output_tokens: u64,
    /// Total time.
    pub duration_total: u64,
    /// Time before the first upstream attempt.
    pub duration_request_processing: u64,
    /// Time from the first attempt to the response headers.
    pub duration_upstream_processing: u64,
    /// Time streaming the response.
    pub duration_response_processing: u64,
}

/// `error{type,message}`.
#[derive(Debug, Serialize)]
pub struct ErrorField<'a> {
    /// Error type.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Message.
    pub message: &'a str,
}

impl AccessLog {
    /// Buffers `entry` as one line of this thread's output (see [`flush_thread`]).
    pub fn write(&self, entry: &Entry<'_>) {
        if !self.enabled {
            return;
        }
        let line = match self.format {
            Format::Json => serde_json::to_string(entry).unwrap_or_default(),
            Format::Text => text(entry),
        };
        let _ = BUFFER.try_with(|b| {
            let mut b = b.borrow_mut();
            b.0.extend_from_slice(line.as_bytes());
            b.0.push(b'\n');
            if b.0.len() >= FLUSH_BYTES {
                b.flush();
            }
        });
    }
}

/// Kthena's text layout.
pub fn text(e: &Entry<'_>) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "[{}] \"{} {} {}\" {}",
        e.timestamp, e.method, e.path, e.protocol, e.status_code
    );
    if let Some(err) = &e.error {
        let _ = write!(s, " error={}:{}", err.kind, err.message);
    }
    let _ = write!(s, " model_name={}", e.model_name);
    for (k, v) in [
        ("gateway", e.gateway),
        ("model_route", e.model_route),
        ("http_route", e.http_route),
        ("inference_pool", e.inference_pool),
        ("model_server", e.model_server),
        ("selected_pod", e.selected_pod),
        ("upstream_model", e.upstream_model),
    ] {
        if !v.is_empty() {
            let _ = write!(s, " {k}={v}");
        }
    }
    let _ = write!(s, " request_id={}", e.request_id);
    if let Some(code) = e.upstream_status_code {
        let _ = write!(s, " upstream_status_code={code}");
    }
    let _ = write!(
        s,
        " upstream_attempts={} tokens={}/{} timings={}ms({}+{}+{})",
        e.upstream_attempts,
        e.input_tokens,
        e.output_tokens,
        e.duration_total,
        e.duration_request_processing,
        e.duration_upstream_processing,
        e.duration_response_processing
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_line_has_kthena_tokens() {
        let e = Entry {
            timestamp: "2026-11-22T00:00:00Z".into(),
            method: "POST",
            path: "/v1/chat/completions",
            protocol: "HTTP/1.1",
            status_code: 200,
            model_name: "deepseek-r1",
            model_route: "default/deepseek-simple",
            model_server: "default/deepseek-r1-1-5b",
            selected_pod: "default/pod-a",
            request_id: "r1",
            upstream_attempts: 1,
            input_tokens: 3,
            output_tokens: 8,
            duration_total: 12,
            duration_upstream_processing: 10,
            ..Entry::default()
        };
        let line = text(&e);
        assert!(
            line.starts_with("[2026-11-22T00:00:00Z] \"POST /v1/chat/completions HTTP/1.1\" 200 "),
            "{line}"
        );
        for token in [
            " model_name=deepseek-r1",
            " model_route=default/deepseek-simple",
            " model_server=default/deepseek-r1-1-5b",
            " selected_pod=default/pod-a",
            " tokens=3/8",
            " timings=12ms(0+10+0)",
        ] {
            assert!(line.contains(token), "{token} missing in {line}");
        }
    }
}
