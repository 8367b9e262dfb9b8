//! The EndpointPool actor: owns the endpoints of one ModelServer.

use std::sync::Arc;

use actix::{Actor, Context, Handler, Message};

use crate::pool::{PodInfo, PoolSnapshot, Upstream};
use crate::state::PoolCell;

/// Owns one pool's upstream (ModelServer or InferencePool) and the Pods it selects; publishes a [`PoolSnapshot`] into its
/// cell whenever either changes. In-flight counts survive republishing.
#[derive(Debug)]
pub struct EndpointPool {
    cell: PoolCell,
}

impl EndpointPool {
    /// A pool publishing into `cell`, which already holds the first snapshot.
    pub fn new(cell: PoolCell) -> Self {
        Self { cell }
    }
}

impl Actor for EndpointPool {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        let snap = self.cell.load();
        tracing::debug!(server = %snap.upstream.key, endpoints = snap.endpoints.len(), "endpoint pool started");
    }
}

/// The upstream and the Pods of the configuration in force.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Update {
    /// The converted ModelServer or InferencePool.
    pub upstream: Upstream,
    /// The Pods the upstream selects (the Index finds them).
    pub pods: Arc<Vec<PodInfo>>,
}

impl Handler<Update> for EndpointPool {
    type Result = ();

    fn handle(&mut self, Update { upstream, pods }: Update, _: &mut Context<Self>) {
        let previous = self.cell.load();
        let next = PoolSnapshot::build(upstream, &pods, Some(&previous));
        let changed = next.upstream != previous.upstream
            || next.endpoints.len() != previous.endpoints.len()
            || next
                .endpoints
                .iter()
                .zip(&previous.endpoints)
                .any(|(a, b)| !Arc::ptr_eq(a, b));
        if changed {
            tracing::info!(server = %next.upstream.key, endpoints = next.endpoints.len(), "endpoints published");
            self.cell.store(Arc::new(next));
        }
    }
}
