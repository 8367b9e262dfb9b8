//! Exact, prefix and regular-expression matching of strings (header values, URL paths).

use std::fmt;

/// Upper bound on the compiled size of one regular expression, so a route cannot make the
/// router allocate without limit.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a ModelRoute `StringMatch` compares a value. Regexes are compiled once, when the route
/// is converted, never per request.
#[derive(Clone)]
pub enum StringMatch {
    /// The value equals the string.
    Exact(String),
    /// The value starts with the string.
    Prefix(String),
    /// The regular expression matches somewhere in the value (unanchored, like Kthena's Go
    /// `regexp.MatchString`; use `^...$` to match the whole value).
    Regex(regex::Regex),
}

impl StringMatch {
    /// Compiles `pattern`; the error names what is wrong with it.
    pub fn regex(pattern: &str) -> Result<Self, String> {
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(StringMatch::Regex)
            .map_err(|e| match e {
                regex::Error::Syntax(s) => format!("invalid regex {pattern:?}: {s}"),
                regex::Error::CompiledTooBig(limit) => {
                    format!("regex {pattern:?} is too large (compiled size over {limit} bytes)")
                }
                other => format!("invalid regex {pattern:?}: {other}"),
            })
    }

    /// True when `value` satisfies this match.
    #[inline]
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(s) => value == s,
            StringMatch::Prefix(s) => value.starts_with(s.as_str()),
            StringMatch::Regex(r) => r.is_match(value),
        }
    }

    /// `exact`, `prefix` or `regex`: the ModelRoute field this match came from.
    pub fn kind(&self) -> &'static str {
        match self {
            StringMatch::Exact(_) => "exact",
            StringMatch::Prefix(_) => "prefix",
            StringMatch::Regex(_) => "regex",
        }
    }

    /// The string or pattern.
    pub fn value(&self) -> &str {
        match self {
            StringMatch::Exact(s) | StringMatch::Prefix(s) => s,
            StringMatch::Regex(r) => r.as_str(),
        }
    }
}

impl PartialEq for StringMatch {
    fn eq(&self, other: &Self) -> bool {
        self.kind() == other.kind() && self.value() == other.value()
    }
}

impl Eq for StringMatch {}

impl fmt::Debug for StringMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:?})", self.kind(), self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_matches_as_documented() {
        let cases = [
            (StringMatch::Exact("premium".into()), "premium", true),
            (StringMatch::Exact("premium".into()), "premium2", false),
            (
                StringMatch::Prefix("/v1/chat".into()),
                "/v1/chat/completions",
                true,
            ),
            (
                StringMatch::Prefix("/v1/chat".into()),
                "/v1/completions",
                false,
            ),
            (StringMatch::regex("^gold|silver$").unwrap(), "silver", true),
            (StringMatch::regex("pre.ium").unwrap(), "x-premium-y", true),
            (
                StringMatch::regex("^pre.ium$").unwrap(),
                "x-premium-y",
                false,
            ),
        ];
        for (m, value, want) in cases {
            assert_eq!(m.matches(value), want, "{m:?} on {value:?}");
        }
    }

    #[test]
    fn invalid_regex_is_an_error_naming_the_pattern() {
        let err = StringMatch::regex("(unclosed").unwrap_err();
        assert!(err.contains("invalid regex \"(unclosed\""), "{err}");
    }
}
