//! The router configuration file, as Kthena's `kthena-router-config` ConfigMap holds it under
//! `routerConfiguration` (mounted at `/etc/config/routerConfiguration.yaml`):
//!
//! ```yaml
//! scheduler:
//!   pluginConfig:
//!   - name: least-request
//!     args: {maxWaitingRequests: 10}
//!   plugins:
//!     Filter:
//!       enabled: [least-request]
//!     Score:
//!       enabled:
//!       - {name: least-request, weight: 1}
//! ```
//!
//! Read into a [`kthena_core::scheduler::SchedulerConfig`]; the plugin rules are core's.
//! Unlike Kthena, a misspelt key (`filter:` for `Filter:`) is an error naming it rather than
//! silently ignored, a score without `weight` weighs 1 (Kthena: 0), and no `scheduler` section
//! at all means Kthena's chart defaults. The `disabled` lists are read and, as in Kthena,
//! mean nothing.
//!
//! The `auth` section (`issuer`, `audiences`, `jwksUri`) turns on JWT authentication of `/v1/`
//! requests when `jwksUri` is set, as in Kthena; here an `issuer` is required with it (Kthena
//! would then refuse every token) and the URI must be `http(s)://`. Without `jwksUri` the
//! section is reported as doing nothing.

use std::collections::BTreeMap;

use kthena_core::auth::AuthConfig;
use kthena_core::scheduler::{ArgValue, PluginArgs, SchedulerConfig};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    scheduler: Option<Scheduler>,
    #[serde(default)]
    auth: Option<Auth>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Auth {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default, rename = "jwksUri")]
    jwks_uri: String,
    #[serde(default, rename = "groupsClaim")]
    groups_claim: Option<String>,
    #[serde(default)]
    access: Vec<AccessEntry>,
    #[serde(default, rename = "apiKeys")]
    api_keys: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AccessEntry {
    #[serde(default)]
    model_name: String,
    #[serde(default)]
    allowed_users: Vec<String>,
    #[serde(default)]
    allowed_groups: Vec<String>,
    #[serde(default = "yes")]
    forward_authorization: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scheduler {
    #[serde(default, rename = "pluginConfig")]
    plugin_config: Vec<PluginConfig>,
    #[serde(default)]
    plugins: Option<Plugins>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginConfig {
    name: String,
    #[serde(default)]
    args: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plugins {
    #[serde(default, rename = "Filter")]
    filter: Option<Stage<String>>,
    #[serde(default, rename = "Score")]
    score: Option<Stage<ScoreEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stage<T> {
    #[serde(default = "Vec::new")]
    enabled: Vec<T>,
    #[serde(default = "Vec::new")]
    #[allow(dead_code)]
    disabled: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreEntry {
    name: String,
    #[serde(default)]
    weight: Option<f64>,
}

/// A router configuration file, read.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterConfig {
    /// The scheduler section (Kthena's defaults when the file has none).
    pub scheduler: SchedulerConfig,
    /// JWT authentication, when the `auth` section names a `jwksUri`.
    pub auth: Option<AuthConfig>,
    /// Accepted but not honoured, for a log line.
    pub not_honoured: Vec<String>,
}

/// Reads `text`. The error names the field (`scheduler.plugins: unknown field \`filter\`...`).
pub fn parse(text: &str) -> Result<RouterConfig, String> {
    let file: Option<File> = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    let Some(file) = file else {
        return Ok(RouterConfig {
            scheduler: SchedulerConfig::default(),
            auth: None,
            not_honoured: Vec::new(),
        });
    };
    let mut not_honoured = Vec::new();
    let auth = match file.auth {
        None => None,
        Some(a) if a.jwks_uri.is_empty() && !a.api_keys && !a.access.is_empty() => {
            return Err(
                "auth.access: needs auth.jwksUri or auth.apiKeys (nothing authenticates the \
                 callers it names)"
                    .to_owned(),
            );
        }
        Some(a) if a.jwks_uri.is_empty() && !a.api_keys => {
            not_honoured.push(
                "auth: no jwksUri, so JWT authentication is off and requests are not \
                 authenticated"
                    .to_owned(),
            );
            None
        }
        Some(a) => Some(auth(a)?),
    };
    let Some(s) = file.scheduler else {
        return Ok(RouterConfig {
            scheduler: SchedulerConfig::default(),
            auth,
            not_honoured,
        });
    };
    let plugin_config = s
        .plugin_config
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let values: BTreeMap<String, ArgValue> = p
                .args
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, arg(v)))
                .collect();
            (
                p.name,
                PluginArgs {
                    path: format!("scheduler.pluginConfig[{i}].args"),
                    values,
                },
            )
        })
        .collect();
    let (filters, scores) = match s.plugins {
        None => (Vec::new(), Vec::new()),
        Some(p) => (
            p.filter.map(|f| f.enabled).unwrap_or_default(),
            p.score
                .map(|s| s.enabled)
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e.name, e.weight.unwrap_or(1.0)))
                .collect(),
        ),
    };
    Ok(RouterConfig {
        scheduler: SchedulerConfig {
            plugin_config,
            filters,
            scores,
        },
        auth,
        not_honoured,
    })
}

