//! The scheduler end to end: real router and mock engines on loopback, Kthena's plugin
//! expectations (its e2e: 3 Pods, 200 requests), LoRA placement, outlier ejection, hot
//! reload of the scheduler configuration and `POST /debug/explain`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kthena_e2e::{Env, Router, chat, client, post};
use serde_json::Value;

/// Scrape often so tests see engine state quickly.
const SCRAPE: &[&str] = &["--metrics-scrape-interval", "50ms"];

/// A scheduler configuration file beside (not inside) the env's manifest folder.
fn scheduler_file(env: &Env, yaml: &str) -> PathBuf {
    let path = env.dir.with_extension("scheduler.yaml");
    let tmp = env.dir.with_extension("scheduler.yaml.tmp");
    std::fs::write(&tmp, yaml).expect("writing the scheduler configuration");
    std::fs::rename(&tmp, &path).expect("renaming the scheduler configuration");
    path
}

/// A router scraping often, with the scheduler configuration `file` and `extra` flags.
fn scheduled(env: &Env, file: &std::path::Path, extra: &[&str]) -> Router {
    let file = file.to_str().expect("utf-8 temp path");
    env.router(&[SCRAPE, &["--scheduler-config", file], extra].concat())
}

/// A configuration with these filters and score plugins (weight 1) and `plugin_config`.
fn config(filters: &[&str], scores: &[&str], plugin_config: &str) -> String {
    let filters = filters.join(", ");
    let scores: String = scores
        .iter()
        .map(|s| format!("      - {{name: {s}, weight: 1}}\n"))
        .collect();
    format!(
        "scheduler:\n  pluginConfig:\n{plugin_config}  plugins:\n    Filter:\n      enabled: [{filters}]\n    Score:\n      enabled:\n{scores}"
    )
}

/// Three mock Pods `p0..p2` of ModelServer `s` (model `m`, route `m`), each with `flags[i]`.
fn three(flags: [&[&str]; 3]) -> Env {
    let mut env = Env::new();
    for (i, f) in flags.iter().enumerate() {
        let mut all = vec!["--served-model-name", "m"];
        all.extend_from_slice(f);
        env.mock(&format!("p{i}"), &[("app", "s")], &all);
    }
    env.model_server("s", "s", "");
    env.route("m", "m", "s");
    env
}

