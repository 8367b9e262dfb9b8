//! ModelRoute rules of Kthena's webhook that only an update has: modelName never changes.
//! Every rule on one object alone is in the conversion (`kthena_core::validate::route`), so
//! the router, `validate` and the webhook judge it the same way.

use kthena_api::modelroute::ModelRoute;
use kthena_core::FieldErrors;

/// Problems of `route` given the stored version `old` on UPDATE, beyond `convert::model_route`.
pub(super) fn check(route: &ModelRoute, old: Option<&ModelRoute>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    if let Some(old) = old
        && old.spec.model_name != route.spec.model_name
    {
        errs.push(
            "spec.modelName",
            format!(
                "is immutable: was {:?}, got {:?}",
                old.spec.model_name, route.spec.model_name
            ),
        );
    }
    errs
}
