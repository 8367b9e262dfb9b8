//! The priority and fairness queue in front of the scheduler (`--enable-fairness-scheduling`,
//! Kthena's `ENABLE_FAIRNESS_SCHEDULING`): one bounded queue per pool (ModelServer or
//! InferencePool), shared by every worker.
//!
//! In: a request about to be scheduled on a pool, with its user and priority. Out: a
//! [`Permit`] once the pool has room, held until the response ends (then the user is charged
//! the answer's tokens and the next request goes), or a refusal: 429 when the queue is full
//! of requests of the same priority or higher (`x-llm-d-request-dropped-reason:
//! rejected-saturated`), 504 after `--fairness-queue-timeout` (Kthena's "Request processing
//! timed out in queue"). A client that goes away while queued drops its future, which takes
//! its entry out.
//!
//! The pool has room when all of these hold:
//! - `--fairness-max-concurrent` > 0: fewer requests admitted through its queue and not
//!   finished than that; = 0 (Kthena's QPS mode): the last admission was at least
//!   1 / `--fairness-max-qps` ago;
//! - some endpoint's engine reported fewer than least-request's default `maxWaitingRequests`
//!   (10) requests waiting, or was not read yet (a pool with no endpoint has room: it
//!   answers 503 at once instead of waiting).
//!
//! The order (strict priority, least recent weighted tokens per user, FIFO per user) is
//! [`kthena_core::fair_queue`]'s. A request's priority is its InferenceObjective's, else its
//! InferenceModel's criticality, else 0. Its user is the JWT `sub` when authentication is on;
//! otherwise the Inference Extension's fairness id header, else one shared user.
//!
//! Admission is decided under the queue's mutex by the request itself (nothing waits:
//! straight through), by the request that ends (it hands its slot to the next), and by one
//! pump thread that looks again at queues with waiters every few milliseconds (room that
//! comes with time: QPS pacing and engine scrapes). When fairness is off none of this exists.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use kthena_core::fair_queue::{Discipline, Pushed, Ticket, Usage, Weights};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::sync::oneshot;

use crate::pool::{PoolKey, now_ms};
use crate::state::PoolCell;

/// Header naming why the router dropped a request (the Inference Extension's).
pub const DROPPED_REASON_HEADER: &str = "x-llm-d-request-dropped-reason";

/// Headers naming a request's fairness id when authentication gives no user (the Inference
/// Extension's new name and its old alias).
const FAIRNESS_ID_HEADERS: [&str; 2] = [
    "x-llm-d-inference-fairness-id",
    "x-gateway-inference-fairness-id",
];

/// The user of requests that name none (the Inference Extension's default flow).
pub const DEFAULT_USER: &str = "default-flow";

/// Engines with this many requests waiting give no room (least-request's default filter).
const MAX_ENGINE_WAITING: f64 =
    kthena_core::scheduler::plugins::least_request::DEFAULT_MAX_WAITING as f64;

/// How often the pump looks again at queues with waiters when nothing else happens.
const PUMP_PERIOD: Duration = Duration::from_millis(50);

/// Settings of the queues (the `--fairness-*` flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FairnessOptions {
    /// Usage counted over this window (`FAIRNESS_WINDOW_SIZE`).
    pub window: Duration,
    /// Token and score weights.
    pub weights: Weights,
    /// Most requests admitted per pool and not finished; 0: paced by `max_qps` instead.
    pub max_concurrent: usize,
    /// Admissions per second per pool when `max_concurrent` is 0.
    pub max_qps: u32,
    /// Longest a request waits (then 504).
    pub queue_timeout: Duration,
    /// Most requests waiting per pool (then lower priorities are shed, or the request).
    pub max_queue: usize,
}

impl Default for FairnessOptions {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3600),
            weights: Weights::default(),
            max_concurrent: 0,
            max_qps: 100,
            queue_timeout: Duration::from_secs(60),
            max_queue: 5000,
        }
    }
}

