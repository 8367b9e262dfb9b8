//! `random` (score): a uniform score in `0..100` per endpoint and request. Kthena drops it
//! when other scores are enabled; so does [`super::build`].

use super::super::{Candidate, RequestContext, ScorePlugin, random};

/// The plugin.
#[derive(Debug, Default)]
pub struct Random;

impl ScorePlugin for Random {
    fn name(&self) -> &'static str {
        "random"
    }

    fn score(
        &self,
        _: &RequestContext<'_>,
        pods: &[Candidate<'_>],
        alive: &[bool],
        out: &mut [f64],
    ) {
        for i in (0..pods.len()).filter(|i| alive[*i]) {
            out[i] = random::next_f64() * 100.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{pods, score};
    use super::*;
    use crate::scheduler::EngineState;

    #[test]
    fn scores_are_within_range_and_vary() {
        let p = pods(&[EngineState::UNKNOWN, EngineState::UNKNOWN]);
        let runs: Vec<Vec<f64>> = (0..20).map(|_| score(&Random, &p)).collect();
        assert!(runs.iter().flatten().all(|s| (0.0..100.0).contains(s)));
        assert!(runs.iter().any(|r| r != &runs[0]));
    }
}
