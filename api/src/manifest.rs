//! Kubernetes manifests read from text, files and folders: the objects of standalone mode,
//! offline validation and the example tests.

use std::fmt;
use std::path::{Path, PathBuf};

use gateway_api::apis::standard::{
    gatewayclasses::GatewayClass, gateways::Gateway, httproutes::HttpRoute,
    referencegrants::ReferenceGrant,
};
use serde::Deserialize;

use crate::externalmodelprovider::ExternalModelProvider;
use crate::inference::{v1, v1alpha2};
use crate::modelroute::ModelRoute;
use crate::modelserver::ModelServer;

/// One object of a kind kthena-rs understands, or the identity of one it does not.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// `networking.serving.volcano.sh/v1alpha1` ModelRoute.
    ModelRoute(Box<ModelRoute>),
    /// `networking.serving.volcano.sh/v1alpha1` ModelServer.
    ModelServer(Box<ModelServer>),
    /// `networking.serving.volcano.sh/v1alpha1` ExternalModelProvider.
    ExternalModelProvider(Box<ExternalModelProvider>),
    /// `gateway.networking.k8s.io` GatewayClass.
    GatewayClass(Box<GatewayClass>),
    /// `gateway.networking.k8s.io` Gateway.
    Gateway(Box<Gateway>),
    /// `gateway.networking.k8s.io` HTTPRoute.
    HttpRoute(Box<HttpRoute>),
    /// `gateway.networking.k8s.io` ReferenceGrant.
    ReferenceGrant(Box<ReferenceGrant>),
    /// `inference.networking.k8s.io/v1` InferencePool.
    InferencePool(Box<v1::InferencePool>),
    /// `inference.networking.x-k8s.io/v1alpha2` InferencePool.
    InferencePoolV1alpha2(Box<v1alpha2::InferencePool>),
    /// `inference.networking.x-k8s.io/v1alpha2` InferenceModel.
    InferenceModel(Box<v1alpha2::InferenceModel>),
    /// `inference.networking.x-k8s.io/v1alpha2` InferenceObjective.
    InferenceObjective(Box<v1alpha2::InferenceObjective>),
    /// Core `v1` Pod (standalone mode: a Pod's `status.podIP` and Ready condition make it an
    /// endpoint).
    Pod(Box<k8s_openapi::api::core::v1::Pod>),
    /// Core `v1` Secret (standalone mode: `kubernetes.io/tls` Secrets of HTTPS listeners).
    Secret(Box<k8s_openapi::api::core::v1::Secret>),
    /// Core `v1` Service (HTTPRoute backends: its selector and ports).
    Service(Box<k8s_openapi::api::core::v1::Service>),
    /// Core `v1` Namespace (its labels answer `allowedRoutes` selectors).
    Namespace(Box<k8s_openapi::api::core::v1::Namespace>),
    /// Any other kind (Deployments, ConfigMaps, ...): left to the caller.
    Other {
        /// `apiVersion`.
        api_version: String,
        /// `kind`.
        kind: String,
    },
}

