//! Writes the statuses this router computed onto the objects, while this replica leads.
//!
//! In: the desired statuses (a watch channel of `Arc` snapshots) and leadership (a watch channel
//! from [`crate::lease::LeaderElector`]). Out: JSON merge patches of the `status` subresource,
//! each carrying the `resourceVersion` that was read (optimistic concurrency), only when
//! [`merge`] says the stored status differs.

use crate::api_error::{is_conflict, is_not_found};
use crate::desired::{DesiredStatus, StatusTarget};
use crate::merge::{MergeOutcome, merge};
use jiff::Timestamp;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Tries per object when the PATCH meets 409 Conflict (someone wrote in between).
const CONFLICT_TRIES: u32 = 3;
/// Delay before retrying objects whose write failed (capped by the resync period).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Counts of one pass over desired statuses, by outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteSummary {
    /// Objects whose status was patched.
    pub written: usize,
    /// Objects whose stored status already equals the merged one (GET only).
    pub unchanged: usize,
    /// Objects whose stored conditions are newer than our input (not written).
    pub stale: usize,
    /// Objects that no longer exist (404).
    pub gone: usize,
    /// Objects that could not be read or written (logged; retried later by `run`).
    pub failed: usize,
}

impl WriteSummary {
    fn count(&mut self, outcome: Outcome) {
        let slot = match outcome {
            Outcome::Written => &mut self.written,
            Outcome::Unchanged => &mut self.unchanged,
            Outcome::Stale => &mut self.stale,
            Outcome::Gone => &mut self.gone,
            Outcome::Failed => &mut self.failed,
        };
        *slot += 1;
    }
}

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Written,
    Unchanged,
    Stale,
    Gone,
    Failed,
}

/// Writes desired statuses through the `status` subresource.
pub struct StatusWriter {
    client: kube::Client,
    field_manager: String,
}

impl std::fmt::Debug for StatusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriter")
            .field("field_manager", &self.field_manager)
            .finish_non_exhaustive()
    }
}

impl StatusWriter {
    /// A writer patching as `field_manager` (shown in `metadata.managedFields`).
    pub fn new(client: kube::Client, field_manager: impl Into<String>) -> Self {
        Self {
            client,
            field_manager: field_manager.into(),
        }
    }

    /// One pass over `desired`, in order: GET each object, merge, PATCH when needed.
    /// Leadership is not checked: the caller must lead.
    pub async fn write_once(&self, desired: &[DesiredStatus]) -> WriteSummary {
        let mut summary = WriteSummary::default();
        for status in desired {
            summary.count(self.write_one(status).await);
        }
        summary
    }

    /// Writes statuses until either channel's sender is dropped.
    ///
    /// Only while `leader` is true, a pass runs when the desired set changes (only objects whose
    /// desired status differs from the last one settled), when leadership is gained and every
    /// `resync` (all objects; at least 1s). Failed objects are retried after a few seconds.
    pub async fn run(
        self,
        mut desired: watch::Receiver<Arc<Vec<Arc<DesiredStatus>>>>,
        mut leader: watch::Receiver<bool>,
        resync: Duration,
    ) {
        // A zero period would spin.
        let resync = resync.max(Duration::from_secs(1));
        // Last desired status per object that needs no write until it changes.
        let mut settled: HashMap<StatusTarget, Arc<DesiredStatus>> = HashMap::new();
        let mut was_leading = false;
        let mut full = true;
        let mut resync_at = Instant::now() + resync;
        loop {
            let leading = *leader.borrow_and_update();
            let retry_at = if leading {
                full |= !was_leading;
                let set = Arc::clone(&desired.borrow_and_update());
                let failed = self.pass(&set, &mut settled, full, &leader).await;
                full = false;
                failed.then(|| Instant::now() + RETRY_AFTER.min(resync))
            } else {
                settled.clear();
                None
            };
            was_leading = leading;
            let wake_at = retry_at.map_or(resync_at, |retry| retry.min(resync_at));
            tokio::select! {
                changed = desired.changed() => if changed.is_err() { return },
                changed = leader.changed() => if changed.is_err() { return },
                () = tokio::time::sleep_until(wake_at) => {
                    let now = Instant::now();
                    if now >= resync_at {
                        full = true;
                        resync_at = now + resync;
                    }
                }
            }
        }
    }

