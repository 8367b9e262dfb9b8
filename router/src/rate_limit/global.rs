//! Global token budgets (`spec.rateLimit.global.redis.address`): the buckets live in that
//! Redis and every router replica decides with one atomic script call per request
//! ([`kthena_core::rate_limit::REDIS_SCRIPT`], the Redis form of the local buckets, on
//! Redis's clock). One client per address, made when a configuration first names it.
//!
//! Failures, as Kthena:
//! - a Redis that has not answered since the router started: its limits are not enforced
//!   (requests pass, Kthena's limiter is not installed then); the client keeps trying and the
//!   limits apply from the moment it answers, with no restart;
//! - a Redis that fails at request time (an error, or no answer within `--rate-limit-redis-timeout`):
//!   `--rate-limit-redis-failure-mode` decides: `closed` (the default, Kthena's) refuses the
//!   request with 429 and Kthena's text, `open` lets it through. The client reconnects by
//!   itself ([`ConnectionManager`]).
//!
//! Redis calls run on a thread of their own (`kthena-redis`), so a client outlives any
//! listener's workers; the request's handler awaits the answer, bounded by the timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use kthena_core::RateLimit;
use kthena_core::rate_limit::{
    Exceeded, REDIS_SCRIPT, Refusal, redis_admit_args, redis_decision, redis_keys,
    redis_settle_args,
};
use prometheus::{IntCounterVec, IntGaugeVec};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::watch;

use super::{Held, Reservation};

/// What a request gets when its global limit's Redis fails at request time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FailureMode {
    /// Refused: 429 with Kthena's text (Kthena's behaviour).
    #[default]
    Closed,
    /// Let through, unlimited.
    Open,
}

impl FailureMode {
    /// The `mode` label of `kthena_router_rate_limit_redis_errors_total`.
    fn label(self) -> &'static str {
        match self {
            FailureMode::Closed => "closed",
            FailureMode::Open => "open",
        }
    }
}

/// How global budgets behave (`--rate-limit-redis-*`).
#[derive(Debug, Clone, Copy)]
pub struct GlobalOptions {
    /// What a request gets when Redis fails at request time.
    pub failure_mode: FailureMode,
    /// Longest one Redis call (or connection attempt) may take.
    pub timeout: Duration,
}

/// Half a second: Redis answers a script in well under a millisecond on a healthy network,
/// so this only ever cuts a dead or partitioned Redis, and a request waits at most this long
/// for a decision.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

impl Default for GlobalOptions {
    fn default() -> Self {
        Self {
            failure_mode: FailureMode::Closed,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The metrics of global budgets.
#[derive(Debug, Clone)]
pub struct GlobalMetrics {
    /// `kthena_router_rate_limit_redis_errors_total{mode}`: requests to a global limit decided
    /// without Redis: `closed` refused and `open` let through because Redis failed at request
    /// time, `not_connected` let through because Redis has not answered since the start.
    pub errors: IntCounterVec,
    /// `kthena_router_rate_limit_redis_connected{address}`: 1 while the client of a Redis
    /// named by a global limit is connected (its last call succeeded), 0 otherwise.
    pub connected: IntGaugeVec,
}

/// Connection attempts to a Redis not reached yet start this far apart, doubling up to
/// [`RETRY_MAX`]: a Redis started after the router is used within about two seconds.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The runtime of every Redis client: a thread of its own.
fn runtime() -> &'static tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime builds (the process can make threads and timers)");
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("kthena-redis".to_owned())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .expect("the kthena-redis thread starts");
        handle
    })
}

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(REDIS_SCRIPT));

/// The clients of every Redis named by a global limit, by address.
#[derive(Debug, Default)]
pub struct GlobalBudgets {
    options: GlobalOptions,
    metrics: Option<GlobalMetrics>,
    stores: Mutex<HashMap<String, Arc<Store>>>,
}

impl GlobalBudgets {
    /// No client yet; each starts when an address is first named.
    pub fn new(options: GlobalOptions, metrics: Option<GlobalMetrics>) -> Self {
        Self {
            options,
            metrics,
            stores: Mutex::default(),
        }
    }

