//! A scripted fake API server: a kube `Client` over `tower_test::mock`; the test takes each
//! request in turn, checks it and answers it. Every wait is bounded so that a missing request
//! fails the test instead of hanging it.

#![allow(dead_code)] // each test crate uses a different subset

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::time::Duration;
use tower_test::mock::{Handle, SendResponse};

/// Longest wait for a request. Under a paused clock it only elapses once every task is idle.
const WAIT: Duration = Duration::from_secs(30);

/// The API server side of a mocked client.
pub struct FakeApi {
    handle: Handle<Request<Body>, Response<Body>>,
}

/// One request received, to be answered with [`Call::respond`].
pub struct Call {
    pub method: Method,
    pub path: String,
    pub content_type: Option<String>,
    /// The JSON body (`Null` when empty).
    pub body: Value,
    reply: SendResponse<Response<Body>>,
}

/// A client (default namespace `default`) and the fake server behind it.
pub fn pair() -> (kube::Client, FakeApi) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(svc, "default"), FakeApi { handle })
}

impl FakeApi {
    /// The next request, or `None` once the client is gone.
    async fn next_or_end(&mut self, wait: Duration) -> Option<Call> {
        let (request, reply) = tokio::time::timeout(wait, self.handle.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request within {wait:?}"))?;
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON request body")
        };
        Some(Call {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().expect("ascii header").to_owned()),
            body,
            reply,
        })
    }

    /// The next request, which must be `method path`, within `wait`.
    pub async fn expect_within(&mut self, wait: Duration, method: Method, path: &str) -> Call {
        let call = self
            .next_or_end(wait)
            .await
            .unwrap_or_else(|| panic!("client gone while expecting {method} {path}"));
        assert_eq!(
            (&call.method, call.path.as_str()),
            (&method, path),
            "unexpected request"
        );
        call
    }

    /// The next request, which must be `method path`.
    pub async fn expect(&mut self, method: Method, path: &str) -> Call {
        self.expect_within(WAIT, method, path).await
    }

    /// No further request: waits until the client is dropped (its owner finished); a request
    /// arriving instead fails the test.
    pub async fn expect_end(&mut self) {
        if let Some(call) = self.next_or_end(WAIT).await {
            panic!("unexpected request {} {}", call.method, call.path);
        }
    }

    /// No request may come for `quiet` (use under a paused clock, where this costs no time).
    pub async fn expect_quiet(&mut self, quiet: Duration) {
        if let Ok(Some((request, _))) =
            tokio::time::timeout(quiet, self.handle.next_request()).await
        {
            panic!(
                "unexpected request {} {}",
                request.method(),
                request.uri().path()
            );
        }
    }
}

impl Call {
    /// Answers with `code` and the JSON `body`.
    pub fn respond(self, code: u16, body: &Value) {
        let response = Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(body).expect("JSON")))
            .expect("valid response");
        self.reply.send_response(response);
    }

    /// Answers with a failure `Status` (`reason` like `NotFound`, `Conflict`).
    pub fn fail(self, code: u16, reason: &str) {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "message": format!("fake {reason}"), "reason": reason, "code": code});
        self.respond(code, &status);
    }
}

/// Bounds a future the test awaits (a spawned task, a watch change).
pub async fn bounded<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {WAIT:?}"))
}
