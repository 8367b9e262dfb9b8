//! The actix actors that own the router's state: each is the only writer of what it owns and
//! publishes immutable snapshots into [`crate::state::Shared`].
//!
//! - [`index::Index`] receives configurations from a source (manifest folder or Kubernetes
//!   watchers), each saying which objects changed; starts and stops one
//!   [`endpoint_pool::EndpointPool`] per ModelServer or InferencePool, feeds each the Pods it
//!   selects, and hands the changed routes to [`route_set::RouteSet`].
//! - [`route_set::RouteSet`] derives each route table from the last and the routes changed.
//! - [`listener::Listener`] owns the actix-web server of one port.

pub mod endpoint_pool;
pub mod index;
pub mod listener;
pub mod route_set;
