//! Token usage read from engine responses, and the SSE filter that hides the usage chunk the
//! router asked for when the client did not.

use bytes::{Buf, Bytes, BytesMut};
use serde::Deserialize;

/// Most bytes of a non-streamed response kept to read its `usage`.
pub const MAX_USAGE_SCAN_BYTES: usize = 1 << 20;

/// `usage` of an OpenAI response or stream chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens.
    #[serde(default)]
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
pub fn from_json(body: &[u8]) -> Option<Usage> {
    serde_json::from_slice::<WithUsage>(body).ok()?.usage
}

/// Reads an SSE stream chunk by chunk: records the last `usage` seen and, when `hide_usage`,
/// drops the usage-only chunk (`"choices": []`) that the router injected.
///
/// Complete events are passed on at once; only an event split across chunks is held until its
/// end arrives. Chunks without `"usage"` are not parsed at all.
#[derive(Debug)]
pub struct SseFilter {
    hide_usage: bool,
    pending: BytesMut,
    /// The last usage seen.
    pub usage: Option<Usage>,
}

impl SseFilter {
    /// A filter; `hide_usage` drops usage-only chunks.
    pub fn new(hide_usage: bool) -> Self {
        Self {
            hide_usage,
            pending: BytesMut::new(),
            usage: None,
        }
    }

    /// What to send to the client for `chunk` (possibly empty).
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        let fast = self.pending.is_empty()
            && (chunk.ends_with(b"\n\n") || chunk.ends_with(b"\r\n\r\n"))
            && !contains(&chunk, b"\"usage\"");
        if fast {
            return chunk;
        }
        self.pending.extend_from_slice(&chunk);
        let mut out = BytesMut::new();
        while let Some(end) = event_end(&self.pending) {
            let event = self.pending.split_to(end).freeze();
            if self.inspect(&event) {
                out.extend_from_slice(&event);
            }
        }
        out.freeze()
    }

    /// Whatever is left when the stream ends (an unterminated last event).
    pub fn finish(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.pending).freeze();
        if !rest.is_empty() && self.inspect(&rest) {
            rest
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
    haystack.windows(needle.len()).position(|w| w == needle)
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
