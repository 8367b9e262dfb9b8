//! `StatusWriter` against a scripted fake API server (kube `Client` over `tower_test::mock`).

#[path = "support/fake_api.rs"]
mod fake_api;
#[path = "support/objects.rs"]
mod objects;

use fake_api::{FakeApi, bounded, pair};
use http::Method;
use jiff::Timestamp;
use kthena_operator::desired::DesiredStatus;
use kthena_operator::status_writer::{StatusWriter, WriteSummary};
use objects::{CONTROLLER, cond, gateway, gateway_ref, http_route, stored_cond};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const GW: &str = "/apis/gateway.networking.k8s.io/v1/namespaces/ns/gateways/gw";
const GW_STATUS: &str = "/apis/gateway.networking.k8s.io/v1/namespaces/ns/gateways/gw/status";
const ROUTE: &str = "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/r";
const ROUTE_STATUS: &str = "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/r/status";
const T0: &str = "2026-01-01T00:00:00Z";

/// An object as the API server returns it.
fn object(kind: &str, name: &str, generation: i64, version: &str, status: Option<Value>) -> Value {
    let mut obj = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns", "generation": generation,
                     "resourceVersion": version},
        "spec": {},
    });
    if let Some(status) = status {
        obj["status"] = status;
    }
    obj
}

fn gateway_object(version: &str, status: Option<Value>) -> Value {
    object("Gateway", "gw", 3, version, status)
}

fn accepted_programmed(generation: i64) -> DesiredStatus {
    gateway(
        "gw",
        generation,
        json!({"conditions": [cond("Accepted", "True", "Accepted", generation),
                              cond("Programmed", "True", "Programmed", generation)]}),
    )
}

/// Runs one `write_once` pass over `desired` in a task; the test plays the API server.
fn spawn_pass(desired: Vec<DesiredStatus>) -> (FakeApi, tokio::task::JoinHandle<WriteSummary>) {
    let (client, api) = pair();
    let writer = StatusWriter::new(client, "kthena-router");
    let task = tokio::spawn(async move { writer.write_once(&desired).await });
    (api, task)
}

async fn summary_of(task: tokio::task::JoinHandle<WriteSummary>) -> WriteSummary {
    bounded("write_once", task).await.expect("write_once task")
}

#[tokio::test]
async fn gateway_without_status_gets_one_patch_with_conditions_and_resource_version() {
    let (mut api, task) = spawn_pass(vec![accepted_programmed(3)]);

    api.expect(Method::GET, GW)
        .await
        .respond(200, &gateway_object("41", None));
    let patch = api.expect(Method::PATCH, GW_STATUS).await;
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(patch.body["metadata"], json!({"resourceVersion": "41"}));
    let conditions = patch.body["status"]["conditions"]
        .as_array()
        .expect("conditions list");
    let types: Vec<&Value> = conditions.iter().map(|c| &c["type"]).collect();
    assert_eq!(types, [&json!("Accepted"), &json!("Programmed")]);
    for c in conditions {
        assert_eq!(c["status"], json!("True"));
        assert_eq!(c["observedGeneration"], json!(3));
        let at = c["lastTransitionTime"]
            .as_str()
            .expect("lastTransitionTime");
        at.parse::<Timestamp>()
            .expect("RFC 3339 lastTransitionTime");
        assert!(
            at.ends_with('Z') && !at.contains('.'),
            "seconds precision: {at}"
        );
    }
    let written = gateway_object("42", Some(patch.body["status"].clone()));
    patch.respond(200, &written);

    api.expect_end().await;
    let summary = summary_of(task).await;
    assert_eq!(
        summary,
        WriteSummary {
            written: 1,
            ..WriteSummary::default()
        }
    );
}

#[tokio::test]
async fn stored_status_equal_to_desired_is_read_but_not_patched() {
    let (mut api, task) = spawn_pass(vec![accepted_programmed(3)]);

    let stored = json!({"conditions": [stored_cond("Accepted", "True", "Accepted", 3, T0),
                                       stored_cond("Programmed", "True", "Programmed", 3, T0)]});
    api.expect(Method::GET, GW)
        .await
        .respond(200, &gateway_object("41", Some(stored)));

    api.expect_end().await; // a PATCH would arrive here and fail the test
    let summary = summary_of(task).await;
    assert_eq!(
        summary,
        WriteSummary {
            unchanged: 1,
            ..WriteSummary::default()
        }
    );
}

