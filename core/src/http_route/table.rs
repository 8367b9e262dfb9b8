//! The HTTPRoute table of one Gateway listener and the Gateway API precedence.
//!
//! Precedence, most important first:
//! 1. Hostname: routes whose matching hostname has the most characters of an exact (non
//!    wildcard) hostname, then the most characters of a wildcard hostname, then routes with no
//!    hostname (spec: `HTTPRouteSpec.hostnames`).
//! 2. Within one hostname, across every match of every rule of every route:
//!    an `Exact` path; then the longest `PathPrefix` (characters, trailing `/` ignored); then
//!    `RegularExpression` paths (their precedence is implementation-specific: here they rank
//!    after every Exact and PathPrefix match, whatever their length); then a method match;
//!    then the most header matches; then the most query parameter matches; then the oldest
//!    route (creation time); then `namespace/name` alphabetically; then rule order, then match
//!    order within the route.
//!
//! All of it is decided at build time: every (route, rule, match) is placed in a list per
//! hostname, sorted by the order above. [`HttpRouteTable::select`] does one hash lookup for the
//! exact Host, checks the wildcard hostnames longest first, then the routes without hostname,
//! and in each list stops at the first match that holds. Its cost is O(wildcard hostnames +
//! matches scanned before the hit), never a sort or an allocation (apart from lowercasing a
//! Host sent with capitals).

use std::cmp::Reverse;

use foldhash::{HashMap, HashMapExt};

use super::{
    BackendRef, HttpMatch, HttpRequestView, HttpRoute, HttpRule, PathMatch, hostname_matches,
    intersect_hostnames, normalize_host,
};
use crate::ObjectRef;

/// What [`HttpRouteTable::select`] chose for a request.
///
/// `backend: None` with no [`HttpRule::redirect`] means the rule has no backend to send to
/// (no backendRefs, or all weights 0): the router answers 500, as the spec asks.
#[derive(Debug, Clone, Copy)]
pub struct HttpSelection<'t> {
    /// The HTTPRoute.
    pub route: &'t HttpRoute,
    /// Index of the rule in `spec.rules`.
    pub rule_index: usize,
    /// The rule.
    pub rule: &'t HttpRule,
    /// Index of the match in the rule's `matches` (0 for a rule without matches).
    pub match_index: usize,
    /// The match that held; filters need its path to rewrite a prefix.
    pub matched: &'t HttpMatch,
    /// The backend picked by weight.
    pub backend: Option<&'t BackendRef>,
}

/// An immutable table of the HTTPRoutes attached to one listener. Build a new one when routes
/// change.
#[derive(Debug, Default)]
pub struct HttpRouteTable {
    /// Oldest first.
    routes: Vec<HttpRoute>,
    /// Exact hostname -> entries in precedence order.
    exact: HashMap<String, Vec<Entry>>,
    /// `*.suffix` hostnames, most characters first, each with its entries.
    wildcards: Vec<(String, Vec<Entry>)>,
    /// Routes without hostname (on a listener without hostname).
    any: Vec<Entry>,
    skipped: Vec<ObjectRef>,
}

/// One match of one rule of one route.
#[derive(Debug, Clone, Copy)]
struct Entry {
    route: u32,
    rule: u32,
    matched: u32,
}

/// Sort key of a match within one hostname, smallest first (route age and list positions
/// break the remaining ties).
type MatchRank = (u8, Reverse<usize>, bool, Reverse<usize>, Reverse<usize>);

fn match_rank(m: &HttpMatch) -> MatchRank {
    let (kind, prefix_len) = match &m.path {
        PathMatch::Exact(_) => (0, 0),
        PathMatch::Prefix(p) => (1, p.trim_end_matches('/').len()),
        PathMatch::Regex(_) => (2, 0),
    };
    (
        kind,
        Reverse(prefix_len),
        m.method.is_none(),
        Reverse(m.header_count()),
        Reverse(m.query_count()),
    )
}

