//! Outlier ejection, as Envoy's outlier detection does it (Kthena has none): an endpoint that
//! failed `consecutive_failures` times in a row (connection refused or reset, timeout, 5xx)
//! is skipped by the scheduler for a while; each new ejection lasts longer
//! (`base_ejection × times ejected`, at most `max_ejection`), and no ejection happens while
//! `max_ejected_percent` of the pool is out already, so ejection alone never empties a pool.
//! An ejected endpoint returns at expiry, or earlier when a probe (the metrics scrape)
//! reaches an endpoint that was ejected for connection failures.
//!
//! The rules are pure; the router keeps the counters in per-endpoint atomics.

use std::time::Duration;

/// How outliers are detected and ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierPolicy {
    /// Failures in a row that eject an endpoint; 0 turns ejection off.
    pub consecutive_failures: u32,
    /// Length of a first ejection.
    pub base_ejection: Duration,
    /// Longest ejection.
    pub max_ejection: Duration,
    /// Most of a pool (percent of its endpoints) ejected at once.
    pub max_ejected_percent: u32,
}

impl Default for OutlierPolicy {
    /// Envoy's defaults for the counts (5 failures, 30 s base, 300 s max); at most half of a
    /// pool out (Envoy's 10 % would never eject one of three Pods).
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
        }
    }
}

impl OutlierPolicy {
    /// True when an endpoint that has just failed `failures` times in a row is ejected, with
    /// `ejected` of the pool's `total` endpoints out already.
    pub fn ejects(&self, failures: u32, ejected: usize, total: usize) -> bool {
        self.consecutive_failures > 0
            && failures >= self.consecutive_failures
            && (ejected + 1) * 100 <= total * self.max_ejected_percent as usize
    }

    /// How long the `times`-th ejection (1 for the first) lasts.
    pub fn ejection_time(&self, times: u32) -> Duration {
        self.base_ejection
            .saturating_mul(times.max(1))
            .min(self.max_ejection)
    }

    /// The ejection count to use after an endpoint has been healthy for `healthy_for` since
    /// its last ejection ended: the multiplier decays by one per base ejection time.
    pub fn decayed(&self, times: u32, healthy_for: Duration) -> u32 {
        if self.base_ejection.is_zero() {
            return 0;
        }
        let steps = healthy_for.as_millis() / self.base_ejection.as_millis().max(1);
        times.saturating_sub(u32::try_from(steps).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_failures_eject_within_the_pool_share() {
        let p = OutlierPolicy::default();
        let cases = [
            // failures, ejected, total, ejects
            (4, 0, 3, false),
            (5, 0, 3, true),
            (9, 1, 3, false),
            (5, 1, 4, true),
            (5, 2, 4, false),
            (5, 0, 1, false),
            (5, 0, 2, true),
        ];
        for (failures, ejected, total, want) in cases {
            assert_eq!(
                p.ejects(failures, ejected, total),
                want,
                "{failures} {ejected}/{total}"
            );
        }
        let off = OutlierPolicy {
            consecutive_failures: 0,
            ..p
        };
        assert!(!off.ejects(100, 0, 10));
    }

    #[test]
    fn each_ejection_lasts_longer_up_to_the_maximum_and_health_decays_the_count() {
        let p = OutlierPolicy::default();
        assert_eq!(p.ejection_time(1), Duration::from_secs(30));
        assert_eq!(p.ejection_time(3), Duration::from_secs(90));
        assert_eq!(p.ejection_time(100), Duration::from_secs(300));
        assert_eq!(p.ejection_time(0), Duration::from_secs(30));
        assert_eq!(p.decayed(3, Duration::from_secs(29)), 3);
        assert_eq!(p.decayed(3, Duration::from_secs(61)), 1);
        assert_eq!(p.decayed(3, Duration::from_secs(1_000)), 0);
    }
}
