//! Status conditions as pure functions of the configuration: what the router makes of each
//! object. The operator writes them to the API server; standalone mode serves them on the
//! debug port. Condition types and reasons are the constants of [`crate::conditions`].

use crate::conditions::{reasons, types};
use crate::gateway::{Gateway, ParentedHttpRoute};
use crate::http_route::BackendTarget;
use crate::{Backend, FieldErrors, ListenerRef, ObjectRef, ParentRef, Route};

/// One condition, without the timestamps and generation the writer adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Condition type, e.g. `Accepted`.
    pub kind: &'static str,
    /// True or False.
    pub status: bool,
    /// Reason, e.g. `NoMatchingParent`.
    pub reason: &'static str,
    /// Human-readable detail.
    pub message: String,
}

impl Condition {
    fn new(
        kind: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            status,
            reason,
            message: message.into(),
        }
    }
}

/// The status of a route with respect to one parent Gateway reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentStatus {
    /// The reference, resolved.
    pub parent: ParentRef,
    /// `Accepted` and `ResolvedRefs` for this parent.
    pub conditions: Vec<Condition>,
}

/// A route's status: object-level conditions and per-parent entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteStatus {
    /// `Accepted` and `ResolvedRefs`.
    pub conditions: Vec<Condition>,
    /// One entry per Gateway parentRef.
    pub parents: Vec<ParentStatus>,
}

/// The status of a ModelRoute that failed conversion: Accepted=False/Invalid listing every
/// problem with its field.
pub fn invalid(errors: &FieldErrors) -> Vec<Condition> {
    vec![Condition::new(
        types::ACCEPTED,
        false,
        reasons::INVALID,
        errors.to_string(),
    )]
}

/// The conditions of a Gateway that does not convert: Accepted=False and Programmed=False,
/// both `Invalid`, listing every problem.
pub fn invalid_gateway(errors: &FieldErrors) -> Vec<Condition> {
    vec![
        Condition::new(types::ACCEPTED, false, reasons::INVALID, errors.to_string()),
        Condition::new(
            types::PROGRAMMED,
            false,
            reasons::INVALID,
            "the Gateway is not valid",
        ),
    ]
}

/// The per-parent conditions of an HTTPRoute that does not convert (a bad regex, an unknown
/// filter value, ...): Accepted=False/`UnsupportedValue` listing every problem.
pub fn unsupported_value(errors: &FieldErrors) -> Vec<Condition> {
    vec![Condition::new(
        types::ACCEPTED,
        false,
        reasons::UNSUPPORTED_VALUE,
        errors.to_string(),
    )]
}

/// The conditions of a GatewayClass whose controllerName is ours.
pub fn gateway_class(controller_name: &str) -> Vec<Condition> {
    vec![Condition::new(
        types::ACCEPTED,
        true,
        reasons::ACCEPTED,
        format!("handled by {controller_name}"),
    )]
}

/// The conditions of InferenceModel `id` serving `model_name`: `first` is the oldest
/// InferenceModel claiming the name on the same pool (`ModelNameInUse` for the others);
/// `PoolNotFound` when the pool is not served.
pub fn inference_model(
    model_name: &str,
    first: &ObjectRef,
    id: &ObjectRef,
    pool_served: bool,
) -> Vec<Condition> {
    let c = if first != id {
        Condition::new(
            types::ACCEPTED,
            false,
            reasons::MODEL_NAME_IN_USE,
            format!("InferenceModel {first} already serves {model_name:?} on this pool"),
        )
    } else if !pool_served {
        Condition::new(
            types::ACCEPTED,
            false,
            reasons::POOL_NOT_FOUND,
            "the InferencePool is not served",
        )
    } else {
        Condition::new(types::ACCEPTED, true, reasons::ACCEPTED, "model served")
    };
    vec![c]
}

/// `FieldsHonored` of a ModelRoute or ModelServer, from [`crate::unhonored`]: False naming
/// every field that is accepted but not acted on yet.
pub fn fields_honored(unhonored: &FieldErrors) -> Condition {
    if unhonored.is_empty() {
        Condition::new(
            types::FIELDS_HONORED,
            true,
            reasons::ALL_FIELDS_HONORED,
            "every field set is honored",
        )
    } else {
        Condition::new(
            types::FIELDS_HONORED,
            false,
            reasons::FIELD_NOT_HONORED,
            unhonored.to_string(),
        )
    }
}

