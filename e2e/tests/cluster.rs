//! The router in Kubernetes mode, end to end, against the API server of `$KUBECONFIG`: the
//! example objects applied with kubectl, engine Pods pointing at `kthena-mock` engines on
//! loopback, the real `kthena-router` running locally, its answers and the status it writes.
//!
//! Every test is `#[ignore]`d; run them with
//! `KUBECONFIG=... cargo test -p kthena-e2e --test cluster -- --ignored --test-threads=1`
//! (build the binaries first: `cargo build --workspace`). Without `$KUBECONFIG` each test
//! prints why it is skipped and passes. A bare API server (no scheduler, no kubelet, no
//! controller manager) is enough; kind or a real cluster work too.

use std::collections::BTreeMap;

use kthena_e2e::cluster::{
    Cluster, REBUILT, TIMEOUT, condition, eventually, exact_split, post_ok, retry_until,
    wait_logged,
};
use kthena_e2e::{Answer, Env, chat, client, free_port};

const SMALL: &str = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B";
const BIG: &str = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B";

/// The walkthrough's ModelRoutes (examples/modelroute-*.yaml).
const ROUTES: [&str; 4] = [
    "deepseek-simple",
    "deepseek-lora",
    "deepseek-subset",
    "deepseek-multi-models",
];

/// The walkthrough's ModelServers and how many engine Pods each selects.
const SERVERS: [(&str, u64); 4] = [
    ("deepseek-r1-1-5b", 2),
    ("deepseek-r1-7b", 1),
    ("deepseek-r1-1-5b-v1", 1),
    ("deepseek-r1-1-5b-v2", 1),
];

/// Starts a mock engine as Pod `name` with `labels` and extra mock flags, and creates that Pod
/// (Running, Ready, on the mock's IP) in the cluster.
fn engine(cluster: &Cluster, env: &mut Env, name: &str, labels: &[(&str, &str)], flags: &[&str]) {
    let ip = env.mock(name, labels, flags);
    cluster.engine_pod(name, labels, &ip);
}

/// The walkthrough's world (examples/): three engine Pods labelled as
/// examples/pods-standalone.yaml, the three ModelServer files and four ModelRoute files.
fn walkthrough(cluster: &Cluster) -> Env {
    let mut env = Env::new();
    engine(
        cluster,
        &mut env,
        "small-v1",
        &[("app", "deepseek-r1-1-5b"), ("version", "v1")],
        &["--served-model-name", SMALL],
    );
    engine(
        cluster,
        &mut env,
        "small-v2",
        &[("app", "deepseek-r1-1-5b"), ("version", "v2")],
        &["--served-model-name", SMALL],
    );
    engine(
        cluster,
        &mut env,
        "big",
        &[("app", "deepseek-r1-7b")],
        &["--served-model-name", BIG, "--lora", "lora-A,lora-B"],
    );
    let port = env.port.expect("mock port").to_string();
    for f in [
        "modelserver-deepseek-r1-1-5b.yaml",
        "modelserver-deepseek-r1-7b.yaml",
        "modelserver-deepseek-r1-1-5b-canary.yaml",
    ] {
        cluster.example(f, &[("port: 8000", format!("port: {port}"))]);
    }
    for f in [
        "modelroute-simple.yaml",
        "modelroute-lora.yaml",
        "modelroute-subset.yaml",
        "modelroute-multi-models.yaml",
    ] {
        cluster.example(f, &[]);
    }
    env
}

