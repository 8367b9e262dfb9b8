//! One access log line per `/v1/*` request, text (default) or JSON, with Kthena's keys, to
//! stdout, stderr or a file (`ACCESS_LOG_OUTPUT`).
//!
//! Each worker thread batches its lines and writes a batch at a time (see [`flush_thread`]);
//! [`flush_all`] writes out every thread's batch, so nothing is lost at shutdown.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use serde::Serialize;

/// Access log format (`ACCESS_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `[ts] "POST /path HTTP/1.1" 200 key=value ... tokens=in/out timings=...`.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where lines go (`ACCESS_LOG_OUTPUT`): `stdout`, `stderr`, or any other text as a file path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Standard output (also for an empty value).
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, created when missing and appended to.
    File(PathBuf),
}

impl std::str::FromStr for Output {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "" | "stdout" => Self::Stdout,
            "stderr" => Self::Stderr,
            path => Self::File(path.into()),
        })
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stdout => f.write_str("stdout"),
            Self::Stderr => f.write_str("stderr"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The access log file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("opening the access log file {}: {source}", path.display())]
pub struct OpenError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// An open [`Output`].
#[derive(Debug, Clone)]
pub enum Sink {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file opened for appending: every batch is one `write` at its end.
    File(Arc<File>),
}

impl Sink {
    /// Opens `output`; a file is created when missing.
    pub fn open(output: &Output) -> Result<Self, OpenError> {
        Ok(match output {
            Output::Stdout => Self::Stdout,
            Output::Stderr => Self::Stderr,
            Output::File(path) => Self::File(Arc::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| OpenError {
                        path: path.clone(),
                        source,
                    })?,
            )),
        })
    }

    /// True when both write to the same place.
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Stdout, Self::Stdout) | (Self::Stderr, Self::Stderr) => true,
            (Self::File(a), Self::File(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    fn write_all(&self, bytes: &[u8]) {
        // A closed stdout or a full disk must not fail requests; the lines are lost then.
        let _ = match self {
            Self::Stdout => std::io::stdout().lock().write_all(bytes),
            Self::Stderr => std::io::stderr().lock().write_all(bytes),
            Self::File(file) => (&**file).write_all(bytes),
        };
    }
}

/// Where and how requests are logged.
#[derive(Debug, Clone)]
pub struct AccessLog {
    /// Logging on (`ACCESS_LOG_ENABLED`).
    pub enabled: bool,
    /// Line format.
    pub format: Format,
    /// Destination.
    pub sink: Sink,
}

/// The access log flags, before anything is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// `ACCESS_LOG_ENABLED`.
    pub enabled: bool,
    /// `ACCESS_LOG_FORMAT`.
    pub format: Format,
    /// `ACCESS_LOG_OUTPUT`.
    pub output: Output,
}

impl Options {
    /// Opens the destination (not when logging is off).
    pub fn open(&self) -> Result<AccessLog, OpenError> {
        let output = if self.enabled {
            &self.output
        } else {
            &Output::Stdout
        };
        Ok(AccessLog {
            enabled: self.enabled,
            format: self.format,
            sink: Sink::open(output)?,
        })
    }
}

/// A worker's buffer is written out when it grows past this, or at the next flush tick.
const FLUSH_BYTES: usize = 32 * 1024;

/// How often each worker writes out its buffered lines.
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// Lines of one thread not yet written, and where they go.
#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    sink: Option<Sink>,
}

impl Pending {
    fn flush(&mut self) {
        if !self.bytes.is_empty() {
            if let Some(sink) = &self.sink {
                sink.write_all(&self.bytes);
            }
            self.bytes.clear();
        }
    }
}

type Buffer = Arc<Mutex<Pending>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every thread's buffer, for [`flush_all`]. A thread locks only its own buffer on the hot
/// path (uncontended but for a `flush_all`).
static BUFFERS: Mutex<Vec<Weak<Mutex<Pending>>>> = Mutex::new(Vec::new());

/// This thread's buffer; written out when the thread ends too.
struct Local(Buffer);

