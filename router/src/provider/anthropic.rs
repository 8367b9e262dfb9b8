//! OpenAI chat <-> Anthropic Messages, for OpenAI clients routed to an Anthropic provider:
//! the request ([`chat_to_messages`]), the answer ([`message_to_chat`]), the stream
//! ([`StreamTranslator`], Anthropic events in, `chat.completion.chunk` events out, as they
//! arrive) and error bodies ([`error_to_openai`]).

use bytes::{Bytes, BytesMut};
use serde_json::{Map, Value, json};

use crate::usage::Usage;

/// `max_tokens` sent when the client gives none (Anthropic requires it).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The Anthropic Messages request for an OpenAI chat request `body`, with `model` upstream.
/// System (and developer) messages become `system`; text and image parts, tool calls and
/// tool results map to their content blocks; sampling options keep their meaning.
pub fn chat_to_messages(body: &[u8], model: &str) -> Result<Vec<u8>, String> {
    let req: Map<String, Value> =
        serde_json::from_slice(body).map_err(|e| format!("invalid chat request: {e}"))?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("a chat request needs a `messages` array")?;
    let mut system: Vec<String> = Vec::new();
    let mut out_messages: Vec<Value> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.push(text_of(content)),
            "user" | "assistant" => {
                let mut blocks = blocks_of(content)?;
                if role == "assistant" {
                    for call in m
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let f = &call["function"];
                        let input: Value = f["arguments"]
                            .as_str()
                            .and_then(|a| serde_json::from_str(a).ok())
                            .unwrap_or_else(|| json!({}));
                        blocks.push(json!({
                            "type": "tool_use",
                            "id": call["id"],
                            "name": f["name"],
                            "input": input,
                        }));
                    }
                }
                if blocks.is_empty() {
                    continue;
                }
                push_message(&mut out_messages, role, blocks);
            }
            "tool" => {
                let block = json!({
                    "type": "tool_result",
                    "tool_use_id": m.get("tool_call_id").cloned().unwrap_or(Value::Null),
                    "content": text_of(content),
                });
                push_message(&mut out_messages, "user", vec![block]);
            }
            other => return Err(format!("messages[{i}]: unsupported role {other:?}")),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(out_messages));
    let max_tokens = req
        .get("max_completion_tokens")
        .or_else(|| req.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), json!(max_tokens));
    for key in ["temperature", "top_p", "top_k", "stream"] {
        if let Some(v) = req.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    match req.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(user) = req.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(tools) = req.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                let mut t = json!({
                    "name": f["name"],
                    "input_schema": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"})),
                });
                if let Some(d) = f.get("description") {
                    t["description"] = d.clone();
                }
                t
            })
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    Ok(serde_json::to_vec(&out).expect("JSON values serialize"))
}

/// Appends `blocks` as a message of `role`, merged into the previous message of the same
/// role (Anthropic wants user and assistant turns to alternate).
fn push_message(out: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if let Some(last) = out.last_mut()
        && last["role"] == role
        && let Some(content) = last["content"].as_array_mut()
    {
        content.extend(blocks);
        return;
    }
    out.push(json!({"role": role, "content": blocks}));
}

/// The text of an OpenAI message content (a string, or the text parts joined).
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An OpenAI message content as Anthropic content blocks.
fn blocks_of(content: &Value) -> Result<Vec<Value>, String> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => Ok(json!({"type": "text", "text": p["text"]})),
                Some("image_url") => {
                    let url = p["image_url"]["url"].as_str().unwrap_or_default();
                    Ok(match data_url(url) {
                        Some((media, data)) => json!({"type": "image", "source": {
                            "type": "base64", "media_type": media, "data": data}}),
                        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
                    })
                }
                other => Err(format!("unsupported content part type {other:?}")),
            })
            .collect(),
        _ => Err("message content must be a string or an array of parts".to_owned()),
    }
}

/// `data:<media>;base64,<data>` split.
fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (media, data) = rest.split_once(";base64,")?;
    Some((media, data))
}

/// OpenAI's `finish_reason` for an Anthropic `stop_reason`.
fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The OpenAI `chat.completion` for an Anthropic message `body`, and its usage.
pub fn message_to_chat(body: &[u8]) -> Result<(Vec<u8>, Option<Usage>), String> {
    let m: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid Anthropic message: {e}"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in m["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let usage = m.get("usage").map(|u| Usage {
        prompt_tokens: u["input_tokens"].as_u64().unwrap_or(0),
        completion_tokens: u["output_tokens"].as_u64().unwrap_or(0),
    });
    let mut chat = json!({
        "id": m["id"],
        "object": "chat.completion",
        "created": now_secs(),
        "model": m["model"],
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(m["stop_reason"].as_str().unwrap_or_default()),
        }],
    });
    if let Some(u) = usage {
        chat["usage"] = usage_json(u);
    }
    Ok((
        serde_json::to_vec(&chat).expect("JSON values serialize"),
        usage,
    ))
}

