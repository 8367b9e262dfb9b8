//! The scheduler in force: built from `--scheduler-config` (Kthena's `routerConfiguration`
//! YAML) or Kthena's defaults, swapped in when the file changes (hot reload: Kthena needs a
//! restart), and timed into `kthena_router_scheduler_plugin_duration_seconds`.
//!
//! A file that does not read or validate is logged with the field at fault and the last good
//! scheduler stays; at start, a bad file fails the start.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kthena_core::scheduler::{
    Carried, PluginKind, PluginTimer, RequestContext, Scheduler, SchedulerConfig,
};
use prometheus::{Histogram, HistogramOpts, HistogramVec, Registry};

use crate::state::Shared;

/// The scheduler and what a rebuild carries over (the prefix index).
#[derive(Debug)]
pub struct SchedulerCell {
    /// The scheduler.
    pub scheduler: Scheduler,
    /// Kept across reloads.
    pub carried: Carried,
    /// Where it came from: the file, or `defaults`.
    pub source: String,
}

impl Default for SchedulerCell {
    fn default() -> Self {
        let built = SchedulerConfig::default()
            .build(&Carried::default())
            .expect("Kthena's default scheduler configuration is valid");
        Self {
            scheduler: built.scheduler,
            carried: built.carried,
            source: "defaults".into(),
        }
    }
}

/// Buckets of the plugin duration histogram: Kthena's (1 ms and up) below, ours for the
/// microseconds a plugin takes here.
const PLUGIN_BUCKETS: &[f64] = &[
    0.000_001, 0.000_005, 0.000_025, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
];

/// `kthena_router_scheduler_plugin_duration_seconds{model,plugin,type}`.
#[derive(Debug, Clone)]
pub struct PluginMetrics {
    vec: HistogramVec,
    /// Tells this histogram's cached series from another's (tests build several).
    id: usize,
}

impl PluginMetrics {
    /// Registers the histogram in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let h = HistogramVec::new(
            HistogramOpts::new(
                "kthena_router_scheduler_plugin_duration_seconds",
                "Processing time per scheduler plugin",
            )
            .buckets(PLUGIN_BUCKETS.to_vec()),
            &["model", "plugin", "type"],
        )?;
        registry.register(Box::new(h.clone()))?;
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        Ok(Self {
            vec: h,
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }
}

type HistogramCache =
    foldhash::HashMap<Box<str>, foldhash::HashMap<(usize, &'static str, PluginKind), Histogram>>;

thread_local! {
    /// Each worker's handles of the histogram's series, by model label then plugin: looking a
    /// series up in the vector (hashing three labels, a lock, an `Arc`) for every plugin of
    /// every request cost more than the plugins.
    static SERIES: std::cell::RefCell<HistogramCache> = Default::default();
}

impl PluginTimer for PluginMetrics {
    fn observe(
        &self,
        ctx: &RequestContext<'_>,
        plugin: &'static str,
        kind: PluginKind,
        elapsed: Duration,
    ) {
        let seconds = elapsed.as_secs_f64();
        let cached = SERIES.with(|s| {
            let s = s.borrow();
            let h = s.get(ctx.label)?.get(&(self.id, plugin, kind))?;
            h.observe(seconds);
            Some(())
        });
        if cached.is_none() {
            let h = self
                .vec
                .with_label_values(&[ctx.label, plugin, kind.as_str()]);
            h.observe(seconds);
            SERIES.with(|s| {
                s.borrow_mut()
                    .entry(ctx.label.into())
                    .or_default()
                    .insert((self.id, plugin, kind), h);
            });
        }
    }
}

/// Builds the scheduler of file `path` (Kthena's defaults for `None`), carrying `carried`.
pub fn load(
    path: Option<&Path>,
    carried: &Carried,
    timer: Option<Arc<dyn PluginTimer>>,
) -> Result<SchedulerCell, String> {
    let (config, source) = match path {
        None => (SchedulerConfig::default(), "defaults".to_owned()),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let cfg = kthena_api::router_config::parse(&text)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            for line in &cfg.not_honoured {
                tracing::warn!(file = %p.display(), "{line}");
            }
            (cfg.scheduler, p.display().to_string())
        }
    };
    let built = config
        .build(carried)
        .map_err(|e| format!("{source}: {e}"))?;
    for w in &built.warnings {
        tracing::warn!(file = %source, "{w}");
    }
    let scheduler = match timer {
        Some(t) => built.scheduler.with_timer(t),
        None => built.scheduler,
    };
    Ok(SchedulerCell {
        scheduler,
        carried: built.carried,
        source,
    })
}

/// Watches `path` and swaps in its scheduler whenever its content changes. Polls (a
/// mounted ConfigMap changes by a symlink swap, which inotify on the file would miss).
pub fn watch(
    path: PathBuf,
    interval: Duration,
    shared: Arc<Shared>,
    timer: Option<Arc<dyn PluginTimer>>,
) {
    let mut last = std::fs::read(&path).ok();
    crate::control::runtime().spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = std::fs::read(&path).ok();
            if now == last {
                continue;
            }
            last = now;
            let carried = shared.scheduler.load().carried.clone();
            match load(Some(&path), &carried, timer.clone()) {
                Ok(cell) => {
                    tracing::info!(
                        file = %path.display(),
                        filters = ?cell.scheduler.filter_names().collect::<Vec<_>>(),
                        scores = ?cell.scheduler.score_names().collect::<Vec<_>>(),
                        "scheduler configuration reloaded"
                    );
                    shared.scheduler.store(Arc::new(cell));
                }
                Err(e) => {
                    tracing::error!(error = %e, "scheduler configuration rejected; the last good one stays")
                }
            }
        }
    });
}
