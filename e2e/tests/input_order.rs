//! Deterministic winners: the same objects read in any order give the same routing and the
//! same status. The world holds every contest the router decides: two ModelRoutes claiming a
//! model name (the older wins), two with no creation time (namespace/name decides), two
//! Gateways claiming a hostname on one port, and two InferenceModels claiming a model name
//! on one pool. Each order writes the documents into files whose names sort in that order
//! (the folder is read in file-name order, like a store hands out objects in its own order).

use kthena_e2e::{Env, chat, client, free_port, post};

/// The world's documents; `engine` is the mocks' port, `gw_port` the contested Gateway port.
fn documents(engine: u16, gw_port: u16) -> Vec<String> {
    let server = |name: &str| {
        format!(
            "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelServer\n\
             metadata: {{name: {name}, namespace: default}}\nspec:\n  inferenceEngine: vLLM\n  \
             workloadSelector: {{matchLabels: {{app: {name}}}}}\n  workloadPort: {{port: {engine}}}\n"
        )
    };
    let route = |name: &str, model: &str, server: &str, created: Option<&str>| {
        let created = created.map_or(String::new(), |t| format!(", creationTimestamp: \"{t}\""));
        format!(
            "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
             metadata: {{name: {name}, namespace: default{created}}}\nspec:\n  modelName: {model}\n  \
             rules:\n  - name: all\n    targetModels:\n    - modelServerName: {server}\n"
        )
    };
    let gateway = |name: &str, created: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n\
             metadata: {{name: {name}, namespace: default, creationTimestamp: \"{created}\"}}\n\
             spec:\n  gatewayClassName: kthena-router\n  listeners:\n  \
             - {{name: http, port: {gw_port}, protocol: HTTP, hostname: x.example}}\n"
        )
    };
    let inference_model = |name: &str, target: &str, created: &str| {
        format!(
            "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceModel\n\
             metadata: {{name: {name}, namespace: default, creationTimestamp: \"{created}\"}}\n\
             spec:\n  modelName: im\n  poolRef: {{name: pool}}\n  targetModels: [{{name: {target}}}]\n"
        )
    };
    vec![
        server("old"),
        server("new"),
        server("tie-a"),
        server("tie-b"),
        route("r-new", "m", "new", Some("2026-02-01T00:00:00Z")),
        route("r-old", "m", "old", Some("2026-01-01T00:00:00Z")),
        route("r-tie-b", "t", "tie-b", None),
        route("r-tie-a", "t", "tie-a", None),
        gateway("g-new", "2026-02-01T00:00:00Z"),
        gateway("g-old", "2026-01-01T00:00:00Z"),
        format!(
            "apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferencePool\n\
             metadata: {{name: pool, namespace: default}}\nspec:\n  selector: {{app: pool}}\n  \
             targetPortNumber: {engine}\n  extensionRef: {{name: pool-epp}}\n"
        ),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {name: hr, namespace: default}\nspec:\n  parentRefs: [{name: g-new}, {name: g-old}]\n  \
         rules:\n  - backendRefs: [{group: inference.networking.x-k8s.io, kind: InferencePool, name: pool}]\n"
            .to_owned(),
        inference_model("im-new", "target-new", "2026-02-01T00:00:00Z"),
        inference_model("im-old", "target-old", "2026-01-01T00:00:00Z"),
    ]
}

/// `items` in a pseudo-random order fixed by `seed` (Fisher–Yates over a 64-bit LCG).
fn shuffled<T: Clone>(items: &[T], seed: u64) -> Vec<T> {
    let mut out = items.to_vec();
    let mut state = seed;
    for i in (1..out.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from((state >> 33) % (i as u64 + 1)).expect("small index");
        out.swap(i, j);
    }
    out
}

/// What one order gives: the engine and model answering each probe, and the whole status.
async fn outcome(env: &Env, main_port: u16, gw_port: u16) -> (Vec<String>, serde_json::Value) {
    let router = env.gateway_router(main_port);
    let gw = gw_port.to_string();
    let c = client();
    let mut answers = Vec::new();
    for model in ["m", "t"] {
        let a = post(&c, &router.url("/v1/chat/completions"), &[], chat(model)).await;
        answers.push(format!(
            "{model}: {} {}",
            a.status,
            a.pod.unwrap_or_default()
        ));
    }
    let url = format!("http://127.0.0.1:{gw}/v1/chat/completions");
    let a = post(&c, &url, &[("host", "x.example")], chat("im")).await;
    let text = if a.status == 200 {
        a.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    } else {
        a.body.clone()
    };
    answers.push(format!("im: {} {text}", a.status));
    let status = router.debug("/debug/status").await.json();
    (answers, status)
}

#[actix_rt::test]
async fn any_input_order_gives_the_same_winners_table_and_status() {
    let mut env = Env::new();
    for name in ["old", "new", "tie-a", "tie-b"] {
        env.mock(name, &[("app", name)], &["--served-model-name", "m,t"]);
    }
    env.mock(
        "pool-0",
        &[("app", "pool")],
        &["--served-model-name", "base,target-old,target-new"],
    );
    let engine = env.port.expect("mocks started");
    let (main_port, gw_port) = (free_port(), free_port());
    let docs = documents(engine, gw_port);
    let reversed: Vec<String> = docs.iter().rev().cloned().collect();
    let orders = [
        docs.clone(),
        reversed,
        shuffled(&docs, 1),
        shuffled(&docs, 7),
    ];
    let mut first: Option<(Vec<String>, serde_json::Value)> = None;
    for (n, order) in orders.iter().enumerate() {
        for entry in std::fs::read_dir(&env.dir).expect("manifest folder") {
            let path = entry.expect("entry").path();
            if path
                .file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with("doc-"))
            {
                std::fs::remove_file(path).expect("removing a document");
            }
        }
        for (i, doc) in order.iter().enumerate() {
            env.write(&format!("doc-{i:02}.yaml"), doc);
        }
        let got = outcome(&env, main_port, gw_port).await;
        match &first {
            None => {
                // The contests are decided as documented, not just consistently.
                assert_eq!(
                    got.0,
                    [
                        "m: 200 old",
                        "t: 200 tie-a",
                        "im: 200 This is simulated message from target-old!"
                    ],
                    "{}",
                    got.1
                );
                first = Some(got);
            }
            Some(expected) => {
                assert_eq!(got.0, expected.0, "order {n}: answers");
                pretty_assertions::assert_eq!(got.1, expected.1, "order {n}: status");
            }
        }
    }
}
