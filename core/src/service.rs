//! Kubernetes Services as HTTPRoute backends: a port of the Service leads to the selected
//! Pods' target port.

use std::collections::BTreeMap;

use crate::ObjectRef;

/// `spec.ports[].targetPort`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetPort {
    /// A port number.
    Number(u16),
    /// A named container port of each Pod.
    Name(String),
}

/// One `spec.ports[]` entry (TCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `port`: what a backendRef names.
    pub port: u16,
    /// `targetPort` (defaults to `port`).
    pub target: TargetPort,
    /// How the router speaks to the port ([`crate::Protocol::from_app_protocol`]); `None`
    /// when its `appProtocol` is one the router cannot speak.
    pub protocol: Option<crate::Protocol>,
    /// `appProtocol` as written.
    pub app_protocol: Option<String>,
}

/// A Service, converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The Service object.
    pub id: ObjectRef,
    /// `spec.selector`; `None` for a Service without selector (its endpoints are managed by
    /// someone else).
    pub selector: Option<BTreeMap<String, String>>,
    /// TCP ports.
    pub ports: Vec<ServicePort>,
}

impl Service {
    /// The entry of `port`.
    pub fn port(&self, port: u16) -> Option<&ServicePort> {
        self.ports.iter().find(|p| p.port == port)
    }
}
