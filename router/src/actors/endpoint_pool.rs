//! The EndpointPool actor: owns the endpoints of one pool and what their engines report.
//!
//! In: the pool's upstream and selected Pods from the Index ([`Update`]); every scrape
//! interval, each endpoint's `/metrics` and `/v1/models` (bounded concurrency across all
//! pools, a short timeout, never on the request path). Out: a [`PoolSnapshot`] published
//! into the pool's cell whenever membership or engine state changes. It is the only writer
//! of engine state; a reading that failed [`STALE_AFTER`] times in a row is dropped (the
//! endpoint is scored as unknown, not as idle). A scrape that reaches an endpoint ejected for
//! connection failures readmits it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};
use kthena_core::scheduler::engine_metrics::{self, Reading};
use kthena_core::scheduler::{EngineState, ModelSet};
use kthena_core::{Engine, Protocol};

use crate::pool::{Endpoint, PodInfo, PoolSnapshot, Upstream, now_ms};
use crate::state::{PoolCell, Shared};

/// Failed scrapes in a row after which an endpoint's engine state is unknown.
pub const STALE_AFTER: u32 = 3;

/// How engines are scraped (`--metrics-scrape-interval`).
#[derive(Debug, Clone)]
pub struct Scraping {
    /// Time between two rounds; zero turns scraping off.
    pub interval: Duration,
    /// Per request.
    pub timeout: Duration,
    /// Scrapes in flight across every pool (Kthena: 100).
    pub permits: Arc<tokio::sync::Semaphore>,
    /// TLS toward Pods (`workloadPort.protocol: https`).
    pub tls: Arc<rustls::ClientConfig>,
}

impl Scraping {
    /// Scraping every `interval` with at most `concurrency` requests at once.
    pub fn new(interval: Duration, concurrency: usize, tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            interval,
            timeout: interval.clamp(Duration::from_millis(200), Duration::from_secs(5)),
            permits: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
            tls,
        }
    }
}

/// Owns one pool's upstream (ModelServer or InferencePool) and the Pods it selects;
/// publishes a [`PoolSnapshot`] into its cell whenever either, or an engine's state, changes.
/// In-flight counts, outlier state and engine state survive republishing.
pub struct EndpointPool {
    cell: PoolCell,
    shared: Arc<Shared>,
    scraping: Option<Scraping>,
    /// The last reading and the failures in a row, per endpoint key.
    readings: HashMap<u64, (Option<Reading>, u32)>,
    clients: Option<std::rc::Rc<crate::upstream::Clients>>,
    round_running: bool,
}

impl std::fmt::Debug for EndpointPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointPool")
            .field("pool", &self.cell.load().upstream.key)
            .finish_non_exhaustive()
    }
}

impl EndpointPool {
    /// A pool publishing into `cell`, which already holds the first snapshot; `scraping`
    /// None or with a zero interval never scrapes.
    pub fn new(cell: PoolCell, shared: Arc<Shared>, scraping: Option<Scraping>) -> Self {
        Self {
            cell,
            shared,
            scraping: scraping.filter(|s| !s.interval.is_zero()),
            readings: HashMap::new(),
            clients: None,
            round_running: false,
        }
    }

    /// Starts a round unless one is still running.
    fn scrape(&mut self, ctx: &mut Context<Self>) {
        let Some(scraping) = self.scraping.clone() else {
            return;
        };
        let snap = self.cell.load_full();
        if self.round_running || snap.endpoints.is_empty() || !snap.upstream.scraped() {
            return;
        }
        self.round_running = true;
        let clients = self
            .clients
            .get_or_insert_with(|| {
                std::rc::Rc::new(crate::upstream::Clients::new(scraping.tls.clone()))
            })
            .clone();
        let protocol = snap.upstream.protocol;
        let engine = snap.upstream.engine;
        let targets: Vec<Arc<Endpoint>> = snap.endpoints.clone();
        let round = async move {
            let each = targets.into_iter().map(|endpoint| {
                let clients = clients.clone();
                let scraping = scraping.clone();
                async move {
                    let _permit = scraping.permits.acquire().await.ok();
                    let got =
                        scrape_one(&clients, protocol, engine, &endpoint, scraping.timeout).await;
                    (endpoint.key, got)
                }
            });
            futures_util::future::join_all(each).await
        };
        ctx.spawn(round.into_actor(self).map(|results, act, _| {
            act.round_running = false;
            act.apply(results);
        }));
    }

