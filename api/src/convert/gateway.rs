//! Gateway and ReferenceGrant -> their [`kthena_core`] values.

use kthena_core::{self as core, FieldErrors, ObjectRef};

use super::{DEFAULT_NAMESPACE, GATEWAY_GROUP, creation_order, object_ref};

/// Converts a Gateway: listeners with ports in range, protocols, lowercase hostnames.
pub fn gateway(
    g: &gateway_api::apis::standard::gateways::Gateway,
) -> Result<core::Gateway, FieldErrors> {
    let mut errs = FieldErrors::new();
    let listeners = g
        .spec
        .listeners
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let path = format!("spec.listeners[{i}]");
            // A sectionName names exactly one listener only when names are unique.
            if let Some(first) = g.spec.listeners[..i].iter().position(|o| o.name == l.name) {
                errs.push(
                    format!("{path}.name"),
                    format!("duplicate listener name {:?}: spec.listeners[{first}] has it", l.name),
                );
            }
            let port = match u16::try_from(l.port) {
                Ok(p) if p > 0 => p,
                _ => {
                    errs.push(
                        format!("{path}.port"),
                        format!("must be between 1 and 65535, got {}", l.port),
                    );
                    return None;
                }
            };
            let protocol = match l.protocol.as_str() {
                "HTTP" => core::gateway::Protocol::Http,
                "HTTPS" => core::gateway::Protocol::Https,
                other => core::gateway::Protocol::Other(other.to_owned()),
            };
            let allowed = l.allowed_routes.as_ref();
            let from = allowed.and_then(|a| a.namespaces.as_ref());
            use gateway_api::apis::standard::gateways::GatewayListenersAllowedRoutesNamespacesFrom as From;
            let allowed_namespaces = match from.and_then(|n| n.from.as_ref()) {
                Some(From::All) => core::gateway::AllowedNamespaces::All,
                Some(From::Selector) => core::gateway::AllowedNamespaces::Selector(
                    from.and_then(|n| n.selector.as_ref())
                        .and_then(|s| s.match_labels.clone())
                        .unwrap_or_default(),
                ),
                Some(From::Same) | None => core::gateway::AllowedNamespaces::Same,
            };
            let kinds = allowed.and_then(|a| a.kinds.as_ref());
            let allows_http_routes = kinds.is_none_or(|ks| {
                ks.is_empty()
                    || ks.iter().any(|k| {
                        k.kind == "HTTPRoute" && k.group.as_deref().is_none_or(|g| g == GATEWAY_GROUP)
                    })
            }) && matches!(protocol, core::gateway::Protocol::Http | core::gateway::Protocol::Https);
            let gw_ns = g.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
            let certificate_refs = l
                .tls
                .as_ref()
                .and_then(|t| t.certificate_refs.as_ref())
                .into_iter()
                .flatten()
                .filter(|c| {
                    c.group.as_deref().unwrap_or("").is_empty() && c.kind.as_deref().unwrap_or("Secret") == "Secret"
                })
                .map(|c| ObjectRef::new(c.namespace.as_deref().unwrap_or(gw_ns), c.name.clone()))
                .collect();
            Some(core::gateway::Listener {
                name: l.name.clone(),
                port,
                protocol,
                hostname: l.hostname.as_ref().map(|h| h.to_ascii_lowercase()),
                allowed_namespaces,
                allows_http_routes,
                certificate_refs,
            })
        })
        .collect();
    errs.into_result(core::Gateway {
        id: object_ref(g),
        order: creation_order(g, &object_ref(g)),
        class_name: g.spec.gateway_class_name.clone(),
        listeners,
        implicit: false,
    })
}

/// Converts a ReferenceGrant (`gateway.networking.k8s.io`, v1 or v1beta1).
pub fn reference_grant(
    g: &gateway_api::apis::standard::referencegrants::ReferenceGrant,
) -> core::ReferenceGrant {
    use core::reference_grant::{GrantFrom, GrantTo};
    core::ReferenceGrant {
        id: object_ref(g),
        from: g
            .spec
            .from
            .iter()
            .map(|f| GrantFrom {
                group: f.group.clone(),
                kind: f.kind.clone(),
                namespace: f.namespace.clone(),
            })
            .collect(),
        to: g
            .spec
            .to
            .iter()
            .map(|t| GrantTo {
                group: t.group.clone(),
                kind: t.kind.clone(),
                name: t.name.clone().filter(|n| !n.is_empty()),
            })
            .collect(),
    }
}
