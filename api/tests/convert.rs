//! The api -> core conversion: defaults, resolution, and every problem reported with its field.

use std::time::Duration;

use kthena_api::convert;
use kthena_api::modelroute::ModelRoute;
use kthena_api::modelserver::ModelServer;
use kthena_core::{Backend, BuildOptions, ObjectRef, Request, StringMatch};

fn route(spec: &str) -> ModelRoute {
    serde_norway::from_str(&format!(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {{name: r, namespace: team, creationTimestamp: '2026-01-02T03:04:05Z'}}\nspec:\n{spec}"
    ))
    .expect("test ModelRoute parses")
}

fn server(spec: &str) -> ModelServer {
    serde_norway::from_str(&format!(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelServer\n\
         metadata: {{name: s, namespace: team}}\nspec:\n{spec}"
    ))
    .expect("test ModelServer parses")
}

/// The field paths and messages of a rejected route, one string each.
fn route_errors(spec: &str) -> Vec<String> {
    match convert::model_route(&route(spec)) {
        Ok(_) => vec![],
        Err(errs) => errs.into_iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn kthena_route_converts_with_defaults_applied() {
    let r = convert::model_route(&route(
        "  modelName: m\n  rules:\n  - name: premium\n    modelMatch:\n      headers:\n        \
         User-Type: {exact: premium}\n      body: {model: m}\n    targetModels:\n    \
         - modelServerName: big\n  - targetModels:\n    - modelServerName: small\n      weight: 0\n    \
         - externalModelProviderName: openai\n",
    ))
    .expect("valid route");
    assert_eq!(r.id, ObjectRef::new("team", "r"));
    assert_eq!(r.model_name.as_deref(), Some("m"));
    assert_eq!(r.order.created_unix_nanos, Some(1_767_323_045_000_000_000));
    let premium = &r.rules[0];
    assert_eq!(premium.name(), Some("premium"));
    let m = premium.model_match().expect("match");
    assert_eq!(
        m.headers,
        vec![("user-type".to_owned(), StringMatch::Exact("premium".into()))]
    );
    assert_eq!(m.body_model.as_deref(), Some("m"));
    // Weight defaults to 100, as the CRD default does on the API server.
    assert_eq!(premium.targets()[0].weight, 100);
    assert_eq!(
        premium.targets()[0].backend,
        Backend::ModelServer(ObjectRef::new("team", "big"))
    );
    assert_eq!(r.rules[1].targets()[0].weight, 0);
    assert_eq!(
        r.rules[1].targets()[1].backend,
        Backend::ExternalProvider(ObjectRef::new("team", "openai"))
    );
    assert_eq!(r.rules[1].model_match(), None);
}

#[test]
fn invalid_routes_name_every_bad_field() {
    let t = "    targetModels:\n    - modelServerName: s\n";
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            format!("  modelName: m\n  rules:\n  - modelMatch:\n      headers:\n        x-a: {{regex: '(unclosed'}}\n{t}"),
            vec!["spec.rules[0].modelMatch.headers[x-a].regex: invalid regex \"(unclosed\""],
        ),
        (
            format!("  modelName: m\n  rules:\n  - modelMatch:\n      uri: {{regex: '[z-a]'}}\n{t}"),
            vec!["spec.rules[0].modelMatch.uri.regex: invalid regex \"[z-a]\""],
        ),
        (
            format!("  modelName: m\n  rules:\n  - modelMatch:\n      headers:\n        'bad header': {{exact: a}}\n{t}"),
            vec!["spec.rules[0].modelMatch.headers[bad header]: invalid header name \"bad header\""],
        ),
        (
            format!("  modelName: m\n  rules:\n  - modelMatch:\n      uri: {{exact: /a, prefix: /b}}\n{t}"),
            vec!["spec.rules[0].modelMatch.uri: at most one of exact, prefix or regex may be set"],
        ),
        (
            "  modelName: m\n  rules:\n  - targetModels:\n    - {modelServerName: a, externalModelProviderName: b}\n".into(),
            vec!["spec.rules[0].targetModels[0]: exactly one of modelServerName or externalModelProviderName must be set, got both"],
        ),
        (
            "  modelName: m\n  rules:\n  - targetModels:\n    - modelServerName: s\n  rateLimit: {inputTokensPerUnit: 1, limitBy: {type: Header, header: 'x y'}}\n".into(),
            vec!["spec.rateLimit.limitBy.header: invalid header name \"x y\""],
        ),
        (
            "  modelName: m\n  rules:\n  - targetModels:\n    - modelServerName: s\n  rateLimit: {inputTokensPerUnit: 1, limitBy: {type: Header}}\n".into(),
            vec!["spec.rateLimit.limitBy: header is set exactly when type is Header"],
        ),
        (
            "  modelName: m\n  rules:\n  - targetModels: []\n".into(),
            vec!["spec.rules[0].targetModels: must have at least 1 target"],
        ),
        (
            "  modelName: m\n  rules:\n  - targetModels:\n    - {modelServerName: a, weight: 101}\n".into(),
            vec!["spec.rules[0].targetModels[0].weight: must be at most 100, got 101"],
        ),
        (
            format!("  rules:\n  -\n{t}"),
            vec!["spec: modelName and loraAdapters cannot both be empty"],
        ),
        (
            format!("  loraAdapters: ['', a, a]\n  rules:\n  -\n{t}"),
            vec![
                "spec.loraAdapters[0]: lora adapter name cannot be an empty string",
                "spec.loraAdapters[2]: duplicate lora adapter \"a\"",
            ],
        ),
        (
            format!("  modelName: m\n  parentRefs:\n  - {{kind: Service, group: '', name: svc}}\n  - {{name: gw, port: 0}}\n  rules:\n  -\n{t}"),
            vec![
                "spec.parentRefs[0].kind: unsupported parent \"Service\": only gateway.networking.k8s.io/Gateway",
                "spec.parentRefs[1].port: must be between 1 and 65535, got 0",
            ],
        ),
    ];
    for (spec, want) in cases {
        let got = route_errors(&spec);
        assert_eq!(got.len(), want.len(), "{spec}\n{got:#?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g.starts_with(w), "{spec}\n got: {g}\nwant: {w}");
        }
    }
}

