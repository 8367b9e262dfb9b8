//! Token rate limits of a ModelRoute (`spec.rateLimit`), as Kthena enforces them and exact:
//! one bucket of input tokens and one of output tokens per model name, each refilled at its
//! limit per unit and holding at most one unit's worth (Kthena's `rate.Limiter` with burst =
//! limit).
//!
//! A request **reserves** its input tokens, estimated from the prompt ([`estimate_tokens`]),
//! and is refused when they are not there (Kthena's `AllowN`); it needs at least one output
//! token left (Kthena's check: the output is not known yet). When the answer's `usage` comes,
//! the reservation is **settled**: the input bucket gets back or gives up the difference
//! between the estimate and `prompt_tokens`, the output bucket gives up `completion_tokens`.
//! Buckets may go into debt (down to minus one unit's worth), so a burst of long answers is
//! paid for by the requests after it: over any window the budget holds to the token.
//!
//! A route with `global.redis` keeps the same buckets in Redis, shared by every replica:
//! [`REDIS_SCRIPT`] is the Redis form of [`Bucket`] and [`ModelLimit`] (same refill, same
//! order of checks, same debt), run atomically on Redis's clock; [`redis_key`] names its
//! keys and [`redis_decision`] reads its answer.

use std::time::{Duration, Instant};

use crate::{LimitBy, RateLimit, RateUnit};

/// How a budget of `per_unit` tokens per `unit` fills: at `per_second`, up to `burst` (one
/// unit's worth, as Kthena's limiter with burst = limit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens the bucket holds (and the deepest debt it may go into).
    pub burst: f64,
}

impl Rate {
    /// The rate of `per_unit` tokens per `unit`.
    pub fn new(per_unit: u32, unit: RateUnit) -> Self {
        let burst = f64::from(per_unit);
        Self {
            per_second: burst / unit.duration().as_secs_f64(),
            burst,
        }
    }

    /// How long until a bucket holding `tokens` has `n`; `None` when it never can (`n` is
    /// more than the bucket holds).
    pub fn wait(&self, n: f64, tokens: f64) -> Option<Duration> {
        if n > self.burst {
            return None;
        }
        let missing = (n - tokens).max(0.0);
        Some(Duration::from_secs_f64(missing / self.per_second))
    }
}

/// One bucket of tokens: `burst` at most, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket of `per_unit` tokens refilled over `unit`.
    pub fn new(per_unit: u32, unit: RateUnit, now: Instant) -> Self {
        let rate = Rate::new(per_unit, unit);
        Self {
            rate,
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        self.at = self.at.max(now);
    }

    /// Tokens left now (negative: in debt).
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// How long until `n` tokens are there; `None` when they never can be (more than the
    /// bucket holds).
    fn wait_for(&self, n: f64) -> Option<Duration> {
        self.rate.wait(n, self.tokens)
    }

    /// Takes `n` tokens if they are all there.
    pub fn try_take(&mut self, n: u64, now: Instant) -> Result<(), Refusal> {
        self.refill(now);
        let n = n as f64;
        if n <= self.tokens {
            self.tokens -= n;
            Ok(())
        } else {
            Err(Refusal {
                retry_after: self.wait_for(n),
            })
        }
    }

    /// Succeeds when at least `n` tokens are there, taking none.
    pub fn check(&mut self, n: u64, now: Instant) -> Result<(), Refusal> {
        self.refill(now);
        let n = n as f64;
        if n <= self.tokens {
            Ok(())
        } else {
            Err(Refusal {
                retry_after: self.wait_for(n),
            })
        }
    }

    /// Takes `n` tokens (gives them back when negative), whether or not they are there: the
    /// bucket may go into debt down to minus its burst.
    pub fn charge(&mut self, n: i64, now: Instant) {
        self.refill(now);
        self.tokens = (self.tokens - n as f64).clamp(-self.rate.burst, self.rate.burst);
    }

    /// The same bucket under a changed limit: what it held carries over, up to the new burst.
    fn reconfigured(&self, per_unit: u32, unit: RateUnit, now: Instant) -> Self {
        let mut old = self.clone();
        old.refill(now);
        let mut new = Self::new(per_unit, unit, now);
        new.tokens = old.tokens.min(new.rate.burst);
        new
    }
}

