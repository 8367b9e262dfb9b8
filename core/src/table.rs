//! The route table: every usable ModelRoute, indexed by model name, and the selection rules.
//!
//! Precedence, as in Kthena: the request's `model` is looked up among `modelName`s first, then
//! among `loraAdapters`; the candidate routes are tried oldest first (creation time, then
//! namespace/name); in a route the first matching rule wins and its weighted picker chooses the
//! target; a matching rule whose weights are all 0 lets the next route try.
//!
//! Gateway binding: outside gateway mode, routes with `parentRefs` are left out. In gateway
//! mode, a route without `parentRefs` serves every listener of the Gateways in its own
//! namespace, and a route with them serves only the listeners they select.
//!
//! Lookups are hash lookups by model name (and Gateway), so their cost does not grow with the
//! number of routes.

use std::fmt;
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};

use crate::{ListenerRef, ObjectRef, RequestView, Route, Rule, Target};

/// How the table is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Gateway API mode (`--enable-gateway-api`): routes bind to Gateway listeners.
    pub gateway_mode: bool,
}

/// A route that is valid but not in the table, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The ModelRoute.
    pub route: ObjectRef,
    /// Why it is not served.
    pub reason: SkipReason,
}

/// Why a valid route is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The route has `parentRefs` but the router is not in gateway mode.
    ParentRefsWithoutGatewayMode,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::ParentRefsWithoutGatewayMode => {
                f.write_str("route has parentRefs but the Gateway API is not enabled")
            }
        }
    }
}

/// No route serves the request. Its text is Kthena's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// No ModelRoute claims the model, or none of their rules matched the request.
    #[error("route not found")]
    RouteNotFound,
}

/// What [`RouteTable::select`] chose for a request.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'t> {
    /// The ModelRoute.
    pub route: &'t Route,
    /// Index of the matching rule in `spec.rules`.
    pub rule_index: usize,
    /// The matching rule.
    pub rule: &'t Rule,
    /// The picked target.
    pub target: &'t Target,
    /// True when the model matched one of the route's `loraAdapters` rather than `modelName`.
    pub lora: bool,
}

/// An immutable, indexed set of routes. Build a new one when routes change.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// Oldest first; an index here is a route's rank. Shared with the configuration the
    /// table was built from.
    routes: Vec<Arc<Route>>,
    models: HashMap<String, Candidates>,
    loras: HashMap<String, Candidates>,
    skipped: Vec<Skipped>,
    gateway_mode: bool,
}

/// The routes claiming one name, as ranks in ascending order (oldest first), by scope.
#[derive(Debug, Default)]
struct Candidates {
    /// Outside gateway mode: every route.
    direct: Vec<u32>,
    /// Gateway mode, routes without parentRefs: by the route's namespace.
    by_namespace: HashMap<String, Vec<u32>>,
    /// Gateway mode, routes with parentRefs: by Gateway namespace, then Gateway name.
    by_gateway: HashMap<String, HashMap<String, Vec<u32>>>,
}

impl RouteTable {
    /// Indexes `routes`. Routes must already be valid (see [`crate::validate::route`]).
    pub fn build<R: Into<Arc<Route>>>(
        routes: impl IntoIterator<Item = R>,
        options: BuildOptions,
    ) -> Self {
        let mut skipped = Vec::new();
        let mut routes: Vec<Arc<Route>> = routes
            .into_iter()
            .map(Into::into)
            .filter(|r| {
                let keep = options.gateway_mode || r.parents.is_empty();
                if !keep {
                    skipped.push(Skipped {
                        route: r.id.clone(),
                        reason: SkipReason::ParentRefsWithoutGatewayMode,
                    });
                }
                keep
            })
            .collect();
        routes.sort_by(|a, b| a.order.cmp(&b.order));

        let mut models: HashMap<String, Candidates> = HashMap::new();
        let mut loras: HashMap<String, Candidates> = HashMap::new();
        for (rank, route) in routes.iter().enumerate() {
            let rank = u32::try_from(rank).expect("fewer than 2^32 routes");
            if let Some(name) = &route.model_name {
                models
                    .entry(name.clone())
                    .or_default()
                    .insert(rank, route, options);
            }
            for lora in &route.lora_adapters {
                loras
                    .entry(lora.clone())
                    .or_default()
                    .insert(rank, route, options);
            }
        }
        Self {
            routes,
            models,
            loras,
            skipped,
            gateway_mode: options.gateway_mode,
        }
    }