#[test]
fn parent_refs_resolve_to_gateways_in_the_route_namespace_by_default() {
    let r = convert::model_route(&route(
        "  modelName: m\n  parentRefs:\n  - {name: gw, sectionName: http}\n  \
         - {name: shared, namespace: infra, port: 8081}\n  rules:\n  - targetModels:\n    - modelServerName: s\n",
    ))
    .expect("valid");
    assert_eq!(r.parents[0].gateway, ObjectRef::new("team", "gw"));
    assert_eq!(r.parents[0].section_name.as_deref(), Some("http"));
    assert_eq!(r.parents[1].gateway, ObjectRef::new("infra", "shared"));
    assert_eq!(r.parents[1].port, Some(8081));
}

#[test]
fn an_invalid_route_is_left_out_of_the_table_and_named() {
    let good = route("  modelName: good\n  rules:\n  - targetModels:\n    - modelServerName: s\n");
    let mut bad = route(
        "  modelName: bad\n  rules:\n  - modelMatch:\n      uri: {regex: '('}\n    targetModels:\n    - modelServerName: s\n",
    );
    bad.metadata.name = Some("broken".into());
    let (table, errors) = convert::route_table([&good, &bad], BuildOptions::default());
    assert_eq!(table.routes().len(), 1);
    assert!(table.select(&Request::new("good"), None).is_ok());
    assert!(table.select(&Request::new("bad"), None).is_err());
    assert_eq!(errors.len(), 1);
    let msg = errors[0].to_string();
    assert!(
        msg.starts_with(
            "ModelRoute team/broken: spec.rules[0].modelMatch.uri.regex: invalid regex"
        ),
        "{msg}"
    );
}

#[test]
fn model_server_converts_with_defaults_and_durations() {
    let s = convert::model_server(&server(
        "  model: org/model\n  inferenceEngine: SGLang\n  workloadSelector:\n    matchLabels: {app: x}\n  \
         workloadPort: {port: 30000}\n  trafficPolicy:\n    timeout: 1m30s\n    retry: {attempts: 2}\n  \
         kvConnector: {type: nixl}\n",
    ))
    .expect("valid server");
    assert_eq!(s.engine, kthena_core::Engine::Sglang);
    assert_eq!(s.port, 30000);
    assert_eq!(s.protocol, kthena_core::Protocol::Http);
    assert_eq!(s.timeout, Duration::from_secs(90));
    assert_eq!(
        (s.retry.attempts, s.retry.interval),
        (2, Duration::from_millis(100))
    );
    assert_eq!(s.kv_connector, Some(kthena_core::KvConnector::Nixl));
    assert!(s.selects(
        "team",
        &[("app".to_owned(), "x".to_owned()), ("v".into(), "1".into())].into()
    ));
    assert!(!s.selects("other", &[("app".to_owned(), "x".to_owned())].into()));

    let plain = convert::model_server(&server(
        "  inferenceEngine: vLLM\n  workloadSelector:\n    matchLabels: {app: x}\n  workloadPort: {port: 8000}\n",
    ))
    .expect("valid server");
    assert_eq!(plain.timeout, kthena_core::model_server::DEFAULT_TIMEOUT);
    assert_eq!(plain.retry.attempts, 0);
    assert_eq!(plain.model, None);
}