fn auth(a: Auth) -> Result<AuthConfig, String> {
    if a.jwks_uri.is_empty() {
        if !a.issuer.is_empty() || !a.audiences.is_empty() || a.groups_claim.is_some() {
            return Err(
                "auth.issuer, audiences and groupsClaim are JWT settings: they need auth.jwksUri"
                    .to_owned(),
            );
        }
        return Ok(AuthConfig {
            issuer: String::new(),
            audiences: Vec::new(),
            jwks_uri: String::new(),
            groups_claim: kthena_core::auth::DEFAULT_GROUPS_CLAIM.to_owned(),
            access: access(a.access)?,
            api_keys: true,
        });
    }
    let scheme_ok = ["http://", "https://"].iter().any(|s| {
        a.jwks_uri
            .get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
            && a.jwks_uri.len() > s.len()
    });
    if !scheme_ok {
        return Err(format!(
            "auth.jwksUri: {:?} is not an http:// or https:// URL",
            a.jwks_uri
        ));
    }
    if a.issuer.is_empty() {
        return Err(
            "auth.issuer: required with jwksUri (every token's `iss` must equal it)".to_owned(),
        );
    }
    if let Some(i) = a.audiences.iter().position(String::is_empty) {
        return Err(format!("auth.audiences[{i}]: empty"));
    }
    if a.groups_claim.as_deref() == Some("") {
        return Err("auth.groupsClaim: empty".to_owned());
    }
    Ok(AuthConfig {
        issuer: a.issuer,
        audiences: a.audiences,
        jwks_uri: a.jwks_uri,
        groups_claim: a
            .groups_claim
            .unwrap_or_else(|| kthena_core::auth::DEFAULT_GROUPS_CLAIM.to_owned()),
        access: access(a.access)?,
        api_keys: a.api_keys,
    })
}

fn access(entries: Vec<AccessEntry>) -> Result<Vec<kthena_core::auth::Access>, String> {
    let mut access: Vec<kthena_core::auth::Access> = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        if e.model_name.is_empty() {
            return Err(format!("auth.access[{i}].modelName: required"));
        }
        if let Some(j) = access.iter().position(|x| x.model_name == e.model_name) {
            return Err(format!(
                "auth.access[{i}].modelName: {:?} already has auth.access[{j}]",
                e.model_name
            ));
        }
        access.push(kthena_core::auth::Access {
            model_name: e.model_name,
            allowed_users: e.allowed_users,
            allowed_groups: e.allowed_groups,
            forward_authorization: e.forward_authorization,
        });
    }
    Ok(access)
}

