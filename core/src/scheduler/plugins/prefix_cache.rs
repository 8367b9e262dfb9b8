//! `prefix-cache` (score + post-pick hook): endpoints recently sent the longest prefix of
//! this prompt score highest, since their engine's KV cache likely still holds it.
//!
//! The prompt is split into blocks of `blockSizeToHash` bytes, at most `maxBlocksToMatch` of
//! them, hashed in a chain seeded by the target model; each endpoint remembers the last
//! `maxHashCacheSize` blocks it was sent ([`PrefixIndex`]). The `topKMatches` endpoints with
//! the longest matches (and any tied with the last) score `matched / blocks × 100`, the rest 0.
//! A prompt is recorded once its endpoint answered successfully.

use std::sync::Arc;

use super::super::{Candidate, PostPickHook, PrefixIndex, RequestContext, ScorePlugin};
use crate::FieldErrors;
use crate::scheduler::PluginArgs;

/// The plugin.
#[derive(Debug)]
pub struct PrefixCache {
    /// Bytes per block.
    pub block_size: usize,
    /// Blocks hashed per prompt at most.
    pub max_blocks: usize,
    /// Endpoints scored by their match.
    pub top_k: usize,
    /// Where prompts went.
    pub index: Arc<PrefixIndex>,
}

/// Args the plugin reads.
pub const ARGS: &[&str] = &[
    "blockSizeToHash",
    "maxBlocksToMatch",
    "maxHashCacheSize",
    "topKMatches",
];

/// Kthena's defaults.
pub const DEFAULT_BLOCK_SIZE: usize = 64;
/// Kthena's default `maxBlocksToMatch`.
pub const DEFAULT_MAX_BLOCKS: usize = 128;
/// Kthena's default `maxHashCacheSize`.
pub const DEFAULT_CACHE_SIZE: usize = 50_000;
/// Kthena's default `topKMatches`.
pub const DEFAULT_TOP_K: usize = 5;

impl PrefixCache {
    /// From `args`, reusing `carried` when its capacity is the one asked for.
    pub fn from_args(
        args: &PluginArgs,
        carried: Option<&Arc<PrefixIndex>>,
        errors: &mut FieldErrors,
    ) -> Self {
        let block_size = args.count("blockSizeToHash", DEFAULT_BLOCK_SIZE, 1, errors);
        let max_blocks = args.count("maxBlocksToMatch", DEFAULT_MAX_BLOCKS, 1, errors);
        let capacity = args.count("maxHashCacheSize", DEFAULT_CACHE_SIZE, 1, errors);
        let top_k = args.count("topKMatches", DEFAULT_TOP_K, 1, errors);
        let index = match carried {
            Some(i) if i.capacity() == capacity => i.clone(),
            _ => Arc::new(PrefixIndex::new(capacity)),
        };
        Self {
            block_size,
            max_blocks,
            top_k,
            index,
        }
    }

    fn hashes<'c>(&self, ctx: &'c RequestContext<'_>) -> &'c [u64] {
        ctx.block_hashes(self.block_size, self.max_blocks)
    }
}

impl ScorePlugin for PrefixCache {
    fn name(&self) -> &'static str {
        "prefix-cache"
    }

    fn score(
        &self,
        ctx: &RequestContext<'_>,
        pods: &[Candidate<'_>],
        alive: &[bool],
        out: &mut [f64],
    ) {
        let hashes = self.hashes(ctx);
        if hashes.is_empty() {
            out.iter_mut().for_each(|o| *o = 0.0);
            return;
        }
        let mut matched: smallvec::SmallVec<[u32; 64]> =
            smallvec::SmallVec::from_elem(0, pods.len());
        self.index.matches(hashes, pods, self.top_k, &mut matched);
        let (mut longest, blocks) = (0, hashes.len() as f64);
        for ((m, a), o) in matched.iter().zip(alive).zip(out.iter_mut()) {
            *o = f64::from(*m) * 100.0 / blocks;
            if *a {
                longest = longest.max(*m);
            }
        }
        ctx.prefix_match
            .set(Some(f64::from(longest) / hashes.len() as f64));
    }
}

impl PostPickHook for PrefixCache {
    fn served(&self, ctx: &RequestContext<'_>, key: u64) {
        self.index.record(key, self.hashes(ctx), ctx.label);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::pods;
    use super::*;
    use crate::scheduler::{ArgValue, EngineState};

    fn plugin(block: usize, top_k: usize) -> PrefixCache {
        PrefixCache {
            block_size: block,
            max_blocks: 128,
            top_k,
            index: Arc::new(PrefixIndex::new(1_000)),
        }
    }

    #[test]
    fn the_endpoint_sent_the_prompt_before_scores_its_share_of_matched_blocks() {
        let p = plugin(4, 5);
        let candidates = pods(&[
            EngineState::UNKNOWN,
            EngineState::UNKNOWN,
            EngineState::UNKNOWN,
        ]);
        let first = RequestContext::new("m", "m", b"aaaabbbbcccc");
        p.served(&first, candidates[1].key);
        let again = RequestContext::new("m", "m", b"aaaabbbbdddd");
        let mut out = vec![0.0; 3];
        assert_eq!(again.prefix_match_ratio(), None, "not scored yet");
        p.score(&again, &candidates, &[true; 3], &mut out);
        assert_eq!(out, [0.0, 200.0 / 3.0, 0.0]);
        assert_eq!(again.prefix_match_ratio(), Some(2.0 / 3.0));
        // Another model never matches.
        let other = RequestContext::new("m", "n", b"aaaabbbbcccc");
        let mut out = vec![0.0; 3];
        p.score(&other, &candidates, &[true; 3], &mut out);
        assert_eq!(out, [0.0; 3]);
        assert_eq!(
            other.prefix_match_ratio(),
            Some(0.0),
            "a miss is a ratio of 0"
        );
        // An empty prompt scores nothing.
        let empty = RequestContext::new("m", "m", b"");
        p.score(&empty, &candidates, &[true; 3], &mut out);
        assert_eq!(out, [0.0; 3]);
    }

    #[test]
    fn args_are_read_and_a_reload_with_the_same_capacity_keeps_the_index() {
        let args = PluginArgs {
            path: "a".into(),
            values: [
                ("blockSizeToHash".to_owned(), ArgValue::Number(16.0)),
                ("maxHashCacheSize".to_owned(), ArgValue::Number(10.0)),
            ]
            .into(),
        };
        let mut errors = FieldErrors::new();
        let p = PrefixCache::from_args(&args, None, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(
            (p.block_size, p.max_blocks, p.index.capacity(), p.top_k),
            (16, 128, 10, 5)
        );
        let again = PrefixCache::from_args(&args, Some(&p.index), &mut errors);
        assert!(Arc::ptr_eq(&again.index, &p.index));
        let bigger = PluginArgs::default();
        let fresh = PrefixCache::from_args(&bigger, Some(&p.index), &mut errors);
        assert!(!Arc::ptr_eq(&fresh.index, &p.index));
        let bad = PluginArgs {
            path: "a".into(),
            values: [("blockSizeToHash".to_owned(), ArgValue::Number(0.0))].into(),
        };
        PrefixCache::from_args(&bad, None, &mut errors);
        assert_eq!(
            errors.to_string(),
            "a.blockSizeToHash: must be a whole number of at least 1, got 0"
        );
    }
}
