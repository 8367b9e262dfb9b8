//! `ModelRoute` (`networking.serving.volcano.sh/v1alpha1`): which model server serves which
//! model name, field for field as in Kthena, plus a status Kthena leaves empty.

use std::collections::BTreeMap;

use gateway_api::apis::standard::httproutes::HttpRouteParentRefs;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Gateway API `ParentReference` (group, kind, namespace, name, sectionName, port).
pub type ParentReference = HttpRouteParentRefs;

/// Routes requests whose body `model` is `modelName` (or one of `loraAdapters`) to model
/// servers, by ordered rules.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "networking.serving.volcano.sh",
    version = "v1alpha1",
    kind = "ModelRoute",
    doc = "ModelRoute routes OpenAI-compatible requests by the body's model name to ModelServers.",
    namespaced,
    status = "ModelRouteStatus",
    shortname = "mr",
    category = "kthena",
    cel,
    derive = "PartialEq",
    printcolumn(json_path = ".spec.modelName", name = "Model", type_ = "string"),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status",
        name = "Accepted",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[x_kube(
    cel,
    validation = kube::core::Rule::new(
        "(has(self.modelName) && size(self.modelName) > 0) || (has(self.loraAdapters) && size(self.loraAdapters) > 0)"
    ).message("ModelName and LoraAdapters cannot both be empty")
)]
#[serde(rename_all = "camelCase")]
pub struct ModelRouteSpec {
    /// The model name clients send in the request body's `model`. Immutable.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[x_kube(validation = kube::core::Rule::new("self == oldSelf").message("modelName is immutable"))]
    pub model_name: String,
    /// LoRA adapter names this route also serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub lora_adapters: Vec<String>,
    /// Gateways (and listeners) this route is bound to. Empty: every Gateway of the route's
    /// namespace in gateway mode, no Gateway otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    /// Ordered rules; the first matching one decides.
    #[schemars(length(max = 16))]
    pub rules: Vec<RouteRule>,
    /// Token budgets for this model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
}

/// One rule: a match and weighted targets.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    /// Name of the rule, for logs and status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Conditions, all of which must hold; absent: the rule matches every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_match: Option<ModelMatch>,
    /// Where matching requests go, by weight.
    #[schemars(length(min = 1, max = 16))]
    pub target_models: Vec<TargetModel>,
}

/// Conditions on a request, ANDed.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelMatch {
    /// Header name (case-insensitive) to value match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, StringMatch>,
    /// Match on the URL path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<StringMatch>,
    /// Match on the request body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyMatch>,
}

/// Conditions on the JSON body.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BodyMatch {
    /// The body's `model` equals this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// One of `exact`, `prefix` or `regex`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(
    validation = kube::core::Rule::new(
        "(has(self.exact) ? 1 : 0) + (has(self.prefix) ? 1 : 0) + (has(self.regex) ? 1 : 0) <= 1"
    ).message("at most one of exact, prefix or regex may be set")
)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    /// The value equals this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// The value starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// This regular expression (RE2 syntax) matches somewhere in the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// A weighted target: a ModelServer or an ExternalModelProvider in the route's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = kube::core::Rule::new(
        "(has(self.modelServerName) && size(self.modelServerName) > 0) != (has(self.externalModelProviderName) && size(self.externalModelProviderName) > 0)"
    ).message("exactly one of modelServerName or externalModelProviderName must be set")
)]
#[serde(rename_all = "camelCase")]
pub struct TargetModel {
    /// A ModelServer in the route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_server_name: Option<String>,
    /// An ExternalModelProvider in the route's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_model_provider_name: Option<String>,
    /// Relative weight, 0 to 100; 0 receives no traffic.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 0, max = 100))]
    pub weight: u32,
}

fn default_weight() -> u32 {
    100
}

/// Token budgets per time unit, keyed by the route's model name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Input tokens allowed per unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub input_tokens_per_unit: Option<u32>,
    /// Output tokens allowed per unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub output_tokens_per_unit: Option<u32>,
    /// The time unit.
    #[serde(default)]
    pub unit: RateLimitUnit,
    /// Share the budget between router replicas through Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalRateLimit>,
    /// kthena-rs: whose budget a request draws from. Absent: one budget for the model name
    /// (Kthena's behaviour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_by: Option<LimitBy>,
}

/// kthena-rs: one budget per user or per value of a request header, each as large as the
/// route's limits.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = kube::core::Rule::new(
        "self.type == 'Header' ? (has(self.header) && size(self.header) > 0) : !has(self.header)"
    ).message("header is set exactly when type is Header")
)]
#[serde(rename_all = "camelCase")]
pub struct LimitBy {
    /// `Model` (one budget for the model name), `User` (one per authenticated user: the
    /// JWT's `sub`) or `Header` (one per value of `header`).
    #[serde(rename = "type")]
    pub kind: LimitByType,
    /// The request header whose value names the budget (type `Header`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

/// What a budget is kept per.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitByType {
    /// One budget for the model name.
    Model,
    /// One budget per authenticated user.
    User,
    /// One budget per value of a request header.
    Header,
}

/// Time unit of a rate limit.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitUnit {
    /// Per second (default).
    #[default]
    Second,
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
    /// Per day.
    Day,
    /// Per 30 days.
    Month,
}

/// Where a shared rate limit lives.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GlobalRateLimit {
    /// The Redis server holding the budgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisConfig>,
}

/// A Redis server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RedisConfig {
    /// `host:port`.
    pub address: String,
}

/// What the router made of the route. Kthena never writes status; kthena-rs does.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelRouteStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` and `ResolvedRefs` (see [`crate::conditions`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Per-Gateway attachment, as Gateway API routes report it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<RouteParentStatus>,
}

/// The route's status with respect to one parent Gateway.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    /// The parent, as in `spec.parentRefs`.
    pub parent_ref: ParentReference,
    /// The controller that wrote this entry.
    pub controller_name: String,
    /// `Accepted` and `ResolvedRefs` for this parent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
