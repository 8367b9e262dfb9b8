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
pub type PoolMap = foldhash::HashMap<crate::pool::PoolKey, PoolCell>;

/// State shared between the actors (writers) and the request handlers (readers).
#[derive(Debug, Default)]
pub struct Shared {
    /// The route table, written by the RouteSet actor.
    pub routes: ArcSwap<RouteTable>,
    /// The ModelServers, written by the Index actor.
    pub pools: ArcSwap<PoolMap>,
    /// The API keys of labelled Secrets (hashed), written by the Index actor.
    pub api_keys: ArcSwap<crate::auth::ApiKeys>,
    /// The ExternalModelProviders with their credentials, written by the Index actor.
    pub providers: ArcSwap<crate::provider::ProviderMap>,
    /// Gateway mode: the Gateway listeners of each served port, written by the Index actor.
    pub ports: ArcSwap<HashMap<u16, PortListeners>>,
    /// Gateway mode: the HTTPRoutes attached to each listener, written by the RouteSet actor.
    pub http_routes:
        ArcSwap<HashMap<kthena_core::ListenerRef, kthena_core::http_route::HttpRouteTable>>,
    /// Gateway mode: InferenceModels by served pool and model name, written by the RouteSet.
    pub inference_models:
        ArcSwap<foldhash::HashMap<(crate::pool::PoolKey, String), kthena_core::InferenceModel>>,
    /// The scheduler in force, written at start and by the configuration file watcher.
    pub scheduler: ArcSwap<crate::scheduling::SchedulerCell>,
    /// InferenceObjectives (priorities kept for the scheduler), written by the Index actor.
    pub objectives: ArcSwap<Vec<kthena_core::InferenceObjective>>,
    /// The converted objects status is computed from, written by the Index actor.
    pub status_inputs: ArcSwap<StatusInputs>,
    /// The objects of the configuration in force, for the debug endpoints.
    pub dump: ArcSwap<ConfigDump>,
    /// Bumped by the Index each time a configuration is in force: every pool it changed has
    /// published and the route tables are built (status writers wait on it).
    pub applied: tokio::sync::watch::Sender<u64>,
    /// The objects whose status may have changed since the status writer last took them
    /// (the Index adds with each configuration it applies); `None` while no writer tracks them
    /// (standalone mode computes status when asked).
    status_dirty: std::sync::Mutex<Option<crate::status::Dirty>>,
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

    /// From now on, keeps what each applied configuration can alter in status, starting with
    /// everything, for [`Shared::take_status_dirty`].
    pub fn track_status(&self) {
        *self.dirty() = Some(crate::status::Dirty::all());
    }

    /// Adds `dirty` to what the status writer will recompute (nothing when none tracks it).
    pub fn mark_status_dirty(&self, dirty: crate::status::Dirty) {
        if let Some(d) = self.dirty().as_mut() {
            d.merge(dirty);
        }
    }

    /// What applied configurations altered since the last call (empty when not tracked).
    pub fn take_status_dirty(&self) -> crate::status::Dirty {
        self.dirty()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn dirty(&self) -> std::sync::MutexGuard<'_, Option<crate::status::Dirty>> {
        self.status_dirty
            .lock()
            .expect("no panic while the status set is held")
    }
}

/// The objects in force, as read, for `/debug/config_dump/*` and the webhook's view of the
/// cluster. Shared with the source (no copy per configuration: the many-object kinds are
/// persistent maps, the others shared lists) and rendered to JSON only when asked.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ConfigDump {
    /// ModelRoutes.
    pub modelroutes: ObjectList<kthena_api::modelroute::ModelRoute>,
    /// ModelServers.
    pub modelservers: ObjectList<kthena_api::modelserver::ModelServer>,
    /// Pods.
    pub pods: ObjectList<k8s_openapi::api::core::v1::Pod>,
    /// Gateways (gateway mode).
    pub gateways: Arc<Vec<Arc<gateway_api::apis::standard::gateways::Gateway>>>,
    /// HTTPRoutes (gateway mode).
    pub httproutes: Arc<Vec<Arc<gateway_api::apis::standard::httproutes::HttpRoute>>>,
    /// InferencePools, both API groups (gateway mode).
    pub inferencepools: Arc<Vec<DumpedPool>>,
    /// InferenceModels (gateway mode).
    pub inferencemodels: Arc<Vec<Arc<kthena_api::inference::v1alpha2::InferenceModel>>>,
    /// InferenceObjectives (gateway mode).
    pub inferenceobjectives: Arc<Vec<Arc<kthena_api::inference::v1alpha2::InferenceObjective>>>,
    /// ExternalModelProviders (their specs name Secrets, never hold credentials).
    pub externalmodelproviders:
        Arc<Vec<Arc<kthena_api::externalmodelprovider::ExternalModelProvider>>>,
}

