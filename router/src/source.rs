//! Where configurations come from. A source turns objects into [`Config`]s (through the
//! shared api -> core conversion and [`assemble::Combined`]) and hands each to the Index
//! actor with the [`Changes`] since its previous one.
//!
//! - [`manifests`]: a folder of YAML files, watched (standalone mode).

pub mod assemble;
pub mod kube;
pub mod manifests;

use std::sync::Arc;

use kthena_core::{Gateway, ModelServer, ObjectRef, Route};

use crate::pool::PodInfo;
use crate::state::ConfigDump;

/// A complete, valid configuration, and what changed since the previous one of its source.
///
/// The many-object kinds (ModelRoutes, ModelServers, Pods) and the per-object maps are
/// persistent maps: a configuration is cloned in O(1) and one changed object costs O(log n)
/// ([`assemble::Combined`]). The other kinds (Gateway API, Inference Extension, Services,
/// Namespaces, Secrets) are few; they are shared lists, rebuilt only when one of them changes.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Converted ModelRoutes. Each object is shared with the source that converted it, so an
    /// unchanged one is the same allocation from one configuration to the next.
    pub routes: imbl::OrdMap<ObjectRef, Arc<Route>>,
    /// `routes` by claimed name and by named ModelServer, kept with them.
    pub route_refs: kthena_core::RouteRefs,
    /// Converted ModelServers (shared the same way).
    pub servers: imbl::OrdMap<ObjectRef, Arc<ModelServer>>,
    /// Every Pod (shared the same way).
    pub pods: imbl::OrdMap<ObjectRef, Arc<PodInfo>>,
    /// Converted InferencePools (both API groups; gateway mode only).
    pub pools: Arc<Vec<kthena_core::InferencePool>>,
    /// HTTPRoutes with their Gateway parents (gateway mode only).
    pub http_routes: Arc<Vec<kthena_core::gateway::ParentedHttpRoute>>,
    /// Converted InferenceModels (gateway mode only).
    pub inference_models: Arc<Vec<kthena_core::InferenceModel>>,
    /// `kubernetes.io/tls` Secrets: PEM certificate chain and key (gateway mode only).
    pub tls_secrets: Arc<std::collections::HashMap<ObjectRef, TlsSecret>>,
    /// Secrets' values by Secret, for provider credentials (never logged or dumped).
    pub credentials: Arc<std::collections::HashMap<ObjectRef, SecretData>>,
    /// The API keys of Secrets labelled as such, hashed.
    pub api_keys: Arc<crate::auth::ApiKeys>,
    /// Converted ExternalModelProviders.
    pub providers: Arc<Vec<Arc<kthena_core::ExternalProvider>>>,
    /// Gateways of our classes (gateway mode only).
    pub gateways: Arc<Vec<Gateway>>,
    /// Names of the GatewayClasses whose controllerName is ours (gateway mode only).
    pub gateway_classes: Arc<Vec<String>>,
    /// Services (HTTPRoute backends).
    pub services: Arc<Vec<kthena_core::Service>>,
    /// Namespace labels.
    pub namespaces: Arc<kthena_core::gateway::Namespaces>,
    /// ReferenceGrants (gateway mode only).
    pub grants: Arc<kthena_core::ReferenceGrants>,
    /// InferenceObjectives (inference extension only).
    pub objectives: Arc<Vec<kthena_core::InferenceObjective>>,
    /// `metadata.generation` of each object that has one.
    pub generations: crate::state::Generations,
    /// Each route's parentRefs: converted, and as the spec writes them.
    pub parent_refs: crate::state::SpecParentRefs,
    /// Gateway `status.addresses` values.
    pub addresses: Arc<Vec<String>>,
    /// Whether the Inference Extension kinds were read.
    pub inference_extension: bool,
    /// `--controller-name`.
    pub controller_name: String,
    /// Objects left out because they do not convert, by kind and object.
    pub invalid: crate::state::InvalidObjects,
    /// The objects as read, for the debug endpoints.
    pub dump: ConfigDump,
    /// What changed since the source's previous configuration.
    pub changes: Changes,
}

/// What changed from one configuration of a source to its next: the Index updates exactly
/// these (and everything when `first`).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// ModelRoutes, as they were and as they are.
    pub routes: Vec<kthena_core::table::RouteChange>,
    /// ModelServers, as they were and as they are.
    pub servers: Vec<ServerChange>,
    /// Pods, as they were and as they are.
    pub pods: Vec<crate::pool::PodChange>,
    /// Every ModelRoute and ModelServer whose object changed, valid or not (an object left
    /// out as invalid, or changed only in its metadata, still changes its own status).
    pub objects: Vec<(crate::state::ObjectKind, ObjectRef)>,
    /// An object of another kind changed: the shared lists are new.
    pub others: bool,
}

