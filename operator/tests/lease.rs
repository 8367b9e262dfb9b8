//! Leader election: the pure `decide`, then `LeaderElector` against a scripted fake API server
//! under a paused clock (renewal sleeps cost no time).

#[path = "support/fake_api.rs"]
mod fake_api;

use fake_api::{FakeApi, bounded, pair};
use http::Method;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kthena_operator::lease::{Decision, LeaderElector, decide};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/kthena-router";
const FIFTEEN: Duration = Duration::from_secs(15);

fn at(time: &str) -> Timestamp {
    time.parse().expect("valid timestamp")
}

fn lease(holder: Option<&str>, renewed: Option<&str>, seconds: Option<i32>) -> Lease {
    Lease {
        metadata: ObjectMeta::default(),
        spec: Some(LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            renew_time: renewed.map(|t| MicroTime(at(t))),
            lease_duration_seconds: seconds,
            ..LeaseSpec::default()
        }),
    }
}

#[test]
fn decide_cases() {
    let now = at("2026-05-01T12:00:30Z");
    let other = || Decision::Follow {
        holder: "other".to_owned(),
    };
    let cases: Vec<(&str, Option<Lease>, Decision)> = vec![
        ("no_lease_is_created", None, Decision::Create),
        (
            "own_lease_is_renewed",
            Some(lease(Some("me"), Some("2026-05-01T12:00:25Z"), Some(15))),
            Decision::Renew,
        ),
        (
            "own_expired_lease_is_still_renewed",
            Some(lease(Some("me"), Some("2026-05-01T11:00:00Z"), Some(15))),
            Decision::Renew,
        ),
        (
            "fresh_lease_of_another_is_followed",
            Some(lease(Some("other"), Some("2026-05-01T12:00:20Z"), Some(15))),
            other(),
        ),
        (
            "lease_ending_exactly_now_is_still_followed",
            Some(lease(Some("other"), Some("2026-05-01T12:00:15Z"), Some(15))),
            other(),
        ),
        (
            "expired_lease_of_another_is_taken_over",
            Some(lease(Some("other"), Some("2026-05-01T12:00:14Z"), Some(15))),
            Decision::TakeOver,
        ),
        (
            "lease_duration_comes_from_the_lease",
            Some(lease(Some("other"), Some("2026-05-01T12:00:00Z"), Some(60))),
            other(),
        ),
        (
            "missing_lease_duration_falls_back_to_ours",
            Some(lease(Some("other"), Some("2026-05-01T12:00:00Z"), None)),
            Decision::TakeOver,
        ),
        (
            "released_lease_is_taken_over",
            Some(lease(None, Some("2026-05-01T12:00:29Z"), Some(15))),
            Decision::TakeOver,
        ),
        (
            "empty_holder_is_taken_over",
            Some(lease(Some(""), Some("2026-05-01T12:00:29Z"), Some(15))),
            Decision::TakeOver,
        ),
        (
            "lease_without_times_is_taken_over",
            Some(lease(Some("other"), None, Some(15))),
            Decision::TakeOver,
        ),
        (
            "lease_without_spec_is_taken_over",
            Some(Lease::default()),
            Decision::TakeOver,
        ),
    ];
    for (name, lease, want) in cases {
        assert_eq!(
            decide(lease.as_ref(), "me", now, FIFTEEN),
            want,
            "case {name}"
        );
    }
}

#[test]
fn acquire_time_counts_when_renew_time_is_missing() {
    let mut l = lease(Some("other"), None, Some(15));
    if let Some(spec) = l.spec.as_mut() {
        spec.acquire_time = Some(MicroTime(at("2026-05-01T12:00:20Z")));
    }
    let decision = decide(Some(&l), "me", at("2026-05-01T12:00:30Z"), FIFTEEN);
    assert_eq!(
        decision,
        Decision::Follow {
            holder: "other".to_owned()
        }
    );
}

/// A Lease as the API server returns it.
fn stored_lease(
    holder: Option<&str>,
    renewed: Timestamp,
    transitions: i32,
    version: &str,
) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "kthena-router", "namespace": "ns", "resourceVersion": version},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                 "acquireTime": renewed.to_string(), "renewTime": renewed.to_string(),
                 "leaseTransitions": transitions},
    })
}

/// An elector `me` in a task, with its leadership channel and stop switch.
struct Running {
    api: FakeApi,
    leader: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

fn spawn_elector() -> Running {
    let (client, api) = pair();
    let (leader_tx, leader) = watch::channel(false);
    let (stop, stop_rx) = oneshot::channel::<()>();
    let elector = LeaderElector::new(client, "ns", "kthena-router", "me");
    let task = tokio::spawn(elector.run(leader_tx, async move {
        let _ = stop_rx.await;
    }));
    Running {
        api,
        leader,
        stop: Some(stop),
        task,
    }
}

impl Running {
    /// Completes the elector's stop future.
    fn request_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    async fn wait_leading(&mut self, leading: bool) {
        bounded("leadership", self.leader.wait_for(|l| *l == leading))
            .await
            .expect("elector alive");
    }

