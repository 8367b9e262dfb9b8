//! Envoy's retry budget: the retries in flight to one pool may be at most a share of the
//! requests in flight to it, so a pool whose every endpoint fails is not sent `1 + attempts`
//! times the traffic its clients send. A floor keeps retries possible at low concurrency.
//!
//! In: the pool's requests and retries in flight when a retry is wanted. Out: whether it may
//! go, and the pause before it (the route's `retryInterval`, jittered so that requests failed
//! together do not retry together).

use std::time::Duration;

/// How many retries may be in flight to a pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// Retries in flight as a percentage of the requests in flight (Envoy: 20).
    pub percent: f64,
    /// Retries in flight always allowed, whatever the share (Envoy: 3).
    pub min_concurrency: u32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            percent: 20.0,
            min_concurrency: 3,
        }
    }
}

impl RetryBudget {
    /// True when one more retry may go while `retries` retries and `requests` requests
    /// (retries included) are in flight to the pool.
    pub fn allows(&self, requests: usize, retries: usize) -> bool {
        let share = (self.percent / 100.0 * requests as f64).floor() as usize;
        retries < share.max(self.min_concurrency as usize)
    }
}

/// The pause before a retry: `interval` scaled by a factor in `[0.5, 1.5)` drawn from
/// `unit` (uniform in `[0, 1)`), so the mean stays `interval`.
pub fn jittered(interval: Duration, unit: f64) -> Duration {
    interval.mul_f64(0.5 + unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_the_requests_with_a_floor() {
        let b = RetryBudget::default();
        // (requests in flight, retries in flight, allowed)
        for (requests, retries, allowed) in [
            (1, 0, true),
            (1, 2, true),
            (1, 3, false),
            (10, 2, true),
            (10, 3, false),
            (100, 19, true),
            (100, 20, false),
            (1000, 199, true),
            (1000, 200, false),
        ] {
            assert_eq!(
                b.allows(requests, retries),
                allowed,
                "{requests} / {retries}"
            );
        }
        let none = RetryBudget {
            percent: 0.0,
            min_concurrency: 0,
        };
        assert!(!none.allows(1000, 0), "a zero budget allows no retry");
        let all = RetryBudget {
            percent: 100.0,
            min_concurrency: 0,
        };
        assert!(all.allows(10, 9) && !all.allows(10, 10));
    }

    #[test]
    fn the_pause_is_jittered_around_the_interval() {
        let i = Duration::from_millis(100);
        assert_eq!(jittered(i, 0.0), Duration::from_millis(50));
        assert_eq!(jittered(i, 0.5), i);
        assert!(jittered(i, 0.999) < Duration::from_millis(150));
        assert_eq!(jittered(Duration::ZERO, 0.7), Duration::ZERO);
    }
}
