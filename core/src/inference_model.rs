//! InferenceModels (`inference.networking.x-k8s.io/v1alpha2`): a public model name served by
//! an InferencePool, split exactly over the models (or LoRA adapters) the engines register.

use crate::http_route::InferencePoolApi;
use crate::{ObjectRef, WeightedPicker};

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
        targets: Vec<(String, u32)>,
    ) -> Self {
        let weights: Vec<u32> = targets.iter().map(|(_, w)| *w).collect();
        Self {
            id,
            model_name,
            pool,
            criticality,
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

#[cfg(test)]
mod tests {
    use super::*;

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
            vec![],
        );
        assert_eq!(plain.pick_target(), None);
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
