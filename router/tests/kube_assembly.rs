//! What Kubernetes mode does with the objects it watches: invalid ones are left out and
//! reported in their status, the rest is served; the status report carries every object's
//! generation.

use std::sync::Arc;

use kthena_api::manifest::{Object, parse_str};
use kthena_dataplane::source::GatewayOptions;
use kthena_dataplane::source::assemble::assemble;
use kthena_dataplane::state::{ObjectKind, StatusInputs};
use kthena_dataplane::status::{Sources, report};

fn objects(yaml: &str) -> Vec<(String, Object)> {
    parse_str(yaml, "test")
        .expect("valid YAML")
        .into_iter()
        .map(|o| ("apiserver".to_owned(), o))
        .collect()
}

/// The status report of `inputs`, with no pool running and no HTTPRoute table.
fn report_of(inputs: StatusInputs) -> Vec<kthena_dataplane::status::ObjectStatus> {
    let pools = Arc::new(Default::default());
    let tables = Default::default();
    report(Sources {
        inputs: &inputs,
        pools: &pools,
        tables: &tables,
        controller_name: "volcano.sh/kthena-router",
        priority_queueing: false,
    })
}

const OBJECTS: &str = "
apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelRoute
metadata: {name: good, namespace: team, generation: 3}
spec:
  modelName: m
  rules:
  - targetModels: [{modelServerName: server}]
---
apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelRoute
metadata: {name: broken, namespace: team, generation: 7}
spec:
  modelName: x
  rules:
  - modelMatch: {uri: {regex: '('}}
    targetModels: [{modelServerName: server}]
---
apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelServer
metadata: {name: server, namespace: team, generation: 2}
spec:
  inferenceEngine: vLLM
  workloadSelector: {matchLabels: {app: engine}}
  workloadPort: {port: 8000}
";

#[test]
fn invalid_objects_are_left_out_and_reported_with_their_fields() {
    let (config, problems) = assemble(objects(OBJECTS), &GatewayOptions::default());
    assert_eq!(config.routes.len(), 1, "the valid route is served");
    assert_eq!(
        config.routes.values().next().expect("a route").id.name,
        "good"
    );
    assert_eq!(problems.len(), 1);
    let text = problems[0].to_string();
    assert!(
        text.contains("ModelRoute team/broken")
            && text.contains("spec.rules[0].modelMatch.uri.regex"),
        "{text}"
    );
    assert_eq!(config.invalid.len(), 1);
    assert_eq!(
        config
            .invalid
            .values()
            .next()
            .expect("an invalid object")
            .generation,
        Some(7)
    );
}

#[test]
fn status_report_has_invalid_and_accepted_routes_with_their_generations() {
    let (config, _) = assemble(objects(OBJECTS), &GatewayOptions::default());
    let out = report_of(StatusInputs {
        routes: config.routes.clone(),
        generations: config.generations.clone(),
        invalid: config.invalid.clone(),
        controller_name: config.controller_name.clone(),
        ..StatusInputs::default()
    });
    let find = |name: &str| {
        out.iter()
            .find(|o| o.kind == ObjectKind::ModelRoute && o.name == name)
            .unwrap_or_else(|| panic!("{name} in {out:?}"))
    };
    let good = find("good");
    assert_eq!(good.generation, Some(3));
    assert_eq!(good.status["observedGeneration"], 3);
    assert_eq!(good.status["conditions"][0]["type"], "Accepted");
    assert_eq!(good.status["conditions"][0]["status"], "True");
    assert_eq!(good.status["conditions"][0]["observedGeneration"], 3);
    // No ModelServer pool is running in this test: ResolvedRefs says so.
    assert_eq!(good.status["conditions"][1]["reason"], "BackendNotFound");
    let broken = find("broken");
    assert_eq!(broken.status["conditions"][0]["reason"], "Invalid");
    assert_eq!(broken.status["conditions"][0]["observedGeneration"], 7);
    assert!(
        broken.status["conditions"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("spec.rules[0].modelMatch.uri.regex")),
        "{}",
        broken.status
    );
}

