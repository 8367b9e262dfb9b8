//! Filters, weighted scores, the ranked fallback list, and the explanation of one pick.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smallvec::SmallVec;

use super::{Candidate, RequestContext};

/// Which stage a plugin ran in (`type` label of the plugin duration metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    /// Drops candidates.
    Filter,
    /// Scores candidates.
    Score,
}

impl PluginKind {
    /// `filter` or `score`.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Filter => "filter",
            PluginKind::Score => "score",
        }
    }
}

/// Drops the candidates that must not serve a request.
pub trait FilterPlugin: Send + Sync + fmt::Debug {
    /// The plugin's configuration name.
    fn name(&self) -> &'static str;
    /// Clears `keep[i]` for every candidate `i` that must not serve the request (entries
    /// already false stay false).
    fn filter(&self, ctx: &RequestContext<'_>, pods: &[Candidate<'_>], keep: &mut [bool]);
    /// Why `pod` is dropped, in words (for `explain` and the all-filtered error).
    fn reason(&self, ctx: &RequestContext<'_>, pod: &Candidate<'_>) -> String;
}

/// Scores candidates 0..=100, higher is better.
pub trait ScorePlugin: Send + Sync + fmt::Debug {
    /// The plugin's configuration name.
    fn name(&self) -> &'static str;
    /// Writes into `out[i]` the score of every candidate `i` with `alive[i]`. The other
    /// entries are ignored: a plugin may leave them or write anything there, so its loops
    /// need not branch on `alive`.
    fn score(
        &self,
        ctx: &RequestContext<'_>,
        pods: &[Candidate<'_>],
        alive: &[bool],
        out: &mut [f64],
    );
}

/// Told which endpoint served a request, once it answered successfully.
pub trait PostPickHook: Send + Sync + fmt::Debug {
    /// Endpoint `key` answered `ctx` successfully.
    fn served(&self, ctx: &RequestContext<'_>, key: u64);
}

/// Receives how long each plugin took (the router feeds
/// `kthena_router_scheduler_plugin_duration_seconds`).
pub trait PluginTimer: Send + Sync + fmt::Debug {
    /// Plugin `plugin` of stage `kind` ran for `elapsed` on `ctx`.
    fn observe(
        &self,
        ctx: &RequestContext<'_>,
        plugin: &'static str,
        kind: PluginKind,
        elapsed: Duration,
    );
}

/// Kthena's number of ranked endpoints kept for retries.
pub const DEFAULT_TOP_N: usize = 5;

/// The endpoints to try, best first: at most the scheduler's top N.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Indices into the candidates, best first.
    pub ranked: SmallVec<[usize; DEFAULT_TOP_N]>,
    /// The first's score from each score plugin, when the context asked for them
    /// ([`RequestContext::want_scores`]).
    pub scores: Vec<(&'static str, f64)>,
}

/// Every candidate was filtered out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("can't schedule to target pod: pods have all been filtered out by {filter:?} ({reason})")]
pub struct ScheduleError {
    /// The filter that dropped the last candidates.
    pub filter: &'static str,
    /// What it said about the first of them.
    pub reason: String,
}

/// What happened to one candidate in one pick (`explain`).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Index into the candidates.
    pub index: usize,
    /// The filter that dropped it, and why; `None` when it passed every filter.
    pub dropped: Option<(&'static str, String)>,
    /// Each score plugin's score (0..=100) and weight.
    pub scores: Vec<(&'static str, f64, f64)>,
    /// The weighted sum.
    pub total: f64,
}

/// A pick, explained: every filter's verdict and every score, per candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Per candidate, in candidate order.
    pub verdicts: Vec<Verdict>,
    /// The outcome.
    pub outcome: Result<Decision, ScheduleError>,
}

/// Built-in rule run before the configured filters: ejected endpoints are skipped, unless
/// every candidate is ejected.
pub const EJECTED: &str = "outlier-ejection";
/// Built-in rule: an endpoint whose engine's model list is known and lacks the model about to
/// be sent is skipped while another endpoint may serve it.
pub const MODEL_AVAILABLE: &str = "model-available";

/// A configured scheduler: filters, weighted scores, post-pick hooks. Immutable; the router
/// swaps in a new one when the configuration changes.
#[derive(Debug, Clone)]
pub struct Scheduler {
    filters: Vec<Arc<dyn FilterPlugin>>,
    scores: Vec<(Arc<dyn ScorePlugin>, f64)>,
    hooks: Vec<Arc<dyn PostPickHook>>,
    top_n: usize,
    timer: Option<Arc<dyn PluginTimer>>,
}

type Flags = SmallVec<[bool; 64]>;
type Values = SmallVec<[f64; 64]>;

impl Scheduler {
    /// A scheduler running `filters` in order, then `scores` with their weights.
    pub fn new(
        filters: Vec<Arc<dyn FilterPlugin>>,
        scores: Vec<(Arc<dyn ScorePlugin>, f64)>,
        hooks: Vec<Arc<dyn PostPickHook>>,
    ) -> Self {
        Self {
            filters,
            scores,
            hooks,
            top_n: DEFAULT_TOP_N,
            timer: None,
        }
    }

