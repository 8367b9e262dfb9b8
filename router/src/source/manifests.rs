//! Standalone mode: the configuration is a folder of manifests (ModelRoute, ModelServer, Pod,
//! multi-document YAML), read as a cluster would hold them and watched for changes.
//!
//! A folder with any problem (unreadable YAML, an invalid object, a duplicate) is not applied:
//! every problem is logged naming the file, the object and the field, and the last good
//! configuration stays in force.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context};
use kthena_api::manifest;

use super::{Config, GatewayOptions};
use crate::actors::index::{Apply, Index};

/// Reads every manifest under `dir` into a configuration, or returns every problem found.
pub fn load(dir: &Path, gw: &GatewayOptions) -> Result<Config, Vec<String>> {
    let objects = manifest::load(dir).map_err(|e| vec![e.to_string()])?;
    let objects = objects
        .into_iter()
        .map(|(file, o)| (file.display().to_string(), o));
    let (config, problems) = super::assemble::assemble(objects, gw);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems.iter().map(ToString::to_string).collect())
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
