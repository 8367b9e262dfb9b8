//! Pods as endpoint discovery sees them, and the other core objects read with them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::ObjectRef;

/// A Pod reduced to what routing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// The Pod.
    pub id: ObjectRef,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// `status.podIP`, when it is Running, Ready and not being deleted; `None` otherwise.
    pub ready_ip: Option<IpAddr>,
    /// Named TCP container ports.
    pub named_ports: BTreeMap<String, u16>,
}

/// A `kubernetes.io/tls` Secret's `tls.crt` and `tls.key`, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSecret {
    /// Certificate chain.
    pub cert_pem: Vec<u8>,
    /// Private key.
    pub key_pem: Vec<u8>,
}
