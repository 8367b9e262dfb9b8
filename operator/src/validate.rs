//! `kthena-router validate -f PATH...`: the admission rules offline, on files and folders.
//! Cross-object rules (model names on shared listeners, parentRefs against Gateways) are
//! checked against the other objects given.

use std::path::PathBuf;

use kthena_api::convert;
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
    let (kind, id) = match o {
        Object::ModelRoute(x) => ("ModelRoute", convert::object_ref(x.as_ref())),
        Object::ModelServer(x) => ("ModelServer", convert::object_ref(x.as_ref())),
        Object::ExternalModelProvider(x) => {
            ("ExternalModelProvider", convert::object_ref(x.as_ref()))
        }
        Object::GatewayClass(x) => ("GatewayClass", convert::object_ref(x.as_ref())),
        Object::Gateway(x) => ("Gateway", convert::object_ref(x.as_ref())),
        Object::HttpRoute(x) => ("HTTPRoute", convert::object_ref(x.as_ref())),
        Object::ReferenceGrant(x) => ("ReferenceGrant", convert::object_ref(x.as_ref())),
        Object::InferencePool(x) => ("InferencePool", convert::object_ref(x.as_ref())),
        Object::InferencePoolV1alpha2(x) => ("InferencePool", convert::object_ref(x.as_ref())),
        Object::InferenceModel(x) => ("InferenceModel", convert::object_ref(x.as_ref())),
        Object::InferenceObjective(x) => ("InferenceObjective", convert::object_ref(x.as_ref())),
        Object::Pod(x) => ("Pod", convert::object_ref(x.as_ref())),
        Object::Secret(x) => ("Secret", convert::object_ref(x.as_ref())),
        Object::Service(x) => ("Service", convert::object_ref(x.as_ref())),
        Object::Namespace(x) => ("Namespace", convert::object_ref(x.as_ref())),
        Object::Other { kind, .. } => return kind.clone(),
    };
    format!("{kind} {id}")
}
