//! The engine's scheduler, without time or I/O: a running set of at most `max_num_seqs`
//! requests, a FIFO waiting queue and the [`KvCache`].
//!
//! A request is admitted when the running set has room and its blocks can be allocated;
//! otherwise it waits, and so does every request behind it (first come, first served, like
//! vLLM's default policy). Blocks are allocated **upfront** for the whole prompt plus every
//! token the request will generate, so an admitted request never runs out of blocks and is
//! never preempted; the usage gauge shows a request's final footprint from its admission.
//! Only full prompt blocks enter the prefix cache; blocks of generated tokens are freed
//! uncached. As in vLLM, the last prompt token is always computed, so a hit covers at most
//! `(prompt_tokens - 1) / block_size` blocks.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use crate::{
    kv_cache::{Allocation, KvCache},
    tokens::BlockHash,
};

/// Identifies a request inside the engine.
pub type SeqId = u64;

/// Sizes of the simulated engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// KV-cache blocks (`--kv-cache-blocks`).
    pub num_blocks: usize,
    /// Tokens per block (`--block-size`).
    pub block_size: usize,
    /// Most requests running at once (`--max-num-seqs`).
    pub max_num_seqs: usize,
}

/// What a request needs from the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// Hashes of the prompt's full blocks.
    pub block_hashes: Vec<BlockHash>,
    /// Tokens the request will generate.
    pub new_tokens: usize,
}

/// A request entering the running set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The request.
    pub id: SeqId,
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// Prompt tokens found in the prefix cache.
    pub cached_tokens: usize,
}

impl Admission {
    /// Prompt tokens the prefill has to compute.
    pub fn uncached_tokens(&self) -> usize {
        self.prompt_tokens - self.cached_tokens
    }
}

/// Where a submitted request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Admitted at once.
    Running(Admission),
    /// Queued; [`Engine::finish`] of another request will admit it.
    Waiting(SeqId),
}

/// A request the engine can never hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "This model's maximum context length is {capacity} tokens. However, you requested \
     {requested} tokens ({prompt} in the messages, {completion} in the completion). \
     Please reduce the length of the messages or completion."
)]
pub struct TooLong {
    /// Tokens the whole KV cache holds.
    pub capacity: usize,
    /// Prompt plus completion tokens.
    pub requested: usize,
    /// Prompt tokens.
    pub prompt: usize,
    /// Completion tokens.
    pub completion: usize,
}

/// What the metrics show of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Snapshot {
    /// Requests in the running set.
    pub running: usize,
    /// Requests in the waiting queue.
    pub waiting: usize,
    /// Fraction of blocks held by running requests, 0..=1.
    pub kv_usage: f64,
    /// Prompt tokens of every admitted request.
    pub prefix_queries: u64,
    /// Of those, tokens found in the prefix cache.
    pub prefix_hits: u64,
}

impl Snapshot {
    /// `prefix_hits / prefix_queries`, 0 before any request.
    pub fn hit_rate(&self) -> f64 {
        if self.prefix_queries == 0 {
            0.0
        } else {
            self.prefix_hits as f64 / self.prefix_queries as f64
        }
    }
}

/// The running set, the waiting queue and the KV cache.
#[derive(Debug)]
pub struct Engine {
    cache: KvCache,
    max_num_seqs: usize,
    running: HashMap<SeqId, Allocation>,
    waiting: VecDeque<(SeqId, Sequence)>,
    next_id: SeqId,
    prefix_queries: u64,
    prefix_hits: u64,
}

impl Engine {
    /// An idle engine with an empty cache (every size at least 1).
    pub fn new(config: EngineConfig) -> Self {
        Self {
            cache: KvCache::new(config.num_blocks, config.block_size),
            max_num_seqs: config.max_num_seqs.max(1),
            running: HashMap::new(),
            waiting: VecDeque::new(),
            next_id: 0,
            prefix_queries: 0,
            prefix_hits: 0,
        }
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.cache.block_size()
    }

    /// Tokens the whole cache holds: the longest prompt plus completion accepted.
    pub fn capacity(&self) -> usize {
        self.cache.num_blocks() * self.cache.block_size()
    }

