//! HTTPRoute -> core conversion: upstream defaults, field errors, and the Inference Extension
//! walkthrough routes end to end through the table.

use std::time::Duration;

use kthena_api::convert::http_route::http_route;
use kthena_api::gateway::apis::standard::httproutes::HttpRoute;
use kthena_core::http_route::DEFAULT_REDIRECT_STATUS;
use kthena_core::{
    BackendRef, BackendTarget, Filter, HttpMatch, HttpRequest, HttpRouteTable, InferencePoolApi,
    ObjectRef, PathMatch, PathModifier, Redirect, Timeouts, ValueMatch,
};

fn parse(yaml: &str) -> HttpRoute {
    serde_norway::from_str(yaml).expect("test HTTPRoute parses")
}

fn route(spec: &str) -> HttpRoute {
    parse(&format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n\
         metadata: {{name: r, namespace: team, creationTimestamp: '2026-01-02T03:04:05Z'}}\nspec:\n{spec}"
    ))
}

fn errors(spec: &str) -> Vec<String> {
    match http_route(&route(spec)) {
        Ok(_) => vec![],
        Err(errs) => errs.into_iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn upstream_defaults_are_applied() {
    let r = http_route(&route(
        "  hostnames: [api.example.com]\n  rules:\n  \
         - backendRefs:\n    - {name: svc, port: 8000}\n  \
         - name: second\n    matches:\n    - path: {value: /v1}\n      \
         headers: [{name: X-Model, value: qwen}]\n      queryParams: [{name: v, value: '1'}]\n      \
         method: POST\n    - path: {type: Exact, value: /x}\n    \
         - path: {type: RegularExpression, value: '/v[0-9]+'}\n    backendRefs:\n    \
         - {name: pool, group: inference.networking.k8s.io, kind: InferencePool, weight: 3}\n    \
         - {name: old-pool, namespace: other, group: inference.networking.x-k8s.io, kind: InferencePool, weight: 0}\n    \
         - {name: bucket, group: example.io, kind: Bucket}\n    \
         timeouts: {request: 1m30s, backendRequest: 500ms}\n",
    ))
    .expect("valid route");
    assert_eq!(r.id, ObjectRef::new("team", "r"));
    assert_eq!(r.order.created_unix_nanos, Some(1_767_323_045_000_000_000));
    assert_eq!(r.hostnames, vec!["api.example.com"]);

    let first = &r.rules[0];
    assert_eq!(first.name(), None);
    assert_eq!(first.matches(), &[HttpMatch::default()]);
    assert_eq!(
        first.backends(),
        &[BackendRef {
            target: BackendTarget::Service {
                service: ObjectRef::new("team", "svc"),
                port: 8000
            },
            weight: 1
        }]
    );
    assert_eq!(first.timeouts(), Timeouts::default());

    let second = &r.rules[1];
    assert_eq!(second.name(), Some("second"));
    let m = &second.matches()[0];
    assert_eq!(m.path, PathMatch::Prefix("/v1".into()));
    assert_eq!(
        m.headers,
        vec![("x-model".to_owned(), ValueMatch::Exact("qwen".into()))]
    );
    assert_eq!(
        m.query,
        vec![("v".to_owned(), ValueMatch::Exact("1".into()))]
    );
    assert_eq!(m.method.as_deref(), Some("POST"));
    assert_eq!(second.matches()[1].path, PathMatch::Exact("/x".into()));
    assert_eq!(second.matches()[2].path.kind(), "RegularExpression");
    let targets: Vec<(&BackendTarget, u32)> = second
        .backends()
        .iter()
        .map(|b| (&b.target, b.weight))
        .collect();
    assert_eq!(
        targets,
        vec![
            (
                &BackendTarget::InferencePool {
                    api: InferencePoolApi::V1,
                    pool: ObjectRef::new("team", "pool")
                },
                3
            ),
            (
                &BackendTarget::InferencePool {
                    api: InferencePoolApi::V1Alpha2,
                    pool: ObjectRef::new("other", "old-pool")
                },
                0
            ),
            (
                &BackendTarget::Unsupported {
                    group: "example.io".into(),
                    kind: "Bucket".into(),
                    object: ObjectRef::new("team", "bucket")
                },
                1
            ),
        ]
    );
    assert_eq!(
        second.timeouts(),
        Timeouts {
            request: Some(Duration::from_secs(90)),
            backend_request: Some(Duration::from_millis(500)),
        }
    );
}

#[test]
fn filters_convert_with_defaults() {
    let r = http_route(&route(
        "  rules:\n  - filters:\n    - type: RequestRedirect\n      requestRedirect: {scheme: https}\n  \
         - matches: [{path: {type: PathPrefix, value: /api}}]\n    filters:\n    \
         - type: URLRewrite\n      urlRewrite:\n        hostname: backend.internal\n        \
         path: {type: ReplacePrefixMatch, replacePrefixMatch: /}\n    \
         - type: RequestHeaderModifier\n      requestHeaderModifier:\n        \
         set: [{name: X-Set, value: a}]\n        add: [{name: X-Add, value: b}]\n        remove: [X-Gone]\n    \
         - type: ResponseHeaderModifier\n      responseHeaderModifier: {remove: [Server]}\n    \
         - type: RequestMirror\n      requestMirror: {backendRef: {name: mirror, port: 80}}\n    \
         backendRefs: [{name: svc, port: 80}]\n",
    ))
    .expect("valid route");
    assert_eq!(
        r.rules[0].redirect(),
        Some(&Redirect {
            scheme: Some("https".into()),
            hostname: None,
            path: None,
            port: None,
            status_code: DEFAULT_REDIRECT_STATUS,
        })
    );
    let rewrite = r.rules[1].url_rewrite().expect("url rewrite");
    assert_eq!(rewrite.hostname.as_deref(), Some("backend.internal"));
    assert_eq!(
        rewrite.path,
        Some(PathModifier::ReplacePrefixMatch("/".into()))
    );
    let Filter::RequestHeaderModifier(m) = &r.rules[1].filters()[1] else {
        panic!(
            "not a request header modifier: {:?}",
            r.rules[1].filters()[1]
        );
    };
    assert_eq!(m.set, vec![("x-set".to_owned(), "a".to_owned())]);
    assert_eq!(m.add, vec![("x-add".to_owned(), "b".to_owned())]);
    assert_eq!(m.remove, vec!["x-gone".to_owned()]);
    assert!(matches!(
        &r.rules[1].filters()[2],
        Filter::ResponseHeaderModifier(m) if m.remove == ["server"]
    ));
    assert_eq!(r.rules[1].unsupported_filter(), Some("RequestMirror"));
}

#[test]
fn each_problem_is_reported_with_its_field_path() {
    let cases: &[(&str, &[&str])] = &[
        (
            "  rules:\n  - matches:\n    - path: {value: /ok}\n    \
             - path: {type: RegularExpression, value: '(unclosed'}\n",
            &["spec.rules[0].matches[1].path.value: invalid regex \"(unclosed\""],
        ),
        (
            "  rules:\n  - matches:\n    - headers: [{name: a, value: x}, {name: b, type: RegularExpression, value: '['}]\n",
            &["spec.rules[0].matches[0].headers[1].value: invalid regex \"[\""],
        ),
        (
            "  rules:\n  - matches:\n    - queryParams: [{name: q, type: RegularExpression, value: '*'}]\n",
            &["spec.rules[0].matches[0].queryParams[0].value: invalid regex \"*\""],
        ),
        (
            "  rules:\n  - matches:\n    - path: {type: Exact, value: v1}\n",
            &["spec.rules[0].matches[0].path.value: must start with \"/\", got \"v1\""],
        ),
        (
            "  rules:\n  - matches:\n    - headers: [{name: 'bad name', value: x}]\n",
            &["spec.rules[0].matches[0].headers[0].name: invalid header name \"bad name\""],
        ),
        (
            "  rules:\n  - backendRefs:\n    - {name: a, port: 80}\n    - {name: svc}\n",
            &["spec.rules[0].backendRefs[1].port: must be set for a Service backend"],
        ),
        (
            "  rules:\n  - backendRefs: [{name: svc, port: 70000}]\n",
            &["spec.rules[0].backendRefs[0].port: must be between 1 and 65535, got 70000"],
        ),
        (
            "  rules:\n  - backendRefs: [{name: svc, port: 80, weight: -1}]\n",
            &["spec.rules[0].backendRefs[0].weight: must not be negative, got -1"],
        ),
        (
            "  rules:\n  - backendRefs: [{name: svc, port: 80, weight: 1000001}]\n",
            &["spec.rules[0].backendRefs[0].weight: must be at most 1000000, got 1000001"],
        ),
        (
            "  rules:\n  - backendRefs:\n    - name: svc\n      port: 80\n      \
             filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [x]}}]\n",
            &[
                "spec.rules[0].backendRefs[0].filters: filters on a backendRef are not supported; put them on the rule",
            ],
        ),
        (
            "  rules:\n  - timeouts: {request: 10x}\n",
            &["spec.rules[0].timeouts.request: invalid duration \"10x\""],
        ),
        (
            "  rules:\n  - timeouts: {request: 1s, backendRequest: 2s}\n",
            &[
                "spec.rules[0].timeouts.backendRequest: must not be longer than request (1s), got 2s",
            ],
        ),
        (
            "  rules:\n  - filters:\n    - {type: RequestRedirect, requestRedirect: {statusCode: 1000000}}\n",
            &[
                "spec.rules[0].filters[0].requestRedirect.statusCode: unsupported status code 1000000",
            ],
        ),
        (
            "  rules:\n  - filters:\n    - {type: RequestRedirect, requestRedirect: {statusCode: 304}}\n",
            &["spec.rules[0].filters[0].requestRedirect.statusCode: unsupported status code 304"],
        ),
        (
            "  rules:\n  - filters:\n    - {type: RequestRedirect, requestRedirect: {port: 0}}\n",
            &["spec.rules[0].filters[0].requestRedirect.port: must be between 1 and 65535, got 0"],
        ),
        (
            "  rules:\n  - filters:\n    - type: RequestRedirect\n      \
             requestRedirect: {path: {type: ReplaceFullPath, replacePrefixMatch: /x}}\n",
            &[
                "spec.rules[0].filters[0].requestRedirect.path.replacePrefixMatch: must not be set when type is ReplaceFullPath",
                "spec.rules[0].filters[0].requestRedirect.path.replaceFullPath: must be set when type is ReplaceFullPath",
            ],
        ),
        (
            "  rules:\n  - matches: [{path: {type: Exact, value: /x}}]\n    filters:\n    \
             - type: URLRewrite\n      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /y}}\n",
            &[
                "spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch: requires a PathPrefix match, got Exact",
            ],
        ),
        (
            "  rules:\n  - filters:\n    - {type: URLRewrite}\n",
            &["spec.rules[0].filters[0].urlRewrite: must be set when type is URLRewrite"],
        ),
        (
            "  rules:\n  - filters:\n    - {type: RequestRedirect, requestRedirect: {}}\n    \
             - {type: URLRewrite, urlRewrite: {hostname: x.io}}\n",
            &[
                "spec.rules[0].filters: requestRedirect and urlRewrite cannot be used in the same rule",
            ],
        ),
        (
            "  rules:\n  - filters:\n    - {type: RequestRedirect, requestRedirect: {}}\n    \
             backendRefs: [{name: svc, port: 80}]\n",
            &[
                "spec.rules[0].backendRefs: must be empty when the rule has a requestRedirect filter, got 1 backends",
            ],
        ),
        (
            "  rules:\n  - filters:\n    - {type: RequestHeaderModifier, requestHeaderModifier: {remove: [a]}}\n    \
             - {type: RequestHeaderModifier, requestHeaderModifier: {remove: [b]}}\n",
            &["spec.rules[0].filters[1]: RequestHeaderModifier filter cannot be repeated"],
        ),
        (
            "  hostnames: ['*.Example.com']\n",
            &["spec.hostnames[0]: invalid hostname \"*.Example.com\""],
        ),
    ];
    for (spec, want) in cases {
        let got = errors(spec);
        assert_eq!(got.len(), want.len(), "{spec}\ngot {got:#?}");
        for (g, w) in got.iter().zip(*want) {
            assert!(g.starts_with(w), "{spec}\ngot  {g}\nwant {w}...");
        }
    }
}

/// The Gateway API Inference Extension walkthrough: a catch-all route to one InferencePool,
/// and body-based routing that sends each model (copied into `X-Gateway-Model-Name`) to its
/// own pool.
const WALKTHROUGH: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: llm-route
  namespace: default
  creationTimestamp: "2026-01-01T00:00:00Z"
spec:
  parentRefs:
  - group: gateway.networking.k8s.io
    kind: Gateway
    name: inference-gateway
  rules:
  - backendRefs:
    - group: inference.networking.k8s.io
      kind: InferencePool
      name: vllm-llama3-8b-instruct
    matches:
    - path:
        type: PathPrefix
        value: /
    timeouts:
      request: 300s
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: routes-to-llms
  namespace: default
  creationTimestamp: "2026-01-02T00:00:00Z"
spec:
  parentRefs:
  - name: inference-gateway
  rules:
  - matches:
    - headers:
      - type: Exact
        name: X-Gateway-Model-Name
        value: qwen
      path:
        type: PathPrefix
        value: /
    backendRefs:
    - name: vllm-qwen3-32b
      group: inference.networking.k8s.io
      kind: InferencePool
  - matches:
    - headers:
      - type: Exact
        name: X-Gateway-Model-Name
        value: deepseek-r1
      path:
        type: PathPrefix
        value: /
    backendRefs:
    - name: vllm-deepseek-r1
      group: inference.networking.k8s.io
      kind: InferencePool
"#;

#[test]
fn inference_extension_walkthrough_routes_by_model_header() {
    let routes: Vec<kthena_core::HttpRoute> = WALKTHROUGH
        .split("\n---\n")
        .map(|doc| http_route(&parse(doc)).expect("walkthrough route converts"))
        .collect();
    assert_eq!(
        routes[0].rules[0].timeouts().request,
        Some(Duration::from_secs(300))
    );
    let table = HttpRouteTable::build(routes, None);
    let cases = [
        (Some("qwen"), "default/routes-to-llms", "vllm-qwen3-32b"),
        (
            Some("deepseek-r1"),
            "default/routes-to-llms",
            "vllm-deepseek-r1",
        ),
        (
            Some("llama"),
            "default/llm-route",
            "vllm-llama3-8b-instruct",
        ),
        (None, "default/llm-route", "vllm-llama3-8b-instruct"),
    ];
    for (model, want_route, want_pool) in cases {
        let mut req = HttpRequest::get("/v1/chat/completions")
            .method("POST")
            .header("host", "gateway.local");
        if let Some(m) = model {
            req = req.header("X-Gateway-Model-Name", m);
        }
        let s = table.select(&req).expect("a route matches");
        assert_eq!(s.route.id.to_string(), want_route, "model {model:?}");
        let Some(BackendTarget::InferencePool { api, pool }) = s.backend.map(|b| &b.target) else {
            panic!("model {model:?}: not an InferencePool: {:?}", s.backend);
        };
        assert_eq!(*api, InferencePoolApi::V1);
        assert_eq!(
            pool,
            &ObjectRef::new("default", want_pool),
            "model {model:?}"
        );
    }
}
