//! Errors answered with vLLM's OpenAI-shaped body `{"error":{"message","type","param","code"}}`.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};

use crate::{
    engine::TooLong,
    openai::{ErrorBody, ErrorInfo},
};

/// Everything the mock answers with a non-2xx status, with vLLM's messages and error types.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// The request body is not valid JSON or misses a required field (400).
    #[error("{0}")]
    BadRequest(String),
    /// The requested model is neither a served model name nor a loaded LoRA adapter (404).
    #[error("The model `{0}` does not exist.")]
    ModelNotFound(String),
    /// `load_lora_adapter` for a name that is already loaded (400).
    #[error("The lora adapter '{0}' has already been loaded.")]
    LoraAlreadyLoaded(String),
    /// `unload_lora_adapter` for a name that is not loaded (404).
    #[error("The lora adapter '{0}' cannot be found.")]
    LoraNotFound(String),
    /// Prompt plus completion exceed the whole KV cache (400), vLLM's context-length error.
    #[error(transparent)]
    TooLong(#[from] TooLong),
    /// A failure injected by `--failure-rate` (500).
    #[error("simulated failure of request #{0} (kthena-mock --failure-rate)")]
    Injected(u64),
}

impl MockError {
    /// The OpenAI error `type` vLLM uses for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) | Self::TooLong(_) => "BadRequestError",
            Self::ModelNotFound(_) | Self::LoraNotFound(_) => "NotFoundError",
            Self::LoraAlreadyLoaded(_) => "InvalidUserInput",
            Self::Injected(_) => "InternalServerError",
        }
    }
}

impl ResponseError for MockError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::TooLong(_) | Self::LoraAlreadyLoaded(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::ModelNotFound(_) | Self::LoraNotFound(_) => StatusCode::NOT_FOUND,
            Self::Injected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        HttpResponse::build(status).json(ErrorBody {
            error: ErrorInfo {
                message: self.to_string(),
                kind: self.kind(),
                param: None,
                code: status.as_u16(),
            },
        })
    }
}