/// A document that could not be read, located by origin and document index.
#[derive(Debug, thiserror::Error)]
pub struct ManifestError {
    /// File path (or other origin) of the text.
    pub origin: String,
    /// 0-based index of the YAML document in the text.
    pub document: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (document {}): {}",
            self.origin,
            self.document + 1,
            self.message
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeHeader {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Which object a document declares, read from its header alone (so an object whose spec
/// does not parse is still known by name): `apiVersion`, `kind`, `metadata.namespace` and
/// `metadata.name` as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace`, as written (absent stays absent).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: Option<String>,
}

#[derive(Deserialize, Default)]
struct KeyMeta {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct KeyHeader {
    #[serde(default)]
    metadata: Option<KeyMeta>,
}

/// One document of a manifest text: the object it declares (when its header says) and the
/// object read, or why it could not be.
#[derive(Debug)]
pub struct Document {
    /// 0-based index of the YAML document in the text.
    pub index: usize,
    /// The declared object, when `apiVersion` and `kind` are present.
    pub key: Option<ObjectKey>,
    /// The object, or what is wrong with it.
    pub object: Result<Object, ManifestError>,
}

/// Parses every YAML (or JSON) document of `text` on its own, empty documents skipped: a
/// document that does not read as its kind is returned as an error beside the others. Only
/// text that is not YAML at all (a syntax error) fails the whole call, since the documents
/// after it cannot be told apart.
pub fn parse_documents(text: &str, origin: &str) -> Result<Vec<Document>, ManifestError> {
    // The YAML parser's cost grows with the square of the nesting before its own recursion
    // limit answers (20,000 levels: 1.8 s): deep flow nesting is refused before parsing.
    if let Err(line) = flow_depth_within(text, MAX_FLOW_DEPTH) {
        return Err(ManifestError {
            origin: origin.to_owned(),
            document: 0,
            message: format!(
                "collections nested deeper than {MAX_FLOW_DEPTH} levels at line {line}: not read"
            ),
        });
    }
    // Aliases can make a small text a huge value (a billion laughs, or thousands of aliases
    // of one big anchor): without an alias there is nothing to expand; with one, the
    // documents are walked once with a budget before any value is built.
    if memchr::memchr(b'*', text.as_bytes()).is_some() {
        let budget = expansion_budget(text.len());
        for (index, de) in serde_norway::Deserializer::from_str(text).enumerate() {
            let mut left = budget;
            if let Err(e) = serde::de::DeserializeSeed::deserialize(Budget(&mut left), de) {
                let over = e.to_string().contains(OVER_BUDGET);
                return Err(ManifestError {
                    origin: origin.to_owned(),
                    document: index,
                    message: if over {
                        format!(
                            "aliases expand the document past {budget} (twice its text's length \
                             plus {EXPANSION_SLACK}, counting one per value and one per byte of \
                             text): not read"
                        )
                    } else {
                        e.to_string()
                    },
                });
            }
        }
    }
    let mut documents = Vec::new();
    for (index, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let err = |message: String| ManifestError {
            origin: origin.to_owned(),
            document: index,
            message,
        };
        let value = serde_norway::Value::deserialize(de).map_err(|e| err(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let header = match TypeHeader::deserialize(&value) {
            Ok(h) => h,
            Err(e) => {
                documents.push(Document {
                    index,
                    key: None,
                    object: Err(err(e.to_string())),
                });
                continue;
            }
        };
        if header.api_version.is_empty() || header.kind.is_empty() {
            documents.push(Document {
                index,
                key: None,
                object: Err(err("apiVersion and kind are required".to_owned())),
            });
            continue;
        }
        let meta = KeyHeader::deserialize(&value)
            .ok()
            .and_then(|h| h.metadata)
            .unwrap_or_default();
        let key = ObjectKey {
            api_version: header.api_version.clone(),
            kind: header.kind.clone(),
            namespace: meta.namespace,
            name: meta.name,
        };
        let object = typed(&header, value).map_err(|e| {
            err(format!(
                "invalid {} {}: {e}",
                header.api_version, header.kind
            ))
        });
        documents.push(Document {
            index,
            key: Some(key),
            object,
        });
    }
    Ok(documents)
}

/// Added to twice a text's length to give the most its aliases may expand it to.
pub const EXPANSION_SLACK: usize = 10_000;

/// The most a text of `len` bytes may expand to: one per value plus one per byte of text.
/// Without aliases a document stays under twice its length.
pub fn expansion_budget(len: usize) -> usize {
    len.saturating_mul(2).saturating_add(EXPANSION_SLACK)
}

const OVER_BUDGET: &str = "expansion budget exhausted";

/// Walks a document as it expands, aliases replayed, spending one per value and one per byte
/// of scalar text; fails as soon as the budget is spent, before anything is built.
struct Budget<'a>(&'a mut usize);

impl Budget<'_> {
    fn spend<E: serde::de::Error>(&mut self, n: usize) -> Result<(), E> {
        match self.0.checked_sub(n.saturating_add(1)) {
            Some(left) => {
                *self.0 = left;
                Ok(())
            }
            None => Err(E::custom(OVER_BUDGET)),
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Budget<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Budget<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: serde::de::Error>(mut self, _: bool) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_i64<E: serde::de::Error>(mut self, _: i64) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_u64<E: serde::de::Error>(mut self, _: u64) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_f64<E: serde::de::Error>(mut self, _: f64) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_str<E: serde::de::Error>(mut self, v: &str) -> Result<(), E> {
        self.spend(v.len())
    }
    fn visit_bytes<E: serde::de::Error>(mut self, v: &[u8]) -> Result<(), E> {
        self.spend(v.len())
    }
    fn visit_unit<E: serde::de::Error>(mut self) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_none<E: serde::de::Error>(mut self) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_some<D: serde::Deserializer<'de>>(mut self, d: D) -> Result<(), D::Error> {
        self.spend(0)?;
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.spend(0)?;
        while seq.next_element_seed(Budget(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.spend(0)?;
        while map.next_key_seed(Budget(&mut *self.0))?.is_some() {
            map.next_value_seed(Budget(&mut *self.0))?;
        }
        Ok(())
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(mut self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        self.spend(0)?;
        let (_, variant) = data.variant_seed(Budget(&mut *self.0))?;
        variant.newtype_variant_seed(self)
    }
}

/// The deepest flow-collection nesting (`[`, `{`) a manifest may have; Kubernetes objects
/// need a handful.
pub const MAX_FLOW_DEPTH: usize = 64;

/// `Ok` when no flow collection of `text` nests deeper than `max`; else the 1-based line where
/// it does. A `[` or `{` opens a collection where a value starts (after `:`, `-`, `,`, `?` or
/// at a line's start) or anywhere inside one; quoted strings and comments
/// are skipped. A line of a block scalar (`|`) that starts with brackets counts too: the
/// check errs on the side of refusing. One pass, no allocation.
pub fn flow_depth_within(text: &str, max: usize) -> Result<(), usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut line, mut i) = (0usize, 1usize, 0usize);
    // The last byte that was not a space or a tab (`\n` at a line's start).
    let mut prev = b'\n';
    while i < bytes.len() {
        let b = bytes[i];
        let value_start = matches!(prev, b'\n' | b':' | b'-' | b',' | b'?');
        match b {
            b'\n' => line += 1,
            b'#' if matches!(
                bytes.get(i.wrapping_sub(1)),
                None | Some(b' ' | b'\t' | b'\n')
            ) =>
            {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' if depth > 0 || value_start => {
                let quote = b;
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if quote == b'"' => i += 1,
                        b'\n' => line += 1,
                        c if c == quote => break,
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'[' | b'{' if depth > 0 || value_start => {
                depth += 1;
                if depth > max {
                    return Err(line);
                }
            }
            b']' | b'}' if depth > 0 => depth -= 1,
            _ => {}
        }
        if !matches!(b, b' ' | b'\t') {
            prev = b;
        }
        i += 1;
    }
    Ok(())
}

/// The text of each YAML document of `text`, split at its document markers (`---` at the
/// start of a line): piece `i` parses as document `i` of [`parse_documents`], so a document
/// can be read (and found unchanged) on its own. Blank and comment lines before the first
/// marker belong to the first document. `None` when a line split cannot follow the text
/// (`...` end markers, `%` directives): parse it whole.
pub fn split_documents(text: &str) -> Option<Vec<&str>> {
    fn marker(line: &str, m: &str) -> bool {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
    }
    let mut starts = vec![0];
    let mut content_before_marker = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with('%') || marker(line, "...") {
            return None;
        }
        if marker(line, "---") {
            if offset > 0 && content_before_marker {
                starts.push(offset);
            }
            // The first marker after blank lines opens the first document.
            content_before_marker = true;
        } else if !content_before_marker {
            let t = line.trim();
            content_before_marker = !(t.is_empty() || t.starts_with('#'));
        }
        offset += line.len();
    }
    starts.push(text.len());
    Some(starts.windows(2).map(|w| &text[w[0]..w[1]]).collect())
}

/// Parses every YAML (or JSON) document of `text`; empty documents are skipped. The first
/// document that does not read fails the whole text.
pub fn parse_str(text: &str, origin: &str) -> Result<Vec<Object>, ManifestError> {
    parse_documents(text, origin)?
        .into_iter()
        .map(|d| d.object)
        .collect()
}

fn typed(h: &TypeHeader, v: serde_norway::Value) -> Result<Object, serde_norway::Error> {
    match crate::ObjectKind::of(&h.api_version, &h.kind) {
        Some(kind) => Object::from_value(kind, v),
        None => Ok(Object::Other {
            api_version: h.api_version.clone(),
            kind: h.kind.clone(),
        }),
    }
}

/// Reads `path`: a file, or a folder whose `*.yaml`, `*.yml` and `*.json` files are read
/// in name order (not its subfolders, like `kubectl apply -f DIR`). Each object comes with the
/// file it was read from.
pub fn load(path: &Path) -> Result<Vec<(PathBuf, Object)>, ManifestError> {
    let mut files = Vec::new();
    collect(path, &mut files).map_err(|e| ManifestError {
        origin: path.display().to_string(),
        document: 0,
        message: e.to_string(),
    })?;
    let folder = path.is_dir().then_some(path);
    let mut out = Vec::new();
    for file in files {
        let origin = file.display().to_string();
        let text = match folder {
            Some(dir) => read_in(dir, &file),
            None => read(&file),
        }
        .map_err(|e| ManifestError {
            origin: origin.clone(),
            document: 0,
            message: e.to_string(),
        })?;
        out.extend(
            parse_str(&text, &origin)?
                .into_iter()
                .map(|o| (file.clone(), o)),
        );
    }
    Ok(out)
}

/// The largest manifest file read, in bytes: a file (or a symlink to one) that grew past it by
/// mistake is refused, not loaded into memory.
pub const MAX_FILE_BYTES: u64 = 8 << 20;

/// The most bytes of manifests a folder may hold: the files past it (in name order) are not
/// read, and keep what they last gave.
pub const MAX_FOLDER_BYTES: u64 = 256 << 20;

/// The text of manifest file `file`: a regular file (a symlink is followed) of at most
/// [`MAX_FILE_BYTES`]. A FIFO or a device is refused without being opened, so a read can
/// neither block nor run without end.
pub fn read(file: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(file)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, a socket or a device is never read)",
        ));
    }
    let too_big = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE_BYTES} bytes"),
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    let mut text = String::with_capacity(meta.len() as usize);
    std::fs::File::open(file)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok(text)
}

