//! The example corpus both test files review: the valid examples, examples/invalid/ with
//! each file's `# expect:` field, and the objects the invalid ones are reviewed against.

#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};

use kthena_api::manifest::{self, Object};
use kthena_webhook::Objects;

/// The top-level examples/ folder.
pub fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Every object of the files of `dir` (not its subfolders), with its file.
pub fn load(dir: &Path) -> Vec<(PathBuf, Object)> {
    manifest::load(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The objects the invalid examples are reviewed against (examples/invalid/context/).
pub fn context() -> Objects {
    load(&examples().join("invalid/context"))
        .into_iter()
        .map(|(_, o)| o)
        .collect()
}

/// Each file of examples/invalid/ (not its subfolders): its object and its `# expect:` path.
pub fn invalid_examples() -> Vec<(PathBuf, Object, String)> {
    let dir = examples().join("invalid");
    let files = manifest::files(&dir).expect("examples/invalid/ lists");
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).expect("readable example");
            let expect = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{}: first line is not `# expect: `", file.display()))
                .trim()
                .to_owned();
            let mut objects = manifest::parse_str(&text, &file.display().to_string())
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(objects.len(), 1, "{}: one object per file", file.display());
            let object = objects.remove(0);
            (file, object, expect)
        })
        .collect()
}

/// The file name of `path`, for messages.
pub fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
}