/// The generated text of a chat or a completions answer.
fn content(answer: &Answer) -> String {
    let choice = &answer.json()["choices"][0];
    choice["message"]["content"]
        .as_str()
        .or_else(|| choice["text"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn simulated(model: &str) -> String {
    format!("This is simulated message from {model}!")
}

/// A completions request body for `model`.
fn completion(model: &str) -> String {
    serde_json::json!({"model": model, "prompt": "hello"}).to_string()
}

/// Waits until the walkthrough's ModelRoutes are Accepted with ResolvedRefs and its
/// ModelServers Ready with their number of ready endpoints, each status describing the
/// object's current generation.
fn walkthrough_statuses_written(cluster: &Cluster) {
    let kube = &cluster.kube;
    let routes: Vec<String> = ROUTES.iter().map(|r| format!("modelroute/{r}")).collect();
    kube.wait_condition("Accepted", &routes);
    kube.wait_condition("ResolvedRefs", &routes);
    for route in &routes {
        let mr = kube.get_json(route);
        let generation = &mr["metadata"]["generation"];
        assert_eq!(&mr["status"]["observedGeneration"], generation, "{mr}");
        let accepted = condition(&mr["status"]["conditions"], "Accepted");
        assert_eq!(&accepted["observedGeneration"], generation, "{mr}");
    }
    let servers: Vec<String> = SERVERS
        .iter()
        .map(|(s, _)| format!("modelserver/{s}"))
        .collect();
    kube.wait_condition("Ready", &servers);
    for (server, ready) in SERVERS {
        retry_until(
            &format!("ModelServer {server} reports {ready} ready endpoints"),
            TIMEOUT,
            || {
                let ms = kube.get_json(&format!("modelserver/{server}"));
                let status = &ms["status"];
                let generation = &ms["metadata"]["generation"];
                let cond = condition(&status["conditions"], "Ready");
                let ok = status["readyEndpoints"] == ready
                    && cond["status"] == "True"
                    && &cond["observedGeneration"] == generation
                    && &status["observedGeneration"] == generation;
                ok.then_some(()).ok_or_else(|| ms.to_string())
            },
        );
    }
}

/// The `resourceVersion` of every ModelRoute and ModelServer of the namespace.
fn resource_versions(cluster: &Cluster) -> BTreeMap<String, String> {
    let list = cluster.kube.get_json("modelroutes,modelservers");
    list["items"]
        .as_array()
        .expect("a List")
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                ),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[actix_rt::test]
#[ignore = "needs an API server: KUBECONFIG=... cargo test -p kthena-e2e --test cluster -- --ignored --test-threads=1"]
async fn four_routing_scenarios_answer_and_modelroutes_are_accepted() {
    let Some(cluster) = Cluster::start(
        "four_routing_scenarios_answer_and_modelroutes_are_accepted",
        false,
    ) else {
        return;
    };
    let engines = walkthrough(&cluster);
    let router = cluster.router(free_port(), &[], "info");
    let c = client();
    let url = router.url("/v1/chat/completions");

    // Simple: one model, one ModelServer (which rewrites the model to its Hugging Face id).
    let simple = eventually("deepseek-r1 is served", TIMEOUT, || {
        post_ok(&c, &url, &[], chat("deepseek-r1"))
    })
    .await;
    assert_eq!(content(&simple), simulated(SMALL));

    // LoRA: the adapter name is kept, the 7B engine answers.
    let lora = eventually("lora-A is served", TIMEOUT, || {
        post_ok(&c, &url, &[], chat("lora-A"))
    })
    .await;
    assert_eq!(lora.pod.as_deref(), Some("big"), "{}", lora.body);
    assert_eq!(content(&lora), simulated("lora-A"));

    // Multi-models: a header picks the 7B pool, anything else the 1.5B pool.
    let premium = eventually("deepseek-multi is served", TIMEOUT, || {
        post_ok(
            &c,
            &url,
            &[("user-type", "premium")],
            chat("deepseek-multi"),
        )
    })
    .await;
    assert_eq!(premium.pod.as_deref(), Some("big"), "{}", premium.body);
    assert_eq!(content(&premium), simulated(BIG));
    for headers in [vec![], vec![("user-type", "free")]] {
        let other = post_ok(&c, &url, &headers, chat("deepseek-multi"))
            .await
            .unwrap_or_else(|e| panic!("{headers:?}: {e}"));
        assert_eq!(content(&other), simulated(SMALL), "{headers:?}");
    }

    // The router wrote status: routes Accepted, servers Ready, at the current generation.
    walkthrough_statuses_written(&cluster);
    let table = cluster.kube.run(&["get", "mr,ms"]);
    eprintln!("{table}");
    for column in ["MODEL", "ACCEPTED", "ENGINE", "PORT", "READY"] {
        assert!(table.contains(column), "no {column} column:\n{table}");
    }
    let row = |name: &str| {
        table
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|n| n.ends_with(name))
            })
            .unwrap_or_else(|| panic!("no row {name}:\n{table}"))
            .to_owned()
    };
    let simple_row = row("/deepseek-simple");
    assert!(
        simple_row.contains(" deepseek-r1 ") && simple_row.contains(" True "),
        "{simple_row}"
    );
    let server_row = row("/deepseek-r1-1-5b");
    let port = engines.port.expect("mock port").to_string();
    assert!(
        server_row.contains(" vLLM ") && server_row.contains(&format!(" {port} ")),
        "{server_row}"
    );
    assert!(
        server_row.split_whitespace().nth(3) == Some("2"),
        "READY should be 2: {server_row}"
    );

    // Subset: exactly 70/30 over 100 consecutive requests.
    let want = BTreeMap::from([("small-v1".to_owned(), 70), ("small-v2".to_owned(), 30)]);
    exact_split(
        &router,
        100,
        &want,
        || async {
            post_ok(&c, &url, &[], chat("deepseek-r1-canary"))
                .await
                .unwrap_or_else(|e| panic!("deepseek-r1-canary: {e}"))
        },
        |a| a.pod.clone().unwrap_or_default(),
    )
    .await;
}

