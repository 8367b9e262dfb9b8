//! The admission rules over the example corpus and over small cluster scenarios: every file of
//! examples/invalid/ is denied naming the field of its `# expect:` line, every valid example is
//! admitted next to all the others, and model names conflict only on shared listeners.

#[path = "support/corpus.rs"]
mod corpus;

use corpus::{context, examples, file_name, invalid_examples, load};
use kthena_api::manifest::{self, Object};
use kthena_webhook::{Cluster, Objects, Options, Scope, review};

/// The examples are written for a router in gateway mode (they hold Gateways and parentRefs).
const GATEWAY: Options = Options {
    allow_duplicate_model_names: false,
    gateway_mode: true,
};

#[test]
fn every_invalid_example_is_denied_naming_the_expected_field_and_nothing_else() {
    let cluster = context();
    let cases = invalid_examples();
    assert!(cases.len() >= 30, "only {} invalid examples", cases.len());
    let mut failures = Vec::new();
    for (file, object, expect) in &cases {
        let name = file_name(file);
        match review(object, None, &cluster, GATEWAY) {
            Ok(()) => failures.push(format!("{name}: admitted")),
            Err(errs) => {
                let message = errs.to_string();
                if !message.contains(&format!("{expect}: ")) {
                    failures.push(format!("{name}: {expect:?} not named in {message:?}"));
                }
                // One defect per file: nothing but the expected field may be reported.
                if let Some(other) = errs.as_slice().iter().find(|e| !e.path.contains(expect)) {
                    failures.push(format!("{name}: also reports {other}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_context_of_the_invalid_examples_is_itself_valid() {
    let cluster = context();
    for object in cluster.as_slice() {
        review(object, None, &cluster, GATEWAY).unwrap_or_else(|e| panic!("{object:?}: {e}"));
    }
}

#[test]
fn every_valid_example_is_admitted_with_all_the_other_examples_present() {
    let objects = load(&examples());
    let cluster: Objects = objects.iter().map(|(_, o)| o.clone()).collect();
    // The examples deliberately serve one modelName on two Gateways: no conflict.
    let gateway_routes = objects
        .iter()
        .filter(
            |(_, o)| matches!(o, Object::ModelRoute(r) if r.spec.model_name == "deepseek-r1-gw"),
        )
        .count();
    assert_eq!(gateway_routes, 2);
    let failures: Vec<String> = objects
        .iter()
        .filter_map(|(file, object)| {
            review(object, None, &cluster, GATEWAY)
                .err()
                .map(|e| format!("{}: {e}", file.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn duplicate_model_names_are_admitted_when_duplicates_are_allowed() {
    let cluster = context();
    let allow = Options {
        allow_duplicate_model_names: true,
        ..GATEWAY
    };
    let names = [
        "modelroute-duplicate-modelname-on-gateway.yaml",
        "modelroute-duplicate-modelname-in-namespace.yaml",
        "modelroute-duplicate-lora-in-namespace.yaml",
    ];
    let duplicates: Vec<_> = invalid_examples()
        .into_iter()
        .filter(|(file, _, _)| {
            file.file_name()
                .is_some_and(|n| names.iter().any(|m| n == *m))
        })
        .collect();
    assert_eq!(duplicates.len(), names.len());
    for (file, object, _) in duplicates {
        assert!(review(&object, None, &cluster, GATEWAY).is_err());
        review(&object, None, &cluster, allow)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

fn parse(yaml: &str) -> Object {
    let mut objects = manifest::parse_str(yaml, "test").unwrap_or_else(|e| panic!("{e}"));
    objects.remove(0)
}

/// A ModelRoute `namespace/name` with `claims` (`modelName: m` or `loraAdapters: [m]`) and
/// `parents` (a flow sequence of parentRefs).
fn route(namespace: &str, name: &str, claims: &str, parents: &str) -> Object {
    parse(&format!(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  {claims}\n  parentRefs: {parents}\n  rules: [{{targetModels: [{{modelServerName: s}}]}}]\n"
    ))
}

/// Gateway `namespace/name` with listeners http on 8080 and admin on 9090.
fn gateway(namespace: &str, name: &str) -> Object {
    parse(&format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n\
         metadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  gatewayClassName: kthena-router\n  listeners:\n\
         \x20 - {{name: http, port: 8080, protocol: HTTP}}\n\
         \x20 - {{name: admin, port: 9090, protocol: HTTP}}\n"
    ))
}

#[test]
fn model_names_conflict_only_on_a_shared_listener() {
    let gw = "[{name: gw}]";
    let http = "[{name: gw, sectionName: http}]";
    let admin = "[{name: gw, sectionName: admin}]";
    let port_8080 = "[{name: gw, port: 8080}]";
    // (what, existing route, candidate route, Gateway gw exists, the denial says or None)
    let cases = [
        (
            "no parentRefs, same namespace",
            route("a", "old", "modelName: m", "[]"),
            route("a", "new", "modelName: m", "[]"),
            false,
            Some("spec.modelName: \"m\" is already served by ModelRoute a/old in namespace a"),
        ),
        (
            "no parentRefs, other namespace",
            route("a", "old", "modelName: m", "[]"),
            route("b", "new", "modelName: m", "[]"),
            false,
            None,
        ),
        (
            "whole Gateway over one of its listeners",
            route("a", "old", "modelName: m", http),
            route("a", "new", "modelName: m", gw),
            true,
            Some(
                "spec.modelName: \"m\" is already served by ModelRoute a/old on Gateway a/gw listener http",
            ),
        ),
        (
            "two listeners of one Gateway",
            route("a", "old", "modelName: m", http),
            route("a", "new", "modelName: m", admin),
            true,
            None,
        ),
        (
            "port and sectionName naming the same listener",
            route("a", "old", "modelName: m", http),
            route("a", "new", "modelName: m", port_8080),
            true,
            Some("on Gateway a/gw listener http"),
        ),
        (
            "port and sectionName of a Gateway not created yet: cannot tell",
            route("a", "old", "modelName: m", http),
            route("a", "new", "modelName: m", port_8080),
            false,
            None,
        ),
        (
            "Gateway not created yet, whole Gateway over one listener",
            route("a", "old", "modelName: m", gw),
            route("a", "new", "modelName: m", http),
            false,
            Some("on Gateway a/gw listener http"),
        ),
        (
            "no parentRefs against a Gateway of the same namespace",
            route("a", "old", "modelName: m", "[]"),
            route("a", "new", "modelName: m", admin),
            true,
            Some("on Gateway a/gw listener admin"),
        ),
        (
            "no parentRefs against a Gateway of another namespace",
            route("a", "old", "modelName: m", "[]"),
            route("a", "new", "modelName: m", "[{name: gw, namespace: b}]"),
            false,
            None,
        ),
        (
            "a modelName another route serves as a LoRA adapter",
            route("a", "old", "loraAdapters: [m]", "[]"),
            route("a", "new", "modelName: m", "[]"),
            false,
            Some("spec.modelName: \"m\" is already served by ModelRoute a/old"),
        ),
        (
            "a LoRA adapter another route serves",
            route("a", "old", "loraAdapters: [x, m]", "[]"),
            route("a", "new", "loraAdapters: [m]", "[]"),
            false,
            Some("spec.loraAdapters[0]: \"m\" is already served by ModelRoute a/old"),
        ),
        (
            "the stored version of the same route (UPDATE)",
            route("a", "same", "modelName: m", "[]"),
            route("a", "same", "modelName: m", "[]"),
            false,
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (what, existing, candidate, with_gateway, want) in cases {
        let mut cluster = vec![existing];
        if with_gateway {
            cluster.push(gateway("a", "gw"));
        }
        let cluster = Objects::new(cluster);
        check(
            what,
            review(&candidate, None, &cluster, GATEWAY),
            want,
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Adds to `failures` unless `got` is admitted when `want` is `None`, or denied with `want`
/// in its text.
fn check<E: std::fmt::Display + std::fmt::Debug>(
    what: &str,
    got: Result<(), E>,
    want: Option<&str>,
    failures: &mut Vec<String>,
) {
    match (got, want) {
        (Ok(()), None) => {}
        (Err(e), Some(want)) if e.to_string().contains(want) => {}
        (got, want) => failures.push(format!("{what}: got {got:?}, want {want:?}")),
    }
}

#[test]
fn outside_gateway_mode_a_model_name_conflicts_in_every_namespace() {
    // The table matches every route without parentRefs whatever its namespace, so the newer
    // one would be shadowed; routes with parentRefs are not served and claim nothing.
    let outside = Options::default();
    let cases = [
        (
            "no parentRefs, other namespace",
            route("a", "old", "modelName: m", "[]"),
            route("b", "new", "modelName: m", "[]"),
            Some(
                "spec.modelName: \"m\" is already served by ModelRoute a/old (outside gateway mode",
            ),
        ),
        (
            "a LoRA adapter of a route in another namespace",
            route("a", "old", "loraAdapters: [m]", "[]"),
            route("b", "new", "loraAdapters: [x, m]", "[]"),
            Some("spec.loraAdapters[1]: \"m\" is already served by ModelRoute a/old"),
        ),
        (
            "the older route has parentRefs: not served",
            route("a", "old", "modelName: m", "[{name: gw}]"),
            route("b", "new", "modelName: m", "[]"),
            None,
        ),
        (
            "the newer route has parentRefs: not served",
            route("a", "old", "modelName: m", "[]"),
            route("a", "new", "modelName: m", "[{name: gw}]"),
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (what, existing, candidate, want) in cases {
        let cluster = Objects::new(vec![existing, gateway("a", "gw")]);
        check(
            what,
            review(&candidate, None, &cluster, outside),
            want,
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn model_name_cannot_change_on_update() {
    let old = route("a", "r", "modelName: m", "[]");
    let renamed = route("a", "r", "modelName: n", "[]");
    let err = review(&renamed, Some(&old), &(), Options::default()).expect_err("denied");
    assert_eq!(
        err.to_string(),
        "spec.modelName: is immutable: was \"m\", got \"n\""
    );
    review(&old, Some(&old), &(), Options::default()).expect("unchanged is admitted");
}

#[test]
fn every_problem_of_a_route_is_reported_not_only_the_first() {
    let object = parse(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {name: r, namespace: default}\n\
         spec:\n  loraAdapters: [l, '']\n  rules:\n\
         \x20 - targetModels: [{externalModelProviderName: p, weight: 0}]\n\
         \x20 - targetModels: [{modelServerName: s, weight: 101}]\n",
    );
    let err = review(&object, None, &(), Options::default()).expect_err("denied");
    let paths: Vec<&str> = err.as_slice().iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.loraAdapters[1]",
            "spec.rules[0].targetModels",
            "spec.rules[0].targetModels[0].externalModelProviderName",
            "spec.rules[1].targetModels[0].weight",
        ],
        "{err}"
    );
}

#[test]
fn kinds_without_rules_are_admitted() {
    let pod = parse("apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\n");
    review(&pod, None, &(), Options::default()).expect("admitted");
}

/// A cluster whose router serves only the Gateways of `classes`.
struct Scoped {
    objects: Objects,
    classes: Vec<&'static str>,
}

impl Cluster for Scoped {
    fn model_routes(&self) -> Vec<kthena_api::modelroute::ModelRoute> {
        self.objects.model_routes()
    }

    fn gateways(&self) -> Vec<gateway_api::apis::standard::gateways::Gateway> {
        self.objects.gateways()
    }

    fn scope(&self) -> Scope {
        Scope::Classes(self.classes.iter().map(|c| (*c).to_owned()).collect())
    }
}

/// `yaml` with every `from` replaced by `to`, parsed.
fn edited(yaml: &str, from: &str, to: &str) -> Object {
    parse(&yaml.replace(from, to))
}

#[test]
fn gateways_and_http_routes_of_other_controllers_are_not_judged() {
    let read = |name: &str| {
        std::fs::read_to_string(examples().join("invalid").join(name)).expect("example")
    };
    let gateway = read("gateway-duplicate-listener-name.yaml");
    let route = read("httproute-bad-hostname.yaml");
    let cluster = Scoped {
        objects: Objects::new(vec![
            edited(
                &gateway,
                "name: gateway-duplicate-listener-name",
                "name: default",
            ),
            edited(
                &gateway,
                "name: gateway-duplicate-listener-name\n  namespace: default\nspec:\n  gatewayClassName: kthena-router",
                "name: istio\n  namespace: default\nspec:\n  gatewayClassName: istio",
            ),
        ]),
        classes: vec!["kthena-router"],
    };
    let judged = |object: &Object| review(object, None, &cluster, GATEWAY).is_err();
    // (what, object, judged)
    let cases = [
        ("Gateway of our class", parse(&gateway), true),
        (
            "Gateway of another class",
            edited(
                &gateway,
                "gatewayClassName: kthena-router",
                "gatewayClassName: istio",
            ),
            false,
        ),
        ("HTTPRoute on our Gateway", parse(&route), true),
        (
            "HTTPRoute on another class's Gateway",
            edited(&route, "- name: default", "- name: istio"),
            false,
        ),
        (
            "HTTPRoute on both",
            edited(
                &route,
                "- name: default\n      sectionName: http",
                "- name: istio\n    - name: default",
            ),
            true,
        ),
        (
            "HTTPRoute on a Gateway that does not exist (yet)",
            edited(&route, "- name: default", "- name: later"),
            false,
        ),
        (
            "HTTPRoute on our Gateway named in another namespace",
            edited(
                &route,
                "- name: default",
                "- name: default\n      namespace: elsewhere",
            ),
            false,
        ),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter(|(_, object, want)| judged(object) != *want)
        .map(|(what, _, want)| format!("{what}: judged should be {want}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