/// The objects of one kind by identity: a persistent map (cloned in O(1), one object changed
/// in O(log n)), serialized as a list in (namespace, name) order.
#[derive(Debug)]
pub struct ObjectList<T>(pub imbl::OrdMap<kthena_core::ObjectRef, Arc<T>>);

impl<T> Clone for ObjectList<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for ObjectList<T> {
    fn default() -> Self {
        Self(imbl::OrdMap::new())
    }
}

impl<T> ObjectList<T> {
    /// How many objects.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The objects in (namespace, name) order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<T>> {
        self.0.values()
    }
}

/// Objects keyed by their namespace and name (a later one of the same name wins).
impl<T: kube::Resource> FromIterator<Arc<T>> for ObjectList<T> {
    fn from_iter<I: IntoIterator<Item = Arc<T>>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|o| (kthena_api::convert::object_ref(o.as_ref()), o))
                .collect(),
        )
    }
}

impl<T: Serialize> Serialize for ObjectList<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.values())
    }
}

/// An InferencePool of either API group, as read.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum DumpedPool {
    /// `inference.networking.k8s.io/v1`.
    V1(Arc<kthena_api::inference::v1::InferencePool>),
    /// `inference.networking.x-k8s.io/v1alpha2`.
    V1alpha2(Arc<kthena_api::inference::v1alpha2::InferencePool>),
}

/// The kinds the router reads (and writes status on, for most): the one table in `kthena_api`.
pub use kthena_api::ObjectKind;

/// `metadata.generation` by object (a persistent map: shared between configurations).
pub type Generations = imbl::HashMap<(ObjectKind, kthena_core::ObjectRef), i64>;

/// Each route's Gateway parentRefs: converted, and the spec's JSON (status repeats it).
pub type SpecParentRefs = imbl::HashMap<
    (ObjectKind, kthena_core::ObjectRef),
    Arc<Vec<(kthena_core::ParentRef, serde_json::Value)>>,
>;

/// The objects left out, by kind and object.
pub type InvalidObjects = imbl::OrdMap<(ObjectKind, kthena_core::ObjectRef), Invalid>;

/// An object left out of the configuration because it does not convert.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// Its kind.
    pub kind: ObjectKind,
    /// The object.
    pub id: kthena_core::ObjectRef,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// Every problem, with its field path.
    pub errors: kthena_core::FieldErrors,
}

/// What the status functions need beyond the published tables: shared with the
/// configuration (persistent maps and shared lists, no copy per change).
#[derive(Debug, Default)]
pub struct StatusInputs {
    /// Every converted ModelRoute, served or not.
    pub routes: imbl::OrdMap<kthena_core::ObjectRef, Arc<kthena_core::Route>>,
    /// `routes` by claimed name and by named ModelServer.
    pub route_refs: kthena_core::RouteRefs,
    /// Our Gateways (gateway mode).
    pub gateways: Arc<Vec<kthena_core::Gateway>>,
    /// HTTPRoutes with their parents (gateway mode).
    pub http_routes: Arc<Vec<kthena_core::gateway::ParentedHttpRoute>>,
    /// True in gateway mode.
    pub gateway_mode: bool,
    /// Gateway listener ports that could not be bound.
    pub unbound_ports: Vec<u16>,
    /// HTTPS listeners whose certificate could not be used: reason and message.
    pub bad_certificates: Vec<(kthena_core::ListenerRef, &'static str, String)>,
    /// InferencePools (gateway mode).
    pub pools: Arc<Vec<kthena_core::InferencePool>>,
    /// Our GatewayClasses.
    pub gateway_classes: Arc<Vec<String>>,
    /// Listeners that conflict with older ones on their port.
    pub conflicts: Vec<kthena_core::gateway::ListenerConflict>,
    /// Namespace labels.
    pub namespaces: Arc<kthena_core::gateway::Namespaces>,
    /// Services.
    pub services: Arc<Vec<kthena_core::Service>>,
    /// Generations.
    pub generations: Generations,
    /// HTTPRoute parentRefs as written.
    pub parent_refs: SpecParentRefs,
    /// Objects left out.
    pub invalid: InvalidObjects,
    /// Gateway `status.addresses`.
    pub addresses: Arc<Vec<String>>,
    /// InferenceModels (gateway mode).
    pub inference_models: Arc<Vec<kthena_core::InferenceModel>>,
    /// InferenceObjectives (inference extension).
    pub objectives: Arc<Vec<kthena_core::InferenceObjective>>,
    /// Whether the Inference Extension kinds are served.
    pub inference_extension: bool,
    /// `--controller-name`.
    pub controller_name: String,
    /// Every ExternalModelProvider and whether its credential resolves.
    pub providers: Arc<
        Vec<(
            Arc<kthena_core::ExternalProvider>,
            kthena_core::CredentialState,
        )>,
    >,
    /// The fields of each ModelServer that are accepted but not acted on yet
    /// (`kthena_core::unhonored`); servers with none are absent.
    pub unhonored_servers: imbl::OrdMap<kthena_core::ObjectRef, kthena_core::FieldErrors>,
}
