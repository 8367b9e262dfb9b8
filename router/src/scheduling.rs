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
use prometheus::core::{Collector, Desc};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, proto,
};

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
    /// The file's `auth` section: read at start only (as Kthena reads the whole file).
    pub auth: Option<kthena_core::auth::AuthConfig>,
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
            auth: None,
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

/// Buckets of `kthena_router_prefix_cache_match_ratio`, as Kthena's.
pub const MATCH_RATIO_BUCKETS: &[f64] = &[0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];

/// `kthena_router_prefix_cache_evictions_total{model}` and `kthena_router_prefix_cache_entries`,
/// read from the prefix index in force when metrics are gathered (nothing on the request
/// path). The counter stays monotonic when a reload replaces the index: a new index's
/// evictions are added to what the old one counted.
#[derive(Debug)]
pub struct PrefixCacheCollector {
    shared: Arc<Shared>,
    evictions: IntCounterVec,
    entries: IntGauge,
    /// The index last read (by address) and the evictions it had then, per label.
    seen: std::sync::Mutex<(usize, Vec<(String, u64)>)>,
}

impl PrefixCacheCollector {
    /// Registers the collector in `registry`, reading `shared`'s scheduler.
    pub fn register(shared: Arc<Shared>, registry: &Registry) -> prometheus::Result<()> {
        let c = Self {
            shared,
            evictions: IntCounterVec::new(
                Opts::new(
                    "kthena_router_prefix_cache_evictions_total",
                    "Number of (prefix block, pod) entries evicted from a per-pod cache when it \
                     reached capacity; excludes entries removed when a pod is deleted",
                ),
                &["model"],
            )?,
            entries: IntGauge::new(
                "kthena_router_prefix_cache_entries",
                "Total prefix-cache occupancy: number of (prefix block, pod) entries currently \
                 stored across all pods; a block cached on N pods is counted N times",
            )?,
            seen: Default::default(),
        };
        registry.register(Box::new(c))
    }

    fn refresh(&self) {
        let cell = self.shared.scheduler.load();
        let Some(index) = &cell.carried.prefix else {
            self.entries.set(0);
            return;
        };
        self.entries
            .set(i64::try_from(index.entries()).unwrap_or(i64::MAX));
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = Arc::as_ptr(index) as usize;
        if seen.0 != at {
            *seen = (at, Vec::new());
        }
        for (label, now) in index.evictions_by_label() {
            let before = match seen.1.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => std::mem::replace(n, now),
                None => {
                    seen.1.push((label.clone(), now));
                    0
                }
            };
            if now > before {
                self.evictions
                    .with_label_values(&[&label])
                    .inc_by(now - before);
            }
        }
    }
}

impl Collector for PrefixCacheCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.evictions.desc();
        d.extend(self.entries.desc());
        d
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        self.refresh();
        let mut m = self.evictions.collect();
        m.extend(self.entries.collect());
        m
    }
}

/// Builds the scheduler of file `path` (Kthena's defaults for `None`), carrying `carried`.
pub fn load(
    path: Option<&Path>,
    carried: &Carried,
    timer: Option<Arc<dyn PluginTimer>>,
) -> Result<SchedulerCell, String> {
    let (config, source, auth) = match path {
        None => (SchedulerConfig::default(), "defaults".to_owned(), None),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let cfg = kthena_api::router_config::parse(&text)
                .map_err(|e| format!("{}: {e}", p.display()))?;
            for line in &cfg.not_honoured {
                tracing::warn!(file = %p.display(), "{line}");
            }
            (cfg.scheduler, p.display().to_string(), cfg.auth)
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
        auth,
    })
}

/// Watches `path` and swaps in its scheduler whenever its content changes. Polls (a
/// mounted ConfigMap changes by a symlink swap, which inotify on the file would miss), and
/// reads it again at once when `hangup` moves (SIGHUP).
pub fn watch(
    path: PathBuf,
    interval: Duration,
    shared: Arc<Shared>,
    timer: Option<Arc<dyn PluginTimer>>,
    mut hangup: tokio::sync::watch::Receiver<u64>,
) {
    let mut last = std::fs::read(&path).ok();
    crate::control::runtime().spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = hangup.changed() => if changed.is_err() { return },
            }
            let now = std::fs::read(&path).ok();
            if now == last {
                continue;
            }
            last = now;
            let (carried, auth) = {
                let old = shared.scheduler.load();
                (old.carried.clone(), old.auth.clone())
            };
            match load(Some(&path), &carried, timer.clone()) {
                Ok(mut cell) => {
                    if cell.auth != auth {
                        tracing::warn!(file = %path.display(), "auth: the section changed; it is read at start, so the change takes effect when the router restarts");
                        cell.auth = auth;
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn prefix_cache_evictions_and_entries_are_read_from_the_index_in_force() {
        let shared = Arc::new(Shared::default());
        let registry = Registry::new();
        PrefixCacheCollector::register(shared.clone(), &registry).expect("register");
        let small = |capacity: usize| {
            let yaml = format!(
                "scheduler:\n  pluginConfig:\n  - name: prefix-cache\n    args:\n      \
                 maxHashCacheSize: {capacity}\n  plugins:\n    Score:\n      enabled:\n      \
                 - name: prefix-cache\n"
            );
            let cfg = kthena_api::router_config::parse(&yaml).expect("config");
            let built = cfg.scheduler.build(&Carried::default()).expect("valid");
            Arc::new(SchedulerCell {
                scheduler: built.scheduler,
                carried: built.carried,
                source: "test".into(),
                auth: None,
            })
        };
        let index_in_force = || {
            shared
                .scheduler
                .load()
                .carried
                .prefix
                .clone()
                .expect("index")
        };
        shared.scheduler.store(small(2));
        let index = index_in_force();
        index.record(1, &[1, 2, 3], "m");
        let text = crate::metrics::render(&registry);
        assert_eq!(
            value(
                &text,
                "kthena_router_prefix_cache_evictions_total{model=\"m\"}"
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            value(&text, "kthena_router_prefix_cache_entries "),
            Some(2.0)
        );
        // A reload with another capacity brings a fresh index: the counter keeps counting.
        shared.scheduler.store(small(1));
        let fresh = index_in_force();
        assert!(!Arc::ptr_eq(&index, &fresh));
        fresh.record(1, &[1, 2], "m");
        let text = crate::metrics::render(&registry);
        assert_eq!(
            value(
                &text,
                "kthena_router_prefix_cache_evictions_total{model=\"m\"}"
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            value(&text, "kthena_router_prefix_cache_entries "),
            Some(1.0)
        );
    }
}
