//! Standalone mode: the configuration is a folder of manifests (ModelRoute, ModelServer, Pod,
//! multi-document YAML), read as a cluster would hold them and watched for changes.
//!
//! A folder is applied the way an API server takes the same objects one by one: a document
//! that does not read, or an object that is invalid, is logged naming the file, the object
//! and the field; it keeps its last valid version (as a rejected update leaves the stored
//! object alone) or is left out if it never had one, and every other object applies. A file
//! that is not YAML at all keeps the objects of its last readable version. Only a folder that
//! cannot be listed keeps the whole last configuration.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext, Context};
use kthena_api::manifest::{self, Object, ObjectKey};

use super::{Config, GatewayOptions};
use crate::actors::index::{Apply, Index};

/// What a folder read remembers for the next one: the last valid version of every object
/// and the objects of every file's last readable version.
#[derive(Debug, Default)]
pub struct Memory {
    valid: HashMap<ObjectKey, Object>,
    files: HashMap<PathBuf, Vec<(ObjectKey, Object)>>,
}

/// A folder read: the configuration to apply and every problem found in it (each naming its
/// file, object and field). Problems do not stop the rest from applying.
#[derive(Debug)]
pub struct Loaded {
    /// What to serve.
    pub config: Config,
    /// What was wrong, one line each.
    pub problems: Vec<String>,
}

/// One object about to be assembled, with where it came from.
#[derive(Clone)]
struct Candidate {
    origin: String,
    key: ObjectKey,
    object: Object,
    /// Read from this folder version (not a remembered one standing in for a bad document).
    fresh: bool,
}

/// Reads every manifest under `dir` into a configuration, with `memory` standing in for
/// documents and objects that are bad in this version; `memory` is updated. Fails only when
/// the folder cannot be listed.
pub fn load(dir: &Path, gw: &GatewayOptions, memory: &mut Memory) -> Result<Loaded, String> {
    let files = manifest::files(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut problems = Vec::new();
    let mut candidates = Vec::new();
    let mut declared: HashSet<ObjectKey> = HashSet::new();
    let mut readable: HashMap<PathBuf, Vec<ObjectKey>> = HashMap::new();
    for file in files {
        let name = file.display().to_string();
        let documents = std::fs::read_to_string(&file)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|text| manifest::parse_documents(&text, &name).map_err(|e| e.to_string()));
        let documents = match documents {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!(
                    "{e}; the objects of its last readable version stay"
                ));
                for (key, object) in memory.files.get(&file).into_iter().flatten() {
                    declared.insert(key.clone());
                    candidates.push(Candidate {
                        origin: format!(
                            "{name} (last readable version, {} {})",
                            key.kind,
                            key.name.as_deref().unwrap_or_default()
                        ),
                        key: key.clone(),
                        object: object.clone(),
                        fresh: false,
                    });
                }
                continue;
            }
        };
        let keys = readable.entry(file.clone()).or_default();
        for doc in documents {
            let origin = format!("{name} (document {})", doc.index + 1);
            match (doc.key, doc.object) {
                (Some(key), Ok(object)) => {
                    declared.insert(key.clone());
                    keys.push(key.clone());
                    candidates.push(Candidate {
                        origin,
                        key,
                        object,
                        fresh: true,
                    });
                }
                (key, Err(e)) => {
                    let kept = key.as_ref().and_then(|k| memory.valid.get(k));
                    problems.push(match kept {
                        Some(_) => format!("{e}; its last valid version stays"),
                        None => e.to_string(),
                    });
                    if let (Some(key), Some(object)) = (key, kept) {
                        declared.insert(key.clone());
                        keys.push(key.clone());
                        candidates.push(Candidate {
                            origin,
                            key,
                            object: object.clone(),
                            fresh: false,
                        });
                    }
                }
                (None, Ok(_)) => unreachable!("a document read as an object has a header"),
            }
        }
    }
    let assembled = |cs: &[Candidate]| {
        super::assemble::assemble(cs.iter().map(|c| (c.origin.clone(), c.object.clone())), gw)
    };
    let (mut config, first) = assembled(&candidates);
    if !first.is_empty() {
        // Each invalid object gives way to its last valid version, or is left out.
        let bad: HashSet<&str> = first.iter().map(|p| p.origin.as_str()).collect();
        let mut kept = Vec::with_capacity(candidates.len());
        let mut replaced = HashSet::new();
        for c in candidates.iter() {
            if !bad.contains(c.origin.as_str()) {
                kept.push(c.clone());
            }
        }
        let good: HashSet<&ObjectKey> = kept.iter().map(|c| &c.key).collect();
        let mut stand_ins = Vec::new();
        for c in candidates
            .iter()
            .filter(|c| bad.contains(c.origin.as_str()))
        {
            if let Some(old) = memory.valid.get(&c.key)
                && c.fresh
                && !good.contains(&c.key)
                && replaced.insert(c.key.clone())
            {
                stand_ins.push(Candidate {
                    origin: c.origin.clone(),
                    key: c.key.clone(),
                    object: old.clone(),
                    fresh: false,
                });
            }
        }
        // Origins whose object gave way to its last valid version.
        let stood_in: HashSet<String> = stand_ins.iter().map(|c| c.origin.clone()).collect();
        for p in &first {
            let suffix = if stood_in.contains(p.origin.as_str()) {
                "; its last valid version stays"
            } else {
                ""
            };
            problems.push(format!("{}{suffix}", one_line(&p.to_string())));
        }
        kept.extend(stand_ins);
        let (again, second) = assembled(&kept);
        config = again;
        // Left out with nothing standing in: their status says why.
        let mut invalid: Vec<crate::state::Invalid> = first
            .iter()
            .filter(|p| !stood_in.contains(p.origin.as_str()))
            .map(crate::state::Invalid::from)
            .collect();
        invalid.append(&mut config.invalid);
        config.invalid = invalid;
        for p in &second {
            problems.push(one_line(&p.to_string()));
        }
        candidates = kept;
    }
    // Remember what was valid; forget what the folder no longer declares.
    memory.valid.retain(|k, _| declared.contains(k));
    for c in &candidates {
        memory.valid.insert(c.key.clone(), c.object.clone());
    }
    for (file, keys) in readable {
        let objects = keys
            .into_iter()
            .filter_map(|k| memory.valid.get(&k).map(|o| (k, o.clone())))
            .collect();
        memory.files.insert(file, objects);
    }
    Ok(Loaded { config, problems })
}

/// `text` on one log line (regex errors, for one, span several).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
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
    /// Last valid objects, standing in for bad documents.
    memory: Memory,
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
            memory: Memory::default(),
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
        let loaded = load(&self.dir, &self.gateway, &mut self.memory);
        if fingerprint(&self.dir).ok() != Some(print) {
            // Changed while being read: read it again at the next check.
            self.pending = None;
            return;
        }
        self.last = Some(print);
        self.pending = None;
        match loaded {
            Ok(Loaded { config, problems }) => {
                for p in &problems {
                    tracing::error!(problem = %p, "invalid manifest");
                }
                tracing::info!(
                    dir = %self.dir.display(),
                    modelroutes = config.routes.len(),
                    modelservers = config.servers.len(),
                    pods = config.pods.len(),
                    problems = problems.len(),
                    "manifests loaded"
                );
                self.index.do_send(Apply(config));
            }
            Err(e) => {
                tracing::error!(
                    dir = %self.dir.display(),
                    error = %e,
                    "manifests not readable; keeping the last configuration"
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
