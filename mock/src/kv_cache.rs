//! A paged KV cache with prefix caching, after vLLM v1's block pool.
//!
//! The cache has a fixed number of blocks. A block is *held* while at least one running
//! request references it, otherwise *free*. A free block may still be *cached*: it keeps the
//! hash of the prompt block it holds, and a later request with the same prefix pins it again
//! instead of computing it. Free blocks form one LRU queue; allocation takes the least
//! recently freed block, evicting its cached content. A request's blocks are freed tail first,
//! so the end of a prompt is evicted before its beginning (as vLLM does).

use std::collections::{BTreeMap, HashMap};

use crate::tokens::BlockHash;

/// Index of a block in the cache.
pub type BlockId = u32;

#[derive(Debug, Clone, Copy, Default)]
struct Block {
    /// Running requests holding the block.
    refs: u32,
    /// Set while the block is findable by this hash.
    hash: Option<BlockHash>,
    /// Position in the free queue, while free.
    stamp: u64,
}

/// The blocks one request holds, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Every block, cached prefix first.
    pub blocks: Vec<BlockId>,
    /// How many leading blocks were found in the prefix cache.
    pub cached_blocks: usize,
}

/// The block pool: reference counts, hash lookup and the LRU free queue.
#[derive(Debug)]
pub struct KvCache {
    block_size: usize,
    blocks: Vec<Block>,
    /// Free blocks by stamp: the first entry is evicted first.
    free: BTreeMap<u64, BlockId>,
    /// Cached blocks by hash (held or free).
    cached: HashMap<BlockHash, BlockId>,
    tick: u64,
}

