//! What the request path reads: immutable snapshots published by the actors.
//!
//! Actors are the only writers; a request loads the current `Arc`s (a few atomic operations)
//! and never waits on a mailbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use kthena_core::{PortListeners, RouteTable};
use serde::Serialize;

use crate::pool::PoolSnapshot;

/// The snapshot cell of one ModelServer, written by its EndpointPool actor.
pub type PoolCell = Arc<ArcSwap<PoolSnapshot>>;

/// Every pool's cell, by ModelServer or InferencePool.
pub type PoolMap = HashMap<crate::pool::PoolKey, PoolCell>;

/// State shared between the actors (writers) and the request handlers (readers).
#[derive(Debug, Default)]
pub struct Shared {
    /// The route table, written by the RouteSet actor.
    pub routes: ArcSwap<RouteTable>,
    /// The ModelServers, written by the Index actor.
    pub pools: ArcSwap<PoolMap>,
    /// Gateway mode: the Gateway listeners of each served port, written by the Index actor.
    pub ports: ArcSwap<HashMap<u16, PortListeners>>,
    /// Gateway mode: the HTTPRoutes attached to each listener, written by the RouteSet actor.
    pub http_routes:
        ArcSwap<HashMap<kthena_core::ListenerRef, kthena_core::http_route::HttpRouteTable>>,
    /// Gateway mode: InferenceModels by served pool and model name, written by the RouteSet.
    pub inference_models:
        ArcSwap<HashMap<(crate::pool::PoolKey, String), kthena_core::InferenceModel>>,
    /// The converted objects status is computed from, written by the Index actor.
    pub status_inputs: ArcSwap<StatusInputs>,
    /// The objects of the configuration in force, for the debug endpoints.
    pub dump: ArcSwap<ConfigDump>,
    ready: AtomicBool,
}

impl Shared {
    /// True once the first configuration is in force.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks the first configuration as loaded.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

/// The objects in force, as JSON, for `/debug/config_dump/*`.
#[derive(Debug, Default, Serialize)]
pub struct ConfigDump {
    /// ModelRoutes.
    pub modelroutes: Vec<serde_json::Value>,
    /// ModelServers.
    pub modelservers: Vec<serde_json::Value>,
    /// Pods.
    pub pods: Vec<serde_json::Value>,
    /// Gateways (gateway mode).
    pub gateways: Vec<serde_json::Value>,
    /// HTTPRoutes (gateway mode).
    pub httproutes: Vec<serde_json::Value>,
    /// InferencePools, both API groups (gateway mode).
    pub inferencepools: Vec<serde_json::Value>,
    /// InferenceModels (gateway mode).
    pub inferencemodels: Vec<serde_json::Value>,
}

/// What the status functions need beyond the published tables.
#[derive(Debug, Default)]
pub struct StatusInputs {
    /// Every converted ModelRoute, served or not.
    pub routes: Vec<kthena_core::Route>,
    /// Our Gateways (gateway mode).
    pub gateways: Vec<kthena_core::Gateway>,
    /// HTTPRoutes with their parents (gateway mode).
    pub http_routes: Vec<kthena_core::gateway::ParentedHttpRoute>,
    /// True in gateway mode.
    pub gateway_mode: bool,
    /// Gateway listener ports that could not be bound.
    pub unbound_ports: Vec<u16>,
    /// HTTPS listeners whose certificate could not be used: reason and message.
    pub bad_certificates: Vec<(kthena_core::ListenerRef, &'static str, String)>,
    /// InferencePools (gateway mode).
    pub pools: Vec<kthena_core::InferencePool>,
}
