//! Recognising API server answers inside [`kube::Error`].

/// Whether `error` is an API server answer with this HTTP `code` or this `reason`
/// (`NotFound`, `Conflict`, `AlreadyExists`): either one suffices, as a Status body may lack one.
pub(crate) fn is_api(error: &kube::Error, code: u16, reason: &str) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code || status.reason == reason)
}

/// 404: the object does not exist.
pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    is_api(error, 404, "NotFound")
}

/// 409: a conflicting write (stale `resourceVersion`, or the object already exists).
pub(crate) fn is_conflict(error: &kube::Error) -> bool {
    is_api(error, 409, "Conflict") || is_api(error, 409, "AlreadyExists")
}
