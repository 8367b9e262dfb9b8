//! The plugins, and the one registry that turns a [`SchedulerConfig`] into a [`Scheduler`].
//! Adding a plugin is one file here and one arm in [`plugin`].

pub mod gpu_usage;
pub mod least_latency;
pub mod least_request;
pub mod lora_affinity;
pub mod prefix_cache;
pub mod random;

use std::sync::Arc;

use super::config::{Built, Carried, SchedulerConfig};
use super::{FilterPlugin, PostPickHook, Scheduler, ScorePlugin};
use crate::FieldErrors;

/// Every plugin name this router knows, as Kthena names them.
pub const NAMES: &[&str] = &[
    "least-request",
    "gpu-usage",
    "least-latency",
    "prefix-cache",
    "lora-affinity",
    "random",
];

/// Kthena plugins this router does not have, and what to use instead.
const NOT_HERE: &[(&str, &str)] = &[(
    "kvcache-aware",
    "it needs Kthena's runtime sidecar and Redis; prefix-cache tracks prefixes in the router",
)];

/// One constructed plugin, in whichever stages it has.
struct Plugin {
    filter: Option<Arc<dyn FilterPlugin>>,
    score: Option<Arc<dyn ScorePlugin>>,
    hook: Option<Arc<dyn PostPickHook>>,
}

fn plugin(
    name: &str,
    cfg: &SchedulerConfig,
    carried: &mut Carried,
    errors: &mut FieldErrors,
    warnings: &mut Vec<String>,
) -> Option<Plugin> {
    let args = cfg.args_of(name);
    let mut warn_unknown = |known: &[&str]| {
        for k in args.unknown(known) {
            warnings.push(format!(
                "{}.{k}: plugin {name} has no such arg; ignored",
                args.path
            ));
        }
    };
    let p = match name {
        "least-request" => {
            warn_unknown(least_request::ARGS);
            let p = Arc::new(least_request::LeastRequest::from_args(&args, errors));
            Plugin {
                filter: Some(p.clone()),
                score: Some(p),
                hook: None,
            }
        }
        "gpu-usage" => {
            warn_unknown(&[]);
            Plugin {
                filter: None,
                score: Some(Arc::new(gpu_usage::GpuUsage)),
                hook: None,
            }
        }
        "least-latency" => {
            warn_unknown(least_latency::ARGS);
            Plugin {
                filter: None,
                score: Some(Arc::new(least_latency::LeastLatency::from_args(
                    &args, errors,
                ))),
                hook: None,
            }
        }
        "prefix-cache" => {
            warn_unknown(prefix_cache::ARGS);
            let p = Arc::new(prefix_cache::PrefixCache::from_args(
                &args,
                carried.prefix.as_ref(),
                errors,
            ));
            carried.prefix = Some(p.index.clone());
            Plugin {
                filter: None,
                score: Some(p.clone()),
                hook: Some(p),
            }
        }
        "lora-affinity" => {
            warn_unknown(&[]);
            Plugin {
                filter: Some(Arc::new(lora_affinity::LoraAffinity)),
                score: None,
                hook: None,
            }
        }
        "random" => {
            warn_unknown(&[]);
            Plugin {
                filter: None,
                score: Some(Arc::new(random::Random)),
                hook: None,
            }
        }
        _ => return None,
    };
    Some(p)
}

fn unknown(name: &str) -> String {
    match NOT_HERE.iter().find(|(n, _)| *n == name) {
        Some((_, why)) => format!("plugin {name:?} is not supported: {why}"),
        None => format!(
            "unknown plugin {name:?}; known plugins: {}",
            NAMES.join(", ")
        ),
    }
}

