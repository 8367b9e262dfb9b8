//! The token budgets of ModelRoutes (`spec.rateLimit`), kept per model name for the process
//! (Kthena keys them by `spec.modelName`: two routes of one name share a budget) across
//! configuration changes; the rules are in [`kthena_core::rate_limit`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use kthena_core::RateLimit;
use kthena_core::rate_limit::{Exceeded, ModelLimit};

use crate::usage::Usage;

/// Every model name's buckets. Locked only by requests to routes with a limit.
#[derive(Debug, Default)]
pub struct RateLimits {
    models: Mutex<HashMap<String, Arc<Mutex<ModelLimit>>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RateLimits {
    /// Admits a request to `model` under `limit` with `input` estimated prompt tokens, or
    /// says which budget refused it. The buckets follow `limit` when it changed.
    pub fn admit(
        &self,
        model: &str,
        limit: &RateLimit,
        input: u64,
    ) -> Result<Reservation, Exceeded> {
        let now = Instant::now();
        let bucket = {
            let mut models = lock(&self.models);
            match models.get(model) {
                Some(b) => b.clone(),
                None => {
                    let b = Arc::new(Mutex::new(ModelLimit::new(limit, now)));
                    models.insert(model.to_owned(), b.clone());
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
            bucket,
            reserved: input,
        })
    }

    /// Tokens left for `model` now: (input, output); `None` when it has no limit yet.
    pub fn available(&self, model: &str) -> Option<(Option<f64>, Option<f64>)> {
        let bucket = lock(&self.models).get(model).cloned()?;
        let mut m = lock(&bucket);
        Some(m.available(Instant::now()))
    }
}

/// The input tokens an admitted request reserved, to settle when its answer is counted.
#[derive(Debug)]
pub struct Reservation {
    bucket: Arc<Mutex<ModelLimit>>,
    reserved: u64,
}

impl Reservation {
    /// Settles with the answer's `usage`; with none (an error, a client gone), the estimate
    /// stays charged and no output is.
    pub fn settle(self, usage: Option<Usage>) {
        let Some(u) = usage else {
            return;
        };
        lock(&self.bucket).settle(
            self.reserved,
            u.prompt_tokens,
            u.completion_tokens,
            Instant::now(),
        );
    }
}
