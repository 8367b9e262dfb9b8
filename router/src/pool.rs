//! Endpoints of a ModelServer: which Pods serve it, and the least-loaded pick.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::fmt;
use std::time::Duration;

use kthena_core::http_route::InferencePoolApi;
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
            timeout: kthena_core::model_server::DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }
}

impl Upstream {
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

/// One Pod serving one ModelServer, with its in-flight request count.
#[derive(Debug)]
pub struct Endpoint {
    /// The Pod.
    pub pod: ObjectRef,
    /// `podIP:workloadPort`.
    pub addr: SocketAddr,
    in_flight: AtomicUsize,
}

impl Endpoint {
    /// A new endpoint with nothing in flight.
    pub fn new(pod: ObjectRef, addr: SocketAddr) -> Self {
        Self {
            pod,
            addr,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Requests currently sent to this endpoint and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
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
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The published state of one pool: its upstream and its ready endpoints.
#[derive(Debug)]
pub struct PoolSnapshot {
    /// The converted ModelServer or InferencePool.
    pub upstream: Upstream,
    /// Ready endpoints, in Pod name order.
    pub endpoints: Vec<Arc<Endpoint>>,
    rotation: AtomicUsize,
}

impl PoolSnapshot {
    /// The endpoints of `upstream` among `pods`, reusing the `Endpoint`s (and so the in-flight
    /// counts) of `previous` for Pods that did not change address.
    pub fn build(upstream: Upstream, pods: &[PodInfo], previous: Option<&PoolSnapshot>) -> Self {
        let mut endpoints: Vec<Arc<Endpoint>> = pods
            .iter()
            .filter(|p| upstream.selects(&p.id.namespace, &p.labels))
            .filter_map(|p| {
                let addr = SocketAddr::new(p.ready_ip?, upstream.port_on(p)?);
                let reused = previous.and_then(|prev| {
                    prev.endpoints
                        .iter()
                        .find(|e| e.pod == p.id && e.addr == addr)
                });
                Some(
                    reused
                        .cloned()
                        .unwrap_or_else(|| Arc::new(Endpoint::new(p.id.clone(), addr))),
                )
            })
            .collect();
        endpoints.sort_by(|a, b| a.pod.cmp(&b.pod));
        Self {
            upstream,
            endpoints,
            rotation: AtomicUsize::new(0),
        }
    }

    /// The endpoint with the fewest requests in flight, skipping `exclude` unless nothing else
    /// is left. Ties go round-robin, so equally loaded endpoints share the traffic.
    pub fn pick(&self, exclude: &[SocketAddr]) -> Option<&Arc<Endpoint>> {
        let fresh = |e: &&Arc<Endpoint>| !exclude.contains(&e.addr);
        if self.endpoints.iter().any(|e| fresh(&e)) {
            self.least_loaded(fresh)
        } else {
            self.least_loaded(|_| true)
        }
    }

    /// Among endpoints passing `keep`, one with the fewest in flight; the n-th call takes the
    /// (n mod k)-th of the k tied ones.
    fn least_loaded(&self, keep: impl Fn(&&Arc<Endpoint>) -> bool) -> Option<&Arc<Endpoint>> {
        // Minimum and number of ties in one pass: counts move concurrently, so a second
        // pass may disagree, and must never be relied on for the divisor.
        let (mut min, mut ties) = (usize::MAX, 0usize);
        for e in self.endpoints.iter().filter(&keep) {
            let n = e.in_flight();
            if n < min {
                (min, ties) = (n, 1);
            } else if n == min {
                ties += 1;
            }
        }
        if ties == 0 {
            return None;
        }
        let turn = self.rotation.fetch_add(1, Ordering::Relaxed) % ties;
        let mut tied = self
            .endpoints
            .iter()
            .filter(&keep)
            .filter(|e| e.in_flight() == min);
        tied.nth(turn).or_else(|| self.endpoints.iter().find(keep))
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
    fn pick_prefers_fewest_in_flight_and_rotates_ties() {
        let pods = [
            pod("a", "default", "x", Some("10.0.0.1")),
            pod("b", "default", "x", Some("10.0.0.2")),
            pod("c", "default", "x", Some("10.0.0.3")),
        ];
        let snap = PoolSnapshot::build(server().into(), &pods, None);
        let _busy = snap.endpoints[0].begin();
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..10 {
            *seen
                .entry(snap.pick(&[]).unwrap().pod.name.clone())
                .or_insert(0) += 1;
        }
        assert_eq!(seen.get("a"), None);
        assert_eq!((seen["b"], seen["c"]), (5, 5));
    }

    #[test]
    fn pick_never_fails_while_counts_change_concurrently() {
        let pods: Vec<PodInfo> = (1..=4)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    "default",
                    "x",
                    Some(&format!("10.0.0.{i}")),
                )
            })
            .collect();
        let snap = PoolSnapshot::build(server().into(), &pods, None);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        let e = snap.pick(&[]).expect("endpoints exist");
                        let _guard = e.begin();
                    }
                });
            }
        });
        assert!(snap.endpoints.iter().all(|e| e.in_flight() == 0));
    }

    #[test]
    fn pick_skips_excluded_unless_nothing_else_is_left() {
        let pods = [
            pod("a", "default", "x", Some("10.0.0.1")),
            pod("b", "default", "x", Some("10.0.0.2")),
        ];
        let snap = PoolSnapshot::build(server().into(), &pods, None);
        let a: SocketAddr = "10.0.0.1:8000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:8000".parse().unwrap();
        for _ in 0..4 {
            assert_eq!(snap.pick(&[a]).unwrap().addr, b);
        }
        assert!(snap.pick(&[a, b]).is_some());
    }
}
