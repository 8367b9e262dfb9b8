//! `least-latency` (score): engines that answered fastest over the last scrape interval.
//! Time to first token and time per output token are each scored relative to the fastest
//! candidate that reports them (`100 × fastest / this`: the fastest 100, one twice as slow
//! 50; Kthena's min-max would give the slowest 0 however close it is) and blended:
//! `TTFTTPOTWeightFactor × ttft + (1 - factor) × tpot`. A latency that is unknown scores the
//! mean of the known ones (Kthena: 50): an engine nobody has measured yet is neither
//! preferred nor starved — with one measured engine it ties with it and gets measured too.

use super::super::{Candidate, RequestContext, ScorePlugin};
use crate::FieldErrors;
use crate::scheduler::PluginArgs;

/// The plugin.
#[derive(Debug)]
pub struct LeastLatency {
    /// Weight of time to first token against time per output token, 0..=1.
    pub ttft_weight: f64,
}

/// Args the plugin reads.
pub const ARGS: &[&str] = &["TTFTTPOTWeightFactor"];

impl LeastLatency {
    /// From `args` (`TTFTTPOTWeightFactor`, default 0.5, within 0..=1).
    pub fn from_args(args: &PluginArgs, errors: &mut FieldErrors) -> Self {
        Self {
            ttft_weight: args.number("TTFTTPOTWeightFactor", 0.5, 0.0, 1.0, errors),
        }
    }
}

/// Score when no candidate has the figure.
const NOBODY_KNOWS: f64 = 50.0;

/// Seconds added to every latency before comparing them.
const EPSILON: f64 = 0.000_1;

fn normalised(
    values: impl Iterator<Item = Option<f64>> + Clone,
    alive: &[bool],
) -> impl Fn(Option<f64>) -> f64 {
    let known = values
        .zip(alive)
        .filter(|(_, a)| **a)
        .filter_map(|(v, _)| v);
    let lo = known.clone().fold(f64::INFINITY, f64::min).max(0.0);
    // Relative to the fastest: 100 × fastest / this (with 0.1 ms added to both, so a 0 is
    // not infinitely better). Kthena normalises min-max, which turns a 2 % difference between
    // equal engines into 0 versus 100 for a whole scrape interval and herds traffic.
    let score = move |v: f64| 100.0 * (lo + EPSILON) / (v.max(0.0) + EPSILON);
    let (sum, n) = known.fold((0.0, 0usize), |(s, n), v| (s + score(v), n + 1));
    let unknown = if n == 0 { NOBODY_KNOWS } else { sum / n as f64 };
    move |v| v.map_or(unknown, score)
}

impl ScorePlugin for LeastLatency {
    fn name(&self) -> &'static str {
        "least-latency"
    }

    fn score(
        &self,
        _: &RequestContext<'_>,
        pods: &[Candidate<'_>],
        alive: &[bool],
        out: &mut [f64],
    ) {
        let ttft = normalised(pods.iter().map(|p| p.engine.ttft), alive);
        let tpot = normalised(pods.iter().map(|p| p.engine.tpot), alive);
        for (i, p) in pods.iter().enumerate().filter(|(i, _)| alive[*i]) {
            out[i] = self.ttft_weight * ttft(p.engine.ttft)
                + (1.0 - self.ttft_weight) * tpot(p.engine.tpot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{pods, score};
    use super::*;
    use crate::scheduler::EngineState;

    fn state(ttft: Option<f64>, tpot: Option<f64>) -> EngineState {
        EngineState {
            ttft,
            tpot,
            ..EngineState::UNKNOWN
        }
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 0.2, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn the_fastest_scores_100_and_the_others_their_speed_relative_to_it() {
        let p = [
            state(Some(0.1), Some(0.02)),
            state(Some(0.3), Some(0.01)),
            state(Some(0.2), None),
            state(None, None),
        ];
        let ttft_only = LeastLatency { ttft_weight: 1.0 };
        // 100, a third, a half; unknown: the mean of those.
        close(&score(&ttft_only, &pods(&p)), &[100.0, 33.4, 50.0, 61.1]);
        let tpot_only = LeastLatency { ttft_weight: 0.0 };
        close(&score(&tpot_only, &pods(&p)), &[50.2, 100.0, 75.1, 75.1]);
        let half = LeastLatency { ttft_weight: 0.5 };
        close(&score(&half, &pods(&p)), &[75.1, 66.7, 62.6, 68.1]);
        // Two engines 2 % apart score 2 % apart (min-max would make it 100 against 0).
        let near = [
            state(Some(0.100), Some(0.005)),
            state(Some(0.102), Some(0.005)),
        ];
        close(&score(&half, &pods(&near)), &[100.0, 99.0]);
        // An unmeasured engine beside a lone measured one ties with it; nobody measured is
        // the middle.
        let lone = [state(Some(0.1), Some(0.01)), state(None, None)];
        close(&score(&half, &pods(&lone)), &[100.0, 100.0]);
        close(&score(&half, &pods(&[state(None, None)])), &[50.0]);
        let zero = [state(Some(0.0), Some(0.0)), state(Some(0.001), Some(0.001))];
        close(&score(&half, &pods(&zero)), &[100.0, 9.1]);
    }

    #[test]
    fn the_factor_must_be_within_0_and_1() {
        use crate::scheduler::ArgValue;
        for (value, ok) in [
            (0.0, true),
            (0.7, true),
            (1.0, true),
            (1.5, false),
            (-0.1, false),
        ] {
            let args = PluginArgs {
                path: "p".into(),
                values: [("TTFTTPOTWeightFactor".to_owned(), ArgValue::Number(value))].into(),
            };
            let mut errors = FieldErrors::new();
            let plugin = LeastLatency::from_args(&args, &mut errors);
            assert_eq!(errors.is_empty(), ok, "{value}: {errors}");
            if ok {
                assert_eq!(plugin.ttft_weight, value);
            }
        }
        let args = PluginArgs {
            path: "p".into(),
            values: [(
                "TTFTTPOTWeightFactor".to_owned(),
                ArgValue::Text("x".into()),
            )]
            .into(),
        };
        let mut errors = FieldErrors::new();
        LeastLatency::from_args(&args, &mut errors);
        assert_eq!(
            errors.to_string(),
            "p.TTFTTPOTWeightFactor: must be a number within 0..=1, got a string"
        );
    }
}