#[actix_rt::test]
#[ignore = "needs an API server: KUBECONFIG=... cargo test -p kthena-e2e --test cluster -- --ignored --test-threads=1"]
async fn two_gateways_same_model_name_on_two_ports() {
    let Some(cluster) = Cluster::start("two_gateways_same_model_name_on_two_ports", true) else {
        return;
    };
    let mut engines = Env::new();
    engine(
        &cluster,
        &mut engines,
        "small",
        &[("app", "deepseek-r1-1-5b")],
        &["--served-model-name", SMALL],
    );
    engine(
        &cluster,
        &mut engines,
        "big",
        &[("app", "deepseek-r1-7b")],
        &["--served-model-name", BIG],
    );
    let port = engines.port.expect("mock port");
    for f in [
        "modelserver-deepseek-r1-1-5b.yaml",
        "modelserver-deepseek-r1-7b.yaml",
    ] {
        cluster.example(f, &[("port: 8000", format!("port: {port}"))]);
    }
    let second = free_port();
    cluster.example(
        "gateway-8081.yaml",
        &[("port: 8081", format!("port: {second}"))],
    );
    // The router creates Gateway `default` itself; its listener is named `default`, not
    // `http` as in examples/gateway.yaml, which this test leaves out.
    cluster.example(
        "modelroute-gateway.yaml",
        &[("sectionName: http", "sectionName: default".to_owned())],
    );
    cluster.example("modelroute-gateway-8081.yaml", &[]);
    let first = free_port();
    let router = cluster.router(first, &["--enable-gateway-api"], "info");
    wait_logged(
        &router.process,
        "default GatewayClass and Gateway present",
        1,
    );

    let c = client();
    for (port, pod, model) in [(first, "small", SMALL), (second, "big", BIG)] {
        let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
        let a = eventually(
            &format!("deepseek-r1-gw is served on port {port}"),
            TIMEOUT,
            || post_ok(&c, &url, &[], chat("deepseek-r1-gw")),
        )
        .await;
        assert_eq!(a.pod.as_deref(), Some(pod), "port {port}: {}", a.body);
        assert_eq!(content(&a), simulated(model), "port {port}");
    }

    let kube = &cluster.kube;
    let gateways = [
        "gateways.gateway.networking.k8s.io/default",
        "gateways.gateway.networking.k8s.io/gateway-8081",
    ];
    kube.wait_condition("Programmed", &gateways);
    kube.wait_condition(
        "Accepted",
        &[
            "modelroute/deepseek-gateway",
            "modelroute/deepseek-gateway-8081",
        ],
    );
    let table = kube.run(&["get", "gateways.gateway.networking.k8s.io"]);
    eprintln!("{table}");
    assert!(table.contains("PROGRAMMED"), "{table}");
    for name in ["default", "gateway-8081"] {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no Gateway {name}:\n{table}"));
        assert!(
            row.split_whitespace().any(|w| w == "True"),
            "{name} not Programmed: {row}"
        );
    }
    for gateway in gateways {
        retry_until(
            &format!("{gateway} counts its attached route"),
            TIMEOUT,
            || {
                let gw = kube.get_json(gateway);
                let listeners = gw["status"]["listeners"].as_array().cloned();
                let attached = listeners.is_some_and(|ls| {
                    !ls.is_empty()
                        && ls
                            .iter()
                            .all(|l| l["attachedRoutes"].as_u64().is_some_and(|n| n >= 1))
                });
                attached
                    .then_some(())
                    .ok_or_else(|| gw["status"].to_string())
            },
        );
    }
}

