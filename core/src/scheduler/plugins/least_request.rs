//! `least-request` (filter and score): engines with the shortest queues.
//!
//! Filter: drops an endpoint whose engine has `maxWaitingRequests` (default 10; 0 means the
//! default, as in Kthena) or more requests waiting; an endpoint whose queue is unknown passes.
//! Score, Kthena's formula: load = requests in flight from this router + 100 × those of them
//! the engine is not running (`max(in flight - running, 0)`, running unknown counting as 0);
//! `score = (max load - load) / max load × 100`, every endpoint 100 when nothing is in flight.

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
        in_flight + 100.0 * (in_flight - p.engine.running.unwrap_or(0.0)).max(0.0)
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
        let mut max = 0.0f64;
        for ((p, a), o) in pods.iter().zip(alive).zip(out.iter_mut()) {
            if *a {
                *o = Self::load(p);
                max = max.max(*o);
            }
        }
        if max <= 0.0 {
            for (o, a) in out.iter_mut().zip(alive) {
                if *a {
                    *o = 100.0;
                }
            }
            return;
        }
        let scale = 100.0 / max;
        for (o, a) in out.iter_mut().zip(alive) {
            if *a {
                *o = (max - *o) * scale;
            }
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
        let states = [
            engine(Some(2.0), Some(0.0)),
            engine(Some(1.0), Some(0.0)),
            engine(Some(2.0), Some(0.0)),
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
