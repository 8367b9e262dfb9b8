//! Selection rules of the route table, table-driven.

use kthena_core::{
    Backend, BuildOptions, CreationOrder, ListenerRef, ModelMatch, ObjectRef, ParentRef, Request,
    Route, RouteTable, Rule, SelectError, StringMatch, Target,
};

/// A route `ns/name` created at `created` (seconds) claiming `model` (may be empty).
fn route(ns: &str, name: &str, created: i64, model: &str) -> Route {
    Route {
        id: ObjectRef::new(ns, name),
        order: CreationOrder {
            created_unix_nanos: Some(created * 1_000_000_000),
            namespace: ns.into(),
            name: name.into(),
        },
        model_name: Some(model.to_owned()).filter(|m| !m.is_empty()),
        lora_adapters: vec![],
        parents: vec![],
        rules: vec![],
        rate_limit: None,
    }
}

fn target(ns: &str, server: &str, weight: u32) -> Target {
    Target {
        backend: Backend::ModelServer(ObjectRef::new(ns, server)),
        weight,
    }
}

fn catch_all(ns: &str, server: &str) -> Rule {
    Rule::new(None, None, vec![target(ns, server, 100)])
}

fn header_rule(name: &str, m: StringMatch, server: &str) -> Rule {
    let mm = ModelMatch {
        headers: vec![(name.into(), m)],
        ..ModelMatch::default()
    };
    Rule::new(
        Some(format!("{name}-rule")),
        Some(mm),
        vec![target("default", server, 100)],
    )
}

fn with_rules(mut r: Route, rules: Vec<Rule>) -> Route {
    r.rules = rules;
    r
}

fn picked(
    table: &RouteTable,
    req: &Request,
    via: Option<&ListenerRef>,
) -> Result<String, SelectError> {
    table
        .select(req, via)
        .map(|s| format!("{}->{}", s.route.id, s.target.backend.object().name))
}

fn build(routes: Vec<Route>) -> RouteTable {
    RouteTable::build(routes, BuildOptions::default())
}

#[test]
fn walkthrough_scenarios_pick_the_right_target() {
    let mut lora = route("default", "deepseek-lora", 2, "");
    lora.lora_adapters = vec!["lora-A".into(), "lora-B".into()];
    let table = build(vec![
        with_rules(
            route("default", "deepseek-simple", 1, "deepseek-r1"),
            vec![catch_all("default", "deepseek-r1-1-5b")],
        ),
        with_rules(lora, vec![catch_all("default", "deepseek-r1-7b")]),
        with_rules(
            route("default", "deepseek-multi-models", 3, "deepseek-multi"),
            vec![
                header_rule(
                    "user-type",
                    StringMatch::Exact("premium".into()),
                    "deepseek-r1-7b",
                ),
                catch_all("default", "deepseek-r1-1-5b"),
            ],
        ),
    ]);
    let cases = [
        (
            Request::new("deepseek-r1"),
            Ok("default/deepseek-simple->deepseek-r1-1-5b"),
        ),
        (
            Request::new("lora-A"),
            Ok("default/deepseek-lora->deepseek-r1-7b"),
        ),
        (
            Request::new("lora-B"),
            Ok("default/deepseek-lora->deepseek-r1-7b"),
        ),
        (Request::new("lora-C"), Err(SelectError::RouteNotFound)),
        (
            Request::new("deepseek-multi").header("user-type", "premium"),
            Ok("default/deepseek-multi-models->deepseek-r1-7b"),
        ),
        (
            Request::new("deepseek-multi").header("User-Type", "premium"),
            Ok("default/deepseek-multi-models->deepseek-r1-7b"),
        ),
        (
            Request::new("deepseek-multi").header("user-type", "basic"),
            Ok("default/deepseek-multi-models->deepseek-r1-1-5b"),
        ),
        (
            Request::new("deepseek-multi").header("user-type", ""),
            Ok("default/deepseek-multi-models->deepseek-r1-1-5b"),
        ),
        (
            Request::new("deepseek-multi"),
            Ok("default/deepseek-multi-models->deepseek-r1-1-5b"),
        ),
        (Request::new("unknown"), Err(SelectError::RouteNotFound)),
    ];
    for (req, want) in cases {
        assert_eq!(
            picked(&table, &req, None),
            want.map(str::to_owned),
            "{req:?}"
        );
    }
    assert!(table.select(&Request::new("lora-A"), None).unwrap().lora);
    assert!(
        !table
            .select(&Request::new("deepseek-r1"), None)
            .unwrap()
            .lora
    );
}

