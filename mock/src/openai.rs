//! OpenAI / vLLM wire types: the request fields the mock reads and the objects it writes.
//!
//! Response types borrow their strings so a streamed chunk costs one serialisation and no
//! copies. `logprobs` is always `null`; fields vLLM omits (such as `usage` on ordinary stream
//! chunks) are skipped rather than written as `null`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The fields of a `/v1/chat/completions` or `/v1/completions` body the mock looks at;
/// everything else is accepted and ignored, as vLLM ignores unknown sampling fields.
#[derive(Debug, Default, Deserialize)]
pub struct CompletionRequest {
    /// Served model name or LoRA adapter name; vLLM uses its first served name when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// `true` answers with an SSE stream.
    #[serde(default)]
    pub stream: Option<bool>,
    /// `stream_options.include_usage` adds the usage-only chunk before `[DONE]`.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Upper bound on generated tokens (both endpoints).
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Upper bound on generated tokens (chat; wins over `max_tokens` when both are set).
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// Chat messages (`/v1/chat/completions`).
    #[serde(default)]
    pub messages: Option<Vec<Value>>,
    /// Prompt (`/v1/completions`): a string, strings, token ids or lists of token ids.
    #[serde(default)]
    pub prompt: Option<Value>,
}

impl CompletionRequest {
    /// Whether the answer is an SSE stream.
    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }

    /// Whether the stream ends with a usage-only chunk.
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// The client's limit on generated tokens, if any.
    pub fn token_limit(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }
}

/// `stream_options` of a streaming request.
#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with `choices: []` and `usage`.
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// Body of `POST /v1/load_lora_adapter` and `POST /v1/unload_lora_adapter`.
#[derive(Debug, Default, Deserialize)]
pub struct LoraRequest {
    /// Adapter name, later used as a request `model`.
    #[serde(default)]
    pub lora_name: Option<String>,
    /// Adapter location (only echoed as `root` in `/v1/models`).
    #[serde(default)]
    pub lora_path: Option<String>,
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Estimated prompt tokens.
    pub prompt_tokens: u64,
    /// Generated tokens (equals the number of content chunks streamed).
    pub completion_tokens: u64,
    /// Sum of both.
    pub total_tokens: u64,
}

impl Usage {
    /// Usage with `total_tokens` filled in.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// A whole response or one stream chunk: `id`, `object`, `created`, `model`, `choices` and,
/// where present, `usage`. `C` is the choice type of the endpoint and mode.
#[derive(Debug, Serialize)]
pub struct Envelope<'a, C> {
    /// `chatcmpl-…` or `cmpl-…`, the same for every chunk of a stream.
    pub id: &'a str,
    /// `chat.completion`, `chat.completion.chunk` or `text_completion`.
    pub object: &'static str,
    /// Unix seconds when the request arrived.
    pub created: u64,
    /// The requested model (served name or LoRA adapter).
    pub model: &'a str,
    /// One choice, or none in the usage-only chunk.
    pub choices: Vec<C>,
    /// Always on whole responses; on streams only in the usage-only chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// `choices[i]` of a non-streamed `chat.completion`.
#[derive(Debug, Serialize)]
pub struct ChatChoice<'a> {
    /// Always 0 (the mock answers `n = 1`).
    pub index: u32,
    /// The assistant message.
    pub message: ChatMessage<'a>,
    /// Always `null`.
    pub logprobs: Option<()>,
    /// `stop`, or `length` when the client's token limit cut the answer.
    pub finish_reason: &'static str,
}

/// The assistant message of a non-streamed chat answer.
#[derive(Debug, Serialize)]
pub struct ChatMessage<'a> {
    /// Always `assistant`.
    pub role: &'static str,
    /// The generated text.
    pub content: &'a str,
}

/// `choices[i]` of a `chat.completion.chunk`.
#[derive(Debug, Serialize)]
pub struct ChatChunkChoice<'a> {
    /// Always 0.
    pub index: u32,
    /// The increment: role on the first chunk, one token per content chunk, empty at the end.
    pub delta: Delta<'a>,
    /// Always `null`.
    pub logprobs: Option<()>,
    /// `null` until the final chunk.
    pub finish_reason: Option<&'static str>,
}

/// `delta` of a chat stream chunk.
#[derive(Debug, Default, Serialize)]
pub struct Delta<'a> {
    /// `assistant` on the first chunk only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    /// The token text (empty string on the role chunk, absent on the final chunk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
}

/// `choices[i]` of a `text_completion`, whole or streamed.
#[derive(Debug, Serialize)]
pub struct TextChoice<'a> {
    /// Always 0.
    pub index: u32,
    /// The whole text, or one token per stream chunk (empty on the final chunk).
    pub text: &'a str,
    /// Always `null`.
    pub logprobs: Option<()>,
    /// Set on the whole response and on the final stream chunk, `null` otherwise.
    pub finish_reason: Option<&'static str>,
}

/// `GET /v1/models` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// Served model names first, then loaded LoRA adapters in load order.
    pub data: Vec<ModelCard>,
}

/// One entry of `/v1/models`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelCard {
    /// The name a request uses as `model`.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Unix seconds when the mock started.
    pub created: u64,
    /// `vllm`, or `sglang` with `--engine sglang`.
    pub owned_by: String,
    /// The served name itself for base models; the adapter path for LoRA adapters.
    pub root: String,
    /// `null` for base models; the first served model name for LoRA adapters.
    pub parent: Option<String>,
}

/// The nested OpenAI error body vLLM sends.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorInfo,
}

/// `error` of an [`ErrorBody`].
#[derive(Debug, Serialize)]
pub struct ErrorInfo {
    /// Human-readable message, vLLM's wording.
    pub message: String,
    /// `BadRequestError`, `NotFoundError`, `InvalidUserInput` or `InternalServerError`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `null`.
    pub param: Option<String>,
    /// The HTTP status code.
    pub code: u16,
}