/// The status of a valid InferenceObjective: Accepted when its pool is served
/// (`PoolNotFound` otherwise), and whether its fields are honored.
pub fn inference_objective(pool_served: bool, unhonored: &FieldErrors) -> Vec<Condition> {
    let accepted = if pool_served {
        Condition::new(
            types::ACCEPTED,
            true,
            reasons::ACCEPTED,
            "objective accepted",
        )
    } else {
        Condition::new(
            types::ACCEPTED,
            false,
            reasons::POOL_NOT_FOUND,
            "the InferencePool is not served",
        )
    };
    vec![accepted, fields_honored(unhonored)]
}

/// The status of a valid ModelRoute.
///
/// Accepted: outside gateway mode a route with parentRefs is not served (`GatewayAPIDisabled`);
/// in gateway mode each parentRef must select a listener of one of our Gateways
/// (`NoMatchingParent` otherwise) and the route is Accepted when at least one does.
/// ResolvedRefs: every target must name an existing object (`BackendNotFound` lists those that
/// do not).
pub fn model_route(
    route: &Route,
    gateway_mode: bool,
    listeners: &[ListenerRef],
    backend_exists: impl Fn(&Backend) -> bool,
) -> RouteStatus {
    let missing: Vec<String> = route
        .rules
        .iter()
        .flat_map(|r| r.targets())
        .filter(|t| !backend_exists(&t.backend))
        .map(|t| t.backend.object().to_string())
        .collect();
    let resolved = if missing.is_empty() {
        Condition::new(
            types::RESOLVED_REFS,
            true,
            reasons::RESOLVED_REFS,
            "all targets exist",
        )
    } else {
        Condition::new(
            types::RESOLVED_REFS,
            false,
            reasons::BACKEND_NOT_FOUND,
            format!("targets not found: {}", missing.join(", ")),
        )
    };
    let mut parents = Vec::new();
    let accepted = if route.parents.is_empty() {
        Condition::new(types::ACCEPTED, true, reasons::ACCEPTED, "route accepted")
    } else if !gateway_mode {
        Condition::new(
            types::ACCEPTED,
            false,
            reasons::GATEWAY_API_DISABLED,
            "route has parentRefs but the Gateway API is not enabled",
        )
    } else {
        for p in &route.parents {
            let found = listeners.iter().any(|l| p.selects(l));
            let accepted = if found {
                Condition::new(types::ACCEPTED, true, reasons::ACCEPTED, "route accepted")
            } else {
                no_matching_parent(p)
            };
            parents.push(ParentStatus {
                parent: p.clone(),
                conditions: vec![accepted, resolved.clone()],
            });
        }
        let any = parents.iter().any(|p| p.conditions[0].status);
        if any {
            Condition::new(types::ACCEPTED, true, reasons::ACCEPTED, "route accepted")
        } else {
            Condition::new(
                types::ACCEPTED,
                false,
                reasons::NO_MATCHING_PARENT,
                "no parentRef names a listener of our Gateways",
            )
        }
    };
    RouteStatus {
        conditions: vec![accepted, resolved],
        parents,
    }
}

/// A ModelRoute claiming a model name that an older route already serves on the same
/// listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameConflict {
    /// The newer route, which loses.
    pub route: ObjectRef,
    /// The older route, preferred for the name.
    pub older: ObjectRef,
    /// The model name (modelName or LoRA adapter) both claim.
    pub name: String,
}

