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
use std::time::{Duration, Instant};

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message};
use std::sync::Arc;

use kthena_api::manifest::{self, ObjectKey};

use super::assemble::{Change, Combined, Converted};
use super::{Config, GatewayOptions};
use crate::actors::index::{Apply, Index};

/// What a folder read remembers for the next one: each file's last read (so an unchanged file
/// is neither parsed nor converted again), the last valid version of every object, the
/// objects of every file's last readable version, and the configuration in force.
///
/// Upkeep is per changed file: a read where one file changed costs the objects of that file
/// (each object's winner among the documents declaring it is decided again, and only those
/// reach [`Combined::apply`]), not the folder.
#[derive(Debug, Default)]
pub struct Memory {
    valid: FastMap<Key, Arc<Converted>>,
    /// The files declaring each object, once per declaring document.
    declared: FastMap<Key, Vec<PathBuf>>,
    files: HashMap<PathBuf, FileRead>,
    /// Each object's version in force.
    current: FastMap<Key, Arc<Converted>>,
    combined: Option<Combined>,
}

impl Memory {
    fn declare(&mut self, file: &Path, keys: &[Key]) {
        for k in keys {
            self.declared
                .entry(k.clone())
                .or_default()
                .push(file.to_owned());
        }
    }

    /// Forgets `file`'s declaration of `keys`, once for each; an object no document declares
    /// loses its last valid version.
    fn undeclare(&mut self, file: &Path, keys: &[Key]) {
        for k in keys {
            if let Some(files) = self.declared.get_mut(k) {
                if let Some(i) = files.iter().position(|f| f == file) {
                    files.remove(i);
                }
                if files.is_empty() {
                    self.declared.remove(k);
                    self.valid.remove(k);
                }
            }
        }
    }
}

/// `key` as the object it names: an absent namespace is `default` (except for the
/// cluster-scoped kinds), and the API version is left out, so every document naming one
/// object has one key.
fn object_key(key: &ObjectKey) -> Key {
    let cluster_scoped = matches!(key.kind.as_str(), "Namespace" | "GatewayClass");
    let namespace = if cluster_scoped {
        None
    } else {
        Some(
            key.namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
        )
    };
    let group = key
        .api_version
        .rsplit_once('/')
        .map_or("", |(group, _)| group)
        .to_owned();
    Arc::new(ObjectKey {
        api_version: group,
        kind: key.kind.clone(),
        namespace,
        name: key.name.clone(),
    })
}

/// Maps keyed by our own objects (read from our files): a fast hasher, as in the Pod index.
type FastMap<K, V> = foldhash::HashMap<K, V>;
type FastSet<K> = foldhash::HashSet<K>;

/// An object's key, shared by every map and document that names it (one allocation per
/// object, however many places know it).
type Key = Arc<ObjectKey>;

/// One file as last read.
#[derive(Debug)]
struct FileRead {
    stamp: Stamp,
    hash: u64,
    /// Its documents, each converted; `Err` when the file is not YAML at all.
    documents: Result<Vec<Doc>, String>,
    /// The objects of its last readable version, standing in while it is unreadable.
    readable: Vec<(Key, Arc<Converted>)>,
    /// The objects it declares (counted in [`Memory::declared`]).
    keys: Vec<Key>,
    /// A hash of each document's text (empty when the file was parsed whole).
    pieces: Vec<u64>,
    /// Read again by the current load: its objects update the memory.
    changed: bool,
}

