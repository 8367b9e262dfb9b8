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

/// Writes `weight × score` of each alive candidate's `value` into `out` (added to what is
/// there when `add`): relative to the fastest known, the mean of the known for an unknown.
fn blend(
    pods: &[Candidate<'_>],
    alive: &[bool],
    value: impl Fn(&Candidate<'_>) -> Option<f64>,
    weight: f64,
    add: bool,
    out: &mut [f64],
) {
    let mut lo = f64::INFINITY;
    for (p, a) in pods.iter().zip(alive) {
        if *a && let Some(v) = value(p) {
            lo = lo.min(v);
        }
    }
    // Relative to the fastest: 100 × fastest / this (with 0.1 ms added to both, so a 0 is
    // not infinitely better). Kthena normalises min-max, which turns a 2 % difference between
    // equal engines into 0 versus 100 for a whole scrape interval and herds traffic.
    let top = 100.0 * (lo.max(0.0) + EPSILON);
    let (mut sum, mut known) = (0.0, 0usize);
    let mut unknown_seen = false;
    for ((p, a), o) in pods.iter().zip(alive).zip(out.iter_mut()) {
        if !*a {
            continue;
        }
        let s = match value(p) {
            Some(v) => {
                let s = top / (v.max(0.0) + EPSILON);
                sum += s;
                known += 1;
                s
            }
            None => {
                unknown_seen = true;
                continue;
            }
        };
        *o = if add { *o + weight * s } else { weight * s };
    }
    if unknown_seen {
        let unknown = if known == 0 {
            NOBODY_KNOWS
        } else {
            sum / known as f64
        };
        for ((p, a), o) in pods.iter().zip(alive).zip(out.iter_mut()) {
            if *a && value(p).is_none() {
                *o = if add {
                    *o + weight * unknown
                } else {
                    weight * unknown
                };
            }
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
        blend(pods, alive, |p| p.engine.ttft, self.ttft_weight, false, out);
        blend(
            pods,
            alive,
            |p| p.engine.tpot,
            1.0 - self.ttft_weight,
            true,
            out,
        );
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
