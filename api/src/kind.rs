//! Every kind kthena-rs reads, in one table: [`ObjectKind`], whose group, version, kind and
//! plural come from each type's `kube::Resource`, and which [`crate::manifest::Object`]
//! variant holds it. A kind is added here and nowhere else is a list of kinds written.

use std::sync::OnceLock;

use kube::core::ApiResource;

use crate::manifest::Object;

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident => $ty:ty;)*) => {
        /// A kind kthena-rs reads.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        pub enum ObjectKind {
            $($(#[$doc])* $variant,)*
        }

        impl ObjectKind {
            /// Every kind, in table order.
            pub const ALL: &'static [ObjectKind] = &[$(ObjectKind::$variant),*];

            /// Group, version, kind and plural, from the type's `kube::Resource`.
            pub fn api_resource(self) -> &'static ApiResource {
                static RESOURCES: OnceLock<Vec<ApiResource>> = OnceLock::new();
                &RESOURCES.get_or_init(|| vec![$(ApiResource::erase::<$ty>(&())),*])
                    [self as usize]
            }
        }

        impl Object {
            /// This object's kind; `None` for [`Object::Other`].
            pub fn kind(&self) -> Option<ObjectKind> {
                match self {
                    $(Object::$variant(_) => Some(ObjectKind::$variant),)*
                    Object::Other { .. } => None,
                }
            }

            /// Reads `value` as an object of `kind`.
            pub fn from_value(
                kind: ObjectKind,
                value: serde_norway::Value,
            ) -> Result<Object, serde_norway::Error> {
                Ok(match kind {
                    $(ObjectKind::$variant => Object::$variant(Box::new(serde_norway::from_value(value)?)),)*
                })
            }

            /// This object's namespace (`default` when absent) and name; `None` for
            /// [`Object::Other`].
            pub fn object_ref(&self) -> Option<kthena_core::ObjectRef> {
                match self {
                    $(Object::$variant(o) => Some(crate::convert::object_ref(o.as_ref())),)*
                    Object::Other { .. } => None,
                }
            }
        }
    };
}

kinds! {
    /// `networking.serving.volcano.sh/v1alpha1` ModelRoute.
    ModelRoute => crate::modelroute::ModelRoute;
    /// `networking.serving.volcano.sh/v1alpha1` ModelServer.
    ModelServer => crate::modelserver::ModelServer;
    /// `networking.serving.volcano.sh/v1alpha1` ExternalModelProvider.
    ExternalModelProvider => crate::externalmodelprovider::ExternalModelProvider;
    /// `gateway.networking.k8s.io/v1` GatewayClass (cluster-scoped).
    GatewayClass => gateway_api::apis::standard::gatewayclasses::GatewayClass;
    /// `gateway.networking.k8s.io/v1` Gateway.
    Gateway => gateway_api::apis::standard::gateways::Gateway;
    /// `gateway.networking.k8s.io/v1` HTTPRoute.
    HttpRoute => gateway_api::apis::standard::httproutes::HttpRoute;
    /// `gateway.networking.k8s.io/v1beta1` ReferenceGrant.
    ReferenceGrant => gateway_api::apis::standard::referencegrants::ReferenceGrant;
    /// `inference.networking.k8s.io/v1` InferencePool.
    InferencePool => crate::inference::v1::InferencePool;
    /// `inference.networking.x-k8s.io/v1alpha2` InferencePool.
    InferencePoolV1alpha2 => crate::inference::v1alpha2::InferencePool;
    /// `inference.networking.x-k8s.io/v1alpha2` InferenceModel.
    InferenceModel => crate::inference::v1alpha2::InferenceModel;
    /// `inference.networking.x-k8s.io/v1alpha2` InferenceObjective.
    InferenceObjective => crate::inference::v1alpha2::InferenceObjective;
    /// Core `v1` Pod.
    Pod => k8s_openapi::api::core::v1::Pod;
    /// Core `v1` Secret.
    Secret => k8s_openapi::api::core::v1::Secret;
    /// Core `v1` Service.
    Service => k8s_openapi::api::core::v1::Service;
    /// Core `v1` Namespace (cluster-scoped).
    Namespace => k8s_openapi::api::core::v1::Namespace;
}