fn usage_json(u: Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    })
}

/// An Anthropic error body (`{"type":"error","error":{"type","message"}}`) in OpenAI's shape,
/// keeping the provider's error type; any other body is wrapped as its message.
pub fn error_to_openai(body: &[u8], status: u16) -> Vec<u8> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let (kind, message) = match parsed.as_ref().map(|v| &v["error"]) {
        Some(e) if e.is_object() => (
            e["type"].as_str().unwrap_or("upstream_error").to_owned(),
            e["message"].as_str().unwrap_or_default().to_owned(),
        ),
        _ => (
            "upstream_error".to_owned(),
            String::from_utf8_lossy(body).into_owned(),
        ),
    };
    serde_json::to_vec(&json!({"error": {"message": message, "type": kind, "code": status}}))
        .expect("JSON values serialize")
}

/// Anthropic stream events in, OpenAI `chat.completion.chunk` events out, event by event as
/// they complete (an event split across chunks waits for its end). Ends with
/// `data: [DONE]` after `message_stop`; with `include_usage` a usage chunk comes before it.
#[derive(Debug)]
pub struct StreamTranslator {
    pending: BytesMut,
    include_usage: bool,
    id: String,
    model: String,
    created: u64,
    /// Tool-use blocks by Anthropic block index: their OpenAI tool call index.
    tools: Vec<(u64, usize)>,
    /// Usage gathered from `message_start` and `message_delta`.
    pub usage: Option<Usage>,
    /// `message_stop` was seen and `[DONE]` sent.
    pub done: bool,
}

impl StreamTranslator {
    /// A translator; `include_usage` when the client asked for the usage chunk.
    pub fn new(include_usage: bool) -> Self {
        Self {
            pending: BytesMut::new(),
            include_usage,
            id: String::new(),
            model: String::new(),
            created: now_secs(),
            tools: Vec::new(),
            usage: None,
            done: false,
        }
    }

    /// The OpenAI events for `chunk` (possibly none yet).
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        self.pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some(end) = event_end(&self.pending) {
            let event = self.pending.split_to(end);
            self.event(&event, &mut out);
        }
        out.freeze()
    }

    /// Whatever an unterminated last event makes.
    pub fn finish(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.pending);
        let mut out = BytesMut::new();
        if !rest.trim_ascii().is_empty() {
            self.event(&rest, &mut out);
        }
        out.freeze()
    }

    fn chunk(&self, out: &mut BytesMut, delta: Value, finish: Option<&str>) {
        let c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        data(out, &c);
    }

    fn event(&mut self, event: &[u8], out: &mut BytesMut) {
        let mut payload = Vec::new();
        for line in event.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(d) = line.strip_prefix(b"data:") {
                if !payload.is_empty() {
                    payload.push(b'\n');
                }
                payload.extend_from_slice(d.trim_ascii_start());
            }
        }
        let Ok(v) = serde_json::from_slice::<Value>(&payload) else {
            return;
        };
        match v["type"].as_str().unwrap_or_default() {
            "message_start" => {
                let m = &v["message"];
                self.id = m["id"].as_str().unwrap_or_default().to_owned();
                self.model = m["model"].as_str().unwrap_or_default().to_owned();
                let usage = self.usage.get_or_insert_with(Usage::default);
                usage.prompt_tokens = m["usage"]["input_tokens"].as_u64().unwrap_or(0);
                usage.completion_tokens = m["usage"]["output_tokens"].as_u64().unwrap_or(0);
                self.chunk(out, json!({"role": "assistant", "content": ""}), None);
            }
            "content_block_start" => {
                let block = &v["content_block"];
                if block["type"] == "tool_use" {
                    let index = self.tools.len();
                    self.tools.push((v["index"].as_u64().unwrap_or(0), index));
                    self.chunk(
                        out,
                        json!({"tool_calls": [{
                            "index": index,
                            "id": block["id"],
                            "type": "function",
                            "function": {"name": block["name"], "arguments": ""},
                        }]}),
                        None,
                    );
                }
            }
            "content_block_delta" => {
                let delta = &v["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        self.chunk(out, json!({"content": delta["text"]}), None);
                    }
                    Some("input_json_delta") => {
                        let block = v["index"].as_u64().unwrap_or(0);
                        let index = self
                            .tools
                            .iter()
                            .find(|(b, _)| *b == block)
                            .map_or(0, |(_, i)| *i);
                        self.chunk(
                            out,
                            json!({"tool_calls": [{
                                "index": index,
                                "function": {"arguments": delta["partial_json"]},
                            }]}),
                            None,
                        );
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(n) = v["usage"]["output_tokens"].as_u64() {
                    self.usage
                        .get_or_insert_with(Usage::default)
                        .completion_tokens = n;
                }
                if let Some(n) = v["usage"]["input_tokens"].as_u64().filter(|n| *n > 0) {
                    self.usage.get_or_insert_with(Usage::default).prompt_tokens = n;
                }
                if let Some(stop) = v["delta"]["stop_reason"].as_str() {
                    self.chunk(out, json!({}), Some(finish_reason(stop)));
                }
            }
            "message_stop" => {
                if self.include_usage {
                    let c = json!({
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": usage_json(self.usage.unwrap_or_default()),
                    });
                    data(out, &c);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.done = true;
            }
            "error" => {
                let e = &v["error"];
                data(
                    out,
                    &json!({"error": {"message": e["message"], "type": e["type"]}}),
                );
            }
            // `ping`, `content_block_stop` and unknown events carry nothing for OpenAI.
            _ => {}
        }
    }
}