/// A request the limit turned away.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refusal {
    /// When the tokens it needed will be there; `None` when it needs more than a whole unit's
    /// budget, which never fits.
    pub retry_after: Option<Duration>,
}

/// Which budget refused a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exceeded {
    /// Input tokens (Kthena's `input token rate limit exceeded`).
    Input(Refusal),
    /// Output tokens (Kthena's `output token rate limit exceeded`).
    Output(Refusal),
}

impl Exceeded {
    /// Kthena's text.
    pub fn message(&self) -> &'static str {
        match self {
            Exceeded::Input(_) => "input token rate limit exceeded",
            Exceeded::Output(_) => "output token rate limit exceeded",
        }
    }

    /// Kthena's `limit_type` label of `kthena_router_rate_limit_exceeded_total`.
    pub fn limit_type(&self) -> &'static str {
        match self {
            Exceeded::Input(_) => "input_tokens",
            Exceeded::Output(_) => "output_tokens",
        }
    }

    /// When to try again, if ever.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Exceeded::Input(r) | Exceeded::Output(r) => r.retry_after,
        }
    }
}

/// The buckets of one model name.
#[derive(Debug, Clone)]
pub struct ModelLimit {
    limit: RateLimit,
    input: Option<Bucket>,
    output: Option<Bucket>,
}

impl ModelLimit {
    /// Full buckets for `limit`.
    pub fn new(limit: &RateLimit, now: Instant) -> Self {
        Self {
            limit: limit.clone(),
            input: limit
                .input_tokens_per_unit
                .map(|n| Bucket::new(n, limit.unit, now)),
            output: limit
                .output_tokens_per_unit
                .map(|n| Bucket::new(n, limit.unit, now)),
        }
    }

    /// Follows a changed `limit`: a bucket whose limit changed keeps what it held (up to the
    /// new burst); a budget removed is gone, one added starts full.
    pub fn update(&mut self, limit: &RateLimit, now: Instant) {
        if *limit == self.limit {
            return;
        }
        let follow = |old: &Option<Bucket>, per_unit: Option<u32>| {
            per_unit.map(|n| match old {
                Some(b) => b.reconfigured(n, limit.unit, now),
                None => Bucket::new(n, limit.unit, now),
            })
        };
        self.input = follow(&self.input, limit.input_tokens_per_unit);
        self.output = follow(&self.output, limit.output_tokens_per_unit);
        self.limit = limit.clone();
    }

    /// Admits a request estimated at `input` prompt tokens, reserving them; refuses it when
    /// the input budget lacks them or the output budget is spent. Nothing is taken from a
    /// refused request.
    pub fn admit(&mut self, input: u64, now: Instant) -> Result<(), Exceeded> {
        if let Some(out) = &mut self.output {
            out.check(1, now).map_err(Exceeded::Output)?;
        }
        if let Some(inp) = &mut self.input {
            inp.try_take(input, now).map_err(Exceeded::Input)?;
        }
        Ok(())
    }

    /// Settles an admitted request: `reserved` input tokens were taken, the answer counted
    /// `prompt` and `completion` tokens.
    pub fn settle(&mut self, reserved: u64, prompt: u64, completion: u64, now: Instant) {
        if let Some(inp) = &mut self.input {
            let delta = i64::try_from(prompt).unwrap_or(i64::MAX)
                - i64::try_from(reserved).unwrap_or(i64::MAX);
            if delta != 0 {
                inp.charge(delta, now);
            }
        }
        if let Some(out) = &mut self.output
            && completion > 0
        {
            out.charge(i64::try_from(completion).unwrap_or(i64::MAX), now);
        }
    }