    /// Keeps `n` ranked endpoints (at least 1).
    pub fn with_top_n(mut self, n: usize) -> Self {
        self.top_n = n.max(1);
        self
    }

    /// Reports plugin durations to `timer`.
    pub fn with_timer(mut self, timer: Arc<dyn PluginTimer>) -> Self {
        self.timer = Some(timer);
        self
    }

    /// Names of the filters, in order.
    pub fn filter_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.filters.iter().map(|f| f.name())
    }

    /// Names and weights of the scores.
    pub fn score_names(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.scores.iter().map(|(s, w)| (s.name(), *w))
    }

    /// Ranks `pods` (sorted by key) for `ctx`: the top N, best first.
    pub fn schedule(
        &self,
        ctx: &RequestContext<'_>,
        pods: &[Candidate<'_>],
    ) -> Result<Decision, ScheduleError> {
        self.run(ctx, pods, None)
    }

    /// Ranks as [`Scheduler::schedule`] does, recording every verdict and score.
    pub fn explain(&self, ctx: &RequestContext<'_>, pods: &[Candidate<'_>]) -> Explanation {
        let mut verdicts: Vec<Verdict> = (0..pods.len())
            .map(|index| Verdict {
                index,
                dropped: None,
                scores: Vec::new(),
                total: 0.0,
            })
            .collect();
        let outcome = self.run(ctx, pods, Some(&mut verdicts));
        Explanation { verdicts, outcome }
    }

    /// Tells the post-pick hooks that endpoint `key` served `ctx`.
    pub fn served(&self, ctx: &RequestContext<'_>, key: u64) {
        for h in &self.hooks {
            h.served(ctx, key);
        }
    }

    fn timed<T>(
        &self,
        ctx: &RequestContext<'_>,
        name: &'static str,
        kind: PluginKind,
        f: impl FnOnce() -> T,
    ) -> T {
        match &self.timer {
            None => f(),
            Some(t) => {
                let start = Instant::now();
                let out = f();
                t.observe(ctx, name, kind, start.elapsed());
                out
            }
        }
    }

