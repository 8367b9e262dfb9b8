//! `merge`: desired statuses into stored ones, table-driven. Every case that writes is merged a
//! second time over its own result and must then be `Unchanged` (no write loop).

#[path = "support/objects.rs"]
mod objects;

use jiff::Timestamp;
use kthena_operator::desired::{DesiredStatus, ParentOwnership, StatusTarget};
use kthena_operator::merge::{MergeOutcome, merge};
use objects::{
    CONTROLLER, cond, gateway, gateway_ref, http_route, inference_pool, model_server, stored_cond,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// The merge's clock; the sub-second part must not reach `lastTransitionTime`.
const NOW: &str = "2026-05-01T12:00:00.123456789Z";
/// `NOW` as written into conditions.
const NOW_S: &str = "2026-05-01T12:00:00Z";
/// An earlier transition, stored.
const T0: &str = "2026-01-01T00:00:00Z";

struct Case {
    name: &'static str,
    stored: Option<Value>,
    desired: DesiredStatus,
    want: MergeOutcome,
}

fn now() -> Timestamp {
    NOW.parse().expect("valid timestamp")
}

fn our_parent(gw: &str, conditions: Vec<Value>) -> Value {
    json!({"parentRef": gateway_ref(gw), "controllerName": CONTROLLER, "conditions": conditions})
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "empty_stored_status_gets_all_conditions_stamped_now",
            stored: None,
            desired: gateway(
                "gw",
                3,
                json!({"conditions": [cond("Accepted", "True", "Accepted", 3),
                                      cond("Programmed", "True", "Programmed", 3)]}),
            ),
            want: MergeOutcome::Write(json!({"conditions": [
                stored_cond("Accepted", "True", "Accepted", 3, NOW_S),
                stored_cond("Programmed", "True", "Programmed", 3, NOW_S),
            ]})),
        },
        Case {
            name: "null_stored_status_counts_as_empty",
            stored: Some(Value::Null),
            desired: gateway(
                "gw",
                1,
                json!({"conditions": [cond("Accepted", "True", "Accepted", 1)]}),
            ),
            want: MergeOutcome::Write(json!({"conditions": [
                stored_cond("Accepted", "True", "Accepted", 1, NOW_S),
            ]})),
        },
        Case {
            name: "identical_input_is_unchanged",
            stored: Some(
                json!({"conditions": [stored_cond("Accepted", "True", "Accepted", 3, T0)]}),
            ),
            desired: gateway(
                "gw",
                3,
                json!({"conditions": [cond("Accepted", "True", "Accepted", 3)]}),
            ),
            want: MergeOutcome::Unchanged,
        },
        Case {
            name: "message_change_is_written_but_keeps_transition_time",
            stored: Some(
                json!({"conditions": [stored_cond("Accepted", "True", "Accepted", 3, T0)]}),
            ),
            desired: gateway(
                "gw",
                3,
                json!({"conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                                       "message": "now with words", "observedGeneration": 3}]}),
            ),
            want: MergeOutcome::Write(json!({"conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "now with words",
                 "observedGeneration": 3, "lastTransitionTime": T0},
            ]})),
        },
        Case {
            name: "generation_bump_keeps_transition_time",
            stored: Some(
                json!({"conditions": [stored_cond("Accepted", "True", "Accepted", 3, T0)]}),
            ),
            desired: gateway(
                "gw",
                4,
                json!({"conditions": [cond("Accepted", "True", "Accepted", 4)]}),
            ),
            want: MergeOutcome::Write(json!({"conditions": [
                stored_cond("Accepted", "True", "Accepted", 4, T0),
            ]})),
        },
        Case {
            name: "status_flip_sets_transition_time_to_now",
            stored: Some(
                json!({"conditions": [stored_cond("Programmed", "True", "Programmed", 3, T0)]}),
            ),
            desired: gateway(
                "gw",
                3,
                json!({"conditions": [cond("Programmed", "False", "Invalid", 3)]}),
            ),
            want: MergeOutcome::Write(json!({"conditions": [
                stored_cond("Programmed", "False", "Invalid", 3, NOW_S),
            ]})),
        },
        Case {
            name: "same_status_without_stored_time_gets_now",
            stored: Some(json!({"conditions": [cond("Accepted", "True", "Accepted", 3)]})),
            desired: gateway(
                "gw",
                3,
                json!({"conditions": [cond("Accepted", "True", "Accepted", 3)]}),
            ),
            want: MergeOutcome::Write(json!({"conditions": [
                stored_cond("Accepted", "True", "Accepted", 3, NOW_S),
            ]})),
        },
        Case {
            name: "foreign_condition_types_are_kept_in_stored_order_and_new_types_appended",
            stored: Some(json!({"conditions": [
                stored_cond("example.com/Audited", "True", "Audited", 9, T0),
                stored_cond("Accepted", "True", "Accepted", 3, T0),
            ]})),
            desired: gateway(
                "gw",
                3,
                json!({"conditions": [cond("Programmed", "True", "Programmed", 3),
                                      cond("Accepted", "True", "Accepted", 3)]}),
            ),
            want: MergeOutcome::Write(json!({"conditions": [
                stored_cond("example.com/Audited", "True", "Audited", 9, T0),
                stored_cond("Accepted", "True", "Accepted", 3, T0),
                stored_cond("Programmed", "True", "Programmed", 3, NOW_S),
            ]})),
        },
        Case {
            name: "stale_when_a_stored_condition_of_ours_is_newer",
            stored: Some(
                json!({"conditions": [stored_cond("Accepted", "True", "Accepted", 5, T0)]}),
            ),
            desired: gateway(
                "gw",
                4,
                json!({"conditions": [cond("Accepted", "False", "Invalid", 4)]}),
            ),
            want: MergeOutcome::Stale { stored: 5, ours: 4 },
        },
        Case {
            name: "a_newer_foreign_condition_does_not_make_us_stale",
            stored: Some(
                json!({"conditions": [stored_cond("example.com/Audited", "True", "A", 9, T0)]}),
            ),
            desired: gateway(
                "gw",
                4,
                json!({"conditions": [cond("Accepted", "True", "Accepted", 4)]}),
            ),
            want: MergeOutcome::Write(json!({"conditions": [
                stored_cond("example.com/Audited", "True", "A", 9, T0),
                stored_cond("Accepted", "True", "Accepted", 4, NOW_S),
            ]})),
        },
        Case {
            name: "unknown_generation_is_never_stale",
            stored: Some(
                json!({"conditions": [stored_cond("Accepted", "True", "Accepted", 5, T0)]}),
            ),
            desired: DesiredStatus {
                generation: None,
                ..gateway(
                    "gw",
                    0,
                    json!({"conditions": [cond("Accepted", "True", "Accepted", 5)]}),
                )
            },
            want: MergeOutcome::Unchanged,
        },
        Case {
            name: "other_top_level_fields_replace_and_unwritten_ones_are_kept",
            stored: Some(json!({
                "addresses": [{"type": "IPAddress", "value": "10.0.0.9"}],
                "example.com/extra": {"a": 1},
                "conditions": [stored_cond("Accepted", "True", "Accepted", 3, T0)],
            })),
            desired: gateway(
                "gw",
                3,
                json!({"addresses": [{"type": "IPAddress", "value": "10.0.0.1"}],
                       "conditions": [cond("Accepted", "True", "Accepted", 3)]}),
            ),
            want: MergeOutcome::Write(json!({
                "addresses": [{"type": "IPAddress", "value": "10.0.0.1"}],
                "example.com/extra": {"a": 1},
                "conditions": [stored_cond("Accepted", "True", "Accepted", 3, T0)],
            })),
        },
        Case {
            name: "null_top_level_field_removes_it",
            stored: Some(json!({"addresses": [{"type": "IPAddress", "value": "10.0.0.9"}]})),
            desired: gateway("gw", 3, json!({"addresses": null})),
            want: MergeOutcome::Write(json!({})),
        },
        Case {
            name: "listeners_merge_conditions_by_name_and_drop_unlisted_listeners",
            stored: Some(json!({"listeners": [
                {"name": "old", "attachedRoutes": 1, "supportedKinds": [],
                 "conditions": [stored_cond("Accepted", "True", "Accepted", 2, T0)]},
                {"name": "http", "attachedRoutes": 1, "supportedKinds": [],
                 "conditions": [stored_cond("Accepted", "True", "Accepted", 2, T0),
                                stored_cond("OverlappingTLSConfig", "True", "OverlappingHostnames", 2, T0)]},
            ]})),
            desired: gateway(
                "gw",
                3,
                json!({"listeners": [{"name": "http", "attachedRoutes": 2,
                    "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
                    "conditions": [cond("Accepted", "True", "Accepted", 3),
                                   cond("Programmed", "True", "Programmed", 3)]}]}),
            ),
            want: MergeOutcome::Write(json!({"listeners": [{"name": "http", "attachedRoutes": 2,
                "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
                "conditions": [stored_cond("Accepted", "True", "Accepted", 3, T0),
                               stored_cond("Programmed", "True", "Programmed", 3, NOW_S)]}]})),
        },
        Case {
            name: "stale_when_a_stored_listener_condition_is_newer",
            stored: Some(json!({"listeners": [
                {"name": "http", "conditions": [stored_cond("Accepted", "True", "Accepted", 7, T0)]},
            ]})),
            desired: gateway(
                "gw",
                6,
                json!({"listeners": [{"name": "http", "conditions": [cond("Accepted", "True", "Accepted", 6)]}]}),
            ),
            want: MergeOutcome::Stale { stored: 7, ours: 6 },
        },
        Case {
            name: "foreign_parents_are_kept_in_place_and_ours_replaced_removed_or_appended",
            stored: Some(json!({"parents": [
                our_parent("a", vec![stored_cond("Accepted", "True", "Accepted", 1, T0)]),
                {"parentRef": gateway_ref("a"), "controllerName": "example.com/other",
                 "conditions": [stored_cond("Accepted", "False", "NotAllowedByListeners", 8, T0)]},
                our_parent("b", vec![stored_cond("Accepted", "True", "Accepted", 1, T0)]),
            ]})),
            desired: http_route(
                "r",
                2,
                json!({"parents": [
                    our_parent("c", vec![cond("Accepted", "True", "Accepted", 2)]),
                    our_parent("b", vec![cond("Accepted", "True", "Accepted", 2),
                                         cond("ResolvedRefs", "False", "BackendNotFound", 2)]),
                ]}),
            ),
            want: MergeOutcome::Write(json!({"parents": [
                {"parentRef": gateway_ref("a"), "controllerName": "example.com/other",
                 "conditions": [stored_cond("Accepted", "False", "NotAllowedByListeners", 8, T0)]},
                our_parent("b", vec![stored_cond("Accepted", "True", "Accepted", 2, T0),
                                     stored_cond("ResolvedRefs", "False", "BackendNotFound", 2, NOW_S)]),
                our_parent("c", vec![stored_cond("Accepted", "True", "Accepted", 2, NOW_S)]),
            ]})),
        },
        Case {
            name: "our_parent_no_longer_desired_is_removed",
            stored: Some(json!({"parents": [
                our_parent("a", vec![stored_cond("Accepted", "True", "Accepted", 1, T0)]),
                {"parentRef": gateway_ref("x"), "controllerName": "example.com/other", "conditions": []},
            ]})),
            desired: http_route("r", 2, json!({"parents": []})),
            want: MergeOutcome::Write(json!({"parents": [
                {"parentRef": gateway_ref("x"), "controllerName": "example.com/other", "conditions": []},
            ]})),
        },
        Case {
            name: "route_without_desired_parents_still_drops_ours",
            stored: Some(json!({"parents": [
                our_parent("a", vec![stored_cond("Accepted", "True", "Accepted", 1, T0)]),
            ]})),
            desired: http_route("r", 2, json!({})),
            want: MergeOutcome::Write(json!({"parents": []})),
        },
        Case {
            name: "a_newer_foreign_parent_does_not_make_us_stale",
            stored: Some(json!({"parents": [
                {"parentRef": gateway_ref("a"), "controllerName": "example.com/other",
                 "conditions": [stored_cond("Accepted", "True", "Accepted", 9, T0)]},
            ]})),
            desired: http_route(
                "r",
                2,
                json!({"parents": [our_parent("a", vec![cond("Accepted", "True", "Accepted", 2)])]}),
            ),
            want: MergeOutcome::Write(json!({"parents": [
                {"parentRef": gateway_ref("a"), "controllerName": "example.com/other",
                 "conditions": [stored_cond("Accepted", "True", "Accepted", 9, T0)]},
                our_parent("a", vec![stored_cond("Accepted", "True", "Accepted", 2, NOW_S)]),
            ]})),
        },
        Case {
            name: "stale_when_our_stored_parent_is_newer",
            stored: Some(json!({"parents": [
                our_parent("a", vec![stored_cond("Accepted", "True", "Accepted", 4, T0)]),
            ]})),
            desired: http_route("r", 3, json!({"parents": []})),
            want: MergeOutcome::Stale { stored: 4, ours: 3 },
        },
        Case {
            name: "retracted_condition_in_our_parent_entry_is_removed",
            stored: Some(json!({"parents": [our_parent("a", vec![
                stored_cond("Accepted", "True", "Accepted", 1, T0),
                stored_cond("PartiallyInvalid", "True", "UnsupportedValue", 1, T0),
            ])]})),
            desired: http_route(
                "r",
                2,
                json!({"parents": [our_parent("a", vec![cond("Accepted", "True", "Accepted", 2)])]}),
            ),
            want: MergeOutcome::Write(json!({"parents": [
                our_parent("a", vec![stored_cond("Accepted", "True", "Accepted", 2, T0)]),
            ]})),
        },
        Case {
            name: "parent_ref_defaulted_by_the_api_server_matches_and_is_kept_as_stored",
            stored: Some(json!({"parents": [
                our_parent("a", vec![stored_cond("Accepted", "True", "Accepted", 2, T0)]),
            ]})),
            desired: http_route(
                "r",
                2,
                json!({"parents": [{"parentRef": {"namespace": "ns", "name": "a"},
                    "controllerName": CONTROLLER,
                    "conditions": [cond("Accepted", "True", "Accepted", 2)]}]}),
            ),
            want: MergeOutcome::Unchanged,
        },
        Case {
            name: "inference_pool_owns_parents_of_its_gateways_only",
            stored: Some(json!({"parents": [
                {"parentRef": gateway_ref("a"), "conditions": [stored_cond("Accepted", "True", "Accepted", 1, T0)]},
                {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                               "namespace": "other", "name": "b"},
                 "conditions": [stored_cond("Accepted", "True", "Accepted", 1, T0)]},
                {"parentRef": gateway_ref("c"), "conditions": [stored_cond("Accepted", "True", "Accepted", 1, T0)]},
            ]})),
            desired: inference_pool(
                "pool",
                1,
                &["a", "c"],
                json!({"parents": [{"parentRef": gateway_ref("c"),
                                    "conditions": [cond("Accepted", "True", "Accepted", 1),
                                                   cond("ResolvedRefs", "True", "ResolvedRefs", 1)]}]}),
            ),
            want: MergeOutcome::Write(json!({"parents": [
                {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                               "namespace": "other", "name": "b"},
                 "conditions": [stored_cond("Accepted", "True", "Accepted", 1, T0)]},
                {"parentRef": gateway_ref("c"),
                 "conditions": [stored_cond("Accepted", "True", "Accepted", 1, T0),
                                stored_cond("ResolvedRefs", "True", "ResolvedRefs", 1, NOW_S)]},
            ]})),
        },
        Case {
            name: "whole_status_replaces_plain_fields",
            stored: Some(json!({"observedGeneration": 1, "readyEndpoints": 1,
                                "conditions": [stored_cond("Ready", "True", "Ready", 1, T0)]})),
            desired: model_server(
                "ms",
                2,
                json!({"observedGeneration": 2, "readyEndpoints": 3,
                       "conditions": [cond("Ready", "True", "Ready", 2)]}),
            ),
            want: MergeOutcome::Write(json!({"observedGeneration": 2, "readyEndpoints": 3,
                "conditions": [stored_cond("Ready", "True", "Ready", 2, T0)]})),
        },
        Case {
            name: "stale_when_stored_observed_generation_is_newer",
            stored: Some(json!({"observedGeneration": 7, "readyEndpoints": 1})),
            desired: model_server(
                "ms",
                6,
                json!({"observedGeneration": 6, "readyEndpoints": 3}),
            ),
            want: MergeOutcome::Stale { stored: 7, ours: 6 },
        },
        Case {
            name: "whole_status_without_desired_parents_keeps_stored_parents",
            stored: Some(
                json!({"parents": [{"parentRef": gateway_ref("a"), "conditions": []}],
                                "readyEndpoints": 1}),
            ),
            desired: model_server("ms", 2, json!({"readyEndpoints": 2})),
            want: MergeOutcome::Write(
                json!({"parents": [{"parentRef": gateway_ref("a"), "conditions": []}],
                                             "readyEndpoints": 2}),
            ),
        },
    ]
}