    /// True when every bucket is full again: forgetting the budget changes nothing (a new
    /// one starts full), so idle per-user budgets can be let go.
    pub fn is_full(&mut self, now: Instant) -> bool {
        let full = |b: &mut Option<Bucket>| {
            b.as_mut()
                .is_none_or(|b| b.available(now) >= b.rate.burst - f64::EPSILON)
        };
        full(&mut self.input) && full(&mut self.output)
    }

    /// Tokens left now: (input, output), for the debug endpoint and tests.
    pub fn available(&mut self, now: Instant) -> (Option<f64>, Option<f64>) {
        (
            self.input.as_mut().map(|b| b.available(now)),
            self.output.as_mut().map(|b| b.available(now)),
        )
    }
}

/// The longest user or header value that names a budget as it is; a longer one is named by
/// its hash, so a client cannot make a budget's name (a map key, a Redis key) large.
pub const MAX_BUDGET_VALUE: usize = 128;

/// The name of the budget a request to `model` draws from under `by`: the model name itself
/// (Kthena), or with the request's user (`|user=<sub>`) or header value (`|<name>=<value>`)
/// appended. A request without a user or without the header draws from the budget of the
/// empty value, shared by all such requests.
pub fn budget_key(model: &str, by: &LimitBy, user: &str, header: Option<&str>) -> String {
    let (name, value) = match by {
        LimitBy::Model => return model.to_owned(),
        LimitBy::User => ("user", user),
        LimitBy::Header(h) => (h.as_str(), header.unwrap_or("")),
    };
    if value.len() <= MAX_BUDGET_VALUE {
        format!("{model}|{name}={value}")
    } else {
        let hash = xxhash_rust::xxh3::xxh3_64(value.as_bytes());
        format!("{model}|{name}#{hash:016x}")
    }
}

/// The Redis script of global budgets: the header of `rate_limit.lua` says what it takes and
/// answers; [`redis_admit_args`] and [`redis_settle_args`] build its arguments.
pub const REDIS_SCRIPT: &str = include_str!("rate_limit.lua");

/// How long a Redis key outlives the moment its bucket is full again (a missing key reads as
/// a full bucket, so expiring it then changes nothing; the margin covers a clock step).
pub const REDIS_EXPIRY_MARGIN_SECS: u64 = 60;

/// The script's keys for `model`: its input and output buckets, Kthena's names
/// (`kthena:ratelimit:<model>:input`, `…:output`).
pub fn redis_keys(model: &str) -> [String; 2] {
    [
        format!("kthena:ratelimit:{model}:input"),
        format!("kthena:ratelimit:{model}:output"),
    ]
}

/// The rate figures of a budget for the script: burst and refill per second, each written so
/// it reads back as the same f64; empty when there is no such budget.
fn rate_args(per_unit: Option<u32>, unit: RateUnit) -> [String; 2] {
    match per_unit {
        Some(n) => {
            let r = Rate::new(n, unit);
            [r.burst.to_string(), r.per_second.to_string()]
        }
        None => [String::new(), String::new()],
    }
}

fn script_args(
    op: &str,
    limit: &RateLimit,
    now: Option<f64>,
    input: i64,
    output: u64,
) -> Vec<String> {
    let [in_burst, in_rate] = rate_args(limit.input_tokens_per_unit, limit.unit);
    let [out_burst, out_rate] = rate_args(limit.output_tokens_per_unit, limit.unit);
    vec![
        op.to_owned(),
        now.map(|t| t.to_string()).unwrap_or_default(),
        in_burst,
        in_rate,
        out_burst,
        out_rate,
        input.to_string(),
        output.to_string(),
        REDIS_EXPIRY_MARGIN_SECS.to_string(),
    ]
}

