//! Which ModelRoutes one change can touch: routes by the names they claim (a route's
//! `Conflicted` status depends on every route claiming one of its names) and by the
//! ModelServers they send to (its `ResolvedRefs` depends on their existence).
//!
//! In: routes added and removed one at a time, as their configuration changes. Out: the ids
//! of the routes claiming a name or naming a ModelServer. Persistent maps, so a configuration
//! holding the index is cloned in O(1) and one route changes it in O(log n).

use crate::{Backend, ObjectRef, Route, claims};

type Map<K> = imbl::GenericHashMap<
    K,
    imbl::OrdSet<ObjectRef>,
    foldhash::fast::RandomState,
    imbl::shared_ptr::DefaultSharedPtr,
>;

/// ModelRoutes by claimed name and by the ModelServers they name.
#[derive(Debug, Clone, Default)]
pub struct RouteRefs {
    names: Map<String>,
    servers: Map<ObjectRef>,
}

impl RouteRefs {
    /// Enters `route` under each name it claims and each ModelServer it names.
    pub fn insert(&mut self, route: &Route) {
        for c in claims::claims(route) {
            self.names
                .entry(c.name().to_owned())
                .or_default()
                .insert(route.id.clone());
        }
        for s in servers(route) {
            self.servers
                .entry(s.clone())
                .or_default()
                .insert(route.id.clone());
        }
    }

    /// Takes `route` (the version that was inserted) out again.
    pub fn remove(&mut self, route: &Route) {
        for c in claims::claims(route) {
            remove_from(&mut self.names, c.name(), &route.id);
        }
        for s in servers(route) {
            remove_from(&mut self.servers, s, &route.id);
        }
    }

    /// The routes claiming `name` (as `modelName` or a LoRA adapter).
    pub fn claiming(&self, name: &str) -> impl Iterator<Item = &ObjectRef> {
        self.names.get(name).into_iter().flatten()
    }

    /// The routes with a target naming ModelServer `server`.
    pub fn naming(&self, server: &ObjectRef) -> impl Iterator<Item = &ObjectRef> {
        self.servers.get(server).into_iter().flatten()
    }
}

/// The ModelServers `route` names (repeats included).
fn servers(route: &Route) -> impl Iterator<Item = &ObjectRef> {
    route
        .rules
        .iter()
        .flat_map(|r| r.targets())
        .filter_map(|t| match &t.backend {
            Backend::ModelServer(id) => Some(id),
            Backend::ExternalProvider(_) => None,
        })
}

fn remove_from<K, Q>(map: &mut Map<K>, key: &Q, id: &ObjectRef)
where
    K: std::hash::Hash + Eq + Clone + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized,
{
    if let Some(set) = map.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}
