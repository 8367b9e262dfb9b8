//! An engine's `/metrics` (Prometheus text) read into what the scheduler uses, with vLLM's
//! and SGLang's names, and two successive readings turned into an [`EngineState`].
//!
//! Gauges: the last series of each name wins (as Kthena; engines label every series with
//! their one model). Histograms (time to first token, inter-token latency) become the mean
//! over the last interval, `Δsum / Δcount`; a counter reset starts over from the new totals;
//! an interval with no observation keeps the previous mean (a quiet engine is not fast, it is
//! unmeasured). A metric the engine does not expose is unknown, never 0.

use crate::Engine;

use super::EngineState;

/// The names one engine exposes.
#[derive(Debug, Clone, Copy)]
struct Names {
    running: &'static str,
    waiting: &'static str,
    kv_cache: &'static str,
    ttft: &'static str,
    tpot: &'static str,
}

fn names(engine: Engine) -> Names {
    match engine {
        Engine::Vllm => Names {
            running: "vllm:num_requests_running",
            waiting: "vllm:num_requests_waiting",
            kv_cache: "vllm:kv_cache_usage_perc",
            ttft: "vllm:time_to_first_token_seconds",
            tpot: "vllm:inter_token_latency_seconds",
        },
        Engine::Sglang => Names {
            running: "sglang:num_running_reqs",
            waiting: "sglang:num_queue_reqs",
            kv_cache: "sglang:token_usage",
            ttft: "sglang:time_to_first_token_seconds",
            tpot: "sglang:inter_token_latency_seconds",
        },
    }
}

/// Running totals of one histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    /// `_sum`.
    pub sum: f64,
    /// `_count`.
    pub count: f64,
}

/// One scrape, read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Running requests.
    pub running: Option<f64>,
    /// Waiting requests.
    pub waiting: Option<f64>,
    /// KV-cache usage, 0..=1.
    pub kv_cache_usage: Option<f64>,
    /// Time to first token histogram totals.
    pub ttft: Option<Totals>,
    /// Inter-token latency histogram totals.
    pub tpot: Option<Totals>,
}

/// Reads the Prometheus text `body` of an `engine`. Lines that are not samples of the
/// metrics the scheduler uses are skipped; a sample whose value does not parse is skipped.
pub fn parse(engine: Engine, body: &str) -> Reading {
    let n = names(engine);
    let mut r = Reading::default();
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // name{labels} value [timestamp]; label values may hold spaces, so split after `}`.
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) if line.as_bytes()[i] == b'{' => match labels_end(&line[i..]) {
                Some(j) => (&line[..i], &line[i + j + 1..]),
                None => continue,
            },
            Some(i) => (&line[..i], &line[i..]),
            None => continue,
        };
        let Some(value) = rest.split_whitespace().next().and_then(parse_value) else {
            continue;
        };
        let hist = |base: &str| -> Option<bool> {
            let tail = name.strip_prefix(base)?;
            match tail {
                "_sum" => Some(true),
                "_count" => Some(false),
                _ => None,
            }
        };
        if name == n.running {
            r.running = Some(value);
        } else if name == n.waiting {
            r.waiting = Some(value);
        } else if name == n.kv_cache {
            r.kv_cache_usage = Some(value);
        } else if let Some(is_sum) = hist(n.ttft) {
            set(&mut r.ttft, is_sum, value);
        } else if let Some(is_sum) = hist(n.tpot) {
            set(&mut r.tpot, is_sum, value);
        }
    }
    r
}

