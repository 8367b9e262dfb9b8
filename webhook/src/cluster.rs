//! The other objects of the cluster that a review looks at.

use std::collections::BTreeSet;

use gateway_api::apis::standard::gateways::Gateway;
use kthena_api::manifest::Object;
use kthena_api::modelroute::ModelRoute;

/// The objects already stored, besides the one under review: the rules look for parent
/// Gateways and for model names claimed by other ModelRoutes here.
///
/// In Kubernetes mode the router's watcher stores implement it; offline validation and tests
/// use [`Objects`].
pub trait Cluster {
    /// Every ModelRoute. The reviewed object's own stored version may be among them; the rules
    /// skip it by namespace/name.
    fn model_routes(&self) -> Vec<ModelRoute>;
    /// Every Gateway.
    fn gateways(&self) -> Vec<Gateway>;
    /// Which Gateways and HTTPRoutes are this router's to judge. Everything by default.
    fn scope(&self) -> Scope {
        Scope::Everything
    }
}

/// Which Gateway API objects the rules judge. Other controllers' Gateways and HTTPRoutes
/// share the API with ours: a router must not refuse what it does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every object given (offline validation, tests).
    Everything,
    /// Gateways of these GatewayClasses, and HTTPRoutes with a parent Gateway of one of
    /// them (a route whose parents do not exist yet is not judged).
    Classes(BTreeSet<String>),
}

impl Scope {
    /// Whether Gateways of class `class` are judged.
    pub fn serves_class(&self, class: &str) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Classes(classes) => classes.contains(class),
        }
    }
}

/// A [`Cluster`] over objects held in memory (read from manifest files, or built in tests).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Objects {
    objects: Vec<Object>,
}

impl Objects {
    /// The cluster holding exactly `objects`.
    pub fn new(objects: Vec<Object>) -> Self {
        Self { objects }
    }

    /// The objects, in the order given.
    pub fn as_slice(&self) -> &[Object] {
        &self.objects
    }
}

impl From<Vec<Object>> for Objects {
    fn from(objects: Vec<Object>) -> Self {
        Self::new(objects)
    }
}

impl FromIterator<Object> for Objects {
    fn from_iter<I: IntoIterator<Item = Object>>(iter: I) -> Self {
        Self::new(iter.into_iter().collect())
    }
}

impl Cluster for Objects {
    fn model_routes(&self) -> Vec<ModelRoute> {
        self.objects
            .iter()
            .filter_map(|o| match o {
                Object::ModelRoute(r) => Some(r.as_ref().clone()),
                _ => None,
            })
            .collect()
    }

    fn gateways(&self) -> Vec<Gateway> {
        self.objects
            .iter()
            .filter_map(|o| match o {
                Object::Gateway(g) => Some(g.as_ref().clone()),
                _ => None,
            })
            .collect()
    }
}

/// An empty cluster: nothing else exists.
impl Cluster for () {
    fn model_routes(&self) -> Vec<ModelRoute> {
        Vec::new()
    }

    fn gateways(&self) -> Vec<Gateway> {
        Vec::new()
    }
}
