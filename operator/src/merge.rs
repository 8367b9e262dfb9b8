//! The pure merge of a [`DesiredStatus`] into the `status` stored on the object (Gateway API
//! rules, `gateway-api-notes.md` §1.3 and §1.7). In: the stored status, the desired one, the
//! current time. Out: nothing to do, stale input, or the full merged status to write.
//!
//! - Conditions are merged by `type`. `lastTransitionTime` is kept from the stored condition of
//!   the same type while its `status` is unchanged, and set to `now` on a flip or a new type.
//! - Top-level `conditions`: types we do not write are kept (they may belong to others).
//! - `listeners[]` (matched by `name`) and our `parents[]` entries (matched by `parentRef` and
//!   `controllerName`) belong to us as a whole: their condition lists hold exactly the types we
//!   write (otherwise a retracted condition that is only ever set True, such as
//!   `PartiallyInvalid` or `OverlappingTLSConfig`, would stay forever).
//! - `parents[]` entries of others are kept in place; ours are replaced by the desired ones, and
//!   removed when no longer desired; new entries are appended.
//! - Any other top-level field we write replaces the stored one (`null` removes it); fields we
//!   don't write are kept.

use crate::desired::{DesiredStatus, ParentOwnership};
use jiff::Timestamp;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// The group a `parentRef` means when it names none (the CRD schema default).
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// The kind a `parentRef` means when it names none (the CRD schema default).
const GATEWAY_KIND: &str = "Gateway";

/// What to do with one object's status.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeOutcome {
    /// The merged status equals the stored one: no write (this is what stops write loops).
    Unchanged,
    /// A stored condition of ours was computed from a newer generation than our input: skip.
    Stale {
        /// The highest `observedGeneration` found among our stored conditions.
        stored: i64,
        /// The generation our desired status was computed from.
        ours: i64,
    },
    /// Write this whole status.
    Write(Value),
}

/// Merges `desired` into the `current` stored status (`None`, `null` or a non-object value mean
/// no status yet), stamping new or flipped conditions with `now` (RFC 3339, seconds, `Z`).
///
/// The legacy `inference.networking.x-k8s.io/v1alpha2` InferencePool names its list `parent`:
/// a desired status with `parent` and no `parents` is merged the same way under that name.
pub fn merge(current: Option<&Value>, desired: &DesiredStatus, now: Timestamp) -> MergeOutcome {
    let legacy = desired.status.get("parent").is_some() && desired.status.get("parents").is_none();
    if !legacy {
        return merge_parents_named(current, desired, now);
    }
    let rename = |v: &Value, from: &str, to: &str| -> Value {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut()
            && let Some(list) = map.remove(from)
        {
            map.insert(to.to_owned(), list);
        }
        v
    };
    let current = current.map(|c| rename(c, "parent", "parents"));
    let mut renamed = desired.clone();
    renamed.status = rename(&desired.status, "parent", "parents");
    match merge_parents_named(current.as_ref(), &renamed, now) {
        MergeOutcome::Write(v) => MergeOutcome::Write(rename(&v, "parents", "parent")),
        other => other,
    }
}

fn merge_parents_named(
    current: Option<&Value>,
    desired: &DesiredStatus,
    now: Timestamp,
) -> MergeOutcome {
    let empty = Map::new();
    let stored = current.and_then(Value::as_object).unwrap_or(&empty);
    let want = desired.status.as_object().unwrap_or(&empty);
    let owner = Owner {
        rule: &desired.parents,
        namespace: desired.target.namespace.as_deref(),
        desired: want
            .get("parents")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]),
    };
    // Under ControllerName/Gateways ownership, no `parents` in the desired status means "no
    // entries of ours"; under Whole it means "we don't write parents".
    let writes_parents = want.contains_key("parents") || owner.rule != &ParentOwnership::Whole;

    if let Some(ours) = desired.generation
        && let Some(stored_generation) = newest_generation_of_ours(stored, want, &owner)
        && stored_generation > ours
    {
        return MergeOutcome::Stale {
            stored: stored_generation,
            ours,
        };
    }

    let now = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut merged = stored.clone();
    for (key, value) in want {
        if value.is_null() {
            merged.remove(key);
            continue;
        }
        let new = match (key.as_str(), value.as_array()) {
            ("conditions", Some(conds)) => Value::Array(merge_conditions(
                stored.get(key),
                conds,
                &now,
                Foreign::Keep,
            )),
            ("listeners", Some(listeners)) => {
                Value::Array(merge_listeners(stored.get(key), listeners, &now))
            }
            ("parents", Some(_)) => Value::Array(merge_parents(stored.get(key), &owner, &now)),
            _ => value.clone(),
        };
        merged.insert(key.clone(), new);
    }
    if writes_parents && !want.contains_key("parents") && stored.contains_key("parents") {
        merged.insert(
            "parents".to_owned(),
            Value::Array(merge_parents(stored.get("parents"), &owner, &now)),
        );
    }

    if &merged == stored {
        MergeOutcome::Unchanged
    } else {
        MergeOutcome::Write(Value::Object(merged))
    }
}

