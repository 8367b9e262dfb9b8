//! The OpenAI request body as the router needs it: `model`, `stream` and `stream_options`,
//! found in one validating pass without building a JSON tree, and edited by splicing bytes.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::RouterError;

/// What the router read from a request body, with byte ranges to edit it in place.
#[derive(Debug)]
pub struct BodyView {
    /// The `model`.
    pub model: String,
    model_span: Range<usize>,
    /// `"stream": true`.
    pub stream: bool,
    /// `stream_options.include_usage` is true.
    pub include_usage: bool,
    stream_options_span: Option<Range<usize>>,
    /// Where the prompt is: the raw JSON of `prompt`, else `messages`, else `input`.
    prompt_span: Option<Range<usize>>,
    /// Offset just after the opening `{`.
    object_start: usize,
}

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stream: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stream_options: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

impl BodyView {
    /// Reads `body`. Invalid JSON or a non-object is `InvalidJson` (400); a missing, empty or
    /// non-string `model` is `ModelNotFound` (404), as in Kthena.
    pub fn parse(body: &[u8]) -> Result<Self, RouterError> {
        // serde would read a JSON array into the struct by position; only objects are requests.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(RouterError::InvalidJson(
                "the request body must be a JSON object".into(),
            ));
        }
        let peek: Peek<'_> =
            serde_json::from_slice(body).map_err(|e| RouterError::InvalidJson(e.to_string()))?;
        let raw_model = peek.model.ok_or(RouterError::ModelNotFound)?;
        let model: String = match serde_json::from_str::<Option<String>>(raw_model.get()) {
            Ok(Some(m)) if !m.is_empty() => m,
            _ => return Err(RouterError::ModelNotFound),
        };
        let stream = peek.stream.is_some_and(|s| s.get() == "true");
        let include_usage = peek
            .stream_options
            .and_then(|o| serde_json::from_str::<StreamOptions>(o.get()).ok())
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let object_start = body
            .iter()
            .position(|b| *b == b'{')
            .map(|p| p + 1)
            .expect("a JSON object body starts with '{'");
        Ok(Self {
            model,
            model_span: span(body, raw_model),
            stream,
            include_usage,
            stream_options_span: peek.stream_options.map(|o| span(body, o)),
            prompt_span: peek
                .prompt
                .or(peek.messages)
                .or(peek.input)
                .map(|p| span(body, p)),
            object_start,
        })
    }

    /// The prompt's bytes in `body` (the body this view was parsed from): the raw JSON of
    /// `prompt`, `messages` or `input`, for the scheduler's prefix matching. Empty when the
    /// body has none.
    pub fn prompt<'b>(&self, body: &'b [u8]) -> &'b [u8] {
        self.prompt_span
            .clone()
            .and_then(|r| body.get(r))
            .unwrap_or_default()
    }

    /// True when the router must ask the engine for a usage chunk the client did not ask for.
    pub fn needs_usage_injection(&self) -> bool {
        self.stream && !self.include_usage
    }

    /// The body to send upstream: `model` replaced when `model` is `Some`, and
    /// `stream_options.include_usage` set when `inject_usage`. Returns `body` itself (no
    /// copy) when nothing changes.
    pub fn rewrite(&self, body: &Bytes, model: Option<&str>, inject_usage: bool) -> Bytes {
        let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::with_capacity(2);
        if let Some(m) = model.filter(|m| *m != self.model) {
            let quoted = serde_json::to_vec(m).expect("a string serializes");
            edits.push((self.model_span.clone(), quoted));
        }
        if inject_usage {
            match &self.stream_options_span {
                Some(span) => {
                    let mut opts: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_slice(&body[span.clone()]).unwrap_or_default();
                    opts.insert("include_usage".into(), serde_json::Value::Bool(true));
                    let text = serde_json::to_vec(&opts).expect("a map serializes");
                    edits.push((span.clone(), text));
                }
                None => edits.push((
                    self.object_start..self.object_start,
                    br#""stream_options":{"include_usage":true},"#.to_vec(),
                )),
            }
        }
        if edits.is_empty() {
            return body.clone();
        }
        edits.sort_by_key(|(r, _)| r.start);
        let extra: usize = edits.iter().map(|(_, t)| t.len()).sum();
        let mut out = BytesMut::with_capacity(body.len() + extra);
        let mut at = 0;
        for (range, text) in edits {
            out.extend_from_slice(&body[at..range.start]);
            out.extend_from_slice(&text);
            at = range.end;
        }
        out.extend_from_slice(&body[at..]);
        out.freeze()
    }
}

