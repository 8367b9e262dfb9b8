//! The router's approximate copy of every engine's prefix cache: which endpoint has recently
//! been sent which prompt blocks.
//!
//! Blocks are named by chained hashes ([`RequestContext::block_hashes`]), so holding block
//! `i` means having seen the whole prefix up to it. Each endpoint keeps at most `capacity`
//! hashes, least recently used evicted first; a served prompt is recorded last block first,
//! so an endpoint's oldest blocks are the tails of old prompts and what it holds stays
//! closed under prefixes, as an engine's cache is. That makes "the longest prefix any
//! candidate holds" a binary search.
//!
//! Concurrency: the hash → holders map is split into shards, each behind its own lock taken
//! for one lookup at a time; each endpoint's LRU has its own lock. No lock is held across
//! endpoints, and a match only reads.
//!
//! [`RequestContext::block_hashes`]: super::RequestContext::block_hashes

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use smallvec::SmallVec;

use super::Candidate;

type FastMap<K, V> = foldhash::HashMap<K, V>;

const SHARDS: usize = 64;

/// Endpoints that hold one block.
type Holders = SmallVec<[u64; 4]>;

/// The prefix cache index shared by every request (see the module docs).
#[derive(Debug)]
pub struct PrefixIndex {
    shards: Box<[RwLock<FastMap<u64, Holders>>]>,
    pods: RwLock<FastMap<u64, Arc<Mutex<PodLru>>>>,
    capacity: usize,
    entries: AtomicUsize,
    evictions: AtomicU64,
    /// The model labels blocks were recorded under, with the evictions of each (Kthena's
    /// `kthena_router_prefix_cache_evictions_total{model}`); a block names its label by index.
    labels: RwLock<Vec<(Box<str>, AtomicU64)>>,
}

/// Labels kept apart at most; later ones share the last slot (labels are bounded model
/// names, so this is a guard, not a limit anyone meets).
const MAX_LABELS: usize = 1_024;

