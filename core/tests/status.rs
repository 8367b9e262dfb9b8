//! Every status reason the pure status functions choose, table-driven.

use kthena_core::conditions::reasons;
use kthena_core::gateway::{AllowedNamespaces, Listener, ParentedHttpRoute, Protocol};
use kthena_core::http_route::{
    BackendRef, BackendTarget, HttpRoute, HttpRule, InferencePoolApi, Timeouts,
};
use kthena_core::status::{self, BackendState, Condition};
use kthena_core::{
    Backend, CreationOrder, FieldErrors, Gateway, ListenerRef, ObjectRef, ParentRef, Route, Rule,
    Target,
};

fn route(parents: Vec<ParentRef>, servers: &[&str]) -> Route {
    let targets = servers
        .iter()
        .map(|s| Target {
            backend: Backend::ModelServer(ObjectRef::new("team", *s)),
            weight: 100,
        })
        .collect();
    Route {
        id: ObjectRef::new("team", "r"),
        order: CreationOrder {
            created_unix_nanos: Some(1),
            namespace: "team".into(),
            name: "r".into(),
        },
        model_name: Some("m".into()),
        lora_adapters: vec![],
        parents,
        rules: vec![Rule::new(None, None, targets)],
        rate_limit: None,
    }
}

fn parent(gw: &str, section: Option<&str>, port: Option<u16>) -> ParentRef {
    ParentRef {
        gateway: ObjectRef::new("infra", gw),
        section_name: section.map(Into::into),
        port,
    }
}

/// Expected (status, reason) of a condition.
type Want = (bool, &'static str);

fn cond<'a>(cs: &'a [Condition], kind: &str) -> &'a Condition {
    cs.iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in {cs:?}"))
}

#[test]
fn model_route_reasons() {
    let listeners = [ListenerRef::new("infra", "gw", "http", 8080)];
    let exists = |b: &Backend| b.object().name == "live";
    let cases: Vec<(&str, Route, bool, Want, Want)> = vec![
        (
            "unbound",
            route(vec![], &["live"]),
            false,
            (true, reasons::ACCEPTED),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "missing target",
            route(vec![], &["live", "gone"]),
            false,
            (true, reasons::ACCEPTED),
            (false, reasons::BACKEND_NOT_FOUND),
        ),
        (
            "parents without gateway mode",
            route(vec![parent("gw", None, None)], &["live"]),
            false,
            (false, reasons::GATEWAY_API_DISABLED),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "bound to our listener",
            route(vec![parent("gw", Some("http"), None)], &["live"]),
            true,
            (true, reasons::ACCEPTED),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "unknown gateway",
            route(vec![parent("other", None, None)], &["live"]),
            true,
            (false, reasons::NO_MATCHING_PARENT),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "unknown section",
            route(vec![parent("gw", Some("https"), None)], &["live"]),
            true,
            (false, reasons::NO_MATCHING_PARENT),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "wrong port",
            route(vec![parent("gw", None, Some(9))], &["live"]),
            true,
            (false, reasons::NO_MATCHING_PARENT),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "one of two parents",
            route(
                vec![parent("other", None, None), parent("gw", None, None)],
                &["live"],
            ),
            true,
            (true, reasons::ACCEPTED),
            (true, reasons::RESOLVED_REFS),
        ),
    ];
    for (what, r, gateway_mode, accepted, resolved) in cases {
        let s = status::model_route(&r, gateway_mode, &listeners, exists);
        let a = cond(&s.conditions, "Accepted");
        let rr = cond(&s.conditions, "ResolvedRefs");
        assert_eq!((a.status, a.reason), accepted, "{what}: {a:?}");
        assert_eq!((rr.status, rr.reason), resolved, "{what}: {rr:?}");
        if gateway_mode {
            assert_eq!(s.parents.len(), r.parents.len(), "{what}");
        }
    }
    let s = status::model_route(
        &route(
            vec![parent("other", None, None), parent("gw", None, None)],
            &["live"],
        ),
        true,
        &listeners,
        exists,
    );
    assert_eq!(
        s.parents[0].conditions[0].reason,
        reasons::NO_MATCHING_PARENT
    );
    assert_eq!(s.parents[1].conditions[0].reason, reasons::ACCEPTED);
}

