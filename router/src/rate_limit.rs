//! The token budgets of ModelRoutes (`spec.rateLimit`), kept per model name (Kthena keys them
//! by `spec.modelName`: two routes of one name share a budget) across configuration changes;
//! the rules are in [`kthena_core::rate_limit`].
//!
//! A local budget lives in this process's memory; a global one (`global.redis.address`) in
//! that Redis, shared by every replica ([`global`]). A request's handler awaits the decision
//! directly (no mailbox on the way); the reservation it gets is settled when the exchange
//! finishes.

pub mod global;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use kthena_core::rate_limit::{Exceeded, ModelLimit};
use kthena_core::{RateLimit, RouteTable};

use crate::usage::Usage;

pub use self::global::{FailureMode, GlobalMetrics, GlobalOptions};

/// Every model name's buckets: local ones here, global ones through [`global::GlobalBudgets`].
/// Locked only by requests to routes with a local limit.
#[derive(Debug, Default)]
pub struct RateLimits {
    models: Mutex<Budgets>,
    global: global::GlobalBudgets,
}

/// The local budgets by name ([`kthena_core::rate_limit::budget_key`]). With `limitBy` a
/// client can name new budgets at will (a header's values), so when the map has doubled
/// since it was last pruned, the budgets that are full again and not held by a request in
/// flight are let go: a new one would start full, so forgetting them changes nothing.
#[derive(Debug, Default)]
struct Budgets {
    map: HashMap<String, Arc<Mutex<ModelLimit>>>,
    prune_at: usize,
}

/// Budgets kept before the first pruning.
const PRUNE_FLOOR: usize = 1024;

impl Budgets {
    fn prune(&mut self, now: Instant) {
        self.map
            .retain(|_, b| Arc::strong_count(b) > 1 || !lock(b).is_full(now));
        self.prune_at = (self.map.len() * 2).max(PRUNE_FLOOR);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RateLimits {
    /// Budgets whose global ones follow `options`, counted in `metrics`.
    pub fn new(options: GlobalOptions, metrics: Option<GlobalMetrics>) -> Self {
        Self {
            models: Mutex::default(),
            global: global::GlobalBudgets::new(options, metrics),
        }
    }

    /// Admits a request to budget `model` (a model name, or with `limitBy` the name
    /// [`kthena_core::rate_limit::budget_key`] makes) under `limit` with `input` estimated
    /// prompt tokens, or says which budget refused it. Local buckets follow `limit` when it changed; a global
    /// limit is decided by its Redis.
    pub async fn admit(
        &self,
        model: &str,
        limit: &RateLimit,
        input: u64,
    ) -> Result<Reservation, Exceeded> {
        match &limit.global_redis_address {
            Some(address) => self.global.admit(address, model, limit, input).await,
            None => self.admit_local(model, limit, input),
        }
    }

    fn admit_local(
        &self,
        model: &str,
        limit: &RateLimit,
        input: u64,
    ) -> Result<Reservation, Exceeded> {
        let now = Instant::now();
        let bucket = {
            let mut budgets = lock(&self.models);
            match budgets.map.get(model) {
                Some(b) => b.clone(),
                None => {
                    if budgets.map.len() >= budgets.prune_at.max(PRUNE_FLOOR) {
                        budgets.prune(now);
                    }
                    let b = Arc::new(Mutex::new(ModelLimit::new(limit, now)));
                    budgets.map.insert(model.to_owned(), b.clone());
                    b
                }
            }
        };
        {
            let mut m = lock(&bucket);
            m.update(limit, now);
            m.admit(input, now)?;
        }
        Ok(Reservation {
            held: Held::Local(bucket),
            reserved: input,
        })
    }

    /// Connects to the Redis of every global limit in `table` that has no client yet, so a
    /// replica shares its budgets from its first request (and says at once, in its log and
    /// `kthena_router_rate_limit_redis_connected`, when a Redis does not answer).
    pub fn follow(&self, table: &RouteTable) {
        for route in table.routes() {
            if let Some(address) = route
                .rate_limit
                .as_ref()
                .and_then(|l| l.global_redis_address.as_deref())
            {
                self.global.store(address);
            }
        }
    }

    /// Tokens left for `model` now: (input, output); `None` when it has no local limit.
    pub fn available(&self, model: &str) -> Option<(Option<f64>, Option<f64>)> {
        let bucket = lock(&self.models).map.get(model).cloned()?;
        let mut m = lock(&bucket);
        Some(m.available(Instant::now()))
    }
}

/// The input tokens an admitted request reserved, to settle when its answer is counted.
#[derive(Debug)]
pub struct Reservation {
    held: Held,
    reserved: u64,
}

#[derive(Debug)]
enum Held {
    /// This process's buckets.
    Local(Arc<Mutex<ModelLimit>>),
    /// A Redis's buckets.
    Global(global::Settle),
    /// Nothing: a global limit let the request through without its Redis (fail-open).
    Nothing,
}

impl Reservation {
    /// A request let through with nothing reserved.
    fn nothing() -> Self {
        Self {
            held: Held::Nothing,
            reserved: 0,
        }
    }

    /// Settles with the answer's `usage`; with none (an error, a client gone), the estimate
    /// stays charged and no output is. A global settlement is sent to Redis in the background.
    pub fn settle(self, usage: Option<Usage>) {
        let Some(u) = usage else {
            return;
        };
        match self.held {
            Held::Local(bucket) => lock(&bucket).settle(
                self.reserved,
                u.prompt_tokens,
                u.completion_tokens,
                Instant::now(),
            ),
            Held::Global(settle) => {
                settle.send(self.reserved, u.prompt_tokens, u.completion_tokens);
            }
            Held::Nothing => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kthena_core::{LimitBy, RateUnit};

    /// Budgets a header names at will are let go once full again; the others stay.
    #[test]
    fn idle_full_budgets_are_let_go_and_the_others_kept() {
        let limits = RateLimits::default();
        let limit = RateLimit {
            input_tokens_per_unit: Some(10),
            output_tokens_per_unit: None,
            unit: RateUnit::Minute,
            global_redis_address: None,
            limit_by: LimitBy::Header("x-tenant".into()),
        };
        let held = limits.admit_local("held", &limit, 5).expect("admitted");
        drop(limits.admit_local("spent", &limit, 5).expect("admitted"));
        for i in 0..5 * PRUNE_FLOOR {
            drop(
                limits
                    .admit_local(&format!("t{i}"), &limit, 0)
                    .expect("admitted"),
            );
        }
        let budgets = lock(&limits.models);
        assert!(
            budgets.map.len() <= 2 * PRUNE_FLOOR,
            "{}",
            budgets.map.len()
        );
        assert!(
            budgets.map.contains_key("held"),
            "a request in flight holds it"
        );
        assert!(budgets.map.contains_key("spent"), "not full again yet");
        drop(budgets);
        let (input, _) = limits.available("spent").expect("kept");
        assert!(input.expect("an input budget") < 10.0, "{input:?}");
        drop(held);
    }
}