/// One document of a file: the object it declares (when its header reads) and the object
/// converted, or why it does not read.
#[derive(Debug, Clone)]
struct Doc {
    /// Its index in the file (from 0).
    index: usize,
    key: Option<Key>,
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

/// A folder read: the configuration to apply and every problem found in the files read
/// again (each naming its file, object and field). Problems do not stop the rest from
/// applying.
#[derive(Debug)]
pub struct Loaded {
    /// What to serve, with what changed since the last read.
    pub config: Config,
    /// What was wrong, one line each.
    pub problems: Vec<String>,
}

/// Reads `file` into `memory` unless it is unchanged since the last read: only a changed file
/// is parsed, and only its documents are converted. The objects it declared and declares
/// are added to `touched`.
fn read_file(
    dir: &Path,
    file: &Path,
    stamp: Stamp,
    gw: &GatewayOptions,
    memory: &mut Memory,
    touched: &mut FastSet<Key>,
) -> Result<(), String> {
    let name = file.display().to_string();
    if memory.files.get(file).is_some_and(|f| f.stamp == stamp) {
        return Ok(());
    }
    let text = manifest::read_in(dir, file).map_err(|e| format!("{name}: {e}"))?;
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
    let old = memory.files.remove(file);
    let (documents, pieces, reused) = parse(&text, &name, gw, old.as_ref());
    let readable = old.as_ref().map(|f| f.readable.clone()).unwrap_or_default();
    let keys: Vec<Key> = match &documents {
        Ok(docs) => docs.iter().filter_map(|d| d.key.clone()).collect(),
        Err(_) => readable.iter().map(|(k, _)| k.clone()).collect(),
    };
    // The objects of the documents read again, as they were and as they are: a document
    // whose text is unchanged keeps its conversion and is not decided again.
    let fresh = |docs: &Result<Vec<Doc>, String>, all: &[Key]| -> Vec<Key> {
        match docs {
            Ok(docs) => docs
                .iter()
                .filter(|d| !reused.contains(&d.index))
                .filter_map(|d| d.key.clone())
                .collect(),
            Err(_) => all.to_vec(),
        }
    };
    touched.extend(fresh(&documents, &keys));
    // Declared again before the old version is forgotten: an object the file still declares
    // keeps its last valid version.
    memory.declare(file, &keys);
    if let Some(old) = old {
        touched.extend(fresh(&old.documents, &old.keys));
        memory.undeclare(file, &old.keys);
    }
    memory.files.insert(
        file.to_owned(),
        FileRead {
            stamp,
            hash,
            documents,
            readable,
            pieces,
            keys,
            changed: true,
        },
    );
    Ok(())
}

/// The documents of `text`, each converted, and a hash of each document's text: split at its
/// markers, a document whose text is the same as in `old` at the same index keeps its
/// conversion (their indices are the third value); a text that cannot be split, or that
/// does not read, is parsed whole.
fn parse(
    text: &str,
    name: &str,
    gw: &GatewayOptions,
    old: Option<&FileRead>,
) -> (Result<Vec<Doc>, String>, Vec<u64>, HashSet<usize>) {
    let convert = |index: usize, doc: manifest::Document| {
        let origin = format!("{name} (document {})", index + 1);
        Doc {
            index,
            key: doc.key.as_ref().map(object_key),
            object: doc
                .object
                .map(|o| Arc::new(Converted::new(origin, o, gw)))
                .map_err(|e| e.to_string()),
        }
    };
    let whole = || {
        let docs = manifest::parse_documents(text, name)
            .map(|docs| docs.into_iter().map(|d| convert(d.index, d)).collect())
            .map_err(|e| e.to_string());
        (docs, Vec::new(), HashSet::new())
    };
    let Some(pieces) = manifest::split_documents(text) else {
        return whole();
    };
    let hash = |t: &str| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    };
    let hashes: Vec<u64> = pieces.iter().map(|p| hash(p)).collect();
    let old_docs = old.and_then(|o| o.documents.as_ref().ok().map(|d| (o, d)));
    let mut docs = Vec::new();
    let mut reused = HashSet::new();
    for (i, piece) in pieces.iter().enumerate() {
        if let Some((o, old_docs)) = old_docs
            && o.pieces.get(i) == Some(&hashes[i])
        {
            docs.extend(old_docs.iter().filter(|d| d.index == i).cloned());
            reused.insert(i);
            continue;
        }
        match manifest::parse_documents(piece, name) {
            Ok(mut read) if read.len() <= 1 => docs.extend(read.pop().map(|d| convert(i, d))),
            // Not one document, or not YAML: the whole text says where.
            _ => return whole(),
        }
    }
    (Ok(docs), hashes, reused)
}