#[test]
fn the_newer_of_two_routes_for_one_model_is_conflicted() {
    let yaml = "
apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelRoute
metadata: {name: first, namespace: team, creationTimestamp: '2026-01-01T00:00:00Z'}
spec:
  modelName: m
  rules:
  - targetModels: [{modelServerName: server}]
---
apiVersion: networking.serving.volcano.sh/v1alpha1
kind: ModelRoute
metadata: {name: again, namespace: team, creationTimestamp: '2026-02-01T00:00:00Z'}
spec:
  modelName: m
  rules:
  - targetModels: [{modelServerName: server}]
";
    let (config, problems) = assemble(objects(yaml), &GatewayOptions::default());
    assert!(problems.is_empty(), "{problems:?}");
    let out = report_of(StatusInputs {
        routes: config.routes.clone(),
        ..StatusInputs::default()
    });
    let accepted = |name: &str| {
        let o = out
            .iter()
            .find(|o| o.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        o.status["conditions"][0].clone()
    };
    assert_eq!(accepted("first")["status"], "True");
    let again = accepted("again");
    assert_eq!(
        (&again["status"], &again["reason"]),
        (&"False".into(), &"Conflicted".into())
    );
    assert!(
        again["message"]
            .as_str()
            .is_some_and(|m| m.contains("team/first")),
        "{again}"
    );
}

/// A change costs its objects: `Combined` reports exactly the objects that changed, as they
/// were and as they are, keeps every other object the same allocation, and a deleted
/// invalid object takes its entry in `invalid` with it.
#[test]
fn combined_reports_exactly_the_objects_that_changed() {
    use kthena_dataplane::source::assemble::{Change, Combined, Converted};
    let gw = GatewayOptions::default();
    let convert = |o: Object| Arc::new(Converted::new("apiserver".into(), o, &gw));
    let first: Vec<Arc<Converted>> = objects(OBJECTS)
        .into_iter()
        .map(|(_, o)| convert(o))
        .collect();
    let mut combined = Combined::new(gw.clone());
    let (config, _) = combined.apply(first.iter().cloned().map(Change::Upsert));
    assert_eq!(
        (
            config.changes.routes.len(),
            config.changes.servers.len(),
            config.changes.others
        ),
        (1, 1, false),
        "everything valid is new the first time (the broken route has no route to add)"
    );
    let good = config.routes.values().next().expect("good").clone();

    // The server changes, the broken route is deleted; the good route is untouched.
    let server = objects(&OBJECTS.replace("app: engine", "app: engine-2"))
        .into_iter()
        .map(|(_, o)| o)
        .find(|o| matches!(o, Object::ModelServer(_)))
        .expect("the server");
    let broken = first[1].key().expect("a key");
    let (config, problems) =
        combined.apply([Change::Upsert(convert(server)), Change::Delete(broken)]);
    assert!(problems.is_empty(), "{problems:?}");
    let c = &config.changes;
    assert_eq!(c.servers.len(), 1);
    let (before, after) = &c.servers[0];
    assert_eq!(
        before.as_ref().map(|s| s.match_labels["app"].as_str()),
        Some("engine")
    );
    assert_eq!(
        after.as_ref().map(|s| s.match_labels["app"].as_str()),
        Some("engine-2")
    );
    assert!(
        c.routes.is_empty(),
        "the broken route never was in the table: {:?}",
        c.routes
    );
    assert!(c.pods.is_empty() && !c.others);
    assert!(
        config.invalid.is_empty(),
        "a deleted invalid object is no longer reported"
    );
    assert!(
        Arc::ptr_eq(config.routes.values().next().expect("good"), &good),
        "an unchanged route is the same allocation"
    );
    // Applying the same conversion again is no change at all.
    let (config, _) = combined.apply([Change::Upsert(first[0].clone())]);
    assert!(config.changes.is_empty(), "{:?}", config.changes);
}

/// Recomputing some kinds gives exactly those kinds' entries of the whole report, and a
/// change names the kinds whose status it can alter.
#[test]
fn a_report_of_some_kinds_is_that_part_of_the_whole() {
    use kthena_api::{KindSet, ObjectKind as K};
    use kthena_dataplane::source::Changes;
    use kthena_dataplane::status::report_kinds;
    let (config, _) = assemble(objects(OBJECTS), &GatewayOptions::default());
    let inputs = config.status_inputs(false);
    let pools = Arc::new(Default::default());
    let tables = Default::default();
    let sources = Sources {
        inputs: &inputs,
        pools: &pools,
        tables: &tables,
        controller_name: "volcano.sh/kthena-router",
        priority_queueing: false,
    };
    let whole = report(sources);
    assert!(!whole.is_empty());
    for kind in K::ALL {
        let part = report_kinds(sources, KindSet::of(&[*kind]));
        let want: Vec<_> = whole.iter().filter(|o| o.kind == *kind).cloned().collect();
        assert_eq!(part, want, "{kind:?}");
    }
    assert_eq!(report_kinds(sources, KindSet::all()), whole);

    let route = config.routes.values().next().cloned();
    let id = route.as_ref().expect("a route").id.clone();
    let routes = Changes {
        routes: vec![(route.clone(), None)],
        ..Changes::default()
    };
    let dirty = routes.status_dirty();
    assert_eq!(dirty.kinds, KindSet::of(&[K::Gateway]));
    assert_eq!(
        dirty.objects.into_iter().collect::<Vec<_>>(),
        vec![(K::ModelRoute, id)]
    );
    assert_eq!(
        dirty.names.into_iter().collect::<Vec<_>>(),
        vec!["m".to_owned()],
        "the names the gone version claimed"
    );
    let others = Changes {
        others: true,
        ..Changes::default()
    };
    assert_eq!(others.status_dirty().kinds, KindSet::all());
    assert!(Changes::default().status_dirty().is_empty());
}
