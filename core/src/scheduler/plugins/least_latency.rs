//! `least-latency` (score): engines that answered fastest over the last scrape interval.
//! Time to first token and time per output token are each scored relative to the fastest
//! candidate that reports them (`100 × fastest / this`: the fastest 100, one twice as slow
//! 50; Kthena's min-max would give the slowest 0 however close it is) and blended:
//! `TTFTTPOTWeightFactor × ttft + (1 - factor) × tpot`. A latency that is unknown scores the
//! mean of the known ones (Kthena: 50): an engine nobody has measured yet is neither
//! preferred nor starved — with one measured engine it ties with it and gets measured too.

use super::super::framework::{fmax, fmin};
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

/// One latency figure of the alive candidates: the fastest known, and the sum and count of
/// the known scores (for the unknown ones' mean).
struct Figure {
    weight: f64,
    top: f64,
    sum: f64,
    known: usize,
}

impl Figure {
    fn new(weight: f64, fastest: f64) -> Self {
        Self {
            weight,
            top: 100.0 * (fmax(fastest, 0.0) + EPSILON),
            sum: 0.0,
            known: 0,
        }
    }

    /// The score of a known latency `v`: `100 × fastest / v`.
    fn score(&self, v: Option<f64>) -> f64 {
        v.map_or(0.0, |v| self.top / (fmax(v, 0.0) + EPSILON))
    }

    fn unknown(&self) -> f64 {
        if self.known == 0 {
            NOBODY_KNOWS
        } else {
            self.sum / self.known as f64
        }
    }
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
        // Both figures in each pass: the fastest among the alive; every candidate's blend
        // (the framework ignores the others' entries), an unknown figure counted as 0; then,
        // only when an alive candidate lacks one, the known ones' mean added for it.
        let (mut ttft_lo, mut tpot_lo) = (f64::INFINITY, f64::INFINITY);
        for (p, a) in pods.iter().zip(alive) {
            if *a {
                if let Some(v) = p.engine.ttft {
                    ttft_lo = fmin(v, ttft_lo);
                }
                if let Some(v) = p.engine.tpot {
                    tpot_lo = fmin(v, tpot_lo);
                }
            }
        }
        let mut ttft = Figure::new(self.ttft_weight, ttft_lo);
        let mut tpot = Figure::new(1.0 - self.ttft_weight, tpot_lo);
        let mut unknown_seen = false;
        for ((p, a), o) in pods.iter().zip(alive).zip(out.iter_mut()) {
            let (f, t) = (p.engine.ttft, p.engine.tpot);
            let (sf, st) = (ttft.score(f), tpot.score(t));
            *o = ttft.weight * sf + tpot.weight * st;
            if *a {
                ttft.sum += sf;
                ttft.known += usize::from(f.is_some());
                tpot.sum += st;
                tpot.known += usize::from(t.is_some());
                unknown_seen |= f.is_none() || t.is_none();
            }
        }
        if !unknown_seen {
            return;
        }
        let (uf, ut) = (ttft.unknown(), tpot.unknown());
        for ((p, a), o) in pods.iter().zip(alive).zip(out.iter_mut()) {
            if *a {
                if p.engine.ttft.is_none() {
                    *o += ttft.weight * uf;
                }
                if p.engine.tpot.is_none() {
                    *o += tpot.weight * ut;
                }
            }
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