#[actix_rt::test]
#[ignore = "needs an API server: KUBECONFIG=... cargo test -p kthena-e2e --test cluster -- --ignored --test-threads=1"]
async fn httproute_to_inference_pool_and_inference_model_split() {
    let Some(cluster) = Cluster::start(
        "httproute_to_inference_pool_and_inference_model_split",
        true,
    ) else {
        return;
    };
    let mut engines = Env::new();
    engine(
        &cluster,
        &mut engines,
        "small-v1",
        &[("app", "deepseek-r1-1-5b"), ("version", "v1")],
        &["--served-model-name", SMALL],
    );
    engine(
        &cluster,
        &mut engines,
        "big",
        &[("app", "deepseek-r1-7b")],
        &[
            "--served-model-name",
            "deepseek-r1-7b",
            "--lora",
            "lora-A,lora-B",
        ],
    );
    let mock = engines.port.expect("mock port");
    let port = free_port();
    // Gateway `default` with the listener `http` that examples/httproute.yaml names, on the
    // router's port; applied before the router starts, so the router leaves it as it is.
    cluster.example("gateway.yaml", &[("port: 8080", format!("port: {port}"))]);
    cluster.example(
        "inferencepool.yaml",
        &[
            ("number: 8000", format!("number: {mock}")),
            (
                "targetPortNumber: 8000",
                format!("targetPortNumber: {mock}"),
            ),
        ],
    );
    cluster.example("httproute.yaml", &[]);
    cluster.example("inferencemodel.yaml", &[]);
    let router = cluster.router(
        port,
        &[
            "--enable-gateway-api",
            "--enable-gateway-api-inference-extension",
        ],
        "info",
    );
    let c = client();
    let url = router.url("/v1/completions");

    // No ModelRoute serves these models: the HTTPRoute sends them to the InferencePools.
    let small = eventually("the v1 InferencePool serves", TIMEOUT, || {
        post_ok(&c, &url, &[], completion(SMALL))
    })
    .await;
    assert_eq!(small.pod.as_deref(), Some("small-v1"), "{}", small.body);
    assert_eq!(content(&small), simulated(SMALL));
    let big = eventually("the v1alpha2 InferencePool serves", TIMEOUT, || {
        post_ok(&c, &url, &[], completion("deepseek-r1-7b"))
    })
    .await;
    assert_eq!(big.pod.as_deref(), Some("big"), "{}", big.body);

    let kube = &cluster.kube;
    retry_until(
        "HTTPRoute deepseek-inference is Accepted with ResolvedRefs by our controller",
        TIMEOUT,
        || {
            let route = kube.get_json("httproutes.gateway.networking.k8s.io/deepseek-inference");
            let parent = &route["status"]["parents"][0];
            let ok = parent["controllerName"] == "volcano.sh/kthena-router"
                && condition(&parent["conditions"], "Accepted")["status"] == "True"
                && condition(&parent["conditions"], "ResolvedRefs")["status"] == "True";
            ok.then_some(()).ok_or_else(|| route["status"].to_string())
        },
    );
    kube.wait_condition(
        "Accepted",
        &["inferencemodels.inference.networking.x-k8s.io/deepseek-r1-lora"],
    );

    // The InferenceModel splits deepseek-r1-lora exactly 50/50 over its two adapters.
    let want = BTreeMap::from([(simulated("lora-A"), 50), (simulated("lora-B"), 50)]);
    exact_split(
        &router,
        100,
        &want,
        || async {
            let a = post_ok(&c, &url, &[], completion("deepseek-r1-lora"))
                .await
                .unwrap_or_else(|e| panic!("deepseek-r1-lora: {e}"));
            assert_eq!(a.pod.as_deref(), Some("big"), "{}", a.body);
            a
        },
        content,
    )
    .await;
}

