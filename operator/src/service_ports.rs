//! Managed Service ports: the router's Service exposes every programmed Gateway listener port
//! (Kthena makes users edit the Service by hand). Ports the router added are named
//! `gw-<port>`; they are removed when no listener uses the port any more. Ports a user wrote
//! are never changed.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

/// Prefix of the names of the ports the router manages.
pub const MANAGED_PREFIX: &str = "gw-";

/// The Service's ports once every port of `programmed` is exposed (targetPort = the same
/// number): managed ports no longer programmed are dropped, the others kept in order, the new
/// ones appended in port order. `None` when nothing changes.
pub fn desired_ports(
    current: &[ServicePort],
    programmed: &BTreeSet<u16>,
) -> Option<Vec<ServicePort>> {
    let managed = |p: &ServicePort| {
        p.name
            .as_deref()
            .is_some_and(|n| n.starts_with(MANAGED_PREFIX))
    };
    let mut ports: Vec<ServicePort> = current
        .iter()
        .filter(|p| {
            !managed(p) || u16::try_from(p.port).is_ok_and(|port| programmed.contains(&port))
        })
        .cloned()
        .collect();
    for port in programmed {
        // A port exposed under any name, or whose target is the port, is already served.
        let exposed = ports.iter().any(|p| {
            p.port == i32::from(*port)
                || (p.target_port.as_ref() == Some(&IntOrString::Int(i32::from(*port)))
                    && !managed(p))
        });
        if !exposed {
            ports.push(ServicePort {
                name: Some(format!("{MANAGED_PREFIX}{port}")),
                port: i32::from(*port),
                target_port: Some(IntOrString::Int(i32::from(*port))),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            });
        }
    }
    (ports != current).then_some(ports)
}

/// What [`reconcile`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The Service already exposes exactly these ports.
    Unchanged,
    /// The ports were patched.
    Patched,
    /// The Service does not exist.
    NoService,
}

/// Makes Service `namespace/name` expose every port of `programmed`.
pub async fn reconcile(
    client: &Client,
    namespace: &str,
    name: &str,
    programmed: &BTreeSet<u16>,
    field_manager: &str,
) -> Result<Outcome, kube::Error> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let Some(svc) = api.get_opt(name).await? else {
        return Ok(Outcome::NoService);
    };
    let current = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let Some(ports) = desired_ports(&current, programmed) else {
        return Ok(Outcome::Unchanged);
    };
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": svc.metadata.resource_version},
        "spec": {"ports": ports},
    });
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(field_manager.to_owned()),
            ..PatchParams::default()
        },
        &Patch::Merge(&patch),
    )
    .await?;
    tracing::info!(service = %format!("{namespace}/{name}"), ports = ?programmed, "Service ports follow the Gateway listeners");
    Ok(Outcome::Patched)
}
