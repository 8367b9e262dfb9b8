//! Where two ModelRoutes are both served (`claims::overlap`), the one rule model-name
//! conflicts follow in status, the webhook and `validate`; and which listeners are served.

use kthena_core::claims::{self, Claim, Overlap, Serving};
use kthena_core::gateway::{self, AllowedNamespaces, Listener, Protocol};
use kthena_core::{CreationOrder, Gateway, ListenerRef, ObjectRef, ParentRef, Route};

fn route(namespace: &str, name: &str, parents: Vec<ParentRef>) -> Route {
    Route {
        id: ObjectRef::new(namespace, name),
        order: CreationOrder {
            created_unix_nanos: Some(1),
            namespace: namespace.into(),
            name: name.into(),
        },
        model_name: Some("m".into()),
        lora_adapters: vec!["lora-a".into()],
        parents,
        rules: vec![],
        rate_limit: None,
    }
}

fn to(gateway: &str, section: Option<&str>, port: Option<u16>) -> ParentRef {
    ParentRef {
        gateway: ObjectRef::new("infra", gateway),
        section_name: section.map(Into::into),
        port,
    }
}

#[test]
fn overlap_of_two_routes() {
    let infra_gw = [
        ListenerRef::new("infra", "gw", "http", 8080),
        ListenerRef::new("infra", "gw", "other", 9090),
    ];
    let none: [ListenerRef; 0] = [];
    let here = |n: &str| route("team", n, vec![]);
    let there = |n: &str| route("elsewhere", n, vec![]);
    // (case, gateway mode, anticipate, listeners, a, b, expected overlap)
    type Case<'a> = (
        &'a str,
        bool,
        bool,
        &'a [ListenerRef],
        Route,
        Route,
        Option<Overlap>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "outside gateway mode two routes without parents meet across namespaces",
            false,
            false,
            &none,
            here("a"),
            there("b"),
            Some(Overlap::Everywhere),
        ),
        (
            "outside gateway mode a route with parents is not served",
            false,
            true,
            &none,
            here("a"),
            route("team", "b", vec![to("gw", None, None)]),
            None,
        ),
        (
            "gateway mode: a shared listener",
            true,
            false,
            &infra_gw,
            route("team", "a", vec![to("gw", Some("http"), None)]),
            route("team", "b", vec![to("gw", None, Some(8080))]),
            Some(Overlap::Listener(infra_gw[0].clone())),
        ),
        (
            "gateway mode: different listeners of one Gateway",
            true,
            true,
            &infra_gw,
            route("team", "a", vec![to("gw", Some("http"), None)]),
            route("team", "b", vec![to("gw", Some("other"), None)]),
            None,
        ),
        (
            "gateway mode: without parents, served only by Gateways of their namespace",
            true,
            false,
            &infra_gw,
            here("a"),
            here("b"),
            None,
        ),
        (
            "admission: parentless routes of a namespace without a Gateway meet there",
            true,
            true,
            &infra_gw,
            here("a"),
            here("b"),
            Some(Overlap::Namespace("team".into())),
        ),
        (
            "admission: parentless routes of two namespaces never meet",
            true,
            true,
            &none,
            here("a"),
            there("b"),
            None,
        ),
        (
            "status: a Gateway not created yet serves nothing",
            true,
            false,
            &none,
            route("team", "a", vec![to("new", None, None)]),
            route("team", "b", vec![to("new", Some("http"), None)]),
            None,
        ),
        (
            "admission: a whole Gateway not created yet covers one listener of it",
            true,
            true,
            &none,
            route("team", "a", vec![to("new", None, None)]),
            route("team", "b", vec![to("new", Some("http"), None)]),
            Some(Overlap::Reference(to("new", Some("http"), None))),
        ),
        (
            "admission: a listener name and a port of a Gateway not created yet may differ",
            true,
            true,
            &none,
            route("team", "a", vec![to("new", None, Some(80))]),
            route("team", "b", vec![to("new", Some("http"), None)]),
            None,
        ),
        (
            "admission: a parentless route meets a reference to a future Gateway of its namespace",
            true,
            true,
            &none,
            route("infra", "a", vec![]),
            route("team", "b", vec![to("new", None, None)]),
            Some(Overlap::Reference(to("new", None, None))),
        ),
    ];
    for (case, gateway_mode, anticipate, listeners, a, b, want) in cases {
        let serving = Serving {
            gateway_mode,
            listeners,
            anticipate,
        };
        assert_eq!(claims::overlap(&a, &b, &serving), want, "{case}");
        assert_eq!(claims::overlap(&b, &a, &serving), want, "{case} (swapped)");
    }
}

#[test]
fn overlap_names_the_place_in_the_message() {
    let cases = [
        (
            Overlap::Everywhere,
            "(outside gateway mode every route without parentRefs is matched, whatever its namespace)",
        ),
        (
            Overlap::Namespace("team".into()),
            "in namespace team (neither route has parentRefs)",
        ),
        (
            Overlap::Listener(ListenerRef::new("infra", "gw", "http", 80)),
            "on Gateway infra/gw listener http",
        ),
        (
            Overlap::Reference(to("gw", None, Some(80))),
            "on Gateway infra/gw port 80",
        ),
        (
            Overlap::Reference(to("gw", None, None)),
            "on Gateway infra/gw",
        ),
    ];
    for (overlap, text) in cases {
        assert_eq!(overlap.to_string(), text);
    }
}

#[test]
fn a_route_claims_its_model_name_then_its_adapters() {
    let r = route("team", "a", vec![]);
    let got: Vec<(String, String)> = claims::claims(&r)
        .map(|c| (c.name().to_owned(), c.path()))
        .collect();
    assert_eq!(
        got,
        [
            ("m".to_owned(), "spec.modelName".to_owned()),
            ("lora-a".to_owned(), "spec.loraAdapters[0]".to_owned()),
        ]
    );
    assert!(claims::claims_name(&r, "lora-a"));
    assert!(!claims::claims_name(&r, "other"));
    assert_eq!(claims::claims(&r).next(), Some(Claim::ModelName("m")));
}

fn listener(name: &str, port: u16, protocol: Protocol, hostname: Option<&str>) -> Listener {
    Listener {
        name: name.into(),
        port,
        protocol,
        hostname: hostname.map(Into::into),
        allowed_namespaces: AllowedNamespaces::Same,
        allows_http_routes: true,
        certificate_refs: vec![],
    }
}

#[test]
fn served_listeners_leave_out_other_protocols_and_lost_conflicts() {
    let gw = |name: &str, t: i64, listeners: Vec<Listener>| Gateway {
        id: ObjectRef::new("infra", name),
        order: CreationOrder {
            created_unix_nanos: Some(t),
            namespace: "infra".into(),
            name: name.into(),
        },
        class_name: "kthena".into(),
        listeners,
        implicit: false,
    };
    let gateways = [
        gw(
            "old",
            1,
            vec![
                listener("http", 80, Protocol::Http, None),
                listener("tcp", 81, Protocol::Other("TCP".into()), None),
            ],
        ),
        gw(
            "new",
            2,
            vec![
                listener("same-host", 80, Protocol::Http, None),
                listener("own-host", 80, Protocol::Http, Some("a.example")),
            ],
        ),
    ];
    let lost = gateway::conflicts(&gateways, None);
    assert_eq!(
        gateway::served_listeners(&gateways, &lost),
        [
            ListenerRef::new("infra", "old", "http", 80),
            ListenerRef::new("infra", "new", "own-host", 80),
        ]
    );
}