/// The text of manifest `file` of folder `dir`, as [`read`] reads it, but a symlink must lead
/// to a file inside `dir` (a ConfigMap volume's `..data/x.yaml` does): a link to anything
/// outside, or a loop, is refused naming the file.
pub fn read_in(dir: &Path, file: &Path) -> std::io::Result<String> {
    if std::fs::symlink_metadata(file)?.file_type().is_symlink() {
        let target = std::fs::canonicalize(file)?;
        let inside = std::fs::canonicalize(dir)?;
        if !target.starts_with(&inside) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "a symlink leading out of the folder (to {}) is never read",
                    target.display()
                ),
            ));
        }
    }
    read(file)
}

/// The manifest files under `path` (itself, when it is a file): every entry named `*.yaml`,
/// `*.yml` or `*.json` directly in it, in name order (subfolders are not read, like `kubectl
/// apply -f DIR`). FIFOs, sockets, devices and symlinks that do not lead to a regular file in
/// the folder are listed too, so that reading them ([`read_in`]) refuses them by name.
/// [`load`] reads exactly these.
pub fn files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    collect(path, &mut files)?;
    Ok(files)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !path.is_dir() {
        files.push(path.to_owned());
        return Ok(());
    }
    // The entry's type comes with the listing: no stat per file.
    let mut entries: Vec<(PathBuf, std::fs::FileType)> = std::fs::read_dir(path)?
        .map(|e| e.and_then(|e| Ok((e.path(), e.file_type()?))))
        .collect::<Result<_, _>>()?;
    // One folder: the names alone order the paths (bytes, not a component-wise comparison).
    entries.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    for (entry, kind) in entries {
        let manifest = entry
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        // A folder named like a manifest is not one; every other entry is, and reading it
        // says why when it is not a regular file.
        if manifest && !kind.is_dir() {
            files.push(entry);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn deep_flow_nesting_is_found_without_parsing() {
        use super::flow_depth_within as within;
        let deep = format!("spec: {}{}\n", "[".repeat(65), "]".repeat(65));
        assert_eq!(within(&deep, 64), Err(1));
        let ok = format!("spec: {}{}\n", "[".repeat(64), "]".repeat(64));
        assert_eq!(within(&ok, 64), Ok(()));
        // Brackets in quoted strings, comments and the middle of plain scalars do not count.
        let quoted = format!(
            "a: '{0}'\nb: \"{0}\\\" {0}\"\n# {0}\nc: x{0}\nd: [ok, {{e: \"]\"}}]\n",
            "[".repeat(100)
        );
        assert_eq!(within(&quoted, 2), Ok(()));
        let lines = format!("a: 1\nb:\n  - {}\n", "{x: ".repeat(3));
        assert_eq!(within(&lines, 2), Err(3));
        let err = super::parse_documents(&format!("kind: X\nspec: {}", "[".repeat(20_000)), "deep")
            .expect_err("refused before parsing");
        assert!(err.message.contains("nested deeper than 64"), "{err}");
    }

    /// Aliases may repeat what a document holds, within twice its text: thousands of aliases
    /// of one big anchor are refused before a value is built; a few are read as written.
    #[test]
    fn aliases_that_expand_a_document_too_far_are_refused_before_values_are_built() {
        let big = format!(
            "[{}]",
            vec![format!("\"{}\"", "x".repeat(100)); 100].join(",")
        );
        let mut text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\ndata:\n  big: &b {big}\n"
        );
        for i in 0..2000 {
            text.push_str(&format!("  r{i}: *b\n"));
        }
        let started = std::time::Instant::now();
        let err = super::parse_documents(&text, "wide.yaml").expect_err("refused");
        assert!(
            err.message.contains("aliases expand the document past"),
            "{err}"
        );
        assert!(err.to_string().starts_with("wide.yaml"), "{err}");
        // Refused after spending its budget, not after expanding 2000 × 10 KB.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));

        let fine = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: &l {a: b}}\n\
                    data: {copy: *l, again: *l, star: '*'}\n";
        let docs = super::parse_documents(fine, "fine.yaml").expect("read");
        assert!(docs[0].object.is_ok());
        // The billion laughs stop at the parser's own repetition limit, or at the budget.
        let mut laughs = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        );
        for i in 1..10 {
            laughs.push_str(&format!(
                "  a{i}: &a{i} [{}]\n",
                vec![format!("*a{}", i - 1); 9].join(", ")
            ));
        }
        super::parse_documents(&laughs, "laughs.yaml").expect_err("refused");
    }

    /// A symlink is read when it leads to a file in the folder (a ConfigMap volume's layout);
    /// one leading out of the folder is listed and refused by name (FIFOs, loops and the
    /// size limit: tests/manifest_files.rs).
    #[test]
    fn symlinks_are_read_only_inside_the_folder() {
        use std::os::unix::fs::symlink;
        let root = std::env::temp_dir().join(format!("kthena-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("manifests");
        std::fs::create_dir_all(dir.join("..2026")).expect("temp dirs");
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
        std::fs::write(dir.join("..2026/pod.yaml"), pod).expect("file");
        std::fs::write(root.join("outside.yaml"), pod).expect("file");
        symlink("..2026", dir.join("..data")).expect("link");
        symlink("..data/pod.yaml", dir.join("a-inside.yaml")).expect("link");
        symlink(root.join("outside.yaml"), dir.join("b-outside.yaml")).expect("link");
        let files = super::files(&dir).expect("listing");
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().and_then(|n| n.to_str()).unwrap_or_default())
            .collect();
        assert_eq!(names, ["a-inside.yaml", "b-outside.yaml"]);
        assert_eq!(super::read_in(&dir, &files[0]).expect("inside"), pod);
        let out = super::read_in(&dir, &files[1])
            .expect_err("outside")
            .to_string();
        assert!(out.contains("leading out of the folder"), "{out}");
        let err = super::load(&dir)
            .expect_err("validate refuses them")
            .to_string();
        assert!(err.contains("b-outside.yaml"), "{err}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_folder_is_read_without_its_subfolders() {
        let dir = std::env::temp_dir().join(format!("kthena-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("invalid")).expect("temp dirs");
        for f in ["b.yaml", "a.json", "notes.txt", "invalid/bad.yaml"] {
            std::fs::write(dir.join(f), "").expect("temp file");
        }
        let files = super::files(&dir).expect("listing");
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().and_then(|n| n.to_str()).unwrap_or_default())
            .collect();
        assert_eq!(names, ["a.json", "b.yaml"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Each piece holds exactly the document of the whole text at its index.
    #[test]
    fn split_documents_pieces_are_the_documents_of_the_whole_text() {
        let pod = |n: &str| format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {n}}}\n");
        let texts = [
            String::new(),
            "# only a comment\n".to_owned(),
            pod("a"),
            format!("---\n{}", pod("a")),
            format!("# header\n\n---\n{}---\n{}", pod("a"), pod("b")),
            format!("{}---\n---\n{}", pod("a"), pod("b")),
            format!("{}--- # comment\n{}---\n", pod("a"), pod("b")),
            format!(
                "{}data: |\n  ---\n  not a marker\n---\n{}",
                pod("a"),
                pod("b")
            ),
            "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"j\"}}"
                .to_owned(),
        ];
        let names = |docs: Vec<super::Document>| -> Vec<(usize, Option<String>)> {
            docs.into_iter()
                .map(|d| (d.index, d.key.and_then(|k| k.name)))
                .collect()
        };
        for text in &texts {
            let whole = names(super::parse_documents(text, "t").expect("parses"));
            let pieces = super::split_documents(text).expect("splits");
            let mut split = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                for (j, name) in names(super::parse_documents(piece, "t").expect("parses")) {
                    assert_eq!(j, 0, "{text:?}: piece {i} holds one document");
                    split.push((i, name));
                }
            }
            assert_eq!(split, whole, "{text:?}");
            assert_eq!(pieces.concat(), *text);
        }
        assert!(super::split_documents("%YAML 1.2\n---\na: 1\n").is_none());
        assert!(super::split_documents("a: 1\n...\nb: 2\n").is_none());
    }
}

#[cfg(test)]
mod document_tests {
    use super::{Object, parse_documents, parse_str};

    const TEXT: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: ns}\n---\n\
        apiVersion: networking.serving.volcano.sh/v1alpha1\nkind: ModelRoute\nmetadata: {name: bad}\nspec: {rules: 3}\n---\n\
        metadata: {name: headless}\n---\n\
        apiVersion: v1\nkind: Pod\nmetadata: {name: b}\n";

    #[test]
    fn a_bad_document_is_reported_beside_the_good_ones() {
        let docs = parse_documents(TEXT, "f.yaml").expect("YAML");
        assert_eq!(docs.len(), 4);
        assert!(matches!(docs[0].object, Ok(Object::Pod(_))));
        let bad = &docs[1];
        let key = bad.key.as_ref().expect("the header names the object");
        assert_eq!(
            (
                key.kind.as_str(),
                key.name.as_deref(),
                key.namespace.as_deref()
            ),
            ("ModelRoute", Some("bad"), None)
        );
        let err = bad.object.as_ref().expect_err("spec does not read");
        assert_eq!(err.document, 1);
        assert!(
            err.to_string().starts_with("f.yaml (document 2): invalid"),
            "{err}"
        );
        assert!(docs[2].key.is_none() && docs[2].object.is_err());
        assert!(matches!(docs[3].object, Ok(Object::Pod(_))));
        // The strict reader still refuses the whole text at the first bad document.
        assert_eq!(parse_str(TEXT, "f.yaml").expect_err("strict").document, 1);
    }

    #[test]
    fn text_that_is_not_yaml_fails_as_a_whole() {
        assert!(parse_documents("kind: [unclosed\n", "f.yaml").is_err());
    }
}
