//! The CEL rules of our CRDs, evaluated offline (kube's `cel` feature), as the API server
//! would on `kubectl apply`.

use kthena_api::externalmodelprovider::ExternalModelProvider;
use kthena_api::modelroute::ModelRoute;

fn route(spec: &str) -> ModelRoute {
    let text = format!(
        "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
         metadata: {{name: r, namespace: default}}\nspec:\n{spec}"
    );
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The CEL verdict: `Ok` or the messages of the failed rules.
fn verdict(mr: &ModelRoute) -> Result<(), String> {
    mr.validate_cel().map_err(|e| format!("{e:?}"))
}

#[test]
fn model_route_rules() {
    let target = "  rules:\n  - targetModels:\n    - modelServerName: s\n";
    let cases: Vec<(String, Option<&str>)> = vec![
        (format!("  modelName: m\n{target}"), None),
        (format!("  loraAdapters: [a]\n{target}"), None),
        (target.to_owned(), Some("ModelName and LoraAdapters cannot both be empty")),
        (format!("  modelName: ''\n  loraAdapters: []\n{target}"), Some("ModelName and LoraAdapters cannot both be empty")),
        (
            "  modelName: m\n  rules:\n  - targetModels:\n    - modelServerName: s\n      externalModelProviderName: p\n".into(),
            Some("exactly one of modelServerName or externalModelProviderName must be set"),
        ),
        (
            "  modelName: m\n  rules:\n  - targetModels:\n    - weight: 10\n".into(),
            Some("exactly one of modelServerName or externalModelProviderName must be set"),
        ),
        (
            format!("  modelName: m\n{target}  - modelMatch:\n      uri: {{exact: /a, prefix: /b}}\n    targetModels:\n    - modelServerName: s\n"),
            Some("at most one of exact, prefix or regex may be set"),
        ),
        (
            format!("  modelName: m\n{target}  - modelMatch:\n      headers:\n        x-a: {{prefix: a, regex: b}}\n    targetModels:\n    - modelServerName: s\n"),
            Some("at most one of exact, prefix or regex may be set"),
        ),
        (
            format!("  modelName: m\n{target}  rateLimit:\n    inputTokensPerUnit: 5\n    limitBy: {{type: Header, header: x-tenant}}\n"),
            None,
        ),
        (
            format!("  modelName: m\n{target}  rateLimit:\n    inputTokensPerUnit: 5\n    limitBy: {{type: User}}\n"),
            None,
        ),
        (
            format!("  modelName: m\n{target}  rateLimit:\n    inputTokensPerUnit: 5\n    limitBy: {{type: Header}}\n"),
            Some("header is set exactly when type is Header"),
        ),
        (
            format!("  modelName: m\n{target}  rateLimit:\n    inputTokensPerUnit: 5\n    limitBy: {{type: User, header: x}}\n"),
            Some("header is set exactly when type is Header"),
        ),
    ];
    for (spec, want) in cases {
        let got = verdict(&route(&spec));
        match want {
            None => assert_eq!(got, Ok(()), "{spec}"),
            Some(msg) => {
                let err = got.expect_err(&spec);
                assert!(err.contains(msg), "{spec}: {err}");
            }
        }
    }
}

#[test]
fn model_name_is_immutable() {
    let target = "  rules:\n  - targetModels:\n    - modelServerName: s\n";
    let old = route(&format!("  modelName: a\n{target}"));
    let same = route(&format!("  modelName: a\n  loraAdapters: [x]\n{target}"));
    let changed = route(&format!("  modelName: b\n{target}"));
    assert!(same.validate_cel_update(&old).is_ok());
    let err = format!(
        "{:?}",
        changed
            .validate_cel_update(&old)
            .expect_err("rename rejected")
    );
    assert!(err.contains("modelName is immutable"), "{err}");
}

#[test]
fn provider_secret_ref_may_not_be_optional() {
    let provider = |optional: &str| -> ExternalModelProvider {
        serde_norway::from_str(&format!(
            "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ExternalModelProvider\n\
             metadata: {{name: p}}\nspec:\n  baseURL: https://api.openai.com\n  auth:\n    \
             secretRef: {{name: s, key: k{optional}}}\n"
        ))
        .expect("parses")
    };
    assert!(provider("").validate_cel().is_ok());
    assert!(provider(", optional: false").validate_cel().is_ok());
    assert!(provider(", optional: true").validate_cel().is_err());
}
