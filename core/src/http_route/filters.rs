//! HTTPRoute filters and the pure functions that compute their effect on a request.

use std::fmt::Write as _;

use super::{HttpRequestView, PathMatch, normalize_host};

/// Status code of a `RequestRedirect` without `statusCode`.
pub const DEFAULT_REDIRECT_STATUS: u16 = 302;

/// One entry of `rules[].filters`. Filters run in list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `RequestHeaderModifier`: edits the request headers sent to the backend.
    RequestHeaderModifier(HeaderModifier),
    /// `ResponseHeaderModifier`: edits the response headers sent to the client.
    ResponseHeaderModifier(HeaderModifier),
    /// `RequestRedirect`: answers with a redirect instead of forwarding.
    RequestRedirect(Redirect),
    /// `URLRewrite`: rewrites host and path before forwarding.
    UrlRewrite(UrlRewrite),
    /// A filter type this router does not implement (`RequestMirror`, `CORS`,
    /// `ExtensionRef`). It is never skipped: requests selecting its rule get an error.
    Unsupported {
        /// The filter `type`, as written.
        kind: String,
    },
}

impl Filter {
    /// The filter `type`, as the spec spells it.
    pub fn kind(&self) -> &str {
        match self {
            Filter::RequestHeaderModifier(_) => "RequestHeaderModifier",
            Filter::ResponseHeaderModifier(_) => "ResponseHeaderModifier",
            Filter::RequestRedirect(_) => "RequestRedirect",
            Filter::UrlRewrite(_) => "URLRewrite",
            Filter::Unsupported { kind } => kind,
        }
    }

    /// The field holding the filter's settings, for error paths (`requestRedirect`).
    pub fn field(&self) -> &'static str {
        match self {
            Filter::RequestHeaderModifier(_) => "requestHeaderModifier",
            Filter::ResponseHeaderModifier(_) => "responseHeaderModifier",
            Filter::RequestRedirect(_) => "requestRedirect",
            Filter::UrlRewrite(_) => "urlRewrite",
            Filter::Unsupported { .. } => "type",
        }
    }
}

/// `requestHeaderModifier` / `responseHeaderModifier`. Names are lowercase; each name appears
/// in at most one of the three lists (see [`super::validate`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderModifier {
    /// Overwrite (or add) these headers.
    pub set: Vec<(String, String)>,
    /// Append these values to the header (joined with `,`), or add it.
    pub add: Vec<(String, String)>,
    /// Delete these headers.
    pub remove: Vec<String>,
}

impl HeaderModifier {
    /// Applies the modifier to `headers`, names compared case-insensitively: `set` replaces
    /// the first header of the name in place and drops the others, `add` appends `,value` to
    /// the first header of the name, `remove` drops every header of the name. A header that is
    /// not there is pushed at the end by `set` and `add`.
    pub fn apply(&self, headers: &mut Vec<(String, String)>) {
        for (name, value) in &self.set {
            let mut found = false;
            headers.retain_mut(|(n, v)| {
                if !n.eq_ignore_ascii_case(name) {
                    return true;
                }
                if found {
                    return false;
                }
                found = true;
                v.clone_from(value);
                true
            });
            if !found {
                headers.push((name.clone(), value.clone()));
            }
        }
        for (name, value) in &self.add {
            match headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                Some((_, v)) => {
                    v.push(',');
                    v.push_str(value);
                }
                None => headers.push((name.clone(), value.clone())),
            }
        }
        for name in &self.remove {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        }
    }
}

/// `path` of a redirect or rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathModifier {
    /// `ReplaceFullPath`: the new path.
    ReplaceFullPath(String),
    /// `ReplacePrefixMatch`: what replaces the matched `PathPrefix` (may be empty).
    ReplacePrefixMatch(String),
}

impl PathModifier {
    /// The new path for `path`, which was selected by `matched`. `ReplacePrefixMatch` needs a
    /// `PathPrefix` match (validation enforces it); with any other match the path is kept.
    pub fn apply(&self, matched: &PathMatch, path: &str) -> String {
        match (self, matched) {
            (PathModifier::ReplaceFullPath(p), _) => p.clone(),
            (PathModifier::ReplacePrefixMatch(r), PathMatch::Prefix(prefix)) => {
                rewrite_path(prefix, path, r)
            }
            (PathModifier::ReplacePrefixMatch(_), _) => path.to_owned(),
        }
    }
}