fn arg(v: serde_json::Value) -> ArgValue {
    use serde_json::Value;
    match v {
        Value::Bool(b) => ArgValue::Bool(b),
        Value::Number(n) => n
            .as_f64()
            .map_or(ArgValue::Other("a number out of range"), ArgValue::Number),
        Value::String(s) => ArgValue::Text(s),
        Value::Null => ArgValue::Other("null"),
        Value::Array(_) => ArgValue::Other("a list"),
        Value::Object(_) => ArgValue::Other("a map"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kthena's chart ConfigMap, verbatim in shape.
    const KTHENA_CHART: &str = "
scheduler:
  pluginConfig:
  - name: least-request
    args:
      maxWaitingRequests: 10
  - name: least-latency
    args:
      TTFTTPOTWeightFactor: 0.5
  - name: prefix-cache
    args:
      blockSizeToHash: 64
      maxBlocksToMatch: 128
      maxHashCacheSize: 50000
      topKMatches: 5
  plugins:
    Filter:
      enabled:
        - least-request
      disabled:
        - lora-affinity
    Score:
      enabled:
        - name: least-request
          weight: 1
        - name: gpu-usage
          weight: 1
        - name: least-latency
          weight: 1
        - name: prefix-cache
          weight: 1
";

    #[test]
    fn kthenas_chart_configuration_reads_as_its_defaults_with_args() {
        let cfg = parse(KTHENA_CHART).expect("valid");
        let d = SchedulerConfig::default();
        assert_eq!(cfg.scheduler.filters, d.filters);
        assert_eq!(cfg.scheduler.scores, d.scores);
        assert_eq!(cfg.scheduler.plugin_config.len(), 3);
        let pc = &cfg.scheduler.plugin_config[2];
        assert_eq!(pc.0, "prefix-cache");
        assert_eq!(pc.1.path, "scheduler.pluginConfig[2].args");
        assert_eq!(pc.1.values["blockSizeToHash"], ArgValue::Number(64.0));
        assert!(cfg.not_honoured.is_empty());
        cfg.scheduler.build(&Default::default()).expect("builds");
    }

    #[test]
    fn an_empty_file_or_no_scheduler_section_means_the_defaults() {
        for text in ["", "# nothing\n", "auth:\n  issuer: x\n"] {
            let cfg = parse(text).expect("valid");
            assert_eq!(cfg.scheduler, SchedulerConfig::default(), "{text:?}");
        }
        assert_eq!(
            parse("auth: {issuer: x}").expect("ok").not_honoured.len(),
            1
        );
    }

    #[test]
    fn the_auth_section_turns_jwt_on_with_a_jwks_uri() {
        let cfg = parse(
            "auth:\n  issuer: https://idp\n  audiences: [kthena]\n  jwksUri: https://idp/keys\n",
        )
        .expect("valid");
        assert_eq!(
            cfg.auth,
            Some(AuthConfig {
                issuer: "https://idp".into(),
                audiences: vec!["kthena".into()],
                jwks_uri: "https://idp/keys".into(),
                groups_claim: "groups".into(),
                access: vec![],
                api_keys: false,
            })
        );
        assert!(cfg.not_honoured.is_empty());
        let cfg = parse(
            "auth:\n  issuer: i\n  jwksUri: http://idp/keys\n  groupsClaim: roles\n  access:\n  \
             - {modelName: m, allowedUsers: [alice], allowedGroups: [ml], forwardAuthorization: false}\n  \
             - {modelName: n}\n",
        )
        .expect("valid")
        .auth
        .expect("on");
        assert_eq!(cfg.groups_claim, "roles");
        let m = cfg.access("m").expect("m");
        assert_eq!(
            (
                m.allowed_users.len(),
                m.allowed_groups.len(),
                m.forward_authorization
            ),
            (1, 1, false)
        );
        assert!(
            cfg.access("n").expect("n").forward_authorization,
            "Kthena forwards"
        );
        for (text, error) in [
            (
                "auth: {jwksUri: 'https://idp/keys'}",
                "auth.issuer: required",
            ),
            (
                "auth: {issuer: x, jwksUri: 'ftp://idp/keys'}",
                "auth.jwksUri:",
            ),
            ("auth: {issuer: x, jwksUri: 'https://'}", "auth.jwksUri:"),
            (
                "auth: {issuer: x, jwksUri: 'http://a', audiences: [a, '']}",
                "auth.audiences[1]: empty",
            ),
            (
                "auth: {issuer: x, jwks_uri: 'http://a'}",
                "unknown field `jwks_uri`",
            ),
            (
                "auth: {access: [{modelName: m}]}",
                "auth.access: needs auth.jwksUri",
            ),
            (
                "auth: {apiKeys: true, issuer: x}",
                "auth.issuer, audiences and groupsClaim are JWT settings",
            ),
            (
                "auth: {issuer: x, jwksUri: 'http://a', access: [{allowedUsers: [a]}]}",
                "auth.access[0].modelName: required",
            ),
            (
                "auth: {issuer: x, jwksUri: 'http://a', access: [{modelName: m}, {modelName: m}]}",
                "auth.access[1].modelName: \"m\" already has auth.access[0]",
            ),
            (
                "auth: {issuer: x, jwksUri: 'http://a', access: [{modelName: m, allowedUser: [a]}]}",
                "unknown field `allowedUser`",
            ),
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.contains(error), "{text}: {e}");
        }
    }

    #[test]
    fn misspelt_keys_and_bad_types_are_errors_naming_them() {
        let cases = [
            (
                "scheduler:\n  plugins:\n    filter:\n      enabled: [least-request]\n",
                "unknown field `filter`",
            ),
            (
                "scheduler:\n  plugin_config: []\n",
                "unknown field `plugin_config`",
            ),
            ("schedular: {}\n", "unknown field `schedular`"),
            (
                "scheduler:\n  plugins:\n    Score:\n      enabled:\n      - {name: gpu-usage, weight: heavy}\n",
                "weight",
            ),
            (
                "scheduler:\n  pluginConfig:\n  - name: x\n    args: [1]\n",
                "args",
            ),
            ("scheduler: [\n", "scheduler"),
        ];
        for (text, want) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_score_without_weight_weighs_one() {
        let cfg =
            parse("scheduler:\n  plugins:\n    Score:\n      enabled:\n      - name: gpu-usage\n")
                .expect("ok");
        assert_eq!(cfg.scheduler.scores, [("gpu-usage".to_owned(), 1.0)]);
        assert!(cfg.scheduler.filters.is_empty());
    }
}