/// The byte range of `raw` inside `body` (serde_json borrows raw values from the input).
fn span(body: &[u8], raw: &RawValue) -> Range<usize> {
    let start = raw.get().as_ptr() as usize - body.as_ptr() as usize;
    start..start + raw.get().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(s: &str) -> Result<BodyView, RouterError> {
        BodyView::parse(s.as_bytes())
    }

    #[test]
    fn reads_model_and_stream_flags() {
        let v = view(r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}"#)
            .unwrap();
        assert_eq!(
            (v.model.as_str(), v.stream, v.include_usage),
            ("m", true, false)
        );
        assert!(v.needs_usage_injection());
        let v = view(r#"{"stream_options":{"include_usage":true},"stream":true,"model":"a\"b"}"#)
            .unwrap();
        assert_eq!((v.model.as_str(), v.include_usage), ("a\"b", true));
        assert!(!v.needs_usage_injection());
    }

    #[test]
    fn the_prompt_is_prompt_else_messages_else_input() {
        let cases = [
            (r#"{"model":"m","prompt":"once upon"}"#, r#""once upon""#),
            (
                r#"{"messages":[{"role":"user","content":"hi"}],"model":"m"}"#,
                r#"[{"role":"user","content":"hi"}]"#,
            ),
            (r#"{"model":"m","input":"x","messages":[]}"#, "[]"),
            (r#"{"model":"m","input":"x"}"#, r#""x""#),
            (r#"{"model":"m"}"#, ""),
        ];
        for (body, want) in cases {
            let v = view(body).unwrap();
            assert_eq!(
                std::str::from_utf8(v.prompt(body.as_bytes())).unwrap(),
                want
            );
        }
    }

    #[test]
    fn errors_as_kthena() {
        let cases = [
            ("{not json", "invalid"),
            ("[1,2]", "invalid"),
            (r#"{"model":"m"} trailing"#, "invalid"),
            (r#"{"prompt":"x"}"#, "model"),
            (r#"{"model":""}"#, "model"),
            (r#"{"model":42}"#, "model"),
            (r#"{"model":null}"#, "model"),
        ];
        for (body, want) in cases {
            let got = match view(body) {
                Err(RouterError::InvalidJson(_)) => "invalid",
                Err(RouterError::ModelNotFound) => "model",
                other => panic!("{body}: {other:?}"),
            };
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn rewrites_model_and_injects_usage_by_splicing() {
        let cases = [
            (
                r#"{"model":"m","prompt":"p"}"#,
                Some("org/real"),
                false,
                r#"{"model":"org/real","prompt":"p"}"#,
            ),
            (
                r#"{"model":"m","prompt":"p"}"#,
                Some("m"),
                false,
                r#"{"model":"m","prompt":"p"}"#,
            ),
            (
                r#" {"model":"m","stream":true}"#,
                None,
                true,
                r#" {"stream_options":{"include_usage":true},"model":"m","stream":true}"#,
            ),
            (
                r#"{"stream":true,"stream_options":{"continuous_usage_stats":false},"model":"m"}"#,
                Some("x"),
                true,
                r#"{"stream":true,"stream_options":{"continuous_usage_stats":false,"include_usage":true},"model":"x"}"#,
            ),
        ];
        for (body, model, inject, want) in cases {
            let bytes = Bytes::from(body);
            let got = view(body).unwrap().rewrite(&bytes, model, inject);
            assert_eq!(std::str::from_utf8(&got).unwrap(), want);
            serde_json::from_slice::<serde_json::Value>(&got).expect("still valid JSON");
        }
    }

    #[test]
    fn unchanged_body_is_not_copied() {
        let bytes = Bytes::from_static(br#"{"model":"m"}"#);
        let out = view(r#"{"model":"m"}"#)
            .unwrap()
            .rewrite(&bytes, None, false);
        assert_eq!(out.as_ptr(), bytes.as_ptr());
    }
}
