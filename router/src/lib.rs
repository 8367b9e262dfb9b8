//! The kthena-rs data plane (`kthena-dataplane`, a library of the `kthena-router` binary).
//!
//! In: configurations from a source — a watched manifest folder (standalone mode) or
//! kube-runtime watchers (Kubernetes mode), each change applied per object — and
//! OpenAI-compatible HTTP requests. Out: each request proxied
//! with awc to an engine Pod chosen by the routing core, responses streamed back, Prometheus
//! metrics and an access log.
//!
//! Actors ([`actors`]) own the state and publish immutable snapshots ([`state`]); request
//! handlers ([`handlers`]) read the snapshots and never wait on a mailbox.

pub mod access_log;
pub mod actors;
pub mod app;
pub mod args;
pub mod body;
pub mod control;
pub mod debug;
pub mod error;
pub mod exchange;
pub mod handlers;
pub mod kube_client;
pub mod metrics;
pub mod pool;
pub mod proxy;
pub mod scheduling;
pub mod source;
pub mod state;
pub mod status;
pub mod tls;
pub mod upstream;
pub mod usage;