/// Reads every manifest under `dir` into a configuration, with `memory` standing in for
/// documents and objects that are bad in this version; `memory` is updated. Files unchanged
/// since the last read are taken from `memory` as they were converted, and only the objects
/// of changed files are decided again. Fails only when the folder cannot be listed.
///
/// Each object's version, among the documents declaring it (files in name order, documents
/// in file order): the first valid one (a file that is not YAML at all declares the objects
/// of its last readable version); the others are reported as defined more than once. With no
/// valid one, the last valid version stays; with none ever, an invalid object is still
/// combined so that its status says why it is left out.
pub fn load(dir: &Path, gw: &GatewayOptions, memory: &mut Memory) -> Result<Loaded, String> {
    let scanned = scan(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(load_scanned(&scanned, gw, memory))
}

/// [`load`] of a folder as `scanned` found it: every file of a full scan (a file missing
/// from it is gone), or only the files of a partial one (a file missing from the disk is
/// gone).
fn load_scanned(scanned: &Scan, gw: &GatewayOptions, memory: &mut Memory) -> Loaded {
    let mut problems = Vec::new();
    let mut touched: FastSet<Key> = FastSet::default();
    let mut read = HashSet::new();
    let mut gone: Vec<PathBuf> = Vec::new();
    // The folder's bytes: a partial scan adds its files to the others as last read.
    let mut total: u64 = if scanned.partial {
        let named: HashSet<&Path> = scanned.files.iter().map(|(f, _)| f.as_path()).collect();
        memory
            .files
            .iter()
            .filter(|(f, _)| !named.contains(f.as_path()))
            .map(|(_, r)| r.stamp.len)
            .sum()
    } else {
        0
    };
    for (file, stamp) in &scanned.files {
        let stamp = match stamp {
            Ok(s) => Ok(*s),
            Err(e) if scanned.partial && e.kind() == std::io::ErrorKind::NotFound => {
                gone.push(file.clone());
                continue;
            }
            Err(e) => Err(format!("{}: {e}", file.display())),
        };
        total = total.saturating_add(stamp.as_ref().map_or(0, |s| s.len));
        let stamp = stamp.and_then(|s| {
            if total > manifest::MAX_FOLDER_BYTES {
                Err(format!(
                    "{}: the folder's manifests pass {} bytes with it: not read",
                    file.display(),
                    manifest::MAX_FOLDER_BYTES
                ))
            } else {
                Ok(s)
            }
        });
        // A file that cannot be read now is still there: it keeps what it last gave.
        read.insert(file.as_path());
        if let Err(e) =
            stamp.and_then(|s| read_file(&scanned.dir, file, s, gw, memory, &mut touched))
        {
            problems.push(format!(
                "{e}; the objects of its last readable version stay"
            ));
        }
    }
    if !scanned.partial {
        gone.extend(
            memory
                .files
                .keys()
                .filter(|f| !read.contains(f.as_path()))
                .cloned(),
        );
    }
    // Files that disappeared are forgotten (their objects are deleted).
    for f in gone {
        if let Some(old) = memory.files.remove(&f) {
            memory.undeclare(&f, &old.keys);
            touched.extend(old.keys);
        }
    }
    let changed_files: Vec<&Path> = read
        .into_iter()
        .filter(|f| memory.files.get(*f).is_some_and(|f| f.changed))
        .collect();
    // The problems of the files read again that belong to no object.
    for f in changed_files.iter().map(|f| &memory.files[*f]) {
        match &f.documents {
            Err(e) => problems.push(format!(
                "{e}; the objects of its last readable version stay"
            )),
            Ok(docs) => problems.extend(docs.iter().filter_map(|d| match (&d.key, &d.object) {
                (None, Err(e)) => Some(e.clone()),
                _ => None,
            })),
        }
    }
    let mut touched: Vec<Key> = touched.into_iter().collect();
    touched.sort();
    let mut changes = Vec::new();
    let mut remember = Vec::new();
    for key in &touched {
        let winner = decide(key, memory, &mut problems, &mut remember);
        let before = match &winner {
            Some(w) => memory.current.insert(key.clone(), w.clone()),
            None => memory.current.remove(key),
        };
        match (before, winner) {
            (Some(b), Some(w)) if Arc::ptr_eq(&b, &w) => {}
            (before, winner) => {
                let new_key = winner.as_ref().and_then(|w| w.key());
                if let Some(old_key) = before.and_then(|b| b.key())
                    && Some(&old_key) != new_key.as_ref()
                {
                    changes.push(Change::Delete(old_key));
                }
                if let Some(w) = winner {
                    changes.push(Change::Upsert(w));
                }
            }
        }
    }
    let combined = memory
        .combined
        .get_or_insert_with(|| Combined::new(gw.clone()));
    let (config, found) = combined.apply(changes);
    for p in &found {
        problems.push(one_line(&p.to_string()));
    }
    memory.valid.extend(remember);
    let changed_files: Vec<PathBuf> = changed_files.into_iter().map(Path::to_owned).collect();
    let Memory { valid, files, .. } = memory;
    for name in &changed_files {
        let f = files
            .get_mut(name)
            .expect("a file read again is remembered");
        f.changed = false;
        if f.documents.is_ok() {
            f.readable = f
                .keys
                .iter()
                .filter_map(|k| valid.get(k).map(|o| (k.clone(), o.clone())))
                .collect();
        }
    }
    Loaded { config, problems }
}

/// The version of `key` in force (see [`load`]), reporting its problems; a fresh valid
/// version from a file read again is added to `remember` (its last valid version).
fn decide(
    key: &Key,
    memory: &Memory,
    problems: &mut Vec<String>,
    remember: &mut Vec<(Key, Arc<Converted>)>,
) -> Option<Arc<Converted>> {
    let mut files: Vec<&PathBuf> = memory.declared.get(key).into_iter().flatten().collect();
    files.sort();
    files.dedup();
    let mut winner: Option<Arc<Converted>> = None;
    let mut refused: Vec<&Arc<Converted>> = Vec::new();
    let mut unreadable: Vec<&String> = Vec::new();
    let mut take = |c: Arc<Converted>, fresh: bool, changed: bool, problems: &mut Vec<String>| {
        if winner.is_some() {
            problems.extend(c.duplicate().map(|p| one_line(&p.to_string())));
            return;
        }
        if fresh && changed {
            remember.push((key.clone(), c.clone()));
        }
        winner = Some(c);
    };
    for file in files {
        let Some(f) = memory.files.get(file) else {
            continue;
        };
        match &f.documents {
            Err(_) => {
                for (k, object) in f.readable.iter().filter(|(k, _)| k == key) {
                    let origin = format!(
                        "{} (last readable version, {} {})",
                        file.display(),
                        k.kind,
                        k.name.as_deref().unwrap_or_default()
                    );
                    take(Arc::new(object.with_origin(origin)), false, false, problems);
                }
            }
            Ok(docs) => {
                // The name first: it tells most documents apart in one short comparison.
                let declares = |d: &&Doc| {
                    d.key
                        .as_ref()
                        .is_some_and(|k| Arc::ptr_eq(k, key) || (k.name == key.name && k == key))
                };
                for doc in docs.iter().filter(declares) {
                    match &doc.object {
                        Ok(o) if o.is_refused() => refused.push(o),
                        Ok(o) => take(o.clone(), true, f.changed, problems),
                        Err(e) => unreadable.push(e),
                    }
                }
            }
        }
    }
    if winner.is_some() {
        // Another document declares it validly: the bad ones are second definitions.
        for r in refused {
            problems.extend(r.duplicate().map(|p| one_line(&p.to_string())));
        }
        problems.extend(unreadable.into_iter().cloned());
        return winner;
    }
    let stand_in = memory.valid.get(key).cloned();
    for e in unreadable {
        problems.push(match stand_in {
            Some(_) => format!("{e}; its last valid version stays"),
            None => e.clone(),
        });
    }
    match stand_in {
        Some(old) => {
            for r in &refused {
                let problem = r.problem().expect("a refused object has a problem");
                problems.push(format!(
                    "{}; its last valid version stays",
                    one_line(&problem.to_string())
                ));
            }
            Some(old)
        }
        // Combined, so that its status says why it is left out (the combination reports it).
        None => refused.first().map(|r| (*r).clone()),
    }
}

/// `text` on one log line (regex errors, for one, span several).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A look at a folder without reading a file: each manifest file's [`Stamp`] (or why it has
/// none), and a fingerprint of them all, so a check of an unchanged folder reads no file.
#[derive(Debug)]
struct Scan {
    /// The folder.
    dir: PathBuf,
    print: u64,
    files: Vec<(PathBuf, std::io::Result<Stamp>)>,
    /// Only some files were looked at (those the kernel reported changed).
    partial: bool,
}

/// Every manifest file of `dir`.
fn scan(dir: &Path) -> std::io::Result<Scan> {
    Ok(stamps(dir, manifest::files(dir)?, false))
}

/// The files `files` of `dir` as they are now.
fn stamps(dir: &Path, files: impl IntoIterator<Item = PathBuf>, partial: bool) -> Scan {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let files: Vec<(PathBuf, std::io::Result<Stamp>)> = files
        .into_iter()
        .map(|f| {
            let s = stamp(&f);
            (f, s)
        })
        .collect();
    for (f, s) in &files {
        f.hash(&mut h);
        match s {
            Ok(s) => s.hash(&mut h),
            Err(e) => e.kind().hash(&mut h),
        }
    }
    Scan {
        dir: dir.to_owned(),
        print: h.finish(),
        files,
        partial,
    }
}

impl Memory {
    /// True when `scanned` (a full scan) shows the folder as last read: the same files with
    /// the same stamps. A check after a partial load finds nothing to do this way.
    fn is_as(&self, scanned: &Scan) -> bool {
        scanned.files.len() == self.files.len()
            && scanned.files.iter().all(
                |(f, s)| matches!((s, self.files.get(f)), (Ok(s), Some(read)) if read.stamp == *s),
            )
    }
}

/// How long a changed folder must stay the same before it is loaded.
pub const SETTLE: Duration = Duration::from_millis(20);

/// How long a file that declared objects may stay empty before that is taken as meant: a
/// file is most often emptied to be rewritten (truncated, then written), and loading it
/// between the two would delete its objects for that while.
pub const EMPTY_GRACE: Duration = Duration::from_secs(3);

/// How long a file open for writing is waited for after its last write: a writer that
/// pauses mid-file is not read half-written.
pub const WRITE_QUIET: Duration = Duration::from_secs(3);

/// How long a file open for writing is waited for at most, however often it is written.
pub const WRITE_MAX: Duration = Duration::from_secs(30);

/// A full scan of the folder waits at least this many times its own duration after the last:
/// its cost stays around 1 % of a core, whatever the folder's size.
pub const SCAN_SHARE: u32 = 100;

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
    /// Files the kernel reported changed since the last load.
    dirty: std::collections::BTreeSet<PathBuf>,
    /// The kernel reported a change it could not name (the folder itself, a symlink swap,
    /// lost events): the next check scans the whole folder.
    full: bool,
    /// Files that declared objects and were seen empty, and since when.
    emptied: HashMap<PathBuf, Instant>,
    /// Files open for writing (written to, not closed yet): since when, and the last write.
    writing: HashMap<PathBuf, (Instant, Instant)>,
    /// When the whole folder is next looked at by the periodic check.
    next_full: Instant,
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
            dirty: Default::default(),
            full: false,
            emptied: HashMap::new(),
            writing: HashMap::new(),
            next_full: Instant::now(),
        }
    }

    /// How long the folder must still wait for a file that is being written: until it is
    /// closed, [`WRITE_QUIET`] after its last write, or [`WRITE_MAX`] after its first.
    fn writing_wait(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        self.writing.retain(|file, (first, last)| {
            let left = WRITE_QUIET
                .saturating_sub(now.duration_since(*last))
                .min(WRITE_MAX.saturating_sub(now.duration_since(*first)));
            if left.is_zero() {
                tracing::warn!(file = %file.display(), "manifest file still open for writing; reading it as it is");
                return false;
            }
            wait = Some(wait.map_or(left, |w| w.min(left)));
            true
        });
        if wait.is_some() {
            tracing::info!(files = ?self.writing.keys().collect::<Vec<_>>(), "manifest file being written; waiting for it to be closed");
        }
        wait
    }

    /// The periodic look: the files the kernel named are checked at every interval; the
    /// whole folder only when due, so that scanning a large folder costs at most
    /// 1/[`SCAN_SHARE`] of a core (inotify names every change of a manifest in the folder;
    /// the full scan is for what it cannot see).
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let quiet = self.dirty.is_empty() && !self.full && self.pending.is_none();
        if quiet && Instant::now() < self.next_full {
            return;
        }
        self.check(ctx);
    }

    /// How long the folder must still wait for a file emptied less than [`EMPTY_GRACE`]
    /// ago; `None` when no file is waiting.
    fn emptied_wait(&mut self, scanned: &Scan) -> Option<Duration> {
        let now = Instant::now();
        let mut wait: Option<Duration> = None;
        for (file, stamp) in &scanned.files {
            let empty = matches!(stamp, Ok(s) if s.len == 0);
            let declared = self
                .memory
                .files
                .get(file)
                .is_some_and(|r| !r.keys.is_empty());
            if !(empty && declared) {
                self.emptied.remove(file);
                continue;
            }
            let since = *self.emptied.entry(file.clone()).or_insert_with(|| {
                tracing::warn!(file = %file.display(), grace = ?EMPTY_GRACE, "manifest file emptied; its objects stay until it is written or has been empty for the grace period");
                now
            });
            let left = EMPTY_GRACE.saturating_sub(now.duration_since(since));
            if !left.is_zero() {
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
        }
        wait
    }

    /// Looks at the folder (only the files the kernel named, when it named them all) and
    /// loads it once it has settled.
    fn check(&mut self, ctx: &mut Context<Self>) {
        let started = Instant::now();
        let partial = self.last.is_some() && !self.full && !self.dirty.is_empty();
        let scanned = if partial {
            stamps(&self.dir, self.dirty.iter().cloned(), true)
        } else {
            match scan(&self.dir) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(dir = %self.dir.display(), error = %e, "reading manifests; keeping the last good configuration");
                    return;
                }
            }
        };
        let print = scanned.print;
        if !partial {
            // The next full look waits [`SCAN_SHARE`] times what this one cost.
            self.next_full = Instant::now() + self.interval.max(started.elapsed() * SCAN_SHARE);
        }
        if !partial && (self.last == Some(print) || self.memory.is_as(&scanned)) {
            // Unchanged since the last load (partial loads included).
            self.last = Some(print);
            self.pending = None;
            self.full = false;
            return;
        }
        // A file emptied that declared objects holds the whole folder back (its objects
        // stay) until it is written again or [`EMPTY_GRACE`] has passed.
        if let Some(left) = self.emptied_wait(&scanned) {
            ctx.run_later(left, |act, ctx| act.check(ctx));
            return;
        }
        // So does a file still open for writing: read half-written, it may parse and declare
        // less than it will.
        if let Some(left) = self.writing_wait() {
            ctx.run_later(left, |act, ctx| act.check(ctx));
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
        // A file changed after its stamp was taken has a new stamp at the next check, which
        // reads it again.
        let loaded = load_scanned(&scanned, &self.gateway, &mut self.memory);
        if partial {
            for (f, _) in &scanned.files {
                self.dirty.remove(f);
            }
        } else {
            self.last = Some(print);
            self.dirty.clear();
            self.full = false;
        }
        self.pending = None;
        let Loaded { config, problems } = loaded;
        for p in &problems {
            tracing::error!(problem = %p, "invalid manifest");
        }
        tracing::info!(
            dir = %self.dir.display(),
            files = scanned.files.len(),
            modelroutes = config.routes.len(),
            modelservers = config.servers.len(),
            pods = config.pods.len(),
            problems = problems.len(),
            "manifests loaded"
        );
        self.index.do_send(Apply(config));
    }
}

