//! The operator half of the `kthena-router` binary (package `kthena-router`, library
//! `kthena_operator`): its flags and start-up, `validate`, the admission webhook's wiring and
//! the controllers on the Kubernetes API: the status writer (only the holder of a
//! `coordination.k8s.io` Lease writes), and the pure merge of computed statuses into the ones
//! stored.
//!
//! - [`desired`]: what the router computed for one object ([`desired::DesiredStatus`]).
//! - [`merge`]: pure merge of a desired status into the stored one (Gateway API rules).
//! - [`lease`]: leader election; publishes "I lead" on a watch channel.
//! - [`status_writer`]: while leading, GET + merge + PATCH `status` of each object.

mod api_error;
pub mod args;
pub mod controllers;
pub mod defaults;
pub mod desired;
pub mod lease;
pub mod merge;
pub mod report;
pub mod service_ports;
pub mod status_writer;
pub mod validate;
pub mod webhook;
pub mod webhook_certs;
