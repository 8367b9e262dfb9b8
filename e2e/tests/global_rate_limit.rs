//! Global token rate limits (`spec.rateLimit.global.redis`) on a real `redis-server`: the
//! script decides as the local buckets do, replicas share one budget, a Redis missing at the
//! start or lost later is handled as Kthena does, and the router reconnects by itself.
//!
//! The requests are completions whose prompt is token ids (`[1, 2, 3]`): the router's
//! estimate and the mock engine's count are both 3, so settling changes nothing and the
//! budget's count of admitted requests is exact (30 input tokens an hour: ten requests; the
//! refill over a test's few seconds is under a token).

use std::time::{Duration, Instant};

use kthena_core::rate_limit::{
    ModelLimit, REDIS_EXPIRY_MARGIN_SECS, REDIS_SCRIPT, redis_admit_args, redis_decision,
    redis_keys, redis_settle_args,
};
use kthena_core::{RateLimit, RateUnit};
use kthena_e2e::cluster::eventually;
use kthena_e2e::redis::RedisServer;
use kthena_e2e::{Answer, Env, Router, client, free_port, get, post};

/// Ten requests of [`BODY`] fit in it.
const BUDGET: u32 = 30;
const PER_REQUEST: u32 = 3;
const BODY: &str = r#"{"model":"m","prompt":[1,2,3],"max_tokens":2}"#;
const WITHIN: Duration = Duration::from_secs(20);

/// An engine for model `m` and ModelRoute `name` for `m` with a global input budget in the
/// Redis at `address`, and `rule` (YAML of one rule's extra fields, e.g. a header match).
fn world(address: &str) -> Env {
    let mut env = Env::new();
    env.mock(
        "engine",
        &[("app", "engine")],
        &["--served-model-name", "m"],
    );
    env.model_server("engine", "engine", "");
    env.write("mr-m.yaml", &global_route("m", address, ""));
    env
}

