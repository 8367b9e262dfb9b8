//! The Gateway listener a request came in through.

use crate::ObjectRef;

/// A listener of a Gateway: the request's entry point in gateway mode.
///
/// ModelRoutes bind to Gateways through `parentRefs`; [`crate::RouteTable::select`] only
/// considers routes bound to the listener the request arrived on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenerRef {
    /// The Gateway owning the listener.
    pub gateway: ObjectRef,
    /// The listener's `name` (what a parentRef's `sectionName` names).
    pub section_name: String,
    /// The listener's port (what a parentRef's `port` names).
    pub port: u16,
}

impl ListenerRef {
    /// The listener `section_name` on `port` of Gateway `namespace/name`.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        section_name: impl Into<String>,
        port: u16,
    ) -> Self {
        Self {
            gateway: ObjectRef::new(namespace, name),
            section_name: section_name.into(),
            port,
        }
    }
}
