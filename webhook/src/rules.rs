//! What the webhook admits: the one api -> core conversion of `kthena_api::convert` (every
//! problem it finds, with its field path), then the checks it cannot make on one object alone
//! or that Kthena's webhook makes on top of the CRD schema.

mod conflicts;
mod model_route;
mod parent_refs;

use gateway_api::apis::standard::httproutes::HttpRoute;
use kthena_api::convert::{self, GATEWAY_GROUP, http_route};
use kthena_api::manifest::Object;
use kthena_core::FieldErrors;

use crate::{Cluster, Scope};

/// How strict a review is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Admit a ModelRoute whose modelName or LoRA adapter another ModelRoute already serves
    /// on the same Gateway listeners (`--allow-duplicate-model-names`); the oldest route then
    /// wins at request time.
    pub allow_duplicate_model_names: bool,
    /// The router serves Gateways (`--enable-gateway-api`): ModelRoutes are served on
    /// listeners, and model names conflict only on a shared one. Outside gateway mode every
    /// route without parentRefs competes for its names in every namespace.
    pub gateway_mode: bool,
}

/// The admission warnings for an admitted `object`: each field it sets that the router accepts
/// but does not act on yet (`kthena_core::unhonored`, the same list status reports as
/// `FieldsHonored=False`), as `field: why`.
pub fn warnings(object: &Object) -> Vec<String> {
    let fields = match object {
        Object::ModelRoute(r) => convert::model_route(r)
            .map(|r| kthena_core::unhonored::model_route(&r))
            .unwrap_or_default(),
        Object::ModelServer(s) => convert::model_server(s)
            .map(|s| kthena_core::unhonored::model_server(&s))
            .unwrap_or_default(),
        Object::InferenceObjective(o) => convert::inference_objective(o)
            .map(|o| kthena_core::unhonored::inference_objective(&o))
            .unwrap_or_default(),
        _ => FieldErrors::new(),
    };
    fields
        .as_slice()
        .iter()
        .map(|e| format!("{e} (accepted, not honored yet)"))
        .collect()
}

/// Checks `object` (the new version; `old` is the stored one on UPDATE) against the rules of
/// its kind and against the `others` already in the cluster. Every problem is returned, each
/// with its field path. Kinds without rules are admitted.
pub fn review(
    object: &Object,
    old: Option<&Object>,
    others: &dyn Cluster,
    options: Options,
) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::new();
    match object {
        Object::ModelRoute(r) => {
            if let Err(e) = convert::model_route(r) {
                errs.extend(e);
            }
            let old = match old {
                Some(Object::ModelRoute(o)) => Some(o.as_ref()),
                _ => None,
            };
            errs.extend(model_route::check(r, old));
            let gateways = others.gateways();
            errs.extend(parent_refs::check(r, &gateways));
            if !options.allow_duplicate_model_names {
                errs.extend(conflicts::check(
                    r,
                    &others.model_routes(),
                    &gateways,
                    &others.scope(),
                    options.gateway_mode,
                ));
            }
        }
        Object::ModelServer(s) => errs.extend(convert::model_server(s).err().unwrap_or_default()),
        Object::ExternalModelProvider(p) => {
            errs.extend(convert::external_provider(p).err().unwrap_or_default());
        }
        Object::InferencePool(p) => {
            errs.extend(convert::inference_pool_v1(p).err().unwrap_or_default());
        }
        Object::InferencePoolV1alpha2(p) => {
            errs.extend(
                convert::inference_pool_v1alpha2(p)
                    .err()
                    .unwrap_or_default(),
            );
        }
        Object::InferenceModel(m) => {
            errs.extend(convert::inference_model(m).err().unwrap_or_default());
        }
        Object::InferenceObjective(o) => {
            errs.extend(convert::inference_objective(o).err().unwrap_or_default());
        }
        Object::HttpRoute(r) if ours(r, others) => {
            errs.extend(http_route::http_route(r).err().unwrap_or_default());
        }
        Object::Gateway(g) if others.scope().serves_class(&g.spec.gateway_class_name) => {
            errs.extend(convert::gateway(g).err().unwrap_or_default());
        }
        Object::HttpRoute(_)
        | Object::Gateway(_)
        | Object::GatewayClass(_)
        | Object::ReferenceGrant(_)
        | Object::Pod(_)
        | Object::Secret(_)
        | Object::Service(_)
        | Object::Namespace(_)
        | Object::Other { .. } => {}
    }
    errs.into_result(())
}

/// Whether `route` is this router's to judge: in [`Scope::Classes`], when one of its parent
/// Gateways exists and is of one of our classes.
fn ours(route: &HttpRoute, others: &dyn Cluster) -> bool {
    let classes = match others.scope() {
        Scope::Everything => return true,
        Scope::Classes(classes) => classes,
    };
    let id = convert::object_ref(route);
    let gateways = others.gateways();
    route.spec.parent_refs.iter().flatten().any(|p| {
        let group = p.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let kind = p.kind.as_deref().unwrap_or("Gateway");
        let namespace = p.namespace.as_deref().unwrap_or(&id.namespace);
        group == GATEWAY_GROUP
            && kind == "Gateway"
            && gateways.iter().any(|g| {
                let gid = convert::object_ref(g);
                gid.namespace == namespace
                    && gid.name == p.name
                    && classes.contains(&g.spec.gateway_class_name)
            })
    })
}