    /// Folds one round's results into the engine states and publishes them.
    fn apply(&mut self, results: Vec<(u64, Scraped)>) {
        let snap = self.cell.load_full();
        let now = now_ms();
        let mut engine = snap.engine.clone();
        for (key, got) in results {
            let Ok(i) = snap.endpoints.binary_search_by_key(&key, |e| e.key) else {
                continue; // left the pool during the round
            };
            let (last, failures) = self.readings.entry(key).or_insert((None, 0));
            match got.metrics {
                Some(reading) => {
                    *failures = 0;
                    let mut next = engine_metrics::next_state(last.as_ref(), &engine[i], &reading);
                    next.in_flight_at_reading = Some(got.in_flight_at as f64);
                    if let Some(models) = got.models {
                        next.models = Some(models);
                    }
                    engine[i] = next;
                    *last = Some(reading);
                    if snap.endpoints[i].health.probe_succeeded(now) {
                        tracing::info!(pod = %snap.endpoints[i].pod, pool = %snap.upstream.key, "endpoint readmitted: the scrape reached it");
                    }
                }
                None => {
                    *failures += 1;
                    if *failures >= STALE_AFTER {
                        engine[i] = EngineState::UNKNOWN;
                        *last = None;
                    }
                }
            }
        }
        share_model_sets(&mut engine);
        if engine != snap.engine {
            self.cell.store(Arc::new(snap.with_engine(engine)));
        }
    }
}

/// Makes endpoints whose engines list the same models hold one shared set, so a pick asks
/// each distinct set once ([`ModelSet::same`]). A pool's endpoints mostly list the same.
fn share_model_sets(engine: &mut [EngineState]) {
    let mut distinct: Vec<ModelSet> = Vec::new();
    for e in engine.iter_mut() {
        let Some(models) = &mut e.models else {
            continue;
        };
        match distinct.iter().find(|d| *d == models) {
            Some(d) => *models = d.clone(),
            None if distinct.len() < 8 => distinct.push(models.clone()),
            None => {}
        }
    }
}

/// One endpoint's scrape: the reading of `/metrics` and the list of `/v1/models`, each
/// `None` when it failed.
#[derive(Debug)]
struct Scraped {
    metrics: Option<Reading>,
    /// This router's requests in flight to the endpoint when the metrics arrived.
    in_flight_at: usize,
    models: Option<ModelSet>,
}

