//! The Gateway API HTTPRoute as the router uses it: model, matching, filters and route table.
//!
//! In: [`HttpRoute`]s converted by `kthena_api::convert::http_route` (the only conversion), the
//! hostname of one Gateway listener, and requests seen through [`HttpRequestView`].
//! Out: an immutable [`HttpRouteTable`] per listener whose [`HttpRouteTable::select`] names the
//! route, rule, match and weighted backend for a request by the Gateway API precedence, the
//! build-time problems of a route ([`validate`]), and pure functions that compute what the
//! filters do to a request ([`rewrite_path`], [`HeaderModifier::apply`],
//! [`Redirect::location`]).
//!
//! Nothing here performs I/O or knows an HTTP library: the router adapts its request type to
//! [`HttpRequestView`] and applies the computed effects itself.

mod filters;
mod matching;
mod table;
mod validate;

use std::time::Duration;

use crate::{CreationOrder, ObjectRef, WeightedPicker};

pub use filters::{
    DEFAULT_REDIRECT_STATUS, Filter, HeaderModifier, PathModifier, Redirect, UrlRewrite,
    rewrite_path,
};
pub use matching::{
    FullRegex, HttpMatch, PathMatch, ValueMatch, hostname_matches, intersect_hostnames,
    normalize_host, query_param,
};
pub use table::{HttpRouteTable, HttpSelection};
pub use validate::{MAX_WEIGHT, validate};

/// An HTTPRoute, converted: regexes compiled, names lowercased, defaults applied, backend
/// namespaces resolved. Check it with [`validate`] before building a table.
#[derive(Debug, Clone)]
pub struct HttpRoute {
    /// The HTTPRoute object.
    pub id: ObjectRef,
    /// Age order among routes: the oldest wins ties (creation time, then namespace/name).
    pub order: CreationOrder,
    /// `spec.hostnames`, lowercase; empty means every host the listener accepts.
    pub hostnames: Vec<String>,
    /// `spec.rules`, in order.
    pub rules: Vec<HttpRule>,
}

impl HttpRoute {
    /// [`HttpRule::refuse_unpermitted`] on every rule, for this route's namespace.
    pub fn refuse_unpermitted(&mut self, grants: &crate::ReferenceGrants) {
        let namespace = self.id.namespace.clone();
        for rule in &mut self.rules {
            rule.refuse_unpermitted(&namespace, grants);
        }
    }
}

/// One rule of an HTTPRoute: alternative matches, filters, weighted backends and timeouts.
#[derive(Debug, Clone)]
pub struct HttpRule {
    name: Option<String>,
    matches: Vec<HttpMatch>,
    filters: Vec<Filter>,
    backends: Vec<BackendRef>,
    timeouts: Timeouts,
    picker: WeightedPicker,
}

impl HttpRule {
    /// A rule. Empty `matches` means one match of `PathPrefix /`, as the spec defaults it, so
    /// [`HttpRule::matches`] is never empty.
    pub fn new(
        name: Option<String>,
        matches: Vec<HttpMatch>,
        filters: Vec<Filter>,
        backends: Vec<BackendRef>,
        timeouts: Timeouts,
    ) -> Self {
        let matches = if matches.is_empty() {
            vec![HttpMatch::default()]
        } else {
            matches
        };
        let weights: Vec<u32> = backends.iter().map(|b| b.weight).collect();
        Self {
            name,
            matches,
            filters,
            backends,
            timeouts,
            picker: WeightedPicker::new(&weights),
        }
    }

    /// `name` of the rule.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The matches, OR-ed; never empty.
    pub fn matches(&self) -> &[HttpMatch] {
        &self.matches
    }

    /// The filters, in the order they run.
    pub fn filters(&self) -> &[Filter] {
        &self.filters
    }

    /// The backends, in order.
    pub fn backends(&self) -> &[BackendRef] {
        &self.backends
    }

    /// Marks every backend in another namespace that `grants` do not allow an HTTPRoute of
    /// `namespace` to reference as [`BackendTarget::NotPermitted`]; weights are unchanged, so
    /// its share of traffic gets an error.
    pub fn refuse_unpermitted(&mut self, namespace: &str, grants: &crate::ReferenceGrants) {
        for b in &mut self.backends {
            let (group, kind, object) = b.target.group_kind_object();
            let permitted = grants.permits(crate::reference_grant::Reference {
                from_group: crate::gateway::GATEWAY_GROUP,
                from_kind: "HTTPRoute",
                from_namespace: namespace,
                to_group: group,
                to_kind: kind,
                to: object,
            });
            if !permitted {
                let target = std::mem::replace(
                    &mut b.target,
                    BackendTarget::Unsupported {
                        group: String::new(),
                        kind: String::new(),
                        object: ObjectRef::new("", ""),
                    },
                );
                b.target = BackendTarget::NotPermitted(Box::new(target));
            }
        }
    }

    /// `timeouts`.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The `RequestRedirect` filter, if the rule has one: the rule answers with a redirect and
    /// has no backends.
    pub fn redirect(&self) -> Option<&Redirect> {
        self.filters.iter().find_map(|f| match f {
            Filter::RequestRedirect(r) => Some(r),
            _ => None,
        })
    }

