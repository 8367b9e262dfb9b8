//! Every manifest under examples/ parses, passes the CRD's CEL rules, converts, and routes the
//! walkthrough's requests where the walkthrough says.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kthena_api::convert;
use kthena_api::manifest::{self, Object};
use kthena_api::modelroute::ModelRoute;
use kthena_core::{Backend, BuildOptions, ListenerRef, Request, RouteTable};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Every object of examples/, except the deliberately invalid corpus.
fn objects() -> Vec<(PathBuf, Object)> {
    let all = manifest::load(&examples_dir()).expect("examples/ parses");
    all.into_iter()
        .filter(|(p, _)| !p.components().any(|c| c.as_os_str() == "invalid"))
        .collect()
}

fn routes() -> Vec<ModelRoute> {
    objects()
        .into_iter()
        .filter_map(|(_, o)| match o {
            Object::ModelRoute(r) => Some(*r),
            _ => None,
        })
        .collect()
}

#[test]
fn every_example_is_a_known_kind_that_converts_and_passes_cel() {
    let objects = objects();
    assert!(
        objects.len() >= 12,
        "examples/ holds {} objects",
        objects.len()
    );
    for (path, object) in &objects {
        let at = path.display();
        match object {
            Object::ModelRoute(r) => {
                r.validate_cel()
                    .unwrap_or_else(|e| panic!("{at}: CEL: {e:?}"));
                convert::model_route(r).unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            Object::ModelServer(s) => {
                s.validate_cel()
                    .unwrap_or_else(|e| panic!("{at}: CEL: {e:?}"));
                convert::model_server(s).unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            Object::HttpRoute(r) => {
                convert::http_route::http_route(r).unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            Object::InferencePool(p) => {
                convert::inference_pool_v1(p).unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            Object::InferencePoolV1alpha2(p) => {
                convert::inference_pool_v1alpha2(p).unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            Object::Gateway(g) => {
                convert::gateway(g).unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            Object::InferenceModel(m) => {
                convert::inference_model(m).unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            Object::InferenceObjective(o) => {
                let o = convert::inference_objective(o).unwrap_or_else(|e| panic!("{at}: {e}"));
                assert!(o.priority > 0, "{at}");
            }
            Object::ExternalModelProvider(p) => {
                p.validate_cel()
                    .unwrap_or_else(|e| panic!("{at}: CEL: {e:?}"));
                convert::external_provider(p).unwrap_or_else(|e| panic!("{at}: {e}"));
            }
            Object::Secret(s) => {
                assert!(convert::secret_data(s).is_some(), "{at}: empty Secret");
            }
            Object::Pod(_) => {}
            other => panic!("{at}: unexpected object in examples/: {other:?}"),
        }
    }
}

#[test]
fn every_route_target_and_parent_exists_in_the_examples() {
    let objects = objects();
    let servers: BTreeSet<String> = objects
        .iter()
        .filter_map(|(_, o)| match o {
            Object::ModelServer(s) => Some(convert::object_ref(s.as_ref()).to_string()),
            _ => None,
        })
        .collect();
    let providers: BTreeSet<String> = objects
        .iter()
        .filter_map(|(_, o)| match o {
            Object::ExternalModelProvider(p) => Some(convert::object_ref(p.as_ref()).to_string()),
            _ => None,
        })
        .collect();
    let listeners = listeners();
    for mr in routes() {
        let route = convert::model_route(&mr).expect("converts");
        for rule in &route.rules {
            for t in rule.targets() {
                let (known, what) = match &t.backend {
                    Backend::ModelServer(s) => (&servers, s),
                    Backend::ExternalProvider(p) => (&providers, p),
                };
                assert!(
                    known.contains(&what.to_string()),
                    "{}: no target {what}",
                    route.id
                );
            }
        }
        for p in &route.parents {
            assert!(
                listeners.iter().any(|l| p.selects(l)),
                "{}: no listener for {p:?}",
                route.id
            );
        }
    }
}

/// The listeners of the example Gateways.
fn listeners() -> Vec<ListenerRef> {
    objects()
        .into_iter()
        .filter_map(|(_, o)| match o {
            Object::Gateway(g) => Some(g),
            _ => None,
        })
        .flat_map(|g| {
            let gw = convert::object_ref(g.as_ref());
            g.spec
                .listeners
                .iter()
                .map(move |l| {
                    let port = u16::try_from(l.port).expect("listener port in range");
                    ListenerRef::new(gw.namespace.clone(), gw.name.clone(), l.name.clone(), port)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn target(table: &RouteTable, req: &Request, via: Option<&ListenerRef>) -> Option<String> {
    table
        .select(req, via)
        .ok()
        .map(|s| s.target.backend.object().name.clone())
}

#[test]
fn walkthrough_requests_reach_the_documented_model_servers() {
    let routes = routes();
    let (table, errors) = convert::route_table(&routes, BuildOptions::default());
    assert!(errors.is_empty(), "{errors:?}");
    let cases = [
        (Request::new("deepseek-r1"), Some("deepseek-r1-1-5b")),
        (Request::new("lora-A"), Some("deepseek-r1-7b")),
        (Request::new("lora-B"), Some("deepseek-r1-7b")),
        (
            Request::new("deepseek-multi").header("user-type", "premium"),
            Some("deepseek-r1-7b"),
        ),
        (
            Request::new("deepseek-multi").header("user-type", "free"),
            Some("deepseek-r1-1-5b"),
        ),
        (Request::new("deepseek-multi"), Some("deepseek-r1-1-5b")),
        (
            Request::new("deepseek-r1-limited"),
            Some("deepseek-r1-1-5b"),
        ),
        (
            Request::new("deepseek-r1-uri")
                .path("/v1/chat/completions")
                .header("x-tenant", "team-beta"),
            Some("deepseek-r1-7b"),
        ),
        (
            Request::new("deepseek-r1-uri")
                .path("/v1/chat/completions")
                .header("x-tenant", "team-gamma"),
            None,
        ),
        (
            Request::new("deepseek-r1-uri").path("/v1/completions"),
            Some("deepseek-r1-1-5b"),
        ),
        (Request::new("deepseek-r1-uri").path("/v1/embeddings"), None),
        // Gateway-bound routes are not served outside gateway mode.
        (Request::new("deepseek-r1-gw"), None),
        (Request::new("no-such-model"), None),
    ];
    for (req, want) in cases {
        assert_eq!(target(&table, &req, None).as_deref(), want, "{req:?}");
    }

    let mut canary = [0; 2];
    for _ in 0..100 {
        match target(&table, &Request::new("deepseek-r1-canary"), None).as_deref() {
            Some("deepseek-r1-1-5b-v1") => canary[0] += 1,
            Some("deepseek-r1-1-5b-v2") => canary[1] += 1,
            other => panic!("canary went to {other:?}"),
        }
    }
    assert_eq!(canary, [70, 30]);
}

#[test]
fn same_model_name_on_two_gateways_routes_by_port() {
    let (table, errors) = convert::route_table(&routes(), BuildOptions { gateway_mode: true });
    assert!(errors.is_empty(), "{errors:?}");
    let listeners = listeners();
    let on_port = |port| {
        listeners
            .iter()
            .find(|l| l.port == port)
            .expect("listener on port")
    };
    let req = Request::new("deepseek-r1-gw");
    assert_eq!(
        target(&table, &req, Some(on_port(8080))).as_deref(),
        Some("deepseek-r1-1-5b")
    );
    assert_eq!(
        target(&table, &req, Some(on_port(8081))).as_deref(),
        Some("deepseek-r1-7b")
    );
    // Unbound routes of namespace default serve the default namespace's Gateways.
    let simple = Request::new("deepseek-r1");
    assert_eq!(
        target(&table, &simple, Some(on_port(8081))).as_deref(),
        Some("deepseek-r1-1-5b")
    );
}