#[tokio::test]
async fn route_patch_keeps_another_controllers_parent_entry() {
    let foreign = json!({"parentRef": gateway_ref("gw"), "controllerName": "example.com/other",
                         "conditions": [stored_cond("Accepted", "False", "NotAllowedByListeners", 5, T0)]});
    let ours_stored = json!({"parentRef": gateway_ref("gw"), "controllerName": CONTROLLER,
                             "conditions": [stored_cond("Accepted", "True", "Accepted", 4, T0)]});
    let desired = http_route(
        "r",
        5,
        json!({"parents": [{"parentRef": gateway_ref("gw"), "controllerName": CONTROLLER,
                            "conditions": [cond("Accepted", "True", "Accepted", 5),
                                           cond("ResolvedRefs", "True", "ResolvedRefs", 5)]}]}),
    );
    let (mut api, task) = spawn_pass(vec![desired]);

    let stored = json!({"parents": [foreign.clone(), ours_stored]});
    api.expect(Method::GET, ROUTE)
        .await
        .respond(200, &object("HTTPRoute", "r", 5, "7", Some(stored)));
    let patch = api.expect(Method::PATCH, ROUTE_STATUS).await;
    let parents = patch.body["status"]["parents"]
        .as_array()
        .expect("parents")
        .clone();
    assert_eq!(parents.len(), 2);
    assert_eq!(parents[0], foreign);
    assert_eq!(parents[1]["controllerName"], json!(CONTROLLER));
    assert_eq!(
        parents[1]["conditions"][0],
        stored_cond("Accepted", "True", "Accepted", 5, T0)
    );
    assert_eq!(parents[1]["conditions"][1]["type"], json!("ResolvedRefs"));
    patch.respond(200, &object("HTTPRoute", "r", 5, "8", None));

    api.expect_end().await;
    let summary = summary_of(task).await;
    assert_eq!(
        summary,
        WriteSummary {
            written: 1,
            ..WriteSummary::default()
        }
    );
}

#[tokio::test]
async fn conflict_on_patch_reads_again_and_retries_with_the_new_version() {
    let (mut api, task) = spawn_pass(vec![accepted_programmed(3)]);

    api.expect(Method::GET, GW)
        .await
        .respond(200, &gateway_object("41", None));
    let first = api.expect(Method::PATCH, GW_STATUS).await;
    assert_eq!(first.body["metadata"]["resourceVersion"], json!("41"));
    first.fail(409, "Conflict");

    api.expect(Method::GET, GW)
        .await
        .respond(200, &gateway_object("43", None));
    let second = api.expect(Method::PATCH, GW_STATUS).await;
    assert_eq!(second.body["metadata"]["resourceVersion"], json!("43"));
    second.respond(200, &gateway_object("44", None));

    api.expect_end().await;
    let summary = summary_of(task).await;
    assert_eq!(
        summary,
        WriteSummary {
            written: 1,
            ..WriteSummary::default()
        }
    );
}

#[tokio::test]
async fn conflicts_are_retried_three_times_then_counted_failed() {
    let (mut api, task) = spawn_pass(vec![accepted_programmed(3)]);

    for version in ["1", "2", "3"] {
        api.expect(Method::GET, GW)
            .await
            .respond(200, &gateway_object(version, None));
        api.expect(Method::PATCH, GW_STATUS)
            .await
            .fail(409, "Conflict");
    }

    api.expect_end().await;
    let summary = summary_of(task).await;
    assert_eq!(
        summary,
        WriteSummary {
            failed: 1,
            ..WriteSummary::default()
        }
    );
}

#[tokio::test]
async fn missing_object_is_counted_gone_without_patch() {
    let (mut api, task) = spawn_pass(vec![accepted_programmed(3)]);

    api.expect(Method::GET, GW).await.fail(404, "NotFound");

    api.expect_end().await;
    let summary = summary_of(task).await;
    assert_eq!(
        summary,
        WriteSummary {
            gone: 1,
            ..WriteSummary::default()
        }
    );
}

#[tokio::test]
async fn stored_status_from_a_newer_generation_is_not_overwritten() {
    let (mut api, task) = spawn_pass(vec![accepted_programmed(3)]);

    let newer = json!({"conditions": [stored_cond("Accepted", "False", "Invalid", 4, T0)]});
    api.expect(Method::GET, GW)
        .await
        .respond(200, &gateway_object("50", Some(newer)));

    api.expect_end().await;
    let summary = summary_of(task).await;
    assert_eq!(
        summary,
        WriteSummary {
            stale: 1,
            ..WriteSummary::default()
        }
    );
}

#[tokio::test]
async fn read_error_is_counted_failed_and_the_pass_goes_on() {
    let other = DesiredStatus {
        target: kthena_operator::desired::StatusTarget {
            name: "gw2".to_owned(),
            ..accepted_programmed(3).target
        },
        ..accepted_programmed(3)
    };
    let (mut api, task) = spawn_pass(vec![accepted_programmed(3), other]);

    api.expect(Method::GET, GW).await.fail(500, "InternalError");
    api.expect(Method::GET, &format!("{GW}2"))
        .await
        .fail(404, "NotFound");

    api.expect_end().await;
    let summary = summary_of(task).await;
    assert_eq!(
        summary,
        WriteSummary {
            failed: 1,
            gone: 1,
            ..WriteSummary::default()
        }
    );
}