    fn run(
        &self,
        ctx: &RequestContext<'_>,
        pods: &[Candidate<'_>],
        mut trace: Option<&mut Vec<Verdict>>,
    ) -> Result<Decision, ScheduleError> {
        debug_assert!(
            pods.windows(2).all(|w| w[0].key < w[1].key),
            "sorted by key"
        );
        let n = pods.len();
        if n == 0 {
            return Err(ScheduleError {
                filter: "",
                reason: "no endpoints".into(),
            });
        }
        // Slices over the stores: indexing a SmallVec re-checks where its data lives each time.
        let mut keep_store: Flags = SmallVec::from_elem(true, n);
        let keep: &mut [bool] = &mut keep_store;
        // Built-in rules: they narrow the choice but never empty it. Each endpoint's verdict
        // is computed once (the model lookup is a string search).
        let mut missing_store: Flags = SmallVec::from_elem(false, n);
        let missing: &mut [bool] = &mut missing_store;
        let (mut ejected, mut lacking) = (0usize, 0usize);
        // Endpoints listing the same models share one set: asked once per run of them.
        let mut last: Option<(&super::ModelSet, bool)> = None;
        for (i, p) in pods.iter().enumerate() {
            ejected += usize::from(p.ejected);
            let Some(models) = &p.engine.models else {
                continue;
            };
            let serves = match last {
                Some((set, serves)) if set.same(models) => serves,
                _ => {
                    let serves = models.contains_hashed(ctx.target_hash, ctx.target_model);
                    last = Some((models, serves));
                    serves
                }
            };
            if !serves {
                missing[i] = true;
                lacking += 1;
            }
        }
        if ejected > 0 && ejected < n {
            for i in 0..n {
                if pods[i].ejected {
                    keep[i] = false;
                    if let Some(t) = trace.as_deref_mut() {
                        t[i].dropped = Some((EJECTED, builtin_reason(EJECTED, ctx)));
                    }
                }
            }
        }
        if lacking > 0 && (0..n).any(|i| keep[i] && !missing[i]) {
            for i in 0..n {
                if keep[i] && missing[i] {
                    keep[i] = false;
                    if let Some(t) = trace.as_deref_mut() {
                        t[i].dropped =
                            Some((MODEL_AVAILABLE, builtin_reason(MODEL_AVAILABLE, ctx)));
                    }
                }
            }
        }
        for f in &self.filters {
            let before: Option<Flags> = trace.is_some().then(|| SmallVec::from_slice(keep));
            self.timed(ctx, f.name(), PluginKind::Filter, || {
                f.filter(ctx, pods, keep)
            });
            if let (Some(t), Some(before)) = (trace.as_deref_mut(), &before) {
                for i in 0..n {
                    if before[i] && !keep[i] {
                        t[i].dropped = Some((f.name(), f.reason(ctx, &pods[i])));
                    }
                }
            }
            if !keep.iter().any(|k| *k) {
                let reason = match pods.iter().map(|p| f.reason(ctx, p)).next() {
                    Some(r) if n == 1 => r,
                    Some(r) => format!("{r}; {} more endpoints", n - 1),
                    None => String::new(),
                };
                return Err(ScheduleError {
                    filter: f.name(),
                    reason,
                });
            }
        }
        let mut total_store: Values = SmallVec::from_elem(0.0, n);
        let mut buf_store: Values = SmallVec::from_elem(0.0, n);
        let (total, buf): (&mut [f64], &mut [f64]) = (&mut total_store, &mut buf_store);
        let mut each: Vec<(&'static str, Values)> = Vec::new();
        for (s, weight) in &self.scores {
            self.timed(ctx, s.name(), PluginKind::Score, || {
                s.score(ctx, pods, keep, buf)
            });
            let (kept, scored, totals) = (&*keep, &*buf, &mut *total);
            match trace.as_deref_mut() {
                // Every entry, without a branch: the dropped ones' totals are never read.
                None => {
                    for (t, b) in totals.iter_mut().zip(scored) {
                        *t += bounded(*b) * weight;
                    }
                }
                Some(tr) => {
                    for i in (0..n).filter(|i| kept[*i]) {
                        let score = bounded(scored[i]);
                        totals[i] += score * weight;
                        tr[i].scores.push((s.name(), score, *weight));
                    }
                }
            }
            if ctx.want_scores {
                each.push((s.name(), SmallVec::from_slice(buf)));
            }
        }
        if let Some(t) = trace {
            for (v, total) in t.iter_mut().zip(total.iter()) {
                v.total = *total;
            }
        }
        // Top N by total; ties in an order random per request, so equal endpoints share.
        let salt = super::random::next_u64();
        let tie = |i: usize| mix(pods[i].key ^ salt);
        let better =
            |a: usize, b: usize| total[a] > total[b] || (total[a] == total[b] && tie(a) > tie(b));
        let mut ranked: SmallVec<[usize; DEFAULT_TOP_N]> = SmallVec::new();
        for i in (0..n).filter(|i| keep[*i]) {
            // Full and not better than the last kept: the common case, one comparison.
            if ranked.len() == self.top_n && !better(i, ranked[self.top_n - 1]) {
                continue;
            }
            let at = ranked
                .iter()
                .position(|&r| better(i, r))
                .unwrap_or(ranked.len());
            ranked.insert(at, i);
            ranked.truncate(self.top_n);
        }
        let scores = match ranked.first() {
            Some(&best) if ctx.want_scores => each
                .iter()
                .map(|(name, v)| (*name, v[best].clamp(0.0, 100.0)))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Decision { ranked, scores })
    }
}

/// A plugin's score within 0..=100; NaN counts as 0.
fn bounded(score: f64) -> f64 {
    fmin(fmax(score, 0.0), 100.0)
}

/// The greater of `a` and `b`, and `b` when `a` is NaN: one `maxsd`, where `f64::max`'s
/// NaN rules take several instructions. For the per-candidate loops of plugins.
#[inline]
pub(crate) fn fmax(a: f64, b: f64) -> f64 {
    if a > b { a } else { b }
}

/// The lesser of `a` and `b`, and `b` when `a` is NaN (see [`fmax`]).
#[inline]
pub(crate) fn fmin(a: f64, b: f64) -> f64 {
    if a < b { a } else { b }
}

fn builtin_reason(rule: &str, ctx: &RequestContext<'_>) -> String {
    if rule == EJECTED {
        "ejected by outlier detection".into()
    } else {
        format!("the engine does not list model {:?}", ctx.target_model)
    }
}

/// A 64-bit finaliser (splitmix64): spreads keys for the tie order.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::super::plugins::testing::{pods, pods_with};
    use super::super::{EngineState, ModelSet, SchedulerConfig};
    use super::*;

    /// Scores each candidate with a fixed table.
    #[derive(Debug)]
    struct Fixed(&'static str, Vec<f64>);
    impl ScorePlugin for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn score(
            &self,
            _: &RequestContext<'_>,
            _: &[Candidate<'_>],
            alive: &[bool],
            out: &mut [f64],
        ) {
            for (i, s) in self.1.iter().enumerate() {
                if alive[i] {
                    out[i] = *s;
                }
            }
        }
    }

    /// Drops the candidates with these keys.
    #[derive(Debug)]
    struct Drop(Vec<u64>);
    impl FilterPlugin for Drop {
        fn name(&self) -> &'static str {
            "drop"
        }
        fn filter(&self, _: &RequestContext<'_>, pods: &[Candidate<'_>], keep: &mut [bool]) {
            for (p, k) in pods.iter().zip(keep) {
                *k &= !self.0.contains(&p.key);
            }
        }
        fn reason(&self, _: &RequestContext<'_>, p: &Candidate<'_>) -> String {
            format!("key {}", p.key)
        }
    }