#[test]
fn invalid_route_lists_its_fields() {
    let mut errs = FieldErrors::new();
    errs.push("spec.rules[0].modelMatch.uri.regex", "invalid regex \"(\"");
    let c = &status::invalid(&errs)[0];
    assert_eq!((c.status, c.reason), (false, reasons::INVALID));
    assert!(
        c.message.contains("spec.rules[0].modelMatch.uri.regex"),
        "{}",
        c.message
    );
}

#[test]
fn ready_counts_endpoints() {
    assert_eq!(status::ready(3)[0].reason, reasons::READY);
    assert!(status::ready(3)[0].message.starts_with("3 "));
    assert_eq!(
        (status::ready(0)[0].status, status::ready(0)[0].reason),
        (false, reasons::NO_READY_ENDPOINTS)
    );
}

fn gateway(hostname: Option<&str>, allowed: AllowedNamespaces, http_routes: bool) -> Gateway {
    Gateway {
        id: ObjectRef::new("infra", "gw"),
        order: CreationOrder {
            created_unix_nanos: Some(1),
            namespace: "infra".into(),
            name: "gw".into(),
        },
        class_name: "kthena-router".into(),
        listeners: vec![Listener {
            name: "http".into(),
            port: 8080,
            protocol: Protocol::Http,
            hostname: hostname.map(Into::into),
            allowed_namespaces: allowed,
            allows_http_routes: http_routes,
            certificate_refs: vec![],
        }],
        implicit: false,
    }
}

fn http_route(
    hostnames: &[&str],
    backends: Vec<BackendTarget>,
    parents: Vec<ParentRef>,
) -> ParentedHttpRoute {
    let backends = backends
        .into_iter()
        .map(|target| BackendRef { target, weight: 1 })
        .collect();
    ParentedHttpRoute {
        route: HttpRoute {
            id: ObjectRef::new("team", "h"),
            order: CreationOrder {
                created_unix_nanos: Some(1),
                namespace: "team".into(),
                name: "h".into(),
            },
            hostnames: hostnames.iter().map(|h| (*h).to_owned()).collect(),
            rules: vec![HttpRule::new(
                None,
                vec![],
                vec![],
                backends,
                Timeouts::default(),
            )],
        },
        parents,
    }
}

fn pool(name: &str) -> BackendTarget {
    BackendTarget::InferencePool {
        api: InferencePoolApi::V1,
        pool: ObjectRef::new("team", name),
    }
}

