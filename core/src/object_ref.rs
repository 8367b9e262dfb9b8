//! Namespaced object names.

use std::fmt;

/// The namespace and name of a namespaced object, displayed as `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// Namespace of the object.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
}

impl ObjectRef {
    /// A reference to `namespace/name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl ObjectRef {
    /// `namespace/name`, as [`Display`](fmt::Display) writes it, built without the formatting
    /// machinery (the router writes a few per request).
    pub fn key(&self) -> String {
        let mut s = String::with_capacity(self.namespace.len() + 1 + self.name.len());
        s.push_str(&self.namespace);
        s.push('/');
        s.push_str(&self.name);
        s
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectRef;

    #[test]
    fn the_key_is_what_display_writes() {
        let r = ObjectRef::new("kthena-system", "default");
        assert_eq!(r.key(), r.to_string());
        assert_eq!(r.key(), "kthena-system/default");
    }
}
