//! The request as the scheduler sees it.

use std::cell::{Cell, OnceCell};
use std::fmt;

/// Header lookup for plugins that look at headers (names in lowercase).
pub trait Headers {
    /// The first value of header `name`.
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for () {
    fn header(&self, _: &str) -> Option<&str> {
        None
    }
}

impl Headers for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Headers for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// One request: what it asks for and a cheap handle on its prompt. Built by the router for
/// every scheduled request (borrowing the request body, nothing copied) and by `explain`.
pub struct RequestContext<'a> {
    /// The model the client named.
    pub model: &'a str,
    /// The model sent upstream: the ModelServer's `spec.model`, the LoRA adapter, or the
    /// client's model.
    pub target_model: &'a str,
    /// `target_model` is a LoRA adapter, not the base model.
    pub lora: bool,
    /// [`model_hash`](super::candidate::model_hash) of `target_model`.
    pub target_hash: u64,
    /// The prompt as the request carries it (the raw JSON of `messages` or `prompt`): two
    /// requests sharing a prefix of it share a prefix of the engine's KV cache.
    pub prompt: &'a [u8],
    /// The request headers.
    pub headers: &'a dyn Headers,
    /// InferenceObjective `priority`, when one applies.
    pub priority: Option<i32>,
    /// The bounded model label of metrics (the plugin duration histogram).
    pub label: &'a str,
    /// Report the chosen endpoint's score per plugin in the [`Decision`](super::Decision).
    pub want_scores: bool,
    /// Prompt block hashes, computed once by the first plugin that needs them and kept for the
    /// post-pick hook.
    pub(crate) hashes: OnceCell<(usize, Vec<u64>)>,
    /// The fraction of the prompt's hashed blocks the best-matching candidate holds, set by
    /// `prefix-cache` when it scores (Kthena's `kthena_router_prefix_cache_match_ratio`).
    pub(crate) prefix_match: Cell<Option<f64>>,
}

impl<'a> RequestContext<'a> {
    /// A request for `model`, sent upstream as `target_model`, with `prompt`.
    pub fn new(model: &'a str, target_model: &'a str, prompt: &'a [u8]) -> Self {
        Self {
            model,
            target_model,
            lora: false,
            target_hash: super::candidate::model_hash(target_model),
            prompt,
            headers: &(),
            priority: None,
            label: model,
            want_scores: false,
            hashes: OnceCell::new(),
            prefix_match: Cell::new(None),
        }
    }

    /// What `prefix-cache` found for this request: the fraction (0..=1) of the prompt's
    /// hashed blocks that the best-matching candidate was sent before (0 on a miss); `None`
    /// when it did not score (not configured, or no prompt).
    pub fn prefix_match_ratio(&self) -> Option<f64> {
        self.prefix_match.get()
    }

    /// The chained hashes of the prompt's first `max_blocks` blocks of `block_size` bytes
    /// (a last partial block included), seeded by the target model: block `i`'s hash names
    /// the whole prefix up to it. Computed once per request.
    ///
    /// Each block is hashed on its own (xxh3, seeded by the model), then joined to the hash
    /// of the prefix before it by [`chain`]: the blocks' hashes do not wait for each other,
    /// so the processor overlaps them, and the chain adds one multiplication per block.
    pub fn block_hashes(&self, block_size: usize, max_blocks: usize) -> &[u64] {
        let (size, hashes) = self.hashes.get_or_init(|| {
            let seed = xxhash_rust::xxh3::xxh3_64(self.target_model.as_bytes());
            let mut out =
                Vec::with_capacity(self.prompt.len().div_ceil(block_size).min(max_blocks));
            let mut prev = seed;
            for block in self.prompt.chunks(block_size.max(1)).take(max_blocks) {
                prev = chain(prev, xxhash_rust::xxh3::xxh3_64_with_seed(block, seed));
                out.push(prev);
            }
            (block_size, out)
        });
        debug_assert_eq!(*size, block_size, "one block size per request");
        hashes
    }
}

/// The hash of a prefix `prev` extended by a block whose own hash is `block`: the folded
/// 128-bit product of `prev ^ block` and an odd constant. Two prefixes collide only when
/// their `prev ^ block` do (the product is injective), and no value of either side
/// cancels the other.
fn chain(prev: u64, block: u64) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let m = u128::from(prev ^ block) * u128::from(K);
    (m as u64) ^ ((m >> 64) as u64)
}

impl fmt::Debug for RequestContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("model", &self.model)
            .field("target_model", &self.target_model)
            .field("lora", &self.lora)
            .field("prompt_bytes", &self.prompt.len())
            .field("priority", &self.priority)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_hashes_chain_so_a_shared_prefix_shares_hashes_and_a_model_changes_all() {
        let a = RequestContext::new("m", "m", b"0123456789abcdefXYZ");
        let b = RequestContext::new("m", "m", b"0123456789abcdefQRS");
        let other_model = RequestContext::new("m", "n", b"0123456789abcdefXYZ");
        let (ha, hb) = (a.block_hashes(8, 128), b.block_hashes(8, 128));
        assert_eq!(ha.len(), 3);
        assert_eq!(ha[..2], hb[..2]);
        assert_ne!(ha[2], hb[2]);
        assert!(
            other_model
                .block_hashes(8, 128)
                .iter()
                .all(|h| !ha.contains(h))
        );
        // The same block after a different prefix hashes differently.
        let c = RequestContext::new("m", "m", b"01234567XXXXXXXX89abcdef");
        assert_ne!(c.block_hashes(8, 128)[1], ha[1]);
        assert_eq!(
            RequestContext::new("m", "m", b"x".repeat(100).as_slice())
                .block_hashes(8, 4)
                .len(),
            4
        );
        assert!(
            RequestContext::new("m", "m", b"")
                .block_hashes(8, 4)
                .is_empty()
        );
    }

    #[test]
    fn headers_are_found_case_insensitively() {
        let h: &[(&str, &str)] = &[("X-Session-Id", "s1")];
        assert_eq!(h.header("x-session-id"), Some("s1"));
        assert_eq!(().header("x"), None);
    }
}