/// Every route that claims a model name (its `modelName` or a LoRA adapter) an older route
/// already claims where both are served ([`crate::claims::overlap`]: anywhere outside gateway
/// mode, on a common listener in gateway mode). The oldest route is preferred for the name,
/// as in Kthena; each newer one is listed once, with the first name found. Routes are compared
/// only with routes claiming one of their names, so the cost follows the number of routes.
pub fn model_name_conflicts<'r>(
    routes: impl IntoIterator<Item = &'r Route>,
    gateway_mode: bool,
    listeners: &[ListenerRef],
) -> Vec<NameConflict> {
    use crate::claims::{self, Serving};
    let serving = Serving {
        gateway_mode,
        listeners,
        anticipate: false,
    };
    let mut ordered: Vec<&Route> = routes.into_iter().collect();
    ordered.sort_by(|a, b| a.order.cmp(&b.order));
    // Each name's claimants, oldest first (by index into `ordered`).
    let mut claimants: std::collections::HashMap<&str, Vec<usize>> =
        std::collections::HashMap::new();
    for (i, r) in ordered.iter().enumerate() {
        for c in claims::claims(r) {
            let list = claimants.entry(c.name()).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let mut out = Vec::new();
    for (i, route) in ordered.iter().enumerate() {
        let mut older: Vec<usize> = claims::claims(route)
            .flat_map(|c| claimants[c.name()].iter().copied().take_while(|j| *j < i))
            .collect();
        older.sort_unstable();
        older.dedup();
        let found = older.into_iter().find_map(|j| {
            let theirs = ordered[j];
            claims::overlap(route, theirs, &serving)?;
            claims::claims(route)
                .find(|c| claims::claims_name(theirs, c.name()))
                .map(|c| (theirs.id.clone(), c.name().to_owned()))
        });
        if let Some((older, name)) = found {
            out.push(NameConflict {
                route: route.id.clone(),
                older,
                name,
            });
        }
    }
    out
}

/// Accepted=False/`Conflicted` for a route that loses `conflict`.
pub fn conflicted(conflict: &NameConflict) -> Condition {
    Condition::new(
        types::ACCEPTED,
        false,
        reasons::CONFLICTED,
        format!(
            "model name {:?} is also served by the older ModelRoute {}, which is preferred",
            conflict.name, conflict.older
        ),
    )
}

fn no_matching_parent(p: &ParentRef) -> Condition {
    let mut what = format!("Gateway {}", p.gateway);
    if let Some(s) = &p.section_name {
        what.push_str(&format!(" listener {s:?}"));
    }
    if let Some(port) = p.port {
        what.push_str(&format!(" port {port}"));
    }
    Condition::new(
        types::ACCEPTED,
        false,
        reasons::NO_MATCHING_PARENT,
        format!("{what} is not one of ours"),
    )
}

/// The status of a ModelServer (or InferencePool) with `ready` endpoints.
pub fn ready(ready: usize) -> Vec<Condition> {
    if ready > 0 {
        vec![Condition::new(
            types::READY,
            true,
            reasons::READY,
            format!("{ready} ready endpoints"),
        )]
    } else {
        vec![Condition::new(
            types::READY,
            false,
            reasons::NO_READY_ENDPOINTS,
            "no selected Pod is Running and Ready",
        )]
    }
}

/// The status of an ExternalModelProvider whose credential is in `state`: `Ready` and
/// `CredentialsResolved` (Kthena's condition types and reasons). A provider is Ready when
/// its credential can be sent (or none is needed).
pub fn external_provider(state: &crate::CredentialState) -> Vec<Condition> {
    use crate::CredentialState as S;
    let credentials = match state {
        S::NotRequired => Condition::new(
            types::CREDENTIALS_RESOLVED,
            true,
            reasons::CREDENTIAL_NOT_REQUIRED,
            "spec.auth is not set: no credential is sent",
        ),
        S::Resolved => Condition::new(
            types::CREDENTIALS_RESOLVED,
            true,
            reasons::CREDENTIAL_RESOLVED,
            "the credential Secret key was found",
        ),
        S::SecretNotFound(secret) => Condition::new(
            types::CREDENTIALS_RESOLVED,
            false,
            reasons::CREDENTIAL_NOT_FOUND,
            format!("secret {secret} not found"),
        ),
        S::KeyNotFound(secret, key) => Condition::new(
            types::CREDENTIALS_RESOLVED,
            false,
            reasons::CREDENTIAL_KEY_NOT_FOUND,
            format!("secret {secret} has no non-empty key {key:?}"),
        ),
        S::Invalid(secret, key) => Condition::new(
            types::CREDENTIALS_RESOLVED,
            false,
            reasons::CREDENTIAL_INVALID,
            format!("secret {secret} key {key:?} is not usable as a header value"),
        ),
    };
    let ready = if state.usable() {
        Condition::new(types::READY, true, reasons::READY, "provider is ready")
    } else {
        Condition::new(
            types::READY,
            false,
            credentials.reason,
            "the provider's credential cannot be resolved: requests answer 503",
        )
    };
    vec![ready, credentials]
}

/// How a backendRef resolves, as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendState {
    /// The object exists and is served.
    Resolved,
    /// A kind this router does not serve (or not with the current flags); the message says
    /// which.
    InvalidKind(String),
    /// In another namespace with no ReferenceGrant allowing it.
    NotPermitted(String),
    /// The object (or its port) does not exist.
    NotFound(String),
    /// It exists, but speaks an application protocol the router cannot (Service port
    /// `appProtocol`).
    UnsupportedProtocol(String),
}

/// The ResolvedRefs condition of a route whose backends are in `states`: `InvalidKind` first,
/// then `RefNotPermitted`, then `BackendNotFound`, then `UnsupportedProtocol` (the spec sets
/// no order; each message lists every backend of its kind).
pub fn backends_resolved(states: &[BackendState]) -> Condition {
    let list = |f: fn(&BackendState) -> Option<&String>| -> Vec<&str> {
        states.iter().filter_map(f).map(String::as_str).collect()
    };
    let invalid = list(|s| match s {
        BackendState::InvalidKind(m) => Some(m),
        _ => None,
    });
    let refused = list(|s| match s {
        BackendState::NotPermitted(m) => Some(m),
        _ => None,
    });
    let missing = list(|s| match s {
        BackendState::NotFound(m) => Some(m),
        _ => None,
    });
    let unspoken = list(|s| match s {
        BackendState::UnsupportedProtocol(m) => Some(m),
        _ => None,
    });
    if !invalid.is_empty() {
        Condition::new(
            types::RESOLVED_REFS,
            false,
            reasons::INVALID_KIND,
            format!("unsupported backends: {}", invalid.join(", ")),
        )
    } else if !refused.is_empty() {
        Condition::new(
            types::RESOLVED_REFS,
            false,
            reasons::REF_NOT_PERMITTED,
            format!("no ReferenceGrant allows: {}", refused.join(", ")),
        )
    } else if !missing.is_empty() {
        Condition::new(
            types::RESOLVED_REFS,
            false,
            reasons::BACKEND_NOT_FOUND,
            format!("backends not found: {}", missing.join(", ")),
        )
    } else if !unspoken.is_empty() {
        Condition::new(
            types::RESOLVED_REFS,
            false,
            reasons::UNSUPPORTED_PROTOCOL,
            format!(
                "application protocol not supported (HTTP/1.1 and kubernetes.io/h2c are): {}",
                unspoken.join(", ")
            ),
        )
    } else {
        Condition::new(
            types::RESOLVED_REFS,
            true,
            reasons::RESOLVED_REFS,
            "all backendRefs resolved",
        )
    }
}

/// The `parents[]` of an HTTPRoute, one per Gateway parentRef that names one of `gateways`
/// (a parent that is not ours gets no entry: another controller owns it).
///
/// Accepted: `NoMatchingParent` when no listener is selected, `NotAllowedByListeners` when
/// the selected listeners' `allowedRoutes` refuse the route (`namespaces` answers `Selector`),
/// `NoMatchingListenerHostname` when none of their hostnames meets the route's.
/// ResolvedRefs: from `backend(target)` for every backendRef, see [`backends_resolved`].
pub fn http_route_parents(
    route: &ParentedHttpRoute,
    gateways: &[Gateway],
    namespaces: &crate::gateway::Namespaces,
    backend: impl Fn(&BackendTarget) -> BackendState,
) -> Vec<ParentStatus> {
    let r = &route.route;
    let states: Vec<BackendState> = r
        .rules
        .iter()
        .flat_map(|rule| rule.backends())
        .map(|b| backend(&b.target))
        .collect();
    let resolved = backends_resolved(&states);
    let labels = namespaces.labels(&r.id.namespace);
    route
        .parents
        .iter()
        .filter(|p| gateways.iter().any(|g| g.id == p.gateway))
        .map(|p| {
            let selected: Vec<(&Gateway, &crate::gateway::Listener)> = gateways
                .iter()
                .filter(|g| g.id == p.gateway)
                .flat_map(|g| g.listeners.iter().map(move |l| (g, l)))
                .filter(|(g, l)| p.selects(&l.reference(&g.id)))
                .collect();
            let allowed: Vec<_> = selected
                .iter()
                .filter(|(g, l)| {
                    l.allows_http_routes
                        && l.allowed_namespaces.admits(
                            &g.id.namespace,
                            &r.id.namespace,
                            Some(&labels),
                        )
                })
                .collect();
            let hostname_ok = allowed.iter().any(|(_, l)| match &l.hostname {
                None => true,
                Some(lh) => {
                    r.hostnames.is_empty()
                        || r.hostnames.iter().any(|rh| {
                            crate::http_route::intersect_hostnames(lh, &rh.to_ascii_lowercase())
                                .is_some()
                        })
                }
            });
            let accepted = if selected.is_empty() {
                no_matching_parent(p)
            } else if allowed.is_empty() {
                Condition::new(
                    types::ACCEPTED,
                    false,
                    reasons::NOT_ALLOWED_BY_LISTENERS,
                    "the listeners' allowedRoutes do not admit this route",
                )
            } else if !hostname_ok {
                Condition::new(
                    types::ACCEPTED,
                    false,
                    reasons::NO_MATCHING_LISTENER_HOSTNAME,
                    "no hostname of the route matches the listeners'",
                )
            } else {
                Condition::new(types::ACCEPTED, true, reasons::ACCEPTED, "route accepted")
            };
            ParentStatus {
                parent: p.clone(),
                conditions: vec![accepted, resolved.clone()],
            }
        })
        .collect()
}

/// The status of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerStatus {
    /// The listener's name.
    pub name: String,
    /// Route kinds it really serves (group, kind).
    pub supported_kinds: Vec<(&'static str, &'static str)>,
    /// Accepted routes attached to it.
    pub attached_routes: usize,
    /// `Accepted`, `Programmed`, `ResolvedRefs`, `Conflicted`.
    pub conditions: Vec<Condition>,
}

