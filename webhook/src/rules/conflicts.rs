//! Model names claimed twice: a ModelRoute may not claim a modelName or LoRA adapter that
//! another ModelRoute already claims where both would be served, because only the older of
//! the two would ever be used there. Where two routes are both served is the one rule of
//! `kthena_core::claims` (status reports the same overlap as `Conflicted`), looking ahead to
//! Gateways not created yet.

use gateway_api::apis::standard::gateways;
use kthena_api::convert;
use kthena_api::modelroute::ModelRoute;
use kthena_core::claims::{self, Serving};
use kthena_core::{FieldErrors, Gateway, Route};

use crate::Scope;

/// Names of `route` already claimed by one of `routes` where both are served, on the
/// listeners of those `gateways` in `scope` that the router serves
/// ([`kthena_core::gateway::served_listeners`]). A route that does not convert claims nothing
/// (the conversion reports it).
pub(super) fn check(
    route: &ModelRoute,
    routes: &[ModelRoute],
    gateways: &[gateways::Gateway],
    scope: &Scope,
    gateway_mode: bool,
) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let Ok(mine) = convert::model_route(route) else {
        return errs;
    };
    // The Gateways the router serves, converted as the router converts them: one that does
    // not convert serves nothing.
    let gateways: Vec<Gateway> = gateways
        .iter()
        .filter(|g| scope.serves_class(&g.spec.gateway_class_name))
        .filter_map(|g| convert::gateway(g).ok())
        .collect();
    let lost = kthena_core::gateway::conflicts(&gateways, None);
    let listeners = kthena_core::gateway::served_listeners(&gateways, &lost);
    let serving = Serving {
        gateway_mode,
        listeners: &listeners,
        anticipate: true,
    };
    let mut others: Vec<Route> = routes
        .iter()
        .filter_map(|r| convert::model_route(r).ok())
        .filter(|r| r.id != mine.id)
        .collect();
    others.sort_by(|a, b| a.id.cmp(&b.id));
    for claim in claims::claims(&mine) {
        let found = others.iter().find_map(|other| {
            if !claims::claims_name(other, claim.name()) {
                return None;
            }
            claims::overlap(&mine, other, &serving).map(|place| (other, place))
        });
        if let Some((other, place)) = found {
            errs.push(
                claim.path(),
                format!(
                    "{:?} is already served by ModelRoute {} {place}",
                    claim.name(),
                    other.id
                ),
            );
        }
    }
    errs
}
