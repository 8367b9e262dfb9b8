//! `gpu-usage` (score): the emptier the engine's KV cache, the better: `(1 - usage) × 100`.
//! An engine whose usage is unknown scores the mean of the known ones (50 when none is
//! known): neither idle nor full.

use super::super::{Candidate, RequestContext, ScorePlugin};

/// The plugin.
#[derive(Debug, Default)]
pub struct GpuUsage;

/// Score of an endpoint whose usage is unknown when no candidate's is known.
pub const UNKNOWN_SCORE: f64 = 50.0;

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
        let score = |u: f64| (1.0 - u.clamp(0.0, 1.0)) * 100.0;
        let (mut sum, mut n) = (0.0, 0usize);
        for (i, p) in pods.iter().enumerate().filter(|(i, _)| alive[*i]) {
            if let Some(u) = p.engine.kv_cache_usage {
                out[i] = score(u);
                sum += out[i];
                n += 1;
            }
        }
        let unknown = if n == 0 {
            UNKNOWN_SCORE
        } else {
            sum / n as f64
        };
        for (i, p) in pods.iter().enumerate().filter(|(i, _)| alive[*i]) {
            if p.engine.kv_cache_usage.is_none() {
                out[i] = unknown;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{pods, score};
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
}