#[test]
fn invalid_model_servers_name_every_bad_field() {
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "  inferenceEngine: vLLM\n  workloadSelector: {}\n  workloadPort: {port: 70000}\n",
            vec![
                "spec.workloadPort.port: must be between 1 and 65535, got 70000",
                "spec.workloadSelector.matchLabels: must have at least 1 label",
            ],
        ),
        (
            "  inferenceEngine: vLLM\n  workloadSelector:\n    matchLabels: {'-bad': 'x y'}\n  workloadPort: {port: 8000}\n  \
             trafficPolicy: {timeout: soon, retry: {attempts: -1, retryInterval: -1s}}\n",
            vec![
                "spec.trafficPolicy.timeout: invalid duration \"soon\"",
                "spec.trafficPolicy.retry.attempts: must not be negative, got -1",
                "spec.trafficPolicy.retry.retryInterval: must not be negative, got \"-1s\"",
                "spec.workloadSelector.matchLabels[-bad]: invalid label key \"-bad\"",
                "spec.workloadSelector.matchLabels[-bad]: invalid label value \"x y\"",
            ],
        ),
        (
            "  inferenceEngine: vLLM\n  workloadSelector:\n    matchLabels: {app: x}\n    \
             pdGroup: {groupKey: '', prefillLabels: {}, decodeLabels: {role: d}}\n  workloadPort: {port: 8000}\n",
            vec![
                "spec.workloadSelector.pdGroup.groupKey: must not be empty",
                "spec.workloadSelector.pdGroup.prefillLabels: must have at least 1 label",
            ],
        ),
    ];
    for (spec, want) in cases {
        let got: Vec<String> = match convert::model_server(&server(spec)) {
            Ok(_) => vec![],
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        assert_eq!(got.len(), want.len(), "{spec}\n{got:#?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g.starts_with(w), "{spec}\n got: {g}\nwant: {w}");
        }
    }
}

#[test]
fn unknown_engine_is_a_parse_error_naming_the_value() {
    let err = serde_norway::from_str::<ModelServer>(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelServer\nmetadata: {name: s}\n\
         spec:\n  inferenceEngine: TGI\n  workloadSelector: {matchLabels: {a: b}}\n  workloadPort: {port: 1}\n",
    )
    .expect_err("TGI is not an engine");
    assert!(err.to_string().contains("TGI"), "{err}");
}

/// Fields accepted but not acted on yet are named, each with its path, for status and the
/// webhook's warnings; everything else converts with nothing to report.
#[test]
fn fields_not_honored_yet_are_named_with_their_paths() {
    use kthena_core::unhonored;
    let paths = |errs: kthena_core::FieldErrors| -> Vec<String> {
        errs.as_slice().iter().map(|e| e.path.clone()).collect()
    };
    let route: kthena_api::modelroute::ModelRoute = serde_norway::from_str(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\nmetadata: {name: r, namespace: default}\n\
         spec:\n  modelName: m\n  rules:\n  - targetModels:\n    - modelServerName: a\n    - externalModelProviderName: openai\n  \
         rateLimit: {inputTokensPerUnit: 10, unit: minute, global: {redis: {address: 'redis:6379'}}}\n",
    )
    .expect("route parses");
    let route = kthena_api::convert::model_route(&route).expect("converts");
    // External providers are called: nothing of a route is left unhonored.
    assert!(paths(unhonored::model_route(&route)).is_empty());
    let server: kthena_api::modelserver::ModelServer = serde_norway::from_str(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelServer\nmetadata: {name: s, namespace: default}\n\
         spec:\n  inferenceEngine: vLLM\n  workloadSelector:\n    matchLabels: {app: a}\n    \
         pdGroup: {groupKey: g, prefillLabels: {role: p}, decodeLabels: {role: d}}\n  \
         workloadPort: {port: 8000, protocol: https}\n  kvConnector: {type: nixl}\n  \
         trafficPolicy:\n    sessionSticky:\n      sources: [{type: Header, name: x-session-id}, {type: JWTClaim, name: sub}]\n",
    )
    .expect("server parses");
    let server = kthena_api::convert::model_server(&server).expect("converts");
    assert_eq!(
        paths(unhonored::model_server(&server)),
        [
            "spec.workloadSelector.pdGroup",
            "spec.kvConnector",
            "spec.trafficPolicy.sessionSticky"
        ]
    );
    let sticky = server.session_sticky.as_ref().expect("read");
    assert_eq!(
        sticky.affinity,
        std::time::Duration::from_secs(300),
        "Kthena's default"
    );
    assert_eq!(
        sticky.sources,
        [
            kthena_core::SessionSource::Header("x-session-id".into()),
            kthena_core::SessionSource::JwtClaim("sub".into())
        ]
    );
    for file in [
        "modelroute-simple.yaml",
        "modelroute-lora.yaml",
        "modelserver-deepseek-r1-7b.yaml",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(file);
        for (_, o) in kthena_api::manifest::load(&path).expect("example") {
            let none = match o {
                kthena_api::manifest::Object::ModelRoute(r) => {
                    unhonored::model_route(&kthena_api::convert::model_route(&r).expect("converts"))
                }
                kthena_api::manifest::Object::ModelServer(s) => unhonored::model_server(
                    &kthena_api::convert::model_server(&s).expect("converts"),
                ),
                _ => kthena_core::FieldErrors::new(),
            };
            assert!(none.is_empty(), "{file}: {none}");
        }
    }
}

