//! Exact weighted choice: smooth weighted round-robin, shared lock-free between threads.
//!
//! Kthena picks targets with `rand.Intn`, so a 70/30 split is only 70/30 on average. Here the
//! picker precomputes one cycle of smooth weighted round-robin (nginx's algorithm) over the
//! weights divided by their greatest common divisor, and walks it with an atomic cursor: every
//! run of `cycle_len()` consecutive picks, and so every multiple of it (70/30: every 10, every
//! 100, every 1,000), contains each target exactly in proportion to its weight, and the targets
//! are interleaved rather than bunched. A weight of 0 is never picked.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Longest precomputed cycle; larger weight sums (HTTPRoute weights go up to 1,000,000) run
/// the same algorithm step by step under a lock instead of allocating the whole cycle.
const MAX_SCHEDULE: usize = 4096;

/// Picks indexes in proportion to fixed weights. `pick` can be called from any number of
/// threads through a shared reference; with small weight sums it is wait-free.
#[derive(Debug)]
pub struct WeightedPicker {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    /// One full cycle of picks, walked by an atomic cursor.
    Schedule {
        schedule: Box<[u16]>,
        cursor: AtomicUsize,
    },
    /// Reduced weights, their sum, and the running SWRR state.
    Stepwise {
        weights: Box<[i64]>,
        total: i64,
        current: Mutex<Vec<i64>>,
    },
}

impl WeightedPicker {
    /// A picker over `weights` (index `i` is picked `weights[i] / gcd` times per cycle).
    ///
    /// # Panics
    /// When there are more than `u16::MAX` weights; routes have at most 16.
    pub fn new(weights: &[u32]) -> Self {
        assert!(weights.len() <= usize::from(u16::MAX), "too many weights");
        let g = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
        let reduced: Vec<i64> = weights
            .iter()
            .map(|w| w.checked_div(g).map_or(0, i64::from))
            .collect();
        let total: i64 = reduced.iter().sum();
        if usize::try_from(total).is_ok_and(|t| t > MAX_SCHEDULE) {
            let current = Mutex::new(vec![0; reduced.len()]);
            return Self {
                inner: Inner::Stepwise {
                    weights: reduced.into(),
                    total,
                    current,
                },
            };
        }
        let mut current = vec![0i64; reduced.len()];
        let mut schedule = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            schedule.push(
                u16::try_from(step(&reduced, total, &mut current))
                    .expect("index bounded by the assert above"),
            );
        }
        Self {
            inner: Inner::Schedule {
                schedule: schedule.into_boxed_slice(),
                cursor: AtomicUsize::new(0),
            },
        }
    }

    /// The next index, or `None` when every weight is 0.
    #[inline]
    pub fn pick(&self) -> Option<usize> {
        match &self.inner {
            Inner::Schedule { schedule, cursor } => {
                if schedule.is_empty() {
                    return None;
                }
                let n = cursor.fetch_add(1, Ordering::Relaxed);
                Some(usize::from(schedule[n % schedule.len()]))
            }
            Inner::Stepwise {
                weights,
                total,
                current,
            } => {
                let mut current = current
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                Some(step(weights, *total, &mut current))
            }
        }
    }

    /// Number of picks after which the sequence repeats; 0 when every weight is 0.
    pub fn cycle_len(&self) -> usize {
        match &self.inner {
            Inner::Schedule { schedule, .. } => schedule.len(),
            Inner::Stepwise { total, .. } => usize::try_from(*total).unwrap_or(usize::MAX),
        }
    }
}

/// One step of smooth weighted round-robin: every entry gains its weight, the largest is
/// picked and pays back the total. Strictly greater keeps the lowest index on ties.
fn step(weights: &[i64], total: i64, current: &mut [i64]) -> usize {
    let mut best = 0;
    for (i, w) in weights.iter().enumerate() {
        current[i] += w;
        if current[i] > current[best] {
            best = i;
        }
    }
    current[best] -= total;
    best
}

impl Clone for WeightedPicker {
    /// A picker with the same weights, starting at the beginning of the cycle.
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            Inner::Schedule { schedule, .. } => Inner::Schedule {
                schedule: schedule.clone(),
                cursor: AtomicUsize::new(0),
            },
            Inner::Stepwise { weights, total, .. } => Inner::Stepwise {
                weights: weights.clone(),
                total: *total,
                current: Mutex::new(vec![0; weights.len()]),
            },
        };
        Self { inner }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(p: &WeightedPicker, n: usize, len: usize) -> Vec<usize> {
        let mut c = vec![0; len];
        for _ in 0..n {
            c[p.pick().unwrap()] += 1;
        }
        c
    }

    #[test]
    fn splits_are_exact_over_every_window() {
        let cases: &[(&[u32], usize, &[usize])] = &[
            (&[70, 30], 100, &[70, 30]),
            (&[70, 30], 1000, &[700, 300]),
            (&[50, 30], 80, &[50, 30]),
            (&[1, 1, 1], 3, &[1, 1, 1]),
            (&[100, 0, 100], 10, &[5, 0, 5]),
            (&[33, 67], 100, &[33, 67]),
        ];
        for (weights, n, want) in cases {
            let p = WeightedPicker::new(weights);
            // Start at an arbitrary phase: any window of n picks must hold the exact split.
            for _ in 0..7 {
                p.pick();
            }
            assert_eq!(&counts(&p, *n, weights.len()), want, "weights {weights:?}");
        }
    }

    #[test]
    fn picks_are_interleaved_not_bunched() {
        let p = WeightedPicker::new(&[70, 30]);
        let seq: Vec<usize> = (0..10).map(|_| p.pick().unwrap()).collect();
        // The 30% target never comes twice in a row and the 70% target never 4 times in a row.
        assert!(seq.windows(2).all(|w| !(w[0] == 1 && w[1] == 1)), "{seq:?}");
        assert!(seq.windows(4).all(|w| w.contains(&1)), "{seq:?}");
    }

    #[test]
    fn all_zero_weights_pick_nothing() {
        assert_eq!(WeightedPicker::new(&[0, 0]).pick(), None);
        assert_eq!(WeightedPicker::new(&[]).pick(), None);
    }

    #[test]
    fn cycle_is_reduced_by_the_gcd() {
        assert_eq!(WeightedPicker::new(&[70, 30]).cycle_len(), 10);
        assert_eq!(WeightedPicker::new(&[100]).cycle_len(), 1);
        assert_eq!(WeightedPicker::new(&[97, 3]).cycle_len(), 100);
    }

    #[test]
    fn large_weight_sums_stay_exact_without_a_huge_schedule() {
        let p = WeightedPicker::new(&[999_999, 1]);
        assert_eq!(p.cycle_len(), 1_000_000);
        let p = WeightedPicker::new(&[6_000, 3_000, 1_000]);
        // gcd 1000 reduces it to a 10-pick schedule.
        assert_eq!(p.cycle_len(), 10);
        let p = WeightedPicker::new(&[5_001, 4_999]);
        assert_eq!(counts(&p, 10_000, 2), vec![5_001, 4_999]);
    }

    #[test]
    fn shared_between_threads_the_split_stays_exact() {
        let p = WeightedPicker::new(&[70, 30]);
        let per_thread: Vec<Vec<usize>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| counts(&p, 250, 2))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total: Vec<usize> = (0..2)
            .map(|i| per_thread.iter().map(|c| c[i]).sum())
            .collect();
        assert_eq!(total, vec![700, 300]);
    }
}
