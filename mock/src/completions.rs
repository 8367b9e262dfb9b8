//! `POST /v1/chat/completions` and `POST /v1/completions`, whole or streamed.
//!
//! Order of checks, as in vLLM: body (400), model (404), context length (400: prompt plus
//! `max_tokens` longer than the whole KV cache), then `--failure-rate` (500). The request then
//! enters the simulated engine ([`crate::sim`]): it may wait for a place in the running set,
//! its first token comes `--time-to-first-token` plus `--prefill-time-per-token` per uncached
//! prompt token after admission, then one token per `--inter-token-latency`. A stream's
//! headers are sent at once, even while the request waits. A stream
//! is: for chat, a role chunk (`delta: {"role":"assistant","content":""}`) sent together with
//! the first token; one chunk per token; a final chunk with an empty delta (or empty text) and
//! `finish_reason`; a usage-only chunk (`choices: []`) only when
//! `stream_options.include_usage` is true; then `data: [DONE]`.

use std::{convert::Infallible, time::Instant};

use actix_rt::time::sleep;
use actix_web::{HttpResponse, web};
use futures_util::Stream;
use serde::Serialize;

use crate::{
    MockError, State,
    engine::{Sequence, prefill_delay},
    generate::answer_tokens,
    openai::{
        ChatChoice, ChatChunkChoice, ChatMessage, CompletionRequest, Delta, Envelope, TextChoice,
        Usage,
    },
    server,
    sim::Ticket,
    tokens::{block_hashes, chat_prompt, completion_prompt},
};

/// Which OpenAI endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completion,
}

/// `POST /v1/chat/completions`.
pub async fn chat(state: web::Data<State>, body: web::Bytes) -> Result<HttpResponse, MockError> {
    handle(state, &body, Endpoint::Chat).await
}

/// `POST /v1/completions`.
pub async fn completion(
    state: web::Data<State>,
    body: web::Bytes,
) -> Result<HttpResponse, MockError> {
    handle(state, &body, Endpoint::Completion).await
}

/// Everything one answer needs, owned so a stream can carry it.
#[derive(Debug)]
struct Answer {
    endpoint: Endpoint,
    id: String,
    created: u64,
    model: String,
    tokens: Vec<String>,
    finish_reason: &'static str,
    usage: Usage,
    include_usage: bool,
}

async fn handle(
    state: web::Data<State>,
    body: &[u8],
    endpoint: Endpoint,
) -> Result<HttpResponse, MockError> {
    let arrived = Instant::now();
    let request: CompletionRequest = serde_json::from_slice(body)
        .map_err(|e| MockError::BadRequest(format!("invalid JSON body: {e}")))?;
    let (model, seed) = state.resolve(request.model.as_deref())?;
    let prompt =
        match endpoint {
            Endpoint::Chat => {
                chat_prompt(request.messages.as_deref().ok_or_else(|| {
                    MockError::BadRequest("field `messages` is required".to_owned())
                })?)
            }
            Endpoint::Completion => {
                completion_prompt(request.prompt.as_ref().ok_or_else(|| {
                    MockError::BadRequest("field `prompt` is required".to_owned())
                })?)
            }
        };
    let configured = state.config().tokens;
    let limit = request
        .token_limit()
        .map_or(configured, |l| usize::try_from(l).unwrap_or(usize::MAX));
    let count = configured.min(limit);
    state.sim().check_fits(prompt.len(), limit)?;
    state.check_failure()?;

    let seq = Sequence {
        prompt_tokens: prompt.len(),
        block_hashes: block_hashes(seed, &prompt, state.sim().block_size()),
        new_tokens: count,
    };
    let ticket = state.sim().submit(seq)?;
    let tokens = answer_tokens(&model, count);
    let usage = Usage::new(prompt.len() as u64, tokens.len() as u64);
    let answer = Answer {
        endpoint,
        id: match endpoint {
            Endpoint::Chat => format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            Endpoint::Completion => format!("cmpl-{}", uuid::Uuid::new_v4().simple()),
        },
        created: server::now(),
        model,
        tokens,
        finish_reason: if limit < configured { "length" } else { "stop" },
        usage,
        include_usage: request.include_usage(),
    };
    tracing::debug!(
        model = %answer.model,
        stream = request.is_stream(),
        prompt_tokens = prompt.len(),
        completion_tokens = count,
        "completion request"
    );

    let cut = state.config().cut_body_after;
    if request.is_stream() {
        let stream = stream(state, answer, arrived, ticket);
        let mut response = HttpResponse::Ok();
        response
            .content_type("text/event-stream")
            .insert_header(("cache-control", "no-cache"));
        return Ok(match cut {
            Some(n) => response.streaming(cut_after(stream, n)),
            None => response.streaming(stream),
        });
    }
    let mut pacer = Pacer::start(&state, ticket, arrived).await;
    for _ in &answer.tokens {
        pacer.next_token(&state).await;
    }
    pacer.finish(&state);
    let body = whole(&answer);
    let mut response = HttpResponse::Ok();
    response.content_type("application/json");
    Ok(match cut {
        // The whole length is announced, then the connection closes short of it.
        Some(n) => response
            .no_chunking(body.len() as u64)
            .streaming(cut_after(futures_util::stream::iter([Ok(body.into())]), n)),
        None => response.body(body),
    })
}