/// The script's arguments to admit a request estimated at `input` prompt tokens under
/// `limit` ([`ModelLimit::admit`]). `now`: seconds on the script's clock, `None` for Redis's
/// own (tests give times to compare with the local buckets).
pub fn redis_admit_args(limit: &RateLimit, input: u64, now: Option<f64>) -> Vec<String> {
    script_args(
        "admit",
        limit,
        now,
        i64::try_from(input).unwrap_or(i64::MAX),
        0,
    )
}

/// The script's arguments to settle a request that reserved `reserved` input tokens and was
/// counted `prompt` and `completion` tokens ([`ModelLimit::settle`]).
pub fn redis_settle_args(
    limit: &RateLimit,
    reserved: u64,
    prompt: u64,
    completion: u64,
    now: Option<f64>,
) -> Vec<String> {
    let delta = i64::try_from(prompt)
        .unwrap_or(i64::MAX)
        .saturating_sub(i64::try_from(reserved).unwrap_or(i64::MAX));
    script_args("settle", limit, now, delta, completion)
}

/// The script's answer to an admit: `code` 0 admitted, 1 the output budget refused, 2 the
/// input budget refused, with the `tokens` the refusing bucket held; as
/// [`ModelLimit::admit`] answers for a request estimated at `input` tokens under `limit`.
/// `None` for an answer the script never gives.
pub fn redis_decision(
    code: i64,
    tokens: Option<f64>,
    limit: &RateLimit,
    input: u64,
) -> Option<Result<(), Exceeded>> {
    let refusal = |per_unit: Option<u32>, needed: f64| {
        let rate = Rate::new(per_unit?, limit.unit);
        Some(Refusal {
            retry_after: rate.wait(needed, tokens?),
        })
    };
    match code {
        0 => Some(Ok(())),
        1 => refusal(limit.output_tokens_per_unit, 1.0).map(|r| Err(Exceeded::Output(r))),
        2 => refusal(limit.input_tokens_per_unit, input as f64).map(|r| Err(Exceeded::Input(r))),
        _ => None,
    }
}

/// An estimate of the tokens of a prompt, from its raw JSON (`messages`, `prompt` or
/// `input`), without a tokenizer: the text of every JSON string is split the way byte-pair
/// tokenizers split it, and each piece costs what it typically costs there:
///
/// - a run of letters: one token per 4 letters, at least one (common words are one token);
/// - a run of digits: one per 3 digits (cl100k-style tokenizers group at most 3);
/// - a punctuation mark or symbol: one;
/// - a run of spaces before a word belongs to it; a run of newlines is one;
/// - a CJK character: one; another non-ASCII letter: one per 2;
/// - each JSON object (a chat message) adds 3 for its role and framing, and the whole
///   prompt 3 for the reply's priming, as OpenAI counts chat tokens.
///
/// Escapes (`\n`, `\"`, `\uXXXX`) count as the character they stand for. The answer's
/// `usage.prompt_tokens` corrects the estimate once it comes ([`ModelLimit::settle`]).
pub fn estimate_tokens(json: &[u8]) -> u64 {
    let mut tokens = 0u64;
    let mut counter = Counter::default();
    let mut i = 0;
    let mut objects = 0u64;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    if json[i] == b'\\' {
                        let c = match json.get(i + 1) {
                            Some(b'n' | b'r') => '\n',
                            Some(b't') => ' ',
                            Some(b'u') => {
                                let code = json
                                    .get(i + 2..i + 6)
                                    .and_then(|h| std::str::from_utf8(h).ok())
                                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                                    .and_then(char::from_u32)
                                    .unwrap_or('?');
                                i += 4;
                                code
                            }
                            Some(&b) => char::from(b),
                            None => break,
                        };
                        counter.push(c);
                        i += 2;
                        continue;
                    }
                    // One UTF-8 character.
                    let len = match json[i] {
                        b if b < 0x80 => 1,
                        b if b >= 0xf0 => 4,
                        b if b >= 0xe0 => 3,
                        _ => 2,
                    };
                    let c = json
                        .get(i..i + len)
                        .and_then(|s| std::str::from_utf8(s).ok())
                        .and_then(|s| s.chars().next())
                        .unwrap_or('?');
                    counter.push(c);
                    i += len;
                }
                tokens += counter.finish();
            }
            b'{' => objects += 1,
            _ => {}
        }
        i += 1;
    }
    tokens + 3 * objects + 3
}

