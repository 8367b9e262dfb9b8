//! The router's computed statuses ([`kthena_dataplane::status::report`]) as the writer's input:
//! which API each object lives in and which `parents[]` entries are ours.

use kthena_dataplane::state::ObjectKind;
use kthena_dataplane::status::ObjectStatus;
use kube::discovery::ApiResource;

use crate::desired::{DesiredStatus, ParentOwnership, StatusTarget};

/// The API resource of a kind the router writes status on; `None` for kinds it does not.
pub fn api_resource(kind: ObjectKind) -> Option<ApiResource> {
    kind.writes_status().then(|| kind.api_resource().clone())
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
        .filter_map(|o| desired_one(o, controller_name, gateways))
        .collect()
}

/// What to write for `o`; `None` for a kind whose status the router does not write.
pub fn desired_one(
    o: &ObjectStatus,
    controller_name: &str,
    gateways: &[(String, String)],
) -> Option<DesiredStatus> {
    let api = api_resource(o.kind)?;
    let cluster_scoped = o.kind.is_cluster_scoped();
    let parents = match o.kind {
        ObjectKind::HttpRoute | ObjectKind::InferencePool => {
            ParentOwnership::ControllerName(controller_name.to_owned())
        }
        ObjectKind::InferencePoolV1alpha2 => ParentOwnership::Gateways(gateways.to_vec()),
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
}
