//! `gpu-usage` (score): the emptier the engine's KV cache, the better: `(1 - usage) × 100`.
//! An engine whose usage is unknown scores the mean of the known ones (50 when none is
//! known): neither idle nor full.
//!
//! The usage is the engine's last reading, up to a scrape interval old, brought up to now
//! with what this router did since: each request it has in flight beyond those it had when
//! the reading was taken adds the KV share of one running request at that reading
//! (`usage / running`), each fewer takes it away. Kthena scores the reading as it is, so for
//! a whole interval the engine that read emptiest takes every request the other scores do
//! not outweigh; with no shared prefixes that herding made time to first token at p99 a
//! quarter worse than least-request alone (`bench/schedule.py`). Usage from other clients
//! stays as read; an engine that ran nothing at the reading is scored as read.

use super::super::framework::{fmax, fmin};
use super::super::{Candidate, RequestContext, ScorePlugin};

/// The plugin.
#[derive(Debug, Default)]
pub struct GpuUsage;

/// Score of an endpoint whose usage is unknown when no candidate's is known.
pub const UNKNOWN_SCORE: f64 = 50.0;

impl GpuUsage {
    /// The usage read, corrected by this router's change of requests in flight since.
    pub fn usage_now(p: &Candidate<'_>) -> Option<f64> {
        let e = p.engine;
        let read = e.kv_cache_usage?;
        Some(match (e.running, e.in_flight_at_reading) {
            (Some(running), Some(then)) if running >= 1.0 => {
                let per_request = read / running;
                fmin(
                    fmax(read + (p.in_flight as f64 - then) * per_request, 0.0),
                    1.0,
                )
            }
            _ => read,
        })
    }
}

impl ScorePlugin for GpuUsage {
    fn name(&self) -> &'static str {
        "gpu-usage"
    }

    fn score(
        &self,
        _: &RequestContext<'_>,
        pods: &[Candidate<'_>],
        alive: &[bool],
        out: &mut [f64],
    ) {
        let score = |u: f64| (1.0 - fmin(fmax(u, 0.0), 1.0)) * 100.0;
        // One pass over every candidate (the framework ignores the others' entries), the
        // mean over the alive ones; a second only when an alive one is unknown.
        let (mut sum, mut n, mut unknown_alive) = (0.0, 0usize, false);
        for ((p, a), o) in pods.iter().zip(alive).zip(out.iter_mut()) {
            match Self::usage_now(p) {
                Some(u) => {
                    *o = score(u);
                    if *a {
                        sum += *o;
                        n += 1;
                    }
                }
                None => unknown_alive |= *a,
            }
        }
        if !unknown_alive {
            return;
        }
        let unknown = if n == 0 {
            UNKNOWN_SCORE
        } else {
            sum / n as f64
        };
        for ((p, a), o) in pods.iter().zip(alive).zip(out.iter_mut()) {
            if *a && p.engine.kv_cache_usage.is_none() {
                *o = unknown;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{pods, pods_with, score};
    use super::*;
    use crate::scheduler::EngineState;

    #[test]
    fn emptier_caches_score_higher_and_unknown_is_the_middle() {
        let states = [0.0, 0.25, 1.0, 1.5].map(|u| EngineState {
            kv_cache_usage: Some(u),
            ..EngineState::UNKNOWN
        });
        let mut all: Vec<EngineState> = states.to_vec();
        all.push(EngineState::UNKNOWN);
        assert_eq!(
            score(&GpuUsage, &pods(&all)),
            [100.0, 75.0, 0.0, 0.0, 43.75]
        );
        assert_eq!(score(&GpuUsage, &pods(&[EngineState::UNKNOWN])), [50.0]);
    }

    #[test]
    fn requests_sent_since_the_reading_count_at_the_share_of_one_running_request() {
        // Read at 0.4 with 4 running (0.1 each) while this router had 2 in flight.
        let read = EngineState {
            kv_cache_usage: Some(0.4),
            running: Some(4.0),
            in_flight_at_reading: Some(2.0),
            ..EngineState::UNKNOWN
        };
        let states = [read.clone(), read.clone(), read.clone(), read];
        let p = pods_with(&states, &[2, 5, 0, 40]);
        let now: Vec<f64> = p.iter().map(|c| GpuUsage::usage_now(c).unwrap()).collect();
        assert_eq!(
            now.iter().map(|u| (u * 100.0).round()).collect::<Vec<_>>(),
            [40.0, 70.0, 20.0, 100.0]
        );
        // Nothing running at the reading, or the in-flight count then unknown: as read.
        let idle = EngineState {
            kv_cache_usage: Some(0.3),
            running: Some(0.0),
            in_flight_at_reading: Some(0.0),
            ..EngineState::UNKNOWN
        };
        let unknown_then = EngineState {
            in_flight_at_reading: None,
            ..states[0].clone()
        };
        let states = [idle, unknown_then];
        let p = pods_with(&states, &[3, 9]);
        assert_eq!(GpuUsage::usage_now(&p[0]), Some(0.3));
        assert_eq!(GpuUsage::usage_now(&p[1]), Some(0.4));
    }
}