fn data(out: &mut BytesMut, v: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&serde_json::to_vec(v).expect("JSON values serialize"));
    out.extend_from_slice(b"\n\n");
}

/// The length of the first complete event of `buf` (separator included).
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = memchr::memmem::find(buf, b"\n\n").map(|i| i + 2);
    let crlf = memchr::memmem::find(buf, b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_request_becomes_a_messages_request() {
        let chat = json!({
            "model": "gpt-x",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hello"},
                {"role": "assistant", "content": "hi"},
                {"role": "user", "content": [{"type": "text", "text": "and?"}]},
            ],
            "max_tokens": 32,
            "temperature": 0.5,
            "stop": "END",
            "stream": true,
        });
        let out = chat_to_messages(chat.to_string().as_bytes(), "claude-x").expect("translates");
        let v: Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(
            v,
            json!({
                "model": "claude-x",
                "system": "Be brief.",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "hello"}]},
                    {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
                    {"role": "user", "content": [{"type": "text", "text": "and?"}]},
                ],
                "max_tokens": 32,
                "temperature": 0.5,
                "stream": true,
                "stop_sequences": ["END"],
            })
        );
        let bare = chat_to_messages(
            br#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
            "c",
        )
        .expect("translates");
        let v: Value = serde_json::from_slice(&bare).expect("JSON");
        assert_eq!(v["max_tokens"], DEFAULT_MAX_TOKENS);
        assert!(chat_to_messages(br#"{"model":"m"}"#, "c").is_err());
    }

    #[test]
    fn message_becomes_a_chat_completion() {
        let msg = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
            "content":[{"type":"text","text":"Hi there"}],"stop_reason":"end_turn",
            "usage":{"input_tokens":7,"output_tokens":3}}"#;
        let (out, usage) = message_to_chat(msg).expect("translates");
        let v: Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(v["id"], "msg_1");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], "Hi there");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["total_tokens"], 10);
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 7,
                completion_tokens: 3
            })
        );
    }

    #[test]
    fn stream_events_become_chunks_as_they_complete() {
        let events = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let mut t = StreamTranslator::new(true);
        // Split mid-event: nothing of the second event comes out before its end.
        let (a, b) = events.as_bytes().split_at(200);
        let mut out = t.push(a).to_vec();
        out.extend_from_slice(&t.push(b));
        out.extend_from_slice(&t.finish());
        let text = String::from_utf8(out).expect("utf-8");
        let chunks: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).expect("chunk JSON"))
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "Hello");
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk")
        );
        assert!(
            chunks
                .iter()
                .any(|c| c["choices"][0]["finish_reason"] == "stop")
        );
        assert_eq!(
            chunks.last().expect("usage chunk")["usage"]["completion_tokens"],
            2
        );
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        assert!(t.done);
        assert_eq!(
            t.usage,
            Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 2
            })
        );
    }

    #[test]
    fn anthropic_errors_keep_their_type_in_openais_shape() {
        let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
        let v: Value = serde_json::from_slice(&error_to_openai(body, 429)).expect("JSON");
        assert_eq!(
            v,
            json!({"error": {"message": "slow down", "type": "rate_limit_error", "code": 429}})
        );
    }
}