/// The status of a Gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayStatus {
    /// `Accepted` and `Programmed`.
    pub conditions: Vec<Condition>,
    /// One entry per listener, in spec order.
    pub listeners: Vec<ListenerStatus>,
}

/// The status of Gateway `g`: `attached(listener)` counts the accepted routes on a listener,
/// `port_bound(port)` says whether the router serves the port, `certificate(listener)` tells
/// why an HTTPS listener's certificate is unusable (a reason of [`reasons`] and a message),
/// `conflicts` are those of [`crate::gateway::conflicts`].
///
/// A listener is Accepted unless its protocol is not served (`UnsupportedProtocol`: anything
/// but HTTP and HTTPS) or its port cannot be bound (`PortUnavailable`); an HTTPS listener
/// whose certificate is unusable has ResolvedRefs=False (`InvalidCertificateRef`). It is
/// Programmed when Accepted, bound, resolved and not Conflicted. The Gateway is Accepted when some listener is
/// (`ListenersNotValid` when not all are) and Programmed when every accepted listener is.
pub fn gateway(
    g: &Gateway,
    attached: impl Fn(&ListenerRef) -> usize,
    port_bound: impl Fn(u16) -> bool,
    certificate: impl Fn(&ListenerRef) -> Option<(&'static str, String)>,
    conflicts: &[crate::gateway::ListenerConflict],
) -> GatewayStatus {
    use crate::gateway::Protocol;
    let listeners: Vec<ListenerStatus> = g
        .listeners
        .iter()
        .map(|l| {
            let r = l.reference(&g.id);
            let accepted = match &l.protocol {
                Protocol::Http | Protocol::Https if !port_bound(l.port) => Condition::new(
                    types::ACCEPTED,
                    false,
                    reasons::PORT_UNAVAILABLE,
                    format!("port {} cannot be bound", l.port),
                ),
                Protocol::Http | Protocol::Https => Condition::new(
                    types::ACCEPTED,
                    true,
                    reasons::ACCEPTED,
                    "listener accepted",
                ),
                Protocol::Other(p) => Condition::new(
                    types::ACCEPTED,
                    false,
                    reasons::UNSUPPORTED_PROTOCOL,
                    format!("protocol {p:?} is not served"),
                ),
            };
            let cert_problem = if l.protocol == Protocol::Https {
                certificate(&r)
            } else {
                None
            };
            let resolved = if let Some((reason, problem)) = &cert_problem {
                Condition::new(types::RESOLVED_REFS, false, reason, problem.clone())
            } else if l.allows_http_routes
                || !matches!(l.protocol, Protocol::Http | Protocol::Https)
            {
                Condition::new(
                    types::RESOLVED_REFS,
                    true,
                    reasons::RESOLVED_REFS,
                    "references resolved",
                )
            } else {
                Condition::new(
                    types::RESOLVED_REFS,
                    false,
                    reasons::INVALID_ROUTE_KINDS,
                    "allowedRoutes.kinds names no kind this router serves",
                )
            };
            let conflict = conflicts.iter().find(|c| c.listener == r);
            let programmed = if !accepted.status {
                Condition::new(
                    types::PROGRAMMED,
                    false,
                    reasons::INVALID,
                    accepted.message.clone(),
                )
            } else if let Some((_, problem)) = cert_problem {
                Condition::new(types::PROGRAMMED, false, reasons::INVALID, problem)
            } else if let Some(c) = conflict {
                Condition::new(
                    types::PROGRAMMED,
                    false,
                    reasons::INVALID,
                    c.message.clone(),
                )
            } else {
                Condition::new(
                    types::PROGRAMMED,
                    true,
                    reasons::PROGRAMMED,
                    format!("serving port {}", l.port),
                )
            };
            let conflicted = match conflict {
                Some(c) => Condition::new(types::CONFLICTED, true, c.reason, c.message.clone()),
                None => Condition::new(
                    types::CONFLICTED,
                    false,
                    reasons::NO_CONFLICTS,
                    "no conflicts",
                ),
            };
            ListenerStatus {
                name: l.name.clone(),
                supported_kinds: if l.allows_http_routes {
                    vec![("gateway.networking.k8s.io", "HTTPRoute")]
                } else {
                    vec![]
                },
                attached_routes: attached(&r),
                conditions: vec![accepted, programmed, resolved, conflicted],
            }
        })
        .collect();
    let valid = listeners.iter().filter(|l| l.conditions[0].status).count();
    let accepted = match valid {
        0 => Condition::new(
            types::ACCEPTED,
            false,
            reasons::LISTENERS_NOT_VALID,
            "no listener is valid",
        ),
        n if n < listeners.len() => Condition::new(
            types::ACCEPTED,
            true,
            reasons::LISTENERS_NOT_VALID,
            "some listeners are not valid",
        ),
        _ => Condition::new(types::ACCEPTED, true, reasons::ACCEPTED, "gateway accepted"),
    };
    let programmed = if valid > 0 {
        Condition::new(
            types::PROGRAMMED,
            true,
            reasons::PROGRAMMED,
            "every valid listener is served",
        )
    } else {
        Condition::new(
            types::PROGRAMMED,
            false,
            reasons::INVALID,
            "no listener is served",
        )
    };
    GatewayStatus {
        conditions: vec![accepted, programmed],
        listeners,
    }
}

/// The `parents[]` of an InferencePool: one entry per Gateway whose HTTPRoutes send traffic
/// to it. Accepted says, when the pool names an endpoint picker, that the picker is not
/// called (the router picks the endpoint itself).
pub fn inference_pool_parents(
    pool: &crate::InferencePool,
    routes: &[ParentedHttpRoute],
) -> Vec<(ObjectRef, Vec<Condition>)> {
    let uses_pool = |r: &ParentedHttpRoute| {
        r.route.rules.iter().flat_map(|rule| rule.backends()).any(|b| {
            matches!(&b.target, BackendTarget::InferencePool { api, pool: p } if *api == pool.api && *p == pool.id)
        })
    };
    let mut gateways: Vec<ObjectRef> = routes
        .iter()
        .filter(|r| uses_pool(r))
        .flat_map(|r| r.parents.iter().map(|p| p.gateway.clone()))
        .collect();
    gateways.sort();
    gateways.dedup();
    let message = match &pool.endpoint_picker {
        Some(epp) => format!(
            "pool served; endpoint picker {epp:?} is not called: the router picks endpoints itself"
        ),
        None => "pool served".to_owned(),
    };
    gateways
        .into_iter()
        .map(|g| {
            let conditions = vec![
                Condition::new(types::ACCEPTED, true, reasons::ACCEPTED, message.clone()),
                Condition::new(
                    types::RESOLVED_REFS,
                    true,
                    reasons::RESOLVED_REFS,
                    "references resolved",
                ),
            ];
            (g, conditions)
        })
        .collect()
}