async fn get(
    clients: &crate::upstream::Clients,
    protocol: Protocol,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Option<bytes::Bytes> {
    let (client, scheme) = clients.for_protocol(protocol);
    let fut = async {
        let mut resp = client
            .get(format!("{scheme}://{addr}{path}"))
            .send()
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.body().limit(8 << 20).await.ok()
    };
    actix_rt::time::timeout(timeout, fut).await.ok().flatten()
}

async fn scrape_one(
    clients: &crate::upstream::Clients,
    protocol: Protocol,
    engine: Option<Engine>,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Scraped {
    let addr = endpoint.addr;
    let ((metrics, in_flight_at), models) = futures_util::future::join(
        async {
            let got = get(clients, protocol, addr, "/metrics", timeout).await;
            (got, endpoint.in_flight())
        },
        get(clients, protocol, addr, "/v1/models", timeout),
    )
    .await;
    let metrics = metrics.map(|body| {
        let text = String::from_utf8_lossy(&body);
        match engine {
            Some(e) => engine_metrics::parse(e, &text),
            // An InferencePool names no engine: whichever names the engine exposes.
            None => {
                let vllm = engine_metrics::parse(Engine::Vllm, &text);
                if vllm == Reading::default() {
                    engine_metrics::parse(Engine::Sglang, &text)
                } else {
                    vllm
                }
            }
        }
    });
    let models = models.and_then(|body| parse_models(&body));
    Scraped {
        metrics,
        in_flight_at,
        models,
    }
}

/// The `data[].id` of a `/v1/models` answer.
fn parse_models(body: &[u8]) -> Option<ModelSet> {
    #[derive(serde::Deserialize)]
    struct List {
        data: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        id: String,
    }
    let list: List = serde_json::from_slice(body).ok()?;
    Some(ModelSet::new(list.data.iter().map(|m| m.id.as_str())))
}

impl Actor for EndpointPool {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let snap = self.cell.load();
        tracing::debug!(server = %snap.upstream.key, endpoints = snap.endpoints.len(), "endpoint pool started");
        if let Some(s) = &self.scraping {
            let interval = s.interval;
            self.scrape(ctx);
            ctx.run_interval(interval, |act, ctx| act.scrape(ctx));
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        let snap = self.cell.load();
        self.forget(snap.endpoints.iter().map(|e| e.key));
    }
}

impl EndpointPool {
    /// Drops what the scheduler remembers of endpoints that left.
    fn forget(&mut self, keys: impl Iterator<Item = u64>) {
        let scheduler = self.shared.scheduler.load();
        for key in keys {
            self.readings.remove(&key);
            if let Some(prefix) = &scheduler.carried.prefix {
                prefix.forget(key);
            }
        }
    }
}

/// The upstream and the Pods of the configuration in force.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Update {
    /// The converted ModelServer or InferencePool.
    pub upstream: Upstream,
    /// The Pods the upstream selects (the Index finds them).
    pub pods: Arc<Vec<PodInfo>>,
}

impl Handler<Update> for EndpointPool {
    type Result = ();

    fn handle(&mut self, Update { upstream, pods }: Update, ctx: &mut Context<Self>) {
        let previous = self.cell.load_full();
        let next = PoolSnapshot::build(upstream, &pods, Some(&previous));
        let changed = next.upstream != previous.upstream
            || next.endpoints.len() != previous.endpoints.len()
            || next
                .endpoints
                .iter()
                .zip(&previous.endpoints)
                .any(|(a, b)| !Arc::ptr_eq(a, b));
        if changed {
            tracing::info!(server = %next.upstream.key, endpoints = next.endpoints.len(), "endpoints published");
            let gone: Vec<u64> = previous
                .endpoints
                .iter()
                .filter(|e| next.by_key(e.key).is_none())
                .map(|e| e.key)
                .collect();
            let fresh = next
                .endpoints
                .iter()
                .any(|e| previous.by_key(e.key).is_none());
            self.cell.store(Arc::new(next));
            self.forget(gone.into_iter());
            // New endpoints are scraped at once rather than at the next tick.
            if fresh {
                self.scrape(ctx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_listing_the_same_models_share_one_set() {
        let state = |names: &[&str]| EngineState {
            models: Some(ModelSet::new(names.iter().copied())),
            ..EngineState::UNKNOWN
        };
        let mut engine = vec![
            state(&["m", "lora-A"]),
            EngineState::UNKNOWN,
            state(&["lora-A", "m"]),
            state(&["m"]),
        ];
        let before = engine.clone();
        share_model_sets(&mut engine);
        assert_eq!(engine, before, "the same contents");
        let set = |i: usize| engine[i].models.as_ref().expect("known");
        assert!(set(0).same(set(2)));
        assert!(!set(0).same(set(3)));
    }

    #[test]
    fn the_model_list_is_the_ids_of_v1_models() {
        let body = br#"{"object":"list","data":[{"id":"base","object":"model"},{"id":"lora-A","parent":"base"}]}"#;
        let set = parse_models(body).expect("valid");
        assert!(set.contains("base") && set.contains("lora-A") && set.len() == 2);
        assert!(parse_models(b"not json").is_none());
        assert!(parse_models(br#"{"data":[{"name":"x"}]}"#).is_none());
    }
}
