//! Gateways as the data plane uses them: listeners by port, and which listener a request's
//! `Host` selects.

use crate::http_route::{hostname_matches, normalize_host};
use crate::{ListenerRef, ObjectRef};

/// The Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// A Gateway of one of our GatewayClasses, converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The Gateway object.
    pub id: ObjectRef,
    /// `metadata.creationTimestamp`: the older Gateway wins a listener conflict.
    pub order: crate::CreationOrder,
    /// `spec.gatewayClassName`.
    pub class_name: String,
    /// `spec.listeners`, in order.
    pub listeners: Vec<Listener>,
    /// Added by the router because its namespace has no `default` Gateway (standalone, or
    /// before the created object is seen): it yields every port and hostname to the user's
    /// Gateways, whatever their age.
    pub implicit: bool,
}

impl Gateway {
    /// Every listener of this Gateway, as a parentRef names it.
    pub fn listener_refs(&self) -> impl Iterator<Item = ListenerRef> + '_ {
        self.listeners.iter().map(|l| l.reference(&self.id))
    }

    /// Who takes a contested port or hostname first: user Gateways before the implicit
    /// default, then the oldest (see [`crate::CreationOrder`]).
    pub fn precedence(&self) -> (bool, &crate::CreationOrder) {
        (self.implicit, &self.order)
    }
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
    /// `allowedRoutes.namespaces.from`: which namespaces' HTTPRoutes may attach.
    pub allowed_namespaces: AllowedNamespaces,
    /// `allowedRoutes.kinds` admits HTTPRoute (true by default on HTTP and HTTPS listeners).
    pub allows_http_routes: bool,
    /// `tls.certificateRefs` (Secrets, namespace defaulted to the Gateway's) of an HTTPS
    /// listener that terminates TLS.
    pub certificate_refs: Vec<ObjectRef>,
}

impl Listener {
    /// This listener of Gateway `gateway`, as a parentRef names it.
    pub fn reference(&self, gateway: &ObjectRef) -> ListenerRef {
        ListenerRef {
            gateway: gateway.clone(),
            section_name: self.name.clone(),
            port: self.port,
        }
    }
}

/// The listeners of `gateways` the router serves: those of a protocol it serves (HTTP,
/// HTTPS) that lose none of the [`conflicts`] `lost`. ModelRoutes are routed on these, their
/// `attachedRoutes` count them, and two routes claiming one name on one of them conflict.
pub fn served_listeners(gateways: &[Gateway], lost: &[ListenerConflict]) -> Vec<ListenerRef> {
    gateways
        .iter()
        .flat_map(|g| {
            g.listeners
                .iter()
                .filter(|l| !matches!(l.protocol, Protocol::Other(_)))
                .map(|l| l.reference(&g.id))
        })
        .filter(|r| !lost.iter().any(|c| c.listener == *r))
        .collect()
}

/// `allowedRoutes.namespaces.from`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowedNamespaces {
    /// Only the Gateway's namespace (the default).
    #[default]
    Same,
    /// Every namespace.
    All,
    /// Namespaces whose labels match `matchLabels`.
    Selector(std::collections::BTreeMap<String, String>),
}

impl AllowedNamespaces {
    /// True when a route in `namespace` (labelled `labels`, when known) may attach to a
    /// listener of a Gateway in `gateway_namespace`.
    pub fn admits(
        &self,
        gateway_namespace: &str,
        namespace: &str,
        labels: Option<&std::collections::BTreeMap<String, String>>,
    ) -> bool {
        match self {
            AllowedNamespaces::Same => gateway_namespace == namespace,
            AllowedNamespaces::All => true,
            AllowedNamespaces::Selector(want) => {
                labels.is_some_and(|have| want.iter().all(|(k, v)| have.get(k) == Some(v)))
            }
        }
    }
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

impl Protocol {
    /// The protocol as the Gateway spec writes it.
    pub fn name(&self) -> &str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Https => "HTTPS",
            Protocol::Other(p) => p,
        }
    }
}

/// The listeners of every Gateway sharing one port, and the choice among them per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortListeners {
    entries: Vec<(ListenerRef, Option<String>)>,
}

impl PortListeners {
    /// Adds listener `listener` of `gateway`.
    pub fn add(&mut self, gateway: &ObjectRef, listener: &Listener) {
        self.entries
            .push((listener.reference(gateway), listener.hostname.clone()));
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

/// The label every namespace carries with its own name (set by the API server).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Namespace labels, for `allowedRoutes.namespaces.from: Selector`.
#[derive(Debug, Clone, Default)]
pub struct Namespaces {
    labels: std::collections::HashMap<String, std::collections::BTreeMap<String, String>>,
}

impl Namespaces {
    /// Records the labels of namespace `name`.
    pub fn insert(&mut self, name: String, labels: std::collections::BTreeMap<String, String>) {
        self.labels.insert(name, labels);
    }

    /// The labels of `namespace`. A namespace not recorded carries only
    /// [`NAMESPACE_NAME_LABEL`], as the API server sets it on every namespace; a recorded one
    /// always carries it too.
    pub fn labels(&self, namespace: &str) -> std::collections::BTreeMap<String, String> {
        let mut labels = self.labels.get(namespace).cloned().unwrap_or_default();
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned());
        labels
    }
}

/// A listener that is valid alone but cannot be served beside the others on its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConflict {
    /// The losing listener.
    pub listener: ListenerRef,
    /// `ProtocolConflict` or `HostnameConflict`.
    pub reason: &'static str,
    /// What it conflicts with.
    pub message: String,
}