/// Builds `cfg` (see [`SchedulerConfig::build`]).
pub fn build(cfg: &SchedulerConfig, carried: &Carried) -> Result<Built, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut warnings = Vec::new();
    let mut next = Carried::default();
    let mut carried = carried.clone();
    for (i, (name, _)) in cfg.plugin_config.iter().enumerate() {
        if !NAMES.contains(&name.as_str()) {
            warnings.push(format!(
                "scheduler.pluginConfig[{i}].name: {}; its args are ignored",
                unknown(name)
            ));
        }
    }
    let mut filters: Vec<Arc<dyn FilterPlugin>> = Vec::new();
    let mut hooks: Vec<Arc<dyn PostPickHook>> = Vec::new();
    for (i, name) in cfg.filters.iter().enumerate() {
        let path = format!("scheduler.plugins.Filter.enabled[{i}]");
        match plugin(name, cfg, &mut carried, &mut errors, &mut warnings) {
            None => errors.push(path, unknown(name)),
            Some(Plugin { filter: None, .. }) => {
                errors.push(path, format!("plugin {name:?} is not a filter"))
            }
            Some(Plugin {
                filter: Some(f),
                hook,
                ..
            }) => {
                if filters.iter().any(|x| x.name() == f.name()) {
                    errors.push(path, format!("plugin {name:?} is enabled twice"));
                }
                filters.push(f);
                hooks.extend(hook);
            }
        }
    }
    let mut scores: Vec<(Arc<dyn ScorePlugin>, f64)> = Vec::new();
    for (i, (name, weight)) in cfg.scores.iter().enumerate() {
        let path = format!("scheduler.plugins.Score.enabled[{i}]");
        if !weight.is_finite() || *weight < 0.0 {
            errors.push(
                format!("{path}.weight"),
                format!("must be a number of at least 0, got {weight}"),
            );
        }
        match plugin(name, cfg, &mut carried, &mut errors, &mut warnings) {
            None => errors.push(format!("{path}.name"), unknown(name)),
            Some(Plugin { score: None, .. }) => errors.push(
                format!("{path}.name"),
                format!("plugin {name:?} is not a score"),
            ),
            Some(Plugin {
                score: Some(s),
                hook,
                ..
            }) => {
                if scores.iter().any(|(x, _)| x.name() == s.name()) {
                    errors.push(
                        format!("{path}.name"),
                        format!("plugin {name:?} is enabled twice"),
                    );
                }
                scores.push((s, *weight));
                if let Some(h) = hook
                    && !hooks.iter().any(|x| Arc::ptr_eq(x, &h))
                {
                    hooks.push(h);
                }
            }
        }
    }
    // As in Kthena: random only scores on its own.
    if scores.len() > 1 && scores.iter().any(|(s, _)| s.name() == "random") {
        scores.retain(|(s, _)| s.name() != "random");
        warnings.push(
            "scheduler.plugins.Score.enabled: random is dropped when other scores are enabled"
                .into(),
        );
    }
    next.prefix = carried
        .prefix
        .clone()
        .filter(|_| scores.iter().any(|(s, _)| s.name() == "prefix-cache"));
    errors.into_result(())?;
    Ok(Built {
        scheduler: Scheduler::new(filters, scores, hooks),
        carried: next,
        warnings,
    })
}

#[cfg(test)]
pub(crate) mod testing {
    //! Hand-built candidates for the plugin tables.
    use super::super::{Candidate, EngineState, FilterPlugin, RequestContext, ScorePlugin};

