//! The pick: which endpoint of a pool serves a request, decided the way an inference
//! scheduler decides it (Kthena's filter/score framework, its plugins, and the rules it lacks).
//!
//! In: a [`RequestContext`] (model, adapter, a borrowed handle on the prompt, headers,
//! priority) and the pool's [`Candidate`]s, each with the router's counters and the
//! engine's scraped [`EngineState`] (published by the router's EndpointPool actor).
//! Out: a [`Decision`], the top N endpoints best first (the list retries walk), or Kthena's
//! `can't schedule to target pod: ...` when filters leave none.
//!
//! Stages: built-in rules (skip ejected endpoints and engines that do not list the model
//! about to be sent, never emptying the choice), then the configured filters in order, then
//! the configured scores (each 0..=100) summed with their weights; ties are ordered at random
//! per request. After the chosen endpoint answered, the post-pick hooks run (the prefix
//! cache records the prompt). [`Scheduler::explain`] runs the same stages and keeps every
//! verdict.
//!
//! Pure: no I/O, no async runtime; the only shared state is the [`PrefixIndex`].

pub mod candidate;
pub mod config;
pub mod context;
pub mod engine_metrics;
pub mod framework;
pub mod plugins;
pub mod prefix_index;
pub mod random;

pub use candidate::{Candidate, EngineState, ModelSet};
pub use config::{ArgValue, Built, Carried, PluginArgs, SchedulerConfig};
pub use context::{Headers, RequestContext};
pub use framework::{
    DEFAULT_TOP_N, Decision, Explanation, FilterPlugin, PluginKind, PluginTimer, PostPickHook,
    ScheduleError, Scheduler, ScorePlugin, Verdict,
};
pub use prefix_index::PrefixIndex;
