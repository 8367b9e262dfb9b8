//! `least-request` (filter and score): engines with the shortest queues.
//!
//! Filter: drops an endpoint whose engine has `maxWaitingRequests` (default 10; 0 means the
//! default, as in Kthena) or more requests waiting; an endpoint whose queue is unknown passes.
//!
//! Score, Kthena's load: requests in flight from this router + 100 × those of them the engine
//! is taken not to run (`max(in flight - running, 0)`, running unknown counting as 0);
//! `score = (max load - load) / max load × 100`. Two differences from Kthena, both because
//! the engine's figures are up to one scrape interval old while the in-flight count is not:
//! - "running" is the engine's batch as far as the router knows, not the last reading: the
//!   most it has been seen running, once it has been seen with requests waiting; before that
//!   its batch was never reached and nothing sent to it counts as waiting. A burst sent since
//!   the last scrape is not "waiting" on an engine that has run that many at once before.
//!   With the last reading, every endpoint that got one request more than it ran a second ago
//!   looked queued (load ≥ 101) and lost the score entirely, which sent requests away from
//!   the engine that held their prefix — at start, when every engine read 0 running, for
//!   every second request. An engine never read is Kthena's: running counts as 0.
//! - The scale is at least [`LEAST_SCALE`] (25): while nothing queues, endpoints differ by 4
//!   points per request in flight (a request that runs at once costs the others little), not
//!   by the whole 100 that Kthena's max-only scale gives one request of difference between two
//!   nearly idle engines — so the prefix score keeps a prompt on the engine that holds it
//!   until that engine is about 25 requests busier than another, or queues. Once the busiest
//!   has more load the scale is Kthena's. The scale never changes the order of endpoints,
//!   only this plugin's weight against the other scores; the batch rule above does change
//!   the order, where the last reading is stale.
//!
//! Every endpoint scores 100 when nothing is in flight.

use super::super::framework::fmax;
use super::super::{Candidate, FilterPlugin, RequestContext, ScorePlugin};
use crate::FieldErrors;
use crate::scheduler::PluginArgs;

/// The plugin.
#[derive(Debug)]
pub struct LeastRequest {
    /// Engines with this many requests waiting or more are filtered out.
    pub max_waiting: usize,
}

/// Args the plugin reads.
pub const ARGS: &[&str] = &["maxWaitingRequests"];

/// The load one queued request adds (Kthena's factor).
pub const QUEUED: f64 = 100.0;

/// The least load the score is scaled by: while the busiest endpoint has fewer requests in
/// flight than this and none queued, each request costs `100 / LEAST_SCALE` points.
/// Measured with `bench/schedule.py` at 10, 25, 50 and 100 (shared system prompts that fit
/// every engine, fit only the pool, nearly fill the pool; and none): 10 let the stale scores
/// spread prefixes (p99 ×1.47 instead of ×1.66 against least-request with 32 prompts); 50
/// and 100 let them pile a second's worth of requests on one engine before a queue showed
/// (p99 1.8–5.2 s against 0.17 s with 4 prompts at 90 % of capacity).
pub const LEAST_SCALE: f64 = 25.0;

/// Kthena's default `maxWaitingRequests`.
pub const DEFAULT_MAX_WAITING: usize = 10;

impl LeastRequest {
    /// From `args`.
    pub fn from_args(args: &PluginArgs, errors: &mut FieldErrors) -> Self {
        Self {
            max_waiting: match args.count("maxWaitingRequests", DEFAULT_MAX_WAITING, 0, errors) {
                0 => DEFAULT_MAX_WAITING,
                n => n,
            },
        }
    }

    /// The load the score ranks by.
    pub fn load(p: &Candidate<'_>) -> f64 {
        let in_flight = p.in_flight as f64;
        let e = p.engine;
        let queued = match e.running {
            // Never read: Kthena's, running counts as 0.
            None => in_flight,
            // Never seen queueing: its batch was never reached, so nothing sent waits.
            Some(_) if !e.queued_seen => 0.0,
            Some(running) => fmax(
                in_flight - fmax(running, e.peak_running.unwrap_or(0.0)),
                0.0,
            ),
        };
        in_flight + QUEUED * queued
    }
}

impl FilterPlugin for LeastRequest {
    fn name(&self) -> &'static str {
        "least-request"
    }

    fn filter(&self, _: &RequestContext<'_>, pods: &[Candidate<'_>], keep: &mut [bool]) {
        for (p, k) in pods.iter().zip(keep.iter_mut()) {
            if p.engine
                .waiting
                .is_some_and(|w| w >= self.max_waiting as f64)
            {
                *k = false;
            }
        }
    }

    fn reason(&self, _: &RequestContext<'_>, pod: &Candidate<'_>) -> String {
        format!(
            "{} requests waiting, the limit is {}",
            pod.engine.waiting.unwrap_or(0.0),
            self.max_waiting
        )
    }
}

