//! Model names claimed twice: a ModelRoute may not serve a modelName or LoRA adapter that
//! another ModelRoute already serves on some of the same Gateway listeners, because only the
//! older of the two would ever be used there.
//!
//! Where a route serves: without parentRefs, every listener of the Gateways in its own
//! namespace (so two such routes overlap when they share a namespace); with parentRefs, the
//! listeners those select. When the Gateway exists its listeners are compared; when it does
//! not (yet), two references overlap only when one selects everything the other selects.

use gateway_api::apis::standard::gateways::{Gateway, GatewayListeners};
use kthena_api::convert;
use kthena_api::modelroute::ModelRoute;
use kthena_core::{FieldErrors, ObjectRef, ParentRef};

/// The listeners a route serves.
enum Scope {
    /// No parentRefs: the Gateways of this namespace.
    Namespace(String),
    /// The Gateways (and listeners) of these parentRefs.
    Parents(Vec<ParentRef>),
}

/// `None` for a route whose parentRefs name no Gateway: it serves nowhere.
fn scope(route: &ModelRoute, id: &ObjectRef) -> Option<Scope> {
    let refs = &route.spec.parent_refs;
    if refs.is_empty() {
        return Some(Scope::Namespace(id.namespace.clone()));
    }
    let parents = convert::gateway_parents(refs, id);
    (!parents.is_empty()).then_some(Scope::Parents(parents))
}

/// Every name `route` claims, with the field claiming it.
fn claims(route: &ModelRoute) -> impl Iterator<Item = (String, &str)> {
    let spec = &route.spec;
    let model = Some(("spec.modelName".to_owned(), spec.model_name.as_str()));
    let loras = spec
        .lora_adapters
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("spec.loraAdapters[{i}]"), l.as_str()));
    model
        .into_iter()
        .chain(loras)
        .filter(|(_, name)| !name.is_empty())
}

/// Names of `route` already served by one of `routes` on a common listener.
pub(super) fn check(
    route: &ModelRoute,
    routes: &[ModelRoute],
    gateways: &[Gateway],
) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let id = convert::object_ref(route);
    let Some(mine) = scope(route, &id) else {
        return errs;
    };
    let mut others: Vec<(ObjectRef, &ModelRoute)> = routes
        .iter()
        .map(|r| (convert::object_ref(r), r))
        .filter(|(other, _)| *other != id)
        .collect();
    others.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, name) in claims(route) {
        let found = others.iter().find_map(|(other, r)| {
            if !claims(r).any(|(_, n)| n == name) {
                return None;
            }
            let theirs = scope(r, other)?;
            overlap(&mine, &theirs, gateways).map(|place| (other, place))
        });
        if let Some((other, place)) = found {
            errs.push(
                path,
                format!("{name:?} is already served by ModelRoute {other} {place}"),
            );
        }
    }
    errs
}

/// Where two scopes share a listener, worded for the message; `None` when they share none.
fn overlap(a: &Scope, b: &Scope, gateways: &[Gateway]) -> Option<String> {
    match (a, b) {
        (Scope::Namespace(x), Scope::Namespace(y)) => {
            (x == y).then(|| format!("in namespace {x} (neither route has parentRefs)"))
        }
        (Scope::Namespace(ns), Scope::Parents(refs))
        | (Scope::Parents(refs), Scope::Namespace(ns)) => refs
            .iter()
            .filter(|r| r.gateway.namespace == *ns)
            .find_map(|r| match find(gateways, &r.gateway) {
                Some(g) => listeners(g)
                    .find(|l| selects(r, l))
                    .map(|l| on_listener(&r.gateway, &l.name)),
                None => Some(on_reference(r)),
            }),
        (Scope::Parents(xs), Scope::Parents(ys)) => xs
            .iter()
            .flat_map(|x| ys.iter().map(move |y| (x, y)))
            .filter(|(x, y)| x.gateway == y.gateway)
            .find_map(|(x, y)| match find(gateways, &x.gateway) {
                Some(g) => listeners(g)
                    .find(|l| selects(x, l) && selects(y, l))
                    .map(|l| on_listener(&x.gateway, &l.name)),
                None if covers(x, y) => Some(on_reference(y)),
                None if covers(y, x) => Some(on_reference(x)),
                None => None,
            }),
    }
}

fn find<'g>(gateways: &'g [Gateway], id: &ObjectRef) -> Option<&'g Gateway> {
    gateways.iter().find(|g| convert::object_ref(*g) == *id)
}

fn listeners(g: &Gateway) -> impl Iterator<Item = &GatewayListeners> {
    g.spec.listeners.iter()
}

/// True when `r` selects listener `l` (of the Gateway `r` names).
fn selects(r: &ParentRef, l: &GatewayListeners) -> bool {
    r.section_name.as_deref().is_none_or(|s| s == l.name)
        && r.port.is_none_or(|p| i32::from(p) == l.port)
}

/// True when every listener `b` selects is also selected by `a`, whatever the Gateway's
/// listeners are (both name the same Gateway).
fn covers(a: &ParentRef, b: &ParentRef) -> bool {
    a.section_name
        .as_ref()
        .is_none_or(|s| b.section_name.as_ref() == Some(s))
        && a.port.is_none_or(|p| b.port == Some(p))
}

fn on_listener(gateway: &ObjectRef, listener: &str) -> String {
    format!("on Gateway {gateway} listener {listener}")
}

fn on_reference(r: &ParentRef) -> String {
    match (&r.section_name, r.port) {
        (Some(s), _) => on_listener(&r.gateway, s),
        (None, Some(p)) => format!("on Gateway {} port {p}", r.gateway),
        (None, None) => format!("on Gateway {}", r.gateway),
    }
}
