//! Status recomputed object by object: after every change the Index applies, the statuses a
//! [`StatusCache`] holds (only the objects the change can alter recomputed) equal the whole
//! report computed from scratch. Changes are drawn at random over routes that share model
//! names and LoRA adapters, ModelServers that come and go, Pods that turn ready and invalid
//! versions, so conflicts, resolved references and ready endpoints all move.

use std::sync::Arc;

use actix::Actor;
use kthena_api::manifest::parse_str;
use kthena_dataplane::actors::index::{Apply, Index};
use kthena_dataplane::actors::route_set::RouteSet;
use kthena_dataplane::source::GatewayOptions;
use kthena_dataplane::source::assemble::{Change, Combined, Converted};
use kthena_dataplane::state::Shared;
use kthena_dataplane::status::{ObjectStatus, Sources, StatusCache, report};

/// A small deterministic generator (xorshift), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

const ROUTES: usize = 6;
const SERVERS: usize = 3;
const PODS: usize = 4;

/// Route `i` in a random version: the name it claims, an adapter, its server and
/// generation move; one version in eight is invalid.
fn route(i: usize, rng: &mut Rng) -> String {
    let names = ["m", "n", "o"];
    let model = names[rng.below(2)];
    let lora = match rng.below(3) {
        0 => String::new(),
        k => format!("  loraAdapters: [{}]\n", names[k]),
    };
    let regex = if rng.below(8) == 0 { "(" } else { "^/v1" };
    format!(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {{name: r{i}, namespace: team, generation: {g}, creationTimestamp: '2026-01-0{day}T00:00:00Z'}}\n\
         spec:\n  modelName: {model}\n{lora}  rules:\n  - modelMatch: {{uri: {{regex: '{regex}'}}}}\n    \
         targetModels: [{{modelServerName: s{s}}}]\n",
        g = 1 + rng.below(3),
        day = 1 + i,
        s = rng.below(SERVERS),
    )
}

fn server(i: usize, rng: &mut Rng) -> String {
    format!(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelServer\n\
         metadata: {{name: s{i}, namespace: team, generation: {g}}}\n\
         spec:\n  model: m\n  inferenceEngine: vLLM\n  workloadSelector: {{matchLabels: {{app: {app}}}}}\n  \
         workloadPort: {{port: 8000}}\n",
        g = 1 + rng.below(3),
        app = ["a", "b"][rng.below(2)],
    )
}

fn pod(i: usize, rng: &mut Rng) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: team, labels: {{app: {app}}}}}\n\
         status:\n  phase: Running\n  podIP: 10.0.0.{ip}\n  conditions: [{{type: Ready, status: '{ready}'}}]\n",
        app = ["a", "b"][rng.below(2)],
        ip = i + 1,
        ready = ["True", "False"][rng.below(2)],
    )
}

fn converted(yaml: &str) -> Arc<Converted> {
    let object = parse_str(yaml, "test")
        .expect("valid YAML")
        .pop()
        .expect("one object");
    Arc::new(Converted::new(
        "apiserver".into(),
        object,
        &GatewayOptions::default(),
    ))
}

#[actix_rt::test]
async fn statuses_recomputed_per_change_equal_the_whole_report() {
    let shared = Arc::new(Shared::default());
    let route_set = RouteSet::new(shared.clone(), Default::default()).start();
    let index = Index::new(shared.clone(), route_set, None, None).start();
    shared.track_status();
    let mut combined = Combined::new(GatewayOptions::default());
    let mut cache = StatusCache::<ObjectStatus>::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Every object once, then one or two objects changed or deleted per step.
    let mut first: Vec<Change> = Vec::new();
    for i in 0..ROUTES {
        first.push(Change::Upsert(converted(&route(i, &mut rng))));
    }
    for i in 0..SERVERS {
        first.push(Change::Upsert(converted(&server(i, &mut rng))));
    }
    for i in 0..PODS {
        first.push(Change::Upsert(converted(&pod(i, &mut rng))));
    }
    let mut steps = vec![first];
    for _ in 0..300 {
        let mut step = Vec::new();
        for _ in 0..1 + rng.below(2) {
            let (yaml, kind) = match rng.below(3) {
                0 => (route(rng.below(ROUTES), &mut rng), 0),
                1 => (server(rng.below(SERVERS), &mut rng), 1),
                _ => (pod(rng.below(PODS), &mut rng), 2),
            };
            let c = converted(&yaml);
            // One change in five deletes the object instead (a later step may bring it back).
            if rng.below(5) == 0 && kind < 2 || rng.below(10) == 0 {
                step.push(Change::Delete(c.key().expect("a key")));
            } else {
                step.push(Change::Upsert(c));
            }
        }
        steps.push(step);
    }
    let mut recomputed = 0;
    let mut whole = 0;
    for (n, step) in steps.into_iter().enumerate() {
        let (config, _) = combined.apply(step);
        index.send(Apply(config)).await.expect("index alive");
        let dirty = shared.take_status_dirty();
        let inputs = shared.status_inputs.load();
        let pools = shared.pools.load();
        let tables = shared.http_routes.load();
        let sources = Sources {
            inputs: &inputs,
            pools: &pools,
            tables: &tables,
            controller_name: "volcano.sh/kthena-router",
            priority_queueing: false,
        };
        recomputed += cache.update(sources, &dirty, |o| Some(o.clone()));
        let want = report(sources);
        whole += want.len();
        let have: Vec<ObjectStatus> = cache.values().cloned().collect();
        assert_eq!(have, want, "step {n}: {dirty:?}");
    }
    assert!(
        recomputed * 2 < whole,
        "fewer statuses recomputed ({recomputed}) than a whole report per change ({whole})"
    );
}