impl Local {
    fn new() -> Self {
        let buffer = Buffer::default();
        let mut all = lock(&BUFFERS);
        all.retain(|b| b.strong_count() > 0);
        all.push(Arc::downgrade(&buffer));
        Self(buffer)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        lock(&self.0).flush();
    }
}

thread_local! {
    static BUFFER: Local = Local::new();
}

/// Writes out the lines this thread buffered. Each worker calls it every [`FLUSH_INTERVAL`],
/// so a line reaches its output within that time while a busy worker pays one write per batch
/// instead of one per request.
pub fn flush_thread() {
    let _ = BUFFER.try_with(|b| lock(&b.0).flush());
}

/// Writes out the lines every thread buffered, e.g. after the drain at shutdown (worker
/// threads may still be ending when the process exits).
pub fn flush_all() {
    let buffers: Vec<Buffer> = lock(&BUFFERS).iter().filter_map(Weak::upgrade).collect();
    for b in buffers {
        lock(&b).flush();
    }
}

/// One request's log record. Durations are in milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Entry<'a> {
    /// RFC 3339 time the request arrived.
    pub timestamp: String,
    /// HTTP method.
    #[serde(serialize_with = "clipped")]
    pub method: &'a str,
    /// URL path.
    #[serde(serialize_with = "clipped")]
    pub path: &'a str,
    /// `HTTP/1.1`, ...
    pub protocol: &'a str,
    /// Status sent to the client.
    pub status_code: u16,
    /// Error type and message, when the router answered with an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorField<'a>>,
    /// The body's `model`.
    #[serde(serialize_with = "clipped")]
    pub model_name: &'a str,
    /// The authenticated user (the JWT's `sub`), when authentication is on.
    #[serde(skip_serializing_if = "str::is_empty", serialize_with = "clipped")]
    pub user: &'a str,
    /// The token budget drawn from, when the route's limit is per user or header value.
    #[serde(skip_serializing_if = "str::is_empty", serialize_with = "clipped")]
    pub rate_limit_budget: &'a str,
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
    /// What served the request: `model_server`, `external_provider` or `inference_pool`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub backend_type: &'a str,
    /// The ModelServer, ExternalModelProvider or InferencePool, `namespace/name`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub backend_name: &'a str,
    /// Who produced the error answer: `router`, or `upstream` (a provider's own error
    /// status passed through).
    #[serde(skip_serializing_if = "str::is_empty")]
    pub error_origin: &'a str,
    /// `x-request-id`.
    #[serde(serialize_with = "clipped")]
    pub request_id: &'a str,
    /// The `model` sent upstream.
    #[serde(skip_serializing_if = "str::is_empty", serialize_with = "clipped")]
    pub upstream_model: &'a str,
    /// Upstream status of the last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status_code: Option<u16>,
    /// Upstream attempts made.
    pub upstream_attempts: u32,
    /// The chosen Pod's score from each scheduler score plugin (JSON format only).
    #[serde(skip_serializing_if = "<[_]>::is_empty", serialize_with = "scores_map")]
    pub scheduler_scores: &'a [(&'static str, f64)],
    /// Pods this request's failures ejected (outlier detection), `namespace/name`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub ejected_pods: &'a str,
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

/// The most of a client-controlled value (model, path, request id, error message) a line
/// keeps, in bytes: a 1 MiB `model` must not become a 1 MiB line.
pub const FIELD_LIMIT: usize = 256;

/// `v` cut to [`FIELD_LIMIT`] bytes at a character boundary, and whether it was cut.
fn clip(v: &str) -> (&str, bool) {
    if v.len() <= FIELD_LIMIT {
        return (v, false);
    }
    let mut end = FIELD_LIMIT;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    (&v[..end], true)
}

/// Marks a value [`clip`] cut: the kept part, then this.
const CUT: &str = "...";