    fn ctx() -> RequestContext<'static> {
        RequestContext::new("m", "m", b"")
    }

    #[test]
    fn weighted_scores_rank_and_the_top_n_is_kept_in_order() {
        let states = vec![EngineState::UNKNOWN; 7];
        let p = pods(&states);
        let a = Fixed("a", vec![10.0, 90.0, 50.0, 0.0, 70.0, 30.0, 20.0]);
        let b = Fixed("b", vec![100.0, 0.0, 50.0, 0.0, 0.0, 80.0, 10.0]);
        let s = Scheduler::new(vec![], vec![(Arc::new(a), 1.0), (Arc::new(b), 0.5)], vec![]);
        // totals: 60 90 75 0 70 70 25
        let d = s.schedule(&ctx(), &p).expect("candidates");
        assert_eq!(d.ranked.len(), 5);
        assert_eq!(d.ranked[0], 1);
        assert_eq!(d.ranked[1], 2);
        let mut tied = [d.ranked[2], d.ranked[3]];
        tied.sort();
        assert_eq!(tied, [4, 5]);
        assert_eq!(d.ranked[4], 0);
        assert_eq!(
            s.clone()
                .with_top_n(2)
                .schedule(&ctx(), &p)
                .expect("ok")
                .ranked
                .as_slice(),
            [1, 2]
        );
        // Scores outside 0..=100 are clamped.
        let wild = Fixed("w", vec![1e9, -5.0, f64::NAN]);
        let p3 = pods(&states[..3]);
        let s = Scheduler::new(vec![], vec![(Arc::new(wild), 1.0)], vec![]);
        let e = s.explain(&ctx(), &p3);
        let totals: Vec<f64> = e.verdicts.iter().map(|v| v.total).collect();
        assert_eq!(totals, [100.0, 0.0, 0.0]);
    }