impl Actor for ManifestWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = tracing::info_span!("manifest_watcher", dir = %self.dir.display()).entered();
        self.check(ctx);
        ctx.run_interval(self.interval, |act, ctx| act.tick(ctx));
        #[cfg(target_os = "linux")]
        if let Err(e) = notify::watch(&self.dir, ctx.address().downgrade()) {
            tracing::warn!(dir = %self.dir.display(), error = %e, interval = ?self.interval, "cannot watch the folder for changes; they are seen at the next check");
        }
    }
}

/// Look at the whole folder now (SIGHUP): a change inotify cannot see (a file behind a
/// symlink edited in place) applies without waiting for the interval.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Rescan;

impl Handler<Rescan> for ManifestWatcher {
    type Result = ();

    fn handle(&mut self, _: Rescan, ctx: &mut Context<Self>) {
        self.full = true;
        self.check(ctx);
    }
}

/// The folder changed (the kernel said so): check it now rather than at the next interval.
/// `Some` names every file that changed, each with whether it is still open for writing;
/// `None` when the change could not be named.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Changed(Option<Vec<(PathBuf, bool)>>);

impl Handler<Changed> for ManifestWatcher {
    type Result = ();

    fn handle(&mut self, Changed(files): Changed, ctx: &mut Context<Self>) {
        match files {
            Some(files) => {
                let now = Instant::now();
                for (file, writing) in files {
                    if writing {
                        self.writing
                            .entry(file.clone())
                            .and_modify(|w| w.1 = now)
                            .or_insert((now, now));
                    } else {
                        self.writing.remove(&file);
                    }
                    self.dirty.insert(file);
                }
            }
            None => self.full = true,
        }
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
    use std::path::{Path, PathBuf};

    use actix::WeakAddr;
    use inotify::{EventMask, Inotify, WatchMask};

    use super::{Changed, ManifestWatcher};

    /// The manifest files `events` (mask and name) name, or `None` when one of them may
    /// change manifests in a way the name does not tell: the folder itself, a directory, a
    /// symlink (a ConfigMap's `..data` swap), lost events. A regular file that is not a
    /// manifest is left out: a tool that writes `x.yaml.tmp` and renames it over `x.yaml`
    /// changes `x.yaml` only, named by the rename.
    ///
    /// Each file comes with whether it is still open for writing after these events: written
    /// to and not closed since.
    pub(super) fn named<'a>(
        dir: &Path,
        events: impl Iterator<Item = (EventMask, Option<&'a std::ffi::OsStr>)>,
    ) -> Option<Vec<(PathBuf, bool)>> {
        let mut files: Vec<(PathBuf, bool)> = Vec::new();
        for (mask, name) in events {
            if mask.intersects(EventMask::Q_OVERFLOW | EventMask::ISDIR) {
                return None;
            }
            let name = Path::new(name?);
            let manifest = name
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"));
            if !manifest {
                match std::fs::symlink_metadata(dir.join(name)) {
                    Ok(m) if m.file_type().is_file() => continue,
                    // Gone: a removed or renamed-away file (a rename names its new name too).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    _ => return None,
                }
            }
            let file = dir.join(name);
            let writing = if mask.intersects(EventMask::CLOSE_WRITE | EventMask::MOVED_TO) {
                Some(false)
            } else if mask.intersects(EventMask::MODIFY) {
                // Not CREATE: a symlink, a FIFO or a hard link is created and never closed.
                Some(true)
            } else if mask.intersects(EventMask::DELETE | EventMask::MOVED_FROM) {
                Some(false)
            } else {
                None
            };
            match files.iter_mut().find(|(f, _)| *f == file) {
                Some((_, w)) => *w = writing.unwrap_or(*w),
                None => files.push((file, writing.unwrap_or(false))),
            }
        }
        Some(files)
    }

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
        let dir = dir.to_owned();
        std::thread::Builder::new()
            .name("manifest-inotify".to_owned())
            .spawn(move || {
                let mut buffer = [0u8; 4096];
                loop {
                    match inotify.read_events_blocking(&mut buffer) {
                        Ok(events) => {
                            let Some(addr) = watcher.upgrade() else {
                                return;
                            };
                            addr.do_send(Changed(named(
                                &dir,
                                events.map(|e| (e.mask, e.name)),
                            )));
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

    /// A temporary file renamed over a manifest names that manifest only; a symlink or a
    /// directory event (a ConfigMap's `..data` swap) asks for the whole folder.
    #[cfg(target_os = "linux")]
    #[test]
    fn only_manifests_and_what_may_lead_to_them_are_named() {
        use ::inotify::EventMask as M;
        use std::ffi::OsStr;
        let dir = std::env::temp_dir().join(format!("kthena-named-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let d = dir.as_path();
        std::fs::write(d.join("x.yaml"), "").expect("write");
        std::fs::write(d.join("notes.txt"), "").expect("write");
        std::os::unix::fs::symlink(d.join("x.yaml"), d.join("..data")).expect("symlink");
        let named = |events: &[(M, &str)]| {
            notify::named(d, events.iter().map(|(m, n)| (*m, Some(OsStr::new(n)))))
        };
        assert_eq!(
            named(&[
                (M::CREATE, "x.yaml.tmp"),
                (M::CLOSE_WRITE, "x.yaml.tmp"),
                (M::MOVED_FROM, "x.yaml.tmp"),
                (M::MOVED_TO, "x.yaml"),
                (M::MODIFY, "notes.txt"),
            ]),
            Some(vec![(d.join("x.yaml"), false)])
        );
        // Written to and not closed yet: still being written.
        assert_eq!(
            named(&[
                (M::MODIFY, "x.yaml"),
                (M::CLOSE_WRITE, "x.yaml"),
                (M::MODIFY, "x.yaml")
            ]),
            Some(vec![(d.join("x.yaml"), true)])
        );
        assert_eq!(
            named(&[
                (M::CREATE, "x.yaml"),
                (M::MODIFY, "x.yaml"),
                (M::CLOSE_WRITE, "x.yaml")
            ]),
            Some(vec![(d.join("x.yaml"), false)])
        );
        assert_eq!(named(&[(M::MOVED_TO, "..data")]), None, "a symlink");
        assert_eq!(named(&[(M::CREATE | M::ISDIR, "..2026")]), None);
        assert_eq!(named(&[(M::Q_OVERFLOW, "")]), None);
        std::fs::remove_dir_all(&dir).ok();
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
            .values()
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

    #[test]
    fn a_partial_load_reads_only_the_named_files_and_a_full_scan_then_finds_nothing_to_do() {
        let dir = std::env::temp_dir().join(format!("kthena-partial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (a, b) = (dir.join("a.yaml"), dir.join("b.yaml"));
        std::fs::write(&a, route("ra", "ma")).expect("write");
        std::fs::write(&b, route("rb", "mb")).expect("write");
        let gw = GatewayOptions::default();
        let mut memory = Memory::default();
        let first = load(&dir, &gw, &mut memory).expect("loads");
        assert_eq!(first.config.changes.routes.len(), 2);
        std::fs::write(&b, route("rb", "mb-renamed")).expect("write");
        let changed = load_scanned(&stamps(&dir, [b.clone()], true), &gw, &mut memory);
        assert_eq!(changed.config.changes.routes.len(), 1, "only rb changed");
        let models: Vec<_> = changed
            .config
            .routes
            .values()
            .filter_map(|r| r.model_name.clone())
            .collect();
        assert_eq!(models, ["ma", "mb-renamed"]);
        assert!(
            memory.is_as(&scan(&dir).expect("scans")),
            "nothing left to read"
        );
        // A named file that is gone takes its objects with it.
        std::fs::remove_file(&a).expect("remove");
        let gone = load_scanned(&stamps(&dir, [a.clone()], true), &gw, &mut memory);
        assert_eq!(gone.config.routes.len(), 1);
        assert!(gone.config.changes.routes[0].1.is_none(), "ra deleted");
        assert!(memory.is_as(&scan(&dir).expect("scans")));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn in_a_rewritten_file_only_the_documents_whose_text_changed_are_read_again() {
        let dir = std::env::temp_dir().join(format!("kthena-docs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("routes.yaml");
        let text = |b: &str| {
            format!(
                "{}---\n{}---\n{}",
                route("ra", "ma"),
                route("rb", b),
                route("rc", "mc")
            )
        };
        std::fs::write(&file, text("mb")).expect("write");
        let gw = GatewayOptions::default();
        let mut memory = Memory::default();
        load(&dir, &gw, &mut memory).expect("loads");
        let before = converted(&memory, &file);
        std::fs::write(&file, text("mb-renamed")).expect("write");
        let after_load = load(&dir, &gw, &mut memory).expect("loads");
        let after = converted(&memory, &file);
        assert!(Arc::ptr_eq(&before[0], &after[0]) && Arc::ptr_eq(&before[2], &after[2]));
        assert!(
            !Arc::ptr_eq(&before[1], &after[1]),
            "the changed document is read again"
        );
        let changes = &after_load.config.changes.routes;
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(
            changes[0].1.as_ref().and_then(|r| r.model_name.as_deref()),
            Some("mb-renamed")
        );
        // A document removed from the middle: the ones after it moved, and are read again.
        std::fs::write(
            &file,
            format!("{}---\n{}", route("ra", "ma"), route("rc", "mc")),
        )
        .expect("write");
        let removed = load(&dir, &gw, &mut memory).expect("loads");
        let names: Vec<_> = removed
            .config
            .routes
            .keys()
            .map(|k| k.name.clone())
            .collect();
        assert_eq!(names, ["ra", "rc"]);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_listed_file_that_cannot_be_read_keeps_its_objects() {
        let dir = std::env::temp_dir().join(format!("kthena-unreadable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let a = dir.join("a.yaml");
        std::fs::write(&a, route("ra", "ma")).expect("write");
        let gw = GatewayOptions::default();
        let mut memory = Memory::default();
        assert_eq!(
            load(&dir, &gw, &mut memory)
                .expect("loads")
                .config
                .routes
                .len(),
            1
        );
        // A symlink whose target is gone (a ConfigMap swap caught half-way) is listed but
        // cannot be read.
        std::fs::remove_file(&a).expect("remove");
        std::os::unix::fs::symlink(dir.join("..gone/a.yaml"), &a).expect("symlink");
        let kept = load(&dir, &gw, &mut memory).expect("loads");
        assert_eq!(kept.config.routes.len(), 1, "{:?}", kept.problems);
        assert!(kept.config.changes.routes.is_empty());
        assert!(
            kept.problems
                .iter()
                .any(|p| p.ends_with("the objects of its last readable version stay")),
            "{:?}",
            kept.problems
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