    /// The route, rule and target for `req`.
    ///
    /// `via` is the Gateway listener the request came in through. Outside gateway mode it is
    /// ignored; in gateway mode a request that came through no listener matches no route.
    pub fn select(
        &self,
        req: &impl RequestView,
        via: Option<&ListenerRef>,
    ) -> Result<Selection<'_>, SelectError> {
        let model = req.model();
        for (map, lora) in [(&self.models, false), (&self.loras, true)] {
            let Some(candidates) = map.get(model) else {
                continue;
            };
            let found = self.each_candidate(candidates, via, |route| {
                route
                    .select(req)
                    .map(|(rule_index, rule, target)| Selection {
                        route,
                        rule_index,
                        rule,
                        target,
                        lora,
                    })
            });
            if found.is_some() {
                return found.ok_or(SelectError::RouteNotFound);
            }
        }
        Err(SelectError::RouteNotFound)
    }

    /// Calls `f` on the routes of `candidates` that serve `via`, oldest first, until it
    /// returns `Some`.
    #[inline]
    fn each_candidate<'t, T>(
        &'t self,
        candidates: &'t Candidates,
        via: Option<&ListenerRef>,
        mut f: impl FnMut(&'t Route) -> Option<T>,
    ) -> Option<T> {
        if !self.gateway_mode {
            return candidates
                .direct
                .iter()
                .find_map(|&rank| f(&self.routes[rank as usize]));
        }
        let listener = via?;
        let gw = &listener.gateway;
        let empty: &[u32] = &[];
        let unbound = candidates
            .by_namespace
            .get(&gw.namespace)
            .map_or(empty, Vec::as_slice);
        let bound = candidates
            .by_gateway
            .get(&gw.namespace)
            .and_then(|m| m.get(&gw.name))
            .map_or(empty, Vec::as_slice);
        // Merge the two age-ordered lists so the oldest route wins across both.
        let (mut i, mut j) = (0, 0);
        while i < unbound.len() || j < bound.len() {
            let take_unbound = j == bound.len() || (i < unbound.len() && unbound[i] < bound[j]);
            let route = if take_unbound {
                i += 1;
                &self.routes[unbound[i - 1] as usize]
            } else {
                j += 1;
                let route = &self.routes[bound[j - 1] as usize];
                // The index found the Gateway; the listener (sectionName, port) is the rule's.
                if !route.serves(listener) {
                    continue;
                }
                route
            };
            if let Some(found) = f(route) {
                return Some(found);
            }
        }
        None
    }

    /// Every route in the table, oldest first.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    /// Valid routes left out of the table, and why.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// True when the table was built in gateway mode.
    pub fn gateway_mode(&self) -> bool {
        self.gateway_mode
    }

    /// Every model name and LoRA adapter name some route serves (for `GET /v1/models`).
    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        self.models
            .keys()
            .chain(self.loras.keys().filter(|k| !self.models.contains_key(*k)))
            .map(String::as_str)
    }
}

impl Candidates {
    fn insert(&mut self, rank: u32, route: &Route, options: BuildOptions) {
        if !options.gateway_mode {
            self.direct.push(rank);
        } else if route.parents.is_empty() {
            push_once(
                self.by_namespace
                    .entry(route.id.namespace.clone())
                    .or_default(),
                rank,
            );
        } else {
            for p in &route.parents {
                let names = self
                    .by_gateway
                    .entry(p.gateway.namespace.clone())
                    .or_default();
                push_once(names.entry(p.gateway.name.clone()).or_default(), rank);
            }
        }
    }
}

/// Ranks arrive in ascending order, so a duplicate can only be the last element.
fn push_once(ranks: &mut Vec<u32>, rank: u32) {
    if ranks.last() != Some(&rank) {
        ranks.push(rank);
    }
}
