//! Standalone mode: the configuration is a folder of manifests (ModelRoute, ModelServer, Pod,
//! multi-document YAML), read as a cluster would hold them and watched for changes.
//!
//! A folder with any problem (unreadable YAML, an invalid object, a duplicate) is not applied:
//! every problem is logged naming the file, the object and the field, and the last good
//! configuration stays in force.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context};
use kthena_api::convert;
use kthena_api::manifest::{self, Object};

use super::{Config, DEFAULT_CLASS_NAME, GatewayOptions};
use crate::actors::index::{Apply, Index};
use crate::pool::PodInfo;

/// Reads every manifest under `dir` into a configuration, or returns every problem found.
pub fn load(dir: &Path, gw: &GatewayOptions) -> Result<Config, Vec<String>> {
    let objects = manifest::load(dir).map_err(|e| vec![e.to_string()])?;
    let mut config = Config::default();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut ignored = BTreeSet::new();
    let mut our_classes: BTreeSet<String> = [DEFAULT_CLASS_NAME.to_owned()].into();
    let mut gateways = Vec::new();
    for (file, object) in objects {
        let file = file.display();
        let mut check_unique = |kind: &str, id: &kthena_core::ObjectRef| {
            if !seen.insert((kind.to_owned(), id.clone())) {
                problems.push(format!("{file}: {kind} {id}: defined more than once"));
            }
        };
        match object {
            Object::ModelRoute(mr) => {
                let id = convert::object_ref(mr.as_ref());
                check_unique("ModelRoute", &id);
                match convert::model_route(&mr) {
                    Ok(r) => config.routes.push(r),
                    Err(errs) => problems.extend(
                        errs.into_iter()
                            .map(|e| format!("{file}: ModelRoute {id}: {e}")),
                    ),
                }
                config
                    .dump
                    .modelroutes
                    .push(serde_json::to_value(&mr).unwrap_or_default());
            }
            Object::ModelServer(ms) => {
                let id = convert::object_ref(ms.as_ref());
                check_unique("ModelServer", &id);
                match convert::model_server(&ms) {
                    Ok(s) => config.servers.push(s),
                    Err(errs) => problems.extend(
                        errs.into_iter()
                            .map(|e| format!("{file}: ModelServer {id}: {e}")),
                    ),
                }
                config
                    .dump
                    .modelservers
                    .push(serde_json::to_value(&ms).unwrap_or_default());
            }
            Object::Pod(pod) => {
                let info = PodInfo::from_pod(&pod);
                check_unique("Pod", &info.id);
                config.pods.push(info);
                config
                    .dump
                    .pods
                    .push(serde_json::to_value(&pod).unwrap_or_default());
            }
            Object::GatewayClass(c) if gw.enabled => {
                if c.spec.controller_name == gw.controller_name {
                    our_classes.insert(c.metadata.name.clone().unwrap_or_default());
                }
            }
            Object::Gateway(g) if gw.enabled => {
                let id = convert::object_ref(g.as_ref());
                check_unique("Gateway", &id);
                config
                    .dump
                    .gateways
                    .push(serde_json::to_value(&g).unwrap_or_default());
                match convert::gateway(&g) {
                    Ok(converted) => gateways.push(converted),
                    Err(errs) => problems.extend(
                        errs.into_iter()
                            .map(|e| format!("{file}: Gateway {id}: {e}")),
                    ),
                }
            }
            Object::HttpRoute(r) if gw.enabled => {
                let id = convert::object_ref(r.as_ref());
                check_unique("HTTPRoute", &id);
                config
                    .dump
                    .httproutes
                    .push(serde_json::to_value(&r).unwrap_or_default());
                match convert::http_route::http_route(&r) {
                    Ok(route) => {
                        let refs = r.spec.parent_refs.as_deref().unwrap_or_default();
                        let parents = convert::gateway_parents(refs, &id);
                        config
                            .http_routes
                            .push(kthena_core::gateway::ParentedHttpRoute { route, parents });
                    }
                    Err(errs) => problems.extend(
                        errs.into_iter()
                            .map(|e| format!("{file}: HTTPRoute {id}: {e}")),
                    ),
                }
            }
            Object::InferenceModel(m) if gw.enabled => {
                let id = convert::object_ref(m.as_ref());
                check_unique("InferenceModel", &id);
                config
                    .dump
                    .inferencemodels
                    .push(serde_json::to_value(&m).unwrap_or_default());
                match convert::inference_model(&m) {
                    Ok(model) => config.inference_models.push(model),
                    Err(errs) => problems.extend(
                        errs.into_iter()
                            .map(|e| format!("{file}: InferenceModel {id}: {e}")),
                    ),
                }
            }
            Object::Secret(secret) if gw.enabled => {
                let id = convert::object_ref(secret.as_ref());
                let field = |k: &str| {
                    secret
                        .data
                        .as_ref()
                        .and_then(|d| d.get(k))
                        .map(|b| b.0.clone())
                        .or_else(|| {
                            secret
                                .string_data
                                .as_ref()
                                .and_then(|d| d.get(k))
                                .map(|s| s.clone().into_bytes())
                        })
                };
                if let (Some(cert_pem), Some(key_pem)) = (field("tls.crt"), field("tls.key")) {
                    config
                        .tls_secrets
                        .insert(id, super::TlsSecret { cert_pem, key_pem });
                }
            }
            Object::InferencePool(p) if gw.enabled => {
                let id = convert::object_ref(p.as_ref());
                check_unique("InferencePool", &id);
                config
                    .dump
                    .inferencepools
                    .push(serde_json::to_value(&p).unwrap_or_default());
                match convert::inference_pool_v1(&p) {
                    Ok(pool) => config.pools.push(pool),
                    Err(errs) => problems.extend(
                        errs.into_iter()
                            .map(|e| format!("{file}: InferencePool {id}: {e}")),
                    ),
                }
            }
            Object::InferencePoolV1alpha2(p) if gw.enabled => {
                let id = convert::object_ref(p.as_ref());
                check_unique("InferencePool.v1alpha2", &id);
                config
                    .dump
                    .inferencepools
                    .push(serde_json::to_value(&p).unwrap_or_default());
                match convert::inference_pool_v1alpha2(&p) {
                    Ok(pool) => config.pools.push(pool),
                    Err(errs) => problems.extend(
                        errs.into_iter()
                            .map(|e| format!("{file}: InferencePool {id}: {e}")),
                    ),
                }
            }
            Object::Other { api_version, kind } => {
                ignored.insert(format!("{api_version}/{kind}"));
            }
            other => {
                ignored.insert(kind_name(&other).to_owned());
            }
        }
    }
    if gw.enabled {
        gateways.retain(|g| our_classes.contains(&g.class_name));
        let default = gw.default_gateway();
        if !gateways.iter().any(|g| g.id == default.id) {
            gateways.push(default);
        }
        config.gateways = gateways;
    }
    if !ignored.is_empty() {
        tracing::debug!(kinds = ?ignored, "manifests of kinds standalone mode does not use were ignored");
    }
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

fn kind_name(o: &Object) -> &'static str {
    match o {
        Object::ExternalModelProvider(_) => "ExternalModelProvider",
        Object::GatewayClass(_) => "GatewayClass",
        Object::Gateway(_) => "Gateway",
        Object::HttpRoute(_) => "HTTPRoute",
        Object::ReferenceGrant(_) => "ReferenceGrant",
        Object::InferencePool(_) | Object::InferencePoolV1alpha2(_) => "InferencePool",
        Object::InferenceModel(_) => "InferenceModel",
        Object::InferenceObjective(_) => "InferenceObjective",
        _ => "other",
    }
}