fn clipped<S: serde::Serializer>(v: &&str, s: S) -> Result<S::Ok, S::Error> {
    match clip(v) {
        (whole, false) => s.serialize_str(whole),
        (kept, true) => s.collect_str(&format_args!("{kept}{CUT}")),
    }
}

/// Appends `v`, clipped, to a text line so that no value can end the line, close the
/// request's quotes or add a `key=value` of its own: a quote, a backslash, every control
/// character and, in a token, a space (in free text, such as the error message as Kthena
/// writes it, an `=` instead) are written `\xHH`.
fn push_escaped(line: &mut String, v: &str, free_text: bool) {
    use std::fmt::Write as _;
    let (kept, cut) = clip(v);
    let clean = |c: char| {
        !(c.is_control() || c == '"' || c == '\\' || if free_text { c == '=' } else { c == ' ' })
    };
    // Bytes first: an ASCII byte decides alone, and the only control characters past ASCII
    // (U+0080..U+009F) are encoded 0xC2 0x80..0x9F.
    let bytes = kept.as_bytes();
    let dirty = bytes.iter().enumerate().any(|(i, &b)| match b {
        0..0x20 | 0x7f | b'"' | b'\\' => true,
        b' ' => !free_text,
        b'=' => free_text,
        0xc2 => bytes.get(i + 1).is_some_and(|n| (0x80..0xa0).contains(n)),
        _ => false,
    });
    if !dirty {
        line.push_str(kept);
    } else {
        for c in kept.chars() {
            if clean(c) {
                line.push(c);
            } else {
                // Control characters are below U+00A0: every one fits in one or two bytes.
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(line, "\\x{b:02x}");
                }
            }
        }
    }
    if cut {
        line.push_str(CUT);
    }
}

/// Appends the decimal digits of `n`.
fn push_int(line: &mut String, n: impl itoa::Integer) {
    line.push_str(itoa::Buffer::new().format(n));
}

/// `at` in RFC 3339, UTC, rounded to the millisecond with trailing zeros of the fraction
/// left out (`2026-12-07T22:48:43.12Z`, `2026-12-07T22:48:43Z`), as jiff prints a rounded
/// timestamp; the date and time of day are formatted once per second per thread.
pub fn timestamp(at: std::time::SystemTime) -> String {
    use std::cell::RefCell;
    use std::time::UNIX_EPOCH;
    thread_local! {
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    // Milliseconds since the epoch, half away from zero as jiff rounds.
    let ms: i64 = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from((d.as_nanos() + 500_000) / 1_000_000).unwrap_or(i64::MAX),
        Err(e) => {
            -i64::try_from((e.duration().as_nanos() + 500_000) / 1_000_000).unwrap_or(i64::MAX)
        }
    };
    let (second, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let Ok(t) = k8s_openapi::jiff::Timestamp::from_second(second) else {
                return String::new();
            };
            let mut text = t.to_string();
            // jiff writes a whole second as `...:SSZ`: keep the part before the `Z`.
            text.pop();
            *cached = (second, text);
        }
        let mut out = String::with_capacity(cached.1.len() + 5);
        out.push_str(&cached.1);
        if milli > 0 {
            let digits = [
                b'0' + (milli / 100) as u8,
                b'0' + (milli / 10 % 10) as u8,
                b'0' + (milli % 10) as u8,
            ];
            let end = 3 - digits.iter().rev().take_while(|d| **d == b'0').count();
            out.push('.');
            out.push_str(std::str::from_utf8(&digits[..end]).unwrap_or_default());
        }
        out.push('Z');
        out
    })
}

fn scores_map<S: serde::Serializer>(
    scores: &&[(&'static str, f64)],
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(scores.len()))?;
    for (name, score) in scores.iter() {
        m.serialize_entry(name, &((score * 100.0).round() / 100.0))?;
    }
    m.end()
}

/// `error{type,message}`.
#[derive(Debug, Serialize)]
pub struct ErrorField<'a> {
    /// Error type.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Message.
    #[serde(serialize_with = "clipped")]
    pub message: &'a str,
}

