//! `kthena-router validate -f PATH...`: the admission rules offline, on files and folders.
//! Cross-object rules (model names on shared listeners, parentRefs against Gateways) are
//! checked against the other objects given.

use std::path::PathBuf;

use kthena_api::manifest::{self, Object};

/// One object that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The file.
    pub file: PathBuf,
    /// `Kind namespace/name`.
    pub object: String,
    /// `field: message`, each.
    pub problems: Vec<String>,
}

/// Checks every object of `paths` (files, or folders read without subfolders); returns the
/// number of objects read and those denied. A file that cannot be read is an error.
pub fn run(
    paths: &[PathBuf],
    options: kthena_webhook::Options,
) -> Result<(usize, Vec<Denied>), manifest::ManifestError> {
    let mut objects: Vec<(PathBuf, Object)> = Vec::new();
    for p in paths {
        objects.extend(manifest::load(p)?);
    }
    let others: kthena_webhook::Objects = objects.iter().map(|(_, o)| o.clone()).collect();
    let denied = objects
        .iter()
        .filter_map(|(file, o)| {
            let errors = kthena_webhook::review(o, None, &others, options).err()?;
            Some(Denied {
                file: file.clone(),
                object: describe(o),
                problems: errors.as_slice().iter().map(ToString::to_string).collect(),
            })
        })
        .collect();
    Ok((objects.len(), denied))
}

fn describe(o: &Object) -> String {
    match (o.kind(), o.object_ref()) {
        (Some(kind), Some(id)) => format!("{kind} {id}"),
        _ => match o {
            Object::Other { kind, .. } => kind.clone(),
            _ => unreachable!("every other object has a kind"),
        },
    }
}