#[test]
fn split_70_30_is_exact_over_100_and_1000_picks() {
    let rule = Rule::new(
        None,
        None,
        vec![
            target("default", "deepseek-r1-1-5b-v1", 70),
            target("default", "deepseek-r1-1-5b-v2", 30),
        ],
    );
    let table = build(vec![with_rules(
        route("default", "deepseek-subset", 1, "deepseek-r1"),
        vec![rule],
    )]);
    let req = Request::new("deepseek-r1");
    for n in [100, 1000] {
        let v1 = (0..n)
            .filter(|_| {
                table
                    .select(&req, None)
                    .unwrap()
                    .target
                    .backend
                    .object()
                    .name
                    .ends_with("v1")
            })
            .count();
        assert_eq!((v1, n - v1), (n * 7 / 10, n * 3 / 10), "over {n} picks");
    }
}

#[test]
fn duplicate_model_name_prefers_the_oldest_route() {
    let cases = [
        // (created a, created b, winner)
        (1, 2, "a"),
        (5, 2, "b"),
        // Same creation time: namespace/name order decides.
        (3, 3, "a"),
    ];
    for (ta, tb, want) in cases {
        let table = build(vec![
            with_rules(
                route("default", "b", tb, "m"),
                vec![catch_all("default", "server-b")],
            ),
            with_rules(
                route("default", "a", ta, "m"),
                vec![catch_all("default", "server-a")],
            ),
        ]);
        let got = table.select(&Request::new("m"), None).unwrap();
        assert_eq!(got.route.id.name, want, "a@{ta} b@{tb}");
    }
    // A route without a creation time (from a file) loses to one with it.
    let mut undated = with_rules(
        route("default", "a", 0, "m"),
        vec![catch_all("default", "x")],
    );
    undated.order.created_unix_nanos = None;
    let dated = with_rules(
        route("default", "z", 100, "m"),
        vec![catch_all("default", "y")],
    );
    let table = build(vec![undated, dated]);
    assert_eq!(
        table
            .select(&Request::new("m"), None)
            .unwrap()
            .route
            .id
            .name,
        "z"
    );
}

#[test]
fn model_name_is_looked_up_before_lora_adapters() {
    // The older route claims "shared" as a LoRA adapter, the newer as its modelName: the
    // modelName claim wins regardless of age.
    let mut lora = route("default", "old-lora", 1, "base");
    lora.lora_adapters = vec!["shared".into()];
    let table = build(vec![
        with_rules(lora, vec![catch_all("default", "lora-server")]),
        with_rules(
            route("default", "new-model", 2, "shared"),
            vec![catch_all("default", "model-server")],
        ),
    ]);
    let got = table.select(&Request::new("shared"), None).unwrap();
    assert_eq!((got.route.id.name.as_str(), got.lora), ("new-model", false));
}