/// One endpoint's blocks: hash -> (last use, label), plus the uses in order (stale ones
/// skipped).
#[derive(Debug, Default)]
struct PodLru {
    last_use: FastMap<u64, (u64, u32)>,
    log: VecDeque<(u64, u64)>,
    clock: u64,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl PrefixIndex {
    /// An empty index keeping at most `capacity` blocks per endpoint.
    pub fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            pods: RwLock::default(),
            capacity: capacity.max(1),
            entries: AtomicUsize::new(0),
            evictions: AtomicU64::new(0),
            labels: RwLock::default(),
        }
    }

    /// Blocks kept per endpoint.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn shard(&self, hash: u64) -> &RwLock<FastMap<u64, Holders>> {
        // The hashes are xxh3 output: any bits are uniform.
        &self.shards[(hash >> 58) as usize % SHARDS]
    }

    /// For each of `pods` (sorted by key), how many leading blocks of `hashes` it holds,
    /// written to `out` (same order; 0 for no match) — exactly for the endpoints with the
    /// `top_k` longest matches and every endpoint tied with the last of them, 0 for the rest.
    /// Costs O(log blocks) lookups per distinct match length among the top `top_k`.
    pub fn matches(&self, hashes: &[u64], pods: &[Candidate<'_>], top_k: usize, out: &mut [u32]) {
        debug_assert!(
            pods.windows(2).all(|w| w[0].key < w[1].key),
            "sorted by key"
        );
        out.iter_mut().for_each(|o| *o = 0);
        if hashes.is_empty() || pods.is_empty() || !self.held_by_more(hashes[0], pods, 0) {
            return;
        }
        // Longest held block: the held set is closed under prefixes.
        let (mut lo, mut hi) = (0usize, hashes.len() - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.held_by_more(hashes[mid], pods, 0) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        // The holders of block `lo` match `lo + 1` blocks. Going towards the start of the
        // prompt the holder sets only grow (closure under prefixes), so the next endpoints to
        // add are at the last block held by more candidates than found so far: a binary
        // search per growth step, not a lookup per block.
        let mut found = self.mark(hashes[lo], lo, pods, out);
        let mut at = lo;
        while found < top_k.max(1) && found < pods.len() && at > 0 {
            if !self.held_by_more(hashes[0], pods, found) {
                break;
            }
            let (mut lo, mut hi) = (0usize, at - 1);
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if self.held_by_more(hashes[mid], pods, found) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            found += self.mark(hashes[lo], lo, pods, out);
            at = lo;
        }
    }

    /// True when more than `n` of `pods` (sorted by key) hold `hash`.
    fn held_by_more(&self, hash: u64, pods: &[Candidate<'_>], n: usize) -> bool {
        read(self.shard(hash)).get(&hash).is_some_and(|h| {
            let mut seen = 0;
            each_candidate(h, pods, |_| {
                seen += 1;
                seen <= n
            });
            seen > n
        })
    }

    /// Gives every candidate holding block `i` (of hash `hash`) and not matched yet a match of
    /// `i + 1` blocks; returns how many it gave.
    fn mark(&self, hash: u64, i: usize, pods: &[Candidate<'_>], out: &mut [u32]) -> usize {
        let mut added = 0;
        if let Some(holders) = read(self.shard(hash)).get(&hash) {
            each_candidate(holders, pods, |j| {
                if out[j] == 0 {
                    out[j] = i as u32 + 1;
                    added += 1;
                }
                true
            });
        }
        added
    }

    /// The index of `label` in the label table, added when new.
    fn label_id(&self, label: &str) -> u32 {
        if let Some(i) = read(&self.labels).iter().position(|(l, _)| &**l == label) {
            return i as u32;
        }
        let mut labels = write(&self.labels);
        if let Some(i) = labels.iter().position(|(l, _)| &**l == label) {
            return i as u32;
        }
        if labels.len() >= MAX_LABELS {
            return (labels.len() - 1) as u32;
        }
        labels.push((label.into(), AtomicU64::new(0)));
        (labels.len() - 1) as u32
    }

    /// Records that endpoint `key` was sent a prompt with block `hashes`, for the model
    /// labelled `label` (what its evictions are counted under).
    pub fn record(&self, key: u64, hashes: &[u64], label: &str) {
        if hashes.is_empty() {
            return;
        }
        let label = self.label_id(label);
        let lru = read(&self.pods).get(&key).cloned();
        let lru = match lru {
            Some(l) => l,
            None => write(&self.pods).entry(key).or_default().clone(),
        };
        let mut lru = lru.lock().unwrap_or_else(PoisonError::into_inner);
        // Last block first: the prefix is the most recently used, the tail goes first.
        for &h in hashes.iter().rev() {
            lru.clock += 1;
            let now = lru.clock;
            if lru.last_use.insert(h, (now, label)).is_none() {
                let mut shard = write(self.shard(h));
                let holders = shard.entry(h).or_default();
                // Kept sorted, to be merged with the sorted candidates.
                let at = holders.partition_point(|k| *k < key);
                holders.insert(at, key);
                self.entries.fetch_add(1, Ordering::Relaxed);
            }
            lru.log.push_back((h, now));
        }
        let mut evicted: SmallVec<[u32; 4]> = SmallVec::new();
        while lru.last_use.len() > self.capacity {
            let Some((h, t)) = lru.log.pop_front() else {
                break;
            };
            if let Some(&(used, label)) = lru.last_use.get(&h)
                && used == t
            {
                lru.last_use.remove(&h);
                self.unhold(h, key);
                evicted.push(label);
            }
        }
        if lru.log.len() > 2 * self.capacity + 64 {
            let PodLru { last_use, log, .. } = &mut *lru;
            log.retain(|(h, t)| last_use.get(h).is_some_and(|(u, _)| u == t));
        }
        drop(lru);
        if !evicted.is_empty() {
            self.evictions
                .fetch_add(evicted.len() as u64, Ordering::Relaxed);
            let labels = read(&self.labels);
            for l in evicted {
                labels[l as usize].1.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn unhold(&self, hash: u64, key: u64) {
        let mut shard = write(self.shard(hash));
        if let Some(holders) = shard.get_mut(&hash) {
            holders.retain(|k| *k != key);
            if holders.is_empty() {
                shard.remove(&hash);
            }
        }
        self.entries.fetch_sub(1, Ordering::Relaxed);
    }

    /// Drops everything recorded for endpoint `key` (it left its pool).
    pub fn forget(&self, key: u64) {
        let Some(lru) = write(&self.pods).remove(&key) else {
            return;
        };
        let lru = lru.lock().unwrap_or_else(PoisonError::into_inner);
        for h in lru.last_use.keys() {
            self.unhold(*h, key);
        }
    }

    /// Blocks held, summed over endpoints.
    pub fn entries(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// Blocks evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Blocks evicted so far, per model label (labels in the order first recorded).
    pub fn evictions_by_label(&self) -> Vec<(String, u64)> {
        read(&self.labels)
            .iter()
            .map(|(l, n)| (l.to_string(), n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Blocks endpoint `key` holds.
    pub fn entries_of(&self, key: u64) -> usize {
        read(&self.pods).get(&key).map_or(0, |l| {
            l.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .last_use
                .len()
        })
    }

    /// Heap bytes the index holds, estimated from its tables' capacities.
    pub fn approx_bytes(&self) -> usize {
        let slot = |k: usize, v: usize| k + v + 1;
        let mut bytes = 0;
        for s in self.shards.iter() {
            let s = read(s);
            bytes += s.capacity() * slot(8, size_of::<Holders>());
            bytes += s
                .values()
                .filter(|h| h.spilled())
                .map(|h| h.capacity() * 8)
                .sum::<usize>();
        }
        for l in read(&self.pods).values() {
            let l = l.lock().unwrap_or_else(PoisonError::into_inner);
            bytes += l.last_use.capacity() * slot(8, 16) + l.log.capacity() * 16;
        }
        bytes
    }
}

/// Calls `f` with the index of every candidate among `holders` (both sorted by key), in key
/// order, until `f` returns false: a merge when the lists are of like size, binary searches
/// when the holders are few.
fn each_candidate(holders: &[u64], pods: &[Candidate<'_>], mut f: impl FnMut(usize) -> bool) {
    if holders.len() * 8 < pods.len() {
        for k in holders {
            if let Ok(j) = pods.binary_search_by_key(k, |c| c.key)
                && !f(j)
            {
                return;
            }
        }
        return;
    }
    let (mut a, mut b) = (0, 0);
    while a < holders.len() && b < pods.len() {
        match holders[a].cmp(&pods[b].key) {
            std::cmp::Ordering::Less => a += 1,
            std::cmp::Ordering::Greater => b += 1,
            std::cmp::Ordering::Equal => {
                if !f(b) {
                    return;
                }
                a += 1;
                b += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::EngineState;
    use super::*;

    fn pods(keys: &[u64]) -> Vec<Candidate<'static>> {
        keys.iter()
            .map(|&key| Candidate {
                key,
                in_flight: 0,
                ejected: false,
                engine: &EngineState::UNKNOWN,
            })
            .collect()
    }

    fn matches(index: &PrefixIndex, hashes: &[u64], keys: &[u64], k: usize) -> Vec<u32> {
        let mut out = vec![9; keys.len()];
        index.matches(hashes, &pods(keys), k, &mut out);
        out
    }

    #[test]
    fn each_endpoint_matches_the_longest_prefix_it_was_sent() {
        let index = PrefixIndex::new(100);
        index.record(1, &[10, 11, 12, 13], "m");
        index.record(2, &[10, 11, 20], "m");
        index.record(3, &[30], "m");
        assert_eq!(
            matches(&index, &[10, 11, 12, 13, 14], &[1, 2, 3, 4], 5),
            [4, 2, 0, 0]
        );
        assert_eq!(matches(&index, &[10, 11, 20], &[1, 2, 3], 5), [2, 3, 0]);
        assert_eq!(matches(&index, &[99, 10], &[1, 2, 3], 5), [0, 0, 0]);
        // Endpoints that are not candidates do not count.
        assert_eq!(matches(&index, &[10, 11, 12, 13], &[2, 3], 5), [2, 0]);
        assert_eq!(matches(&index, &[], &[1], 5), [0]);
    }

    #[test]
    fn only_the_top_k_matches_and_their_ties_are_scored() {
        let index = PrefixIndex::new(100);
        index.record(1, &[1, 2, 3], "m");
        index.record(2, &[1, 2], "m");
        index.record(3, &[1, 2], "m");
        index.record(4, &[1], "m");
        assert_eq!(matches(&index, &[1, 2, 3], &[1, 2, 3, 4], 1), [3, 0, 0, 0]);
        assert_eq!(matches(&index, &[1, 2, 3], &[1, 2, 3, 4], 2), [3, 2, 2, 0]);
        assert_eq!(matches(&index, &[1, 2, 3], &[1, 2, 3, 4], 5), [3, 2, 2, 1]);
    }

    #[test]
    fn matches_equal_a_brute_force_longest_prefix_per_endpoint_with_top_k_ties() {
        // Prompts are paths in a small tree of blocks, so endpoints share prefixes of every
        // length; capacities small enough that evictions happen.
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for round in 0..40 {
            let index = PrefixIndex::new(6 + round % 20);
            let prompt = |next: &mut dyn FnMut() -> u64| -> Vec<u64> {
                let len = 1 + next() % 12;
                let mut h = 0u64;
                (0..len)
                    .map(|_| {
                        h = h * 4 + 1 + next() % 3;
                        h
                    })
                    .collect()
            };
            for _ in 0..30 {
                let p = prompt(&mut next);
                index.record(next() % 9, &p, "m");
            }
            let keys: Vec<u64> = (0..9).collect();
            for _ in 0..20 {
                let q = prompt(&mut next);
                let top_k = 1 + (next() % 6) as usize;
                let got = matches(&index, &q, &keys, top_k);
                let longest: Vec<u32> = keys
                    .iter()
                    .map(|&k| {
                        let lru = read(&index.pods).get(&k).cloned();
                        lru.map_or(0, |l| {
                            let l = l.lock().expect("lock");
                            q.iter().take_while(|h| l.last_use.contains_key(h)).count() as u32
                        })
                    })
                    .collect();
                let mut sorted: Vec<u32> = longest.iter().copied().filter(|m| *m > 0).collect();
                sorted.sort_unstable_by(|a, b| b.cmp(a));
                let cut = sorted
                    .get(top_k - 1)
                    .or(sorted.last())
                    .copied()
                    .unwrap_or(1);
                let want: Vec<u32> = longest
                    .iter()
                    .map(|&m| if m >= cut { m } else { 0 })
                    .collect();
                assert_eq!(got, want, "round {round}, query {q:?}, top {top_k}");
            }
        }
    }

    #[test]
    fn the_least_recently_used_blocks_go_first_and_prefixes_outlive_their_tails() {
        let index = PrefixIndex::new(4);
        index.record(1, &[1, 2, 3], "m");
        index.record(1, &[7, 8], "m");
        // 5 blocks for 4 places: the oldest use is the tail of the first prompt.
        assert_eq!(index.entries_of(1), 4);
        assert_eq!(index.evictions(), 1);
        assert_eq!(matches(&index, &[1, 2, 3], &[1], 5), [2]);
        // Using a block again makes it recent.
        index.record(1, &[1], "m");
        index.record(1, &[9], "m");
        assert_eq!(matches(&index, &[1, 2], &[1], 5), [1], "2 was the oldest");
        assert_eq!(matches(&index, &[7, 8], &[1], 5), [2]);
        assert_eq!(index.entries(), 4);
    }

    #[test]
    fn evictions_are_counted_under_the_model_that_recorded_the_evicted_block() {
        let index = PrefixIndex::new(3);
        index.record(1, &[1, 2], "a");
        index.record(1, &[7, 8], "b");
        // 4 blocks for 3 places: the oldest is block 2, recorded for "a".
        assert_eq!(
            index.evictions_by_label(),
            [("a".into(), 1), ("b".into(), 0)]
        );
        index.record(1, &[9, 10], "a");
        // Next oldest: 1 (a), then 8 (b).
        assert_eq!(
            index.evictions_by_label(),
            [("a".into(), 2), ("b".into(), 1)]
        );
        assert_eq!(index.evictions(), 3);
        // Forgetting an endpoint is not an eviction.
        index.forget(1);
        assert_eq!(index.evictions(), 3);
    }

    #[test]
    fn a_forgotten_endpoint_holds_nothing_and_the_index_empties() {
        let index = PrefixIndex::new(10);
        index.record(1, &[1, 2], "m");
        index.record(2, &[1], "m");
        index.forget(1);
        assert_eq!(matches(&index, &[1, 2], &[1, 2], 5), [0, 1]);
        index.forget(2);
        index.forget(3);
        assert_eq!(index.entries(), 0);
        assert!(index.shards.iter().all(|s| read(s).is_empty()));
    }

    #[test]
    fn memory_stays_bounded_under_endless_distinct_prompts() {
        let index = PrefixIndex::new(50);
        for n in 0..2_000u64 {
            index.record(n % 3, &[n * 7, n * 7 + 1, n * 7 + 2], "m");
        }
        assert_eq!(index.entries(), 150);
        let before = index.approx_bytes();
        for n in 2_000..20_000u64 {
            index.record(n % 3, &[n * 7, n * 7 + 1, n * 7 + 2], "m");
        }
        assert_eq!(index.entries(), 150);
        assert!(
            index.approx_bytes() <= before * 2,
            "{} > 2 × {before}",
            index.approx_bytes()
        );
    }

    #[test]
    fn concurrent_records_and_matches_agree_with_the_counts() {
        let index = PrefixIndex::new(1_000);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let index = &index;
                s.spawn(move || {
                    for n in 0..500u64 {
                        index.record(t, &[n, n + 1_000_000], "m");
                        let mut out = [0; 4];
                        index.matches(&[n], &pods(&[0, 1, 2, 3]), 5, &mut out);
                        assert!(out[t as usize] >= 1);
                    }
                });
            }
        });
        assert_eq!(index.entries(), 4 * 1_000);
    }
}