    /// Writes its table into every entry, dropped candidates' too.
    #[derive(Debug)]
    struct Everywhere(Vec<f64>);
    impl ScorePlugin for Everywhere {
        fn name(&self) -> &'static str {
            "everywhere"
        }
        fn score(&self, _: &RequestContext<'_>, _: &[Candidate<'_>], _: &[bool], out: &mut [f64]) {
            out.copy_from_slice(&self.0);
        }
    }

    #[test]
    fn what_a_plugin_writes_for_dropped_candidates_changes_nothing() {
        let states = vec![EngineState::UNKNOWN; 4];
        let p = pods(&states);
        let keys = |d: &Decision| d.ranked.iter().map(|i| p[*i].key).collect::<Vec<_>>();
        // Candidates 1 and 3 (keys 2 and 4) are dropped; what is written for them would
        // win if it were read, NaN included.
        let s = Scheduler::new(
            vec![Arc::new(Drop(vec![2, 4]))],
            vec![
                (Arc::new(Everywhere(vec![10.0, 1e9, 20.0, f64::NAN])), 1.0),
                (Arc::new(Fixed("f", vec![0.0, 100.0, 0.0, 100.0])), 1.0),
            ],
            vec![],
        );
        for _ in 0..20 {
            assert_eq!(keys(&s.schedule(&ctx(), &p).expect("two kept")), [3, 1]);
        }
        let e = s.explain(&ctx(), &p);
        let totals: Vec<f64> = e.verdicts.iter().map(|v| v.total).collect();
        assert_eq!(totals, [10.0, 0.0, 20.0, 0.0], "dropped ones total nothing");
        assert!(e.verdicts[1].scores.is_empty() && e.verdicts[3].dropped.is_some());
    }

    #[test]
    fn the_chosen_endpoints_scores_are_reported_when_asked() {
        let states = vec![EngineState::UNKNOWN; 2];
        let p = pods(&states);
        let s = Scheduler::new(
            vec![],
            vec![
                (Arc::new(Fixed("a", vec![10.0, 90.0])), 1.0),
                (Arc::new(Fixed("b", vec![5.0, 7.0])), 2.0),
            ],
            vec![],
        );
        assert!(s.schedule(&ctx(), &p).expect("ok").scores.is_empty());
        let mut asking = ctx();
        asking.want_scores = true;
        let d = s.schedule(&asking, &p).expect("ok");
        assert_eq!(d.ranked[0], 1);
        assert_eq!(d.scores, [("a", 90.0), ("b", 7.0)]);
    }

    #[test]
    fn ties_are_shared_between_equal_endpoints() {
        let states = vec![EngineState::UNKNOWN; 4];
        let p = pods(&states);
        let s = Scheduler::new(
            vec![],
            vec![(Arc::new(Fixed("z", vec![0.0; 4])), 1.0)],
            vec![],
        );
        let mut firsts = [0u32; 4];
        for _ in 0..4_000 {
            firsts[s.schedule(&ctx(), &p).expect("ok").ranked[0]] += 1;
        }
        assert!(firsts.iter().all(|n| (800..1200).contains(n)), "{firsts:?}");
    }

    #[test]
    fn all_filtered_is_kthenas_error_naming_the_filter() {
        let states = vec![EngineState::UNKNOWN; 2];
        let p = pods(&states);
        let s = Scheduler::new(vec![Arc::new(Drop(vec![1, 2]))], vec![], vec![]);
        let err = s.schedule(&ctx(), &p).expect_err("all dropped");
        assert_eq!(err.filter, "drop");
        assert_eq!(
            err.to_string(),
            "can't schedule to target pod: pods have all been filtered out by \"drop\" (key 1; 1 more endpoints)"
        );
        let one = pods(&states[..1]);
        let err = s.schedule(&ctx(), &one).expect_err("dropped");
        assert_eq!(
            err.to_string(),
            "can't schedule to target pod: pods have all been filtered out by \"drop\" (key 1)"
        );
        let e = s.explain(&ctx(), &p);
        assert!(e.outcome.is_err());
        assert_eq!(e.verdicts[1].dropped, Some(("drop", "key 2".to_owned())));
        let s = Scheduler::new(vec![Arc::new(Drop(vec![1]))], vec![], vec![]);
        assert_eq!(
            s.schedule(&ctx(), &p).expect("one left").ranked.as_slice(),
            [1]
        );
    }

    #[test]
    fn ejected_endpoints_and_engines_without_the_model_are_skipped_but_never_emptied() {
        let with = EngineState {
            models: Some(ModelSet::new(["m"])),
            ..EngineState::UNKNOWN
        };
        let without = EngineState {
            models: Some(ModelSet::new(["other"])),
            ..EngineState::UNKNOWN
        };
        let states = [with.clone(), without.clone(), EngineState::UNKNOWN, with];
        let mut p = pods_with(&states, &[0, 0, 0, 0]);
        p[3].ejected = true;
        let s = Scheduler::new(vec![], vec![], vec![]).with_top_n(5);
        let mut ranked = s.schedule(&ctx(), &p).expect("ok").ranked.to_vec();
        ranked.sort();
        assert_eq!(
            ranked,
            [0, 2],
            "the engine without the model and the ejected one are skipped"
        );
        let e = s.explain(&ctx(), &p);
        assert_eq!(
            e.verdicts[1].dropped.as_ref().map(|d| d.0),
            Some(MODEL_AVAILABLE)
        );
        assert_eq!(e.verdicts[3].dropped.as_ref().map(|d| d.0), Some(EJECTED));
        // Nobody lists the model: the engines answer for themselves.
        let lonely = [without.clone(), without];
        assert_eq!(
            s.schedule(&ctx(), &pods(&lonely))
                .expect("kept")
                .ranked
                .len(),
            2
        );
        // Everyone ejected: everyone stays.
        let mut all = pods(&states[..2]);
        all.iter_mut().for_each(|c| c.ejected = true);
        assert_eq!(
            s.schedule(&ctx(), &all).expect("kept").ranked.as_slice(),
            [0]
        );
        assert!(s.schedule(&ctx(), &[]).is_err());
    }

    #[test]
    fn post_pick_hooks_hear_of_the_endpoint_that_served() {
        let built = SchedulerConfig::default()
            .build(&Default::default())
            .expect("defaults");
        let states = vec![EngineState::UNKNOWN; 3];
        let p = pods(&states);
        let prompt =
            b"a shared system prompt that is long enough to fill two blocks of 64 bytes each.";
        let c = RequestContext::new("m", "m", prompt);
        built.scheduler.served(&c, p[2].key);
        for _ in 0..50 {
            let again = RequestContext::new("m", "m", prompt);
            assert_eq!(
                built.scheduler.schedule(&again, &p).expect("ok").ranked[0],
                2
            );
        }
    }

    #[derive(Debug, Default)]
    struct Count(std::sync::Mutex<Vec<(&'static str, PluginKind)>>);
    impl PluginTimer for Count {
        fn observe(
            &self,
            _: &RequestContext<'_>,
            plugin: &'static str,
            kind: PluginKind,
            _: Duration,
        ) {
            self.0.lock().expect("lock").push((plugin, kind));
        }
    }

    #[test]
    fn every_plugin_run_is_timed() {
        let timer = Arc::new(Count::default());
        let built = SchedulerConfig::default()
            .build(&Default::default())
            .expect("defaults");
        let s = built.scheduler.with_timer(timer.clone());
        let states = vec![EngineState::UNKNOWN; 2];
        s.schedule(&ctx(), &pods(&states)).expect("ok");
        let seen = timer.0.lock().expect("lock").clone();
        assert_eq!(
            seen,
            [
                ("least-request", PluginKind::Filter),
                ("least-request", PluginKind::Score),
                ("gpu-usage", PluginKind::Score),
                ("least-latency", PluginKind::Score),
                ("prefix-cache", PluginKind::Score),
            ]
        );
    }
}
