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

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message};
use std::sync::Arc;

use kthena_api::manifest::{self, ObjectKey};

use super::assemble::Converted;
use super::{Config, GatewayOptions};
use crate::actors::index::{Apply, Index};

/// What a folder read remembers for the next one: each file's last read (so an unchanged file
/// is neither parsed nor converted again), the last valid version of every object and the
/// objects of every file's last readable version.
///
/// Upkeep is per changed file: a read where one file changed costs that file, not the folder.
#[derive(Debug, Default)]
pub struct Memory {
    valid: HashMap<ObjectKey, Arc<Converted>>,
    /// How many documents of the folder declare each object.
    declared: HashMap<ObjectKey, usize>,
    files: HashMap<PathBuf, FileRead>,
}

impl Memory {
    fn declare(&mut self, keys: &[ObjectKey]) {
        for k in keys {
            *self.declared.entry(k.clone()).or_default() += 1;
        }
    }

    /// Forgets `keys` once for each; an object no document declares loses its last valid
    /// version.
    fn undeclare(&mut self, keys: &[ObjectKey]) {
        for k in keys {
            if let Some(n) = self.declared.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    self.declared.remove(k);
                    self.valid.remove(k);
                }
            }
        }
    }
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
    /// The objects it declares (counted in [`Memory::declared`]).
    keys: Vec<ObjectKey>,
    /// Read again by the current load: its objects update the memory.
    changed: bool,
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
struct Candidate<'a> {
    key: &'a ObjectKey,
    object: Arc<Converted>,
    /// Read from this folder version (not a remembered one standing in for a bad document).
    fresh: bool,
    /// From a file read again by this load.
    changed: bool,
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
    let documents: Result<Vec<Doc>, String> = manifest::parse_documents(&text, &name)
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
    let old = memory.files.remove(file);
    let readable = old.as_ref().map(|f| f.readable.clone()).unwrap_or_default();
    let keys: Vec<ObjectKey> = match &documents {
        Ok(docs) => docs.iter().filter_map(|d| d.key.clone()).collect(),
        Err(_) => readable.iter().map(|(k, _)| k.clone()).collect(),
    };
    // Declared again before the old version is forgotten: an object the file still declares
    // keeps its last valid version.
    memory.declare(&keys);
    if let Some(old) = old {
        memory.undeclare(&old.keys);
    }
    memory.files.insert(
        file.to_owned(),
        FileRead {
            stamp,
            hash,
            documents,
            readable,
            keys,
            changed: true,
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
    for f in memory.files.values_mut() {
        f.changed = false;
    }
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
    let gone: Vec<PathBuf> = memory
        .files
        .keys()
        .filter(|f| !listed.contains(f))
        .cloned()
        .collect();
    for f in gone {
        if let Some(old) = memory.files.remove(&f) {
            memory.undeclare(&old.keys);
        }
    }
    let memory_now: &Memory = memory;
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    let mut refused: Vec<(&ObjectKey, &Arc<Converted>)> = Vec::new();
    let mut unreadable: Vec<(&ObjectKey, &String)> = Vec::new();
    for file in &read {
        let f = &memory_now.files[file];
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
                        key,
                        object: Arc::new(object.with_origin(origin)),
                        fresh: false,
                        changed: false,
                    });
                }
            }
            Ok(docs) => {
                for doc in docs {
                    match (&doc.key, &doc.object) {
                        (Some(key), Ok(object)) if object.is_refused() => {
                            refused.push((key, object));
                        }
                        (Some(key), Ok(object)) => candidates.push(Candidate {
                            key,
                            object: object.clone(),
                            fresh: true,
                            changed: f.changed,
                        }),
                        (Some(key), Err(e)) => unreadable.push((key, e)),
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
    let mut left_out = Vec::new();
    if !refused.is_empty() || !unreadable.is_empty() {
        let good: HashSet<&ObjectKey> = candidates
            .iter()
            .filter(|c| c.fresh)
            .map(|c| c.key)
            .collect();
        let mut stood_in: HashSet<&ObjectKey> = HashSet::new();
        let mut stand_ins = Vec::new();
        let mut stand_in = |key: &'_ ObjectKey| -> bool {
            let Some((key, old)) = memory_now.valid.get_key_value(key) else {
                return false;
            };
            if good.contains(key) {
                return false;
            }
            if stood_in.insert(key) {
                stand_ins.push(Candidate {
                    key,
                    object: old.clone(),
                    fresh: false,
                    changed: false,
                });
            }
            true
        };
        for (key, e) in &unreadable {
            problems.push(if stand_in(key) {
                format!("{e}; its last valid version stays")
            } else {
                (*e).clone()
            });
        }
        for (key, object) in &refused {
            let problem = object.problem().expect("a refused object has a problem");
            if stand_in(key) {
                problems.push(format!(
                    "{}; its last valid version stays",
                    one_line(&problem.to_string())
                ));
            } else {
                left_out.push((*object).clone());
            }
        }
        candidates.extend(stand_ins);
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
    // Remember what is valid in the files read again (a duplicate is not).
    let found_at: HashSet<&str> = found.iter().map(|p| p.origin.as_str()).collect();
    let remember: Vec<(ObjectKey, Arc<Converted>)> = candidates
        .iter()
        .filter(|c| c.fresh && c.changed && !found_at.contains(c.object.origin.as_str()))
        .map(|c| (c.key.clone(), c.object.clone()))
        .collect();
    drop(candidates);
    memory.valid.extend(remember);
    let Memory { valid, files, .. } = memory;
    for f in files.values_mut().filter(|f| f.changed) {
        if f.documents.is_ok() {
            f.readable = f
                .keys
                .iter()
                .filter_map(|k| valid.get(k).map(|o| (k.clone(), o.clone())))
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

/// How long a changed folder must stay the same before it is loaded.
pub const SETTLE: Duration = Duration::from_millis(20);

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
    /// A check is already due because the kernel reported a change.
    poked: bool,
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
            poked: false,
        }
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
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
        // A folder is loaded only once it looks the same at two checks in a row, the second
        // [`SETTLE`] after the first: an editor that truncates then writes, or a rename racing
        // the directory listing, is never mistaken for the new configuration. The first load
        // does not wait.
        if self.last.is_some() && self.pending != Some(print) {
            self.pending = Some(print);
            ctx.run_later(SETTLE.min(self.interval), |act, ctx| act.check(ctx));
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
        self.check(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.check(ctx));
        #[cfg(target_os = "linux")]
        if let Err(e) = notify::watch(&self.dir, ctx.address().downgrade()) {
            tracing::warn!(dir = %self.dir.display(), error = %e, interval = ?self.interval, "cannot watch the folder for changes; they are seen at the next check");
        }
    }
}

/// The folder changed (the kernel said so): check it now rather than at the next interval.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Changed;

impl Handler<Changed> for ManifestWatcher {
    type Result = ();

    fn handle(&mut self, _: Changed, ctx: &mut Context<Self>) {
        // One check for a burst of events; it settles like any other check.
        if self.poked {
            return;
        }
        self.poked = true;
        ctx.run_later(Duration::ZERO, |act, ctx| {
            act.poked = false;
            act.check(ctx);
        });
    }
}

/// inotify on the folder: a file written, renamed, removed or re-linked (a ConfigMap's
/// `..data` swap) pokes the watcher at once. The interval check stays, for changes inotify
/// does not see (a file behind a symlink edited in place, a folder replaced as a whole).
#[cfg(target_os = "linux")]
mod notify {
    use std::path::Path;

    use actix::WeakAddr;
    use inotify::{Inotify, WatchMask};

    use super::{Changed, ManifestWatcher};

    pub(super) fn watch(dir: &Path, watcher: WeakAddr<ManifestWatcher>) -> std::io::Result<()> {
        let mut inotify = Inotify::init()?;
        inotify.watches().add(
            dir,
            WatchMask::CREATE
                | WatchMask::DELETE
                | WatchMask::MODIFY
                | WatchMask::CLOSE_WRITE
                | WatchMask::MOVED_FROM
                | WatchMask::MOVED_TO
                | WatchMask::ATTRIB,
        )?;
        std::thread::Builder::new()
            .name("manifest-inotify".to_owned())
            .spawn(move || {
                let mut buffer = [0u8; 4096];
                loop {
                    match inotify.read_events_blocking(&mut buffer) {
                        Ok(_) => {
                            let Some(addr) = watcher.upgrade() else {
                                return;
                            };
                            // A full mailbox already holds a poke.
                            let _ = addr.try_send(Changed);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "folder watch ended; changes are seen at the next check");
                            return;
                        }
                    }
                }
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let first = load(&dir, &GatewayOptions::default(), &mut memory).expect("loads");
        assert_eq!(first.config.routes.len(), 2);
        let (a1, b1) = (converted(&memory, &a), converted(&memory, &b));
        let again = load(&dir, &GatewayOptions::default(), &mut memory).expect("loads");
        assert_eq!(again.config.routes.len(), 2);
        assert!(Arc::ptr_eq(&a1[0], &converted(&memory, &a)[0]));
        // Rewritten with a different length: b alone is read again.
        std::fs::write(&b, route("rb", "mb-renamed")).expect("write");
        let changed = load(&dir, &GatewayOptions::default(), &mut memory).expect("loads");
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
        let removed = load(&dir, &GatewayOptions::default(), &mut memory).expect("loads");
        assert_eq!(removed.config.routes.len(), 1);
        assert!(!memory.files.contains_key(&b));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_rewritten_file_with_an_invalid_object_keeps_its_last_valid_version() {
        let dir = std::env::temp_dir().join(format!("kthena-keep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let a = dir.join("a.yaml");
        std::fs::write(&a, route("ra", "ma")).expect("write");
        let mut memory = Memory::default();
        assert_eq!(
            load(&dir, &GatewayOptions::default(), &mut memory)
                .expect("loads")
                .config
                .routes
                .len(),
            1
        );
        let broken = route("ra", "ma").replace(
            "targetModels",
            "modelMatch: {uri: {regex: '('}}, targetModels",
        );
        std::fs::write(&a, broken).expect("write");
        let kept = load(&dir, &GatewayOptions::default(), &mut memory).expect("loads");
        assert_eq!(kept.config.routes.len(), 1, "{:?}", kept.problems);
        assert!(
            kept.problems
                .iter()
                .any(|p| p.contains("spec.rules[0].modelMatch.uri.regex")
                    && p.ends_with("its last valid version stays")),
            "{:?}",
            kept.problems
        );
        std::fs::remove_file(&a).expect("remove");
        let gone = load(&dir, &GatewayOptions::default(), &mut memory).expect("loads");
        assert!(gone.config.routes.is_empty());
        assert!(memory.valid.is_empty() && memory.declared.is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
