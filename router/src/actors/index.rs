//! The Index actor: applies whole configurations, in order, to the other actors.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::{Actor, ActorFutureExt, Addr, AtomicResponse, Context, Handler, Message, WrapFuture};
use arc_swap::ArcSwap;
use kthena_core::ObjectRef;

use super::endpoint_pool::{EndpointPool, Update};
use super::route_set::{RouteSet, SetRoutes};
use crate::pool::PoolSnapshot;
use crate::source::Config;
use crate::state::{PoolCell, PoolMap, Shared};

/// Starts one EndpointPool per ModelServer, feeds them Pods, and hands routes to the RouteSet.
///
/// Order keeps requests in flight safe: new pools are published before routes that may use
/// them, and pools are removed only after the routes no longer name them.
#[derive(Debug)]
pub struct Index {
    shared: Arc<Shared>,
    route_set: Addr<RouteSet>,
    pools: HashMap<ObjectRef, (Addr<EndpointPool>, PoolCell)>,
}

impl Index {
    /// An Index publishing into `shared` and driving `route_set`.
    pub fn new(shared: Arc<Shared>, route_set: Addr<RouteSet>) -> Self {
        Self {
            shared,
            route_set,
            pools: HashMap::new(),
        }
    }

    fn publish_pools(&self) {
        let map: PoolMap = self
            .pools
            .iter()
            .map(|(id, (_, cell))| (id.clone(), cell.clone()))
            .collect();
        self.shared.pools.store(Arc::new(map));
    }
}

impl Actor for Index {
    type Context = Context<Self>;
}

/// Apply a complete configuration; the next one waits until this one is in force.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Apply(pub Config);

impl Handler<Apply> for Index {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, Apply(config): Apply, _: &mut Context<Self>) -> Self::Result {
        let pods = Arc::new(config.pods);
        let wanted: HashSet<ObjectRef> = config.servers.iter().map(|s| s.id.clone()).collect();
        for server in config.servers {
            match self.pools.get(&server.id) {
                Some((addr, _)) => addr.do_send(Update {
                    server,
                    pods: pods.clone(),
                }),
                None => {
                    let id = server.id.clone();
                    let cell: PoolCell = Arc::new(ArcSwap::from_pointee(PoolSnapshot::build(
                        server, &pods, None,
                    )));
                    let addr = EndpointPool::new(cell.clone()).start();
                    self.pools.insert(id, (addr, cell));
                }
            }
        }
        self.publish_pools();
        self.shared.dump.store(Arc::new(config.dump));
        let routes = self.route_set.send(SetRoutes(config.routes));
        AtomicResponse::new(Box::pin(routes.into_actor(self).map(
            move |result, act, _| {
                if let Err(e) = result {
                    tracing::error!(error = %e, "route set unavailable");
                    return;
                }
                let before = act.pools.len();
                // Dropping the last address stops the pool actor.
                act.pools.retain(|id, _| wanted.contains(id));
                if act.pools.len() != before {
                    act.publish_pools();
                }
                act.shared.set_ready();
            },
        )))
    }
}
