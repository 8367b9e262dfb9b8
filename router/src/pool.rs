//! Endpoints of a ModelServer: which Pods serve it, and the least-loaded pick.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use std::fmt;
use std::time::Duration;

use kthena_core::http_route::InferencePoolApi;
use kthena_core::scheduler::{Candidate, EngineState};
use kthena_core::{InferencePool, ModelServer, ObjectRef, RetryPolicy};

/// The object a pool of endpoints belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PoolKey {
    /// A ModelServer.
    ModelServer(ObjectRef),
    /// An InferencePool of one API group.
    InferencePool(InferencePoolApi, ObjectRef),
    /// A port of a Service (an HTTPRoute backend).
    Service(ObjectRef, u16),
}

impl PoolKey {
    /// The object.
    pub fn id(&self) -> &ObjectRef {
        match self {
            PoolKey::ModelServer(id) | PoolKey::InferencePool(_, id) | PoolKey::Service(id, _) => {
                id
            }
        }
    }
}

impl fmt::Display for PoolKey {
    /// `model server: ns/name` (Kthena's words) or `inference pool: ns/name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolKey::ModelServer(id) => write!(f, "model server: {id}"),
            PoolKey::InferencePool(_, id) => write!(f, "inference pool: {id}"),
            PoolKey::Service(id, port) => write!(f, "service: {id}:{port}"),
        }
    }
}

/// Where requests of a pool go and how: a ModelServer or an InferencePool, converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The object.
    pub key: PoolKey,
    /// Pods of the object's namespace with these labels are endpoints.
    pub match_labels: BTreeMap<String, String>,
    /// Port on each Pod.
    pub port: u16,
    /// How the Pods are spoken to.
    pub protocol: kthena_core::Protocol,
    /// A named container port instead of `port` (Service `targetPort` by name): Pods without
    /// it are not endpoints.
    pub port_name: Option<String>,
    /// Model sent upstream for non-LoRA routes (ModelServer `spec.model`).
    pub model: Option<String>,
    /// The engine whose `/metrics` names to read: the ModelServer's `inferenceEngine`;
    /// `None` for an InferencePool (either is recognised) and for a Service (not scraped).
    pub engine: Option<kthena_core::Engine>,
    /// Wait for response headers, per attempt.
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
}

impl Upstream {
    /// True when a Pod with `labels` in `namespace` is an endpoint.
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        namespace == self.key.id().namespace
            && self
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
    }
}

impl From<ModelServer> for Upstream {
    fn from(s: ModelServer) -> Self {
        Self {
            key: PoolKey::ModelServer(s.id),
            match_labels: s.match_labels,
            port: s.port,
            protocol: s.protocol,
            port_name: None,
            model: s.model,
            engine: Some(s.engine),
            timeout: s.timeout,
            retry: s.retry,
        }
    }
}

impl From<&ModelServer> for Upstream {
    fn from(s: &ModelServer) -> Self {
        Self {
            key: PoolKey::ModelServer(s.id.clone()),
            match_labels: s.match_labels.clone(),
            port: s.port,
            protocol: s.protocol,
            port_name: None,
            model: s.model.clone(),
            engine: Some(s.engine),
            timeout: s.timeout,
            retry: s.retry,
        }
    }
}

impl From<InferencePool> for Upstream {
    fn from(p: InferencePool) -> Self {
        Self {
            key: PoolKey::InferencePool(p.api, p.id),
            match_labels: p.match_labels,
            port: p.port,
            protocol: p.protocol,
            port_name: None,
            model: None,
            engine: None,
            timeout: kthena_core::model_server::DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }
}

impl Upstream {
    /// True when the pool's endpoints are inference engines whose `/metrics` and
    /// `/v1/models` are scraped (ModelServers and InferencePools; not plain Services).
    pub fn scraped(&self) -> bool {
        !matches!(self.key, PoolKey::Service(..))
    }

