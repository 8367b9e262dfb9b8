//! The scheduler's configuration as Kthena's router ConfigMap spells it (`scheduler.
//! pluginConfig`, `scheduler.plugins.Filter.enabled`, `scheduler.plugins.Score.enabled`),
//! already decoded from YAML by `kthena_api`, and its validation into a [`Scheduler`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::plugins;
use super::{PrefixIndex, Scheduler};
use crate::FieldErrors;

/// One plugin argument value, as YAML gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    /// `true` / `false`.
    Bool(bool),
    /// Any number.
    Number(f64),
    /// A string.
    Text(String),
    /// A list, a map or null: no plugin takes one.
    Other(&'static str),
}

impl ArgValue {
    fn kind(&self) -> &'static str {
        match self {
            ArgValue::Bool(_) => "a boolean",
            ArgValue::Number(_) => "a number",
            ArgValue::Text(_) => "a string",
            ArgValue::Other(k) => k,
        }
    }
}

/// The `args` of one `pluginConfig` entry, read by the plugin's constructor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginArgs {
    /// Where the args are, e.g. `scheduler.pluginConfig[2].args`.
    pub path: String,
    /// The args by name.
    pub values: BTreeMap<String, ArgValue>,
}

impl PluginArgs {
    /// Arg `name`, its spelling matched case-insensitively as Kthena's JSON decoding does.
    fn get(&self, name: &str) -> Option<&ArgValue> {
        self.values.get(name).or_else(|| {
            self.values
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    }

    /// Arg `name` as a whole number ≥ `min`, or `default` when absent.
    pub fn count(&self, name: &str, default: usize, min: usize, errors: &mut FieldErrors) -> usize {
        match self.get(name) {
            None => default,
            Some(ArgValue::Number(n)) if n.fract() == 0.0 && *n >= min as f64 && *n <= 1e12 => {
                *n as usize
            }
            Some(v) => {
                let got = match v {
                    ArgValue::Number(n) => n.to_string(),
                    other => other.kind().to_owned(),
                };
                errors.push(
                    format!("{}.{name}", self.path),
                    format!("must be a whole number of at least {min}, got {got}"),
                );
                default
            }
        }
    }

    /// Arg `name` as a number within `lo..=hi`, or `default` when absent.
    pub fn number(
        &self,
        name: &str,
        default: f64,
        lo: f64,
        hi: f64,
        errors: &mut FieldErrors,
    ) -> f64 {
        match self.get(name) {
            None => default,
            Some(ArgValue::Number(n)) if (lo..=hi).contains(n) => *n,
            Some(v) => {
                let got = match v {
                    ArgValue::Number(n) => n.to_string(),
                    other => other.kind().to_owned(),
                };
                errors.push(
                    format!("{}.{name}", self.path),
                    format!("must be a number within {lo}..={hi}, got {got}"),
                );
                default
            }
        }
    }

    /// Names given that are not in `known`, for a warning.
    pub fn unknown<'a>(&'a self, known: &'a [&'a str]) -> impl Iterator<Item = &'a str> + 'a {
        self.values
            .keys()
            .map(String::as_str)
            .filter(move |k| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
    }
}

/// A scheduler configuration. [`Default`] is Kthena's chart default: filter `least-request`;
/// scores `least-request`, `gpu-usage`, `least-latency`, `prefix-cache`, weight 1 each.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    /// `pluginConfig`: args per plugin name, in file order.
    pub plugin_config: Vec<(String, PluginArgs)>,
    /// `plugins.Filter.enabled`, in order.
    pub filters: Vec<String>,
    /// `plugins.Score.enabled`: names and weights.
    pub scores: Vec<(String, f64)>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            plugin_config: Vec::new(),
            filters: vec!["least-request".into()],
            scores: [
                "least-request",
                "gpu-usage",
                "least-latency",
                "prefix-cache",
            ]
            .into_iter()
            .map(|s| (s.to_owned(), 1.0))
            .collect(),
        }
    }
}

/// State kept across configurations: the prefix index survives a reload that keeps its
/// capacity, so a hot reload does not forget where prompts went.
#[derive(Debug, Default, Clone)]
pub struct Carried {
    /// The prefix-cache plugin's index.
    pub prefix: Option<Arc<PrefixIndex>>,
}

/// A valid configuration, built.
#[derive(Debug)]
pub struct Built {
    /// The scheduler.
    pub scheduler: Scheduler,
    /// What to carry into the next build.
    pub carried: Carried,
    /// Things accepted but worth a log line (unknown args, a dropped `random`).
    pub warnings: Vec<String>,
}

impl SchedulerConfig {
    /// The args given for plugin `name` (the last entry wins, as a map would), with their path.
    pub fn args_of(&self, name: &str) -> PluginArgs {
        self.plugin_config
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| PluginArgs {
                path: format!("scheduler.pluginConfig[{name}].args"),
                values: BTreeMap::new(),
            })
    }

    /// Validates and builds. Every problem is reported with its field; an unknown plugin name
    /// is an error naming it.
    pub fn build(&self, carried: &Carried) -> Result<Built, FieldErrors> {
        plugins::build(self, carried)
    }
}
