//! ModelRoute `parentRefs`: a `sectionName` or `port` names a listener of the referenced Gateway
//! when that Gateway exists. (Duplicates, group, kind and port range are checked by the
//! conversion.)

use gateway_api::apis::standard::gateways::Gateway;
use kthena_api::convert::{self, GATEWAY_GROUP};
use kthena_api::modelroute::ModelRoute;
use kthena_core::{FieldErrors, ObjectRef};

/// Problems of `route`'s parentRefs, given the Gateways that exist.
pub(super) fn check(route: &ModelRoute, gateways: &[Gateway]) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let id = convert::object_ref(route);
    let refs = &route.spec.parent_refs;
    for (i, p) in refs.iter().enumerate() {
        let path = format!("spec.parentRefs[{i}]");
        let k = convert::parent_ref_key(p, &id.namespace);
        // A duplicate is reported by the conversion.
        if refs[..i]
            .iter()
            .any(|o| convert::parent_ref_key(o, &id.namespace) == k)
        {
            continue;
        }
        let (group, kind, namespace, name, section, port) = k;
        if group != GATEWAY_GROUP || kind != "Gateway" {
            continue;
        }
        let gateway = ObjectRef::new(namespace, name);
        let Some(g) = gateways.iter().find(|g| convert::object_ref(*g) == gateway) else {
            // Not created yet: the route's status says so once it is, or is not.
            continue;
        };
        let listeners = &g.spec.listeners;
        let named = section.map(|s| (s, listeners.iter().find(|l| l.name == s)));
        if let Some((s, None)) = named {
            let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
            errs.push(
                format!("{path}.sectionName"),
                format!(
                    "Gateway {gateway} has no listener {s:?} (listeners: {})",
                    names.join(", ")
                ),
            );
        }
        // An out-of-range port is already reported by the conversion.
        let Some(port) = port.filter(|p| (1..=65535).contains(p)) else {
            continue;
        };
        match named {
            Some((s, Some(l))) if l.port != port => errs.push(
                format!("{path}.port"),
                format!(
                    "listener {s:?} of Gateway {gateway} is on port {}, not {port}",
                    l.port
                ),
            ),
            Some(_) => {}
            None if listeners.iter().any(|l| l.port == port) => {}
            None => {
                let ports: Vec<String> = listeners.iter().map(|l| l.port.to_string()).collect();
                errs.push(
                    format!("{path}.port"),
                    format!(
                        "Gateway {gateway} has no listener on port {port} (ports: {})",
                        ports.join(", ")
                    ),
                );
            }
        }
    }
    errs
}