/// `stream` cut after `n` bytes: what was sent so far, then an error, which makes the server
/// close the connection without ending the body (an engine dying mid-answer).
fn cut_after(
    stream: impl Stream<Item = Result<web::Bytes, Infallible>>,
    n: usize,
) -> impl Stream<Item = Result<web::Bytes, std::io::Error>> {
    async_stream::stream! {
        let mut left = n;
        let mut stream = std::pin::pin!(stream);
        while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut stream).await {
            if chunk.len() > left {
                yield Ok(chunk.slice(..left));
                // Let the server write what was sent before it sees the failure (it drops an
                // unwritten buffer with the connection).
                actix_rt::task::yield_now().await;
                yield Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "cut by --cut-body-after",
                ));
                break;
            }
            left -= chunk.len();
            yield Ok(chunk);
        }
    }
}

/// A running request: waits for admission, paces tokens by the configured latencies and
/// records what actually elapsed since the request arrived (queueing included). Dropping it
/// ends the request in the engine.
#[derive(Debug)]
struct Pacer {
    ticket: Ticket,
    arrived: Instant,
    last: Option<Instant>,
    first_delay: std::time::Duration,
}

impl Pacer {
    /// Waits until the engine runs the request.
    async fn start(state: &State, mut ticket: Ticket, arrived: Instant) -> Self {
        let admission = ticket.admitted().await;
        tracing::debug!(
            queued_ms = arrived.elapsed().as_millis() as u64,
            prompt_tokens = admission.prompt_tokens,
            cached_tokens = admission.cached_tokens,
            "admitted"
        );
        let config = state.config();
        let first_delay = prefill_delay(
            config.time_to_first_token,
            config.prefill_time_per_token,
            admission.uncached_tokens(),
        );
        Self {
            ticket,
            arrived,
            last: None,
            first_delay,
        }
    }

    async fn next_token(&mut self, state: &State) {
        let delay = match self.last {
            None => self.first_delay,
            Some(_) => state.config().inter_token_latency,
        };
        if !delay.is_zero() {
            sleep(delay).await;
        }
        let now = Instant::now();
        let since = self.last.unwrap_or(self.arrived);
        state.metrics().token(self.last.is_none(), now - since);
        self.last = Some(now);
    }

    /// Records the request's end-to-end latency and ends it in the engine.
    fn finish(self, state: &State) {
        state.metrics().finished(self.arrived.elapsed());
        drop(self.ticket);
    }
}