impl ObjectKind {
    /// The kind as Kubernetes spells it (`HTTPRoute`).
    pub fn name(self) -> &'static str {
        &self.api_resource().kind
    }

    /// The API group (empty for core kinds).
    pub fn group(self) -> &'static str {
        &self.api_resource().group
    }

    /// `group/version` (`v1` for core kinds).
    pub fn api_version(self) -> &'static str {
        &self.api_resource().api_version
    }

    /// The resource's plural (`httproutes`).
    pub fn plural(self) -> &'static str {
        &self.api_resource().plural
    }

    /// True for the kinds whose status the router writes (its Gateway API and Inference
    /// Extension objects, ModelRoutes, ModelServers and ExternalModelProviders).
    pub fn writes_status(self) -> bool {
        !matches!(
            self,
            ObjectKind::ReferenceGrant
                | ObjectKind::Pod
                | ObjectKind::Secret
                | ObjectKind::Service
                | ObjectKind::Namespace
        )
    }

    /// True for the cluster-scoped kinds (no namespace).
    pub fn is_cluster_scoped(self) -> bool {
        matches!(self, ObjectKind::GatewayClass | ObjectKind::Namespace)
    }

    /// The kind a document of `api_version` and `kind` is: the table's version, and for the
    /// Gateway API kinds `v1` or `v1beta1` (served by the same CRDs).
    pub fn of(api_version: &str, kind: &str) -> Option<Self> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        ObjectKind::ALL.iter().copied().find(|k| {
            let r = k.api_resource();
            r.kind == kind
                && r.group == group
                && (r.version == version
                    || (group == crate::convert::GATEWAY_GROUP
                        && matches!(version, "v1" | "v1beta1")))
        })
    }
}

/// A set of kinds, a bit each (what to recompute, what changed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindSet(u32);

impl KindSet {
    /// No kind.
    pub const EMPTY: KindSet = KindSet(0);

    /// Every kind.
    pub fn all() -> Self {
        Self::of(ObjectKind::ALL)
    }

    /// The set of `kinds`.
    pub fn of(kinds: &[ObjectKind]) -> Self {
        KindSet(kinds.iter().fold(0, |bits, k| bits | (1 << *k as u32)))
    }

    /// True when `kind` is in the set.
    pub fn contains(self, kind: ObjectKind) -> bool {
        self.0 & (1 << kind as u32) != 0
    }

    /// Both sets.
    #[must_use]
    pub fn union(self, other: KindSet) -> Self {
        KindSet(self.0 | other.0)
    }

    /// True when no kind is in the set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set as bits (to keep in an atomic).
    pub fn bits(self) -> u32 {
        self.0
    }

    /// The set of `bits` (from [`KindSet::bits`]).
    pub fn from_bits(bits: u32) -> Self {
        KindSet(bits & Self::all().0)
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectKind;

    #[test]
    fn every_kind_is_found_by_its_api_version_and_kind() {
        for k in ObjectKind::ALL {
            assert_eq!(ObjectKind::of(k.api_version(), k.name()), Some(*k), "{k:?}");
        }
        assert_eq!(
            ObjectKind::of("gateway.networking.k8s.io/v1beta1", "HTTPRoute"),
            Some(ObjectKind::HttpRoute)
        );
        assert_eq!(
            ObjectKind::of("inference.networking.x-k8s.io/v1alpha2", "InferencePool"),
            Some(ObjectKind::InferencePoolV1alpha2)
        );
        assert_eq!(ObjectKind::of("apps/v1", "Deployment"), None);
        assert_eq!(ObjectKind::HttpRoute.name(), "HTTPRoute");
        assert_eq!(ObjectKind::InferencePool.plural(), "inferencepools");
        assert_eq!(ObjectKind::Pod.api_version(), "v1");
    }
}