fn global_route(name: &str, address: &str, model_match: &str) -> String {
    format!(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {{name: {name}, namespace: default}}\nspec:\n  modelName: m\n  \
         rules:\n  - {model_match}targetModels:\n    - modelServerName: engine\n  \
         rateLimit:\n    inputTokensPerUnit: {BUDGET}\n    unit: hour\n    \
         global: {{redis: {{address: \"{address}\"}}}}\n"
    )
}

async fn send(router: &Router, headers: &[(&str, &str)]) -> Answer {
    post(&client(), &router.url("/v1/completions"), headers, BODY).await
}

async fn metrics(router: &Router) -> String {
    get(&client(), &format!("http://{}/metrics", router.metrics))
        .await
        .body
}

/// The value of the sample `line` (a metric name with its labels) in `text`, 0 when absent.
fn sample(text: &str, line: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Waits until `router`'s client of the Redis at `address` is connected.
async fn connected(router: &Router, address: &str) {
    let line = format!("kthena_router_rate_limit_redis_connected{{address=\"{address}\"}}");
    eventually("the router's Redis client connected", WITHIN, || async {
        let m = metrics(router).await;
        if sample(&m, &line) == 1.0 {
            Ok(())
        } else {
            Err(m
                .lines()
                .filter(|l| l.contains("redis"))
                .collect::<Vec<_>>()
                .join("\n"))
        }
    })
    .await;
}

/// A refusal of the global budget: 429 with Kthena's text.
fn assert_refused(a: &Answer) {
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.body.contains("rate limit"), "{}", a.body);
    assert!(
        a.body.contains("input token rate limit exceeded"),
        "{}",
        a.body
    );
}

/// Sends requests to `routers` in turn until one is refused (at most `most`); the count of
/// 200s before it and the refusal.
async fn admitted_until_refused(
    routers: &[&Router],
    headers: &[&[(&str, &str)]],
    most: usize,
) -> (usize, Answer) {
    for i in 0..most {
        let a = send(routers[i % routers.len()], headers[i % headers.len()]).await;
        match a.status {
            200 => {}
            429 => return (i, a),
            s => panic!("request {i}: {s} {}", a.body),
        }
    }
    panic!("no refusal in {most} requests")
}

/// The script is the Redis form of the local buckets: one sequence of admits, settles, limit
/// changes and waits, run through `ModelLimit` and through the script with the same clock,
/// gets the same decisions (with the same Retry-After), leaves the same tokens, and every
/// key expires once its bucket would be full again.
#[test]
fn the_redis_script_decides_as_the_local_buckets() {
    let redis = RedisServer::start();
    let mut con = redis::Client::open(format!("redis://{}/", redis.address()))
        .and_then(|c| c.get_connection())
        .expect("connected to the test's redis-server");
    let script = redis::Script::new(REDIS_SCRIPT);
    let limit = |input: Option<u32>, output: Option<u32>, unit| RateLimit {
        input_tokens_per_unit: input,
        output_tokens_per_unit: output,
        unit,
        global_redis_address: Some(redis.address()),
        limit_by: kthena_core::LimitBy::Model,
    };
    let t0 = Instant::now();
    let mut local: Option<ModelLimit> = None;
    let mut decisions = 0;
    // A small LCG: the same pseudo-random sequence every run.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut now = 0.0f64;
    let mut current = limit(Some(100), Some(40), RateUnit::Minute);
    for step in 0..400 {
        now += [0.0, 0.25, 1.0, 7.5, 45.0][next(5) as usize];
        if step % 97 == 96 {
            // A changed limit, as a ModelRoute edit.
            current = match next(3) {
                0 => limit(Some(50), Some(40), RateUnit::Minute),
                1 => limit(Some(100), None, RateUnit::Second),
                _ => limit(Some(100), Some(40), RateUnit::Minute),
            };
        }
        let at = t0 + Duration::from_secs_f64(now);
        let m = local.get_or_insert_with(|| ModelLimit::new(&current, at));
        m.update(&current, at);
        let keys = redis_keys("m");
        let input = next(60);
        let want = m.admit(input, at);
        let (code, tokens): (i64, String) = script
            .key(&keys[0])
            .key(&keys[1])
            .arg(redis_admit_args(&current, input, Some(now)))
            .invoke(&mut con)
            .expect("the script answers");
        let got = redis_decision(code, tokens.parse().ok(), &current, input)
            .unwrap_or_else(|| panic!("step {step}: answer {code} {tokens:?}"));
        assert_eq!(got, want, "step {step} at {now} s: admit {input}");
        decisions += 1;
        if want.is_ok() && next(4) != 0 {
            // Settle with a count off the estimate both ways, and a long answer at times.
            let prompt = (input + next(30)).saturating_sub(15);
            let completion = [0, 3, 20, 90][next(4) as usize];
            m.settle(input, prompt, completion, at);
            let (code, _): (i64, String) = script
                .key(&keys[0])
                .key(&keys[1])
                .arg(redis_settle_args(
                    &current,
                    input,
                    prompt,
                    completion,
                    Some(now),
                ))
                .invoke(&mut con)
                .expect("the script answers");
            assert_eq!(code, 0, "step {step}: settle");
        }
        // The same tokens left, and keys that go once they would read full anyway.
        let (want_in, want_out) = m.available(at);
        for (key, want, per_unit) in [
            (&keys[0], want_in, current.input_tokens_per_unit),
            (&keys[1], want_out, current.output_tokens_per_unit),
        ] {
            let (Some(want), Some(per_unit)) = (want, per_unit) else {
                continue;
            };
            let (tokens, ttl): (Option<f64>, i64) = redis::pipe()
                .hget(key, "tokens")
                .ttl(key)
                .query(&mut con)
                .expect("the key's state");
            let Some(tokens) = tokens else {
                continue;
            };
            assert_eq!(tokens, want, "step {step}: tokens of {key}");
            let per_second = f64::from(per_unit) / current.unit.duration().as_secs_f64();
            let full_in = ((f64::from(per_unit) - tokens) / per_second).ceil() as i64;
            let most = full_in.max(0) + REDIS_EXPIRY_MARGIN_SECS as i64;
            assert!(
                (1..=most).contains(&ttl),
                "step {step}: {key} expires in {ttl} s, full again in {full_in} s"
            );
        }
    }
    assert_eq!(decisions, 400);
}

/// Kthena's e2e runs three replicas: with one global budget they let through what it holds
/// once, not three times; the refusals are Kthena's, and counted where they happened.
#[actix_rt::test]
async fn three_routers_share_one_global_budget() {
    let redis = RedisServer::start();
    let env = world(&redis.address());
    let routers = [env.router(&[]), env.router(&[]), env.router(&[])];
    for r in &routers {
        connected(r, &redis.address()).await;
    }
    let all: Vec<&Router> = routers.iter().collect();
    let (admitted, refused) = admitted_until_refused(&all, &[&[]], 40).await;
    let fits = (BUDGET / PER_REQUEST) as usize;
    assert!(
        admitted.abs_diff(fits) <= 1,
        "{admitted} requests let through by three routers; the budget holds {fits}"
    );
    assert_refused(&refused);
    // Every router refuses now, not only the one that saw the budget run out.
    let mut refusals = 1;
    for r in &routers {
        assert_refused(&send(r, &[]).await);
        refusals += 1;
    }
    let mut counted = 0.0;
    for r in &routers {
        counted += sample(
            &metrics(r).await,
            r#"kthena_router_rate_limit_exceeded_total{limit_type="input_tokens",model="m",path="/v1/completions"}"#,
        );
    }
    assert_eq!(counted, f64::from(refusals));
    eprintln!("three routers: {admitted} admitted (budget {fits}), then {refusals} refused");
}

/// Kthena's fail-open at the start: while the Redis has never answered, the limit is not
/// enforced; once it answers, the same router enforces it, with no restart.
#[actix_rt::test]
async fn a_redis_unreachable_at_start_lets_requests_through_until_it_answers() {
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let env = world(&address);
    let router = env.router(&[]);
    let passed = 2 * (BUDGET / PER_REQUEST) as usize;
    for i in 0..passed {
        let a = send(&router, &[]).await;
        assert_eq!(a.status, 200, "request {i} with no Redis: {}", a.body);
    }
    let m = metrics(&router).await;
    assert!(
        sample(
            &m,
            r#"kthena_router_rate_limit_redis_errors_total{mode="not_connected"}"#
        ) >= passed as f64,
        "{m}"
    );
    router
        .process
        .wait_for("Redis unreachable; their limits are NOT enforced");

    let redis = RedisServer::on(port);
    connected(&router, &address).await;
    let (admitted, refused) = admitted_until_refused(&[&router], &[&[]], 40).await;
    let fits = (BUDGET / PER_REQUEST) as usize;
    assert!(
        admitted.abs_diff(fits) <= 1,
        "{admitted} admitted, {fits} fit"
    );
    assert_refused(&refused);
    drop(redis);
}

/// A Redis lost at request time: the default (`closed`, Kthena's) refuses with 429 and
/// Kthena's text, `--rate-limit-redis-failure-mode=open` lets requests through; both count
/// it. Back on the same address, the clients reconnect by themselves and the budget is
/// enforced again.
#[actix_rt::test]
async fn a_redis_lost_refuses_or_passes_by_the_flag_and_is_used_again_once_back() {
    let redis = RedisServer::start();
    let (port, address) = (redis.port, redis.address());
    let env = world(&address);
    let closed = env.router(&[]);
    let open = env.router(&["--rate-limit-redis-failure-mode", "open"]);
    for r in [&closed, &open] {
        connected(r, &address).await;
        assert_eq!(send(r, &[]).await.status, 200);
    }

    redis.stop();
    eventually("the closed router refuses", WITHIN, || async {
        let a = send(&closed, &[]).await;
        match a.status {
            429 => Ok(a),
            s => Err(format!("{s}: {}", a.body)),
        }
    })
    .await;
    assert_refused(&send(&closed, &[]).await);
    for _ in 0..(2 * BUDGET / PER_REQUEST) {
        let a = send(&open, &[]).await;
        assert_eq!(a.status, 200, "fail-open: {}", a.body);
    }
    let errors =
        |mode: &str| format!("kthena_router_rate_limit_redis_errors_total{{mode=\"{mode}\"}}");
    assert!(sample(&metrics(&closed).await, &errors("closed")) >= 2.0);
    assert!(sample(&metrics(&open).await, &errors("open")) >= 1.0);

    // Back (empty: a full budget). The closed router answers again...
    let redis = RedisServer::on(port);
    eventually("the closed router admits again", WITHIN, || async {
        let a = send(&closed, &[]).await;
        match a.status {
            200 => Ok(()),
            s => Err(format!("{s}: {}", a.body)),
        }
    })
    .await;
    // ... and the open router, which would let everything through without Redis, is
    // refused once the shared budget is spent: it uses Redis again.
    eventually("the open router's client reconnected", WITHIN, || async {
        send(&open, &[]).await;
        let m = metrics(&open).await;
        let line = format!("kthena_router_rate_limit_redis_connected{{address=\"{address}\"}}");
        if sample(&m, &line) == 1.0 {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    let (admitted, refused) =
        admitted_until_refused(&[&open], &[&[]], (BUDGET / PER_REQUEST) as usize + 1).await;
    assert_refused(&refused);
    eprintln!("after the restart the open router admitted {admitted} more before a refusal");
    drop(redis);
}

/// Kthena keys budgets by model name: two ModelRoutes of one `modelName` (here one per
/// header value) share one global budget.
#[actix_rt::test]
async fn two_model_routes_of_one_model_name_share_one_global_budget() {
    let redis = RedisServer::start();
    let env = world(&redis.address());
    for (name, tier) in [("m", "a"), ("m-b", "b")] {
        env.write(
            &format!("mr-{name}.yaml"),
            &global_route(
                name,
                &redis.address(),
                &format!("modelMatch: {{headers: {{x-tier: {{exact: {tier}}}}}}}\n    "),
            ),
        );
    }
    let router = env.router(&[]);
    connected(&router, &redis.address()).await;
    // Both routes answer (each only its header).
    for tier in ["a", "b"] {
        assert_eq!(send(&router, &[("x-tier", tier)]).await.status, 200);
    }
    let (admitted, refused) =
        admitted_until_refused(&[&router], &[&[("x-tier", "a")], &[("x-tier", "b")]], 40).await;
    let fits = (BUDGET / PER_REQUEST) as usize;
    assert!(
        (admitted + 2).abs_diff(fits) <= 1,
        "{} admitted over two routes, one budget of {fits}",
        admitted + 2
    );
    assert_refused(&refused);
    // The other route is refused too.
    assert_refused(&send(&router, &[("x-tier", "a")]).await);
    assert_refused(&send(&router, &[("x-tier", "b")]).await);
}

/// Kthena's window expectations, local and on Redis: with a budget per second, the requests
/// that fit pass, then 429 with "rate limit"; the budget refills, and a second later the whole
/// quota is there again (and no more than it, with what refilled while counting).
#[actix_rt::test]
async fn a_budget_per_second_refuses_then_is_whole_again_after_its_window() {
    let redis = RedisServer::start();
    for global in [false, true] {
        let mut env = Env::new();
        env.mock(
            "engine",
            &[("app", "engine")],
            &["--served-model-name", "m"],
        );
        env.model_server("engine", "engine", "");
        let shared = if global {
            format!(
                "\n    global: {{redis: {{address: \"{}\"}}}}",
                redis.address()
            )
        } else {
            String::new()
        };
        env.write(
            "mr-m.yaml",
            &format!(
                "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
                 metadata: {{name: m, namespace: default}}\nspec:\n  modelName: m\n  \
                 rules:\n  - targetModels:\n    - modelServerName: engine\n  \
                 rateLimit:\n    inputTokensPerUnit: {BUDGET}\n    unit: second{shared}\n"
            ),
        );
        let router = env.router(&[]);
        if global {
            connected(&router, &redis.address()).await;
        }
        let fits = (BUDGET / PER_REQUEST) as usize;
        for window in 0..2 {
            let started = Instant::now();
            let (admitted, refused) = admitted_until_refused(&[&router], &[&[]], 200).await;
            assert_refused(&refused);
            // What refilled while counting (BUDGET a second) may let a few more through.
            let refilled = (started.elapsed().as_secs_f64() * f64::from(BUDGET)
                / f64::from(PER_REQUEST))
            .ceil() as usize;
            assert!(
                admitted >= fits && admitted <= fits + refilled + 1,
                "global {global}, window {window}: {admitted} admitted; the budget holds {fits}, \
                 {refilled} refilled"
            );
            // The window under test: a second with no request refills the whole budget.
            actix_rt::time::sleep(Duration::from_millis(1100)).await;
        }
    }
}