/// A fingerprint of every manifest file's name and content.
fn fingerprint(dir: &Path) -> std::io::Result<u64> {
    let files = manifest::files(dir)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        std::fs::read(&f)?.hash(&mut h);
    }
    Ok(h.finish())
}

/// Watches a manifest folder and applies every good, settled version of it.
#[derive(Debug)]
pub struct ManifestWatcher {
    dir: PathBuf,
    interval: Duration,
    gateway: GatewayOptions,
    index: Addr<Index>,
    /// Fingerprint of the folder last loaded (applied or rejected).
    last: Option<u64>,
    /// Fingerprint seen at the previous check, not yet loaded.
    pending: Option<u64>,
}

impl ManifestWatcher {
    /// A watcher of `dir`, checking every `interval`.
    pub fn new(
        dir: PathBuf,
        interval: Duration,
        gateway: GatewayOptions,
        index: Addr<Index>,
    ) -> Self {
        Self {
            dir,
            interval,
            gateway,
            index,
            last: None,
            pending: None,
        }
    }

    fn check(&mut self) {
        let print = match fingerprint(&self.dir) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "reading manifests; keeping the last good configuration");
                return;
            }
        };
        if self.last == Some(print) {
            self.pending = None;
            return;
        }
        // A folder is loaded only once it looks the same at two checks in a row: an editor
        // that truncates then writes, or a rename racing the directory listing, is never
        // mistaken for the new configuration. The first load does not wait.
        if self.last.is_some() && self.pending != Some(print) {
            self.pending = Some(print);
            return;
        }
        let loaded = load(&self.dir, &self.gateway);
        if fingerprint(&self.dir).ok() != Some(print) {
            // Changed while being read: read it again at the next check.
            self.pending = None;
            return;
        }
        self.last = Some(print);
        self.pending = None;
        match loaded {
            Ok(config) => {
                tracing::info!(
                    dir = %self.dir.display(),
                    modelroutes = config.routes.len(),
                    modelservers = config.servers.len(),
                    pods = config.pods.len(),
                    "manifests loaded"
                );
                self.index.do_send(Apply(config));
            }
            Err(problems) => {
                for p in &problems {
                    tracing::error!(problem = %p, "invalid manifest");
                }
                tracing::error!(
                    dir = %self.dir.display(),
                    problems = problems.len(),
                    "manifests not applied; keeping the last good configuration"
                );
            }
        }
    }
}

impl Actor for ManifestWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = tracing::info_span!("manifest_watcher", dir = %self.dir.display()).entered();
        self.check();
        ctx.run_interval(self.interval, |act, _| act.check());
    }
}