#[test]
fn http_route_parent_reasons() {
    let all = AllowedNamespaces::All;
    let exists = |b: &BackendTarget| match b {
        BackendTarget::InferencePool { pool, .. } if pool.name == "live" => BackendState::Resolved,
        BackendTarget::InferencePool { pool, .. } => {
            BackendState::NotFound(format!("InferencePool {pool}"))
        }
        BackendTarget::NotPermitted(_) => BackendState::NotPermitted("Service models/s".into()),
        _ => BackendState::InvalidKind("x.io/Thing team/t".into()),
    };
    let to_gw = || vec![parent("gw", None, None)];
    let team_label = std::collections::BTreeMap::from([("team".to_owned(), "a".to_owned())]);
    let cases: Vec<(&str, Gateway, ParentedHttpRoute, Want, Want)> = vec![
        (
            "accepted",
            gateway(None, all.clone(), true),
            http_route(&[], vec![pool("live")], to_gw()),
            (true, reasons::ACCEPTED),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "no such listener",
            gateway(None, all.clone(), true),
            http_route(
                &[],
                vec![pool("live")],
                vec![parent("gw", Some("nope"), None)],
            ),
            (false, reasons::NO_MATCHING_PARENT),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "no such port",
            gateway(None, all.clone(), true),
            http_route(&[], vec![pool("live")], vec![parent("gw", None, Some(9))]),
            (false, reasons::NO_MATCHING_PARENT),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "namespace labels match the Selector",
            gateway(None, AllowedNamespaces::Selector(team_label.clone()), true),
            http_route(&[], vec![pool("live")], to_gw()),
            (true, reasons::ACCEPTED),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "namespace name label matches the Selector",
            gateway(
                None,
                AllowedNamespaces::Selector(
                    [("kubernetes.io/metadata.name".to_owned(), "team".to_owned())].into(),
                ),
                true,
            ),
            http_route(&[], vec![pool("live")], to_gw()),
            (true, reasons::ACCEPTED),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "namespace labels miss the Selector",
            gateway(
                None,
                AllowedNamespaces::Selector([("team".to_owned(), "b".to_owned())].into()),
                true,
            ),
            http_route(&[], vec![pool("live")], to_gw()),
            (false, reasons::NOT_ALLOWED_BY_LISTENERS),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "backend in another namespace without a grant",
            gateway(None, all.clone(), true),
            http_route(
                &[],
                vec![BackendTarget::NotPermitted(Box::new(pool("live")))],
                to_gw(),
            ),
            (true, reasons::ACCEPTED),
            (false, reasons::REF_NOT_PERMITTED),
        ),
        (
            "other namespace, Same",
            gateway(None, AllowedNamespaces::Same, true),
            http_route(&[], vec![pool("live")], to_gw()),
            (false, reasons::NOT_ALLOWED_BY_LISTENERS),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "kinds exclude HTTPRoute",
            gateway(None, all.clone(), false),
            http_route(&[], vec![pool("live")], to_gw()),
            (false, reasons::NOT_ALLOWED_BY_LISTENERS),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "hostnames disjoint",
            gateway(Some("*.a.com"), all.clone(), true),
            http_route(&["x.b.com"], vec![pool("live")], to_gw()),
            (false, reasons::NO_MATCHING_LISTENER_HOSTNAME),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "hostnames meet",
            gateway(Some("*.a.com"), all.clone(), true),
            http_route(&["x.a.com"], vec![pool("live")], to_gw()),
            (true, reasons::ACCEPTED),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "missing pool",
            gateway(None, all.clone(), true),
            http_route(&[], vec![pool("gone")], to_gw()),
            (true, reasons::ACCEPTED),
            (false, reasons::BACKEND_NOT_FOUND),
        ),
        (
            "unsupported kind",
            gateway(None, all, true),
            http_route(
                &[],
                vec![BackendTarget::Unsupported {
                    group: "x.io".into(),
                    kind: "Thing".into(),
                    object: ObjectRef::new("team", "t"),
                }],
                to_gw(),
            ),
            (true, reasons::ACCEPTED),
            (false, reasons::INVALID_KIND),
        ),
    ];
    let mut namespaces = kthena_core::gateway::Namespaces::default();
    namespaces.insert("team".into(), team_label);
    for (what, gw, route, accepted, resolved) in cases {
        let parents = status::http_route_parents(&route, &[gw], &namespaces, exists);
        assert_eq!(parents.len(), 1, "{what}");
        let cs = &parents[0].conditions;
        let (a, r) = (cond(cs, "Accepted"), cond(cs, "ResolvedRefs"));
        assert_eq!((a.status, a.reason), accepted, "{what}: {a:?}");
        assert_eq!((r.status, r.reason), resolved, "{what}: {r:?}");
    }
}

#[test]
fn http_route_parent_that_is_not_ours_gets_no_entry() {
    let route = http_route(&[], vec![pool("live")], vec![parent("other", None, None)]);
    let gw = gateway(None, AllowedNamespaces::All, true);
    let parents = status::http_route_parents(&route, &[gw], &Default::default(), |_| {
        BackendState::Resolved
    });
    assert!(parents.is_empty());
}

#[test]
fn resolved_refs_names_every_bad_backend_of_the_chosen_reason() {
    let c = status::backends_resolved(&[
        BackendState::Resolved,
        BackendState::NotFound("Service a/x".into()),
        BackendState::NotFound("Service a/y port 80".into()),
    ]);
    assert_eq!((c.status, c.reason), (false, reasons::BACKEND_NOT_FOUND));
    assert!(c.message.contains("Service a/x") && c.message.contains("a/y port 80"));
    let c = status::backends_resolved(&[
        BackendState::NotFound("Service a/x".into()),
        BackendState::NotPermitted("core/Service b/y".into()),
    ]);
    assert_eq!(c.reason, reasons::REF_NOT_PERMITTED);
    let c = status::backends_resolved(&[
        BackendState::NotPermitted("core/Service b/y".into()),
        BackendState::InvalidKind("x.io/Thing a/t".into()),
    ]);
    assert_eq!(c.reason, reasons::INVALID_KIND);
    let c = status::backends_resolved(&[
        BackendState::Resolved,
        BackendState::UnsupportedProtocol(
            "Service a/ws port 81 (appProtocol kubernetes.io/ws)".into(),
        ),
    ]);
    assert_eq!((c.status, c.reason), (false, reasons::UNSUPPORTED_PROTOCOL));
    assert!(c.message.contains("a/ws port 81"), "{}", c.message);
    let c = status::backends_resolved(&[
        BackendState::UnsupportedProtocol("Service a/ws port 81".into()),
        BackendState::NotFound("Service a/x".into()),
    ]);
    assert_eq!(c.reason, reasons::BACKEND_NOT_FOUND);
    assert!(status::backends_resolved(&[]).status);
}

