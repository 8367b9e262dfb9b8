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
//!
//! # What workers share per request
//!
//! Each actix worker is one thread with its own awc client (and so its own upstream
//! connection pool) and its own access-log buffer. Per request, workers share only:
//! - the snapshots (`ArcSwap` loads: read-only, a reference count bumped and dropped);
//! - the chosen endpoint's in-flight counter ([`pool::Endpoint`]), which the scheduler needs
//!   exact, padded to a cache line of its own;
//! - the prefix index of `prefix-cache` (sharded locks, one shard per lookup, a per-endpoint
//!   LRU lock when an answer is recorded);
//! - the Prometheus series a request counts into (atomics inside the `prometheus` crate, one
//!   set per label combination: every worker serving the same model writes the same lines).
//!   Each worker resolves the handles of a model's series once ([`metrics::Metrics::series`])
//!   instead of hashing label values under the vector's lock per request;
//! - with a token rate limit, the model's (or user's, or header value's) bucket: a mutex per
//!   budget, taken twice per request (admit, settle); a global limit is a Redis call instead.
//!
//! The last is the one that would bounce cache lines between 16+ workers on one hot model;
//! per-worker counters folded at scrape time would remove it (not done: not measured here,
//! where the machines have 2 cores).

pub mod access_log;
pub mod actors;
pub mod app;
pub mod args;
pub mod auth;
pub mod body;
pub mod connection;
pub mod control;
pub mod debug;
pub mod error;
pub mod exchange;
pub mod fair_queue;
pub mod handlers;
pub mod kube_client;
pub mod metrics;
pub mod pool;
pub mod provider;
pub mod proxy;
pub mod rate_limit;
pub mod scheduling;
pub mod source;
pub mod state;
pub mod status;
pub mod tls;
pub mod upstream;
pub mod usage;
