//! Condition types and reasons written on our objects' `status.conditions`.
//!
//! Gateway API objects use the types and reasons of the Gateway API specification; the ones
//! below are for the Kthena kinds, chosen to read the same way.

/// Condition types.
pub mod types {
    /// ModelRoute: the spec is valid and the route is served (or would be, see the reason).
    pub const ACCEPTED: &str = "Accepted";
    /// ModelRoute: every target names an existing ModelServer / ExternalModelProvider.
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    /// ModelServer, ExternalModelProvider: usable for traffic.
    pub const READY: &str = "Ready";
    /// ExternalModelProvider: the credential Secret was found.
    pub const CREDENTIALS_RESOLVED: &str = "CredentialsResolved";
    /// Gateway, listener: the configuration is in the data plane.
    pub const PROGRAMMED: &str = "Programmed";
    /// Listener: conflicts with another listener on its port.
    pub const CONFLICTED: &str = "Conflicted";
    /// ModelRoute, ModelServer: every spec field set is acted on (see `unhonored`).
    pub const FIELDS_HONORED: &str = "FieldsHonored";
}

/// Condition reasons.
pub mod reasons {
    /// Accepted=True.
    pub const ACCEPTED: &str = "Accepted";
    /// Accepted=False: the spec breaks a rule; the message lists every field at fault.
    pub const INVALID: &str = "Invalid";
    /// Accepted=False: an older route claims the same model name on the same listeners.
    pub const CONFLICTED: &str = "Conflicted";
    /// Accepted=False: the route has `parentRefs` but the Gateway API is not enabled.
    pub const GATEWAY_API_DISABLED: &str = "GatewayAPIDisabled";
    /// Accepted=False: no referenced Gateway (listener) exists or is ours.
    pub const NO_MATCHING_PARENT: &str = "NoMatchingParent";
    /// Accepted=False: the Gateway's `allowedRoutes` does not admit the route.
    pub const NOT_ALLOWED_BY_LISTENERS: &str = "NotAllowedByListeners";
    /// Accepted=False (HTTPRoute): no hostname of the route matches the listener's.
    pub const NO_MATCHING_LISTENER_HOSTNAME: &str = "NoMatchingListenerHostname";
    /// ResolvedRefs=False (HTTPRoute): a backendRef names a kind this router does not serve.
    pub const INVALID_KIND: &str = "InvalidKind";
    /// ResolvedRefs=True.
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    /// ResolvedRefs=False: a target names an object that does not exist.
    pub const BACKEND_NOT_FOUND: &str = "BackendNotFound";
    /// Ready=True.
    pub const READY: &str = "Ready";
    /// Programmed=True.
    pub const PROGRAMMED: &str = "Programmed";
    /// Gateway Accepted=True with some listeners invalid, or False with all of them.
    pub const LISTENERS_NOT_VALID: &str = "ListenersNotValid";
    /// Listener Accepted=False: its port cannot be bound.
    pub const PORT_UNAVAILABLE: &str = "PortUnavailable";
    /// Listener Accepted=False: a protocol this router does not serve.
    pub const UNSUPPORTED_PROTOCOL: &str = "UnsupportedProtocol";
    /// Listener ResolvedRefs=False: `allowedRoutes.kinds` names no kind this router serves.
    pub const INVALID_ROUTE_KINDS: &str = "InvalidRouteKinds";
    /// Listener ResolvedRefs=False: a certificateRef names no usable `kubernetes.io/tls` Secret.
    pub const INVALID_CERTIFICATE_REF: &str = "InvalidCertificateRef";
    /// Listener ResolvedRefs=False: a certificateRef points to another namespace without a
    /// ReferenceGrant.
    pub const REF_NOT_PERMITTED: &str = "RefNotPermitted";
    /// HTTPRoute Accepted=False: a field holds a value this router does not support (or
    /// that does not convert).
    pub const UNSUPPORTED_VALUE: &str = "UnsupportedValue";
    /// InferenceModel Accepted=False: an older InferenceModel serves the name on the pool.
    pub const MODEL_NAME_IN_USE: &str = "ModelNameInUse";
    /// InferenceModel Accepted=False: the pool it names is not served.
    pub const POOL_NOT_FOUND: &str = "PoolNotFound";
    /// Listener Conflicted=True: the port serves another protocol.
    pub const PROTOCOL_CONFLICT: &str = "ProtocolConflict";
    /// Listener Conflicted=True: another listener serves the same hostname on the port.
    pub const HOSTNAME_CONFLICT: &str = "HostnameConflict";
    /// Listener Conflicted=False.
    pub const NO_CONFLICTS: &str = "NoConflicts";
    /// FieldsHonored=True.
    pub const ALL_FIELDS_HONORED: &str = "AllFieldsHonored";
    /// FieldsHonored=False: a field is accepted but not acted on yet; the message names it.
    pub const FIELD_NOT_HONORED: &str = "FieldNotHonored";
    /// Ready=False: no selected Pod is Running and Ready.
    pub const NO_READY_ENDPOINTS: &str = "NoReadyEndpoints";
    /// CredentialsResolved=True.
    pub const CREDENTIAL_RESOLVED: &str = "CredentialResolved";
    /// CredentialsResolved=False: the Secret does not exist.
    pub const CREDENTIAL_NOT_FOUND: &str = "CredentialNotFound";
    /// CredentialsResolved=False: the Secret lacks the key.
    pub const CREDENTIAL_KEY_NOT_FOUND: &str = "CredentialKeyNotFound";
    /// CredentialsResolved=True: the provider's spec asks for no credential.
    pub const CREDENTIAL_NOT_REQUIRED: &str = "CredentialNotRequired";
    /// CredentialsResolved=False: the value cannot be sent (control characters).
    pub const CREDENTIAL_INVALID: &str = "CredentialInvalid";
}
