//! The RouteSet actor: owns the route table.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message};
use kthena_core::{BuildOptions, Route, RouteTable};

use crate::state::{Shared, same_arcs};

/// Owns the ModelRoutes in force; rebuilds and publishes the table when they change.
#[derive(Debug)]
pub struct RouteSet {
    shared: Arc<Shared>,
    options: BuildOptions,
    /// The ModelRoutes of the table in force; `None` before the first.
    routes: Option<Vec<Arc<Route>>>,
}

impl RouteSet {
    /// A RouteSet publishing into `shared`.
    pub fn new(shared: Arc<Shared>, options: BuildOptions) -> Self {
        Self {
            shared,
            options,
            routes: None,
        }
    }
}

impl Actor for RouteSet {
    type Context = Context<Self>;
}

/// Replace every route; answered once the new tables are published.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetRoutes {
    /// ModelRoutes, shared with the configuration.
    pub routes: Vec<Arc<Route>>,
    /// HTTPRoutes with their Gateway parents (gateway mode).
    pub http_routes: Vec<kthena_core::gateway::ParentedHttpRoute>,
    /// Our Gateways (gateway mode).
    pub gateways: Vec<kthena_core::Gateway>,
    /// InferenceModels (gateway mode).
    pub inference_models: Vec<kthena_core::InferenceModel>,
    /// Namespace labels, for `allowedRoutes` selectors.
    pub namespaces: kthena_core::gateway::Namespaces,
}

impl Handler<SetRoutes> for RouteSet {
    type Result = ();

    fn handle(&mut self, set: SetRoutes, _: &mut Context<Self>) {
        let SetRoutes {
            routes,
            http_routes,
            gateways,
            inference_models,
            namespaces,
        } = set;
        // The oldest InferenceModel owns a name on a pool; status reports the others.
        let models: std::collections::HashMap<_, _> =
            kthena_core::inference_model::owners(&inference_models)
                .into_iter()
                .map(|((api, pool, model), m)| {
                    (
                        (crate::pool::PoolKey::InferencePool(api, pool), model),
                        m.clone(),
                    )
                })
                .collect();
        self.shared.inference_models.store(Arc::new(models));
        if self.options.gateway_mode {
            let tables =
                kthena_core::gateway::http_route_tables(&gateways, &http_routes, &namespaces);
            tracing::info!(
                httproutes = http_routes.len(),
                listeners = tables.len(),
                "httproute tables published"
            );
            self.shared.http_routes.store(Arc::new(tables));
        }
        // The ModelRoute table is rebuilt only when a ModelRoute changed.
        if self
            .routes
            .as_deref()
            .is_some_and(|r| same_arcs(r, &routes))
        {
            return;
        }
        self.routes = Some(routes.clone());
        let count = routes.len();
        let table = RouteTable::build(routes, self.options);
        for s in table.skipped() {
            tracing::warn!(route = %s.route, reason = %s.reason, "modelroute not served");
        }
        self.shared.routes.store(Arc::new(table));
        tracing::info!(routes = count, "route table published");
    }
}
