//! Pod, Secret, Namespace and GatewayClass -> their [`kthena_core`] values.

use k8s_openapi::api::core::v1;
use kthena_core as core;

use super::{DEFAULT_NAMESPACE, object_ref};

/// Reads a Pod: it is an endpoint candidate when its phase is Running, its Ready condition is
/// True, it has no deletionTimestamp and a valid podIP; its named TCP container ports.
pub fn pod(pod: &v1::Pod) -> core::Pod {
    let status = pod.status.as_ref();
    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let ip = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|ip| ip.parse().ok());
    core::Pod {
        id: core::ObjectRef::new(
            pod.metadata
                .namespace
                .as_deref()
                .unwrap_or(DEFAULT_NAMESPACE),
            pod.metadata.name.as_deref().unwrap_or_default(),
        ),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        ready_ip: ip.filter(|_| running && ready && !deleting),
        named_ports: pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.protocol.as_deref().is_none_or(|proto| proto == "TCP"))
            .filter_map(|p| Some((p.name.clone()?, u16::try_from(p.container_port).ok()?)))
            .collect(),
    }
}

/// Drops from `pod` what neither routing ([`pod`]) nor the debug dump uses, so a watcher's
/// store holds a few hundred bytes per Pod instead of the whole object: managed fields,
/// annotations, owner references, volumes, every container field but name and ports, and
/// every status field but phase, the Ready condition and the Pod IPs.
pub fn reduce_pod(pod: &mut v1::Pod) {
    let meta = &mut pod.metadata;
    meta.managed_fields = None;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
    if let Some(spec) = &mut pod.spec {
        let containers = std::mem::take(&mut spec.containers)
            .into_iter()
            .map(|c| v1::Container {
                name: c.name,
                ports: c.ports,
                ..Default::default()
            })
            .collect();
        *spec = v1::PodSpec {
            containers,
            node_name: spec.node_name.take(),
            ..Default::default()
        };
    }
    if let Some(status) = &mut pod.status {
        *status = v1::PodStatus {
            phase: status.phase.take(),
            pod_ip: status.pod_ip.take(),
            pod_ips: status.pod_ips.take(),
            conditions: status.conditions.take().map(|cs| {
                cs.into_iter()
                    .filter(|c| c.type_ == "Ready")
                    .map(|c| v1::PodCondition {
                        type_: c.type_,
                        status: c.status,
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        };
    }
}

/// A Secret's `tls.crt` and `tls.key` (from `data`, else `stringData`), or `None` when it
/// lacks either.
pub fn tls_secret(secret: &v1::Secret) -> Option<core::TlsSecret> {
    let field = |k: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|b| b.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(k))
                    .map(|s| s.clone().into_bytes())
            })
    };
    Some(core::TlsSecret {
        cert_pem: field("tls.crt")?,
        key_pem: field("tls.key")?,
    })
}

/// A Namespace's name and labels (what `allowedRoutes` selectors match).
pub fn namespace(ns: &v1::Namespace) -> (String, std::collections::BTreeMap<String, String>) {
    (
        ns.metadata.name.clone().unwrap_or_default(),
        ns.metadata.labels.clone().unwrap_or_default(),
    )
}

/// The name of a GatewayClass when its `controllerName` is `controller_name` (ours).
pub fn our_gateway_class(
    class: &gateway_api::apis::standard::gatewayclasses::GatewayClass,
    controller_name: &str,
) -> Option<String> {
    (class.spec.controller_name == controller_name).then(|| object_ref(class).name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reduced_pod_converts_as_the_whole_one_and_keeps_no_bulk() {
        let whole: v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "p", "namespace": "team", "labels": {"app": "x"},
                "annotations": {"big": "x".repeat(4096)},
                "managedFields": [{"manager": "kubelet", "operation": "Update"}],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u"}]
            },
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "engine", "image": "vllm:latest",
                                "args": ["--model", "m"], "env": [{"name": "A", "value": "b"}],
                                "ports": [{"name": "http", "containerPort": 8000},
                                          {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}],
                "volumes": [{"name": "v", "emptyDir": {}}]
            },
            "status": {
                "phase": "Running", "podIP": "10.0.0.7", "hostIP": "192.168.0.1",
                "conditions": [{"type": "Ready", "status": "True"},
                               {"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": "engine", "ready": true, "restartCount": 0,
                                       "image": "vllm", "imageID": "sha"}]
            }
        }))
        .expect("a Pod");
        let mut reduced = whole.clone();
        reduce_pod(&mut reduced);
        assert_eq!(pod(&reduced), pod(&whole));
        assert!(pod(&whole).ready_ip.is_some());
        let text = serde_json::to_string(&reduced).expect("serializes");
        for gone in [
            "big",
            "managedFields",
            "ownerReferences",
            "vllm",
            "volumes",
            "hostIP",
            "PodScheduled",
        ] {
            assert!(!text.contains(gone), "{gone} kept: {text}");
        }
        assert!(text.len() < 400, "{} bytes: {text}", text.len());
    }
}