    /// Stops a follower: no release, nothing more sent.
    async fn stop_following(mut self) {
        self.request_stop();
        bounded("elector", self.task).await.expect("elector task");
        assert!(!*self.leader.borrow());
        self.api.expect_end().await;
    }
}

#[tokio::test(start_paused = true)]
async fn missing_lease_is_created_and_released_on_stop() {
    let mut run = spawn_elector();

    run.api
        .expect(Method::GET, LEASE)
        .await
        .fail(404, "NotFound");
    let create = run.api.expect(Method::POST, LEASES).await;
    let spec = &create.body["spec"];
    assert_eq!(create.body["metadata"]["name"], json!("kthena-router"));
    assert_eq!(spec["holderIdentity"], json!("me"));
    assert_eq!(spec["leaseDurationSeconds"], json!(15));
    assert_eq!(spec["leaseTransitions"], json!(0));
    assert!(spec["renewTime"].is_string() && spec["acquireTime"].is_string());
    let created = stored_lease(Some("me"), Timestamp::now(), 0, "7");
    create.respond(201, &created);
    run.wait_leading(true).await;

    // Stop: leadership is dropped first, then the Lease is released for a successor.
    run.request_stop();
    run.wait_leading(false).await;
    run.api
        .expect(Method::GET, LEASE)
        .await
        .respond(200, &created);
    let release = run.api.expect(Method::PUT, LEASE).await;
    assert_eq!(release.body["metadata"]["resourceVersion"], json!("7"));
    assert!(release.body["spec"]["holderIdentity"].is_null());
    release.respond(200, &stored_lease(None, Timestamp::now(), 0, "8"));
    bounded("elector", run.task).await.expect("elector task");
    run.api.expect_end().await;
}

#[tokio::test(start_paused = true)]
async fn leader_renews_with_the_version_it_read() {
    let mut run = spawn_elector();
    run.api
        .expect(Method::GET, LEASE)
        .await
        .fail(404, "NotFound");
    run.api
        .expect(Method::POST, LEASES)
        .await
        .respond(201, &stored_lease(Some("me"), Timestamp::now(), 0, "7"));
    run.wait_leading(true).await;

    let renewed_before = Timestamp::now();
    run.api
        .expect(Method::GET, LEASE)
        .await
        .respond(200, &stored_lease(Some("me"), renewed_before, 0, "7"));
    let renew = run.api.expect(Method::PUT, LEASE).await;
    assert_eq!(renew.body["metadata"]["resourceVersion"], json!("7"));
    assert_eq!(renew.body["spec"]["holderIdentity"], json!("me"));
    assert_eq!(renew.body["spec"]["leaseTransitions"], json!(0));
    renew.respond(200, &stored_lease(Some("me"), Timestamp::now(), 0, "8"));
    assert!(*run.leader.borrow());
    drop(run);
}

#[tokio::test(start_paused = true)]
async fn fresh_lease_of_another_holder_is_followed() {
    let mut run = spawn_elector();

    let theirs = stored_lease(Some("other"), Timestamp::now(), 2, "5");
    run.api
        .expect(Method::GET, LEASE)
        .await
        .respond(200, &theirs);
    // The next round reads again: no write was attempted in between.
    run.api
        .expect(Method::GET, LEASE)
        .await
        .respond(200, &theirs);
    assert!(!*run.leader.borrow());
    assert!(!run.leader.has_changed().expect("elector alive"));

    run.stop_following().await;
}

#[tokio::test(start_paused = true)]
async fn expired_lease_is_taken_over() {
    let mut run = spawn_elector();

    let expired = stored_lease(Some("other"), at("2020-01-01T00:00:00Z"), 4, "9");
    run.api
        .expect(Method::GET, LEASE)
        .await
        .respond(200, &expired);
    let take = run.api.expect(Method::PUT, LEASE).await;
    assert_eq!(take.body["metadata"]["resourceVersion"], json!("9"));
    assert_eq!(take.body["spec"]["holderIdentity"], json!("me"));
    assert_eq!(take.body["spec"]["leaseTransitions"], json!(5));
    take.respond(200, &stored_lease(Some("me"), Timestamp::now(), 5, "10"));
    run.wait_leading(true).await;
    drop(run);
}

#[tokio::test(start_paused = true)]
async fn conflict_on_take_over_means_another_won() {
    let mut run = spawn_elector();

    let expired = stored_lease(Some("other"), at("2020-01-01T00:00:00Z"), 4, "9");
    run.api
        .expect(Method::GET, LEASE)
        .await
        .respond(200, &expired);
    run.api
        .expect(Method::PUT, LEASE)
        .await
        .fail(409, "Conflict");
    let winner = stored_lease(Some("rival"), Timestamp::now(), 5, "10");
    run.api
        .expect(Method::GET, LEASE)
        .await
        .respond(200, &winner);
    assert!(!*run.leader.borrow());

    run.stop_following().await;
}

#[tokio::test(start_paused = true)]
async fn leader_steps_down_when_renewal_fails_longer_than_the_lease_duration() {
    let mut run = spawn_elector();
    run.api
        .expect(Method::GET, LEASE)
        .await
        .fail(404, "NotFound");
    run.api
        .expect(Method::POST, LEASES)
        .await
        .respond(201, &stored_lease(Some("me"), Timestamp::now(), 0, "7"));
    run.wait_leading(true).await;
    let since = tokio::time::Instant::now();

    // Rounds every 5s fail; leadership holds through 15s and is dropped after.
    let mut failures = 0;
    loop {
        tokio::select! {
            stepped_down = run.leader.wait_for(|l| !*l) => {
                stepped_down.expect("elector alive");
                break;
            }
            call = run.api.expect(Method::GET, LEASE) => {
                call.fail(500, "InternalError");
                failures += 1;
                assert!(failures <= 5, "still leading after {failures} failed renewals");
            }
        }
    }
    assert!(since.elapsed() > Duration::from_secs(15));
    assert_eq!(failures, 4);
    drop(run);
}
