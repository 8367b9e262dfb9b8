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
use std::sync::Arc;

use kthena_api::manifest::{self, ObjectKey};

use super::assemble::Converted;
use super::{Config, GatewayOptions};
use crate::actors::index::{Apply, Index};

/// What a folder read remembers for the next one: each file's last read (so an unchanged file
/// is neither parsed nor converted again), the last valid version of every object and the
/// objects of every file's last readable version.
#[derive(Debug, Default)]
pub struct Memory {
    valid: HashMap<ObjectKey, Arc<Converted>>,
    files: HashMap<PathBuf, FileRead>,
}

/// One file as last read.
#[derive(Debug)]
struct FileRead {
    stamp: Stamp,
    hash: u64,
    /// Its documents, each converted; `Err` when the file is not YAML at all.
    documents: Result<Vec<Doc>, String>,
    /// The objects of its last readable version, standing in while it is unreadable.
    readable: Vec<(ObjectKey, Arc<Converted>)>,
}

/// One document of a file: the object it declares (when its header reads) and the object
/// converted, or why it does not read.
#[derive(Debug)]
struct Doc {
    key: Option<ObjectKey>,
    object: Result<Arc<Converted>, String>,
}

/// What tells a file changed without reading it: length, modification time and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

fn stamp(file: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(file)?;
    Ok(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode: m.ino(),
    })
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

/// One object about to be combined.
struct Candidate {
    key: ObjectKey,
    object: Arc<Converted>,
    /// Read from this folder version (not a remembered one standing in for a bad document).
    fresh: bool,
}

/// Reads `file` into `memory` unless it is unchanged since the last read: only a changed file
/// is parsed, and only its documents are converted.
fn read_file(file: &Path, gw: &GatewayOptions, memory: &mut Memory) -> Result<(), String> {
    let name = file.display().to_string();
    let stamp = stamp(file).map_err(|e| format!("{name}: {e}"))?;
    if memory.files.get(file).is_some_and(|f| f.stamp == stamp) {
        return Ok(());
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("{name}: {e}"))?;
    let hash = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        h.finish()
    };
    if let Some(f) = memory.files.get_mut(file)
        && f.hash == hash
    {
        f.stamp = stamp;
        return Ok(());
    }
    let documents = manifest::parse_documents(&text, &name)
        .map(|docs| {
            docs.into_iter()
                .map(|doc| {
                    let origin = format!("{name} (document {})", doc.index + 1);
                    Doc {
                        key: doc.key,
                        object: doc
                            .object
                            .map(|o| Arc::new(Converted::new(origin, o, gw)))
                            .map_err(|e| e.to_string()),
                    }
                })
                .collect()
        })
        .map_err(|e| e.to_string());
    let readable = memory
        .files
        .remove(file)
        .map(|f| f.readable)
        .unwrap_or_default();
    memory.files.insert(
        file.to_owned(),
        FileRead {
            stamp,
            hash,
            documents,
            readable,
        },
    );
    Ok(())
}

