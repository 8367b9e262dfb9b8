//! Parsing of human durations such as `50ms`, `1.5s` or `250us` for command-line flags.

use std::time::Duration;

/// A duration flag value that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid duration {0:?}: expected a number with unit ns, us, ms, s or m (bare number = ms)"
)]
pub struct DurationError(pub String);

/// Parses `<number><unit>` where unit is `ns`, `us`, `ms`, `s` or `m`; a bare number means
/// milliseconds (the convention of llm-d-inference-sim's latency flags). The number may have a
/// fractional part; negative or non-finite values are rejected.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_owned());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number.parse().map_err(|_| err())?;
    let seconds_per_unit = match unit.trim() {
        "" | "ms" => 1e-3,
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(err()),
    };
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| err())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_bare_milliseconds() {
        let cases = [
            ("0", Duration::ZERO),
            ("50ms", Duration::from_millis(50)),
            ("50", Duration::from_millis(50)),
            ("1.5s", Duration::from_millis(1500)),
            ("250us", Duration::from_micros(250)),
            ("10ns", Duration::from_nanos(10)),
            ("2m", Duration::from_secs(120)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_garbage_and_unknown_units() {
        for text in ["", "ms", "5h", "-1s", "abc", "1..2s"] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }
}