impl HttpRouteTable {
    /// Indexes `routes` for a listener with `listener_hostname` (`None`: any host). Routes
    /// must already be valid (see [`super::validate`]).
    ///
    /// A route's hostnames are intersected with the listener's: those that do not intersect
    /// are ignored, and a route left with none is not served (see [`Self::skipped`]; its
    /// status says `NoMatchingListenerHostname`). A route without hostnames takes the
    /// listener's.
    pub fn build(
        routes: impl IntoIterator<Item = HttpRoute>,
        listener_hostname: Option<&str>,
    ) -> Self {
        let listener = listener_hostname.map(str::to_ascii_lowercase);
        let mut routes: Vec<HttpRoute> = routes.into_iter().collect();
        routes.sort_by(|a, b| a.order.cmp(&b.order));

        let mut skipped = Vec::new();
        let mut kept = Vec::with_capacity(routes.len());
        let mut hosts_of = Vec::with_capacity(routes.len());
        for route in routes {
            let mut hosts: Vec<String> = match (&listener, route.hostnames.is_empty()) {
                (None, _) => route.hostnames.clone(),
                (Some(l), true) => vec![l.clone()],
                (Some(l), false) => route
                    .hostnames
                    .iter()
                    .filter_map(|h| intersect_hostnames(l, h).map(str::to_owned))
                    .collect(),
            };
            if hosts.is_empty() && !route.hostnames.is_empty() {
                skipped.push(route.id.clone());
                continue;
            }
            hosts.sort();
            hosts.dedup();
            kept.push(route);
            hosts_of.push(hosts);
        }

        let mut exact: HashMap<String, Vec<Entry>> = HashMap::new();
        let mut wildcards: HashMap<String, Vec<Entry>> = HashMap::new();
        let mut any = Vec::new();
        for (rank, (route, hosts)) in kept.iter().zip(&hosts_of).enumerate() {
            let entries = route.rules.iter().enumerate().flat_map(|(r, rule)| {
                (0..rule.matches().len()).map(move |m| Entry {
                    route: u32::try_from(rank).expect("fewer than 2^32 routes"),
                    rule: u32::try_from(r).expect("fewer than 2^32 rules"),
                    matched: u32::try_from(m).expect("fewer than 2^32 matches"),
                })
            });
            if hosts.is_empty() {
                any.extend(entries);
                continue;
            }
            for h in hosts {
                let list = if h.starts_with("*.") {
                    wildcards.entry(h.clone()).or_default()
                } else {
                    exact.entry(h.clone()).or_default()
                };
                list.extend(entries.clone());
            }
        }

        let sort = |list: &mut Vec<Entry>| {
            list.sort_by_cached_key(|e| {
                let rule = &kept[e.route as usize].rules[e.rule as usize];
                (
                    match_rank(&rule.matches()[e.matched as usize]),
                    e.route,
                    e.rule,
                    e.matched,
                )
            });
        };
        exact.values_mut().for_each(sort);
        sort(&mut any);
        let mut wildcards: Vec<(String, Vec<Entry>)> = wildcards.into_iter().collect();
        wildcards.sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        wildcards.iter_mut().for_each(|(_, list)| sort(list));

        Self {
            routes: kept,
            exact,
            wildcards,
            any,
            skipped,
        }
    }

    /// The route, rule, match and backend for `req` by the precedence in the module docs;
    /// `None` when nothing matches (the router answers 404).
    pub fn select(&self, req: &impl HttpRequestView) -> Option<HttpSelection<'_>> {
        if let Some(raw) = req.host() {
            let host = normalize_host(raw);
            if let Some(found) = self
                .exact
                .get(host.as_ref())
                .and_then(|list| self.first(list, req))
            {
                return Some(found);
            }
            for (pattern, list) in &self.wildcards {
                if hostname_matches(pattern, &host)
                    && let Some(found) = self.first(list, req)
                {
                    return Some(found);
                }
            }
        }
        self.first(&self.any, req)
    }

    #[inline]
    fn first(&self, list: &[Entry], req: &impl HttpRequestView) -> Option<HttpSelection<'_>> {
        list.iter().find_map(|e| {
            let route = &self.routes[e.route as usize];
            let rule = &route.rules[e.rule as usize];
            let matched = &rule.matches()[e.matched as usize];
            matched.matches(req).then(|| HttpSelection {
                route,
                rule_index: e.rule as usize,
                rule,
                match_index: e.matched as usize,
                matched,
                backend: rule.pick(),
            })
        })
    }

    /// Every route served on the listener, oldest first.
    pub fn routes(&self) -> &[HttpRoute] {
        &self.routes
    }

    /// Routes left out because none of their hostnames intersects the listener's.
    pub fn skipped(&self) -> &[ObjectRef] {
        &self.skipped
    }
}
