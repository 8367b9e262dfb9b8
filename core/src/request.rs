//! What routing needs to know about a request.

/// A read-only view of the request attributes that ModelRoute rules look at.
///
/// The router implements it over its HTTP request and the JSON body's `model`; tests and the
/// offline tools use [`Request`].
pub trait RequestView {
    /// The `model` of the JSON body.
    fn model(&self) -> &str;
    /// The URL path, without the query string.
    fn path(&self) -> &str;
    /// The first value of header `name`. `name` is given in lowercase; implementations must
    /// compare header names case-insensitively.
    fn header(&self, name: &str) -> Option<&str>;
}

/// A simple owned request, for tests, benchmarks and offline tools.
#[derive(Debug, Clone, Default)]
pub struct Request {
    model: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// A request for `model` on path `/v1/chat/completions` with no headers.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            path: "/v1/chat/completions".into(),
            headers: Vec::new(),
        }
    }

    /// Sets the URL path.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Adds a header; the name is matched case-insensitively.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl RequestView for Request {
    fn model(&self) -> &str {
        &self.model
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
