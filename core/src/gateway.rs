//! Gateways as the data plane uses them: listeners by port, and which listener a request's
//! `Host` selects.

use crate::http_route::{hostname_matches, normalize_host};
use crate::{ListenerRef, ObjectRef};

/// A Gateway of one of our GatewayClasses, converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The Gateway object.
    pub id: ObjectRef,
    /// `spec.gatewayClassName`.
    pub class_name: String,
    /// `spec.listeners`, in order.
    pub listeners: Vec<Listener>,
}

/// One listener of a Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// `name` (what a parentRef's `sectionName` names).
    pub name: String,
    /// `port`.
    pub port: u16,
    /// `protocol`.
    pub protocol: Protocol,
    /// `hostname`, lowercase; `None` matches every host.
    pub hostname: Option<String>,
}

/// Listener protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// Plain HTTP.
    Http,
    /// HTTPS, TLS terminated by the router.
    Https,
    /// Anything else (TCP, TLS passthrough, ...): not served.
    Other(String),
}

/// The listeners of every Gateway sharing one port, and the choice among them per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortListeners {
    entries: Vec<(ListenerRef, Option<String>)>,
}

impl PortListeners {
    /// Adds listener `listener` of `gateway`.
    pub fn add(&mut self, gateway: &ObjectRef, listener: &Listener) {
        let r = ListenerRef {
            gateway: gateway.clone(),
            section_name: listener.name.clone(),
            port: listener.port,
        };
        self.entries.push((r, listener.hostname.clone()));
    }

    /// True when no listener was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The listener a request with `host` (the `Host` header, port allowed) arrives on: exact
    /// hostname, then the longest matching wildcard, then a listener without hostname. Among
    /// equals, the first added wins.
    pub fn select(&self, host: Option<&str>) -> Option<&ListenerRef> {
        let host = normalize_host(host.unwrap_or_default());
        let mut best: Option<(usize, &ListenerRef)> = None;
        for (r, hostname) in &self.entries {
            let rank = match hostname.as_deref() {
                None => 1,
                Some(h) if !h.starts_with("*.") && h == host => usize::MAX,
                Some(h) if h.starts_with("*.") && hostname_matches(h, &host) => 2 + h.len(),
                Some(_) => continue,
            };
            if best.is_none_or(|(b, _)| rank > b) {
                best = Some((rank, r));
            }
        }
        best.map(|(_, r)| r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listeners(hosts: &[Option<&str>]) -> PortListeners {
        let gw = ObjectRef::new("default", "gw");
        let mut p = PortListeners::default();
        for (i, h) in hosts.iter().enumerate() {
            let l = Listener {
                name: format!("l{i}"),
                port: 80,
                protocol: Protocol::Http,
                hostname: h.map(str::to_owned),
            };
            p.add(&gw, &l);
        }
        p
    }

    #[test]
    fn exact_beats_longest_wildcard_beats_no_hostname() {
        let p = listeners(&[
            None,
            Some("*.example.com"),
            Some("*.api.example.com"),
            Some("chat.api.example.com"),
        ]);
        let cases = [
            (Some("chat.api.example.com"), Some("l3")),
            (Some("CHAT.api.example.com:8080"), Some("l3")),
            (Some("other.api.example.com"), Some("l2")),
            (Some("a.b.api.example.com"), Some("l2")),
            (Some("www.example.com"), Some("l1")),
            (Some("example.com"), Some("l0")),
            (Some("elsewhere.org"), Some("l0")),
            (None, Some("l0")),
        ];
        for (host, want) in cases {
            assert_eq!(
                p.select(host).map(|l| l.section_name.as_str()),
                want,
                "{host:?}"
            );
        }
    }

    #[test]
    fn no_listener_for_an_unmatched_host_without_catch_all() {
        let p = listeners(&[Some("a.example.com")]);
        assert!(p.select(Some("b.example.com")).is_none());
        assert!(p.select(None).is_none());
    }
}