    /// The pool of port `port` of Service `s`: its selected Pods on the target port. `None`
    /// when the Service has no selector, no such port, or an `appProtocol` the router cannot
    /// speak on it.
    pub fn for_service(s: &kthena_core::Service, port: u16) -> Option<Self> {
        use kthena_core::service::TargetPort;
        let selector = s.selector.clone()?;
        let entry = s.port(port)?;
        let (port_number, port_name) = match &entry.target {
            TargetPort::Number(n) => (*n, None),
            TargetPort::Name(name) => (0, Some(name.clone())),
        };
        Some(Self {
            key: PoolKey::Service(s.id.clone(), port),
            match_labels: selector,
            port: port_number,
            protocol: entry.protocol?,
            port_name,
            model: None,
            engine: None,
            timeout: kthena_core::model_server::DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
        })
    }

    /// The port of this pool on Pod `p`.
    fn port_on(&self, p: &PodInfo) -> Option<u16> {
        match &self.port_name {
            None => Some(self.port),
            Some(name) => p.named_ports.get(name).copied(),
        }
    }
}

/// A Pod as endpoint discovery sees it (converted by `kthena_api::convert::pod`).
pub type PodInfo = kthena_core::Pod;

type FastMap<K, V> = foldhash::HashMap<K, V>;
type FastSet<K> = foldhash::HashSet<K>;

/// Every Pod, indexed by namespace and by label, so that finding a pool's Pods costs what it
/// selects rather than every Pod (5,000 pools × 10,000 Pods was the whole cost of a change).
/// It lives as long as the Index and takes one Pod at a time ([`PodIndex::upsert`],
/// [`PodIndex::delete`]).
#[derive(Debug, Default)]
pub struct PodIndex {
    /// namespace -> Pod name -> Pod. (foldhash: every Pod is looked up on every change.)
    pods: FastMap<String, FastMap<String, Arc<PodInfo>>>,
    /// namespace -> label key -> label value -> Pod names.
    by_label: FastMap<String, FastMap<String, FastMap<String, FastSet<String>>>>,
    len: usize,
}

/// The pools by what they select, so a changed Pod finds the pools that may select it
/// without looking at every pool: each pool is filed under its namespace and its first
/// matchLabel (or as selecting every Pod of the namespace).
#[derive(Debug, Default)]
pub struct SelectorIndex {
    /// namespace -> label key -> label value -> pools.
    by_label: FastMap<String, FastMap<String, FastMap<String, FastSet<PoolKey>>>>,
    /// namespace -> pools without matchLabels.
    whole_namespace: FastMap<String, FastSet<PoolKey>>,
}

impl SelectorIndex {
    /// Files `upstream`'s pool.
    pub fn insert(&mut self, upstream: &Upstream) {
        let ns = upstream.key.id().namespace.clone();
        let key = upstream.key.clone();
        match upstream.match_labels.iter().next() {
            None => {
                self.whole_namespace.entry(ns).or_default().insert(key);
            }
            Some((k, v)) => {
                self.by_label
                    .entry(ns)
                    .or_default()
                    .entry(k.clone())
                    .or_default()
                    .entry(v.clone())
                    .or_default()
                    .insert(key);
            }
        }
    }

    /// Unfiles `upstream`'s pool (filed with this same upstream).
    pub fn remove(&mut self, upstream: &Upstream) {
        let ns = &upstream.key.id().namespace;
        match upstream.match_labels.iter().next() {
            None => {
                if let Some(set) = self.whole_namespace.get_mut(ns) {
                    set.remove(&upstream.key);
                    if set.is_empty() {
                        self.whole_namespace.remove(ns);
                    }
                }
            }
            Some((k, v)) => {
                let Some(keys) = self.by_label.get_mut(ns) else {
                    return;
                };
                if let Some(values) = keys.get_mut(k) {
                    if let Some(set) = values.get_mut(v) {
                        set.remove(&upstream.key);
                        if set.is_empty() {
                            values.remove(v);
                        }
                    }
                    if values.is_empty() {
                        keys.remove(k);
                    }
                }
                if keys.is_empty() {
                    self.by_label.remove(ns);
                }
            }
        }
    }