    /// Candidates with `states`, keys 1.., nothing in flight.
    pub fn pods(states: &[EngineState]) -> Vec<Candidate<'_>> {
        pods_with(states, &vec![0; states.len()])
    }

    /// Candidates with `states` and `in_flight`.
    pub fn pods_with<'a>(states: &'a [EngineState], in_flight: &[usize]) -> Vec<Candidate<'a>> {
        states
            .iter()
            .zip(in_flight)
            .enumerate()
            .map(|(i, (engine, n))| Candidate {
                key: i as u64 + 1,
                in_flight: *n,
                ejected: false,
                engine,
            })
            .collect()
    }

    /// Every candidate's score, all alive, rounded to 1e-6.
    pub fn score(plugin: &dyn ScorePlugin, pods: &[Candidate<'_>]) -> Vec<f64> {
        let mut out = vec![0.0; pods.len()];
        plugin.score(
            &RequestContext::new("m", "m", b""),
            pods,
            &vec![true; pods.len()],
            &mut out,
        );
        out.iter().map(|s| (s * 1e6).round() / 1e6).collect()
    }

    /// Which candidates pass, all alive before.
    pub fn filter(
        plugin: &dyn FilterPlugin,
        ctx: &RequestContext<'_>,
        pods: &[Candidate<'_>],
    ) -> Vec<bool> {
        let mut keep = vec![true; pods.len()];
        plugin.filter(ctx, pods, &mut keep);
        keep
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ArgValue, PluginArgs};
    use super::*;

    #[test]
    fn a_dropped_candidate_changes_no_other_score() {
        use super::super::{Candidate, EngineState, RequestContext};
        let plain = |running: f64, kv: f64, ttft: f64, tpot: f64| EngineState {
            running: Some(running),
            peak_running: Some(8.0),
            queued_seen: true,
            in_flight_at_reading: Some(running),
            waiting: Some(0.0),
            kv_cache_usage: Some(kv),
            ttft: Some(ttft),
            tpot: Some(tpot),
            ..EngineState::UNKNOWN
        };
        // The last one, dropped, is the fastest, emptiest and busiest: counted, it would move
        // the fastest latency, the known usages' mean and the load scale.
        let states = [
            plain(2.0, 0.5, 0.2, 0.02),
            EngineState::UNKNOWN,
            plain(4.0, 0.25, 0.4, 0.04),
            plain(60.0, 0.0, 0.01, 0.001),
        ];
        let p: Vec<Candidate<'_>> = testing::pods_with(&states, &[2, 1, 4, 500]);
        let scored: [Box<dyn ScorePlugin>; 3] = [
            Box::new(least_request::LeastRequest { max_waiting: 10 }),
            Box::new(gpu_usage::GpuUsage),
            Box::new(least_latency::LeastLatency { ttft_weight: 0.5 }),
        ];
        let ctx = RequestContext::new("m", "m", b"");
        for plugin in &scored {
            let mut with = vec![0.0; 4];
            plugin.score(&ctx, &p, &[true, true, true, false], &mut with);
            let mut without = vec![0.0; 3];
            plugin.score(&ctx, &p[..3], &[true; 3], &mut without);
            assert_eq!(with[..3], without, "{}", plugin.name());
        }
    }

    fn errors_of(cfg: &SchedulerConfig) -> Vec<String> {
        match cfg.build(&Carried::default()) {
            Ok(_) => vec![],
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn kthenas_defaults_build() {
        let built = SchedulerConfig::default()
            .build(&Carried::default())
            .expect("valid");
        assert_eq!(
            built.scheduler.filter_names().collect::<Vec<_>>(),
            ["least-request"]
        );
        assert_eq!(
            built.scheduler.score_names().collect::<Vec<_>>(),
            [
                ("least-request", 1.0),
                ("gpu-usage", 1.0),
                ("least-latency", 1.0),
                ("prefix-cache", 1.0)
            ]
        );
        assert!(built.warnings.is_empty());
        assert!(built.carried.prefix.is_some());
    }

    #[test]
    fn every_configuration_error_names_its_field() {
        let cases: Vec<(SchedulerConfig, &str)> = vec![
            (
                SchedulerConfig {
                    filters: vec!["nope".into()],
                    ..Default::default()
                },
                "scheduler.plugins.Filter.enabled[0]: unknown plugin \"nope\"; known plugins: least-request, gpu-usage, least-latency, prefix-cache, lora-affinity, random",
            ),
            (
                SchedulerConfig {
                    filters: vec!["gpu-usage".into()],
                    ..Default::default()
                },
                "scheduler.plugins.Filter.enabled[0]: plugin \"gpu-usage\" is not a filter",
            ),
            (
                SchedulerConfig {
                    scores: vec![("lora-affinity".into(), 1.0)],
                    ..Default::default()
                },
                "scheduler.plugins.Score.enabled[0].name: plugin \"lora-affinity\" is not a score",
            ),
            (
                SchedulerConfig {
                    scores: vec![("gpu-usage".into(), -1.0)],
                    ..Default::default()
                },
                "scheduler.plugins.Score.enabled[0].weight: must be a number of at least 0, got -1",
            ),
            (
                SchedulerConfig {
                    scores: vec![("gpu-usage".into(), 1.0), ("gpu-usage".into(), 2.0)],
                    ..Default::default()
                },
                "scheduler.plugins.Score.enabled[1].name: plugin \"gpu-usage\" is enabled twice",
            ),
            (
                SchedulerConfig {
                    filters: vec!["least-request".into(), "least-request".into()],
                    ..Default::default()
                },
                "scheduler.plugins.Filter.enabled[1]: plugin \"least-request\" is enabled twice",
            ),
            (
                SchedulerConfig {
                    scores: vec![("kvcache-aware".into(), 1.0)],
                    ..Default::default()
                },
                "scheduler.plugins.Score.enabled[0].name: plugin \"kvcache-aware\" is not supported: it needs Kthena's runtime sidecar and Redis; prefix-cache tracks prefixes in the router",
            ),
            (
                SchedulerConfig {
                    plugin_config: vec![(
                        "least-request".into(),
                        PluginArgs {
                            path: "scheduler.pluginConfig[0].args".into(),
                            values: [(
                                "maxWaitingRequests".to_owned(),
                                ArgValue::Text("ten".into()),
                            )]
                            .into(),
                        },
                    )],
                    ..Default::default()
                },
                "scheduler.pluginConfig[0].args.maxWaitingRequests: must be a whole number of at least 0, got a string",
            ),
        ];
        for (cfg, want) in cases {
            let got = errors_of(&cfg);
            assert!(got.iter().any(|e| e == want), "want {want}\n got {got:?}");
        }
    }

    #[test]
    fn unknown_args_and_unknown_plugin_config_are_warnings_and_random_only_scores_alone() {
        let cfg = SchedulerConfig {
            plugin_config: vec![
                (
                    "least-request".into(),
                    PluginArgs {
                        path: "scheduler.pluginConfig[0].args".into(),
                        values: [("maxWaiting".to_owned(), ArgValue::Number(3.0))].into(),
                    },
                ),
                ("kvcache-aware".into(), PluginArgs::default()),
            ],
            filters: vec!["least-request".into()],
            scores: vec![("random".into(), 1.0), ("gpu-usage".into(), 1.0)],
        };
        let built = cfg.build(&Carried::default()).expect("valid");
        assert_eq!(
            built.scheduler.score_names().collect::<Vec<_>>(),
            [("gpu-usage", 1.0)]
        );
        assert_eq!(built.warnings.len(), 3, "{:?}", built.warnings);
        assert!(built.warnings[0].starts_with(
            "scheduler.pluginConfig[1].name: plugin \"kvcache-aware\" is not supported"
        ));
        assert_eq!(
            built.warnings[1],
            "scheduler.pluginConfig[0].args.maxWaiting: plugin least-request has no such arg; ignored"
        );
        assert!(built.carried.prefix.is_none());
        let alone = SchedulerConfig {
            scores: vec![("random".into(), 1.0)],
            ..Default::default()
        };
        assert_eq!(
            alone
                .build(&Carried::default())
                .expect("ok")
                .scheduler
                .score_names()
                .count(),
            1
        );
    }
}