#[actix_rt::test]
#[ignore = "needs an API server: KUBECONFIG=... cargo test -p kthena-e2e --test cluster -- --ignored --test-threads=1"]
async fn status_is_not_rewritten_when_nothing_changes() {
    let Some(cluster) = Cluster::start("status_is_not_rewritten_when_nothing_changes", false)
    else {
        return;
    };
    let _engines = walkthrough(&cluster);
    // A Pod no ModelServer selects: changing its labels rebuilds the configuration, and the
    // statuses computed from it are the same.
    cluster
        .kube
        .create_pod("bystander", &[("app", "bystander")]);
    // Status is checked again every second; the writer logs each full pass at debug level.
    let router = cluster.router(
        free_port(),
        &["--status-resync", "1s"],
        "info,kthena_operator::status_writer=debug",
    );
    let c = client();
    let url = router.url("/v1/chat/completions");
    eventually("deepseek-r1 is served", TIMEOUT, || {
        post_ok(&c, &url, &[], chat("deepseek-r1"))
    })
    .await;
    walkthrough_statuses_written(&cluster);

    let full_passes = || {
        router
            .process
            .lines_with("status pass done")
            .into_iter()
            .filter(|l| l.contains("full=true"))
            .collect::<Vec<_>>()
    };
    let wait_full_passes = |count: usize| {
        retry_until(&format!("{count} full status passes"), TIMEOUT, || {
            let n = full_passes().len();
            (n >= count).then_some(()).ok_or(format!("{n} so far"))
        })
    };
    let touch = |value: &str| {
        let rebuilt = router.process.lines_with(REBUILT).len();
        cluster.kube.run(&[
            "label",
            "pod/bystander",
            &format!("e2e-touch={value}"),
            "--overwrite",
        ]);
        wait_logged(&router.process, REBUILT, rebuilt + 1);
    };

    // Settle: one rebuild and a full pass after it, then take the baseline.
    touch("1");
    wait_full_passes(full_passes().len() + 1);
    let before = resource_versions(&cluster);
    assert_eq!(before.len(), ROUTES.len() + SERVERS.len(), "{before:?}");
    let passes = full_passes().len();

    touch("2");
    wait_full_passes(passes + 2);
    let after = resource_versions(&cluster);
    assert_eq!(
        before, after,
        "a status was rewritten although nothing it depends on changed"
    );
    for line in &full_passes()[passes..] {
        assert!(line.contains("written: 0"), "{line}");
    }
}

/// Deletes the ValidatingWebhookConfiguration a test registered (cluster-scoped, so the
/// namespace cleanup does not), also when the test fails.
struct WebhookRegistration {
    kube: kthena_e2e::cluster::Kube,
    name: String,
}

impl Drop for WebhookRegistration {
    fn drop(&mut self) {
        let _ = self.kube.try_run(
            &[
                "delete",
                "validatingwebhookconfiguration",
                &self.name,
                "--ignore-not-found",
            ],
            None,
        );
    }
}