/// The offset of the `}` closing the label set that `s` starts with, outside quoted values.
fn labels_end(s: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn set(t: &mut Option<Totals>, is_sum: bool, value: f64) {
    let t = t.get_or_insert_with(Totals::default);
    if is_sum {
        t.sum = value;
    } else {
        t.count = value;
    }
}

fn parse_value(s: &str) -> Option<f64> {
    let v = match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    v.is_finite().then_some(v)
}

/// The mean over the interval between `prev` and `cur`: `None` when nothing was observed in
/// it (the caller keeps what it had).
pub fn interval_mean(prev: Option<Totals>, cur: Totals) -> Option<f64> {
    let (sum, count) = match prev {
        Some(p) if cur.count >= p.count && cur.sum >= p.sum => {
            (cur.sum - p.sum, cur.count - p.count)
        }
        // First reading, or the engine restarted: its totals are the interval.
        _ => (cur.sum, cur.count),
    };
    (count > 0.0).then(|| sum / count)
}

/// The state after reading `cur`, given the previous reading and state.
pub fn next_state(
    prev_reading: Option<&Reading>,
    prev: &EngineState,
    cur: &Reading,
) -> EngineState {
    let mean = |p: Option<Totals>, c: Option<Totals>, old: Option<f64>| match c {
        None => None,
        Some(c) => interval_mean(p, c).or(old),
    };
    EngineState {
        running: cur.running,
        peak_running: cur
            .running
            .map(|r| prev.peak_running.map_or(r, |p| p.max(r))),
        queued_seen: cur.running.is_some()
            && (prev.queued_seen || cur.waiting.is_some_and(|w| w > 0.0)),
        waiting: cur.waiting,
        kv_cache_usage: cur.kv_cache_usage,
        in_flight_at_reading: None,
        ttft: mean(prev_reading.and_then(|r| r.ttft), cur.ttft, prev.ttft),
        tpot: mean(prev_reading.and_then(|r| r.tpot), cur.tpot, prev.tpot),
        models: prev.models.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VLLM: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_waiting{engine="0",model_name="m"} 1.0
vllm:kv_cache_usage_perc{engine="0",model_name="m \"with\" space}"} 0.25
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 4.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 0.8
vllm:time_to_first_token_seconds_count{model_name="m"} 4.0
vllm:inter_token_latency_seconds_sum{model_name="m"} 1.0
vllm:inter_token_latency_seconds_count{model_name="m"} 100.0
vllm:num_requests_running_bogus 9
vllm:num_requests_waiting{model_name="m"} NaN
"#;

    #[test]
    fn vllm_gauges_and_histogram_totals_are_read() {
        let r = parse(Engine::Vllm, VLLM);
        assert_eq!(r.running, Some(3.0));
        assert_eq!(r.waiting, Some(1.0), "the NaN sample is skipped");
        assert_eq!(
            r.kv_cache_usage,
            Some(0.25),
            "a brace inside a quoted label value"
        );
        assert_eq!(
            r.ttft,
            Some(Totals {
                sum: 0.8,
                count: 4.0
            })
        );
        assert_eq!(
            r.tpot,
            Some(Totals {
                sum: 1.0,
                count: 100.0
            })
        );
        assert_eq!(parse(Engine::Sglang, VLLM), Reading::default());
    }

    #[test]
    fn sglang_names_are_read() {
        let text = "sglang:num_running_reqs{model_name=\"m\"} 2\nsglang:num_queue_reqs 5\nsglang:token_usage{model_name=\"m\"} 0.5 1712345678\n\
                    sglang:time_to_first_token_seconds_sum 2\nsglang:time_to_first_token_seconds_count 4\n";
        let r = parse(Engine::Sglang, text);
        assert_eq!(
            (r.running, r.waiting, r.kv_cache_usage),
            (Some(2.0), Some(5.0), Some(0.5))
        );
        assert_eq!(
            r.ttft,
            Some(Totals {
                sum: 2.0,
                count: 4.0
            })
        );
        assert_eq!(r.tpot, None);
    }

    #[test]
    fn histograms_become_the_mean_of_the_last_interval_and_survive_resets_and_quiet() {
        let t = |sum, count| Totals { sum, count };
        assert_eq!(interval_mean(None, t(2.0, 4.0)), Some(0.5));
        assert_eq!(interval_mean(Some(t(2.0, 4.0)), t(5.0, 5.0)), Some(3.0));
        assert_eq!(interval_mean(Some(t(2.0, 4.0)), t(2.0, 4.0)), None);
        assert_eq!(
            interval_mean(Some(t(9.0, 9.0)), t(1.0, 2.0)),
            Some(0.5),
            "reset"
        );
        let first = Reading {
            ttft: Some(t(1.0, 10.0)),
            running: Some(1.0),
            ..Reading::default()
        };
        let s1 = next_state(None, &EngineState::UNKNOWN, &first);
        assert_eq!(s1.ttft, Some(0.1));
        assert_eq!(s1.tpot, None);
        let quiet = Reading {
            ttft: Some(t(1.0, 10.0)),
            ..Reading::default()
        };
        let s2 = next_state(Some(&first), &s1, &quiet);
        assert_eq!(
            s2.ttft,
            Some(0.1),
            "no request in the interval keeps the mean"
        );
        assert_eq!(s2.running, None, "a gauge that vanished is unknown");
        assert_eq!(s2.peak_running, None, "and so is the peak read from it");
        let busy = Reading {
            running: Some(4.0),
            ..Reading::default()
        };
        let s3 = next_state(None, &s1, &busy);
        let calmer = Reading {
            running: Some(2.0),
            ..Reading::default()
        };
        let s4 = next_state(Some(&busy), &s3, &calmer);
        assert_eq!(
            (s1.peak_running, s3.peak_running, s4.peak_running),
            (Some(1.0), Some(4.0), Some(4.0)),
            "the peak is the most seen running"
        );
        assert!(!s4.queued_seen);
        let queued = Reading {
            running: Some(3.0),
            waiting: Some(2.0),
            ..Reading::default()
        };
        let s5 = next_state(Some(&calmer), &s4, &queued);
        let s6 = next_state(Some(&queued), &s5, &calmer);
        assert!(s5.queued_seen && s6.queued_seen, "once seen, kept");
        assert!(!next_state(None, &s6, &Reading::default()).queued_seen);
        let gone = next_state(Some(&quiet), &s2, &Reading::default());
        assert_eq!(gone.ttft, None, "a histogram that vanished is unknown");
    }
}
