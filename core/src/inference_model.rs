//! InferenceModels (`inference.networking.x-k8s.io/v1alpha2`): a public model name served by
//! an InferencePool, split exactly over the models (or LoRA adapters) the engines register.

use std::collections::HashMap;

use crate::http_route::InferencePoolApi;
use crate::{CreationOrder, ObjectRef, WeightedPicker};

/// How important the model's traffic is, kept for the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Criticality {
    /// Served first.
    Critical,
    /// The default.
    #[default]
    Standard,
    /// Dropped first under pressure.
    Sheddable,
}

impl Criticality {
    /// The queue priority of the model's requests when no InferenceObjective names one: as
    /// the Inference Extension's move from criticality to priority, `Sheddable` is below 0
    /// (shed first), `Standard` is 0 (an unset priority) and `Critical` above it.
    pub fn priority(self) -> i32 {
        match self {
            Criticality::Critical => 1,
            Criticality::Standard => 0,
            Criticality::Sheddable => -1,
        }
    }
}

/// An InferenceModel, converted.
#[derive(Debug, Clone)]
pub struct InferenceModel {
    /// The InferenceModel object.
    pub id: ObjectRef,
    /// `modelName`: the model clients ask for.
    pub model_name: String,
    /// `poolRef`: the pool serving it (group decides the API).
    pub pool: (InferencePoolApi, ObjectRef),
    /// `criticality`.
    pub criticality: Criticality,
    /// `metadata.creationTimestamp`: the oldest InferenceModel owns a model name on a pool.
    pub order: CreationOrder,
    targets: Vec<String>,
    picker: WeightedPicker,
}

impl InferenceModel {
    /// An InferenceModel whose requests go to `targets` (name, weight) in exact proportion;
    /// no targets keeps the requested model.
    pub fn new(
        id: ObjectRef,
        model_name: String,
        pool: (InferencePoolApi, ObjectRef),
        criticality: Criticality,
        order: CreationOrder,
        targets: Vec<(String, u32)>,
    ) -> Self {
        let weights: Vec<u32> = targets.iter().map(|(_, w)| *w).collect();
        Self {
            id,
            model_name,
            pool,
            criticality,
            order,
            targets: targets.into_iter().map(|(n, _)| n).collect(),
            picker: WeightedPicker::new(&weights),
        }
    }

    /// The model to send upstream for the next request, `None` to keep the requested one.
    pub fn pick_target(&self) -> Option<&str> {
        self.picker.pick().map(|i| self.targets[i].as_str())
    }

    /// The target model names, in order.
    pub fn targets(&self) -> &[String] {
        &self.targets
    }
}

/// A model name on a pool, as InferenceModels claim it.
pub type ModelOnPool = (InferencePoolApi, ObjectRef, String);

/// The owner of every model name claimed on a pool: the oldest InferenceModel
/// ([`CreationOrder`]: creation time, then namespace, then name), whatever the input order.
/// The data plane serves only owners; status marks the others `ModelNameInUse`.
pub fn owners(models: &[InferenceModel]) -> HashMap<ModelOnPool, &InferenceModel> {
    let mut out: HashMap<ModelOnPool, &InferenceModel> = HashMap::new();
    for m in models {
        let key = (m.pool.0, m.pool.1.clone(), m.model_name.clone());
        out.entry(key)
            .and_modify(|owner| {
                if m.order < owner.order {
                    *owner = m;
                }
            })
            .or_insert(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(name: &str) -> CreationOrder {
        CreationOrder {
            created_unix_nanos: None,
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn targets_split_exactly_and_no_targets_keep_the_model() {
        let pool = (
            InferencePoolApi::V1Alpha2,
            ObjectRef::new("default", "pool"),
        );
        let m = InferenceModel::new(
            ObjectRef::new("default", "food"),
            "food-review".into(),
            pool.clone(),
            Criticality::Critical,
            order("food"),
            vec![("food-review-1".into(), 70), ("food-review-2".into(), 30)],
        );
        let firsts = (0..100)
            .filter(|_| m.pick_target() == Some("food-review-1"))
            .count();
        assert_eq!(firsts, 70);
        let plain = InferenceModel::new(
            ObjectRef::new("default", "p"),
            "p".into(),
            pool,
            Criticality::Standard,
            order("p"),
            vec![],
        );
        assert_eq!(plain.pick_target(), None);
    }

    #[test]
    fn the_oldest_inference_model_owns_a_name_in_any_input_order() {
        let pool = (InferencePoolApi::V1, ObjectRef::new("default", "pool"));
        let mk = |name: &str, created: Option<i64>, model: &str| {
            let mut o = order(name);
            o.created_unix_nanos = created;
            InferenceModel::new(
                ObjectRef::new("default", name),
                model.into(),
                pool.clone(),
                Criticality::Standard,
                o,
                vec![],
            )
        };
        let mut models = vec![
            mk("zeta", Some(5), "m"),
            mk("young", Some(9), "m"),
            mk("from-file", None, "m"),
            mk("alpha", Some(5), "m"),
            mk("other", Some(20), "n"),
        ];
        // Every rotation and its reverse: the same owners.
        for i in 0..models.len() * 2 {
            if i == models.len() {
                models.reverse();
            }
            models.rotate_left(1);
            let got: std::collections::BTreeMap<String, String> = owners(&models)
                .into_iter()
                .map(|((_, _, model), m)| (model, m.id.name.clone()))
                .collect();
            let want: std::collections::BTreeMap<String, String> =
                [("m".into(), "alpha".into()), ("n".into(), "other".into())].into();
            assert_eq!(got, want);
        }
    }
}

/// An InferenceObjective (`inference.networking.x-k8s.io/v1alpha2`), converted: the priority
/// of the requests that name it, kept for the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InferenceObjective {
    /// The InferenceObjective object (its name is what requests name).
    pub id: ObjectRef,
    /// `poolRef`.
    pub pool: (InferencePoolApi, ObjectRef),
    /// `priority`: higher is served first; unset counts as 0.
    pub priority: i64,
}