#[test]
fn listener_conflicts_across_gateways_oldest_wins() {
    let mk = |gw: &str, created: i64, listeners: Vec<(&str, u16, Protocol, Option<&str>)>| {
        let mut g = gateway(None, AllowedNamespaces::All, true);
        g.id = ObjectRef::new("infra", gw);
        g.order = CreationOrder {
            created_unix_nanos: Some(created),
            namespace: "infra".into(),
            name: gw.into(),
        };
        g.listeners = listeners
            .into_iter()
            .map(|(name, port, protocol, host)| Listener {
                name: name.into(),
                port,
                protocol,
                hostname: host.map(Into::into),
                allowed_namespaces: AllowedNamespaces::All,
                allows_http_routes: true,
                certificate_refs: vec![],
            })
            .collect();
        g
    };
    let gateways = [
        // Listed first but younger: loses.
        mk(
            "young",
            20,
            vec![
                ("https", 8443, Protocol::Http, None),
                ("same-host", 9000, Protocol::Http, Some("a.example.com")),
                ("other-host", 9000, Protocol::Http, Some("b.example.com")),
                ("main", 8080, Protocol::Https, None),
            ],
        ),
        mk(
            "old",
            10,
            vec![
                ("https", 8443, Protocol::Https, None),
                ("host", 9000, Protocol::Http, Some("a.example.com")),
                ("tcp", 8443, Protocol::Other("TCP".into()), None),
            ],
        ),
    ];
    let found = kthena_core::gateway::conflicts(&gateways, Some(8080));
    let got: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|c| {
            (
                c.listener.gateway.name.as_str(),
                c.listener.section_name.as_str(),
                c.reason,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("young", "https", reasons::PROTOCOL_CONFLICT),
            ("young", "same-host", reasons::HOSTNAME_CONFLICT),
            ("young", "main", reasons::PROTOCOL_CONFLICT),
        ]
    );
    assert!(
        found[0].message.contains("infra/old/https"),
        "{}",
        found[0].message
    );
    let s = status::gateway(&gateways[0], |_| 0, |_| true, |_| None, &found);
    let c = &s.listeners[0].conditions;
    assert_eq!(
        (cond(c, "Conflicted").status, cond(c, "Conflicted").reason),
        (true, reasons::PROTOCOL_CONFLICT)
    );
    assert_eq!(
        (cond(c, "Programmed").status, cond(c, "Programmed").reason),
        (false, reasons::INVALID)
    );
    let other = &s.listeners[2].conditions;
    assert_eq!(cond(other, "Conflicted").reason, reasons::NO_CONFLICTS);
    assert!(cond(other, "Programmed").status);
}

#[test]
fn other_status_reasons() {
    let a = ObjectRef::new("team", "a");
    let b = ObjectRef::new("team", "b");
    let reason = |cs: Vec<status::Condition>| (cs[0].status, cs[0].reason);
    assert_eq!(
        reason(status::inference_model("m", &a, &a, true)),
        (true, reasons::ACCEPTED)
    );
    assert_eq!(
        reason(status::inference_model("m", &a, &b, true)),
        (false, reasons::MODEL_NAME_IN_USE)
    );
    assert_eq!(
        reason(status::inference_model("m", &a, &a, false)),
        (false, reasons::POOL_NOT_FOUND)
    );
    assert_eq!(
        reason(status::gateway_class("volcano.sh/kthena-router")),
        (true, reasons::ACCEPTED)
    );
    let mut errs = kthena_core::FieldErrors::new();
    errs.push("spec.rules[0].matches[0].path.value", "invalid regex");
    let cs = status::invalid_gateway(&errs);
    assert_eq!(
        (cs[0].reason, cs[1].kind, cs[1].status),
        (reasons::INVALID, "Programmed", false)
    );
    let cs = status::unsupported_value(&errs);
    assert_eq!(reason(cs.clone()), (false, reasons::UNSUPPORTED_VALUE));
    assert!(
        cs[0]
            .message
            .contains("spec.rules[0].matches[0].path.value")
    );
}

