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
#[derive(Debug, Clone)]
pub struct AccessLog {
    /// Logging on (`ACCESS_LOG_ENABLED`).
    pub enabled: bool,
    /// Line format.
    pub format: Format,
    writer: Option<std::sync::mpsc::SyncSender<String>>,
}

/// Lines queued for the writer thread before requests wait for it.
const QUEUE: usize = 16 * 1024;

impl AccessLog {
    /// An access log writing to stdout from a thread of its own, so a request costs a queue
    /// push instead of a write syscall; lines are flushed as soon as the queue is empty.
    pub fn stdout(enabled: bool, format: Format) -> Self {
        if !enabled {
            return Self::disabled();
        }
        let (tx, rx) = std::sync::mpsc::sync_channel::<String>(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
                while let Ok(line) = rx.recv() {
                    // A closed stdout must not fail requests; the lines are lost then.
                    let _ = writeln!(out, "{line}");
                    while let Ok(line) = rx.try_recv() {
                        let _ = writeln!(out, "{line}");
                    }
                    let _ = out.flush();
                }
            });
        match spawned {
            Ok(_) => Self {
                enabled,
                format,
                writer: Some(tx),
            },
            Err(e) => {
                tracing::error!(error = %e, "starting the access log writer; access log off");
                Self::disabled()
            }
        }
    }

    /// No access log.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            format: Format::Text,
            writer: None,
        }
    }
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
    /// Queues `entry` as one line.
    pub fn write(&self, entry: &Entry<'_>) {
        let Some(writer) = &self.writer else { return };
        let line = match self.format {
            Format::Json => serde_json::to_string(entry).unwrap_or_default(),
            Format::Text => text(entry),
        };
        let _ = writer.send(line);
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