/// The queues' metrics (Kthena's names; `user_id` is always `_all`: user ids are unbounded;
/// `priority` is the request's).
#[derive(Debug, Clone)]
pub struct QueueMetrics {
    /// `kthena_router_fairness_queue_size{model,user_id,priority}`.
    pub size: IntGaugeVec,
    /// `kthena_router_fairness_queue_duration_seconds{model,user_id,priority}`: time queued,
    /// of requests admitted.
    pub duration: HistogramVec,
    /// `kthena_router_fairness_queue_cancelled_total{model,user_id,priority}`: requests that
    /// left the queue unserved (client gone, timed out).
    pub cancelled: IntCounterVec,
    /// `kthena_router_fairness_queue_dequeue_total{model,user_id,priority}`: requests
    /// admitted (straight through or after waiting).
    pub dequeued: IntCounterVec,
    /// `kthena_router_fairness_queue_inflight{model}`: admitted and not finished.
    pub inflight: IntGaugeVec,
    /// `kthena_router_fairness_queue_rejected_total{model,priority,reason}`: requests
    /// answered 429 (`rejected-saturated`) or 504 (`rejected-ttl-expired`).
    pub rejected: IntCounterVec,
}

/// Buckets of the queue wait: Kthena's, and up to the default timeout.
const WAIT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The `user_id` label value.
const ALL_USERS: &str = "_all";

impl QueueMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let labels = &["model", "user_id", "priority"];
        let m = Self {
            size: IntGaugeVec::new(
                Opts::new(
                    "kthena_router_fairness_queue_size",
                    "Current fairness queue size for pending requests",
                ),
                labels,
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "kthena_router_fairness_queue_duration_seconds",
                    "Time requests spend in fairness queue before processing",
                )
                .buckets(WAIT_BUCKETS.to_vec()),
                labels,
            )?,
            cancelled: IntCounterVec::new(
                Opts::new(
                    "kthena_router_fairness_queue_cancelled_total",
                    "Total number of requests cancelled or timed out while in fairness queue",
                ),
                labels,
            )?,
            dequeued: IntCounterVec::new(
                Opts::new(
                    "kthena_router_fairness_queue_dequeue_total",
                    "Total number of requests successfully dequeued from fairness queue",
                ),
                labels,
            )?,
            inflight: IntGaugeVec::new(
                Opts::new(
                    "kthena_router_fairness_queue_inflight",
                    "Requests admitted through the fairness queue and not finished",
                ),
                &["model"],
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "kthena_router_fairness_queue_rejected_total",
                    "Requests the fairness queue refused: shed under saturation (429) or \
                     timed out (504), by x-llm-d-request-dropped-reason",
                ),
                &["model", "priority", "reason"],
            )?,
        };
        registry.register(Box::new(m.size.clone()))?;
        registry.register(Box::new(m.duration.clone()))?;
        registry.register(Box::new(m.cancelled.clone()))?;
        registry.register(Box::new(m.dequeued.clone()))?;
        registry.register(Box::new(m.inflight.clone()))?;
        registry.register(Box::new(m.rejected.clone()))?;
        Ok(m)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The queue is full of requests of its priority or higher, or it was shed for a higher
    /// one (429, `rejected-saturated`).
    Saturated,
    /// It waited `--fairness-queue-timeout` (504, `rejected-ttl-expired`).
    Timeout,
}

impl Refusal {
    /// The `x-llm-d-request-dropped-reason` value.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Saturated => "rejected-saturated",
            Refusal::Timeout => "rejected-ttl-expired",
        }
    }
}

/// The queues of every pool.
#[derive(Debug)]
pub struct Fairness {
    opts: FairnessOptions,
    metrics: QueueMetrics,
    queues: Mutex<foldhash::HashMap<PoolKey, Arc<PoolQueue>>>,
    /// Signalled when a request starts waiting, so the pump wakes.
    pump: (Mutex<bool>, Condvar),
}