#[test]
fn gateway_and_listener_reasons() {
    let mut gw = gateway(None, AllowedNamespaces::All, true);
    let mk = |name: &str, port: u16, protocol: Protocol, http_routes: bool| Listener {
        name: name.into(),
        port,
        protocol,
        hostname: None,
        allowed_namespaces: AllowedNamespaces::All,
        allows_http_routes: http_routes,
        certificate_refs: vec![],
    };
    gw.listeners = vec![
        mk("ok", 8080, Protocol::Http, true),
        mk("taken", 8081, Protocol::Http, true),
        mk("tls", 8443, Protocol::Https, true),
        mk("bad-cert", 8444, Protocol::Https, true),
        mk("tcp", 9000, Protocol::Other("TCP".into()), false),
        mk("no-kinds", 8082, Protocol::Http, false),
    ];
    let bad_cert = |l: &ListenerRef| {
        (l.section_name == "bad-cert").then(|| {
            (
                reasons::INVALID_CERTIFICATE_REF,
                "Secret team/x not found".to_owned(),
            )
        })
    };
    let s = status::gateway(
        &gw,
        |l| if l.section_name == "ok" { 2 } else { 0 },
        |port| port != 8081,
        bad_cert,
        &[],
    );
    let want: [(&str, Want, Want, Want); 6] = [
        (
            "ok",
            (true, reasons::ACCEPTED),
            (true, reasons::PROGRAMMED),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "taken",
            (false, reasons::PORT_UNAVAILABLE),
            (false, reasons::INVALID),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "tls",
            (true, reasons::ACCEPTED),
            (true, reasons::PROGRAMMED),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "bad-cert",
            (true, reasons::ACCEPTED),
            (false, reasons::INVALID),
            (false, reasons::INVALID_CERTIFICATE_REF),
        ),
        (
            "tcp",
            (false, reasons::UNSUPPORTED_PROTOCOL),
            (false, reasons::INVALID),
            (true, reasons::RESOLVED_REFS),
        ),
        (
            "no-kinds",
            (true, reasons::ACCEPTED),
            (true, reasons::PROGRAMMED),
            (false, reasons::INVALID_ROUTE_KINDS),
        ),
    ];
    for (l, (name, accepted, programmed, resolved)) in s.listeners.iter().zip(want) {
        assert_eq!(l.name, name);
        let c = &l.conditions;
        assert_eq!(
            (cond(c, "Accepted").status, cond(c, "Accepted").reason),
            accepted,
            "{name}"
        );
        assert_eq!(
            (cond(c, "Programmed").status, cond(c, "Programmed").reason),
            programmed,
            "{name}"
        );
        assert_eq!(
            (
                cond(c, "ResolvedRefs").status,
                cond(c, "ResolvedRefs").reason
            ),
            resolved,
            "{name}"
        );
        assert_eq!(
            cond(c, "Conflicted").reason,
            reasons::NO_CONFLICTS,
            "{name}"
        );
    }
    assert_eq!(s.listeners[0].attached_routes, 2);
    assert_eq!(
        s.listeners[0].supported_kinds,
        vec![("gateway.networking.k8s.io", "HTTPRoute")]
    );
    assert!(s.listeners[5].supported_kinds.is_empty());
    let a = cond(&s.conditions, "Accepted");
    assert_eq!((a.status, a.reason), (true, reasons::LISTENERS_NOT_VALID));
    assert!(cond(&s.conditions, "Programmed").status);

    gw.listeners = vec![mk("taken", 8081, Protocol::Http, true)];
    let s = status::gateway(&gw, |_| 0, |_| false, |_| None, &[]);
    let a = cond(&s.conditions, "Accepted");
    assert_eq!((a.status, a.reason), (false, reasons::LISTENERS_NOT_VALID));
    assert_eq!(cond(&s.conditions, "Programmed").reason, reasons::INVALID);
}

