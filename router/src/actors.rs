//! The actix actors that own the router's state: each is the only writer of what it owns and
//! publishes immutable snapshots into [`crate::state::Shared`].
//!
//! - [`index::Index`] receives whole configurations from a source (manifest folder, later the
//!   Kubernetes watchers), starts and stops one [`endpoint_pool::EndpointPool`] per
//!   ModelServer, and hands the routes to [`route_set::RouteSet`].
//! - [`listener::Listener`] owns the actix-web server of one port.

pub mod endpoint_pool;
pub mod index;
pub mod listener;
pub mod route_set;