    /// The client of `address`, started (connecting in the background) when new.
    pub fn store(&self, address: &str) -> Arc<Store> {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = stores.get(address) {
            return s.clone();
        }
        let connected = self
            .metrics
            .as_ref()
            .map(|m| m.connected.with_label_values(&[address]));
        let (tx, state) = watch::channel(State::Connecting);
        let store = Arc::new(Store {
            address: address.to_owned(),
            state,
            timeout: self.options.timeout,
            connected: connected.clone(),
            failing: AtomicBool::new(false),
        });
        runtime().spawn(connect(
            address.to_owned(),
            tx,
            self.options.timeout,
            connected,
        ));
        stores.insert(address.to_owned(), store.clone());
        store
    }

    fn count(&self, mode: &str) {
        if let Some(m) = &self.metrics {
            m.errors.with_label_values(&[mode]).inc();
        }
    }

    /// Admits a request to `model` estimated at `input` tokens under `limit`, whose
    /// buckets are in the Redis at `address`.
    pub async fn admit(
        &self,
        address: &str,
        model: &str,
        limit: &RateLimit,
        input: u64,
    ) -> Result<Reservation, Exceeded> {
        let store = self.store(address);
        let Some(conn) = store.connection().await else {
            // Kthena's fail-open: no limiter while its Redis has never answered.
            self.count("not_connected");
            return Ok(Reservation::nothing());
        };
        let answer = store
            .call(
                conn,
                redis_keys(model),
                redis_admit_args(limit, input, None),
            )
            .await
            .and_then(|(code, tokens)| {
                let tokens = tokens.parse::<f64>().ok();
                redis_decision(code, tokens, limit, input)
                    .ok_or_else(|| format!("unexpected answer of the script: {code} {tokens:?}"))
            });
        match answer {
            Ok(Ok(())) => Ok(Reservation {
                held: Held::Global(Settle {
                    store,
                    model: model.to_owned(),
                    limit: limit.clone(),
                }),
                reserved: input,
            }),
            Ok(Err(exceeded)) => Err(exceeded),
            Err(error) => {
                let mode = self.options.failure_mode;
                self.count(mode.label());
                // The outage itself is logged once by `Store::call`.
                tracing::debug!(redis = %store.address, model, %error, mode = mode.label(), "global rate limit decided without Redis");
                match mode {
                    FailureMode::Open => Ok(Reservation::nothing()),
                    // Kthena's answer when its Redis limiter errs: the budget refuses.
                    FailureMode::Closed => Err(unavailable(limit)),
                }
            }
        }
    }
}

/// The refusal of a request whose Redis failed: the input budget's (Kthena checks it first),
/// or the output budget's when there is no input budget; try again in a second.
fn unavailable(limit: &RateLimit) -> Exceeded {
    let refusal = Refusal {
        retry_after: Some(Duration::from_secs(1)),
    };
    if limit.input_tokens_per_unit.is_some() {
        Exceeded::Input(refusal)
    } else {
        Exceeded::Output(refusal)
    }
}

#[derive(Clone)]
enum State {
    /// The first attempt is under way.
    Connecting,
    /// No attempt has succeeded yet; more are made.
    Unreachable,
    /// Connected once; the manager reconnects by itself after that.
    Connected(ConnectionManager),
}

/// The client of one Redis.
pub struct Store {
    address: String,
    state: watch::Receiver<State>,
    timeout: Duration,
    connected: Option<prometheus::IntGauge>,
    /// The last call failed: an outage is logged when it starts and when it ends, not at
    /// every request.
    failing: AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The connection, waiting (bounded) for a first attempt under way; `None` while Redis
    /// has never answered.
    async fn connection(&self) -> Option<ConnectionManager> {
        let mut state = self.state.clone();
        let settled = tokio::time::timeout(
            self.timeout,
            state.wait_for(|s| !matches!(s, State::Connecting)),
        )
        .await;
        let current = match settled {
            Ok(Ok(s)) => s.clone(),
            _ => return None,
        };
        match current {
            State::Connected(c) => Some(c),
            State::Connecting | State::Unreachable => None,
        }
    }