#[test]
fn inference_pool_parents_are_the_gateways_routing_to_it() {
    let live = kthena_core::InferencePool {
        id: ObjectRef::new("team", "live"),
        api: InferencePoolApi::V1,
        match_labels: [("app".to_owned(), "x".to_owned())].into(),
        port: 8000,
        protocol: kthena_core::Protocol::Http,
        endpoint_picker: Some("live-epp".into()),
    };
    let routes = [
        http_route(
            &[],
            vec![pool("live")],
            vec![parent("gw", None, None), parent("gw", Some("http"), None)],
        ),
        http_route(
            &[],
            vec![pool("other")],
            vec![parent("elsewhere", None, None)],
        ),
    ];
    let parents = status::inference_pool_parents(&live, &routes);
    assert_eq!(parents.len(), 1);
    assert_eq!(parents[0].0, ObjectRef::new("infra", "gw"));
    let accepted = cond(&parents[0].1, "Accepted");
    assert!(
        accepted.status && accepted.message.contains("\"live-epp\" is not called"),
        "{accepted:?}"
    );
}

#[test]
fn newer_routes_claiming_an_older_routes_name_on_shared_listeners_are_conflicted() {
    let mk = |ns: &str, name: &str, created: i64, model: &str, lora: &[&str], parents| {
        let mut r = route(parents, &["live"]);
        r.id = ObjectRef::new(ns, name);
        r.order = CreationOrder {
            created_unix_nanos: Some(created),
            namespace: ns.into(),
            name: name.into(),
        };
        r.model_name = (!model.is_empty()).then(|| model.to_owned());
        r.lora_adapters = lora.iter().map(|l| (*l).to_owned()).collect();
        r
    };
    let listeners = [
        ListenerRef::new("infra", "gw", "http", 8080),
        ListenerRef::new("infra", "gw2", "http", 8081),
        ListenerRef::new("team", "local", "http", 9000),
    ];
    let routes = vec![
        // Listed first but newer than `old`: loses "m" on gw.
        mk("team", "new", 20, "m", &[], vec![parent("gw", None, None)]),
        mk("team", "old", 10, "m", &[], vec![parent("gw", None, None)]),
        // Same name on another Gateway: no conflict in gateway mode.
        mk(
            "team",
            "other-port",
            5,
            "m",
            &[],
            vec![parent("gw2", None, None)],
        ),
        // A LoRA name equal to an older modelName, without parentRefs (namespace team's
        // Gateway `local`): no shared listener with `old`.
        mk("team", "lora", 30, "", &["m"], vec![]),
        mk("team", "lora-newer", 40, "x", &["m"], vec![]),
    ];
    let got = |gateway_mode| -> Vec<(String, String, String)> {
        status::model_name_conflicts(&routes, gateway_mode, &listeners)
            .into_iter()
            .map(|c| (c.route.name, c.older.name, c.name))
            .collect()
    };
    assert_eq!(
        got(true),
        [
            ("new".to_owned(), "old".to_owned(), "m".to_owned()),
            ("lora-newer".to_owned(), "lora".to_owned(), "m".to_owned()),
        ]
    );
    // Outside gateway mode routes with parentRefs are not served; the others all compete.
    assert_eq!(
        got(false),
        [("lora-newer".to_owned(), "lora".to_owned(), "m".to_owned())]
    );
    let c = status::conflicted(&status::model_name_conflicts(&routes, true, &listeners)[0]);
    assert_eq!((c.status, c.reason), (false, reasons::CONFLICTED));
    assert!(c.message.contains("team/old"), "{}", c.message);
}

#[test]
fn the_implicit_default_gateway_yields_its_port_to_any_user_gateway() {
    let mk = |ns: &str, created: Option<i64>, implicit: bool| {
        let mut g = gateway(None, AllowedNamespaces::All, true);
        g.id = ObjectRef::new(ns, "default");
        g.order = CreationOrder {
            created_unix_nanos: created,
            namespace: ns.into(),
            name: "default".into(),
        };
        g.implicit = implicit;
        g
    };
    // Read from files (no creation time) or older than the user's: the implicit one still
    // loses, in either list order.
    for created in [None, Some(1)] {
        let mut gateways = vec![
            mk("default", created, true),
            mk("kthena-system", None, false),
        ];
        for _ in 0..2 {
            let found = kthena_core::gateway::conflicts(&gateways, Some(8080));
            let losers: Vec<&str> = found
                .iter()
                .map(|c| c.listener.gateway.namespace.as_str())
                .collect();
            assert_eq!(losers, ["default"], "{found:?}");
            assert_eq!(found[0].reason, reasons::HOSTNAME_CONFLICT);
            gateways.reverse();
        }
    }
}
