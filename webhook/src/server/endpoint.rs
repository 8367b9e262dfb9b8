//! The `/validate/...` paths and the kinds each one reads.

use kthena_api::manifest::Object;
use kube::core::GroupVersionKind;
use serde::de::DeserializeOwned;

const INFERENCE_V1: &str = "inference.networking.k8s.io";
const INFERENCE_X: &str = "inference.networking.x-k8s.io";

/// One validation path; the ValidatingWebhookConfiguration sends each kind to its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/validate/modelroute`: ModelRoute.
    ModelRoute,
    /// `/validate/modelserver`: ModelServer.
    ModelServer,
    /// `/validate/inferencepool`: InferencePool, `v1` and `v1alpha2`.
    InferencePool,
    /// `/validate/inferencemodel`: InferenceModel.
    InferenceModel,
    /// `/validate/inferenceobjective`: InferenceObjective.
    InferenceObjective,
    /// `/validate/httproute`: HTTPRoute.
    HttpRoute,
    /// `/validate/gateway`: Gateway.
    Gateway,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 7] = [
        Endpoint::ModelRoute,
        Endpoint::ModelServer,
        Endpoint::InferencePool,
        Endpoint::InferenceModel,
        Endpoint::InferenceObjective,
        Endpoint::HttpRoute,
        Endpoint::Gateway,
    ];

    /// The URL path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::ModelRoute => "/validate/modelroute",
            Endpoint::ModelServer => "/validate/modelserver",
            Endpoint::InferencePool => "/validate/inferencepool",
            Endpoint::InferenceModel => "/validate/inferencemodel",
            Endpoint::InferenceObjective => "/validate/inferenceobjective",
            Endpoint::HttpRoute => "/validate/httproute",
            Endpoint::Gateway => "/validate/gateway",
        }
    }

    /// The kind this endpoint validates, as the denial of a wrong kind names it.
    pub fn kind(self) -> &'static str {
        match self {
            Endpoint::ModelRoute => "ModelRoute",
            Endpoint::ModelServer => "ModelServer",
            Endpoint::InferencePool => "InferencePool",
            Endpoint::InferenceModel => "InferenceModel",
            Endpoint::InferenceObjective => "InferenceObjective",
            Endpoint::HttpRoute => "HTTPRoute",
            Endpoint::Gateway => "Gateway",
        }
    }

    /// The endpoint that validates `object`; none for kinds the webhook does not judge.
    pub fn of(object: &Object) -> Option<Endpoint> {
        Some(match object {
            Object::ModelRoute(_) => Endpoint::ModelRoute,
            Object::ModelServer(_) => Endpoint::ModelServer,
            Object::InferencePool(_) | Object::InferencePoolV1alpha2(_) => Endpoint::InferencePool,
            Object::InferenceModel(_) => Endpoint::InferenceModel,
            Object::InferenceObjective(_) => Endpoint::InferenceObjective,
            Object::HttpRoute(_) => Endpoint::HttpRoute,
            Object::Gateway(_) => Endpoint::Gateway,
            Object::ExternalModelProvider(_)
            | Object::GatewayClass(_)
            | Object::ReferenceGrant(_)
            | Object::Pod(_)
            | Object::Secret(_)
            | Object::Service(_)
            | Object::Namespace(_)
            | Object::Other { .. } => return None,
        })
    }

    /// Reads `value` (an object of kind `gvk`) as the typed object this endpoint validates.
    /// The error names a kind this endpoint does not read, or what does not deserialize.
    pub(super) fn decode(
        self,
        gvk: &GroupVersionKind,
        value: serde_json::Value,
    ) -> Result<Object, String> {
        fn de<T: DeserializeOwned>(v: serde_json::Value, kind: &str) -> Result<Box<T>, String> {
            serde_json::from_value(v)
                .map(Box::new)
                .map_err(|e| format!("invalid {kind}: {e}"))
        }
        let GroupVersionKind {
            group,
            version,
            kind,
        } = gvk;
        let ours = group == kthena_api::GROUP && version == kthena_api::VERSION;
        let gateway = group == kthena_api::convert::GATEWAY_GROUP
            && matches!(version.as_str(), "v1" | "v1beta1");
        match (self, kind.as_str()) {
            (Endpoint::ModelRoute, "ModelRoute") if ours => de(value, kind).map(Object::ModelRoute),
            (Endpoint::ModelServer, "ModelServer") if ours => {
                de(value, kind).map(Object::ModelServer)
            }
            (Endpoint::InferencePool, "InferencePool")
                if group == INFERENCE_V1 && version == "v1" =>
            {
                de(value, kind).map(Object::InferencePool)
            }
            (Endpoint::InferencePool, "InferencePool")
                if group == INFERENCE_X && version == "v1alpha2" =>
            {
                de(value, kind).map(Object::InferencePoolV1alpha2)
            }
            (Endpoint::InferenceModel, "InferenceModel")
                if group == INFERENCE_X && version == "v1alpha2" =>
            {
                de(value, kind).map(Object::InferenceModel)
            }
            (Endpoint::InferenceObjective, "InferenceObjective")
                if group == INFERENCE_X && version == "v1alpha2" =>
            {
                de(value, kind).map(Object::InferenceObjective)
            }
            (Endpoint::HttpRoute, "HTTPRoute") if gateway => de(value, kind).map(Object::HttpRoute),
            (Endpoint::Gateway, "Gateway") if gateway => de(value, kind).map(Object::Gateway),
            _ => Err(format!(
                "{} validates {}, not {}",
                self.path(),
                self.kind(),
                shown(gvk)
            )),
        }
    }
}

/// `group/version Kind`, or `version Kind` for the core group.
fn shown(gvk: &GroupVersionKind) -> String {
    if gvk.group.is_empty() {
        format!("{} {}", gvk.version, gvk.kind)
    } else {
        format!("{}/{} {}", gvk.group, gvk.version, gvk.kind)
    }
}
