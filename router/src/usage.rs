//! Token usage read from engine responses, and the SSE filter that hides the usage chunk the
//! router asked for when the client did not.

use bytes::{Buf, Bytes, BytesMut};
use serde::Deserialize;

/// Most bytes of a non-streamed response kept to read its `usage`.
pub const MAX_USAGE_SCAN_BYTES: usize = 1 << 20;

/// `usage` of an OpenAI response or stream chunk (or of an Anthropic message, or an OpenAI
/// Responses answer: `input_tokens` and `output_tokens`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Input tokens.
    #[serde(default, alias = "input_tokens")]
    pub prompt_tokens: u64,
    /// Output tokens.
    #[serde(default, alias = "output_tokens")]
    pub completion_tokens: u64,
}

#[derive(Deserialize)]
struct WithUsage {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    choices: Option<Vec<serde::de::IgnoredAny>>,
}

/// The `usage` of a complete (non-streamed) JSON response body.
///
/// Engines write `usage` last (vLLM: at most `null`/scalar members after it), so the top-level
/// `usage` is read from the end of the body without scanning the answer's text
/// ([`tail_usage`]); any other shape takes the full parse.
pub fn from_json(body: &[u8]) -> Option<Usage> {
    if let Some(u) = tail_usage(body) {
        return Some(u);
    }
    serde_json::from_slice::<WithUsage>(body).ok()?.usage
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The top-level `usage` of `body` when it is the object's last member but for members whose
/// values are `null`, numbers or booleans; `None` when that cannot be told from the tail.
///
/// Why it is the top-level one: a quote in a JSON string is escaped, so a `"usage"` preceded by
/// `{` or `,` (whitespace aside) and followed by `:` is a key; the object holding it closes at
/// the body's last byte, and only the outermost object can.
fn tail_usage(body: &[u8]) -> Option<Usage> {
    let at = memchr::memmem::rfind(body, b"\"usage\"")?;
    let before = body[..at].iter().rev().find(|c| !c.is_ascii_whitespace())?;
    if !matches!(before, b'{' | b',') {
        return None;
    }
    let colon = skip_ws(body, at + 7);
    if body.get(colon) != Some(&b':') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_slice(&body[colon + 1..]).into_iter::<Usage>();
    let usage = de.next()?.ok()?;
    let mut i = colon + 1 + de.byte_offset();
    // Then `,"key":scalar` members, and the closing brace at the very end.
    loop {
        i = skip_ws(body, i);
        match body.get(i)? {
            b'}' => return (skip_ws(body, i + 1) == body.len()).then_some(usage),
            b',' => {
                i = skip_ws(body, i + 1);
                if body.get(i) != Some(&b'"') {
                    return None;
                }
                let end = i + 1 + memchr::memchr2(b'"', b'\\', &body[i + 1..])?;
                if body[end] != b'"' {
                    return None; // an escaped key: leave it to the parser
                }
                i = skip_ws(body, end + 1);
                if body.get(i) != Some(&b':') {
                    return None;
                }
                i = skip_ws(body, i + 1);
                let len = body[i..].iter().position(|c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                })?;
                let value = &body[i..i + len];
                let scalar = matches!(value, b"null" | b"true" | b"false")
                    || (!value.is_empty() && (value[0].is_ascii_digit() || value[0] == b'-'));
                if !scalar {
                    return None;
                }
                i += len;
            }
            _ => return None,
        }
    }
}

/// The largest SSE event the filter holds back to read: a longer one (no blank line after
/// this many bytes) is passed on as it arrives, unread, until its end. OpenAI's events, the
/// usage event included, are a few hundred bytes.
pub const MAX_SSE_EVENT_BYTES: usize = 1 << 20;

/// Reads an SSE stream chunk by chunk: records the last `usage` seen and, when `hide_usage`,
/// drops the usage-only chunk (`"choices": []`) that the router injected.
///
/// Complete events are passed on at once; only an event split across chunks is held until its
/// end arrives, and at most [`MAX_SSE_EVENT_BYTES`] of it. Chunks without `"usage"` are not
/// parsed at all. Linear in the bytes seen: a held event is searched for its end once, each
/// byte once.
#[derive(Debug)]
pub struct SseFilter {
    hide_usage: bool,
    pending: BytesMut,
    /// How much of `pending` was searched for an event's end without finding one.
    searched: usize,
    /// The most bytes of one event held back ([`MAX_SSE_EVENT_BYTES`]).
    limit: usize,
    /// The event under way outgrew `limit`: it is passed on unread until its end. The last
    /// bytes passed on, to find an end split across chunks.
    oversized: Option<Tail>,
    /// The last usage seen.
    pub usage: Option<Usage>,
    /// The last event passed on was `data: [DONE]`, OpenAI's end of a stream.
    pub done: bool,
}

