//! `lora-affinity` (filter): only endpoints whose engine lists the model about to be sent
//! (the LoRA adapter, for a LoRA route) in `/v1/models`. An endpoint whose list is not known
//! yet passes only while no endpoint is known to list the model.

use super::super::{Candidate, FilterPlugin, RequestContext};

/// The plugin.
#[derive(Debug, Default)]
pub struct LoraAffinity;

impl FilterPlugin for LoraAffinity {
    fn name(&self) -> &'static str {
        "lora-affinity"
    }

    fn filter(&self, ctx: &RequestContext<'_>, pods: &[Candidate<'_>], keep: &mut [bool]) {
        let model = ctx.target_model;
        let someone_has_it = pods
            .iter()
            .zip(keep.iter())
            .any(|(p, k)| *k && p.engine.serves_hashed(ctx.target_hash, model) == Some(true));
        for (p, k) in pods.iter().zip(keep.iter_mut()) {
            let ok = match p.engine.serves_hashed(ctx.target_hash, model) {
                Some(has) => has,
                None => !someone_has_it,
            };
            *k &= ok;
        }
    }

    fn reason(&self, ctx: &RequestContext<'_>, pod: &Candidate<'_>) -> String {
        match pod.engine.serves(ctx.target_model) {
            Some(false) => format!("the engine does not list model {:?}", ctx.target_model),
            _ => format!(
                "the engine's model list is unknown and another lists {:?}",
                ctx.target_model
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{filter, pods};
    use super::*;
    use crate::scheduler::{EngineState, ModelSet};

    fn listing(models: &[&str]) -> EngineState {
        EngineState {
            models: Some(ModelSet::new(models)),
            ..EngineState::UNKNOWN
        }
    }

    #[test]
    fn only_endpoints_listing_the_adapter_pass() {
        let states = [
            listing(&["base", "lora-A"]),
            listing(&["base"]),
            EngineState::UNKNOWN,
        ];
        let p = pods(&states);
        let mut ctx = RequestContext::new("lora-A", "lora-A", b"");
        ctx.lora = true;
        assert_eq!(filter(&LoraAffinity, &ctx, &p), [true, false, false]);
        let nobody = RequestContext::new("lora-B", "lora-B", b"");
        assert_eq!(filter(&LoraAffinity, &nobody, &p), [false, false, true]);
        let base = RequestContext::new("base", "base", b"");
        assert_eq!(filter(&LoraAffinity, &base, &p), [true, true, false]);
    }
}