#[test]
fn merge_cases() {
    for case in cases() {
        let got = merge(case.stored.as_ref(), &case.desired, now());
        assert_eq!(got, case.want, "case {}", case.name);
    }
}

#[test]
fn merging_a_written_status_again_is_unchanged() {
    let later: Timestamp = "2026-06-01T00:00:00Z".parse().expect("valid timestamp");
    for case in cases() {
        if let MergeOutcome::Write(written) = merge(case.stored.as_ref(), &case.desired, now()) {
            let again = merge(Some(&written), &case.desired, later);
            assert_eq!(again, MergeOutcome::Unchanged, "case {}", case.name);
        }
    }
}

#[test]
fn transition_time_has_whole_seconds_and_z() {
    let desired = gateway(
        "gw",
        1,
        json!({"conditions": [cond("Accepted", "True", "Accepted", 1)]}),
    );
    let MergeOutcome::Write(status) = merge(None, &desired, now()) else {
        panic!("expected a write");
    };
    assert_eq!(status["conditions"][0]["lastTransitionTime"], json!(NOW_S));
}

#[test]
fn legacy_inference_pool_parent_list_is_merged_under_its_own_name() {
    let desired = DesiredStatus {
        target: StatusTarget {
            api: kube::discovery::ApiResource::erase::<
                kthena_api::inference::v1alpha2::InferencePool,
            >(&()),
            namespace: Some("ns".into()),
            name: "pool".into(),
        },
        generation: Some(1),
        status: json!({"parent": [{
            "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "ns", "name": "gw"},
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "m", "observedGeneration": 1}],
        }]}),
        parents: ParentOwnership::Gateways(vec![("ns".into(), "gw".into())]),
    };
    let now: jiff::Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
    let MergeOutcome::Write(written) = merge(None, &desired, now) else {
        panic!("expected a write");
    };
    assert!(written.get("parents").is_none(), "{written}");
    assert_eq!(
        written["parent"][0]["conditions"][0]["lastTransitionTime"],
        "2026-11-22T10:00:00Z"
    );
    let later: jiff::Timestamp = "2026-11-22T11:00:00Z".parse().unwrap();
    assert_eq!(
        merge(Some(&written), &desired, later),
        MergeOutcome::Unchanged
    );
}