/// The last (at most 3) bytes of an oversized event passed on.
#[derive(Debug, Default, Clone, Copy)]
struct Tail {
    bytes: [u8; 3],
    len: usize,
}

impl Tail {
    fn after(mut self, chunk: &[u8]) -> Self {
        for &b in chunk.iter().rev().take(3).rev() {
            if self.len == 3 {
                self.bytes.copy_within(1.., 0);
                self.len = 2;
            }
            self.bytes[self.len] = b;
            self.len += 1;
        }
        self
    }

    /// Where in `chunk` the event ends (just past its blank line), counting the tail's bytes
    /// before it.
    fn end_in(self, chunk: &[u8]) -> Option<usize> {
        let mut seam = [0u8; 6];
        let head = chunk.len().min(3);
        seam[..self.len].copy_from_slice(&self.bytes[..self.len]);
        seam[self.len..self.len + head].copy_from_slice(&chunk[..head]);
        let across = event_end(&seam[..self.len + head])
            .filter(|&end| end > self.len)
            .map(|end| end - self.len);
        across.or_else(|| event_end(chunk))
    }
}

impl SseFilter {
    /// A filter; `hide_usage` drops usage-only chunks.
    pub fn new(hide_usage: bool) -> Self {
        Self::with_event_limit(hide_usage, MAX_SSE_EVENT_BYTES)
    }

    /// A filter that holds back at most `limit` bytes of an event.
    pub fn with_event_limit(hide_usage: bool, limit: usize) -> Self {
        Self {
            hide_usage,
            pending: BytesMut::new(),
            searched: 0,
            limit,
            oversized: None,
            usage: None,
            done: false,
        }
    }

    /// Bytes held back: the start of an event whose end has not arrived.
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    /// Notes whether `sent` (what was just passed on) ends the stream.
    fn passed(&mut self, sent: Bytes) -> Bytes {
        if !sent.is_empty() {
            self.done = sent.trim_ascii_end().ends_with(b"data: [DONE]");
        }
        sent
    }

    /// What to send to the client for `chunk` (possibly empty).
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        if let Some(tail) = self.oversized {
            let Some(end) = tail.end_in(&chunk) else {
                self.oversized = Some(tail.after(&chunk));
                return self.passed(chunk);
            };
            self.oversized = None;
            let rest = self.push(chunk.slice(end..));
            if rest.is_empty() {
                return self.passed(chunk.slice(..end));
            }
            let mut out = BytesMut::with_capacity(end + rest.len());
            out.extend_from_slice(&chunk[..end]);
            out.extend_from_slice(&rest);
            return self.passed(out.freeze());
        }
        let fast = self.pending.is_empty()
            && (chunk.ends_with(b"\n\n") || chunk.ends_with(b"\r\n\r\n"))
            && !contains(&chunk, b"\"usage\"");
        if fast {
            return self.passed(chunk);
        }
        self.pending.extend_from_slice(&chunk);
        let mut out = BytesMut::new();
        loop {
            // A separator may straddle the bytes searched before and the new ones.
            let from = self.searched.saturating_sub(3);
            let Some(end) = event_end(&self.pending[from..]).map(|e| e + from) else {
                self.searched = self.pending.len();
                break;
            };
            self.searched = 0;
            let event = self.pending.split_to(end).freeze();
            if self.inspect(&event) {
                out.extend_from_slice(&event);
            }
        }
        if self.pending.len() > self.limit {
            let held = std::mem::take(&mut self.pending);
            self.searched = 0;
            self.oversized = Some(Tail::default().after(&held));
            out.extend_from_slice(&held);
        }
        self.passed(out.freeze())
    }

    /// True when the event held back (unterminated) is `data: [DONE]`.
    pub fn pending_done(&self) -> bool {
        self.pending.trim_ascii_end().ends_with(b"data: [DONE]")
    }

    /// Whatever is left when the stream ends (an unterminated last event).
    pub fn finish(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.pending).freeze();
        self.searched = 0;
        if !rest.is_empty() && self.inspect(&rest) {
            self.passed(rest)
        } else {
            Bytes::new()
        }
    }

    /// Records usage in `event`; false when the event must be dropped.
    fn inspect(&mut self, event: &Bytes) -> bool {
        if !contains(event, b"\"usage\"") {
            return true;
        }
        let mut keep = true;
        for line in event.split(|b| *b == b'\n') {
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let data = data.trim_ascii();
            let Ok(parsed) = serde_json::from_slice::<WithUsage>(data) else {
                continue;
            };
            if let Some(u) = parsed.usage {
                self.usage = Some(u);
                if self.hide_usage && parsed.choices.as_ref().is_some_and(Vec::is_empty) {
                    keep = false;
                }
            }
        }
        keep
    }
}

