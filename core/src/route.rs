//! The route model: a ModelRoute as the router uses it.

use std::cmp::Ordering;
use std::time::Duration;

use crate::{ObjectRef, RequestView, StringMatch, WeightedPicker};

/// A ModelRoute, converted and validated: regexes compiled, defaults applied, names resolved.
#[derive(Debug, Clone)]
pub struct Route {
    /// The ModelRoute object.
    pub id: ObjectRef,
    /// Age order among routes claiming the same model name: the oldest wins.
    pub order: CreationOrder,
    /// `spec.modelName`, `None` when empty.
    pub model_name: Option<String>,
    /// `spec.loraAdapters`.
    pub lora_adapters: Vec<String>,
    /// `spec.parentRefs`, namespaces resolved; empty means "not bound to a listed Gateway".
    pub parents: Vec<ParentRef>,
    /// `spec.rules`, in order.
    pub rules: Vec<Rule>,
    /// `spec.rateLimit`.
    pub rate_limit: Option<RateLimit>,
}

impl Route {
    /// Whether this route is served on Gateway listener `listener` (gateway mode): without
    /// parentRefs on every listener of the Gateways of its own namespace, with parentRefs on
    /// the listeners they select. The one rule routing ([`crate::RouteTable`], whose index
    /// only narrows the candidates), `attachedRoutes` and model-name conflicts follow.
    pub fn serves(&self, listener: &crate::ListenerRef) -> bool {
        if self.parents.is_empty() {
            listener.gateway.namespace == self.id.namespace
        } else {
            self.parents.iter().any(|p| p.selects(listener))
        }
    }

    /// The first rule matching `req` and the target it picks, or `None` when no rule matches
    /// or the matching rule's weights are all 0 (the caller then tries the next route).
    #[inline]
    pub fn select(&self, req: &impl RequestView) -> Option<(usize, &Rule, &Target)> {
        let (index, rule) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(req))?;
        rule.pick().map(|t| (index, rule, t))
    }
}

/// Order of routes that claim the same model name: creation time, then namespace, then name.
/// A route without a creation time (read from a file) sorts after every route that has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationOrder {
    /// `metadata.creationTimestamp` in nanoseconds since the Unix epoch.
    pub created_unix_nanos: Option<i64>,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl Ord for CreationOrder {
    fn cmp(&self, other: &Self) -> Ordering {
        let t = |o: &Self| o.created_unix_nanos.unwrap_or(i64::MAX);
        t(self)
            .cmp(&t(other))
            .then_with(|| self.namespace.cmp(&other.namespace))
            .then_with(|| self.name.cmp(&other.name))
    }
}

impl PartialOrd for CreationOrder {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A Gateway a route is bound to through `spec.parentRefs` (kind Gateway only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentRef {
    /// The Gateway; its namespace defaults to the route's.
    pub gateway: ObjectRef,
    /// Only the listener with this name, when set.
    pub section_name: Option<String>,
    /// Only listeners on this port, when set.
    pub port: Option<u16>,
}

impl ParentRef {
    /// True when this reference selects `listener`.
    pub fn selects(&self, listener: &crate::ListenerRef) -> bool {
        self.gateway == listener.gateway
            && self
                .section_name
                .as_deref()
                .is_none_or(|s| s == listener.section_name)
            && self.port.is_none_or(|p| p == listener.port)
    }
}

/// One rule of a route: an optional match and weighted targets.
#[derive(Debug, Clone)]
pub struct Rule {
    name: Option<String>,
    model_match: Option<ModelMatch>,
    targets: Vec<Target>,
    picker: WeightedPicker,
}

impl Rule {
    /// A rule; `model_match: None` matches every request.
    pub fn new(
        name: Option<String>,
        model_match: Option<ModelMatch>,
        targets: Vec<Target>,
    ) -> Self {
        let weights: Vec<u32> = targets.iter().map(|t| t.weight).collect();
        Self {
            name,
            model_match,
            targets,
            picker: WeightedPicker::new(&weights),
        }
    }

    /// `name` of the rule.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The match conditions, `None` for a catch-all rule.
    pub fn model_match(&self) -> Option<&ModelMatch> {
        self.model_match.as_ref()
    }

    /// The targets, in order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// True when every condition of the rule holds for `req`.
    #[inline]
    pub fn matches(&self, req: &impl RequestView) -> bool {
        self.model_match.as_ref().is_none_or(|m| m.matches(req))
    }

    /// The next target by weight; `None` when all weights are 0.
    #[inline]
    pub fn pick(&self) -> Option<&Target> {
        self.picker.pick().map(|i| &self.targets[i])
    }
}

/// `modelMatch`: every present condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelMatch {
    /// Header conditions, names in lowercase. A missing header is compared as the empty string,
    /// as Kthena does.
    pub headers: Vec<(String, StringMatch)>,
    /// Condition on the URL path.
    pub uri: Option<StringMatch>,
    /// The body's `model` must equal this.
    pub body_model: Option<String>,
}

impl ModelMatch {
    /// True when every condition holds for `req`.
    #[inline]
    pub fn matches(&self, req: &impl RequestView) -> bool {
        self.body_model.as_deref().is_none_or(|m| m == req.model())
            && self.uri.as_ref().is_none_or(|u| u.matches(req.path()))
            && self
                .headers
                .iter()
                .all(|(name, m)| m.matches(req.header(name).unwrap_or("")))
    }
}

/// A weighted destination of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where the request goes.
    pub backend: Backend,
    /// Relative weight, 0..=100; 0 is never picked.
    pub weight: u32,
}

/// The object a target names, in the route's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `modelServerName`.
    ModelServer(ObjectRef),
    /// `externalModelProviderName`.
    ExternalProvider(ObjectRef),
}

impl Backend {
    /// The referenced object.
    pub fn object(&self) -> &ObjectRef {
        match self {
            Backend::ModelServer(o) | Backend::ExternalProvider(o) => o,
        }
    }
}

/// `spec.rateLimit`: token budgets per time unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Input tokens allowed per unit.
    pub input_tokens_per_unit: Option<u32>,
    /// Output tokens allowed per unit.
    pub output_tokens_per_unit: Option<u32>,
    /// The time unit.
    pub unit: RateUnit,
    /// `global.redis.address` (`host:port`): the budget is shared through Redis.
    pub global_redis_address: Option<String>,
    /// kthena-rs `limitBy`: whose budget a request draws from.
    pub limit_by: LimitBy,
}

/// Whose budget a request draws from (`spec.rateLimit.limitBy`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LimitBy {
    /// One budget for the model name (Kthena's behaviour).
    #[default]
    Model,
    /// One budget per authenticated user.
    User,
    /// One budget per value of this request header (lower-cased name).
    Header(String),
}

/// Time unit of a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day.
    Day,
    /// Thirty days, as Kthena counts a month.
    Month,
}

impl RateUnit {
    /// Length of the unit.
    pub fn duration(self) -> Duration {
        let secs = match self {
            RateUnit::Second => 1,
            RateUnit::Minute => 60,
            RateUnit::Hour => 3_600,
            RateUnit::Day => 86_400,
            RateUnit::Month => 30 * 86_400,
        };
        Duration::from_secs(secs)
    }
}
