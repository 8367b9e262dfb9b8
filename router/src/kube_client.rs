//! The API server client: kube's default stack, from the in-cluster service account or
//! `$KUBECONFIG`, behind a client-side token bucket when `--kube-api-qps` is set (like
//! client-go's QPS and burst). Every watcher, the status writer and the controllers share
//! this one client, so the limit covers the whole process.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// `--kube-api-qps` and `--kube-api-burst`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ApiLimit {
    /// Requests per second on average; 0: no client-side limit.
    pub qps: f32,
    /// Requests that may go at once after a quiet time; 0: `max(1, ceil(qps))`.
    pub burst: u32,
}

impl ApiLimit {
    /// The bucket size: `burst`, or `max(1, ceil(qps))` when 0.
    pub fn burst(self) -> u32 {
        match self.burst {
            0 => {
                // `as` saturates: a qps above u32::MAX (already rejected by the flags) stays finite.
                let ceil = f64::from(self.qps).ceil() as u32;
                ceil.max(1)
            }
            n => n,
        }
    }

    /// The token bucket in front of the client; None when `qps` is 0 (or not a positive
    /// finite number), which leaves requests unlimited.
    pub fn layer(self) -> Option<TokenBucketLayer> {
        (self.qps.is_finite() && self.qps > 0.0)
            .then(|| TokenBucketLayer::new(f64::from(self.qps), self.burst()))
    }
}

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Neither an in-cluster service account nor a kubeconfig.
    #[error(transparent)]
    Config(#[from] kube::config::InferConfigError),
    /// The configuration is unusable (TLS, proxy, credentials).
    #[error(transparent)]
    Client(#[from] kube::Error),
}

/// A client from the inferred configuration (`kube::Client::try_default`'s), limited by
/// `limit`. It is built on the control runtime ([`crate::control`]), so its connections are
/// driven there whoever sends the requests.
pub async fn client(limit: ApiLimit) -> Result<kube::Client, ClientError> {
    match crate::control::runtime().spawn(build(limit)).await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn build(limit: ApiLimit) -> Result<kube::Client, ClientError> {
    let config = kube::Config::infer().await?;
    let builder = kube::client::ClientBuilder::try_from(config)?;
    Ok(match limit.layer() {
        Some(layer) => {
            tracing::info!(
                qps = limit.qps,
                burst = limit.burst(),
                "API server requests limited"
            );
            builder.with_layer(&layer).build()
        }
        None => builder.build(),
    })
}

/// A token bucket of `burst` tokens refilled at `rate` per second; one request takes one.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

/// Float error of a refill must not cost a request another timer tick.
const EPSILON: f64 = 1e-9;

impl Bucket {
    /// Takes a token (None), or says when the next one will be there.
    fn take(&mut self, now: Instant) -> Option<Instant> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 - EPSILON {
            self.tokens = (self.tokens - 1.0).max(0.0);
            None
        } else {
            Some(now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// Layer of [`TokenBucket`]: every service it makes draws on the same bucket.
#[derive(Debug, Clone)]
pub struct TokenBucketLayer {
    bucket: Arc<Mutex<Bucket>>,
}

impl TokenBucketLayer {
    /// A full bucket of `burst` tokens refilled at `rate` per second (`rate` > 0).
    pub fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            bucket: Arc::new(Mutex::new(Bucket {
                rate,
                burst,
                tokens: burst,
                last: Instant::now(),
            })),
        }
    }
}

impl<S> tower::Layer<S> for TokenBucketLayer {
    type Service = TokenBucket<S>;

    fn layer(&self, inner: S) -> TokenBucket<S> {
        TokenBucket {
            inner,
            bucket: self.bucket.clone(),
            wait: None,
            holding: false,
        }
    }
}

/// A service that is ready only when it holds a token: a request past the burst waits (in
/// `poll_ready`, so callers queue in kube's buffer) until the bucket refills.
#[derive(Debug)]
pub struct TokenBucket<S> {
    inner: S,
    bucket: Arc<Mutex<Bucket>>,
    wait: Option<Pin<Box<Sleep>>>,
    holding: bool,
}

impl<S: Clone> Clone for TokenBucket<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            bucket: self.bucket.clone(),
            wait: None,
            holding: false,
        }
    }
}

impl<S, R> tower::Service<R> for TokenBucket<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        while !self.holding {
            if let Some(wait) = self.wait.as_mut() {
                ready!(wait.as_mut().poll(cx));
                self.wait = None;
            }
            let next = self
                .bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(Instant::now());
            match next {
                None => self.holding = true,
                Some(at) => self.wait = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.holding = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::task::Poll;
    use std::time::Duration;

    use super::ApiLimit;

    #[test]
    fn burst_defaults_to_the_rounded_up_qps_and_zero_qps_is_unlimited() {
        for (qps, burst, want) in [(2.5, 0, 3), (0.2, 0, 1), (5.0, 0, 5), (5.0, 7, 7)] {
            assert_eq!(
                ApiLimit { qps, burst }.burst(),
                want,
                "qps {qps} burst {burst}"
            );
        }
        assert!(ApiLimit::default().layer().is_none());
        assert!(ApiLimit { qps: 0.0, burst: 9 }.layer().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn burst_requests_pass_at_once_and_the_next_waits_one_over_qps() {
        let layer = ApiLimit { qps: 2.0, burst: 3 }.layer().expect("limited");
        let (mut svc, mut handle) = tower_test::mock::spawn_layer::<&str, &str, _>(layer);
        for n in 0..3 {
            assert!(svc.poll_ready().is_ready(), "burst request {n}");
            drop(svc.call("get"));
        }
        assert!(svc.poll_ready().is_pending(), "past the burst");
        tokio::time::advance(Duration::from_millis(499)).await;
        assert!(svc.poll_ready().is_pending(), "before 1/qps");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(svc.is_woken(), "the refill wakes the waiting caller");
        assert!(matches!(svc.poll_ready(), Poll::Ready(Ok(()))));
        drop(svc.call("get"));
        // One token per 1/qps from now on, never a second burst while busy.
        assert!(svc.poll_ready().is_pending());
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(svc.poll_ready().is_ready());
        // Every call reached the inner service.
        for _ in 0..4 {
            assert!(handle.next_request().await.is_some());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_time_refills_the_burst_and_no_more() {
        let layer = ApiLimit { qps: 1.0, burst: 2 }.layer().expect("limited");
        let (mut svc, _handle) = tower_test::mock::spawn_layer::<&str, &str, _>(layer);
        for _ in 0..2 {
            assert!(svc.poll_ready().is_ready());
            drop(svc.call("get"));
        }
        assert!(svc.poll_ready().is_pending());
        tokio::time::advance(Duration::from_secs(60)).await;
        for n in 0..2 {
            assert!(svc.poll_ready().is_ready(), "refilled request {n}");
            drop(svc.call("get"));
        }
        assert!(
            svc.poll_ready().is_pending(),
            "the bucket holds burst tokens at most"
        );
    }
}