/// The API server calls the router's webhook (registered with a URL on 127.0.0.1, so this
/// test needs an API server on this machine, like the bare one of the release check):
/// `kubectl apply` of an invalid ModelRoute fails naming the field; a valid one is created.
#[actix_rt::test]
#[ignore = "needs an API server: KUBECONFIG=... cargo test -p kthena-e2e --test cluster -- --ignored --test-threads=1"]
async fn kubectl_apply_of_an_invalid_route_is_refused_by_the_webhook() {
    let Some(cluster) = Cluster::start(
        "kubectl_apply_of_an_invalid_route_is_refused_by_the_webhook",
        false,
    ) else {
        return;
    };
    let ns = cluster.kube.namespace().to_owned();
    // Manual certificate mode: a certificate for 127.0.0.1, given as files.
    let issued =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("test certificate");
    let dir = std::env::temp_dir().join(format!("kthena-e2e-webhook-{ns}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert, issued.cert.pem()).expect("cert");
    std::fs::write(&key, issued.key_pair.serialize_pem()).expect("key");
    let webhook_port = free_port().to_string();
    let router = cluster.router(
        free_port(),
        &[
            "--webhook-port",
            &webhook_port,
            "--webhook-tls-cert-file",
            cert.to_str().expect("utf-8"),
            "--webhook-tls-private-key-file",
            key.to_str().expect("utf-8"),
        ],
        "info",
    );
    router.process.wait_for("server=webhook");
    let ca_bundle = serde_json::to_value(k8s_openapi::ByteString(issued.cert.pem().into_bytes()))
        .expect("base64");
    let name = format!("kthena-e2e-{ns}");
    let _registration = WebhookRegistration {
        kube: cluster.kube.clone(),
        name: name.clone(),
    };
    cluster.kube.apply_yaml(
        &serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{
                "name": "validate-modelroute.volcano.sh",
                "clientConfig": {
                    "url": format!("https://127.0.0.1:{webhook_port}/validate/modelroute"),
                    "caBundle": ca_bundle,
                },
                "rules": [{
                    "apiGroups": ["networking.serving.volcano.sh"],
                    "apiVersions": ["v1alpha1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["modelroutes"],
                }],
                // Only this test's namespace: nothing else in the cluster is judged.
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "timeoutSeconds": 10,
                "admissionReviewVersions": ["v1"],
            }],
        })
        .to_string(),
    );
    let invalid = std::fs::read_to_string(
        kthena_e2e::cluster::repo_root().join("examples/invalid/modelroute-weight-101.yaml"),
    )
    .expect("invalid example")
    .replace("namespace: default", &format!("namespace: {ns}"));
    // The API server may take a moment to use a new webhook configuration: retry until the
    // denial comes (a create that got through before would be a failure).
    let message = retry_until("the webhook refuses weight 101", TIMEOUT, || match cluster
        .kube
        .try_run(&["create", "-f", "-"], Some(&invalid))
    {
        Ok(out) => panic!("an invalid ModelRoute was created: {out}"),
        Err(e) if e.contains("denied the request") => Ok(e),
        Err(e) => Err(e),
    });
    assert!(
        message.contains("spec.rules[0].targetModels[0].weight"),
        "{message}"
    );
    let valid = std::fs::read_to_string(
        kthena_e2e::cluster::repo_root().join("examples/modelroute-simple.yaml"),
    )
    .expect("example")
    .replace("namespace: default", &format!("namespace: {ns}"));
    cluster
        .kube
        .try_run(&["create", "-f", "-"], Some(&valid))
        .expect("a valid ModelRoute is created");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Uninstalls a Helm release (its ClusterRole, ClusterRoleBinding and webhook configuration
/// are cluster-scoped, so the namespace cleanup would not), also when the test fails.
struct HelmRelease {
    name: String,
    namespace: String,
}

impl Drop for HelmRelease {
    fn drop(&mut self) {
        match kthena_e2e::helm::run(&["uninstall", &self.name, "--namespace", &self.namespace]) {
            Ok(_) => eprintln!("cleanup: helm release {} uninstalled", self.name),
            Err(e) => eprintln!("cleanup: helm uninstall {}: {e}", self.name),
        }
    }
}

/// `helm install` of charts/kthena creates the router's objects with the RBAC the README
/// lists; our CRDs are established; once a router runs in `auto` mode (here locally, with
/// this test's credentials: no kubelet is needed), the chart's ValidatingWebhookConfiguration
/// carries the CA of the Secret it generated.
#[actix_rt::test]
#[ignore = "needs an API server: KUBECONFIG=... cargo test -p kthena-e2e --test cluster -- --ignored --test-threads=1"]
async fn helm_install_creates_the_objects_and_auto_mode_writes_the_ca_bundle() {
    let Some(cluster) = Cluster::start(
        "helm_install_creates_the_objects_and_auto_mode_writes_the_ca_bundle",
        false,
    ) else {
        return;
    };
    let ns = cluster.kube.namespace().to_owned();
    // The webhook judges this namespace only: the rest of the cluster is never blocked by a
    // webhook whose Pods (no kubelet) never run.
    let values = serde_json::json!({
        "networking": {"kthenaRouter": {
            "service": {"type": "ClusterIP"},
            "webhook": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}},
        }},
    });
    let values_file = std::env::temp_dir().join(format!("kthena-e2e-values-{ns}.json"));
    std::fs::write(&values_file, values.to_string()).expect("values file");
    let release = HelmRelease {
        name: "kthena".to_owned(),
        namespace: ns.clone(),
    };
    let chart = kthena_e2e::helm::chart_dir();
    let out = kthena_e2e::helm::run(&[
        "install",
        &release.name,
        chart.to_str().expect("utf-8"),
        "--namespace",
        &ns,
        "-f",
        values_file.to_str().expect("utf-8"),
    ])
    .unwrap_or_else(|e| panic!("helm install: {e}"));
    eprintln!("{out}");
    let _ = std::fs::remove_file(&values_file);

    cluster.kube.wait_condition(
        "Established",
        &[
            "crd/modelroutes.networking.serving.volcano.sh",
            "crd/modelservers.networking.serving.volcano.sh",
        ],
    );
    for object in [
        "deployment/kthena-router",
        "service/kthena-router",
        "service/kthena-router-metrics",
        "service/kthena-router-webhook",
        "serviceaccount/kthena-router",
        "role.rbac.authorization.k8s.io/kthena-router",
        "rolebinding.rbac.authorization.k8s.io/kthena-router",
        "clusterrole.rbac.authorization.k8s.io/kthena-router",
        "clusterrolebinding.rbac.authorization.k8s.io/kthena-router",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/kthena-router-validating-webhook",
    ] {
        cluster.kube.run(&["get", object, "-o", "name"]);
    }
    let bundles = |vwc: &serde_json::Value| -> Vec<Option<String>> {
        vwc["webhooks"]
            .as_array()
            .expect("webhooks")
            .iter()
            .map(|w| w["clientConfig"]["caBundle"].as_str().map(str::to_owned))
            .collect()
    };
    let vwc_name = "validatingwebhookconfiguration/kthena-router-validating-webhook";
    let before = bundles(&cluster.kube.get_json(vwc_name));
    assert_eq!(
        before,
        [None, None],
        "auto mode: no caBundle until the router writes it"
    );

    // The service account can do what the router does, and (when the API server enforces
    // RBAC) nothing else.
    let sa = format!("--as=system:serviceaccount:{ns}:kthena-router");
    let can = |args: &[&str]| -> bool {
        let mut all = vec!["auth", "can-i", sa.as_str()];
        all.extend(args);
        cluster.kube.try_run(&all, None).is_ok()
    };
    for allowed in [
        &[
            "watch",
            "modelroutes.networking.serving.volcano.sh",
            "--all-namespaces",
        ][..],
        &[
            "patch",
            "modelservers.networking.serving.volcano.sh",
            "--subresource=status",
            "--all-namespaces",
        ],
        &["list", "pods", "--all-namespaces"],
        &["update", "leases.coordination.k8s.io/kthena-router"],
        &["create", "secrets"],
        &["patch", "secrets/kthena-router-webhook-certs"],
        &[
            "patch",
            "validatingwebhookconfigurations/kthena-router-validating-webhook",
        ],
    ] {
        assert!(
            can(allowed),
            "the chart's service account cannot {allowed:?}"
        );
    }
    let enforced = cluster
        .kube
        .try_run(
            &[
                "auth",
                "can-i",
                &format!("--as=system:serviceaccount:{ns}:nobody"),
                "get",
                "pods",
            ],
            None,
        )
        .is_err();
    if enforced {
        for denied in [
            &["delete", "pods", "--all-namespaces"][..],
            &["get", "secrets", "--all-namespaces"],
            &["patch", "secrets/someone-elses"],
            &["patch", "validatingwebhookconfigurations/someone-elses"],
            &[
                "list",
                "gateways.gateway.networking.k8s.io",
                "--all-namespaces",
            ],
        ] {
            assert!(!can(denied), "the chart's service account can {denied:?}");
        }
    } else {
        eprintln!("this API server does not enforce RBAC: only the granted verbs were checked");
    }

    // A router in auto mode (no certificate files) generates the Secret and writes its CA.
    let router = cluster.router(
        free_port(),
        &[
            "--webhook-configuration-name",
            "kthena-router-validating-webhook",
            "--webhook-service-name",
            "kthena-router-webhook",
            "--cert-secret-name",
            "kthena-router-webhook-certs",
            "--webhook-tls-cert-file",
            "/nonexistent/kthena-e2e/tls.crt",
            "--webhook-tls-private-key-file",
            "/nonexistent/kthena-e2e/tls.key",
        ],
        "info",
    );
    router.process.wait_for("server=webhook");
    let ca = retry_until("the router writes the caBundle", TIMEOUT, || {
        let secret = cluster.kube.try_run(
            &["get", "secret/kthena-router-webhook-certs", "-o", "json"],
            None,
        )?;
        let secret: serde_json::Value = serde_json::from_str(&secret).map_err(|e| e.to_string())?;
        let ca = secret["data"]["ca.crt"]
            .as_str()
            .ok_or("no ca.crt in the Secret yet")?
            .to_owned();
        let now = bundles(&cluster.kube.get_json(vwc_name));
        if now.iter().all(|b| b.as_deref() == Some(ca.as_str())) {
            Ok(ca)
        } else {
            Err(format!("caBundles {now:?}"))
        }
    });
    assert!(!ca.is_empty());
    drop(release);
}