/// The listeners of `gateways` that conflict with an older one on the same port, across all
/// our Gateways (one socket serves a port). Listeners are taken in [`Gateway::precedence`]
/// order (user Gateways oldest first, the implicit default last), in spec
/// order: the first to use a port sets its protocol (`main_port`, served by `--port`, is
/// always HTTP); a later listener of the other protocol is `ProtocolConflict`, one repeating
/// an earlier listener's hostname (or lack of one) is `HostnameConflict`. Listeners of
/// protocols the router does not serve take no part.
pub fn conflicts(gateways: &[Gateway], main_port: Option<u16>) -> Vec<ListenerConflict> {
    use crate::conditions::reasons;
    let mut ordered: Vec<&Gateway> = gateways.iter().collect();
    ordered.sort_by(|a, b| a.precedence().cmp(&b.precedence()));
    let mut ports: std::collections::HashMap<u16, (Protocol, String)> =
        std::collections::HashMap::new();
    let mut hosts: std::collections::HashMap<(u16, Option<&str>), String> =
        std::collections::HashMap::new();
    let mut out = Vec::new();
    for g in ordered {
        for l in &g.listeners {
            if matches!(l.protocol, Protocol::Other(_)) {
                continue;
            }
            let name = format!("{}/{}", g.id, l.name);
            let listener = l.reference(&g.id);
            let (protocol, first) = ports.entry(l.port).or_insert_with(|| {
                if Some(l.port) == main_port {
                    (Protocol::Http, "the router's --port".to_owned())
                } else {
                    (l.protocol.clone(), format!("listener {name}"))
                }
            });
            if *protocol != l.protocol {
                out.push(ListenerConflict {
                    listener,
                    reason: reasons::PROTOCOL_CONFLICT,
                    message: format!(
                        "port {} serves {} ({first}), this listener asks for {}",
                        l.port,
                        protocol.name(),
                        l.protocol.name()
                    ),
                });
                continue;
            }
            match hosts.entry((l.port, l.hostname.as_deref())) {
                std::collections::hash_map::Entry::Occupied(e) => out.push(ListenerConflict {
                    listener,
                    reason: reasons::HOSTNAME_CONFLICT,
                    message: format!(
                        "listener {} already serves hostname {} on port {}",
                        e.get(),
                        l.hostname.as_deref().unwrap_or("(any)"),
                        l.port
                    ),
                }),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(name);
                }
            }
        }
    }
    out
}

/// An HTTPRoute with the Gateways it names in `parentRefs`.
#[derive(Debug, Clone)]
pub struct ParentedHttpRoute {
    /// The route.
    pub route: crate::HttpRoute,
    /// Its Gateway parents.
    pub parents: Vec<crate::ParentRef>,
}

/// The HTTPRoute table of every listener of `gateways`: a route attaches to a listener that
/// one of its parentRefs selects (Gateway, `sectionName`, `port`), whose `allowedRoutes`
/// admit HTTPRoutes from the route's namespace (`namespaces` answers for `Selector`),
/// and whose hostname intersects the route's (see [`crate::http_route::HttpRouteTable::build`]).
pub fn http_route_tables(
    gateways: &[Gateway],
    routes: &[ParentedHttpRoute],
    namespaces: &Namespaces,
) -> std::collections::HashMap<ListenerRef, crate::http_route::HttpRouteTable> {
    let mut tables = std::collections::HashMap::new();
    for g in gateways {
        for l in g.listeners.iter().filter(|l| l.allows_http_routes) {
            let listener = l.reference(&g.id);
            let attached: Vec<crate::HttpRoute> = routes
                .iter()
                .filter(|r| r.parents.iter().any(|p| p.selects(&listener)))
                .filter(|r| {
                    let ns = &r.route.id.namespace;
                    l.allowed_namespaces
                        .admits(&g.id.namespace, ns, Some(&namespaces.labels(ns)))
                })
                .map(|r| r.route.clone())
                .collect();
            if !attached.is_empty() {
                let table =
                    crate::http_route::HttpRouteTable::build(attached, l.hostname.as_deref());
                tables.insert(listener, table);
            }
        }
    }
    tables
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
                allowed_namespaces: AllowedNamespaces::Same,
                allows_http_routes: true,
                certificate_refs: vec![],
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
    fn allowed_namespaces() {
        let labels = std::collections::BTreeMap::from([("team".to_owned(), "a".to_owned())]);
        let selector = AllowedNamespaces::Selector(labels.clone());
        let cases = [
            (AllowedNamespaces::Same, "gw", "gw", None, true),
            (AllowedNamespaces::Same, "gw", "other", None, false),
            (AllowedNamespaces::All, "gw", "other", None, true),
            (selector.clone(), "gw", "other", Some(&labels), true),
            (selector.clone(), "gw", "other", None, false),
            (
                selector,
                "gw",
                "other",
                Some(&std::collections::BTreeMap::new()),
                false,
            ),
        ];
        for (allowed, gw, ns, labels, want) in cases {
            assert_eq!(allowed.admits(gw, ns, labels), want, "{allowed:?} {ns}");
        }
    }

    #[test]
    fn no_listener_for_an_unmatched_host_without_catch_all() {
        let p = listeners(&[Some("a.example.com")]);
        assert!(p.select(Some("b.example.com")).is_none());
        assert!(p.select(None).is_none());
    }
}
