//! `RouteTable::select` at 10, 1,000 and 10,000 routes, and building a 10,000-route table.
//!
//! Run with `cargo bench -p kthena-core --bench select`.

use kthena_core::{
    Backend, BuildOptions, CreationOrder, ModelMatch, ObjectRef, Request, Route, RouteTable, Rule,
    StringMatch, Target,
};

fn main() {
    divan::main();
}

/// `n` routes, each like the walkthrough's multi-model route: a header rule and a 70/30 default.
fn routes(n: usize) -> Vec<Route> {
    (0..n)
        .map(|i| {
            let ns = format!("ns-{}", i % 7);
            let target = |name: String, weight| Target {
                backend: Backend::ModelServer(ObjectRef::new(ns.clone(), name)),
                weight,
            };
            let premium = ModelMatch {
                headers: vec![("user-type".into(), StringMatch::Exact("premium".into()))],
                ..ModelMatch::default()
            };
            Route {
                id: ObjectRef::new(ns.clone(), format!("route-{i}")),
                order: CreationOrder {
                    created_unix_nanos: Some(i64::try_from(i).expect("small")),
                    namespace: ns.clone(),
                    name: format!("route-{i}"),
                },
                model_name: Some(format!("model-{i}")),
                lora_adapters: vec![format!("lora-{i}")],
                parents: vec![],
                rules: vec![
                    Rule::new(
                        Some("premium".into()),
                        Some(premium),
                        vec![target("big".into(), 100)],
                    ),
                    Rule::new(
                        Some("default".into()),
                        None,
                        vec![target("v1".into(), 70), target("v2".into(), 30)],
                    ),
                ],
                rate_limit: None,
            }
        })
        .collect()
}

#[divan::bench(args = [10, 1_000, 10_000])]
fn select_default_rule(bencher: divan::Bencher<'_, '_>, n: usize) {
    let table = RouteTable::build(routes(n), BuildOptions::default());
    let req = Request::new(format!("model-{}", n / 2)).header("x-request-id", "abc");
    bencher.bench_local(|| {
        table
            .select(divan::black_box(&req), None)
            .map(|s| s.target.weight)
    });
}

#[divan::bench(args = [10, 1_000, 10_000])]
fn select_header_rule(bencher: divan::Bencher<'_, '_>, n: usize) {
    let table = RouteTable::build(routes(n), BuildOptions::default());
    let req = Request::new(format!("model-{}", n / 2)).header("User-Type", "premium");
    bencher.bench_local(|| {
        table
            .select(divan::black_box(&req), None)
            .map(|s| s.target.weight)
    });
}

#[divan::bench(args = [10, 1_000, 10_000])]
fn select_lora(bencher: divan::Bencher<'_, '_>, n: usize) {
    let table = RouteTable::build(routes(n), BuildOptions::default());
    let req = Request::new(format!("lora-{}", n / 2));
    bencher.bench_local(|| {
        table
            .select(divan::black_box(&req), None)
            .map(|s| s.target.weight)
    });
}

#[divan::bench(args = [10, 1_000, 10_000])]
fn select_miss(bencher: divan::Bencher<'_, '_>, n: usize) {
    let table = RouteTable::build(routes(n), BuildOptions::default());
    let req = Request::new("no-such-model");
    bencher.bench_local(|| table.select(divan::black_box(&req), None).is_err());
}

#[divan::bench(sample_count = 20)]
fn build_10k(bencher: divan::Bencher<'_, '_>) {
    bencher
        .with_inputs(|| routes(10_000))
        .bench_local_values(|rs| RouteTable::build(rs, BuildOptions::default()));
}

/// Gateway mode: every route bound to one of 10 Gateways, the request arriving on one of them.
#[divan::bench(args = [10, 1_000, 10_000])]
fn select_gateway_bound(bencher: divan::Bencher<'_, '_>, n: usize) {
    let bound: Vec<Route> = routes(n)
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.parents = vec![kthena_core::ParentRef {
                gateway: ObjectRef::new("infra", format!("gw-{}", i % 10)),
                section_name: Some("http".into()),
                port: None,
            }];
            r
        })
        .collect();
    let table = RouteTable::build(bound, BuildOptions { gateway_mode: true });
    let i = n / 2;
    let via = kthena_core::ListenerRef::new("infra", format!("gw-{}", i % 10), "http", 8080);
    let req = Request::new(format!("model-{i}"));
    bencher.bench_local(|| {
        table
            .select(divan::black_box(&req), Some(&via))
            .map(|s| s.target.weight)
    });
}