    /// The pools that may select a Pod with `labels` in `namespace`: every pool that does is
    /// among them ([`Upstream::selects`] decides).
    pub fn candidates<'a>(
        &'a self,
        namespace: &str,
        labels: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a PoolKey> + 'a {
        let keys = self.by_label.get(namespace);
        let labelled = labels.iter().flat_map(move |(k, v)| {
            keys.and_then(|keys| keys.get(k))
                .and_then(|values| values.get(v))
                .into_iter()
                .flatten()
        });
        self.whole_namespace
            .get(namespace)
            .into_iter()
            .flatten()
            .chain(labelled)
    }
}

/// One Pod as it was and as it is; `None` where it did not exist.
pub type PodChange = (Option<Arc<PodInfo>>, Option<Arc<PodInfo>>);

impl PodIndex {
    /// Indexes `pods`.
    pub fn new(pods: impl IntoIterator<Item = Arc<PodInfo>>) -> Self {
        let mut index = Self::default();
        for p in pods {
            index.insert(p);
        }
        index
    }

    fn insert(&mut self, p: Arc<PodInfo>) -> Option<Arc<PodInfo>> {
        let before = self.remove(&p.id);
        let labels = self.by_label.entry(p.id.namespace.clone()).or_default();
        for (k, v) in &p.labels {
            labels
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .insert(p.id.name.clone());
        }
        self.pods
            .entry(p.id.namespace.clone())
            .or_default()
            .insert(p.id.name.clone(), p);
        self.len += 1;
        before
    }

    fn remove(&mut self, id: &ObjectRef) -> Option<Arc<PodInfo>> {
        let in_namespace = self.pods.get_mut(&id.namespace)?;
        let before = in_namespace.remove(&id.name)?;
        if in_namespace.is_empty() {
            self.pods.remove(&id.namespace);
        }
        if let Some(labels) = self.by_label.get_mut(&id.namespace) {
            for (k, v) in &before.labels {
                let Some(values) = labels.get_mut(k) else {
                    continue;
                };
                if let Some(names) = values.get_mut(v) {
                    names.remove(&id.name);
                    if names.is_empty() {
                        values.remove(v);
                    }
                }
                if values.is_empty() {
                    labels.remove(k);
                }
            }
            if labels.is_empty() {
                self.by_label.remove(&id.namespace);
            }
        }
        self.len -= 1;
        Some(before)
    }

    /// Adds or replaces Pod `p`; returns the version it replaced.
    pub fn upsert(&mut self, p: Arc<PodInfo>) -> Option<Arc<PodInfo>> {
        self.insert(p)
    }

    /// Removes Pod `id`; returns it when it was there.
    pub fn delete(&mut self, id: &ObjectRef) -> Option<Arc<PodInfo>> {
        self.remove(id)
    }

    /// The Pods `upstream` selects (namespace and every matchLabel), in Pod name order.
    pub fn selected(&self, upstream: &Upstream) -> Vec<PodInfo> {
        let namespace = &upstream.key.id().namespace;
        let Some(in_namespace) = self.pods.get(namespace) else {
            return Vec::new();
        };
        let mut out: Vec<PodInfo> = if upstream.match_labels.is_empty() {
            in_namespace.values().map(|p| (**p).clone()).collect()
        } else {
            // The shortest posting list among the selector's labels holds every candidate.
            let mut shortest: Option<&FastSet<String>> = None;
            let Some(labels) = self.by_label.get(namespace) else {
                return Vec::new();
            };
            for (k, v) in &upstream.match_labels {
                match labels.get(k).and_then(|values| values.get(v)) {
                    None => return Vec::new(),
                    Some(list) if shortest.is_none_or(|s| list.len() < s.len()) => {
                        shortest = Some(list)
                    }
                    Some(_) => {}
                }
            }
            shortest
                .into_iter()
                .flatten()
                .filter_map(|name| in_namespace.get(name))
                .filter(|p| upstream.selects(&p.id.namespace, &p.labels))
                .map(|p| (**p).clone())
                .collect()
        };
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

/// Milliseconds since the router started: the clock of ejections.
pub fn now_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What went wrong with one attempt, for outlier detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection (refused, reset, unreachable): a probe that connects readmits.
    Connect,
    /// No response headers in time.
    Timeout,
    /// A 5xx answer.
    ServerError,
}

/// An endpoint's outlier state: atomics the request path bumps (see [`kthena_core::outlier`]).
#[derive(Debug, Default)]
pub struct Health {
    failures: AtomicU32,
    /// [`now_ms`] at which the ejection ends; 0 when never ejected.
    ejected_until: AtomicU64,
    times: AtomicU32,
    for_connect: AtomicBool,
    ejections: AtomicU64,
}

impl Health {
    /// True while ejected.
    pub fn ejected(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now
    }

