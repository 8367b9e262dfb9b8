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

use foldhash::HashMap;

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

/// A model-name index on the request path: a persistent map (cloned in O(1), one name
/// changed in O(log n)) with a fast hasher.
type NameMap = imbl::GenericHashMap<
    String,
    Arc<Candidates>,
    foldhash::fast::RandomState,
    imbl::shared_ptr::DefaultSharedPtr,
>;

/// An immutable, indexed set of routes. [`RouteTable::with_changes`] derives the next table
/// from this one in time proportional to the routes that changed, sharing the rest.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// Every route in the table, by object.
    routes: imbl::OrdMap<ObjectRef, Arc<Route>>,
    models: NameMap,
    loras: NameMap,
    skipped: imbl::OrdMap<ObjectRef, Skipped>,
    gateway_mode: bool,
}

/// The routes claiming one name, oldest first (see [`crate::CreationOrder`]), by scope.
#[derive(Debug, Default)]
struct Candidates {
    /// Every route claiming the name, oldest first (the lists below are built from it).
    all: Vec<Arc<Route>>,
    /// Outside gateway mode: every route.
    direct: Vec<Arc<Route>>,
    /// Gateway mode, routes without parentRefs: by the route's namespace.
    by_namespace: HashMap<String, Vec<Arc<Route>>>,
    /// Gateway mode, routes with parentRefs: by Gateway namespace, then Gateway name.
    by_gateway: HashMap<String, HashMap<String, Vec<Arc<Route>>>>,
}

/// One ModelRoute as it was and as it is; `None` where it did not exist.
pub type RouteChange = (Option<Arc<Route>>, Option<Arc<Route>>);

impl RouteTable {
    /// Indexes `routes`. Routes must already be valid (see [`crate::validate::route`]).
    pub fn build<R: Into<Arc<Route>>>(
        routes: impl IntoIterator<Item = R>,
        options: BuildOptions,
    ) -> Self {
        let changes: Vec<RouteChange> =
            routes.into_iter().map(|r| (None, Some(r.into()))).collect();
        Self {
            gateway_mode: options.gateway_mode,
            ..Self::default()
        }
        .with_changes(&changes)
    }

    /// This table with `changes` applied: each route's old version removed, its new one
    /// added. Only the names the changed routes claim (before or after) are re-indexed; the
    /// rest of the table is shared with this one.
    pub fn with_changes(&self, changes: &[RouteChange]) -> Self {
        let mut next = self.clone();
        let options = BuildOptions {
            gateway_mode: self.gateway_mode,
        };
        // name -> (removed routes, added routes), for models and LoRA adapters.
        let mut models: std::collections::HashMap<&str, (Vec<&ObjectRef>, Vec<&Arc<Route>>)> =
            std::collections::HashMap::new();
        let mut loras: std::collections::HashMap<&str, (Vec<&ObjectRef>, Vec<&Arc<Route>>)> =
            std::collections::HashMap::new();
        for (before, after) in changes {
            if let Some(b) = before {
                next.routes.remove(&b.id);
                next.skipped.remove(&b.id);
                if let Some(n) = &b.model_name {
                    models.entry(n).or_default().0.push(&b.id);
                }
                for l in &b.lora_adapters {
                    loras.entry(l).or_default().0.push(&b.id);
                }
            }
            let Some(a) = after else { continue };
            if !(options.gateway_mode || a.parents.is_empty()) {
                next.skipped.insert(
                    a.id.clone(),
                    Skipped {
                        route: a.id.clone(),
                        reason: SkipReason::ParentRefsWithoutGatewayMode,
                    },
                );
                continue;
            }
            next.routes.insert(a.id.clone(), a.clone());
            if let Some(n) = &a.model_name {
                models.entry(n).or_default().1.push(a);
            }
            for l in &a.lora_adapters {
                loras.entry(l).or_default().1.push(a);
            }
        }
        for (map, names) in [(&mut next.models, models), (&mut next.loras, loras)] {
            for (name, (removed, added)) in names {
                let mut all: Vec<Arc<Route>> = map
                    .get(name)
                    .map(|c| {
                        c.all
                            .iter()
                            .filter(|r| !removed.contains(&&r.id))
                            .filter(|r| !added.iter().any(|a| a.id == r.id))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                all.extend(added.into_iter().cloned());
                if all.is_empty() {
                    map.remove(name);
                } else {
                    all.sort_by(|a, b| a.order.cmp(&b.order));
                    map.insert(name.to_owned(), Arc::new(Candidates::new(all, options)));
                }
            }
        }
        next
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
            return candidates.direct.iter().find_map(|r| f(r));
        }
        let listener = via?;
        let gw = &listener.gateway;
        let empty: &[Arc<Route>] = &[];
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
            let take_unbound =
                j == bound.len() || (i < unbound.len() && unbound[i].order < bound[j].order);
            let route = if take_unbound {
                i += 1;
                &unbound[i - 1]
            } else {
                j += 1;
                let route = &bound[j - 1];
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

    /// Every route in the table, by object (namespace, name).
    pub fn routes(&self) -> impl ExactSizeIterator<Item = &Arc<Route>> {
        self.routes.values()
    }

    /// How many routes the table holds.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Valid routes left out of the table, and why, by object.
    pub fn skipped(&self) -> impl ExactSizeIterator<Item = &Skipped> {
        self.skipped.values()
    }

    /// Why route `id` is left out of the table, when it is.
    pub fn skipped_route(&self, id: &ObjectRef) -> Option<&Skipped> {
        self.skipped.get(id)
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
    /// The scoped lists of `all` (oldest first).
    fn new(all: Vec<Arc<Route>>, options: BuildOptions) -> Self {
        let mut c = Candidates::default();
        for route in &all {
            if !options.gateway_mode {
                c.direct.push(route.clone());
            } else if route.parents.is_empty() {
                c.by_namespace
                    .entry(route.id.namespace.clone())
                    .or_default()
                    .push(route.clone());
            } else {
                for p in &route.parents {
                    let names = c.by_gateway.entry(p.gateway.namespace.clone()).or_default();
                    let list = names.entry(p.gateway.name.clone()).or_default();
                    // Two parentRefs to one Gateway list the route once.
                    if !list.last().is_some_and(|l| Arc::ptr_eq(l, route)) {
                        list.push(route.clone());
                    }
                }
            }
        }
        c.all = all;
        c
    }
}
