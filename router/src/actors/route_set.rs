//! The RouteSet actor: owns the route table.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message};
use kthena_core::{BuildOptions, Route, RouteTable};

use crate::state::Shared;

/// Owns the ModelRoutes in force; rebuilds and publishes the table when they change.
#[derive(Debug)]
pub struct RouteSet {
    shared: Arc<Shared>,
    options: BuildOptions,
}

impl RouteSet {
    /// A RouteSet publishing into `shared`.
    pub fn new(shared: Arc<Shared>, options: BuildOptions) -> Self {
        Self { shared, options }
    }
}

impl Actor for RouteSet {
    type Context = Context<Self>;
}

/// Replace every route; answered once the new table is published.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetRoutes(pub Vec<Route>);

impl Handler<SetRoutes> for RouteSet {
    type Result = ();

    fn handle(&mut self, SetRoutes(routes): SetRoutes, _: &mut Context<Self>) {
        let count = routes.len();
        let table = RouteTable::build(routes, self.options);
        for s in table.skipped() {
            tracing::warn!(route = %s.route, reason = %s.reason, "modelroute not served");
        }
        self.shared.routes.store(Arc::new(table));
        tracing::info!(routes = count, "route table published");
    }
}
