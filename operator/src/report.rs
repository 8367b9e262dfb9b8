//! The router's computed statuses ([`kthena_router::status::report`]) as the writer's input:
//! which API each object lives in and which `parents[]` entries are ours.

use kthena_router::state::StatusKind;
use kthena_router::status::ObjectStatus;
use kube::discovery::ApiResource;

use crate::desired::{DesiredStatus, ParentOwnership, StatusTarget};

/// The API resource of a kind the router writes status on; `None` for kinds it does not.
pub fn api_resource(kind: StatusKind) -> Option<ApiResource> {
    use kthena_api::inference::{v1, v1alpha2};
    Some(match kind {
        StatusKind::GatewayClass => {
            ApiResource::erase::<gateway_api::apis::standard::gatewayclasses::GatewayClass>(&())
        }
        StatusKind::Gateway => {
            ApiResource::erase::<gateway_api::apis::standard::gateways::Gateway>(&())
        }
        StatusKind::HttpRoute => {
            ApiResource::erase::<gateway_api::apis::standard::httproutes::HttpRoute>(&())
        }
        StatusKind::ModelRoute => ApiResource::erase::<kthena_api::modelroute::ModelRoute>(&()),
        StatusKind::ModelServer => ApiResource::erase::<kthena_api::modelserver::ModelServer>(&()),
        StatusKind::InferencePool => ApiResource::erase::<v1::InferencePool>(&()),
        StatusKind::InferencePoolV1alpha2 => ApiResource::erase::<v1alpha2::InferencePool>(&()),
        StatusKind::InferenceModel => ApiResource::erase::<v1alpha2::InferenceModel>(&()),
        StatusKind::InferenceObjective => ApiResource::erase::<v1alpha2::InferenceObjective>(&()),
        StatusKind::Pod | StatusKind::Service => return None,
    })
}

/// What to write for every object of `report`. `gateways` are ours, as (namespace, name):
/// InferencePool entries naming them are ours to replace.
pub fn desired(
    report: &[ObjectStatus],
    controller_name: &str,
    gateways: &[(String, String)],
) -> Vec<DesiredStatus> {
    report
        .iter()
        .filter_map(|o| {
            let api = api_resource(o.kind)?;
            let cluster_scoped = o.kind == StatusKind::GatewayClass;
            let parents = match o.kind {
                StatusKind::HttpRoute | StatusKind::InferencePool => {
                    ParentOwnership::ControllerName(controller_name.to_owned())
                }
                StatusKind::InferencePoolV1alpha2 => ParentOwnership::Gateways(gateways.to_vec()),
                _ => ParentOwnership::Whole,
            };
            Some(DesiredStatus {
                target: StatusTarget {
                    api,
                    namespace: (!cluster_scoped).then(|| o.namespace.clone()),
                    name: o.name.clone(),
                },
                generation: o.generation,
                status: o.status.clone(),
                parents,
            })
        })
        .collect()
}
