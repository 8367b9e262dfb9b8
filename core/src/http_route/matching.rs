//! Matching one request against one HTTPRoute match, and Host headers against hostnames.

use std::borrow::Cow;
use std::fmt;

use super::HttpRequestView;
use crate::StringMatch;

/// Upper bound on the compiled size of one regular expression, as for ModelRoute regexes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A regular expression that must match the whole value (compiled as `^(?:pattern)$`), the
/// dialect of the `regex` crate. The spec leaves `RegularExpression` semantics to
/// implementations; a full match is what Envoy-based gateways do.
#[derive(Clone)]
pub struct FullRegex {
    pattern: String,
    regex: regex::Regex,
}

impl FullRegex {
    /// Compiles `pattern`; the error names the pattern and what is wrong with it.
    pub fn new(pattern: &str) -> Result<Self, String> {
        // Compiled as written first, so a pattern cannot escape the anchors (`a)|(b`) and the
        // error shows the user's text rather than the wrapped one.
        StringMatch::regex(pattern)?;
        regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(|regex| Self {
                pattern: pattern.to_owned(),
                regex,
            })
            .map_err(|e| format!("invalid regex {pattern:?}: {e}"))
    }

    /// The pattern as written in the route.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// True when the pattern matches all of `value`.
    #[inline]
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl PartialEq for FullRegex {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for FullRegex {}

impl fmt::Debug for FullRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.pattern)
    }
}

/// `matches[].path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// `Exact`: the path equals the value.
    Exact(String),
    /// `PathPrefix`: the path starts with the value's segments. `/foo` matches `/foo`,
    /// `/foo/` and `/foo/bar` but not `/foobar`; a trailing `/` in the value is ignored.
    Prefix(String),
    /// `RegularExpression`: the regex matches the whole path.
    Regex(FullRegex),
}

impl PathMatch {
    /// True when `path` (without query string) satisfies this match.
    #[inline]
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Exact(v) => path == v,
            PathMatch::Prefix(v) => path
                .strip_prefix(v.trim_end_matches('/'))
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            PathMatch::Regex(r) => r.is_match(path),
        }
    }

    /// `Exact`, `PathPrefix` or `RegularExpression`: the spec's name of the type.
    pub fn kind(&self) -> &'static str {
        match self {
            PathMatch::Exact(_) => "Exact",
            PathMatch::Prefix(_) => "PathPrefix",
            PathMatch::Regex(_) => "RegularExpression",
        }
    }

    /// The path or pattern.
    pub fn value(&self) -> &str {
        match self {
            PathMatch::Exact(v) | PathMatch::Prefix(v) => v,
            PathMatch::Regex(r) => r.as_str(),
        }
    }
}

/// How a header or query parameter value is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueMatch {
    /// `Exact`: the value equals the string (case-sensitive).
    Exact(String),
    /// `RegularExpression`: the regex matches the whole value.
    Regex(FullRegex),
}

impl ValueMatch {
    /// True when `value` satisfies this match.
    #[inline]
    pub fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatch::Exact(s) => value == s,
            ValueMatch::Regex(r) => r.is_match(value),
        }
    }
}

/// One entry of `rules[].matches`: every present condition must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpMatch {
    /// `path`; defaults to `PathPrefix /`.
    pub path: PathMatch,
    /// `headers`, names lowercase. A missing header does not match. Only the first entry of
    /// a name counts: later entries with the same name are ignored, as the spec requires.
    pub headers: Vec<(String, ValueMatch)>,
    /// `queryParams`, names compared exactly against the first occurrence of the parameter in
    /// the raw query string (no percent-decoding). Later entries with the same name are ignored.
    pub query: Vec<(String, ValueMatch)>,
    /// `method`, e.g. `POST`.
    pub method: Option<String>,
}

impl Default for HttpMatch {
    /// `PathPrefix /`: every request.
    fn default() -> Self {
        Self {
            path: PathMatch::Prefix("/".into()),
            headers: Vec::new(),
            query: Vec::new(),
            method: None,
        }
    }
}

impl HttpMatch {
    /// True when every condition holds for `req`.
    #[inline]
    pub fn matches(&self, req: &impl HttpRequestView) -> bool {
        self.method.as_deref().is_none_or(|m| m == req.method())
            && self.path.matches(req.path())
            && firsts(&self.headers, true)
                .all(|(name, m)| req.header(name).is_some_and(|v| m.matches(v)))
            && firsts(&self.query, false).all(|(name, m)| {
                req.query()
                    .and_then(|q| query_param(q, name))
                    .is_some_and(|v| m.matches(v))
            })
    }

    /// Number of distinct header names matched (a precedence criterion).
    pub fn header_count(&self) -> usize {
        firsts(&self.headers, true).count()
    }

    /// Number of distinct query parameters matched (a precedence criterion).
    pub fn query_count(&self) -> usize {
        firsts(&self.query, false).count()
    }
}

/// The entries whose name no earlier entry has.
fn firsts<T>(list: &[(String, T)], ignore_case: bool) -> impl Iterator<Item = &(String, T)> {
    let same = move |a: &str, b: &str| {
        if ignore_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    list.iter()
        .enumerate()
        .filter(move |(i, (name, _))| !list[..*i].iter().any(|(n, _)| same(n, name)))
        .map(|(_, e)| e)
}

/// The value of the first `name=value` pair named `name` in a raw query string (`a=b&c=d`);
/// a parameter without `=` has the empty value. Names and values are compared as sent, without
/// percent-decoding.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// A `Host` header as hostnames are compared: port and trailing dot removed, lowercase.
/// IPv6 literals keep their brackets.
pub fn normalize_host(host: &str) -> Cow<'_, str> {
    let h = if host.starts_with('[') {
        host.find(']').map_or(host, |i| &host[..=i])
    } else {
        match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        }
    };
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(h.to_ascii_lowercase())
    } else {
        Cow::Borrowed(h)
    }
}

/// True when `host` (normalized, see [`normalize_host`]) matches `pattern`: equal to it, or for
/// `*.example.com`, ending in `.example.com` after at least one label (any number of labels,
/// never the bare `example.com`).
#[inline]
pub fn hostname_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|labels| !labels.is_empty()),
        None => pattern == host,
    }
}

/// The hostnames a route hostname serves on a listener hostname: the more specific of the two
/// when they intersect (`*.example.com` and `a.example.com` give `a.example.com`), `None`
/// when they do not.
pub fn intersect_hostnames<'a>(listener: &'a str, route: &'a str) -> Option<&'a str> {
    match (listener.starts_with("*."), route.starts_with("*.")) {
        (false, false) => (listener == route).then_some(route),
        (true, false) => hostname_matches(listener, route).then_some(route),
        (false, true) => hostname_matches(route, listener).then_some(listener),
        (true, true) => {
            let (l, r) = (&listener[1..], &route[1..]);
            if r.ends_with(l) {
                Some(route)
            } else if l.ends_with(r) {
                Some(listener)
            } else {
                None
            }
        }
    }
}
