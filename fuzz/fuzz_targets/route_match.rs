//! Route matching on any request: the examples' ModelRoutes (converted as the router
//! converts them) against an arbitrary model, path and headers. A selection must name a rule
//! and target of the route it returns, serving the model asked for.
#![no_main]

use std::sync::OnceLock;

use kthena_api::manifest::{Object, parse_str};
use kthena_core::{BuildOptions, Request, RouteTable};
use libfuzzer_sys::fuzz_target;

const EXAMPLES: &[(&str, &str)] = &[
    (
        "modelroute-simple.yaml",
        include_str!("../../examples/modelroute-simple.yaml"),
    ),
    (
        "modelroute-multi-models.yaml",
        include_str!("../../examples/modelroute-multi-models.yaml"),
    ),
    (
        "modelroute-lora.yaml",
        include_str!("../../examples/modelroute-lora.yaml"),
    ),
    (
        "modelroute-subset.yaml",
        include_str!("../../examples/modelroute-subset.yaml"),
    ),
    (
        "modelroute-uri-match.yaml",
        include_str!("../../examples/modelroute-uri-match.yaml"),
    ),
    (
        "modelroute-rate-limit.yaml",
        include_str!("../../examples/modelroute-rate-limit.yaml"),
    ),
];

fn table() -> &'static RouteTable {
    static TABLE: OnceLock<RouteTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let routes: Vec<_> = EXAMPLES
            .iter()
            .flat_map(|(name, text)| parse_str(text, name).expect("the examples read"))
            .filter_map(|o| match o {
                Object::ModelRoute(r) => Some(*r),
                _ => None,
            })
            .collect();
        let (table, errors) =
            kthena_api::convert::route_table(routes.iter(), BuildOptions::default());
        assert!(errors.is_empty(), "{errors:?}");
        table
    })
}

fuzz_target!(|data: &[u8]| {
    // NUL-separated: model, path, then header names and values.
    let mut parts = data
        .split(|b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let Some(model) = parts.next() else {
        return;
    };
    let mut req = Request::new(model.clone());
    if let Some(path) = parts.next() {
        req = req.path(path);
    }
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        req = req.header(name, value);
    }
    if let Ok(sel) = table().select(&req, None) {
        let rule = sel
            .route
            .rules
            .get(sel.rule_index)
            .expect("the rule index is the route's");
        assert!(std::ptr::eq(rule, sel.rule));
        assert!(rule.targets().iter().any(|t| std::ptr::eq(t, sel.target)));
        if sel.lora {
            assert!(sel.route.lora_adapters.contains(&model));
        } else {
            assert_eq!(sel.route.model_name.as_deref(), Some(model.as_str()));
        }
    }
});
