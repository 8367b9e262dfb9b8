//! Priority and fair queueing before the scheduler (`--enable-fairness-scheduling`), end to
//! end: the router binary in front of a mock engine that takes a fixed time per request, so
//! the router's queue is where requests wait. The bounds compare waits to what FIFO order
//! would give in the same world (a multiple of the engine's service time), with margins
//! wide enough for a loaded machine.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use kthena_e2e::cluster::eventually;
use kthena_e2e::{Env, Router, client, free_port, get};

/// What one request got.
#[derive(Debug, Clone)]
struct Got {
    status: u16,
    dropped: Option<String>,
    body: String,
    took: Duration,
}

/// POSTs a chat request for `model` with `headers`; `timeout` is the client's.
async fn send(
    url: &str,
    model: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Got, String> {
    let c = awc::Client::builder().timeout(timeout).finish();
    let started = Instant::now();
    let mut req = c
        .post(url)
        .insert_header(("content-type", "application/json"));
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let mut resp = req
        .send_body(kthena_e2e::chat(model))
        .await
        .map_err(|e| e.to_string())?;
    let body = resp.body().await.map_err(|e| e.to_string())?;
    Ok(Got {
        status: resp.status().as_u16(),
        dropped: resp
            .headers()
            .get("x-llm-d-request-dropped-reason")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
        took: started.elapsed(),
    })
}

async fn metrics(router: &Router) -> String {
    get(&client(), &format!("http://{}/metrics", router.metrics))
        .await
        .body
}

/// The sum of the series of metric `name` whose labels contain every one of `labels`.
fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Waits until `sum(name, labels)` satisfies `ok`.
async fn until(router: &Router, name: &str, labels: &[&str], ok: impl Fn(f64) -> bool) {
    eventually(
        &format!("{name}{labels:?}"),
        Duration::from_secs(20),
        || async {
            let v = sum(&metrics(router).await, name, labels);
            if ok(v) { Ok(()) } else { Err(format!("{v}")) }
        },
    )
    .await;
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// Sends requests until one is answered 200 (the router has read the manifests).
async fn served(url: &str, model: &str, headers: &[(&str, &str)]) {
    eventually("the route serves", Duration::from_secs(20), || async {
        match send(url, model, headers, Duration::from_secs(10)).await {
            Ok(g) if g.status == 200 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// Engine service time: each request holds the engine's only slot this long.
const SERVICE: Duration = Duration::from_millis(250);

#[actix_rt::test]
async fn a_saturated_pool_serves_the_high_priority_at_once_and_sheds_the_low_one() {
    let mut env = Env::new();
    env.mock(
        "engine",
        &[("app", "chat")],
        &[
            "--served-model-name",
            "chat",
            "--time-to-first-token",
            "250ms",
            "--max-num-seqs",
            "1",
        ],
    );
    let mock_port = env.port.expect("a mock");
    let port = free_port();
    env.write(
        "world.yaml",
        &format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: default, namespace: default}}\n\
             spec:\n  gatewayClassName: kthena-router\n  listeners:\n  - {{name: http, port: {port}, protocol: HTTP}}\n---\n\
             apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {{name: pool, namespace: default}}\n\
             spec:\n  selector: {{matchLabels: {{app: chat}}}}\n  targetPorts: [{{number: {mock_port}}}]\n  \
             endpointPickerRef: {{name: pool-epp, port: {{number: 9002}}}}\n---\n\
             apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: chat, namespace: default}}\n\
             spec:\n  parentRefs: [{{name: default}}]\n  rules:\n  \
             - backendRefs: [{{group: inference.networking.k8s.io, kind: InferencePool, name: pool}}]\n---\n\
             apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceObjective\nmetadata: {{name: interactive, namespace: default}}\n\
             spec: {{priority: 10, poolRef: {{name: pool}}}}\n---\n\
             apiVersion: inference.networking.x-k8s.io/v1alpha2\nkind: InferenceObjective\nmetadata: {{name: batch, namespace: default}}\n\
             spec: {{priority: -1, poolRef: {{name: pool}}}}\n"
        ),
    );
    let port_flag = port.to_string();
    let router = env.router(&[
        "--enable-gateway-api",
        "--enable-gateway-api-inference-extension",
        "--port",
        &port_flag,
        "--enable-fairness-scheduling",
        "--fairness-max-concurrent",
        "1",
        "--fairness-max-queue-size",
        "16",
        "--fairness-queue-timeout",
        "30s",
    ]);
    let url = router.url("/v1/chat/completions");
    let low = [("x-gateway-inference-objective", "batch")];
    let high = [("x-llm-d-inference-objective", "interactive")];
    served(&url, "chat", &high).await;

    // 20 low-priority clients keep the queue (16) full: each sends again when answered, and
    // a refused one pauses 50 ms so it does not spin.
    let stop = Rc::new(Cell::new(false));
    let lows: Rc<RefCell<Vec<Got>>> = Rc::default();
    let mut producers = Vec::new();
    for _ in 0..20 {
        let (stop, lows, url) = (stop.clone(), lows.clone(), url.clone());
        producers.push(actix_rt::spawn(async move {
            while !stop.get() {
                let g = send(&url, "chat", &low, Duration::from_secs(60))
                    .await
                    .expect("the router answers");
                let refused = g.status == 429;
                lows.borrow_mut().push(g);
                if refused {
                    actix_rt::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    until(
        &router,
        "kthena_router_fairness_queue_size",
        &["priority=\"-1\""],
        |v| v >= 16.0,
    )
    .await;

    // High-priority requests, one after the other, into the saturated pool.
    let mut highs = Vec::new();
    for _ in 0..10 {
        let g = send(&url, "chat", &high, Duration::from_secs(60))
            .await
            .expect("answered");
        assert_eq!(g.status, 200, "{g:?}");
        highs.push(g.took);
    }
    stop.set(true);
    for p in producers {
        p.await.expect("producer");
    }

    let lows = lows.borrow().clone();
    let served_low: Vec<Duration> = lows
        .iter()
        .filter(|g| g.status == 200)
        .map(|g| g.took)
        .collect();
    let shed = lows.iter().filter(|g| g.status == 429).count();
    for g in lows.iter().filter(|g| g.status != 200) {
        assert_eq!(g.status, 429, "{g:?}");
        assert_eq!(g.dropped.as_deref(), Some("rejected-saturated"), "{g:?}");
    }
    let high_p99 = percentile(highs.clone(), 0.99);
    let low_median = percentile(served_low.clone(), 0.5);
    eprintln!(
        "high: p50 {:?} p99 {:?}; low: {} served, median {:?}; {} shed",
        percentile(highs.clone(), 0.5),
        high_p99,
        served_low.len(),
        low_median,
        shed
    );
    // FIFO would make each high request wait behind 16 low ones (16 × 250 ms = 4 s); strict
    // priority makes it wait at most for the one on the engine.
    assert!(high_p99 < SERVICE * 6, "high p99 {high_p99:?}");
    assert!(low_median > SERVICE * 8, "low median {low_median:?}");
    assert!(shed > 0, "no low-priority request was shed");
    let text = metrics(&router).await;
    // Some low requests were shed from the full queue for the high ones, as counted.
    assert!(
        sum(
            &text,
            "kthena_router_fairness_queue_rejected_total",
            &["priority=\"-1\"", "reason=\"rejected-saturated\""]
        ) >= shed as f64,
        "{text}"
    );
    assert_eq!(
        sum(
            &text,
            "kthena_router_fairness_queue_rejected_total",
            &["priority=\"10\""]
        ),
        0.0
    );
    // Each high request's wait was observed under its priority (plus the first one).
    assert_eq!(
        sum(
            &text,
            "kthena_router_fairness_queue_duration_seconds_count",
            &["priority=\"10\""]
        ),
        11.0,
        "{text}"
    );
    assert_eq!(sum(&text, "kthena_router_fairness_queue_size", &[]), 0.0);
    assert_eq!(
        sum(&text, "kthena_router_fairness_queue_inflight", &[]),
        0.0
    );
}

#[actix_rt::test]
async fn a_flooding_user_does_not_slow_another_users_requests() {
    let mut env = Env::new();
    env.engine(
        "engine",
        "m",
        &["--time-to-first-token", "250ms", "--max-num-seqs", "2"],
    );
    let router = env.router(&[
        "--enable-fairness-scheduling",
        "--fairness-max-concurrent",
        "2",
        "--fairness-max-queue-size",
        "100",
    ]);
    let url = router.url("/v1/chat/completions");
    let flood = [("x-gateway-inference-fairness-id", "flood")];
    let light = [("x-gateway-inference-fairness-id", "light")];
    served(&url, "m", &[]).await;
    let mut alone = Vec::new();
    for _ in 0..3 {
        alone.push(
            send(&url, "m", &light, Duration::from_secs(10))
                .await
                .expect("answered")
                .took,
        );
    }

    // One user sends 40 requests at once: 20 times what the engine runs together.
    let floods: Rc<RefCell<Vec<Got>>> = Rc::default();
    let mut flooding = Vec::new();
    for _ in 0..40 {
        let (floods, url) = (floods.clone(), url.clone());
        flooding.push(actix_rt::spawn(async move {
            let g = send(&url, "m", &flood, Duration::from_secs(60))
                .await
                .expect("answered");
            floods.borrow_mut().push(g);
        }));
    }
    // Once the flood has a backlog and has been charged for answers, the other user comes.
    until(&router, "kthena_router_fairness_queue_size", &[], |v| {
        v >= 30.0
    })
    .await;
    eventually("flood answers", Duration::from_secs(20), || async {
        let n = floods.borrow().len();
        if n >= 2 { Ok(()) } else { Err(format!("{n}")) }
    })
    .await;
    let mut meanwhile = Vec::new();
    for _ in 0..5 {
        let g = send(&url, "m", &light, Duration::from_secs(60))
            .await
            .expect("answered");
        assert_eq!(g.status, 200, "{g:?}");
        meanwhile.push(g.took);
    }
    for f in flooding {
        f.await.expect("flood request");
    }
    let floods = floods.borrow().clone();
    assert!(floods.iter().all(|g| g.status == 200), "{floods:?}");
    let flood_median = percentile(floods.iter().map(|g| g.took).collect(), 0.5);
    let light_max = meanwhile.iter().copied().max().expect("five");
    eprintln!(
        "light alone: max {:?}; light during the flood: max {:?}; flood median {:?}",
        alone.iter().max(),
        light_max,
        flood_median
    );
    // FIFO would put each of them behind the flood's backlog (30+ requests, two at a time:
    // ≥ 15 × 250 ms); fairness lets each wait at most for one of the engine's two slots.
    assert!(light_max < SERVICE * 5, "light max {light_max:?}");
    assert!(flood_median > SERVICE * 8, "flood median {flood_median:?}");
}

#[actix_rt::test]
async fn a_request_queued_too_long_gets_504_and_one_whose_client_left_frees_its_place() {
    let mut env = Env::new();
    env.engine("engine", "m", &["--time-to-first-token", "3s"]);
    let router = env.router(&[
        "--enable-fairness-scheduling",
        "--fairness-max-concurrent",
        "1",
        "--fairness-max-queue-size",
        "1",
        "--fairness-queue-timeout",
        "700ms",
    ]);
    let url = router.url("/v1/chat/completions");
    // The route serves (a request that waits is proof enough: it only waits on the engine).
    let busy = {
        let url = url.clone();
        actix_rt::spawn(async move { send(&url, "m", &[], Duration::from_secs(60)).await })
    };
    until(&router, "kthena_router_fairness_queue_inflight", &[], |v| {
        v == 1.0
    })
    .await;
    // A client that gives up while queued: its entry leaves the queue.
    let gone = send(&url, "m", &[], Duration::from_millis(300)).await;
    assert!(gone.is_err(), "{gone:?}");
    until(
        &router,
        "kthena_router_fairness_queue_cancelled_total",
        &[],
        |v| v == 1.0,
    )
    .await;
    until(&router, "kthena_router_fairness_queue_size", &[], |v| {
        v == 0.0
    })
    .await;
    // So the one place is free again: this one queues (no 429) and times out with Kthena's
    // 504, while one more finds the queue full.
    let waits = {
        let url = url.clone();
        actix_rt::spawn(async move { send(&url, "m", &[], Duration::from_secs(60)).await })
    };
    until(&router, "kthena_router_fairness_queue_size", &[], |v| {
        v == 1.0
    })
    .await;
    let full = send(&url, "m", &[], Duration::from_secs(10))
        .await
        .expect("answered");
    assert_eq!(full.status, 429, "{full:?}");
    assert_eq!(full.dropped.as_deref(), Some("rejected-saturated"));
    let timed_out = waits.await.expect("task").expect("answered");
    assert_eq!(timed_out.status, 504, "{timed_out:?}");
    assert_eq!(timed_out.dropped.as_deref(), Some("rejected-ttl-expired"));
    assert!(
        timed_out
            .body
            .contains("Request processing timed out in queue"),
        "{}",
        timed_out.body
    );
    assert!(
        timed_out.took >= Duration::from_millis(700),
        "{timed_out:?}"
    );
    let first = busy.await.expect("task").expect("answered");
    assert_eq!(first.status, 200, "{first:?}");
    let text = metrics(&router).await;
    assert_eq!(
        sum(
            &text,
            "kthena_router_fairness_queue_rejected_total",
            &["reason=\"rejected-ttl-expired\""]
        ),
        1.0,
        "{text}"
    );
    // The access log says why.
    let line = router.process.wait_for(" 504 ");
    assert!(line.contains("queue_timeout"), "{line}");
}
