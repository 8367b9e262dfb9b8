//! The routing rules of kthena-rs as pure code.
//!
//! In: [`Route`]s and [`ModelServer`]s, already converted from Kubernetes objects by
//! `kthena_api::convert` (the only conversion), and requests seen through [`RequestView`].
//! Out: an immutable [`RouteTable`] whose [`RouteTable::select`] answers "which ModelRoute,
//! which rule, which target" for a request, in time that does not depend on the number of routes.
//!
//! Nothing here knows about Kubernetes clients, actors, async runtimes or HTTP libraries: the
//! router, the webhook and the operator all call the same functions, so they cannot disagree.

pub mod auth;
pub mod claims;
pub mod conditions;
pub mod fair_queue;
pub mod field_error;
pub mod gateway;
pub mod http_route;
pub mod inference_model;
pub mod inference_pool;
pub mod listener;
pub mod model_server;
pub mod object_ref;
pub mod outlier;
pub mod pod;
pub mod provider;
pub mod rate_limit;
pub mod reference_grant;
pub mod request;
pub mod retry_budget;
pub mod route;
pub mod route_refs;
pub mod scheduler;
pub mod service;
pub mod status;
pub mod string_match;
pub mod table;
pub mod unhonored;
pub mod validate;
pub mod weighted;

pub use field_error::{FieldError, FieldErrors};
pub use gateway::{Gateway, PortListeners};
pub use http_route::{
    BackendRef, BackendTarget, Filter, HeaderModifier, HttpMatch, HttpRequest, HttpRequestView,
    HttpRoute, HttpRouteTable, HttpRule, HttpSelection, InferencePoolApi, PathMatch, PathModifier,
    Redirect, Timeouts, UrlRewrite, ValueMatch,
};
pub use inference_model::{InferenceModel, InferenceObjective};
pub use inference_pool::InferencePool;
pub use listener::ListenerRef;
pub use model_server::{
    Engine, KvConnector, ModelServer, PdGroup, Protocol, RetryPolicy, SessionSource, SessionSticky,
};
pub use object_ref::ObjectRef;
pub use pod::{Pod, TlsSecret};
pub use provider::{CredentialState, ExternalProvider};
pub use reference_grant::{ReferenceGrant, ReferenceGrants};
pub use request::{Request, RequestView};
pub use route::{
    Backend, CreationOrder, LimitBy, ModelMatch, ParentRef, RateLimit, RateUnit, Route, Rule,
    Target,
};
pub use route_refs::RouteRefs;
pub use service::Service;
pub use string_match::StringMatch;
pub use table::{BuildOptions, RouteTable, SelectError, Selection, SkipReason, Skipped};
pub use weighted::WeightedPicker;