impl KvCache {
    /// `num_blocks` free blocks of `block_size` tokens each (both at least 1).
    pub fn new(num_blocks: usize, block_size: usize) -> Self {
        let num_blocks = num_blocks.clamp(1, BlockId::MAX as usize);
        let mut cache = Self {
            block_size: block_size.max(1),
            blocks: vec![Block::default(); num_blocks],
            free: BTreeMap::new(),
            cached: HashMap::new(),
            tick: 0,
        };
        for id in 0..num_blocks {
            cache.push_free(id as BlockId);
        }
        cache
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks in the cache.
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Blocks held by running requests (cached-but-free blocks are not counted).
    pub fn used_blocks(&self) -> usize {
        self.blocks.len() - self.free.len()
    }

    /// How many leading `hashes` are cached, held or free.
    pub fn cached_prefix(&self, hashes: &[BlockHash]) -> usize {
        hashes
            .iter()
            .take_while(|hash| self.cached.contains_key(hash))
            .count()
    }

    /// Allocates `total` blocks for a request whose full prompt blocks have `hashes`: the
    /// longest cached prefix among the first `lookup` hashes is pinned, the rest are taken from
    /// the free queue (evicting what they cached), and the new blocks that hold a prompt block
    /// become findable by its hash. `None`, changing nothing, when too few blocks are free.
    pub fn allocate(
        &mut self,
        hashes: &[BlockHash],
        lookup: usize,
        total: usize,
    ) -> Option<Allocation> {
        let lookup = lookup.min(hashes.len()).min(total);
        let hits: Vec<BlockId> = hashes[..lookup]
            .iter()
            .map_while(|hash| self.cached.get(hash).copied())
            .collect();
        let free_hits = hits
            .iter()
            .filter(|&&id| self.blocks[id as usize].refs == 0)
            .count();
        let new = total - hits.len();
        if new + free_hits > self.free.len() {
            return None;
        }
        for &id in &hits {
            let block = &mut self.blocks[id as usize];
            if block.refs == 0 {
                self.free.remove(&block.stamp);
            }
            block.refs += 1;
        }
        let mut blocks = hits;
        let cached_blocks = blocks.len();
        for index in cached_blocks..total {
            let (_, id) = self
                .free
                .pop_first()
                .expect("enough free blocks were counted above");
            let evicted = self.blocks[id as usize].hash.take();
            if let Some(hash) = evicted
                && self.cached.get(&hash) == Some(&id)
            {
                self.cached.remove(&hash);
            }
            let block = &mut self.blocks[id as usize];
            block.refs = 1;
            if let Some(&hash) = hashes.get(index)
                && !self.cached.contains_key(&hash)
            {
                // A block another request computed already stays the one found by the hash;
                // this one is an uncached duplicate, as in vLLM.
                self.cached.insert(hash, id);
                block.hash = Some(hash);
            }
            blocks.push(id);
        }
        Some(Allocation {
            blocks,
            cached_blocks,
        })
    }

    /// Returns a request's blocks, tail first; blocks nobody else holds become free (and,
    /// when cached, stay findable until evicted).
    pub fn free(&mut self, allocation: Allocation) {
        for &id in allocation.blocks.iter().rev() {
            let block = &mut self.blocks[id as usize];
            block.refs = block.refs.saturating_sub(1);
            if block.refs == 0 {
                self.push_free(id);
            }
        }
    }

    fn push_free(&mut self, id: BlockId) {
        let stamp = self.tick;
        self.tick += 1;
        self.blocks[id as usize].stamp = stamp;
        self.free.insert(stamp, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(blocks: usize) -> KvCache {
        KvCache::new(blocks, 4)
    }

    #[test]
    fn fresh_allocation_takes_free_blocks_and_frees_them() {
        let mut kv = cache(4);
        let a = kv.allocate(&[10, 11], 2, 3).expect("fits");
        assert_eq!(a.cached_blocks, 0);
        assert_eq!(a.blocks.len(), 3);
        assert_eq!(kv.used_blocks(), 3);
        assert_eq!(
            kv.cached_prefix(&[10, 11, 12]),
            2,
            "prompt blocks are cached"
        );
        kv.free(a);
        assert_eq!(kv.used_blocks(), 0, "cached but free blocks count as free");
        assert_eq!(kv.cached_prefix(&[10, 11]), 2, "and stay findable");
    }

    #[test]
    fn shared_prefix_is_pinned_not_copied() {
        let mut kv = cache(8);
        let a = kv.allocate(&[1, 2, 3], 3, 4).expect("fits");
        let b = kv.allocate(&[1, 2, 9], 3, 4).expect("fits");
        assert_eq!(b.cached_blocks, 2);
        assert_eq!(b.blocks[..2], a.blocks[..2]);
        assert_eq!(kv.used_blocks(), 6, "4 + 2 new");
        kv.free(a);
        assert_eq!(kv.used_blocks(), 4, "the shared blocks are still held by b");
        kv.free(b);
        assert_eq!(kv.used_blocks(), 0);
    }

    #[test]
    fn lookup_limit_and_first_miss_end_the_hit() {
        let cases: [(&[BlockHash], usize, usize); 4] = [
            (&[1, 2, 3], 3, 3),
            (&[1, 2, 3], 2, 2), // the lookup limit (prompt length - 1) cuts the hit
            (&[1, 7, 3], 3, 1), // a chain stops at its first miss
            (&[7, 2, 3], 3, 0),
        ];
        for (hashes, lookup, want) in cases {
            let mut kv = cache(8);
            let first = kv.allocate(&[1, 2, 3], 3, 3).expect("fits");
            kv.free(first);
            let got = kv.allocate(hashes, lookup, 3).expect("fits");
            assert_eq!(got.cached_blocks, want, "{hashes:?} lookup {lookup}");
        }
    }

    #[test]
    fn allocation_evicts_least_recently_freed_and_tails_first() {
        let mut kv = cache(4);
        let a = kv.allocate(&[1, 2], 2, 2).expect("fits");
        let b = kv.allocate(&[5, 6], 2, 2).expect("fits");
        kv.free(a); // free queue: 2, 1
        kv.free(b); // free queue: 2, 1, 6, 5
        let c = kv.allocate(&[], 0, 1).expect("fits");
        assert_eq!(kv.cached_prefix(&[1]), 1, "a's head survives");
        assert_eq!(kv.cached_prefix(&[1, 2]), 1, "a's tail was evicted first");
        let d = kv.allocate(&[], 0, 1).expect("fits");
        assert_eq!(kv.cached_prefix(&[1]), 0, "then a's head");
        assert_eq!(
            kv.cached_prefix(&[5, 6]),
            2,
            "b, freed later, is still cached"
        );
        kv.free(c);
        kv.free(d);
    }

    #[test]
    fn too_few_free_blocks_changes_nothing_and_counts_free_hits() {
        let mut kv = cache(4);
        let a = kv.allocate(&[1, 2], 2, 2).expect("fits");
        kv.free(a);
        // The never-used blocks are older in the free queue than a's: they go first.
        let held = kv.allocate(&[], 0, 2).expect("fits");
        assert_eq!(kv.cached_prefix(&[1, 2]), 2);
        assert_eq!(kv.used_blocks(), 2);
        // Two free blocks left; a request needing 3 with no usable hit does not fit.
        assert_eq!(kv.allocate(&[8, 9], 2, 3), None);
        assert_eq!(kv.used_blocks(), 2, "a failed allocation pins nothing");
        kv.free(held);
        assert_eq!(kv.used_blocks(), 0);
    }

    #[test]
    fn free_hits_use_up_free_blocks_held_hits_do_not() {
        // 3 blocks; [1, 2] cached and free; a request with prefix [1, 2] needing 3 blocks
        // pins both cached blocks and takes the third: exactly fits.
        let mut kv = cache(3);
        let a = kv.allocate(&[1, 2], 2, 2).expect("fits");
        kv.free(a);
        let b = kv.allocate(&[1, 2], 2, 3).expect("2 hits + 1 new = 3 free");
        assert_eq!(b.cached_blocks, 2);
        assert_eq!(kv.used_blocks(), 3);
        // A second request sharing the held prefix needs only 1 new block: none is free.
        assert_eq!(kv.allocate(&[1, 2], 2, 3), None);
        kv.free(b);
        let c = kv.allocate(&[1, 2], 2, 3).expect("fits again");
        assert_eq!(c.cached_blocks, 2);
    }
}
