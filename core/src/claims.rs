//! Model names claimed by more than one ModelRoute where both are served: the one rule that
//! status (`Accepted=False/Conflicted` on the newer route), the admission webhook and
//! `kthena-router validate` (a route claiming a name already served where it would be served
//! is denied) apply.
//!
//! Where a route is served is [`Route::serves`]: outside gateway mode only routes without
//! parentRefs are served, and all of them compete for every name across namespaces (the table
//! matches them all); in gateway mode on the listeners [`Route::serves`] names. Admission also
//! looks ahead ([`Serving::anticipate`]): a Gateway that does not exist yet may be created,
//! so two routes naming it overlap when one selects every listener the other selects.

use std::fmt;

use crate::{ListenerRef, ParentRef, Route};

/// What a route is served on, for the comparison of two routes.
#[derive(Debug, Clone, Copy)]
pub struct Serving<'a> {
    /// Gateway mode (`--enable-gateway-api`).
    pub gateway_mode: bool,
    /// The listeners of the Gateways that exist and are served.
    pub listeners: &'a [ListenerRef],
    /// Admission: a Gateway missing from `listeners` may be created later, and routes naming
    /// it would then overlap (see the module doc). Status judges what is served now.
    pub anticipate: bool,
}

/// Where two routes are both served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlap {
    /// Outside gateway mode: neither route has parentRefs, so both match everywhere.
    Everywhere,
    /// Gateway mode, no Gateway in the namespace yet: neither route has parentRefs.
    Namespace(String),
    /// A listener both are served on.
    Listener(ListenerRef),
    /// A reference to a Gateway that does not exist yet, selecting listeners the other route
    /// would be served on too.
    Reference(ParentRef),
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overlap::Everywhere => f.write_str(
                "(outside gateway mode every route without parentRefs is matched, whatever its namespace)",
            ),
            Overlap::Namespace(ns) => {
                write!(f, "in namespace {ns} (neither route has parentRefs)")
            }
            Overlap::Listener(l) => write!(f, "on Gateway {} listener {}", l.gateway, l.section_name),
            Overlap::Reference(r) => match (&r.section_name, r.port) {
                (Some(s), _) => write!(f, "on Gateway {} listener {s}", r.gateway),
                (None, Some(p)) => write!(f, "on Gateway {} port {p}", r.gateway),
                (None, None) => write!(f, "on Gateway {}", r.gateway),
            },
        }
    }
}

/// Where `a` and `b` are both served, or `None` when nowhere.
pub fn overlap(a: &Route, b: &Route, serving: &Serving<'_>) -> Option<Overlap> {
    if !serving.gateway_mode {
        return (a.parents.is_empty() && b.parents.is_empty()).then_some(Overlap::Everywhere);
    }
    if let Some(l) = serving
        .listeners
        .iter()
        .find(|l| a.serves(l) && b.serves(l))
    {
        return Some(Overlap::Listener(l.clone()));
    }
    if !serving.anticipate {
        return None;
    }
    let exists = |r: &ParentRef| serving.listeners.iter().any(|l| l.gateway == r.gateway);
    match (a.parents.is_empty(), b.parents.is_empty()) {
        (true, true) => {
            let ns = &a.id.namespace;
            let any_gateway_here = serving.listeners.iter().any(|l| l.gateway.namespace == *ns);
            (*ns == b.id.namespace && !any_gateway_here).then(|| Overlap::Namespace(ns.clone()))
        }
        (true, false) | (false, true) => {
            let (whole, refs) = if a.parents.is_empty() { (a, b) } else { (b, a) };
            refs.parents
                .iter()
                .find(|r| r.gateway.namespace == whole.id.namespace && !exists(r))
                .map(|r| Overlap::Reference(r.clone()))
        }
        (false, false) => a
            .parents
            .iter()
            .flat_map(|x| b.parents.iter().map(move |y| (x, y)))
            .filter(|(x, y)| x.gateway == y.gateway && !exists(x))
            .find_map(|(x, y)| {
                if covers(x, y) {
                    Some(Overlap::Reference(y.clone()))
                } else if covers(y, x) {
                    Some(Overlap::Reference(x.clone()))
                } else {
                    None
                }
            }),
    }
}

/// True when every listener `b` selects is also selected by `a`, whatever the listeners of
/// the Gateway both name.
fn covers(a: &ParentRef, b: &ParentRef) -> bool {
    a.section_name
        .as_ref()
        .is_none_or(|s| b.section_name.as_ref() == Some(s))
        && a.port.is_none_or(|p| b.port == Some(p))
}

/// A name a route claims, and where in its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim<'a> {
    /// `spec.modelName`.
    ModelName(&'a str),
    /// `spec.loraAdapters[index]`.
    LoraAdapter(usize, &'a str),
}

impl<'a> Claim<'a> {
    /// The name claimed.
    pub fn name(self) -> &'a str {
        match self {
            Claim::ModelName(n) | Claim::LoraAdapter(_, n) => n,
        }
    }

    /// The field claiming it.
    pub fn path(self) -> String {
        match self {
            Claim::ModelName(_) => "spec.modelName".to_owned(),
            Claim::LoraAdapter(i, _) => format!("spec.loraAdapters[{i}]"),
        }
    }
}

/// Every name `route` claims: its modelName, then its LoRA adapters.
pub fn claims(route: &Route) -> impl Iterator<Item = Claim<'_>> {
    route
        .model_name
        .as_deref()
        .map(Claim::ModelName)
        .into_iter()
        .chain(
            route
                .lora_adapters
                .iter()
                .enumerate()
                .map(|(i, l)| Claim::LoraAdapter(i, l)),
        )
}

/// True when `route` claims `name`.
pub fn claims_name(route: &Route, name: &str) -> bool {
    claims(route).any(|c| c.name() == name)
}