/// `ReplacePrefixMatch`: replaces the segments of `original_path` matched by `matched_prefix`
/// with `replacement`, segment-aware, trailing `/` of prefix and replacement ignored:
///
/// | path       | prefix  | replacement | result     |
/// |------------|---------|-------------|------------|
/// | `/foo/bar` | `/foo`  | `/xyz`      | `/xyz/bar` |
/// | `/foo/bar` | `/foo/` | `/xyz/`     | `/xyz/bar` |
/// | `/foo/`    | `/foo`  | `/xyz`      | `/xyz/`    |
/// | `/foo/bar` | `/foo`  | `` or `/`   | `/bar`     |
/// | `/foo`     | `/foo`  | `` or `/`   | `/`        |
/// | `/x`       | `/`     | `/bar`      | `/bar/x`   |
/// | `/`        | `/`     | `/bar`      | `/bar/`    |
///
/// The last row is our choice where the spec's table is silent: prefix `/` matches zero
/// segments, so the path's own `/` is kept after the replacement. A path the prefix does not
/// match (never the case after selection) is returned unchanged.
pub fn rewrite_path(matched_prefix: &str, original_path: &str, replacement: &str) -> String {
    let prefix = matched_prefix.trim_end_matches('/');
    let Some(rest) = original_path
        .strip_prefix(prefix)
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        return original_path.to_owned();
    };
    let mut out = format!("{}{rest}", replacement.trim_end_matches('/'));
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

/// `requestRedirect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `scheme` (`http` or `https`); the request's when unset.
    pub scheme: Option<String>,
    /// `hostname`; the request's Host (without port) when unset.
    pub hostname: Option<String>,
    /// `path`; the request path when unset.
    pub path: Option<PathModifier>,
    /// `port`; see [`Redirect::location`] when unset.
    pub port: Option<u16>,
    /// `statusCode`: 301, 302, 303, 307 or 308; default [`DEFAULT_REDIRECT_STATUS`].
    pub status_code: u16,
}

impl Redirect {
    /// The `Location` of the redirect for `req`, selected by `matched`, that came in with
    /// `scheme` on a listener bound to `listener_port`.
    ///
    /// Port: `port` if set; else the well-known port of `scheme` when the redirect sets a
    /// scheme (80 for http, 443 for https); else the listener port. The port is left out when
    /// it is the scheme's well-known one. The query string is kept.
    pub fn location(
        &self,
        req: &impl HttpRequestView,
        matched: &PathMatch,
        scheme: &str,
        listener_port: u16,
    ) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(scheme);
        let port = self.port.unwrap_or_else(|| match &self.scheme {
            Some(s) => well_known_port(s).unwrap_or(listener_port),
            None => listener_port,
        });
        let request_host = normalize_host(req.host().unwrap_or_default());
        let host = self.hostname.as_deref().unwrap_or(&request_host);
        let path = match &self.path {
            Some(p) => p.apply(matched, req.path()),
            None => req.path().to_owned(),
        };
        let mut location = format!("{scheme}://{host}");
        if well_known_port(scheme) != Some(port) {
            // Writing to a String cannot fail.
            let _ = write!(location, ":{port}");
        }
        location.push_str(&path);
        if let Some(q) = req.query() {
            location.push('?');
            location.push_str(q);
        }
        location
    }
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `urlRewrite`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlRewrite {
    /// `hostname`: the Host sent to the backend.
    pub hostname: Option<String>,
    /// `path`.
    pub path: Option<PathModifier>,
}

impl UrlRewrite {
    /// The path to send to the backend for `path` selected by `matched`; `None` keeps it.
    pub fn rewritten_path(&self, matched: &PathMatch, path: &str) -> Option<String> {
        self.path.as_ref().map(|p| p.apply(matched, path))
    }
}
