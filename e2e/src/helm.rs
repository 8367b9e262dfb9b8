//! The Helm chart (`charts/kthena`) as the tests see it: `helm` found or refused, `helm
//! template` rendered into JSON objects, and the RBAC rules those objects grant flattened
//! into comparable rows.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use crate::cluster::repo_root;

/// The chart folder.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/kthena")
}

/// The `helm` binary: `$HELM`, else `target/tools/bin/helm` (what `.ci/install-helm` puts
/// there), else `helm` on `$PATH`. Panics saying how to get one: the chart tests never skip.
pub fn helm() -> PathBuf {
    if let Some(h) = std::env::var_os("HELM").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let installed = repo_root().join("target/tools/bin/helm");
    if installed.exists() {
        return installed;
    }
    let on_path = Command::new("helm").arg("version").output();
    assert!(
        on_path.is_ok_and(|o| o.status.success()),
        "helm not found: run .ci/install-helm (it installs target/tools/bin/helm) or set $HELM"
    );
    PathBuf::from("helm")
}

/// Runs `helm` with `args`; its stdout, or its stderr as the error.
pub fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(helm())
        .args(args)
        .output()
        .map_err(|e| format!("running helm: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The namespace the chart is rendered into.
pub const NAMESPACE: &str = "kthena-system";

/// `helm template` of the chart in [`NAMESPACE`] with `--set` values `sets`: every object
/// rendered, or helm's error (a failed schema check or `fail`).
pub fn template(sets: &[&str]) -> Result<Vec<Value>, String> {
    let chart = chart_dir();
    let chart = chart.to_str().expect("UTF-8 path");
    let mut args = vec!["template", "kthena", chart, "--namespace", NAMESPACE];
    for s in sets {
        args.extend(["--set", s]);
    }
    let text = run(&args)?;
    parse(&text)
}

/// The objects of a multi-document YAML stream (empty documents skipped).
pub fn parse(text: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| format!("rendered YAML: {e}"))?;
        if !v.is_null() {
            objects.push(v);
        }
    }
    Ok(objects)
}

/// The object of `kind` named `name`; panics listing what was rendered when missing.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {:?}", kinds(objects)))
}

/// `Kind/name` of every object.
pub fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// One permission: API group (`""` for core), resource, verb, whether it holds in the
/// router's namespace only (a Role), and the one object it is limited to, if any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// API group.
    pub group: String,
    /// Resource (with subresource, e.g. `gateways/status`).
    pub resource: String,
    /// Verb.
    pub verb: String,
    /// Granted by the namespaced Role rather than the ClusterRole.
    pub namespaced: bool,
    /// `resourceNames`, when the rule names one object.
    pub name: Option<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Every permission the rendered ClusterRoles and Roles grant, one row per group × resource ×
/// verb (× name).
pub fn grants(objects: &[Value]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for o in objects {
        let namespaced = match o["kind"].as_str() {
            Some("ClusterRole") => false,
            Some("Role") => true,
            _ => continue,
        };
        for rule in o["rules"].as_array().into_iter().flatten() {
            let names = strings(&rule["resourceNames"]);
            let names: Vec<Option<String>> = if names.is_empty() {
                vec![None]
            } else {
                names.into_iter().map(Some).collect()
            };
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        for name in &names {
                            out.insert(Grant {
                                group: group.clone(),
                                resource: resource.clone(),
                                verb: verb.clone(),
                                namespaced,
                                name: name.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    out
}