#[derive(Debug)]
struct PoolQueue {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    waiting: Discipline<Waiter>,
    usage: Usage,
    admitted: usize,
    /// QPS mode: no admission before this.
    next_slot: Option<Instant>,
    /// The pool's endpoints, as last seen by a request.
    pool: PoolCell,
}

#[derive(Debug)]
struct Waiter {
    tx: oneshot::Sender<bool>,
    since: Instant,
    model: Arc<str>,
}

/// Locks `m`, taking over a lock a panicking holder left (the state stays consistent: every
/// change under it is a few field writes).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Fairness {
    /// Queues with `opts`, counted in `metrics`; starts the pump thread (it ends with the
    /// value).
    pub fn new(opts: FairnessOptions, metrics: QueueMetrics) -> Arc<Self> {
        let this = Arc::new(Self {
            opts,
            metrics,
            queues: Mutex::default(),
            pump: (Mutex::new(false), Condvar::new()),
        });
        let weak = Arc::downgrade(&this);
        let period = match opts.max_concurrent {
            0 => PUMP_PERIOD.min(Duration::from_secs(1) / opts.max_qps.max(1)),
            _ => PUMP_PERIOD,
        }
        .max(Duration::from_millis(1));
        std::thread::Builder::new()
            .name("fairness-pump".into())
            .spawn(move || pump(&weak, period))
            .expect("spawning the fairness pump thread");
        this
    }

    /// The options.
    pub fn options(&self) -> &FairnessOptions {
        &self.opts
    }

    fn queue(&self, key: &PoolKey, pool: &PoolCell) -> Arc<PoolQueue> {
        let mut queues = lock(&self.queues);
        if let Some(q) = queues.get(key) {
            return q.clone();
        }
        let q = Arc::new(PoolQueue {
            state: Mutex::new(State {
                waiting: Discipline::default(),
                usage: Usage::new(self.opts.window),
                admitted: 0,
                next_slot: None,
                pool: pool.clone(),
            }),
        });
        queues.insert(key.clone(), q.clone());
        q
    }

    /// Waits until `pool` has room for a request of `user` at `priority` (its metrics
    /// labelled `model`), or refuses it. Dropping the future while it waits takes it out.
    pub async fn admit(
        self: &Arc<Self>,
        pool: &PoolCell,
        user: &str,
        priority: i32,
        model: &str,
    ) -> Result<Permit, Refusal> {
        let key = pool.load().upstream.key.clone();
        let queue = self.queue(&key, pool);
        let model: Arc<str> = Arc::from(model);
        let prio = priority.to_string();
        let labels = [&*model, ALL_USERS, &prio];
        let (ticket, rx) = {
            let mut st = lock(&queue.state);
            if !Arc::ptr_eq(&st.pool, pool) {
                st.pool = pool.clone();
            }
            if st.waiting.is_empty() && self.room(&st) {
                self.take_slot(&mut st, &model);
                self.metrics.dequeued.with_label_values(&labels).inc();
                self.metrics
                    .duration
                    .with_label_values(&labels)
                    .observe(0.0);
                drop(st);
                return Ok(self.permit(queue, user, model));
            }
            let (tx, rx) = oneshot::channel();
            let waiter = Waiter {
                tx,
                since: Instant::now(),
                model: model.clone(),
            };
            match st.waiting.push(priority, user, waiter, self.opts.max_queue) {
                Pushed::Refused(_) => {
                    drop(st);
                    self.rejected(&model, &prio, Refusal::Saturated);
                    return Err(Refusal::Saturated);
                }
                Pushed::Queued { ticket, shed } => {
                    self.metrics.size.with_label_values(&labels).inc();
                    if let Some((t, w)) = shed {
                        let p = t.priority.to_string();
                        self.metrics
                            .size
                            .with_label_values(&[&*w.model, ALL_USERS, &p])
                            .dec();
                        // Its request answers 429 and counts the rejection.
                        let _ = w.tx.send(false);
                    }
                    (ticket, rx)
                }
            }
        };
        {
            let (woken, cv) = &self.pump;
            *lock(woken) = true;
            cv.notify_one();
        }
        let mut waiting = Waiting {
            fairness: self.clone(),
            queue: Some(queue),
            ticket,
            rx,
            labels: (model.clone(), prio.clone()),
        };
        match actix_rt::time::timeout(self.opts.queue_timeout, &mut waiting.rx).await {
            Ok(Ok(true)) => {
                let queue = waiting.queue.take().expect("set until now");
                Ok(self.permit(queue, user, model))
            }
            Ok(_) => {
                waiting.queue = None;
                self.rejected(&model, &prio, Refusal::Saturated);
                Err(Refusal::Saturated)
            }
            Err(_) => {
                // Admitted in the meantime: take it. Otherwise the drop takes it out.
                if waiting.leave() {
                    let queue = waiting.queue.take().expect("set until now");
                    return Ok(self.permit(queue, user, model));
                }
                self.rejected(&model, &prio, Refusal::Timeout);
                Err(Refusal::Timeout)
            }
        }
    }

    fn permit(self: &Arc<Self>, queue: Arc<PoolQueue>, user: &str, model: Arc<str>) -> Permit {
        Permit {
            fairness: self.clone(),
            queue: Some(queue),
            user: user.to_owned(),
            model,
        }
    }

    fn rejected(&self, model: &str, priority: &str, why: Refusal) {
        self.metrics
            .rejected
            .with_label_values(&[model, priority, why.reason()])
            .inc();
    }

    /// True when `st`'s pool may take one more request now.
    fn room(&self, st: &State) -> bool {
        if self.opts.max_concurrent > 0 {
            if st.admitted >= self.opts.max_concurrent {
                return false;
            }
        } else if st.next_slot.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let snap = st.pool.load();
        snap.engine.is_empty()
            || snap
                .engine
                .iter()
                .any(|e| e.waiting.is_none_or(|w| w < MAX_ENGINE_WAITING))
    }

    fn take_slot(&self, st: &mut State, model: &str) {
        st.admitted += 1;
        if self.opts.max_concurrent == 0 {
            st.next_slot = Some(Instant::now() + Duration::from_secs(1) / self.opts.max_qps.max(1));
        }
        self.metrics.inflight.with_label_values(&[model]).inc();
    }

    /// Admits waiting requests while the pool has room, best first.
    fn dispatch(&self, st: &mut State) {
        let now = now_ms();
        let weights = self.opts.weights;
        while !st.waiting.is_empty() && self.room(st) {
            let State { waiting, usage, .. } = &mut *st;
            let Some((t, w)) = waiting.pop(|u| usage.score(u, now, &weights)) else {
                break;
            };
            let p = t.priority.to_string();
            let labels = [&*w.model, ALL_USERS, &p];
            self.metrics.size.with_label_values(&labels).dec();
            if w.tx.send(true).is_ok() {
                self.take_slot(st, &w.model);
                self.metrics.dequeued.with_label_values(&labels).inc();
                self.metrics
                    .duration
                    .with_label_values(&labels)
                    .observe(w.since.elapsed().as_secs_f64());
            }
        }
    }

    /// Dispatches every queue with waiters; false when none has any.
    fn pump_once(&self) -> bool {
        let queues: Vec<Arc<PoolQueue>> = lock(&self.queues).values().cloned().collect();
        let mut any = false;
        for q in queues {
            let mut st = lock(&q.state);
            self.dispatch(&mut st);
            any |= !st.waiting.is_empty();
        }
        any
    }
}

