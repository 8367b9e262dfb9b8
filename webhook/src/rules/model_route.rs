//! ModelRoute rules of Kthena's webhook that the conversion does not make: a rule must be
//! able to send traffic somewhere, LoRA routes stay on ModelServers, modelName never changes.

use kthena_api::modelroute::ModelRoute;
use kthena_core::FieldErrors;

/// Problems of `route` (the stored version `old` on UPDATE) beyond `convert::model_route`.
pub(super) fn check(route: &ModelRoute, old: Option<&ModelRoute>) -> FieldErrors {
    let mut errs = FieldErrors::new();
    let spec = &route.spec;
    let lora = !spec.lora_adapters.is_empty();
    for (i, rule) in spec.rules.iter().enumerate() {
        let path = format!("spec.rules[{i}].targetModels");
        // A rule without targets is already reported by the conversion.
        let total: u64 = rule.target_models.iter().map(|t| u64::from(t.weight)).sum();
        if !rule.target_models.is_empty() && total == 0 {
            errs.push(
                &path,
                "total weight must be greater than 0, got 0 (every target has weight 0)",
            );
        }
        if !lora {
            continue;
        }
        for (j, t) in rule.target_models.iter().enumerate() {
            if let Some(provider) = t
                .external_model_provider_name
                .as_deref()
                .filter(|p| !p.is_empty())
            {
                errs.push(
                    format!("{path}[{j}].externalModelProviderName"),
                    format!(
                        "a route with loraAdapters cannot target external model provider \
                         {provider:?}: only ModelServers serve LoRA adapters"
                    ),
                );
            }
        }
    }
    if let Some(old) = old
        && old.spec.model_name != spec.model_name
    {
        errs.push(
            "spec.modelName",
            format!(
                "is immutable: was {:?}, got {:?}",
                old.spec.model_name, spec.model_name
            ),
        );
    }
    errs
}