impl AccessLog {
    /// True when lines carry the scheduler's scores (JSON format, logging on).
    pub fn wants_scores(&self) -> bool {
        self.enabled && self.format == Format::Json
    }

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
            let mut b = lock(&b.0);
            if !b.sink.as_ref().is_some_and(|s| s.same(&self.sink)) {
                // Another log (tests run several) wrote here before: its lines go first.
                b.flush();
                b.sink = Some(self.sink.clone());
            }
            b.bytes.extend_from_slice(line.as_bytes());
            b.bytes.push(b'\n');
            if b.bytes.len() >= FLUSH_BYTES {
                b.flush();
            }
        });
    }
}

/// Kthena's text layout. Every value a client or a configuration controls is clipped and
/// escaped ([`push_escaped`]).
pub fn text(e: &Entry<'_>) -> String {
    let mut s = String::with_capacity(320);
    s.push('[');
    s.push_str(&e.timestamp);
    s.push_str("] \"");
    push_escaped(&mut s, e.method, false);
    s.push(' ');
    push_escaped(&mut s, e.path, false);
    s.push(' ');
    s.push_str(e.protocol);
    s.push_str("\" ");
    push_int(&mut s, e.status_code);
    if let Some(err) = &e.error {
        s.push_str(" error=");
        push_escaped(&mut s, err.kind, false);
        s.push(':');
        push_escaped(&mut s, err.message, true);
    }
    s.push_str(" model_name=");
    push_escaped(&mut s, e.model_name, false);
    for (k, v) in [
        ("user", e.user),
        ("rate_limit_budget", e.rate_limit_budget),
        ("gateway", e.gateway),
        ("model_route", e.model_route),
        ("http_route", e.http_route),
        ("inference_pool", e.inference_pool),
        ("model_server", e.model_server),
        ("selected_pod", e.selected_pod),
        ("backend_type", e.backend_type),
        ("backend_name", e.backend_name),
        ("upstream_model", e.upstream_model),
        ("ejected_pods", e.ejected_pods),
    ] {
        if !v.is_empty() {
            s.push(' ');
            s.push_str(k);
            s.push('=');
            push_escaped(&mut s, v, false);
        }
    }
    s.push_str(" request_id=");
    push_escaped(&mut s, e.request_id, false);
    if let Some(code) = e.upstream_status_code {
        s.push_str(" upstream_status_code=");
        push_int(&mut s, code);
    }
    s.push_str(" upstream_attempts=");
    push_int(&mut s, e.upstream_attempts);
    if !e.error_origin.is_empty() {
        s.push_str(" error_origin=");
        push_escaped(&mut s, e.error_origin, false);
    }
    s.push_str(" tokens=");
    push_int(&mut s, e.input_tokens);
    s.push('/');
    push_int(&mut s, e.output_tokens);
    s.push_str(" timings=");
    push_int(&mut s, e.duration_total);
    s.push_str("ms(");
    push_int(&mut s, e.duration_request_processing);
    s.push('+');
    push_int(&mut s, e.duration_upstream_processing);
    s.push('+');
    push_int(&mut s, e.duration_response_processing);
    s.push(')');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached timestamp is exactly what jiff prints for the time rounded to the
    /// millisecond, across second boundaries, whole seconds, trailing zeros and rounding up.
    #[test]
    fn timestamps_are_jiffs_rounded_to_the_millisecond() {
        use std::time::{Duration, UNIX_EPOCH};
        let jiff = |t: std::time::SystemTime| {
            let t = k8s_openapi::jiff::Timestamp::try_from(t).expect("in range");
            t.round(k8s_openapi::jiff::Unit::Millisecond)
                .unwrap_or(t)
                .to_string()
        };
        let base = UNIX_EPOCH + Duration::from_secs(1_796_680_000);
        for nanos in [
            0,
            1,
            499_999,
            500_000,
            120_000_000,
            100_000_000,
            999_499_999,
            999_500_000,
            1_000_000_000,
            1_234_567_891,
            59_999_999_999,
        ] {
            let t = base + Duration::from_nanos(nanos);
            assert_eq!(timestamp(t), jiff(t), "{nanos} ns");
        }
        let before_epoch = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(timestamp(before_epoch), jiff(before_epoch));
    }

    #[test]
    fn output_is_stdout_stderr_or_a_file() {
        for (text, want) in [
            ("stdout", Output::Stdout),
            ("", Output::Stdout),
            ("stderr", Output::Stderr),
            ("/var/log/a.log", Output::File("/var/log/a.log".into())),
            ("relative.log", Output::File("relative.log".into())),
        ] {
            assert_eq!(text.parse::<Output>(), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn an_access_log_file_that_cannot_be_opened_is_an_error_naming_it() {
        let options = Options {
            enabled: true,
            format: Format::Json,
            output: Output::File("/nonexistent-dir/access.log".into()),
        };
        let err = options.open().expect_err("no such folder");
        assert!(
            err.to_string().contains("/nonexistent-dir/access.log"),
            "{err}"
        );
        // Logging off: nothing is opened.
        let off = Options {
            enabled: false,
            ..options
        };
        assert!(off.open().is_ok());
    }

    /// A newline, a quote or a `key=value` in a client's value cannot forge a line or a
    /// field, and a huge value is cut; JSON lines are cut the same way.
    #[test]
    fn client_values_are_escaped_and_clipped() {
        let huge = "m".repeat(1 << 20);
        let e = Entry {
            timestamp: "2026-12-07T00:00:00Z".into(),
            method: "POST",
            path: "/v1/chat\"completions",
            protocol: "HTTP/1.1",
            status_code: 404,
            error: Some(ErrorField {
                kind: "route_not_found",
                message: "route not found\n[forged] \"GET / HTTP/1.1\" 200",
            }),
            model_name: "a\nb selected_pod=x/y\\z\u{7f}é",
            request_id: &huge,
            ..Entry::default()
        };
        let line = text(&e);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.contains(r#""POST /v1/chat\x22completions HTTP/1.1" 404"#),
            "{line}"
        );
        assert!(
            line.contains(r" model_name=a\x0ab\x20selected_pod=x/y\x5cz\x7fé "),
            "{line}"
        );
        assert!(
            line.contains(
                r#"error=route_not_found:route not found\x0a[forged] \x22GET / HTTP/1.1\x22 200 "#
            ),
            "{line}"
        );
        assert!(!line.contains(" selected_pod="), "{line}");
        let id = format!(" request_id={}... ", "m".repeat(FIELD_LIMIT));
        assert!(line.contains(&id), "the id is cut at {FIELD_LIMIT} bytes");
        assert!(line.len() < 2 * FIELD_LIMIT + 400, "{} bytes", line.len());

        let json = serde_json::to_string(&e).expect("serializes");
        let v: serde_json::Value = serde_json::from_str(&json).expect("one JSON value");
        assert_eq!(v["model_name"], "a\nb selected_pod=x/y\\z\u{7f}é");
        assert_eq!(
            v["request_id"].as_str().map(str::len),
            Some(FIELD_LIMIT + 3)
        );
        assert!(!json.contains('\n'));
        // A cut never splits a character.
        let wide = "é".repeat(FIELD_LIMIT);
        let (kept, cut) = clip(&wide);
        assert!(cut && kept.len() == FIELD_LIMIT && kept.chars().all(|c| c == 'é'));
    }

    #[test]
    fn text_line_has_kthena_tokens() {
        let e = Entry {
            timestamp: "2026-11-22T00:00:00Z".into(),
            method: "POST",
            path: "/v1/chat/completions",
            protocol: "HTTP/1.1",
            status_code: 200,
            model_name: "deepseek-r1",
            user: "alice",
            model_route: "default/deepseek-simple",
            model_server: "default/deepseek-r1-1-5b",
            selected_pod: "default/pod-a",
            request_id: "r1",
            upstream_attempts: 1,
            scheduler_scores: &[],
            ejected_pods: "",
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
            " model_name=deepseek-r1 user=alice",
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
