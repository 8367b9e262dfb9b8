//! ReferenceGrants (`gateway.networking.k8s.io`): which cross-namespace references the owner
//! of the target namespace allows. A reference inside one namespace needs no grant.

use std::collections::HashMap;

use crate::ObjectRef;

/// `spec.from[]`: a kind of referring object, in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFrom {
    /// API group (`""` for core).
    pub group: String,
    /// Kind, e.g. `HTTPRoute` or `Gateway`.
    pub kind: String,
    /// Namespace of the referring objects.
    pub namespace: String,
}

/// `spec.to[]`: a kind of referenced object, optionally one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTo {
    /// API group (`""` for core).
    pub group: String,
    /// Kind, e.g. `Service`, `Secret` or `InferencePool`.
    pub kind: String,
    /// One object; `None` grants every object of the kind.
    pub name: Option<String>,
}

/// A ReferenceGrant, converted. It lives in the namespace of the objects it lets others
/// reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceGrant {
    /// The grant object.
    pub id: ObjectRef,
    /// Who may refer.
    pub from: Vec<GrantFrom>,
    /// To what.
    pub to: Vec<GrantTo>,
}

/// A reference from one object to another, by group and kind.
#[derive(Debug, Clone, Copy)]
pub struct Reference<'a> {
    /// Group of the referring object.
    pub from_group: &'a str,
    /// Kind of the referring object.
    pub from_kind: &'a str,
    /// Namespace of the referring object.
    pub from_namespace: &'a str,
    /// Group of the referenced object.
    pub to_group: &'a str,
    /// Kind of the referenced object.
    pub to_kind: &'a str,
    /// The referenced object.
    pub to: &'a ObjectRef,
}

/// Every ReferenceGrant, by namespace.
#[derive(Debug, Clone, Default)]
pub struct ReferenceGrants {
    by_namespace: HashMap<String, Vec<ReferenceGrant>>,
}

impl ReferenceGrants {
    /// Indexes `grants` by namespace.
    pub fn new(grants: impl IntoIterator<Item = ReferenceGrant>) -> Self {
        let mut by_namespace: HashMap<String, Vec<ReferenceGrant>> = HashMap::new();
        for g in grants {
            by_namespace
                .entry(g.id.namespace.clone())
                .or_default()
                .push(g);
        }
        Self { by_namespace }
    }

    /// True when the reference stays in one namespace, or a grant in the target's namespace
    /// names the referring kind and namespace in `from` and the target in `to` (entries are
    /// OR-ed).
    pub fn permits(&self, r: Reference<'_>) -> bool {
        if r.from_namespace == r.to.namespace {
            return true;
        }
        self.by_namespace
            .get(&r.to.namespace)
            .into_iter()
            .flatten()
            .any(|g| {
                g.from.iter().any(|f| {
                    f.group == r.from_group
                        && f.kind == r.from_kind
                        && f.namespace == r.from_namespace
                }) && g.to.iter().any(|t| {
                    t.group == r.to_group
                        && t.kind == r.to_kind
                        && t.name.as_deref().is_none_or(|n| n == r.to.name)
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(ns: &str, from_ns: &str, to_kind: &str, name: Option<&str>) -> ReferenceGrant {
        ReferenceGrant {
            id: ObjectRef::new(ns, "grant"),
            from: vec![GrantFrom {
                group: "gateway.networking.k8s.io".into(),
                kind: "HTTPRoute".into(),
                namespace: from_ns.into(),
            }],
            to: vec![GrantTo {
                group: String::new(),
                kind: to_kind.into(),
                name: name.map(Into::into),
            }],
        }
    }

    #[test]
    fn grants_decide_cross_namespace_references_only() {
        let backend = ObjectRef::new("models", "svc");
        let r = |from_ns: &'static str, to_kind: &'static str| Reference {
            from_group: "gateway.networking.k8s.io",
            from_kind: "HTTPRoute",
            from_namespace: from_ns,
            to_group: "",
            to_kind,
            to: &backend,
        };
        let none = ReferenceGrants::default();
        assert!(none.permits(r("models", "Service")), "same namespace");
        assert!(!none.permits(r("apps", "Service")), "no grant");
        let all = ReferenceGrants::new([grant("models", "apps", "Service", None)]);
        assert!(all.permits(r("apps", "Service")));
        assert!(!all.permits(r("other", "Service")), "other namespace");
        assert!(!all.permits(r("apps", "Secret")), "other kind");
        let named = ReferenceGrants::new([grant("models", "apps", "Service", Some("svc"))]);
        assert!(named.permits(r("apps", "Service")));
        let other = ReferenceGrants::new([grant("models", "apps", "Service", Some("x"))]);
        assert!(!other.permits(r("apps", "Service")), "other name");
        let wrong_ns = ReferenceGrants::new([grant("apps", "apps", "Service", None)]);
        assert!(
            !wrong_ns.permits(r("apps", "Service")),
            "a grant works only in the target's namespace"
        );
    }
}