    /// Runs the script with `keys` and `args` on the Redis thread, bounded by the timeout.
    async fn call(
        &self,
        mut conn: ConnectionManager,
        keys: [String; 2],
        args: Vec<String>,
    ) -> Result<(i64, String), String> {
        let timeout = self.timeout;
        let task = runtime().spawn(async move {
            let mut invocation = SCRIPT.prepare_invoke();
            for k in keys {
                invocation.key(k);
            }
            for a in args {
                invocation.arg(a);
            }
            tokio::time::timeout(timeout, invocation.invoke_async(&mut conn)).await
        });
        let answer = match task.await {
            Ok(Ok(Ok(answer))) => Ok(answer),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(_)) => Err(format!("no answer within {timeout:?}")),
            Err(e) => Err(format!("the Redis task failed: {e}")),
        };
        if let Some(g) = &self.connected {
            g.set(i64::from(answer.is_ok()));
        }
        match &answer {
            Ok(_) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(redis = %self.address, "global rate limits: Redis answers again");
            }
            Err(error) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(redis = %self.address, %error, "global rate limits: Redis failed; until it answers, requests are decided by --rate-limit-redis-failure-mode");
            }
            _ => {}
        }
        answer
    }
}

/// What an admitted request settles in Redis when its answer is counted.
#[derive(Debug)]
pub struct Settle {
    store: Arc<Store>,
    model: String,
    limit: RateLimit,
}

impl Settle {
    /// Sends the settlement in the background (the exchange is over); a failure is logged:
    /// the estimate stays charged and the output is not.
    pub fn send(self, reserved: u64, prompt: u64, completion: u64) {
        let input = prompt != reserved && self.limit.input_tokens_per_unit.is_some();
        let output = completion > 0 && self.limit.output_tokens_per_unit.is_some();
        if !input && !output {
            return;
        }
        let Self {
            store,
            model,
            limit,
        } = self;
        runtime().spawn(async move {
            let Some(conn) = store.connection().await else {
                return;
            };
            let args = redis_settle_args(&limit, reserved, prompt, completion, None);
            if let Err(error) = store.call(conn, redis_keys(&model), args).await {
                tracing::debug!(redis = %store.address, model, %error, "global rate limit: a request's tokens were not settled");
            }
        });
    }
}

/// Connects to `address` until it answers a PING, then hands the connection over; the
/// connection manager reconnects by itself after that.
async fn connect(
    address: String,
    state: watch::Sender<State>,
    timeout: Duration,
    connected: Option<prometheus::IntGauge>,
) {
    let client = match redis::Client::open(format!("redis://{address}/")) {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(redis = %address, %error, "global rate limit: not a Redis address; its limits are not enforced");
            state.send_replace(State::Unreachable);
            return;
        }
    };
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_min_delay(RETRY_MIN)
        .set_max_delay(RETRY_MAX);
    let mut wait = RETRY_MIN;
    let mut failures = 0u64;
    loop {
        let attempt = async {
            let mut m = ConnectionManager::new_with_config(client.clone(), config.clone()).await?;
            redis::cmd("PING").query_async::<String>(&mut m).await?;
            Ok::<_, redis::RedisError>(m)
        };
        let error = match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(m)) => {
                tracing::info!(redis = %address, "global rate limits: Redis connected; their budgets are shared");
                if let Some(g) = &connected {
                    g.set(1);
                }
                state.send_replace(State::Connected(m));
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        if failures == 0 {
            tracing::warn!(redis = %address, %error, "global rate limits: Redis unreachable; their limits are NOT enforced (requests pass) until it answers");
        } else {
            tracing::debug!(redis = %address, %error, failures, "global rate limits: Redis still unreachable");
        }
        failures += 1;
        if let Some(g) = &connected {
            g.set(0);
        }
        state.send_replace(State::Unreachable);
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RETRY_MAX);
    }
}