/// The length of the first complete event of `buf` (separator included): events end with a
/// blank line, `\n\n` or `\r\n\r\n`.
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = find(buf, b"\n\n").map(|i| i + 2);
    let crlf = find(buf, b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// Keeps the first [`MAX_USAGE_SCAN_BYTES`] of a response body to read `usage` at its end.
#[derive(Debug, Default)]
pub struct JsonCapture {
    buf: BytesMut,
    overflow: bool,
}

impl JsonCapture {
    /// Records a chunk that is passed on unchanged.
    pub fn push(&mut self, chunk: &Bytes) {
        if self.overflow || self.buf.len() + chunk.len() > MAX_USAGE_SCAN_BYTES {
            self.overflow = true;
            self.buf.clear();
        } else {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// The usage of the whole body, unless it was too large to keep.
    pub fn usage(&self) -> Option<Usage> {
        if self.overflow {
            None
        } else {
            from_json(self.buf.chunk())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filter knows whether the last event passed on was OpenAI's `[DONE]`, whether it
    /// came whole, split across chunks, or unterminated at the end.
    #[test]
    fn the_end_of_an_openai_stream_is_noticed() {
        let mut f = SseFilter::new(false);
        f.push(Bytes::from_static(b"data: {\"choices\":[]}\n\n"));
        assert!(!f.done);
        f.push(Bytes::from_static(b"data: [DONE]\n\n"));
        assert!(f.done);
        let mut split = SseFilter::new(false);
        split.push(Bytes::from_static(b"data: {}\n\ndata: [DO"));
        assert!(!split.done && !split.pending_done());
        split.push(Bytes::from_static(b"NE]\r\n\r\n"));
        assert!(split.done);
        let mut open = SseFilter::new(false);
        open.push(Bytes::from_static(b"data: [DONE]"));
        assert!(
            open.pending_done(),
            "an unterminated [DONE] still ends the stream"
        );
        open.finish();
        assert!(open.done);
    }

    const CHUNK: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n";
    const USAGE: &str =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    fn run(hide: bool, chunks: &[&str]) -> (String, Option<Usage>) {
        let mut f = SseFilter::new(hide);
        let mut out = String::new();
        for c in chunks {
            out.push_str(
                std::str::from_utf8(&f.push(Bytes::copy_from_slice(c.as_bytes()))).unwrap(),
            );
        }
        out.push_str(std::str::from_utf8(&f.finish()).unwrap());
        (out, f.usage)
    }

    #[test]
    fn injected_usage_chunk_is_read_and_hidden() {
        let (out, usage) = run(true, &[CHUNK, CHUNK, USAGE, DONE]);
        assert_eq!(out, format!("{CHUNK}{CHUNK}{DONE}"));
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 7
            })
        );
    }

    #[test]
    fn requested_usage_chunk_is_passed_on() {
        let (out, usage) = run(false, &[CHUNK, USAGE, DONE]);
        assert_eq!(out, format!("{CHUNK}{USAGE}{DONE}"));
        assert_eq!(usage.map(|u| u.completion_tokens), Some(7));
    }

    #[test]
    fn events_split_across_chunks_are_reassembled() {
        let all = format!("{CHUNK}{USAGE}{DONE}");
        for cut in [3, 20, CHUNK.len() + 10, all.len() - 4] {
            let (out, usage) = run(true, &[&all[..cut], &all[cut..]]);
            assert_eq!(out, format!("{CHUNK}{DONE}"), "cut at {cut}");
            assert!(usage.is_some());
        }
    }

    /// An event longer than the limit is passed on as it comes, never held past the limit,
    /// and the events after it are read as usual, wherever the chunks are cut (a separator
    /// straddling two chunks included).
    #[test]
    fn an_oversized_event_passes_unread_and_the_stream_goes_on() {
        for sep in ["\n\n", "\r\n\r\n"] {
            let big = format!("data: {}{sep}", "x".repeat(1000));
            let all = format!("{big}{CHUNK}{USAGE}{big}{DONE}");
            for size in [1, 2, 3, 4, 5, 7, 64, 333] {
                let mut f = SseFilter::with_event_limit(true, 200);
                let mut out = Vec::new();
                for piece in all.as_bytes().chunks(size) {
                    out.extend_from_slice(&f.push(Bytes::copy_from_slice(piece)));
                    assert!(f.held() <= 200, "held {} (chunks of {size})", f.held());
                }
                out.extend_from_slice(&f.finish());
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    format!("{big}{CHUNK}{big}{DONE}"),
                    "chunks of {size}"
                );
                assert_eq!(f.usage.map(|u| u.completion_tokens), Some(7));
                assert!(f.done);
            }
        }
    }

    /// One huge event with no end, 1 KiB at a time: held at most up to the limit, then
    /// passed on, every byte once.
    #[test]
    fn an_endless_event_is_not_held() {
        let mut f = SseFilter::new(false);
        let piece = Bytes::from(vec![b'x'; 1024]);
        let mut passed = 0;
        for _ in 0..(4 * MAX_SSE_EVENT_BYTES / 1024) {
            passed += f.push(piece.clone()).len();
            assert!(f.held() <= MAX_SSE_EVENT_BYTES);
        }
        assert!(passed >= 3 * MAX_SSE_EVENT_BYTES, "{passed}");
        assert_eq!(passed + f.finish().len(), 4 * MAX_SSE_EVENT_BYTES);
    }

    #[test]
    fn crlf_separated_events_stream_too() {
        let chunk = CHUNK.replace("\n\n", "\r\n\r\n");
        let usage = USAGE.replace("\n\n", "\r\n\r\n");
        let done = DONE.replace("\n\n", "\r\n\r\n");
        let mut f = SseFilter::new(true);
        // Each event is passed on as soon as it is complete, not at the end of the stream.
        let first = f.push(Bytes::from(format!("{chunk}{}", &usage[..10])));
        assert_eq!(first, Bytes::from(chunk.clone()));
        let second = f.push(Bytes::from(format!("{}{done}", &usage[10..])));
        assert_eq!(second, Bytes::from(done));
        assert_eq!(f.usage.map(|u| u.completion_tokens), Some(7));
    }

    #[test]
    fn the_usage_read_from_the_tail_is_the_top_level_one_or_none() {
        let u = |p, c| {
            Some(Usage {
                prompt_tokens: p,
                completion_tokens: c,
            })
        };
        let cases: &[(&str, Option<Usage>)] = &[
            (
                r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
                u(3, 4),
            ),
            (
                r#"{"usage" : {"prompt_tokens":1,"completion_tokens":2,"total_tokens":3} ,"prompt_logprobs":null,"kv_transfer_params":null, "n": -1.5e3}  "#,
                u(1, 2),
            ),
            // A nested usage last, the top level having none: the tail cannot tell, the full
            // parse says none.
            (
                r#"{"choices":[{"usage":{"prompt_tokens":9,"completion_tokens":9}}]}"#,
                None,
            ),
            // A usage-looking text inside a string is not a key.
            (
                r#"{"choices":[{"text":"{\"usage\":{\"prompt_tokens\":9}}"}],"usage":{"prompt_tokens":5,"completion_tokens":6}}"#,
                u(5, 6),
            ),
            (
                r#"{"choices":[{"text":"\"usage\":{\"prompt_tokens\":9}}"}]}"#,
                None,
            ),
            // Something else after usage: the full parse.
            (
                r#"{"usage":{"prompt_tokens":7,"completion_tokens":8},"choices":[{"text":"a"}]}"#,
                u(7, 8),
            ),
            (
                r#"{"usage":{"prompt_tokens":7,"completion_tokens":8},"x":"y"}"#,
                u(7, 8),
            ),
            (r#"{"usage":null}"#, None),
            (
                r#"{"usage":{"prompt_tokens":7,"completion_tokens":8}"#,
                None,
            ),
            ("", None),
        ];
        for (body, want) in cases {
            assert_eq!(from_json(body.as_bytes()), *want, "{body}");
            // The fast path never disagrees with the full parse when it answers.
            if let Some(t) = tail_usage(body.as_bytes()) {
                let full = serde_json::from_slice::<WithUsage>(body.as_bytes())
                    .ok()
                    .and_then(|w| w.usage);
                assert_eq!(Some(t), full, "{body}");
            }
        }
        assert!(
            tail_usage(br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#)
                .is_some()
        );
    }

    #[test]
    fn usage_of_a_json_body() {
        let body = br#"{"id":"x","choices":[{"text":"a"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
        assert_eq!(
            from_json(body),
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4
            })
        );
        let mut cap = JsonCapture::default();
        cap.push(&Bytes::from_static(&body[..10]));
        cap.push(&Bytes::from_static(&body[10..]));
        assert_eq!(cap.usage().map(|u| u.prompt_tokens), Some(3));
    }
}