/// The pump: while some queue has waiters, dispatches every `period`; otherwise sleeps
/// until a request queues. Ends when the queues are dropped.
fn pump(fairness: &Weak<Fairness>, period: Duration) {
    loop {
        let Some(f) = fairness.upgrade() else { return };
        if f.pump_once() {
            drop(f);
            std::thread::sleep(period);
            continue;
        }
        let (woken, cv) = &f.pump;
        let mut flag = lock(woken);
        if !*flag {
            // A timeout, so the thread notices the queues were dropped.
            flag = cv
                .wait_timeout(flag, Duration::from_secs(1))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        *flag = false;
    }
}

/// A request in a queue; dropped, it leaves it.
struct Waiting {
    fairness: Arc<Fairness>,
    /// None once it left (admitted, shed or taken out).
    queue: Option<Arc<PoolQueue>>,
    ticket: Ticket,
    rx: oneshot::Receiver<bool>,
    labels: (Arc<str>, String),
}

impl Waiting {
    /// Takes the request out; true when it was admitted meanwhile (it holds a slot then).
    fn leave(&mut self) -> bool {
        let Some(queue) = self.queue.take() else {
            return false;
        };
        let removed = lock(&queue.state).waiting.remove(&self.ticket);
        if removed.is_some() {
            let labels = [&*self.labels.0, ALL_USERS, &self.labels.1];
            let m = &self.fairness.metrics;
            m.size.with_label_values(&labels).dec();
            m.cancelled.with_label_values(&labels).inc();
            return false;
        }
        // Not waiting any more: admitted (the answer was sent under the lock that popped it,
        // so it is there now, and the slot is taken) or shed.
        if matches!(self.rx.try_recv(), Ok(true)) {
            self.queue = Some(queue);
            return true;
        }
        false
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        // Admitted but never used (the client went away at that moment): give the slot back.
        if self.leave()
            && let Some(queue) = self.queue.take()
        {
            let mut st = lock(&queue.state);
            release(&self.fairness, &mut st, &self.labels.0);
        }
    }
}

/// Gives back one admitted slot of `st` and admits the next.
fn release(f: &Fairness, st: &mut State, model: &str) {
    st.admitted = st.admitted.saturating_sub(1);
    f.metrics.inflight.with_label_values(&[model]).dec();
    f.dispatch(st);
}

/// A request admitted to its pool: held until its response ends. Dropped without
/// [`Permit::finish`], it charges nothing.
#[derive(Debug)]
pub struct Permit {
    fairness: Arc<Fairness>,
    queue: Option<Arc<PoolQueue>>,
    user: String,
    model: Arc<str>,
}

impl Permit {
    /// Charges the user the answer's tokens (`usage`, when the engine said) and gives the
    /// slot to the next request.
    pub fn finish(mut self, usage: Option<crate::usage::Usage>) {
        self.end(usage);
    }

    fn end(&mut self, usage: Option<crate::usage::Usage>) {
        let Some(queue) = self.queue.take() else {
            return;
        };
        let mut st = lock(&queue.state);
        let (input, output) = usage.map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
        let weights = self.fairness.opts.weights;
        st.usage
            .charge(&self.user, now_ms(), input, output, &weights);
        release(&self.fairness, &mut st, &self.model);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.end(None);
    }
}

/// The fairness user of a request: the authenticated user, else the fairness id header,
/// else [`DEFAULT_USER`].
pub fn user_of<'a>(
    authenticated: &'a str,
    headers: &'a actix_web::http::header::HeaderMap,
) -> &'a str {
    if !authenticated.is_empty() {
        return authenticated;
    }
    FAIRNESS_ID_HEADERS
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_USER)
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;
    use crate::pool::PoolSnapshot;

    /// A pool of one ModelServer with no endpoints (room depends on the limits only).
    fn pool() -> PoolCell {
        let server = kthena_core::ModelServer {
            id: kthena_core::ObjectRef::new("default", "s"),
            model: None,
            engine: kthena_core::Engine::Vllm,
            match_labels: Default::default(),
            pd_group: None,
            port: 8000,
            protocol: kthena_core::Protocol::Http,
            timeout: Duration::from_secs(1),
            retry: kthena_core::RetryPolicy::default(),
            kv_connector: None,
            session_sticky: None,
        };
        Arc::new(arc_swap::ArcSwap::from_pointee(PoolSnapshot::build(
            server.into(),
            &[],
            None,
        )))
    }

    fn fairness(max_concurrent: usize, max_queue: usize, timeout: Duration) -> Arc<Fairness> {
        let registry = Registry::new();
        Fairness::new(
            FairnessOptions {
                max_concurrent,
                max_queue,
                queue_timeout: timeout,
                ..FairnessOptions::default()
            },
            QueueMetrics::new(&registry).expect("registers"),
        )
    }

    fn waiting(f: &Fairness) -> usize {
        lock(&f.queues)
            .values()
            .map(|q| lock(&q.state).waiting.len())
            .sum()
    }

    #[actix_rt::test]
    async fn a_finished_request_hands_its_slot_to_the_best_waiting_one() {
        let f = fairness(1, 10, Duration::from_secs(10));
        let cell = pool();
        let first = f.admit(&cell, "a", 0, "m").await.expect("room");
        // Both wait; the higher priority one is admitted when the first finishes, although
        // it came later.
        let low = f.admit(&cell, "b", 0, "m");
        let high = f.admit(&cell, "c", 5, "m");
        futures_util::pin_mut!(low);
        futures_util::pin_mut!(high);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(low.as_mut().poll(&mut cx).is_pending());
        assert!(high.as_mut().poll(&mut cx).is_pending());
        assert_eq!(waiting(&f), 2);
        first.finish(None);
        let high = high.await.expect("admitted");
        assert_eq!(waiting(&f), 1, "the low one still waits");
        drop(high);
        low.await.expect("admitted after");
    }

    #[actix_rt::test]
    async fn a_waiting_request_dropped_leaves_the_queue_and_a_timed_out_one_is_refused() {
        let f = fairness(1, 1, Duration::from_millis(50));
        let cell = pool();
        let _running = f.admit(&cell, "a", 0, "m").await.expect("room");
        {
            let gone = f.admit(&cell, "b", 0, "m");
            futures_util::pin_mut!(gone);
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(gone.as_mut().poll(&mut cx).is_pending());
            assert_eq!(waiting(&f), 1);
        }
        assert_eq!(waiting(&f), 0, "the dropped request left");
        assert_eq!(
            f.admit(&cell, "c", 0, "m").await.err(),
            Some(Refusal::Timeout)
        );
        assert_eq!(waiting(&f), 0);
    }

    #[actix_rt::test]
    async fn a_full_queue_refuses_its_lowest_priority_and_sheds_it_for_a_higher_one() {
        let f = fairness(1, 1, Duration::from_secs(10));
        let cell = pool();
        let running = f.admit(&cell, "a", 0, "m").await.expect("room");
        let low = f.admit(&cell, "b", -1, "m");
        futures_util::pin_mut!(low);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(low.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            f.admit(&cell, "c", -1, "m").await.err(),
            Some(Refusal::Saturated),
            "same priority as the queue's lowest: refused"
        );
        let high = f.admit(&cell, "d", 0, "m");
        futures_util::pin_mut!(high);
        assert!(high.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            low.await.err(),
            Some(Refusal::Saturated),
            "shed for the higher one"
        );
        drop(running);
        high.await.expect("admitted");
    }

    #[test]
    fn the_user_is_the_authenticated_one_else_the_fairness_id_else_the_default() {
        let mut headers = actix_web::http::header::HeaderMap::new();
        assert_eq!(user_of("", &headers), DEFAULT_USER);
        headers.insert(
            actix_web::http::header::HeaderName::from_static("x-gateway-inference-fairness-id"),
            actix_web::http::header::HeaderValue::from_static("team-a"),
        );
        assert_eq!(user_of("", &headers), "team-a");
        assert_eq!(
            user_of("alice", &headers),
            "alice",
            "a header does not override the JWT"
        );
    }
}