fn whole(answer: &Answer) -> Vec<u8> {
    let text = answer.tokens.concat();
    match answer.endpoint {
        Endpoint::Chat => json(&Envelope {
            id: &answer.id,
            object: "chat.completion",
            created: answer.created,
            model: &answer.model,
            choices: vec![ChatChoice {
                index: 0,
                message: ChatMessage {
                    role: "assistant",
                    content: &text,
                },
                logprobs: None,
                finish_reason: answer.finish_reason,
            }],
            usage: Some(answer.usage),
        }),
        Endpoint::Completion => json(&Envelope {
            id: &answer.id,
            object: "text_completion",
            created: answer.created,
            model: &answer.model,
            choices: vec![TextChoice {
                index: 0,
                text: &text,
                logprobs: None,
                finish_reason: Some(answer.finish_reason),
            }],
            usage: Some(answer.usage),
        }),
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("response structs of strings and numbers always serialize")
}

fn stream(
    state: web::Data<State>,
    answer: Answer,
    arrived: Instant,
    ticket: Ticket,
) -> impl Stream<Item = Result<web::Bytes, Infallible>> {
    async_stream::stream! {
        let mut pacer = Pacer::start(&state, ticket, arrived).await;
        let mut role_sent = false;
        for token in &answer.tokens {
            pacer.next_token(&state).await;
            if !role_sent {
                role_sent = true;
                if let Some(role) = role_chunk(&answer) {
                    yield Ok(role);
                }
            }
            yield Ok(chunk(&answer, Some(token), None));
        }
        if !role_sent && let Some(role) = role_chunk(&answer) {
            yield Ok(role);
        }
        yield Ok(chunk(&answer, None, Some(answer.finish_reason)));
        pacer.finish(&state);
        if answer.include_usage {
            yield Ok(usage_chunk(&answer));
        }
        yield Ok(web::Bytes::from_static(b"data: [DONE]\n\n"));
    }
}

/// The chat stream's first chunk: role and empty content, as vLLM sends it.
fn role_chunk(answer: &Answer) -> Option<web::Bytes> {
    (answer.endpoint == Endpoint::Chat).then(|| {
        sse(&Envelope {
            id: &answer.id,
            object: "chat.completion.chunk",
            created: answer.created,
            model: &answer.model,
            choices: vec![ChatChunkChoice {
                index: 0,
                delta: Delta {
                    role: Some("assistant"),
                    content: Some(""),
                },
                logprobs: None,
                finish_reason: None,
            }],
            usage: None,
        })
    })
}

/// A token chunk (`token` set) or the final chunk (`finish_reason` set).
fn chunk(answer: &Answer, token: Option<&str>, finish_reason: Option<&'static str>) -> web::Bytes {
    match answer.endpoint {
        Endpoint::Chat => sse(&Envelope {
            id: &answer.id,
            object: "chat.completion.chunk",
            created: answer.created,
            model: &answer.model,
            choices: vec![ChatChunkChoice {
                index: 0,
                delta: Delta {
                    role: None,
                    content: token,
                },
                logprobs: None,
                finish_reason,
            }],
            usage: None,
        }),
        Endpoint::Completion => sse(&Envelope {
            id: &answer.id,
            object: "text_completion",
            created: answer.created,
            model: &answer.model,
            choices: vec![TextChoice {
                index: 0,
                text: token.unwrap_or(""),
                logprobs: None,
                finish_reason,
            }],
            usage: None,
        }),
    }
}

fn usage_chunk(answer: &Answer) -> web::Bytes {
    let object = match answer.endpoint {
        Endpoint::Chat => "chat.completion.chunk",
        Endpoint::Completion => "text_completion",
    };
    sse(&Envelope::<()> {
        id: &answer.id,
        object,
        created: answer.created,
        model: &answer.model,
        choices: Vec::new(),
        usage: Some(answer.usage),
    })
}

fn sse<T: Serialize>(value: &T) -> web::Bytes {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut buf, value)
        .expect("chunk structs of strings and numbers always serialize");
    buf.extend_from_slice(b"\n\n");
    web::Bytes::from(buf)
}