    /// Milliseconds of ejection left (0 when not ejected).
    pub fn ejected_for(&self, now: u64) -> u64 {
        self.ejected_until
            .load(Ordering::Relaxed)
            .saturating_sub(now)
    }

    /// Times ejected since the router started.
    pub fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// Failures in a row now.
    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// An attempt succeeded: the run of failures ends.
    pub fn succeeded(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// An attempt failed with `failure`; `ejected` of the pool's `total` endpoints are out.
    /// Returns the ejection's length when this failure ejects the endpoint.
    pub fn failed(
        &self,
        policy: &kthena_core::outlier::OutlierPolicy,
        failure: Failure,
        now: u64,
        ejected: usize,
        total: usize,
    ) -> Option<Duration> {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until > now || !policy.ejects(failures, ejected, total) {
            return None;
        }
        let healthy_for = Duration::from_millis(now.saturating_sub(until));
        let times = policy.decayed(self.times.load(Ordering::Relaxed), healthy_for) + 1;
        let length = policy.ejection_time(times);
        let end = now + u64::try_from(length.as_millis()).unwrap_or(u64::MAX / 2);
        // One failure of several concurrent ones ejects.
        self.ejected_until
            .compare_exchange(until, end, Ordering::Relaxed, Ordering::Relaxed)
            .ok()?;
        self.times.store(times, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        self.for_connect
            .store(failure == Failure::Connect, Ordering::Relaxed);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        Some(length)
    }

    /// A probe reached the endpoint: an ejection for connection failures ends now.
    /// Returns true when it did end one.
    pub fn probe_succeeded(&self, now: u64) -> bool {
        if self.ejected(now) && self.for_connect.load(Ordering::Relaxed) {
            self.ejected_until.store(now, Ordering::Relaxed);
            return true;
        }
        false
    }
}

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// One Pod serving one pool, with its in-flight request count and outlier state.
#[derive(Debug)]
pub struct Endpoint {
    /// The Pod.
    pub pod: ObjectRef,
    /// `podIP:workloadPort`.
    pub addr: SocketAddr,
    /// `addr` as a URI authority, made once (a request's upstream URI is built from parts,
    /// not formatted and parsed again).
    pub authority: awc::http::uri::Authority,
    /// Identity for the scheduler (the prefix index), never reused.
    pub key: u64,
    /// Outlier detection.
    pub health: Health,
    /// Written by every worker on every request to this endpoint: on a cache line of its
    /// own, so those writes do not invalidate the read-mostly fields above for the others.
    in_flight: CachePadded<AtomicUsize>,
}

/// A value alone on its 64-byte cache line (128 would cover adjacent-line prefetch on Intel;
/// 64 is what the x86-64 and arm64 cores this runs on invalidate by).
#[derive(Debug, Default)]
#[repr(align(64))]
struct CachePadded<T>(T);

impl Endpoint {
    /// A new endpoint with nothing in flight.
    pub fn new(pod: ObjectRef, addr: SocketAddr) -> Self {
        Self {
            pod,
            authority: awc::http::uri::Authority::try_from(addr.to_string().as_str())
                .expect("a socket address is a URI authority"),
            addr,
            key: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            health: Health::default(),
            in_flight: CachePadded(AtomicUsize::new(0)),
        }
    }

    /// Requests currently sent to this endpoint and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.0.load(Ordering::Relaxed)
    }

    /// Counts a request until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.0.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A request in flight on an endpoint; dropping it ends the request.
#[derive(Debug)]
pub struct InFlight(Arc<Endpoint>);

impl InFlight {
    /// The endpoint.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The candidates of one pick, borrowed from a snapshot.
pub type Candidates<'a> = smallvec::SmallVec<[Candidate<'a>; 16]>;

/// The published state of one pool: its upstream, its ready endpoints and what their
/// engines last reported.
#[derive(Debug)]
pub struct PoolSnapshot {
    /// The converted ModelServer or InferencePool.
    pub upstream: Upstream,
    /// Ready endpoints, oldest first (by [`Endpoint::key`], the order the scheduler needs).
    pub endpoints: Vec<Arc<Endpoint>>,
    /// The engine state of each endpoint, in the same order (written by the EndpointPool
    /// actor from its scrapes).
    pub engine: Vec<EngineState>,
    /// The retry budget's counts, kept across snapshots.
    pub retries: Arc<RetryCounts>,
}

/// What the retry budget of one pool counts (written on the retry path only).
#[derive(Debug, Default)]
pub struct RetryCounts {
    /// Requests that took a retry slot and have not ended.
    pub retrying: AtomicUsize,
    /// Requests in the pause before a retry: in flight to the pool, but on no endpoint.
    pub pausing: AtomicUsize,
}

impl PoolSnapshot {
    /// The endpoints of `upstream` among `pods`, reusing the `Endpoint`s (and so the in-flight
    /// counts, outlier state and engine state) of `previous` for Pods that did not change
    /// address.
    pub fn build(upstream: Upstream, pods: &[PodInfo], previous: Option<&PoolSnapshot>) -> Self {
        let mut endpoints: Vec<(Arc<Endpoint>, EngineState)> = pods
            .iter()
            .filter(|p| upstream.selects(&p.id.namespace, &p.labels))
            .filter_map(|p| {
                let addr = SocketAddr::new(p.ready_ip?, upstream.port_on(p)?);
                let reused = previous.and_then(|prev| {
                    prev.endpoints
                        .iter()
                        .zip(&prev.engine)
                        .find(|(e, _)| e.pod == p.id && e.addr == addr)
                });
                Some(match reused {
                    Some((e, s)) => (e.clone(), s.clone()),
                    None => (
                        Arc::new(Endpoint::new(p.id.clone(), addr)),
                        EngineState::UNKNOWN,
                    ),
                })
            })
            .collect();
        endpoints.sort_by_key(|(e, _)| e.key);
        let (endpoints, engine) = endpoints.into_iter().unzip();
        Self {
            upstream,
            endpoints,
            engine,
            retries: previous.map(|p| p.retries.clone()).unwrap_or_default(),
        }
    }

    /// The same endpoints with new engine states (one per endpoint, same order).
    pub fn with_engine(&self, engine: Vec<EngineState>) -> Self {
        debug_assert_eq!(engine.len(), self.endpoints.len());
        Self {
            upstream: self.upstream.clone(),
            endpoints: self.endpoints.clone(),
            engine,
            retries: self.retries.clone(),
        }
    }

    /// The endpoints as the scheduler sees them at `now` ([`now_ms`]).
    pub fn candidates(&self, now: u64) -> Candidates<'_> {
        self.endpoints
            .iter()
            .zip(&self.engine)
            .map(|(e, engine)| Candidate {
                key: e.key,
                in_flight: e.in_flight(),
                ejected: e.health.ejected(now),
                engine,
            })
            .collect()
    }

    /// Endpoints ejected at `now`.
    pub fn ejected(&self, now: u64) -> usize {
        self.endpoints
            .iter()
            .filter(|e| e.health.ejected(now))
            .count()
    }

    /// The endpoint with key `key`, when it is still in this snapshot.
    pub fn by_key(&self, key: u64) -> Option<&Arc<Endpoint>> {
        self.endpoints
            .binary_search_by_key(&key, |e| e.key)
            .ok()
            .map(|i| &self.endpoints[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn server() -> ModelServer {
        ModelServer {
            id: ObjectRef::new("default", "s"),
            model: None,
            engine: kthena_core::Engine::Vllm,
            match_labels: [("app".to_owned(), "x".to_owned())].into(),
            pd_group: None,
            port: 8000,
            protocol: kthena_core::Protocol::Http,
            timeout: Duration::from_secs(1),
            retry: kthena_core::RetryPolicy::default(),
            kv_connector: None,
            session_sticky: None,
        }
    }

    fn pod(name: &str, ns: &str, app: &str, ip: Option<&str>) -> PodInfo {
        PodInfo {
            id: ObjectRef::new(ns, name),
            labels: [("app".to_owned(), app.to_owned())].into(),
            ready_ip: ip.map(|i| i.parse().unwrap()),
            named_ports: [("http".to_owned(), 9000)].into(),
        }
    }

    #[test]
    fn pods_upserted_and_deleted_one_at_a_time_are_selected_by_their_labels_now() {
        let a = pod("a", "default", "x", Some("10.0.0.1"));
        let b = pod("b", "default", "x", None);
        let c = pod("c", "other", "y", Some("10.0.0.3"));
        let mut index = PodIndex::default();
        for p in [&a, &b, &c] {
            assert!(index.upsert(Arc::new(p.clone())).is_none());
        }
        // b turns Ready: the old version comes back.
        let mut ready = b.clone();
        ready.ready_ip = Some("10.0.0.2".parse().unwrap());
        let before = index.upsert(Arc::new(ready.clone())).expect("b was there");
        assert_eq!(before.ready_ip, None);
        assert_eq!(
            index.delete(&c.id).map(|p| p.id.name.clone()).as_deref(),
            Some("c")
        );
        assert!(index.delete(&c.id).is_none());
        let d = pod("d", "default", "y", None);
        index.upsert(Arc::new(d.clone()));
        let mut up: Upstream = server().into();
        let names = |index: &PodIndex, up: &Upstream| -> Vec<String> {
            index.selected(up).into_iter().map(|p| p.id.name).collect()
        };
        assert_eq!(names(&index, &up), ["a", "b"]);
        up.match_labels = [("app".to_owned(), "y".to_owned())].into();
        assert_eq!(names(&index, &up), ["d"]);
        // The labels of a removed or relabelled Pod no longer select it.
        let mut moved = a.clone();
        moved.labels = [("app".to_owned(), "y".to_owned())].into();
        index.upsert(Arc::new(moved));
        assert_eq!(names(&index, &up), ["a", "d"]);
        up.match_labels = [("app".to_owned(), "x".to_owned())].into();
        assert_eq!(names(&index, &up), ["b"]);
        for id in [&a.id, &b.id, &d.id] {
            assert!(index.delete(id).is_some());
        }
        assert!(names(&index, &up).is_empty());
    }

    #[test]
    fn the_selector_index_offers_every_pool_that_selects_a_pod() {
        let mut upstreams = Vec::new();
        for (i, labels) in [
            vec![],
            vec![("app", "x")],
            vec![("app", "x"), ("tier", "a")],
            vec![("tier", "a")],
            vec![("app", "y")],
        ]
        .into_iter()
        .enumerate()
        {
            for ns in ["default", "other"] {
                let mut up: Upstream = server().into();
                up.key = PoolKey::ModelServer(ObjectRef::new(ns, format!("s{i}")));
                up.match_labels = labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                upstreams.push(up);
            }
        }
        let mut index = SelectorIndex::default();
        for u in &upstreams {
            index.insert(u);
        }
        let pods = [
            pod("p", "default", "x", None),
            pod("q", "other", "y", None),
            pod("r", "default", "z", None),
        ];
        let mut tiered = pod("t", "default", "x", None);
        tiered.labels.insert("tier".into(), "a".into());
        for p in pods.iter().chain([&tiered]) {
            let offered: std::collections::HashSet<&PoolKey> =
                index.candidates(&p.id.namespace, &p.labels).collect();
            for u in &upstreams {
                if u.selects(&p.id.namespace, &p.labels) {
                    assert!(offered.contains(&u.key), "{:?} misses {:?}", p.id, u.key);
                }
            }
        }
        for u in &upstreams {
            index.remove(u);
        }
        assert!(index.by_label.is_empty() && index.whole_namespace.is_empty());
    }

    #[test]
    fn the_pod_index_selects_exactly_what_a_scan_of_every_pod_selects() {
        let mut pods = Vec::new();
        for (i, ns) in ["default", "other"].iter().enumerate() {
            for n in 0..12 {
                let mut p = pod(&format!("p{n}"), ns, &format!("app{}", n % 3), None);
                p.labels.insert("tier".into(), format!("t{}", (n + i) % 2));
                pods.push(p);
            }
        }
        pods.reverse();
        let index = PodIndex::new(pods.iter().cloned().map(Arc::new));
        let selectors: [&[(&str, &str)]; 6] = [
            &[],
            &[("app", "app1")],
            &[("app", "app1"), ("tier", "t0")],
            &[("tier", "t1")],
            &[("app", "nope")],
            &[("app", "app2"), ("missing", "x")],
        ];
        for ns in ["default", "other", "empty"] {
            for sel in selectors {
                let mut up: Upstream = server().into();
                up.key = PoolKey::ModelServer(ObjectRef::new(ns, "s"));
                up.match_labels = sel
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                let mut scan: Vec<PodInfo> = pods
                    .iter()
                    .filter(|p| up.selects(&p.id.namespace, &p.labels))
                    .cloned()
                    .collect();
                scan.sort_by(|a, b| a.id.cmp(&b.id));
                assert_eq!(index.selected(&up), scan, "{ns} {sel:?}");
            }
        }
    }

    #[test]
    fn endpoints_are_ready_selected_pods_of_the_namespace() {
        let pods = [
            pod("a", "default", "x", Some("10.0.0.1")),
            pod("b", "default", "x", None),
            pod("c", "default", "y", Some("10.0.0.3")),
            pod("d", "other", "x", Some("10.0.0.4")),
        ];
        let snap = PoolSnapshot::build(server().into(), &pods, None);
        let addrs: Vec<String> = snap.endpoints.iter().map(|e| e.addr.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.1:8000"]);
    }

    #[test]
    fn service_port_leads_to_the_target_port_by_number_or_name() {
        use kthena_core::service::{ServicePort, TargetPort};
        let service = kthena_core::Service {
            id: ObjectRef::new("default", "svc"),
            selector: Some([("app".to_owned(), "x".to_owned())].into()),
            ports: vec![
                ServicePort {
                    port: 80,
                    target: TargetPort::Number(8000),
                    protocol: Some(kthena_core::Protocol::Http),
                    app_protocol: None,
                },
                ServicePort {
                    port: 81,
                    target: TargetPort::Name("http".to_owned()),
                    protocol: Some(kthena_core::Protocol::Http),
                    app_protocol: Some("http".to_owned()),
                },
                ServicePort {
                    port: 82,
                    target: TargetPort::Name("grpc".to_owned()),
                    protocol: Some(kthena_core::Protocol::H2c),
                    app_protocol: Some("kubernetes.io/h2c".to_owned()),
                },
            ],
        };
        let pods = [pod("a", "default", "x", Some("10.0.0.1"))];
        let addrs = |port| {
            let up = Upstream::for_service(&service, port).expect("port exists");
            PoolSnapshot::build(up, &pods, None)
                .endpoints
                .iter()
                .map(|e| e.addr.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(addrs(80), ["10.0.0.1:8000"]);
        assert_eq!(addrs(81), ["10.0.0.1:9000"]);
        assert!(addrs(82).is_empty(), "no container port named grpc");
        assert!(Upstream::for_service(&service, 83).is_none());
        let headless = kthena_core::Service {
            selector: None,
            ..service.clone()
        };
        assert!(Upstream::for_service(&headless, 80).is_none());
    }

    #[test]
    fn rebuild_keeps_in_flight_counts() {
        let pods = [pod("a", "default", "x", Some("10.0.0.1"))];
        let first = PoolSnapshot::build(server().into(), &pods, None);
        let _guard = first.endpoints[0].begin();
        let second = PoolSnapshot::build(server().into(), &pods, Some(&first));
        assert_eq!(second.endpoints[0].in_flight(), 1);
    }

    #[test]
    fn candidates_are_in_key_order_with_their_counts_and_engine_state() {
        let pods = [
            pod("b", "default", "x", Some("10.0.0.2")),
            pod("a", "default", "x", Some("10.0.0.1")),
        ];
        let first = PoolSnapshot::build(server().into(), &pods[..1], None);
        let state = EngineState {
            running: Some(3.0),
            ..EngineState::UNKNOWN
        };
        let first = first.with_engine(vec![state.clone()]);
        let _busy = first.endpoints[0].begin();
        // Pod a arrives later: it comes after b, whose state is kept.
        let second = PoolSnapshot::build(server().into(), &pods, Some(&first));
        let c = second.candidates(now_ms());
        assert_eq!(c.len(), 2);
        assert!(c[0].key < c[1].key);
        assert_eq!(second.endpoints[0].pod.name, "b");
        assert_eq!((c[0].in_flight, c[0].engine), (1, &state));
        assert_eq!((c[1].in_flight, c[1].engine), (0, &EngineState::UNKNOWN));
        assert_eq!(
            second.by_key(c[1].key).map(|e| e.pod.name.as_str()),
            Some("a")
        );
        assert!(second.by_key(0).is_none());
    }

    #[test]
    fn consecutive_failures_eject_for_a_growing_time_and_a_probe_readmits_connect_failures() {
        use kthena_core::outlier::OutlierPolicy;
        let policy = OutlierPolicy {
            consecutive_failures: 3,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(100),
            max_ejected_percent: 50,
        };
        let h = Health::default();
        let now = 1_000;
        assert_eq!(h.failed(&policy, Failure::ServerError, now, 0, 3), None);
        h.succeeded();
        assert_eq!(h.failed(&policy, Failure::ServerError, now, 0, 3), None);
        assert_eq!(h.failed(&policy, Failure::ServerError, now, 0, 3), None);
        assert_eq!(
            h.failed(&policy, Failure::ServerError, now, 0, 3),
            Some(Duration::from_secs(10))
        );
        assert!(h.ejected(now + 9_999) && !h.ejected(now + 10_000));
        assert!(
            !h.probe_succeeded(now + 1),
            "a 5xx ejection waits for expiry"
        );
        // Back at expiry, and failing again at once: twice as long.
        let later = now + 10_000;
        for _ in 0..2 {
            assert_eq!(h.failed(&policy, Failure::Connect, later, 0, 3), None);
        }
        assert_eq!(
            h.failed(&policy, Failure::Connect, later, 0, 3),
            Some(Duration::from_secs(20))
        );
        assert!(h.probe_succeeded(later + 5));
        assert!(!h.ejected(later + 5));
        assert_eq!(h.ejections(), 2);
        // The pool share: with one of two out, the other is never ejected.
        let other = Health::default();
        for _ in 0..10 {
            assert_eq!(other.failed(&policy, Failure::Timeout, now, 1, 2), None);
        }
    }
}