/// Reads every manifest under `dir` into a configuration, with `memory` standing in for
/// documents and objects that are bad in this version; `memory` is updated. Files unchanged
/// since the last read are taken from `memory` as they were converted. Fails only when the
/// folder cannot be listed.
pub fn load(dir: &Path, gw: &GatewayOptions, memory: &mut Memory) -> Result<Loaded, String> {
    let files = manifest::files(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut problems = Vec::new();
    let mut read = Vec::new();
    for file in files {
        match read_file(&file, gw, memory) {
            Ok(()) => read.push(file),
            Err(e) => problems.push(format!(
                "{e}; the objects of its last readable version stay"
            )),
        }
    }
    // Files that disappeared are forgotten (their objects are deleted).
    let listed: HashSet<&PathBuf> = read.iter().collect();
    memory.files.retain(|f, _| listed.contains(f));
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut refused: Vec<(ObjectKey, Arc<Converted>)> = Vec::new();
    let mut unreadable: Vec<(ObjectKey, String)> = Vec::new();
    for file in &read {
        let f = &memory.files[file];
        let name = file.display();
        match &f.documents {
            Err(e) => {
                problems.push(format!(
                    "{e}; the objects of its last readable version stay"
                ));
                for (key, object) in &f.readable {
                    let origin = format!(
                        "{name} (last readable version, {} {})",
                        key.kind,
                        key.name.as_deref().unwrap_or_default()
                    );
                    candidates.push(Candidate {
                        key: key.clone(),
                        object: Arc::new(object.with_origin(origin)),
                        fresh: false,
                    });
                }
            }
            Ok(docs) => {
                for doc in docs {
                    match (&doc.key, &doc.object) {
                        (Some(key), Ok(object)) if object.is_refused() => {
                            refused.push((key.clone(), object.clone()));
                        }
                        (Some(key), Ok(object)) => candidates.push(Candidate {
                            key: key.clone(),
                            object: object.clone(),
                            fresh: true,
                        }),
                        (Some(key), Err(e)) => unreadable.push((key.clone(), e.clone())),
                        (None, Err(e)) => problems.push(e.clone()),
                        (None, Ok(_)) => unreachable!("a document read as an object has a header"),
                    }
                }
            }
        }
    }
    // A bad object gives way to its last valid version, unless another document of the
    // folder declares it validly; with no stand-in, a refused object is still combined, so
    // that its status says why it is left out.
    let good: HashSet<ObjectKey> = candidates
        .iter()
        .filter(|c| c.fresh)
        .map(|c| c.key.clone())
        .collect();
    let mut stood_in: HashSet<ObjectKey> = HashSet::new();
    let mut stand_in = |key: &ObjectKey, memory: &Memory, candidates: &mut Vec<Candidate>| {
        let old = memory.valid.get(key).filter(|_| !good.contains(key))?;
        if stood_in.insert(key.clone()) {
            candidates.push(Candidate {
                key: key.clone(),
                object: old.clone(),
                fresh: false,
            });
        }
        Some(())
    };
    for (key, e) in &unreadable {
        problems.push(match stand_in(key, memory, &mut candidates) {
            Some(()) => format!("{e}; its last valid version stays"),
            None => e.clone(),
        });
    }
    let mut left_out = Vec::new();
    for (key, object) in refused {
        let problem = object.problem().expect("a refused object has a problem");
        match stand_in(&key, memory, &mut candidates) {
            Some(()) => problems.push(format!(
                "{}; its last valid version stays",
                one_line(&problem.to_string())
            )),
            None => left_out.push(object),
        }
    }
    let (config, found) = super::assemble::combine(
        candidates
            .iter()
            .map(|c| c.object.as_ref())
            .chain(left_out.iter().map(AsRef::as_ref)),
        gw,
    );
    for p in &found {
        problems.push(one_line(&p.to_string()));
    }
    // Remember what was valid (not a duplicate); forget what the folder no longer declares.
    let duplicates: HashSet<&str> = found
        .iter()
        .filter(|p| !p.errors.is_empty())
        .map(|p| p.origin.as_str())
        .collect();
    let declared: HashSet<&ObjectKey> = candidates
        .iter()
        .map(|c| &c.key)
        .chain(unreadable.iter().map(|(k, _)| k))
        .collect();
    memory.valid.retain(|k, _| declared.contains(k));
    for c in candidates.iter().filter(|c| c.fresh) {
        if !duplicates.contains(c.object.origin.as_str()) {
            memory.valid.insert(c.key.clone(), c.object.clone());
        }
    }
    for f in memory.files.values_mut() {
        if let Ok(docs) = &f.documents {
            f.readable = docs
                .iter()
                .filter_map(|d| d.key.as_ref())
                .filter_map(|k| memory.valid.get(k).map(|o| (k.clone(), o.clone())))
                .collect();
        }
    }
    Ok(Loaded { config, problems })
}

/// `text` on one log line (regex errors, for one, span several).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A fingerprint of every manifest file's name, length, modification time and inode: a
/// check of an unchanged folder reads no file.
fn fingerprint(dir: &Path) -> std::io::Result<u64> {
    let files = manifest::files(dir)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.hash(&mut h);
        stamp(&f)?.hash(&mut h);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> GatewayOptions {
        GatewayOptions {
            enabled: false,
            controller_name: "volcano.sh/kthena-router".into(),
            namespace: "kthena".into(),
            port: 8080,
            inference_extension: false,
            addresses: vec![],
        }
    }

    fn route(name: &str, model: &str) -> String {
        format!(
            "apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\n\
             metadata: {{name: {name}, namespace: default}}\n\
             spec: {{modelName: {model}, rules: [{{targetModels: [{{modelServerName: s}}]}}]}}\n"
        )
    }

    fn converted(memory: &Memory, file: &Path) -> Vec<Arc<Converted>> {
        let docs = memory.files[file].documents.as_ref().expect("readable");
        docs.iter()
            .map(|d| d.object.clone().expect("reads"))
            .collect()
    }

    #[test]
    fn only_a_changed_file_is_parsed_and_converted_again() {
        let dir = std::env::temp_dir().join(format!("kthena-manifests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (a, b) = (dir.join("a.yaml"), dir.join("b.yaml"));
        std::fs::write(&a, route("ra", "ma")).expect("write");
        std::fs::write(&b, route("rb", "mb")).expect("write");
        let mut memory = Memory::default();
        let first = load(&dir, &options(), &mut memory).expect("loads");
        assert_eq!(first.config.routes.len(), 2);
        let (a1, b1) = (converted(&memory, &a), converted(&memory, &b));
        let again = load(&dir, &options(), &mut memory).expect("loads");
        assert_eq!(again.config.routes.len(), 2);
        assert!(Arc::ptr_eq(&a1[0], &converted(&memory, &a)[0]));
        // Rewritten with a different length: b alone is read again.
        std::fs::write(&b, route("rb", "mb-renamed")).expect("write");
        let changed = load(&dir, &options(), &mut memory).expect("loads");
        assert!(
            Arc::ptr_eq(&a1[0], &converted(&memory, &a)[0]),
            "a untouched"
        );
        assert!(
            !Arc::ptr_eq(&b1[0], &converted(&memory, &b)[0]),
            "b converted again"
        );
        let mut models: Vec<_> = changed
            .config
            .routes
            .iter()
            .filter_map(|r| r.model_name.clone())
            .collect();
        models.sort();
        assert_eq!(models, ["ma", "mb-renamed"]);
        // A file removed takes its objects with it.
        std::fs::remove_file(&b).expect("remove");
        let removed = load(&dir, &options(), &mut memory).expect("loads");
        assert_eq!(removed.config.routes.len(), 1);
        assert!(!memory.files.contains_key(&b));
        std::fs::remove_dir_all(&dir).ok();
    }
}