#[test]
fn header_and_uri_matches() {
    let cases: Vec<(Rule, Request, bool)> = vec![
        (
            header_rule("x-tier", StringMatch::Exact("gold".into()), "s"),
            Request::new("m").header("X-Tier", "gold"),
            true,
        ),
        (
            header_rule("x-tier", StringMatch::Exact("gold".into()), "s"),
            Request::new("m").header("x-tier", "golden"),
            false,
        ),
        (
            header_rule("x-tier", StringMatch::Prefix("go".into()), "s"),
            Request::new("m").header("x-tier", "golden"),
            true,
        ),
        (
            header_rule("x-tier", StringMatch::Prefix("go".into()), "s"),
            Request::new("m"),
            false,
        ),
        (
            header_rule(
                "x-tier",
                StringMatch::regex("^(gold|silver)$").unwrap(),
                "s",
            ),
            Request::new("m").header("x-tier", "silver"),
            true,
        ),
        (
            header_rule(
                "x-tier",
                StringMatch::regex("^(gold|silver)$").unwrap(),
                "s",
            ),
            Request::new("m").header("x-tier", "bronze"),
            false,
        ),
        (
            uri_rule(StringMatch::Prefix("/v1/chat".into())),
            Request::new("m").path("/v1/chat/completions"),
            true,
        ),
        (
            uri_rule(StringMatch::Prefix("/v1/chat".into())),
            Request::new("m").path("/v1/completions"),
            false,
        ),
        (
            uri_rule(StringMatch::Exact("/v1/completions".into())),
            Request::new("m").path("/v1/completions"),
            true,
        ),
        (
            uri_rule(StringMatch::regex("^/v1/(chat/)?completions$").unwrap()),
            Request::new("m").path("/v1/embeddings"),
            false,
        ),
    ];
    for (rule, req, want) in cases {
        let desc = format!("{:?} on {req:?}", rule.model_match());
        let table = build(vec![with_rules(route("default", "r", 1, "m"), vec![rule])]);
        assert_eq!(table.select(&req, None).is_ok(), want, "{desc}");
    }
}

fn uri_rule(m: StringMatch) -> Rule {
    let mm = ModelMatch {
        uri: Some(m),
        ..ModelMatch::default()
    };
    Rule::new(None, Some(mm), vec![target("default", "s", 100)])
}

#[test]
fn all_conditions_of_a_match_are_anded_and_rules_are_tried_in_order() {
    let both = ModelMatch {
        headers: vec![("x-a".into(), StringMatch::Exact("1".into()))],
        uri: Some(StringMatch::Prefix("/v1/chat".into())),
        body_model: Some("m".into()),
    };
    let table = build(vec![with_rules(
        route("default", "r", 1, "m"),
        vec![
            Rule::new(
                Some("both".into()),
                Some(both),
                vec![target("default", "first", 1)],
            ),
            catch_all("default", "second"),
        ],
    )]);
    let first = Request::new("m")
        .path("/v1/chat/completions")
        .header("x-a", "1");
    assert_eq!(table.select(&first, None).unwrap().rule_index, 0);
    let no_header = Request::new("m").path("/v1/chat/completions");
    assert_eq!(table.select(&no_header, None).unwrap().rule_index, 1);
    let wrong_path = Request::new("m").path("/v1/completions").header("x-a", "1");
    assert_eq!(table.select(&wrong_path, None).unwrap().rule_index, 1);
}

#[test]
fn all_zero_weights_fall_through_to_the_next_route() {
    let zero = Rule::new(
        None,
        None,
        vec![target("default", "z1", 0), target("default", "z2", 0)],
    );
    let table = build(vec![
        with_rules(route("default", "old", 1, "m"), vec![zero]),
        with_rules(
            route("default", "new", 2, "m"),
            vec![catch_all("default", "live")],
        ),
    ]);
    for _ in 0..10 {
        assert_eq!(
            picked(&table, &Request::new("m"), None).unwrap(),
            "default/new->live"
        );
    }
    // Alone, the all-zero route serves nothing.
    let zero = Rule::new(None, None, vec![target("default", "z1", 0)]);
    let table = build(vec![with_rules(
        route("default", "old", 1, "m"),
        vec![zero],
    )]);
    assert_eq!(
        table.select(&Request::new("m"), None).err(),
        Some(SelectError::RouteNotFound)
    );
}

#[test]
fn weight_zero_target_is_never_picked() {
    let rule = Rule::new(
        None,
        None,
        vec![
            target("default", "never", 0),
            target("default", "always", 5),
        ],
    );
    let table = build(vec![with_rules(route("default", "r", 1, "m"), vec![rule])]);
    for _ in 0..50 {
        assert_eq!(
            picked(&table, &Request::new("m"), None).unwrap(),
            "default/r->always"
        );
    }
}

fn bound(mut r: Route, parents: Vec<ParentRef>) -> Route {
    r.parents = parents;
    r
}

fn parent(ns: &str, name: &str, section: Option<&str>, port: Option<u16>) -> ParentRef {
    ParentRef {
        gateway: ObjectRef::new(ns, name),
        section_name: section.map(Into::into),
        port,
    }
}