/// The endpoints of pool `pool` in the pods dump, by Pod name.
async fn endpoints(router: &Router, pool: &str) -> BTreeMap<String, Value> {
    let dump = router.debug("/debug/config_dump/pods").await.json();
    dump["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["pool"] == pool)
        .flat_map(|p| p["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            let name = e["pod"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            (name, e)
        })
        .collect()
}

/// Polls the pods dump until `ok` holds for pool `s`'s endpoints (at most 20 s).
async fn wait_for_engines(
    router: &Router,
    what: &str,
    ok: impl Fn(&BTreeMap<String, Value>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = endpoints(router, "model server: default/s").await;
        if ok(&e) {
            return;
        }
        // Paced by the dump's own round trip, bounded by the deadline.
        assert!(Instant::now() < deadline, "{what}: never true: {e:#?}");
    }
}

fn engine(e: &BTreeMap<String, Value>, pod: &str, field: &str) -> f64 {
    e.get(pod)
        .and_then(|p| p["engine"][field].as_f64())
        .unwrap_or(-1.0)
}

/// Sends `n` requests one after another, the `i`-th with body `body(i)`; every one must be
/// 200. Returns how many each Pod answered.
async fn spread_with(
    router: &Router,
    n: usize,
    body: impl Fn(usize) -> String,
) -> BTreeMap<String, usize> {
    let c = client();
    let mut seen = BTreeMap::new();
    for i in 0..n {
        let a = post(&c, &router.url("/v1/chat/completions"), &[], body(i)).await;
        assert_eq!(a.status, 200, "request {i}: {}", a.body);
        *seen.entry(a.pod.unwrap_or_default()).or_insert(0) += 1;
    }
    seen
}

/// [`spread_with`] sending `body` every time.
async fn spread(router: &Router, body: &str, n: usize) -> BTreeMap<String, usize> {
    spread_with(router, n, |_| body.to_owned()).await
}

/// [`spread_with`], each request with its own prompt (no prefix in common past the first few
/// bytes, so prefix-cache affinity plays no part).
async fn spread_distinct(router: &Router, model: &str, n: usize) -> BTreeMap<String, usize> {
    spread_with(router, n, |i| {
        serde_json::json!({"model": model, "messages": [{"role": "user", "content": format!("{i} question")}]})
            .to_string()
    })
    .await
}

/// Holds `n` long streaming requests open directly on the engine at `ip` (not through the
/// router) until the returned handles are dropped.
fn load_directly(
    env: &Env,
    ip: &str,
    n: usize,
    max_tokens: u32,
) -> Vec<actix_rt::task::JoinHandle<()>> {
    let url = format!(
        "http://{ip}:{}/v1/chat/completions",
        env.port.expect("a mock runs")
    );
    (0..n)
        .map(|_| {
            let url = url.clone();
            actix_rt::spawn(async move {
                let body = serde_json::json!({"model": "m", "stream": true, "max_tokens": max_tokens,
                    "messages": [{"role": "user", "content": "keep me busy"}]});
                let c = awc::Client::builder().timeout(Duration::from_secs(120)).finish();
                if let Ok(mut resp) = c.post(url).send_json(&body).await {
                    let _ = resp.body().limit(64 << 20).await;
                }
            })
        })
        .collect()
}

/// The router's `/metrics` text.
async fn metrics_text(router: &Router) -> String {
    kthena_e2e::get(&client(), &format!("http://{}/metrics", router.metrics))
        .await
        .body
}

/// The value of the first series line of `text` starting with `series` (-1 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

fn share(seen: &BTreeMap<String, usize>, pods: &[&str]) -> f64 {
    let total: usize = seen.values().sum();
    pods.iter()
        .map(|p| seen.get(*p).copied().unwrap_or(0))
        .sum::<usize>() as f64
        / total as f64
}

#[actix_rt::test]
async fn lora_requests_only_reach_pods_that_have_the_adapter() {
    let mut env = Env::new();
    env.mock(
        "with",
        &[("app", "s")],
        &["--served-model-name", "base", "--lora", "lora-A"],
    );
    env.mock("without", &[("app", "s")], &["--served-model-name", "base"]);
    env.model_server("s", "s", "");
    env.write(
        "mr.yaml",
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\nmetadata: {name: r, namespace: default}\n\
         spec:\n  modelName: base\n  loraAdapters: [lora-A]\n  rules:\n  - targetModels:\n    - modelServerName: s\n",
    );
    // Kthena's defaults, nothing configured: the built-in model rule keeps lora-A off `without`.
    let router = env.router(SCRAPE);
    wait_for_engines(&router, "both model lists known", |e| {
        e.values()
            .filter(|p| p["engine"]["models"].is_array())
            .count()
            == 2
    })
    .await;
    let seen = spread(&router, &chat("lora-A"), 100).await;
    assert_eq!(seen.get("with"), Some(&100), "{seen:?}");
    // The base model is served by both (which one is the scores' business).
    spread_distinct(&router, "base", 20).await;

    // lora-affinity as Kthena's e2e configures it: Filter lora-affinity, Score random.
    let file = scheduler_file(&env, &config(&["lora-affinity"], &["random"], ""));
    drop(router);
    let router = scheduled(&env, &file, &[]);
    wait_for_engines(&router, "both model lists known", |e| {
        e.values()
            .filter(|p| p["engine"]["models"].is_array())
            .count()
            == 2
    })
    .await;
    let seen = spread(&router, &chat("lora-A"), 200).await;
    assert_eq!(seen.get("without"), None, "{seen:?}");
    // An adapter nobody has: lora-affinity filters every Pod out, Kthena's 400.
    let a = post(
        &client(),
        &router.url("/v1/chat/completions"),
        &[],
        chat("lora-A").replace("lora-A", "base"),
    )
    .await;
    assert_eq!(a.status, 200);
    let metrics = kthena_e2e::get(&client(), &format!("http://{}/metrics", router.metrics))
        .await
        .body;
    assert!(
        metrics.contains("kthena_router_scheduler_plugin_duration_seconds_count{model=\"lora-A\",plugin=\"lora-affinity\",type=\"filter\"}"),
        "{metrics}"
    );
}

#[actix_rt::test]
async fn prefix_cache_keeps_a_repeated_prompt_on_one_pod() {
    let env = three([&[], &[], &[]]);
    let file = scheduler_file(&env, &config(&[], &["prefix-cache"], ""));
    let router = scheduled(&env, &file, &[]);
    let prompt = serde_json::json!({"model": "m", "messages": [
        {"role": "system", "content": "You are a helpful assistant. ".repeat(20)},
        {"role": "user", "content": "What is the capital of France?"}]})
    .to_string();
    spread(&router, &prompt, 30).await;
    let seen = spread(&router, &prompt, 200).await;
    let top = seen.values().max().copied().unwrap_or(0);
    assert!(top * 100 >= 90 * 200, "{seen:?}");
    // Kthena's prefix-cache metrics: one match ratio per request (the first a miss), and
    // the blocks held.
    let metrics = metrics_text(&router).await;
    let value = |series: &str| metric(&metrics, series);
    assert_eq!(
        value("kthena_router_prefix_cache_match_ratio_count{model=\"m\"}"),
        230.0,
        "{metrics}"
    );
    assert!(
        value("kthena_router_prefix_cache_match_ratio_bucket{model=\"m\",le=\"0\"}") >= 1.0,
        "{metrics}"
    );
    assert!(
        value("kthena_router_prefix_cache_match_ratio_sum{model=\"m\"}") >= 200.0,
        "{metrics}"
    );
    assert!(
        value("kthena_router_prefix_cache_entries ") >= 1.0,
        "{metrics}"
    );
}

#[actix_rt::test]
async fn least_request_and_gpu_usage_send_traffic_to_the_idle_pod() {
    // Engines that run one request at a time: direct load of long answers queues on p0, p1.
    let busy: &[&str] = &[
        "--max-num-seqs",
        "1",
        "--inter-token-latency",
        "50ms",
        "--tokens",
        "400",
    ];
    let env = three([busy, busy, &["--max-num-seqs", "1"]]);
    let file = scheduler_file(
        &env,
        &config(
            &["least-request"],
            &["least-request"],
            "  - name: least-request\n    args: {maxWaitingRequests: 1}\n",
        ),
    );
    let router = scheduled(&env, &file, &[]);
    let ips: Vec<String> = ["p0", "p1"].iter().map(|p| ip_of(&env, p)).collect();
    let _busy: Vec<_> = ips
        .iter()
        .flat_map(|ip| load_directly(&env, ip, 3, 400))
        .collect();
    wait_for_engines(&router, "p0, p1 queueing and p2 idle", |e| {
        engine(e, "p0", "waiting") >= 1.0
            && engine(e, "p1", "waiting") >= 1.0
            && engine(e, "p2", "waiting") == 0.0
    })
    .await;
    let seen = spread(&router, &chat("m"), 200).await;
    assert!(share(&seen, &["p2"]) >= 0.9, "{seen:?}");

    // gpu-usage: KV cache held by long requests on p0 and p1.
    drop(_busy);
    let held: &[&str] = &[
        "--kv-cache-blocks",
        "256",
        "--tokens",
        "1500",
        "--inter-token-latency",
        "20ms",
    ];
    let env = three([held, held, &["--kv-cache-blocks", "256"]]);
    let file = scheduler_file(&env, &config(&[], &["gpu-usage"], ""));
    let router = scheduled(&env, &file, &[]);
    let ips: Vec<String> = ["p0", "p1"].iter().map(|p| ip_of(&env, p)).collect();
    let _busy: Vec<_> = ips
        .iter()
        .flat_map(|ip| load_directly(&env, ip, 2, 1_500))
        .collect();
    wait_for_engines(&router, "p0, p1 caches used and p2's free", |e| {
        engine(e, "p0", "kvCacheUsage") >= 0.1
            && engine(e, "p1", "kvCacheUsage") >= 0.1
            && (0.0..0.05).contains(&engine(e, "p2", "kvCacheUsage"))
    })
    .await;
    let seen = spread(&router, &chat("m"), 200).await;
    assert!(share(&seen, &["p2"]) >= 0.9, "{seen:?}");
}

fn ip_of(env: &Env, pod: &str) -> String {
    let text = std::fs::read_to_string(env.dir.join(format!("pod-{pod}.yaml")))
        .expect("the Pod's manifest");
    text.split("podIP: ")
        .nth(1)
        .and_then(|t| t.lines().next())
        .expect("a podIP")
        .trim()
        .to_owned()
}

#[actix_rt::test]
async fn least_latency_prefers_the_fast_pods() {
    let slow: &[&str] = &[
        "--time-to-first-token",
        "150ms",
        "--inter-token-latency",
        "20ms",
    ];
    let env = three([&[], &[], slow]);
    let file = scheduler_file(
        &env,
        &config(
            &[],
            &["least-latency"],
            "  - name: least-latency\n    args: {TTFTTPOTWeightFactor: 0.5}\n",
        ),
    );
    let router = scheduled(&env, &file, &[]);
    // Prime every engine directly so each has latency figures.
    let c = client();
    for p in ["p0", "p1", "p2"] {
        let url = format!(
            "http://{}:{}/v1/chat/completions",
            ip_of(&env, p),
            env.port.expect("mock")
        );
        for _ in 0..3 {
            assert_eq!(post(&c, &url, &[], chat("m")).await.status, 200);
        }
    }
    wait_for_engines(&router, "latencies known, p2 slowest", |e| {
        let t = |p: &str, f: &str| engine(e, p, f);
        ["p0", "p1", "p2"]
            .iter()
            .all(|p| t(p, "ttftSeconds") >= 0.0 && t(p, "tpotSeconds") >= 0.0)
            && t("p2", "ttftSeconds") > t("p0", "ttftSeconds").max(t("p1", "ttftSeconds"))
    })
    .await;
    let seen = spread(&router, &chat("m"), 200).await;
    assert!(share(&seen, &["p0", "p1"]) >= 0.9, "{seen:?}");
}

#[actix_rt::test]
async fn random_spreads_evenly() {
    let env = three([&[], &[], &[]]);
    let file = scheduler_file(&env, &config(&[], &["random"], ""));
    let router = scheduled(&env, &file, &[]);
    let seen = spread(&router, &chat("m"), 600).await;
    for p in ["p0", "p1", "p2"] {
        let s = share(&seen, &[p]);
        assert!((1.0 / 3.0 - 0.1..=1.0 / 3.0 + 0.1).contains(&s), "{seen:?}");
    }
}

#[actix_rt::test]
async fn a_failing_pod_is_ejected_without_retries_and_never_seen_with_them() {
    let ejecting: &[&str] = &[
        "--outlier-consecutive-failures",
        "3",
        "--outlier-base-ejection",
        "2s",
    ];
    let env = three([&[], &[], &["--failure-rate", "1.0"]]);
    // least-request alone: sequential requests tie, so every healthy Pod takes turns (latency
    // scores would keep one fast Pod first, and a readmitted Pod might wait for load to show).
    let file = scheduler_file(&env, &config(&["least-request"], &["least-request"], ""));
    let router = scheduled(&env, &file, ejecting);
    let c = client();
    let url = router.url("/v1/chat/completions");
    let (mut errors, mut bad) = (0, 0);
    for i in 0..100 {
        let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": format!("{i}")}]});
        let a = post(&c, &url, &[], body.to_string()).await;
        if a.pod.as_deref() == Some("p2") {
            bad += 1;
        }
        if a.status != 200 {
            errors += 1;
        }
    }
    let metrics = kthena_e2e::get(&c, &format!("http://{}/metrics", router.metrics))
        .await
        .body;
    let ejections = metric(
        &metrics,
        "kthena_router_outlier_ejections_total{pool=\"default/s\"}",
    );
    assert!(ejections >= 1.0, "{metrics}");
    assert!(
        errors as f64 <= 3.0 * ejections,
        "{errors} errors, {ejections} ejections"
    );
    assert_eq!(errors, bad);
    eprintln!(
        "ejection: {errors} of 100 requests failed before p2 was ejected ({ejections} ejections)"
    );
    let line = router.process.wait_for(" ejected_pods=default/p2");
    assert!(line.contains("selected_pod=default/p2"), "{line}");

    // p2 recovers: it gets traffic again once its ejection ends.
    let control = format!(
        "http://{}:{}/mock/failure_rate",
        ip_of(&env, "p2"),
        env.port.expect("mock")
    );
    assert_eq!(
        post(&c, &control, &[], r#"{"rate": 0.0}"#).await.status,
        200
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0.. {
        let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": format!("again {i}")}]});
        let a = post(&c, &url, &[], body.to_string()).await;
        assert_eq!(a.status, 200, "{}", a.body);
        if a.pod.as_deref() == Some("p2") {
            break;
        }
        assert!(Instant::now() < deadline, "p2 never came back");
    }

    // With retries, no client sees the failing Pod's 500.
    let env = three([&[], &[], &["--failure-rate", "1.0"]]);
    env.model_server(
        "s",
        "s",
        "  trafficPolicy:\n    retry: {attempts: 2, retryInterval: 1ms}\n",
    );
    let router = env.router(&[SCRAPE, ejecting].concat());
    let seen = spread_distinct(&router, "m", 100).await;
    assert_eq!(seen.get("p2"), None, "{seen:?}");
}

/// Every endpoint failing: 100 concurrent requests with 3 retries each would be 400 upstream
/// attempts. The retry budget (20 % of the requests in flight, at least 3) lets only a share
/// of them retry; with the budget opened wide every request retries, so the budget is what
/// bounds the attempts. Clients see the engines' 500 either way.
#[actix_rt::test]
async fn a_retry_budget_bounds_the_attempts_when_every_endpoint_fails() {
    let fail: &[&str] = &["--failure-rate", "1.0"];
    let env = three([fail, fail, fail]);
    env.model_server(
        "s",
        "s",
        "  trafficPolicy:\n    retry: {attempts: 3, retryInterval: 200ms}\n",
    );
    let no_ejection: &[&str] = &["--outlier-consecutive-failures", "0"];
    let wide: &[&str] = &[
        "--retry-budget-percent",
        "100",
        "--retry-budget-min-concurrency",
        "1000",
    ];
    let mut attempts = Vec::new();
    for flags in [no_ejection.to_vec(), [no_ejection, wide].concat()] {
        let router = env.router(&flags);
        let c = client();
        let url = router.url("/v1/chat/completions");
        let answers =
            futures_util::future::join_all((0..100).map(|_| post(&c, &url, &[], chat("m")))).await;
        assert!(answers.iter().all(|a| a.status == 500), "{:?}", answers[0]);
        let text = metrics_text(&router).await;
        let series = |outcome: &str| {
            metric(
                &text,
                &format!(
                    "kthena_router_upstream_retries_total{{outcome=\"{outcome}\",pool=\"default/s\"}}"
                ),
            )
            .max(0.0)
        };
        attempts.push((100.0 + series("retried"), series("budget_exhausted")));
    }
    let (budgeted, refused) = attempts[0];
    eprintln!("retry budget: {attempts:?}");
    assert!(
        budgeted <= 200.0 && refused >= 50.0,
        "with the default budget: {budgeted} attempts, {refused} retries refused"
    );
    assert_eq!(attempts[1], (400.0, 0.0), "with the budget wide open");
}

#[actix_rt::test]
async fn a_new_scheduler_configuration_applies_under_load_and_a_bad_one_is_refused() {
    let env = three([&[], &[], &[]]);
    let file = scheduler_file(&env, &config(&[], &["prefix-cache"], ""));
    let router = scheduled(&env, &file, &["--scheduler-config-interval", "20ms"]);
    let c = client();
    let url = router.url("/v1/chat/completions");
    let mut stage = 0;
    let mut after_reload = 0;
    for i in 0..20_000 {
        let a = post(&c, &url, &[], chat("m")).await;
        assert_eq!(a.status, 200, "request {i} at stage {stage}: {}", a.body);
        match stage {
            0 if i == 50 => {
                scheduler_file(
                    &env,
                    "scheduler:\n  plugins:\n    Score:\n      enabled:\n      - {name: no-such-plugin}\n",
                );
                stage = 1;
            }
            1 if !router
                .process
                .lines_with("scheduler configuration rejected")
                .is_empty() =>
            {
                scheduler_file(&env, &config(&["least-request"], &["random"], ""));
                stage = 2;
            }
            2 if router
                .process
                .lines_with("scheduler configuration reloaded")
                .len()
                == 1 =>
            {
                stage = 3
            }
            3 => {
                after_reload += 1;
                if after_reload == 50 {
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(stage, 3, "the reload was never seen");
    let rejected = router
        .process
        .lines_with("scheduler configuration rejected");
    assert!(
        rejected[0].contains("unknown plugin \\\"no-such-plugin\\\"")
            || rejected[0].contains("no-such-plugin"),
        "{rejected:?}"
    );
    let metrics = kthena_e2e::get(&c, &format!("http://{}/metrics", router.metrics))
        .await
        .body;
    assert!(
        metrics.contains("plugin=\"random\",type=\"score\""),
        "{metrics}"
    );
}

#[actix_rt::test]
async fn explain_tells_which_pod_would_serve_and_why_without_sending_anything() {
    let env = three([&[], &[], &[]]);
    let router = env.router(&[SCRAPE, &["--access-log-format", "json"]].concat());
    wait_for_engines(&router, "engines scraped", |e| {
        e.len() == 3 && e.values().all(|p| p["engine"]["running"].is_number())
    })
    .await;
    let c = client();
    let p0_metrics = format!(
        "http://{}:{}/metrics",
        ip_of(&env, "p0"),
        env.port.expect("mock")
    );
    let before = kthena_e2e::get(&c, &p0_metrics).await.body;
    let a = post(
        &c,
        &format!("http://{}/debug/explain", router.debug),
        &[],
        chat("m"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let e = a.json();
    assert_eq!(e["route"], "default/m");
    assert_eq!(e["modelServer"], "default/s");
    assert_eq!(e["ranked"].as_array().map(Vec::len), Some(3), "{e:#}");
    let pods = e["pods"].as_array().expect("pods");
    assert_eq!(pods.len(), 3);
    for p in pods {
        for plugin in [
            "least-request",
            "gpu-usage",
            "least-latency",
            "prefix-cache",
        ] {
            assert!(
                p["scores"][plugin]["score"].is_number(),
                "{plugin} in {p:#}"
            );
        }
        assert!(p["dropped"].is_null());
    }
    let unknown = post(
        &c,
        &format!("http://{}/debug/explain", router.debug),
        &[],
        chat("nope"),
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    // Nothing reached an engine.
    let after = kthena_e2e::get(&c, &p0_metrics).await.body;
    // A request sent for real logs the chosen Pod's scores (JSON access log).
    assert_eq!(
        post(&c, &router.url("/v1/chat/completions"), &[], chat("m"))
            .await
            .status,
        200
    );
    let line = router.process.wait_for("\"scheduler_scores\"");
    let logged: Value =
        serde_json::from_str(line.trim_start_matches(|ch| ch != '{')).expect("a JSON line");
    for plugin in [
        "least-request",
        "gpu-usage",
        "least-latency",
        "prefix-cache",
    ] {
        assert!(
            logged["scheduler_scores"][plugin].is_number(),
            "{plugin} in {line}"
        );
    }
    let count = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("vllm:e2e_request_latency_seconds_count"))
            .map(str::to_owned)
    };
    assert_eq!(count(&before), count(&after));
}