#[test]
fn rules_the_router_and_the_webhook_share_are_made_by_the_conversion() {
    let cases: [(&str, &[&str]); 4] = [
        (
            "  modelName: m\n  rules:\n  - targetModels:\n    - {modelServerName: a, weight: 0}\n    - {modelServerName: b, weight: 0}\n",
            &[
                "spec.rules[0].targetModels: total weight must be greater than 0, got 0 (every target has weight 0)",
            ],
        ),
        (
            "  loraAdapters: [l]\n  rules:\n  - targetModels: [{externalModelProviderName: p}]\n",
            &[
                "spec.rules[0].targetModels[0].externalModelProviderName: a route with loraAdapters cannot target external model provider \"p\": only ModelServers serve LoRA adapters",
            ],
        ),
        (
            "  modelName: m\n  parentRefs: [{name: g}, {name: g, namespace: team, kind: Gateway}]\n  rules:\n  - targetModels: [{modelServerName: a}]\n",
            &["spec.parentRefs[1]: duplicate of spec.parentRefs[0]"],
        ),
        (
            "  modelName: m\n  rules:\n  - targetModels:\n    - {modelServerName: a, weight: 0}\n    - {modelServerName: b, weight: 1}\n",
            &[],
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(route_errors(spec), want, "{spec}");
    }
}

#[test]
fn upstream_protocol_follows_the_backends_protocol_fields() {
    use kthena_core::Protocol;
    let server = |proto: &str| {
        convert::model_server(&server(&format!(
            "  inferenceEngine: vLLM\n  workloadSelector:\n    matchLabels: {{app: x}}\n  \
             workloadPort: {{port: 8000{proto}}}\n"
        )))
        .expect("valid server")
        .protocol
    };
    assert_eq!(server(""), Protocol::Http);
    assert_eq!(server(", protocol: http"), Protocol::Http);
    assert_eq!(server(", protocol: https"), Protocol::Https);

    let pool = |proto: &str| {
        let p: kthena_api::inference::v1::InferencePool = serde_norway::from_str(&format!(
            "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {{name: p, namespace: default}}\n\
             spec:\n  selector: {{matchLabels: {{app: x}}}}\n  targetPorts: [{{number: 8000}}]\n{proto}"
        ))
        .expect("pool parses");
        convert::inference_pool_v1(&p).expect("valid pool").protocol
    };
    assert_eq!(pool(""), Protocol::Http);
    assert_eq!(pool("  appProtocol: http\n"), Protocol::Http);
    assert_eq!(pool("  appProtocol: kubernetes.io/h2c\n"), Protocol::H2c);

    let service: k8s_openapi::api::core::v1::Service = serde_norway::from_str(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: default}\n\
         spec:\n  selector: {app: x}\n  ports:\n  - {port: 80, targetPort: 8000}\n  \
         - {port: 81, appProtocol: kubernetes.io/h2c}\n  - {port: 82, appProtocol: kubernetes.io/ws}\n",
    )
    .expect("service parses");
    let s = convert::service(&service).expect("valid service");
    let protocols: Vec<_> = s.ports.iter().map(|p| (p.port, p.protocol)).collect();
    // WebSocket upgrades are not proxied: not a protocol the router can speak to the port.
    assert_eq!(
        protocols,
        [
            (80, Some(Protocol::Http)),
            (81, Some(Protocol::H2c)),
            (82, None)
        ]
    );
}