    /// Rejects a request longer than [`Engine::capacity`] (vLLM's 400 for a context longer
    /// than `max_model_len`).
    pub fn check_fits(&self, prompt: usize, completion: usize) -> Result<(), TooLong> {
        let requested = prompt.saturating_add(completion);
        let capacity = self.capacity();
        if requested > capacity {
            Err(TooLong {
                capacity,
                requested,
                prompt,
                completion,
            })
        } else {
            Ok(())
        }
    }

    /// Admits `seq` now if nobody waits and it fits, otherwise queues it.
    pub fn submit(&mut self, seq: Sequence) -> Result<Submitted, TooLong> {
        self.check_fits(seq.prompt_tokens, seq.new_tokens)?;
        let id = self.next_id;
        self.next_id += 1;
        if self.waiting.is_empty()
            && let Some(admission) = self.try_admit(id, &seq)
        {
            return Ok(Submitted::Running(admission));
        }
        self.waiting.push_back((id, seq));
        Ok(Submitted::Waiting(id))
    }

    /// Ends request `id`, running (its blocks are freed) or still waiting (it leaves the
    /// queue), then admits waiting requests in order while they fit; returns those.
    pub fn finish(&mut self, id: SeqId) -> Vec<Admission> {
        if let Some(allocation) = self.running.remove(&id) {
            self.cache.free(allocation);
        } else {
            self.waiting.retain(|(waiting, _)| *waiting != id);
        }
        let mut admitted = Vec::new();
        while let Some((id, seq)) = self.waiting.pop_front() {
            let Some(admission) = self.try_admit(id, &seq) else {
                self.waiting.push_front((id, seq));
                break;
            };
            admitted.push(admission);
        }
        admitted
    }

    /// Gauges and counters for the metrics.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            running: self.running.len(),
            waiting: self.waiting.len(),
            kv_usage: self.cache.used_blocks() as f64 / self.cache.num_blocks() as f64,
            prefix_queries: self.prefix_queries,
            prefix_hits: self.prefix_hits,
        }
    }

    fn try_admit(&mut self, id: SeqId, seq: &Sequence) -> Option<Admission> {
        if self.running.len() >= self.max_num_seqs {
            return None;
        }
        let block_size = self.cache.block_size();
        let total = (seq.prompt_tokens + seq.new_tokens)
            .div_ceil(block_size)
            .max(1);
        let lookup = seq.prompt_tokens.saturating_sub(1) / block_size;
        let allocation = self.cache.allocate(&seq.block_hashes, lookup, total)?;
        let cached_tokens = allocation.cached_blocks * block_size;
        self.running.insert(id, allocation);
        self.prefix_queries += seq.prompt_tokens as u64;
        self.prefix_hits += cached_tokens as u64;
        Some(Admission {
            id,
            prompt_tokens: seq.prompt_tokens,
            cached_tokens,
        })
    }
}