#[test]
fn gateway_binding_rules() {
    let routes = || {
        vec![
            // No parentRefs: every Gateway of namespace "team-a".
            with_rules(
                route("team-a", "unbound", 1, "m-unbound"),
                vec![catch_all("team-a", "s1")],
            ),
            // Bound to gateway infra/gw, any listener.
            with_rules(
                bound(
                    route("team-a", "whole", 2, "m-whole"),
                    vec![parent("infra", "gw", None, None)],
                ),
                vec![catch_all("team-a", "s2")],
            ),
            // Bound to listener "http" of infra/gw only.
            with_rules(
                bound(
                    route("team-a", "section", 3, "m-section"),
                    vec![parent("infra", "gw", Some("http"), None)],
                ),
                vec![catch_all("team-a", "s3")],
            ),
            // Bound to port 8081 of infra/gw only.
            with_rules(
                bound(
                    route("team-a", "port", 4, "m-port"),
                    vec![parent("infra", "gw", None, Some(8081))],
                ),
                vec![catch_all("team-a", "s4")],
            ),
        ]
    };
    let gw_http = ListenerRef::new("infra", "gw", "http", 8080);
    let gw_alt = ListenerRef::new("infra", "gw", "alt", 8081);
    let team_gw = ListenerRef::new("team-a", "local", "default", 8080);
    let other_ns_gw = ListenerRef::new("team-b", "local", "default", 8080);

    let gateway = RouteTable::build(routes(), BuildOptions { gateway_mode: true });
    let cases: [(&str, Option<&ListenerRef>, bool); 14] = [
        ("m-unbound", Some(&team_gw), true),
        ("m-unbound", Some(&other_ns_gw), false),
        ("m-unbound", Some(&gw_http), false),
        ("m-unbound", None, false),
        ("m-whole", Some(&gw_http), true),
        ("m-whole", Some(&gw_alt), true),
        ("m-whole", Some(&team_gw), false),
        ("m-section", Some(&gw_http), true),
        ("m-section", Some(&gw_alt), false),
        ("m-port", Some(&gw_alt), true),
        ("m-port", Some(&gw_http), false),
        ("m-whole", None, false),
        ("m-section", Some(&other_ns_gw), false),
        ("m-port", Some(&team_gw), false),
    ];
    for (model, via, want) in cases {
        assert_eq!(
            gateway.select(&Request::new(model), via).is_ok(),
            want,
            "gateway mode: {model} via {via:?}"
        );
    }

    // Outside gateway mode routes with parentRefs are skipped (and reported), the rest serve
    // every request whatever the listener.
    let plain = build(routes());
    assert_eq!(plain.skipped().len(), 3);
    assert!(plain.select(&Request::new("m-unbound"), None).is_ok());
    assert!(
        plain
            .select(&Request::new("m-unbound"), Some(&gw_http))
            .is_ok()
    );
    for model in ["m-whole", "m-section", "m-port"] {
        assert!(
            plain.select(&Request::new(model), Some(&gw_http)).is_err(),
            "{model}"
        );
    }
}

#[test]
fn same_model_on_two_gateways_routes_independently() {
    let table = RouteTable::build(
        vec![
            with_rules(
                bound(
                    route("default", "r8080", 1, "m"),
                    vec![parent("default", "gw-8080", None, None)],
                ),
                vec![catch_all("default", "small")],
            ),
            with_rules(
                bound(
                    route("default", "r8081", 2, "m"),
                    vec![parent("default", "gw-8081", None, None)],
                ),
                vec![catch_all("default", "big")],
            ),
        ],
        BuildOptions { gateway_mode: true },
    );
    let a = ListenerRef::new("default", "gw-8080", "http", 8080);
    let b = ListenerRef::new("default", "gw-8081", "http", 8081);
    assert_eq!(
        picked(&table, &Request::new("m"), Some(&a)).unwrap(),
        "default/r8080->small"
    );
    assert_eq!(
        picked(&table, &Request::new("m"), Some(&b)).unwrap(),
        "default/r8081->big"
    );
}