/// Whether stored conditions of types we don't write survive a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Foreign {
    /// Keep them (top-level conditions: other controllers may own some types).
    Keep,
    /// Drop them (the list sits in an entry that is ours as a whole).
    Drop,
}

/// Who owns which `parents[]` entries, and which entries we want.
struct Owner<'a> {
    rule: &'a ParentOwnership,
    /// Namespace of the object: the default namespace of a `parentRef`.
    namespace: Option<&'a str>,
    /// The desired `parents[]` entries.
    desired: &'a [Value],
}

impl Owner<'_> {
    /// Index of the desired entry with the same key as `entry`.
    fn desired_match(&self, entry: &Value) -> Option<usize> {
        let key = parent_key(entry);
        self.desired.iter().position(|d| parent_key(d) == key)
    }

    /// Whether a stored `parents[]` entry is ours.
    fn owns(&self, entry: &Value) -> bool {
        let by_rule = match self.rule {
            ParentOwnership::Whole => true,
            ParentOwnership::ControllerName(ours) => {
                entry.get("controllerName").and_then(Value::as_str) == Some(ours.as_str())
            }
            ParentOwnership::Gateways(gateways) => {
                names_gateway(entry.get("parentRef"), self.namespace).is_some_and(|(ns, name)| {
                    gateways
                        .iter()
                        .any(|(g_ns, g_name)| g_ns == ns && g_name == name)
                })
            }
        };
        by_rule || self.desired_match(entry).is_some()
    }
}

/// The `(namespace, name)` of the Gateway a `parentRef` names (`None` for any other kind).
fn names_gateway<'a>(
    parent_ref: Option<&'a Value>,
    default_namespace: Option<&'a str>,
) -> Option<(&'a str, &'a str)> {
    let parent_ref = parent_ref?;
    let field = |name: &str| parent_ref.get(name).and_then(Value::as_str);
    let group = field("group").unwrap_or(GATEWAY_GROUP);
    let kind = field("kind").unwrap_or(GATEWAY_KIND);
    if group != GATEWAY_GROUP || kind != GATEWAY_KIND {
        return None;
    }
    let namespace = field("namespace").or(default_namespace)?;
    Some((namespace, field("name")?))
}

/// The identity of a `parents[]` entry: its `parentRef` with the schema defaults of `group` and
/// `kind` filled in (the API server fills them in on write), and its `controllerName`.
fn parent_key(entry: &Value) -> (Option<Value>, Option<&Value>) {
    let parent_ref = entry.get("parentRef").map(|r| {
        let mut r = r.clone();
        if let Some(obj) = r.as_object_mut() {
            for (field, default) in [("group", GATEWAY_GROUP), ("kind", GATEWAY_KIND)] {
                obj.entry(field)
                    .or_insert_with(|| Value::String(default.to_owned()));
            }
        }
        r
    });
    (parent_ref, entry.get("controllerName"))
}

/// The highest `observedGeneration` among the stored conditions we would overwrite, and the
/// stored top-level `observedGeneration` when we write that field.
fn newest_generation_of_ours(
    stored: &Map<String, Value>,
    want: &Map<String, Value>,
    owner: &Owner<'_>,
) -> Option<i64> {
    let mut generations: Vec<i64> = Vec::new();
    if want.contains_key("observedGeneration")
        && let Some(g) = stored.get("observedGeneration").and_then(Value::as_i64)
    {
        generations.push(g);
    }
    if let Some(conds) = want.get("conditions").and_then(Value::as_array) {
        let ours: HashSet<&str> = conds.iter().filter_map(condition_type).collect();
        generations.extend(
            conditions_of(stored)
                .filter(|c| condition_type(c).is_some_and(|t| ours.contains(t)))
                .filter_map(observed_generation),
        );
    }
    if want.get("listeners").is_some_and(Value::is_array) {
        for listener in array_of(stored, "listeners") {
            generations.extend(conditions_of_entry(listener).filter_map(observed_generation));
        }
    }
    if want.contains_key("parents") || owner.rule != &ParentOwnership::Whole {
        for parent in array_of(stored, "parents").filter(|p| owner.owns(p)) {
            generations.extend(conditions_of_entry(parent).filter_map(observed_generation));
        }
    }
    generations.into_iter().max()
}

