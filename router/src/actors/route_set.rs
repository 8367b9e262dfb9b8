//! The RouteSet actor: owns the route table.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message};
use kthena_core::table::RouteChange;
use kthena_core::{BuildOptions, Route, RouteTable};

use crate::state::Shared;

/// Owns the route tables: derives each new ModelRoute table from the last one and the
/// routes that changed ([`RouteTable::with_changes`]), and rebuilds the HTTPRoute tables and
/// InferenceModel owners when those kinds changed.
#[derive(Debug)]
pub struct RouteSet {
    shared: Arc<Shared>,
    /// The ModelRoute table in force (also published in `shared`).
    table: Arc<RouteTable>,
    /// A configuration's table was published.
    published: bool,
}

impl RouteSet {
    /// A RouteSet publishing into `shared`.
    pub fn new(shared: Arc<Shared>, options: BuildOptions) -> Self {
        let table = Arc::new(RouteTable::build(Vec::<Arc<Route>>::new(), options));
        shared.routes.store(table.clone());
        Self {
            shared,
            table,
            published: false,
        }
    }
}

impl Actor for RouteSet {
    type Context = Context<Self>;
}

/// Apply changed routes; answered once the new tables are published.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetRoutes {
    /// ModelRoutes that changed, as they were and as they are.
    pub routes: Vec<RouteChange>,
    /// The Gateway API parts, when one of them changed.
    pub others: Option<OtherRoutes>,
}

/// What the HTTPRoute tables and InferenceModel owners are built from.
#[derive(Debug)]
pub struct OtherRoutes {
    /// HTTPRoutes with their Gateway parents (gateway mode).
    pub http_routes: Arc<Vec<kthena_core::gateway::ParentedHttpRoute>>,
    /// Our Gateways (gateway mode).
    pub gateways: Arc<Vec<kthena_core::Gateway>>,
    /// InferenceModels (gateway mode).
    pub inference_models: Arc<Vec<kthena_core::InferenceModel>>,
    /// Namespace labels, for `allowedRoutes` selectors.
    pub namespaces: Arc<kthena_core::gateway::Namespaces>,
}

impl Handler<SetRoutes> for RouteSet {
    type Result = ();

    fn handle(&mut self, set: SetRoutes, _: &mut Context<Self>) {
        let SetRoutes { routes, others } = set;
        if let Some(o) = others {
            // The oldest InferenceModel owns a name on a pool; status reports the others.
            let models: foldhash::HashMap<_, _> =
                kthena_core::inference_model::owners(&o.inference_models)
                    .into_iter()
                    .map(|((api, pool, model), m)| {
                        (
                            (crate::pool::PoolKey::InferencePool(api, pool), model),
                            m.clone(),
                        )
                    })
                    .collect();
            self.shared.inference_models.store(Arc::new(models));
            if self.table.gateway_mode() {
                let tables = kthena_core::gateway::http_route_tables(
                    &o.gateways,
                    &o.http_routes,
                    &o.namespaces,
                );
                tracing::info!(
                    httproutes = o.http_routes.len(),
                    listeners = tables.len(),
                    "httproute tables published"
                );
                self.shared.http_routes.store(Arc::new(tables));
            }
        }
        // Published once at the first configuration, then when a ModelRoute changed.
        if routes.is_empty() && self.published {
            return;
        }
        self.published = true;
        let table = Arc::new(self.table.with_changes(&routes));
        for (_, after) in &routes {
            if let Some(s) = after.as_ref().and_then(|r| table.skipped_route(&r.id)) {
                tracing::warn!(route = %s.route, reason = %s.reason, "modelroute not served");
            }
        }
        self.shared.routes.store(table.clone());
        tracing::info!(
            routes = table.len(),
            changed = routes.len(),
            "route table published"
        );
        self.table = table;
    }
}