#[test]
fn oldest_wins_across_bound_and_unbound_routes_of_a_gateway() {
    let listener = ListenerRef::new("default", "gw", "http", 8080);
    for (t_unbound, t_bound, want) in [(1, 2, "unbound"), (2, 1, "bound")] {
        let table = RouteTable::build(
            vec![
                with_rules(
                    route("default", "unbound", t_unbound, "m"),
                    vec![catch_all("default", "u")],
                ),
                with_rules(
                    bound(
                        route("default", "bound", t_bound, "m"),
                        vec![parent("default", "gw", None, None)],
                    ),
                    vec![catch_all("default", "b")],
                ),
            ],
            BuildOptions { gateway_mode: true },
        );
        assert_eq!(
            table
                .select(&Request::new("m"), Some(&listener))
                .unwrap()
                .route
                .id
                .name,
            want
        );
    }
}

#[test]
fn model_names_lists_models_and_lora_adapters_once() {
    let mut r = with_rules(
        route("default", "r", 1, "base"),
        vec![catch_all("default", "s")],
    );
    r.lora_adapters = vec!["l1".into(), "base".into()];
    let table = build(vec![r]);
    let mut names: Vec<&str> = table.model_names().collect();
    names.sort_unstable();
    assert_eq!(names, ["base", "l1"]);
}

/// Every (model, listener) answer of `table`, for comparing two tables.
fn answers(table: &RouteTable, models: &[&str], vias: &[Option<&ListenerRef>]) -> Vec<String> {
    let mut out = Vec::new();
    for m in models {
        for via in vias {
            out.push(format!(
                "{m} via {via:?}: {:?}",
                picked(table, &Request::new(*m), *via)
            ));
        }
    }
    out
}

#[test]
fn a_table_changed_route_by_route_answers_as_one_built_from_scratch() {
    use std::sync::Arc;
    let gw = ListenerRef::new("infra", "gw", "http", 8080);
    let local = ListenerRef::new("team", "local", "default", 8080);
    let vias = [None, Some(&gw), Some(&local)];
    let models = ["a", "b", "c", "lora-x"];
    let make = |name: &str, created: i64, model: &str, server: &str, bound: bool| {
        let mut r = with_rules(
            route("team", name, created, model),
            vec![catch_all("team", server)],
        );
        if bound {
            r.parents = vec![ParentRef {
                gateway: ObjectRef::new("infra", "gw"),
                section_name: None,
                port: None,
            }];
        }
        if name == "lora" {
            r.lora_adapters = vec!["lora-x".into()];
        }
        Arc::new(r)
    };
    for gateway_mode in [false, true] {
        let options = BuildOptions { gateway_mode };
        let first = vec![
            make("old", 1, "a", "s-old", false),
            make("new", 3, "a", "s-new", true),
            make("b", 2, "b", "s-b", false),
            make("lora", 4, "c", "s-lora", false),
        ];
        let mut table = RouteTable::build(first.clone(), options);
        // Renamed, rebound, deleted, added, re-aged: one at a time.
        let steps: Vec<(Option<usize>, Option<Arc<kthena_core::Route>>)> = vec![
            (Some(0), Some(make("old", 1, "b", "s-old", false))),
            (Some(1), Some(make("new", 3, "a", "s-new", false))),
            (Some(2), None),
            (None, Some(make("added", 0, "a", "s-added", true))),
            (Some(3), Some(make("lora", 0, "c", "s-lora2", false))),
        ];
        let mut current: Vec<Option<Arc<kthena_core::Route>>> =
            first.into_iter().map(Some).collect();
        for (i, (at, after)) in steps.into_iter().enumerate() {
            let before = at.and_then(|k| current[k].clone());
            table = table.with_changes(&[(before, after.clone())]);
            match at {
                Some(k) => current[k] = after,
                None => current.push(after),
            }
            let fresh = RouteTable::build(current.iter().flatten().cloned(), options);
            assert_eq!(
                answers(&table, &models, &vias),
                answers(&fresh, &models, &vias),
                "gateway mode {gateway_mode}, after step {i}"
            );
            assert_eq!(table.len(), fresh.len());
            assert_eq!(table.skipped().len(), fresh.skipped().len());
        }
    }
}