impl Config {
    /// What status is computed from, shared with this configuration; the Index adds what
    /// serving it found (unbound ports, certificates, listener conflicts, unhonored fields).
    pub fn status_inputs(&self, gateway_mode: bool) -> crate::state::StatusInputs {
        crate::state::StatusInputs {
            routes: self.routes.clone(),
            route_refs: self.route_refs.clone(),
            gateways: self.gateways.clone(),
            http_routes: self.http_routes.clone(),
            gateway_mode,
            pools: self.pools.clone(),
            gateway_classes: self.gateway_classes.clone(),
            namespaces: self.namespaces.clone(),
            services: self.services.clone(),
            generations: self.generations.clone(),
            parent_refs: self.parent_refs.clone(),
            invalid: self.invalid.clone(),
            addresses: self.addresses.clone(),
            inference_models: self.inference_models.clone(),
            objectives: self.objectives.clone(),
            inference_extension: self.inference_extension,
            controller_name: self.controller_name.clone(),
            providers: Arc::new(
                self.providers
                    .iter()
                    .map(|p| {
                        (
                            p.clone(),
                            crate::provider::credential_state(p, &self.credentials),
                        )
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }
}

/// A Secret's values by key. Its `Debug` names the keys only: credentials never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretData(pub Arc<std::collections::BTreeMap<String, Vec<u8>>>);

impl std::fmt::Debug for SecretData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// One ModelServer as it was and as it is; `None` where it did not exist.
pub type ServerChange = (Option<Arc<ModelServer>>, Option<Arc<ModelServer>>);

impl Changes {
    /// What these changes can alter in status, before the Index adds the pools whose Pods
    /// changed: every object of every kind when another kind changed; otherwise each changed
    /// ModelRoute and ModelServer, the routes claiming a name a gone route version claimed,
    /// the routes naming a ModelServer that appeared or disappeared, and the Gateways (their
    /// listeners count attached routes) when a route changed.
    pub fn status_dirty(&self) -> crate::status::Dirty {
        use crate::state::ObjectKind as K;
        use crate::status::Dirty;
        if self.others {
            return Dirty::all();
        }
        let mut dirty = Dirty::default();
        dirty.objects.extend(self.objects.iter().cloned());
        if !self.routes.is_empty() {
            dirty.kinds = kthena_api::KindSet::of(&[K::Gateway]);
        }
        for (before, after) in &self.routes {
            if let Some(b) = before {
                dirty.objects.insert((K::ModelRoute, b.id.clone()));
                dirty
                    .names
                    .extend(kthena_core::claims::claims(b).map(|c| c.name().to_owned()));
            }
            if let Some(a) = after {
                dirty.objects.insert((K::ModelRoute, a.id.clone()));
            }
        }
        for (before, after) in &self.servers {
            if let Some(s) = after.as_ref().or(before.as_ref()) {
                dirty.objects.insert((K::ModelServer, s.id.clone()));
                if before.is_some() != after.is_some() {
                    dirty.servers.insert(s.id.clone());
                }
            }
        }
        dirty
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty() && self.servers.is_empty() && self.pods.is_empty() && !self.others
    }
}

/// The GatewayClass every Kthena installation handles, whatever its controllerName.
pub const DEFAULT_CLASS_NAME: &str = "kthena-router";

/// Gateway API settings of a source.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// `--enable-gateway-api`.
    pub enabled: bool,
    /// GatewayClasses with this controllerName are ours.
    pub controller_name: String,
    /// The router's namespace, home of the default Gateway.
    pub namespace: String,
    /// `--port`, the default Gateway's port.
    pub port: u16,
    /// `--enable-gateway-api-inference-extension`: serve InferencePools, InferenceModels and
    /// InferenceObjectives.
    pub inference_extension: bool,
    /// Addresses Gateways report in `status.addresses` (`IPAddress` or `Hostname` values).
    pub addresses: Vec<String>,
}

/// The flags' defaults: the Gateway API off, controllerName `volcano.sh/kthena-router`,
/// namespace `default`, `--port` 8080, no addresses.
impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            enabled: false,
            controller_name: "volcano.sh/kthena-router".into(),
            namespace: "default".into(),
            port: 8080,
            inference_extension: false,
            addresses: Vec::new(),
        }
    }
}

impl GatewayOptions {
    /// The Gateway Kthena creates when it is missing: `<namespace>/default`, class
    /// `kthena-router`, one HTTP listener `default` on `--port` with no hostname.
    pub fn default_gateway(&self) -> Gateway {
        Gateway {
            id: ObjectRef::new(self.namespace.clone(), "default"),
            order: kthena_core::CreationOrder {
                created_unix_nanos: None,
                namespace: self.namespace.clone(),
                name: "default".to_owned(),
            },
            class_name: DEFAULT_CLASS_NAME.to_owned(),
            listeners: vec![kthena_core::gateway::Listener {
                name: "default".to_owned(),
                port: self.port,
                protocol: kthena_core::gateway::Protocol::Http,
                hostname: None,
                allowed_namespaces: kthena_core::gateway::AllowedNamespaces::All,
                allows_http_routes: true,
                certificate_refs: vec![],
            }],
            implicit: true,
        }
    }
}

/// A `kubernetes.io/tls` Secret's certificate and key (converted by
/// `kthena_api::convert::tls_secret`).
pub use kthena_core::TlsSecret;
