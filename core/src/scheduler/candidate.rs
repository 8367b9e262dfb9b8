//! What the scheduler knows about one endpoint: the router's own counters and the engine's
//! scraped state.

use std::sync::Arc;

/// An endpoint the request may go to, as the scheduler sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Identity of the endpoint for as long as it exists (never reused): the prefix index
    /// files cached blocks under it.
    pub key: u64,
    /// Requests the router has sent to it and not finished.
    pub in_flight: usize,
    /// Outlier detection has ejected it for now.
    pub ejected: bool,
    /// The engine's state from its last scrapes.
    pub engine: &'a EngineState,
}

/// The engine's own view of its load, from `/metrics` and `/v1/models`. Every field is
/// `None` when unknown (never scraped, or the readings aged out after failed scrapes): a
/// plugin scores an unknown endpoint as unknown, never as idle.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineState {
    /// Requests in the engine's running batch (`vllm:num_requests_running`).
    pub running: Option<f64>,
    /// Requests queued in the engine (`vllm:num_requests_waiting`).
    pub waiting: Option<f64>,
    /// KV-cache usage, 0..=1 (`vllm:kv_cache_usage_perc`, `sglang:token_usage`).
    pub kv_cache_usage: Option<f64>,
    /// Mean time to first token over the last scrape interval, seconds.
    pub ttft: Option<f64>,
    /// Mean time per output token over the last scrape interval, seconds.
    pub tpot: Option<f64>,
    /// Models and LoRA adapters the engine serves (`/v1/models`).
    pub models: Option<ModelSet>,
}

impl EngineState {
    /// Nothing known.
    pub const UNKNOWN: EngineState = EngineState {
        running: None,
        waiting: None,
        kv_cache_usage: None,
        ttft: None,
        tpot: None,
        models: None,
    };

    /// `Some(true)` when the engine lists `model`, `Some(false)` when its list is known and
    /// lacks it, `None` when the list is unknown.
    pub fn serves(&self, model: &str) -> Option<bool> {
        self.models.as_ref().map(|m| m.contains(model))
    }
}

/// A set of model names, sorted, cheap to clone and to share between snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSet(Arc<[Box<str>]>);

impl ModelSet {
    /// The set of `names`.
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        let mut v: Vec<Box<str>> = names.into_iter().map(|s| s.as_ref().into()).collect();
        v.sort();
        v.dedup();
        Self(v.into())
    }

    /// True when `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|m| (**m).cmp(name)).is_ok()
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|m| &**m)
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_set_answers_membership_whatever_the_input_order() {
        let set = ModelSet::new(["b", "a", "lora-A", "a"]);
        assert_eq!(set.len(), 3);
        assert!(set.contains("lora-A") && set.contains("a") && !set.contains("c"));
        let state = EngineState {
            models: Some(set),
            ..EngineState::UNKNOWN
        };
        assert_eq!(state.serves("b"), Some(true));
        assert_eq!(state.serves("x"), Some(false));
        assert_eq!(EngineState::UNKNOWN.serves("b"), None);
    }
}
