//! `ExternalModelProvider` (`networking.serving.volcano.sh/v1alpha1`): a third-party model API
//! (OpenAI- or Anthropic-compatible) a ModelRoute can target, field for field as in Kthena.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A model API outside the cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "networking.serving.volcano.sh",
    version = "v1alpha1",
    kind = "ExternalModelProvider",
    doc = "ExternalModelProvider is a third-party model API that ModelRoutes can target.",
    namespaced,
    status = "ExternalModelProviderStatus",
    shortname = "emp",
    category = "kthena",
    cel,
    derive = "PartialEq",
    printcolumn(json_path = ".spec.providerType", name = "Provider", type_ = "string"),
    printcolumn(json_path = ".spec.baseURL", name = "URL", type_ = "string"),
    printcolumn(
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        name = "Ready",
        type_ = "string"
    ),
    printcolumn(
        json_path = ".metadata.creationTimestamp",
        name = "Age",
        type_ = "date"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ExternalModelProviderSpec {
    /// API flavour (default `OpenAI`).
    #[serde(default)]
    pub provider_type: ProviderType,
    /// Model name sent upstream instead of the client's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub model: Option<String>,
    /// `https://` base URL of the API.
    #[serde(rename = "baseURL")]
    #[schemars(length(min = 1), regex(pattern = r"^https://.+"))]
    pub base_url: String,
    /// Skip TLS verification of the provider.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<ProviderAuth>,
    /// Static, non-secret headers added to each request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// API flavour of a provider.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProviderType {
    /// OpenAI-compatible (`/v1/chat/completions`, `/v1/completions`, `/v1/responses`).
    #[default]
    OpenAI,
    /// Anthropic (`/v1/messages`).
    Anthropic,
}

/// How the router authenticates to the provider.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProviderAuth {
    /// `Bearer` (OpenAI default) or `APIKey` (Anthropic default, `x-api-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<AuthScheme>,
    /// The Secret key holding the credential.
    #[x_kube(
        validation = kube::core::Rule::new("!has(self.optional) || self.optional == false")
            .message("secretRef.optional must not be true")
    )]
    pub secret_ref: SecretKeyRef,
}

/// Credential scheme.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `x-api-key: <key>`.
    #[serde(rename = "APIKey")]
    ApiKey,
}

/// A key of a Secret in the provider's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key in the Secret's data.
    pub key: String,
    /// Must be unset or false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// Provider status.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExternalModelProviderStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` and `CredentialsResolved`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}
