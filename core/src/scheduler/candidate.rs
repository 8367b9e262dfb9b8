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
    /// The most requests the engine has been seen running at once since the router first
    /// read it: its batch size, as far as the router knows (never below `running`).
    pub peak_running: Option<f64>,
    /// The engine has been seen with requests waiting: its batch has been reached, so
    /// `peak_running` is a batch size, not just the most it was given so far.
    pub queued_seen: bool,
    /// Requests queued in the engine (`vllm:num_requests_waiting`).
    pub waiting: Option<f64>,
    /// KV-cache usage, 0..=1 (`vllm:kv_cache_usage_perc`, `sglang:token_usage`).
    pub kv_cache_usage: Option<f64>,
    /// This router's requests in flight to the endpoint when the reading above was taken:
    /// what changed since is this router's own doing, and known without a scrape.
    pub in_flight_at_reading: Option<f64>,
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
        peak_running: None,
        queued_seen: false,
        waiting: None,
        kv_cache_usage: None,
        in_flight_at_reading: None,
        ttft: None,
        tpot: None,
        models: None,
    };

    /// `Some(true)` when the engine lists `model`, `Some(false)` when its list is known and
    /// lacks it, `None` when the list is unknown.
    pub fn serves(&self, model: &str) -> Option<bool> {
        self.serves_hashed(model_hash(model), model)
    }

    /// [`EngineState::serves`] for a model whose [`model_hash`] is known (once per request).
    pub fn serves_hashed(&self, hash: u64, model: &str) -> Option<bool> {
        self.models.as_ref().map(|m| m.contains_hashed(hash, model))
    }
}

/// The hash model names are looked up by in a [`ModelSet`] (stable within the process).
pub fn model_hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// A set of model names, cheap to clone and to share between snapshots, and cheap to ask:
/// names are kept by hash, so a lookup compares integers and one string at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSet(Arc<[(u64, Box<str>)]>);

impl ModelSet {
    /// The set of `names`.
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        let mut v: Vec<(u64, Box<str>)> = names
            .into_iter()
            .map(|s| (model_hash(s.as_ref()), s.as_ref().into()))
            .collect();
        v.sort();
        v.dedup();
        Self(v.into())
    }

    /// True when `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.contains_hashed(model_hash(name), name)
    }

    /// True when `name`, whose [`model_hash`] is `hash`, is in the set.
    pub fn contains_hashed(&self, hash: u64, name: &str) -> bool {
        let start = self.0.partition_point(|(h, _)| *h < hash);
        self.0[start..]
            .iter()
            .take_while(|(h, _)| *h == hash)
            .any(|(_, n)| &**n == name)
    }

    /// True when `other` is this very set (a clone of it), not just an equal one: the pool
    /// shares one set between endpoints that list the same models, so a pick asks once.
    pub fn same(&self, other: &ModelSet) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The names, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self.0.iter().map(|(_, m)| &**m).collect();
        names.sort_unstable();
        names.into_iter()
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