/// The running split of one string's text.
#[derive(Debug, Default)]
struct Counter {
    tokens: u64,
    run: Run,
    len: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Run {
    #[default]
    None,
    Letters,
    Digits,
    Newlines,
    Wide,
}

impl Counter {
    fn close(&mut self) {
        self.tokens += match self.run {
            Run::None => 0,
            Run::Letters => self.len.div_ceil(4),
            Run::Digits => self.len.div_ceil(3),
            Run::Newlines => 1,
            Run::Wide => self.len.div_ceil(2),
        };
        self.run = Run::None;
        self.len = 0;
    }

    fn push(&mut self, c: char) {
        let run = if c.is_ascii_alphabetic() || c == '\'' && self.run == Run::Letters {
            Run::Letters
        } else if c.is_ascii_digit() {
            Run::Digits
        } else if c == '\n' {
            Run::Newlines
        } else if c.is_whitespace() {
            // Belongs to the next word.
            self.close();
            return;
        } else if is_cjk(c) {
            self.close();
            self.tokens += 1;
            return;
        } else if c.is_alphabetic() {
            Run::Wide
        } else {
            self.close();
            self.tokens += 1;
            return;
        };
        if run != self.run {
            self.close();
            self.run = run;
        }
        self.len += 1;
    }

    fn finish(&mut self) -> u64 {
        self.close();
        std::mem::take(&mut self.tokens)
    }
}

/// Han, Hiragana, Katakana and Hangul: about one token per character.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af | 0xf900..=0xfaff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(input: Option<u32>, output: Option<u32>, unit: RateUnit) -> RateLimit {
        RateLimit {
            input_tokens_per_unit: input,
            output_tokens_per_unit: output,
            unit,
            global_redis_address: None,
            limit_by: LimitBy::Model,
        }
    }

    #[test]
    fn a_budget_is_named_by_the_model_and_the_user_or_header_value() {
        let h = LimitBy::Header("x-tenant".into());
        assert_eq!(budget_key("m", &LimitBy::Model, "alice", Some("t")), "m");
        assert_eq!(
            budget_key("m", &LimitBy::User, "alice", Some("t")),
            "m|user=alice"
        );
        assert_eq!(budget_key("m", &LimitBy::User, "", None), "m|user=");
        assert_eq!(
            budget_key("m", &h, "alice", Some("acme")),
            "m|x-tenant=acme"
        );
        assert_eq!(budget_key("m", &h, "alice", None), "m|x-tenant=");
        let long = "v".repeat(MAX_BUDGET_VALUE + 1);
        let named = budget_key("m", &h, "", Some(&long));
        assert!(
            named.starts_with("m|x-tenant#") && named.len() < 40,
            "{named}"
        );
        assert_ne!(named, budget_key("m", &h, "", Some(&long[1..])));
    }

    #[test]
    fn a_budget_is_full_again_once_refilled() {
        let t0 = Instant::now();
        let mut m = ModelLimit::new(&limit(Some(10), Some(5), RateUnit::Second), t0);
        assert!(m.is_full(t0));
        m.admit(4, t0).expect("admitted");
        assert!(!m.is_full(t0));
        assert!(m.is_full(t0 + Duration::from_secs(1)));
    }

    /// Kthena's e2e case: 30 input tokens a minute, about 10 tokens a request: three pass,
    /// the fourth is refused until a third of a minute has refilled its 10.
    #[test]
    fn a_budget_lets_through_what_it_holds_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut m = ModelLimit::new(&limit(Some(30), None, RateUnit::Minute), t0);
        for _ in 0..3 {
            m.admit(10, t0).expect("within the budget");
        }
        let refused = m.admit(10, t0).expect_err("spent");
        assert_eq!(refused.message(), "input token rate limit exceeded");
        let wait = refused.retry_after().expect("fits once refilled");
        assert!((wait.as_secs_f64() - 20.0).abs() < 0.01, "{wait:?}");
        assert!(m.admit(10, t0 + Duration::from_secs(19)).is_err());
        m.admit(10, t0 + Duration::from_secs(20)).expect("refilled");
        // Never more than one unit's worth, however long it waited.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(m.available(later).0, Some(30.0));
        // A request larger than the whole budget never fits.
        let never = m.admit(31, later).expect_err("too large");
        assert_eq!(never.retry_after(), None);
    }

    /// Reserve then settle: the estimate is corrected by the answer's count both ways, and
    /// output tokens are charged as counted, into debt when an answer was long.
    #[test]
    fn reservations_settle_to_the_counted_tokens() {
        let t0 = Instant::now();
        let mut m = ModelLimit::new(&limit(Some(100), Some(50), RateUnit::Hour), t0);
        m.admit(40, t0).expect("admitted");
        m.settle(40, 25, 0, t0);
        assert_eq!(m.available(t0), (Some(75.0), Some(50.0)));
        m.admit(10, t0).expect("admitted");
        m.settle(10, 30, 80, t0);
        assert_eq!(m.available(t0), (Some(45.0), Some(-30.0)));
        let refused = m.admit(1, t0).expect_err("output spent");
        assert_eq!(refused.message(), "output token rate limit exceeded");
        assert_eq!(refused.limit_type(), "output_tokens");
        // A refused request takes nothing.
        assert_eq!(m.available(t0).0, Some(45.0));
        // 31 output tokens are back after 31/50 of an hour.
        let back = t0 + Duration::from_secs_f64(3600.0 * 31.0 / 50.0);
        m.admit(1, back).expect("refilled past the debt");
    }

    #[test]
    fn a_changed_limit_keeps_what_the_bucket_held() {
        let t0 = Instant::now();
        let mut m = ModelLimit::new(&limit(Some(100), None, RateUnit::Second), t0);
        m.admit(90, t0).expect("admitted");
        m.update(&limit(Some(50), Some(5), RateUnit::Second), t0);
        assert_eq!(m.available(t0), (Some(10.0), Some(5.0)));
        m.update(&limit(Some(5), Some(5), RateUnit::Second), t0);
        assert_eq!(m.available(t0).0, Some(5.0));
        m.update(&limit(None, Some(5), RateUnit::Second), t0);
        assert_eq!(m.available(t0).0, None);
    }

    #[test]
    fn a_rate_says_how_long_until_tokens_are_there() {
        let r = Rate::new(60, RateUnit::Minute);
        assert_eq!((r.burst, r.per_second), (60.0, 1.0));
        assert_eq!(r.wait(10.0, 4.0), Some(Duration::from_secs(6)));
        assert_eq!(r.wait(10.0, 15.0), Some(Duration::ZERO));
        // Out of debt first: from -20 to 1 takes 21 s.
        assert_eq!(r.wait(1.0, -20.0), Some(Duration::from_secs(21)));
        assert_eq!(r.wait(61.0, 60.0), None);
    }

    #[test]
    fn redis_keys_are_kthenas() {
        assert_eq!(
            redis_keys("deepseek-r1"),
            [
                "kthena:ratelimit:deepseek-r1:input".to_owned(),
                "kthena:ratelimit:deepseek-r1:output".to_owned()
            ]
        );
    }

    /// The script's arguments carry the same f64 figures as the local buckets, in the order
    /// its header lists; an absent budget is two empty strings.
    #[test]
    fn redis_script_arguments_follow_the_scripts_header() {
        let l = limit(Some(30), None, RateUnit::Minute);
        assert_eq!(
            redis_admit_args(&l, 11, None),
            ["admit", "", "30", "0.5", "", "", "11", "0", "60"]
        );
        let l = limit(Some(100), Some(7), RateUnit::Hour);
        let args = redis_settle_args(&l, 40, 25, 9, Some(12.5));
        assert_eq!(args[..3], ["settle", "12.5", "100"]);
        // Shortest text that reads back as the same double.
        assert_eq!(args[3].parse::<f64>(), Ok(100.0 / 3600.0));
        assert_eq!(args[5].parse::<f64>(), Ok(7.0 / 3600.0));
        assert_eq!(args[6..], ["-15", "9", "60"]);
        // The header of the script names every argument it reads.
        for i in 1..=9 {
            assert!(REDIS_SCRIPT.contains(&format!("ARGV[{i}]")), "ARGV[{i}]");
        }
    }

    /// The script's answer reads as the local limiter's: which budget, and the wait computed
    /// from what the refusing bucket held.
    #[test]
    fn redis_answers_read_as_the_local_decisions() {
        let l = limit(Some(30), Some(60), RateUnit::Minute);
        assert_eq!(redis_decision(0, None, &l, 10), Some(Ok(())));
        let input = redis_decision(2, Some(4.0), &l, 10).expect("known");
        assert_eq!(
            input,
            Err(Exceeded::Input(Refusal {
                retry_after: Some(Duration::from_secs(12))
            }))
        );
        let output = redis_decision(1, Some(-5.0), &l, 10).expect("known");
        assert_eq!(
            output,
            Err(Exceeded::Output(Refusal {
                retry_after: Some(Duration::from_secs(6))
            }))
        );
        // A prompt over the whole budget never fits.
        let never = redis_decision(2, Some(30.0), &l, 31).expect("known");
        assert_eq!(never.map_err(|e| e.retry_after()), Err(None));
        // Answers the script never gives: an unknown code, a refusal without tokens or by a
        // budget the limit has not.
        assert_eq!(redis_decision(3, Some(1.0), &l, 1), None);
        assert_eq!(redis_decision(2, None, &l, 1), None);
        let no_output = limit(Some(30), None, RateUnit::Minute);
        assert_eq!(redis_decision(1, Some(0.0), &no_output, 1), None);
    }

    #[test]
    fn prompt_tokens_are_estimated_the_way_tokenizers_split_text() {
        // Two short messages: words, a number, punctuation, framing.
        let chat = br#"[{"role":"system","content":"You are helpful."},{"role":"user","content":"What is 12345 + 6?"}]"#;
        // Strings: role(1) system(2) content(2) You are helpful .(4) role(1) user(1)
        // content(2) What is 12345 + 6 ?(2+1+2+1+1+1=... ) + 3 per message + 3.
        let n = estimate_tokens(chat);
        assert!((20..=32).contains(&n), "{n}");
        // Escapes count as what they stand for; CJK one per character.
        assert_eq!(estimate_tokens(br#""\n\n""#), 1 + 3);
        assert_eq!(estimate_tokens("\"你好世界\"".as_bytes()), 4 + 3);
        assert_eq!(estimate_tokens(br#""\u4f60\u597d""#), 2 + 3);
        // Long text: close to a quarter of its characters, as BPE gives for English.
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(100);
        let n = estimate_tokens(format!("\"{text}\"").as_bytes());
        assert!(
            (900..=1400).contains(&n),
            "{n} for {} characters",
            text.len()
        );
        // Nothing is not free of framing, and never panics on cut text.
        assert_eq!(estimate_tokens(b""), 3);
        assert!(estimate_tokens(br#"{"a":"b\"#) > 0);
        assert!(estimate_tokens(b"\"\\u12\"") > 0);
    }
}