    /// Writes the objects of `set` not settled (all when `full`), stopping early if leadership
    /// is lost. Returns whether any write failed.
    async fn pass(
        &self,
        set: &[Arc<DesiredStatus>],
        settled: &mut HashMap<StatusTarget, Arc<DesiredStatus>>,
        full: bool,
        leader: &watch::Receiver<bool>,
    ) -> bool {
        let wanted: HashSet<&StatusTarget> = set.iter().map(|d| &d.target).collect();
        settled.retain(|target, _| wanted.contains(target));
        let mut summary = WriteSummary::default();
        for status in set {
            // An unchanged object's status is the same allocation: no comparison needed.
            if !full
                && settled
                    .get(&status.target)
                    .is_some_and(|s| Arc::ptr_eq(s, status) || s == status)
            {
                continue;
            }
            if !*leader.borrow() {
                break;
            }
            let outcome = self.write_one(status).await;
            summary.count(outcome);
            if outcome == Outcome::Failed {
                settled.remove(&status.target);
            } else {
                settled.insert(status.target.clone(), status.clone());
            }
        }
        if summary != WriteSummary::default() {
            tracing::debug!(?summary, full, "status pass done");
        }
        summary.failed > 0
    }

    /// GET, merge, PATCH one object; a 409 re-reads and retries (bounded).
    async fn write_one(&self, desired: &DesiredStatus) -> Outcome {
        let target = &desired.target;
        let api: Api<DynamicObject> = match &target.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &target.api),
            None => Api::all_with(self.client.clone(), &target.api),
        };
        let namespace = target.namespace.as_deref().unwrap_or_default();
        let kind = target.api.kind.as_str();
        let name = target.name.as_str();
        for attempt in 1..=CONFLICT_TRIES {
            let object = match api.get(name).await {
                Ok(object) => object,
                Err(error) if is_not_found(&error) => {
                    tracing::debug!(kind, namespace, name, "object gone, status not written");
                    return Outcome::Gone;
                }
                Err(error) => {
                    tracing::warn!(kind, namespace, name, %error, "cannot read object");
                    return Outcome::Failed;
                }
            };
            let current = object.data.get("status");
            let merged = match merge(current, desired, Timestamp::now()) {
                MergeOutcome::Unchanged => return Outcome::Unchanged,
                MergeOutcome::Stale { stored, ours } => {
                    tracing::debug!(
                        kind,
                        namespace,
                        name,
                        stored,
                        ours,
                        "stored status is newer"
                    );
                    return Outcome::Stale;
                }
                MergeOutcome::Write(merged) => merged,
            };
            let mut body = Map::new();
            if let Some(version) = object.metadata.resource_version {
                let mut metadata = Map::new();
                metadata.insert("resourceVersion".to_owned(), Value::String(version));
                body.insert("metadata".to_owned(), Value::Object(metadata));
            }
            body.insert("status".to_owned(), with_removals(current, &merged));
            let params = PatchParams {
                field_manager: Some(self.field_manager.clone()),
                ..PatchParams::default()
            };
            match api
                .patch_status(name, &params, &Patch::Merge(&Value::Object(body)))
                .await
            {
                Ok(_) => {
                    tracing::info!(kind, namespace, name, "status written");
                    return Outcome::Written;
                }
                Err(error) if is_conflict(&error) => {
                    tracing::debug!(kind, namespace, name, attempt, "conflict, reading again");
                }
                Err(error) if is_not_found(&error) => return Outcome::Gone,
                Err(error) => {
                    tracing::warn!(kind, namespace, name, %error, "cannot write status");
                    return Outcome::Failed;
                }
            }
        }
        tracing::warn!(
            kind,
            namespace,
            name,
            tries = CONFLICT_TRIES,
            "status write kept conflicting"
        );
        Outcome::Failed
    }
}

/// `merged` as a JSON merge patch over `stored`: a key present in a stored object but absent
/// from the merged object at the same place becomes `null` (a merge patch otherwise keeps it).
/// Arrays and scalars are replaced whole, as a merge patch does.
fn with_removals(stored: Option<&Value>, merged: &Value) -> Value {
    match (stored.and_then(Value::as_object), merged.as_object()) {
        (Some(old), Some(new)) => {
            let mut out: Map<String, Value> = new
                .iter()
                .map(|(key, value)| (key.clone(), with_removals(old.get(key), value)))
                .collect();
            for key in old.keys().filter(|key| !new.contains_key(*key)) {
                out.insert(key.clone(), Value::Null);
            }
            Value::Object(out)
        }
        _ => merged.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::with_removals;
    use serde_json::json;

    #[test]
    fn keys_missing_from_merged_objects_become_null() {
        let stored = json!({"a": 1, "o": {"x": 1, "y": 2}, "l": [{"k": 1}]});
        let merged = json!({"a": 1, "o": {"x": 1}, "l": [], "n": true});
        assert_eq!(
            with_removals(Some(&stored), &merged),
            json!({"a": 1, "o": {"x": 1, "y": null}, "l": [], "n": true})
        );
    }

    #[test]
    fn no_stored_status_patches_the_merged_one_as_is() {
        let merged = json!({"conditions": []});
        assert_eq!(with_removals(None, &merged), merged);
    }
}