/// A `run` loop in a task, with its channels.
struct Running {
    api: FakeApi,
    desired: watch::Sender<Arc<Vec<Arc<DesiredStatus>>>>,
    leader: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

const RESYNC: Duration = Duration::from_secs(3600);

fn spawn_run(desired: Vec<DesiredStatus>, leading: bool) -> Running {
    let (client, api) = pair();
    let (desired_tx, desired_rx) =
        watch::channel(Arc::new(desired.into_iter().map(Arc::new).collect()));
    let (leader_tx, leader_rx) = watch::channel(leading);
    let writer = StatusWriter::new(client, "kthena-router");
    let task = tokio::spawn(writer.run(desired_rx, leader_rx, RESYNC));
    Running {
        api,
        desired: desired_tx,
        leader: leader_tx,
        task,
    }
}

impl Running {
    /// Drops the desired channel: `run` returns and the client goes away.
    async fn stop(self) {
        let Running {
            mut api,
            desired,
            leader,
            task,
        } = self;
        drop(desired);
        bounded("run", task).await.expect("run task");
        drop(leader);
        api.expect_end().await;
    }
}

#[tokio::test(start_paused = true)]
async fn follower_sends_nothing_until_it_leads() {
    let mut run = spawn_run(vec![accepted_programmed(3)], false);
    run.api.expect_quiet(Duration::from_secs(60)).await;

    run.desired
        .send_replace(Arc::new(vec![Arc::new(accepted_programmed(4))]));
    run.api.expect_quiet(Duration::from_secs(60)).await;

    run.leader.send_replace(true);
    run.api
        .expect(Method::GET, GW)
        .await
        .respond(200, &gateway_object("41", None));
    let patch = run.api.expect(Method::PATCH, GW_STATUS).await;
    assert_eq!(
        patch.body["status"]["conditions"][0]["observedGeneration"],
        json!(4)
    );
    patch.respond(200, &gateway_object("42", None));
    run.api.expect_quiet(Duration::from_secs(60)).await;

    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn leader_writes_only_changed_targets_and_rereads_all_on_resync() {
    let route = http_route(
        "r",
        1,
        json!({"parents": [{"parentRef": gateway_ref("gw"), "controllerName": CONTROLLER,
                            "conditions": [cond("Accepted", "True", "Accepted", 1)]}]}),
    );
    let mut run = spawn_run(vec![accepted_programmed(3)], true);
    run.api
        .expect(Method::GET, GW)
        .await
        .respond(200, &gateway_object("41", None));
    let patch = run.api.expect(Method::PATCH, GW_STATUS).await;
    let written = patch.body["status"].clone();
    patch.respond(200, &gateway_object("42", Some(written.clone())));
    run.api.expect_quiet(Duration::from_secs(60)).await;

    // The Gateway is settled: adding the route reads the route only.
    run.desired.send_replace(Arc::new(vec![
        Arc::new(accepted_programmed(3)),
        Arc::new(route.clone()),
    ]));
    run.api
        .expect(Method::GET, ROUTE)
        .await
        .respond(200, &object("HTTPRoute", "r", 1, "9", None));
    run.api
        .expect(Method::PATCH, ROUTE_STATUS)
        .await
        .respond(200, &object("HTTPRoute", "r", 1, "10", None));
    run.api.expect_quiet(Duration::from_secs(60)).await;

    // The resync reads everything again; nothing changed, so nothing is patched.
    let within = RESYNC + Duration::from_secs(1);
    run.api
        .expect_within(within, Method::GET, GW)
        .await
        .respond(200, &gateway_object("42", Some(written)));
    let route_written = json!({"parents": [{"parentRef": gateway_ref("gw"), "controllerName": CONTROLLER,
        "conditions": [stored_cond("Accepted", "True", "Accepted", 1, T0)]}]});
    run.api
        .expect(Method::GET, ROUTE)
        .await
        .respond(200, &object("HTTPRoute", "r", 1, "10", Some(route_written)));
    run.api.expect_quiet(Duration::from_secs(60)).await;

    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failed_write_is_retried_without_waiting_for_resync() {
    let mut run = spawn_run(vec![accepted_programmed(3)], true);
    run.api
        .expect(Method::GET, GW)
        .await
        .fail(500, "InternalError");

    let within = Duration::from_secs(10);
    run.api
        .expect_within(within, Method::GET, GW)
        .await
        .respond(200, &gateway_object("41", None));
    run.api
        .expect(Method::PATCH, GW_STATUS)
        .await
        .respond(200, &gateway_object("42", None));
    run.api.expect_quiet(Duration::from_secs(60)).await;

    run.stop().await;
}