impl ScorePlugin for LeastRequest {
    fn name(&self) -> &'static str {
        "least-request"
    }

    fn score(
        &self,
        _: &RequestContext<'_>,
        pods: &[Candidate<'_>],
        alive: &[bool],
        out: &mut [f64],
    ) {
        // One pass for the loads (kept in `out`) and their maximum, one to scale them.
        // Every candidate's load (the framework ignores the others' entries), the scale from
        // the alive ones; the second pass has no branch.
        let mut max = 0.0f64;
        for ((p, a), o) in pods.iter().zip(alive).zip(out.iter_mut()) {
            *o = Self::load(p);
            if *a {
                max = fmax(*o, max);
            }
        }
        let max = max.max(LEAST_SCALE);
        let scale = 100.0 / max;
        for o in out.iter_mut() {
            *o = (max - *o) * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{filter, pods_with, score};
    use super::*;
    use crate::scheduler::EngineState;

    fn engine(running: Option<f64>, waiting: Option<f64>) -> EngineState {
        EngineState {
            running,
            waiting,
            ..EngineState::UNKNOWN
        }
    }

    #[test]
    fn engines_with_a_long_queue_are_filtered_out() {
        let states = [
            engine(Some(1.0), Some(9.0)),
            engine(Some(1.0), Some(10.0)),
            engine(None, None),
        ];
        let p = pods_with(&states, &[0, 0, 0]);
        let plugin = LeastRequest { max_waiting: 10 };
        let ctx = RequestContext::new("m", "m", b"");
        assert_eq!(filter(&plugin, &ctx, &p), [true, false, true]);
        assert_eq!(
            FilterPlugin::reason(&plugin, &ctx, &p[1]),
            "10 requests waiting, the limit is 10"
        );
    }

    #[test]
    fn kthenas_load_counts_requests_the_engine_is_not_running_a_hundred_times() {
        let plugin = LeastRequest { max_waiting: 10 };
        // 2 in flight, both running; 1 in flight; 3 in flight, 1 not running; nothing.
        let queued_before = |running| EngineState {
            queued_seen: true,
            ..engine(Some(running), Some(0.0))
        };
        let states = [
            queued_before(2.0),
            queued_before(1.0),
            queued_before(2.0),
            engine(None, None),
        ];
        let p = pods_with(&states, &[2, 1, 3, 0]);
        let loads: Vec<f64> = p.iter().map(LeastRequest::load).collect();
        assert_eq!(loads, [2.0, 1.0, 103.0, 0.0]);
        let s = score(&plugin, &p);
        assert_eq!(s[3], 100.0);
        assert_eq!(s[2], 0.0);
        assert!(s[1] > s[0] && s[0] > s[2]);
        // Unknown running counts as 0: every request in flight is queued.
        let unknown = pods_with(&[EngineState::UNKNOWN, EngineState::UNKNOWN], &[1, 4]);
        assert_eq!(score(&plugin, &unknown), [75.0, 0.0]);
        let idle = pods_with(&[EngineState::UNKNOWN, EngineState::UNKNOWN], &[0, 0]);
        assert_eq!(score(&plugin, &idle), [100.0, 100.0]);
    }

    #[test]
    fn an_engine_that_ran_that_many_before_is_not_taken_as_queueing() {
        // Ran 1 at the last scrape but 4 at once before: 3 in flight all run.
        let seen = EngineState {
            running: Some(1.0),
            waiting: Some(0.0),
            peak_running: Some(4.0),
            queued_seen: true,
            ..EngineState::UNKNOWN
        };
        let never_queued = EngineState {
            queued_seen: false,
            ..seen.clone()
        };
        let states = [seen.clone(), seen, never_queued];
        let p = pods_with(&states, &[3, 5, 9]);
        let loads: Vec<f64> = p.iter().map(LeastRequest::load).collect();
        assert_eq!(
            loads,
            [3.0, 105.0, 9.0],
            "a batch never reached queues nothing"
        );
    }

    #[test]
    fn while_nothing_queues_a_request_in_flight_costs_four_points() {
        let plugin = LeastRequest { max_waiting: 10 };
        let batch = EngineState {
            running: Some(0.0),
            peak_running: Some(8.0),
            queued_seen: true,
            ..EngineState::UNKNOWN
        };
        let states = [batch.clone(), batch.clone(), batch];
        assert_eq!(
            score(&plugin, &pods_with(&states, &[0, 1, 3])),
            [100.0, 96.0, 88.0],
            "scaled by LEAST_SCALE, not by the busiest endpoint's 3"
        );
        // Once one queues, the scale is Kthena's: the busiest scores 0.
        let s = score(&plugin, &pods_with(&states, &[0, 1, 10]));
        assert_eq!(s[2], 0.0);
        assert!(s[0] == 100.0 && s[1] > 99.0);
        let s = score(&plugin, &pods_with(&states, &[0, 2, 8]));
        assert_eq!(s, [100.0, 92.0, 68.0]);
        // Busier than the least scale, nothing queued: Kthena's scale again.
        let many = EngineState {
            peak_running: Some(64.0),
            ..states[0].clone()
        };
        let s = score(&plugin, &pods_with(&[many.clone(), many], &[10, 50]));
        assert_eq!(s, [80.0, 0.0]);
    }

    #[test]
    fn zero_max_waiting_means_the_default_and_a_negative_one_is_an_error() {
        use crate::scheduler::ArgValue;
        for (v, want, ok) in [(0.0, 10, true), (3.0, 3, true), (-1.0, 10, false)] {
            let args = PluginArgs {
                path: "a".into(),
                values: [("maxWaitingRequests".to_owned(), ArgValue::Number(v))].into(),
            };
            let mut errors = FieldErrors::new();
            assert_eq!(
                LeastRequest::from_args(&args, &mut errors).max_waiting,
                want
            );
            assert_eq!(errors.is_empty(), ok);
        }
    }
}