    /// The `URLRewrite` filter, if the rule has one.
    pub fn url_rewrite(&self) -> Option<&UrlRewrite> {
        self.filters.iter().find_map(|f| match f {
            Filter::UrlRewrite(r) => Some(r),
            _ => None,
        })
    }

    /// The first filter kind this router does not implement: requests selecting the rule must
    /// get an error response rather than skip the filter.
    pub fn unsupported_filter(&self) -> Option<&str> {
        self.filters.iter().find_map(|f| match f {
            Filter::Unsupported { kind } => Some(kind.as_str()),
            _ => None,
        })
    }

    /// The next backend by weight; `None` when there are no backends or all weights are 0.
    #[inline]
    pub fn pick(&self) -> Option<&BackendRef> {
        self.picker.pick().map(|i| &self.backends[i])
    }
}

/// `rules[].timeouts`. `Some(Duration::ZERO)` means the timeout is turned off (`0s`); `None`
/// means unset, so the router's own default applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// `request`: the whole client transaction, retries included.
    pub request: Option<Duration>,
    /// `backendRequest`: one attempt to a backend.
    pub backend_request: Option<Duration>,
}

/// A weighted destination of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendRef {
    /// Where the request goes.
    pub target: BackendTarget,
    /// Relative weight, 0..=[`MAX_WEIGHT`], default 1; 0 is never picked.
    pub weight: u32,
}

/// The object a backendRef names, namespace resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendTarget {
    /// An Inference Extension InferencePool; its endpoint picker chooses the pod.
    InferencePool {
        /// Which InferencePool API the reference names.
        api: InferencePoolApi,
        /// The pool.
        pool: ObjectRef,
    },
    /// A core Service on a port.
    Service {
        /// The Service.
        service: ObjectRef,
        /// Its port.
        port: u16,
    },
    /// A group/kind this router does not serve; the route stays usable, its share of traffic
    /// gets a 500 and the status says `InvalidKind`.
    Unsupported {
        /// The backendRef `group` (`""` for the core group).
        group: String,
        /// The backendRef `kind`.
        kind: String,
        /// The named object.
        object: ObjectRef,
    },
    /// A backend in another namespace that no ReferenceGrant there allows: its share of
    /// traffic gets a 500 and the status says `RefNotPermitted`.
    NotPermitted(Box<BackendTarget>),
}

impl BackendTarget {
    /// The API group (`""` for core), kind and object the reference names.
    pub fn group_kind_object(&self) -> (&str, &str, &ObjectRef) {
        match self {
            BackendTarget::InferencePool { api, pool } => (api.group(), "InferencePool", pool),
            BackendTarget::Service { service, .. } => ("", "Service", service),
            BackendTarget::Unsupported {
                group,
                kind,
                object,
            } => (group, kind, object),
            BackendTarget::NotPermitted(inner) => inner.group_kind_object(),
        }
    }
}

/// The two API groups that serve an InferencePool kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InferencePoolApi {
    /// `inference.networking.k8s.io/v1`.
    V1,
    /// `inference.networking.x-k8s.io/v1alpha2` (legacy, read-only).
    V1Alpha2,
}

impl InferencePoolApi {
    /// The API group of this version.
    pub fn group(self) -> &'static str {
        match self {
            InferencePoolApi::V1 => "inference.networking.k8s.io",
            InferencePoolApi::V1Alpha2 => "inference.networking.x-k8s.io",
        }
    }

    /// The version for an API group, `None` for a group that has no InferencePool.
    pub fn from_group(group: &str) -> Option<Self> {
        [InferencePoolApi::V1, InferencePoolApi::V1Alpha2]
            .into_iter()
            .find(|a| a.group() == group)
    }
}

/// A read-only view of the request attributes HTTPRoute matching and filters look at.
///
/// The router implements it over its HTTP request; tests and offline tools use
/// [`HttpRequest`].
pub trait HttpRequestView {
    /// The method, e.g. `GET` (methods are case-sensitive).
    fn method(&self) -> &str;
    /// The URL path, without the query string.
    fn path(&self) -> &str;
    /// The raw query string, without `?`; `None` when the URL has none.
    fn query(&self) -> Option<&str>;
    /// The first value of header `name`. `name` is given in lowercase; implementations must
    /// compare header names case-insensitively.
    fn header(&self, name: &str) -> Option<&str>;
    /// The `Host` header (or HTTP/2 `:authority`), possibly with a port.
    fn host(&self) -> Option<&str>;
}

/// A simple owned request, for tests, benchmarks and offline tools.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
}

impl HttpRequest {
    /// A `GET` of `target` (a path with an optional `?query`) with no headers.
    pub fn get(target: &str) -> Self {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (target, None),
        };
        Self {
            method: "GET".into(),
            path: path.to_owned(),
            query,
            headers: Vec::new(),
        }
    }

    /// Sets the method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    /// Adds a header; the name is matched case-insensitively. `host` sets the host.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl HttpRequestView for HttpRequest {
    fn method(&self) -> &str {
        &self.method
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn host(&self) -> Option<&str> {
        HttpRequestView::header(self, "host")
    }
}