/// Entries of the array `field` of `obj` (none when missing or not an array).
fn array_of<'a>(obj: &'a Map<String, Value>, field: &str) -> impl Iterator<Item = &'a Value> {
    obj.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn conditions_of(obj: &Map<String, Value>) -> impl Iterator<Item = &Value> {
    array_of(obj, "conditions")
}

fn conditions_of_entry(entry: &Value) -> impl Iterator<Item = &Value> {
    entry
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn condition_type(condition: &Value) -> Option<&str> {
    condition.get("type").and_then(Value::as_str)
}

fn observed_generation(condition: &Value) -> Option<i64> {
    condition.get("observedGeneration").and_then(Value::as_i64)
}

/// Merges a conditions list by `type` (see the module docs). Desired conditions without a
/// string `type` are ignored; of duplicated types the first one wins.
fn merge_conditions(
    stored: Option<&Value>,
    desired: &[Value],
    now: &str,
    foreign: Foreign,
) -> Vec<Value> {
    let stored = stored
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let wanted = |t: &str| desired.iter().find(|d| condition_type(d) == Some(t));
    let mut placed: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(stored.len().max(desired.len()));
    for old in stored {
        match condition_type(old).and_then(|t| wanted(t).map(|d| (t, d))) {
            Some((t, new)) if placed.insert(t) => out.push(stamp(new, Some(old), now)),
            Some(_) => {} // a stored duplicate of a type already placed
            None if foreign == Foreign::Keep => out.push(old.clone()),
            None => {}
        }
    }
    for new in desired {
        if let Some(t) = condition_type(new)
            && placed.insert(t)
        {
            out.push(stamp(new, None, now));
        }
    }
    out
}

/// `new` with its `lastTransitionTime`: the stored one while `status` is unchanged, else `now`.
fn stamp(new: &Value, old: Option<&Value>, now: &str) -> Value {
    let mut new = new.clone();
    let kept = old
        .filter(|old| old.get("status") == new.get("status"))
        .and_then(|old| old.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .unwrap_or(now)
        .to_owned();
    if let Some(obj) = new.as_object_mut() {
        obj.insert("lastTransitionTime".to_owned(), Value::String(kept));
    }
    new
}

/// `listeners[]` in the desired order; each entry's conditions merged with the stored entry of
/// the same `name`.
fn merge_listeners(stored: Option<&Value>, desired: &[Value], now: &str) -> Vec<Value> {
    let stored = stored
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    desired
        .iter()
        .map(|new| {
            let name = new.get("name");
            let old = stored
                .iter()
                .find(|old| name.is_some() && old.get("name") == name);
            merge_entry(new, old, now)
        })
        .collect()
}

/// One entry of ours (listener or parent): the desired fields, with its conditions merged
/// against the stored entry.
fn merge_entry(new: &Value, old: Option<&Value>, now: &str) -> Value {
    let mut entry = new.clone();
    if let Some(obj) = entry.as_object_mut()
        && let Some(conds) = new.get("conditions").and_then(Value::as_array)
    {
        let merged = merge_conditions(
            old.and_then(|o| o.get("conditions")),
            conds,
            now,
            Foreign::Drop,
        );
        obj.insert("conditions".to_owned(), Value::Array(merged));
    }
    entry
}

/// `parents[]`: others' entries in place, ours replaced or removed, new ones appended.
fn merge_parents(stored: Option<&Value>, owner: &Owner<'_>, now: &str) -> Vec<Value> {
    let stored = stored
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut used = vec![false; owner.desired.len()];
    let mut out = Vec::with_capacity(stored.len().max(owner.desired.len()));
    for old in stored {
        if !owner.owns(old) {
            out.push(old.clone());
            continue;
        }
        let Some(i) = owner.desired_match(old) else {
            continue; // ours, no longer desired
        };
        if std::mem::replace(&mut used[i], true) {
            continue; // a duplicate of an entry already placed
        }
        let mut entry = merge_entry(&owner.desired[i], Some(old), now);
        // Same key: keep the stored spelling of the parentRef so the API server's defaults
        // (group, kind) don't make every comparison differ.
        if let (Some(obj), Some(parent_ref)) = (entry.as_object_mut(), old.get("parentRef")) {
            obj.insert("parentRef".to_owned(), parent_ref.clone());
        }
        out.push(entry);
    }
    for (i, (new, used)) in owner.desired.iter().zip(used).enumerate() {
        // Of desired entries with the same key, only the first is written.
        if !used && owner.desired_match(new) == Some(i) {
            out.push(merge_entry(new, None, now));
        }
    }
    out
}