/// Time from admission to the first token: `base` plus `per_token` for every prompt token
/// the prefill computes.
pub fn prefill_delay(base: Duration, per_token: Duration, uncached_tokens: usize) -> Duration {
    let tokens = u32::try_from(uncached_tokens).unwrap_or(u32::MAX);
    base.saturating_add(per_token.saturating_mul(tokens))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{block_hashes, model_seed, text_tokens};

    fn engine(num_blocks: usize, max_num_seqs: usize) -> Engine {
        Engine::new(EngineConfig {
            num_blocks,
            block_size: 16,
            max_num_seqs,
        })
    }

    fn seq(text: &str, new_tokens: usize) -> Sequence {
        let tokens = text_tokens(text);
        Sequence {
            prompt_tokens: tokens.len(),
            block_hashes: block_hashes(model_seed(None), &tokens, 16),
            new_tokens,
        }
    }

    fn running(submitted: Submitted) -> Admission {
        match submitted {
            Submitted::Running(admission) => admission,
            Submitted::Waiting(id) => panic!("request {id} waits"),
        }
    }

    #[test]
    fn repeated_prompt_hits_its_full_blocks() {
        let prompt = "x".repeat(200); // 50 tokens: 3 full blocks
        let mut engine = engine(64, 8);
        let first = running(engine.submit(seq(&prompt, 6)).expect("fits"));
        assert_eq!(first.cached_tokens, 0);
        assert_eq!(first.uncached_tokens(), 50);
        engine.finish(first.id);
        let second = running(engine.submit(seq(&prompt, 6)).expect("fits"));
        assert_eq!(second.cached_tokens, 48);
        assert_eq!(second.uncached_tokens(), 2);
        let snapshot = engine.snapshot();
        assert_eq!((snapshot.prefix_queries, snapshot.prefix_hits), (100, 48));
        assert!((snapshot.hit_rate() - 0.48).abs() < 1e-9);
    }

    #[test]
    fn hit_leaves_the_last_prompt_token_to_compute() {
        let cases = [
            (64, 48), // 16 tokens × 4 blocks, exactly: the last block is recomputed
            (65, 64),
            (15, 0),
            (1, 0),
        ];
        for (prompt_tokens, want) in cases {
            let prompt = "abcd".repeat(prompt_tokens);
            let mut engine = engine(64, 8);
            let first = running(engine.submit(seq(&prompt, 0)).expect("fits"));
            engine.finish(first.id);
            let second = running(engine.submit(seq(&prompt, 0)).expect("fits"));
            assert_eq!(second.cached_tokens, want, "{prompt_tokens} tokens");
        }
    }

    #[test]
    fn max_num_seqs_queues_fifo_and_finish_admits_in_order() {
        let mut engine = engine(64, 1);
        let a = running(engine.submit(seq("a", 4)).expect("fits"));
        let b = engine.submit(seq("b", 4)).expect("fits");
        let c = engine.submit(seq("c", 4)).expect("fits");
        assert_eq!((b, c), (Submitted::Waiting(1), Submitted::Waiting(2)));
        assert_eq!(
            (engine.snapshot().running, engine.snapshot().waiting),
            (1, 2)
        );

        let admitted: Vec<SeqId> = engine.finish(a.id).iter().map(|x| x.id).collect();
        assert_eq!(admitted, [1]);
        assert_eq!(
            (engine.snapshot().running, engine.snapshot().waiting),
            (1, 1)
        );
        // A waiting request that goes away leaves the queue and admits nobody else.
        assert!(engine.finish(2).is_empty());
        assert_eq!(
            (engine.snapshot().running, engine.snapshot().waiting),
            (1, 0)
        );
        assert!(engine.finish(1).is_empty());
        assert_eq!(
            engine.snapshot(),
            Snapshot {
                prefix_queries: 2,
                ..Snapshot::default()
            }
        );
    }

    #[test]
    fn insufficient_blocks_make_requests_wait_and_usage_counts_held_blocks() {
        // 4 blocks of 16: a 40-token answer needs 3 blocks, a second one must wait.
        let mut engine = engine(4, 8);
        let a = running(engine.submit(seq("p", 40)).expect("fits"));
        assert_eq!(engine.snapshot().kv_usage, 0.75);
        assert_eq!(
            engine.submit(seq("q", 40)).expect("fits"),
            Submitted::Waiting(1)
        );
        // FIFO: a small request behind the waiting one waits too.
        assert_eq!(
            engine.submit(seq("r", 1)).expect("fits"),
            Submitted::Waiting(2)
        );
        let admitted: Vec<SeqId> = engine.finish(a.id).iter().map(|x| x.id).collect();
        assert_eq!(admitted, [1, 2]);
        assert_eq!(engine.snapshot().kv_usage, 1.0);
        engine.finish(1);
        engine.finish(2);
        assert_eq!(
            engine.snapshot().kv_usage,
            0.0,
            "cached blocks count as free"
        );
    }

    #[test]
    fn longer_than_the_cache_is_rejected() {
        let engine = engine(4, 8);
        assert_eq!(engine.capacity(), 64);
        assert_eq!(engine.check_fits(60, 4), Ok(()));
        let error = engine.check_fits(60, 5).expect_err("65 > 64");
        assert_eq!(
            error.to_string(),
            "This model's maximum context length is 64 tokens. However, you requested 65 \
             tokens (60 in the messages, 5 in the completion). Please reduce the length of the \
             messages or completion."
        );
    }

    #[test]
    fn prefill_delay_adds_per_token_time_of_uncached_tokens() {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        let cases = [
            (ms(5), Duration::ZERO, 100, ms(5)),
            (ms(5), us(20), 100, ms(7)),
            (Duration::ZERO, us(20), 2, us(40)),
            (ms(1), us(20), 0, ms(1)),
        ];
        for (base, per_token, uncached, want) in cases {
            assert_eq!(prefill_delay(base, per_token, uncached), want);
        }
    }
}
