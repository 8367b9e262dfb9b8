//! `auto` certificate management of the admission webhook: a CA and a serving certificate for
//! `<service>.<namespace>.svc`, generated once and kept in a Secret so that every replica
//! serves the same one, and the CA written into the ValidatingWebhookConfiguration's
//! `caBundle`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};

/// A CA and the serving certificate it signed, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The CA certificate (the `caBundle`).
    pub ca_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving key.
    pub key_pem: String,
}

/// Why certificates could not be made or stored.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Generating a certificate failed.
    #[error("generating the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The API server refused a read or write.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The error.
        source: kube::Error,
    },
}

/// The DNS names the API server may use for `service` in `namespace`.
pub fn dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// A new CA and a serving certificate for `service` in `namespace` signed by it.
pub fn generate(service: &str, namespace: &str) -> Result<Bundle, rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "kthena-router webhook CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(dns_names(service, namespace))?;
    leaf.distinguished_name
        .push(DnType::CommonName, format!("{service}.{namespace}.svc"));
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;
    Ok(Bundle {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn from_secret(secret: &Secret) -> Option<Bundle> {
    let data = secret.data.as_ref()?;
    let text = |k: &str| {
        data.get(k)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
            .filter(|s| !s.is_empty())
    };
    Some(Bundle {
        ca_pem: text("ca.crt")?,
        cert_pem: text("tls.crt")?,
        key_pem: text("tls.key")?,
    })
}

/// The bundle stored in Secret `namespace/name`; when it is missing (or incomplete) a new one
/// is generated and stored. If another replica stores one first, theirs is used.
pub async fn ensure_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    service: &str,
) -> Result<Bundle, CertError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let api_err = |what: &str| {
        let what = format!("{what} Secret {namespace}/{name}");
        move |source| CertError::Api { what, source }
    };
    let existing = api.get_opt(name).await.map_err(api_err("reading"))?;
    if let Some(bundle) = existing.as_ref().and_then(from_secret) {
        return Ok(bundle);
    }
    let bundle = generate(service, namespace)?;
    let data: BTreeMap<String, ByteString> = [
        ("ca.crt", &bundle.ca_pem),
        ("tls.crt", &bundle.cert_pem),
        ("tls.key", &bundle.key_pem),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), ByteString(v.clone().into_bytes())))
    .collect();
    if existing.is_some() {
        let patch = serde_json::json!({"data": data});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_err("completing"))?;
        tracing::info!(secret = %format!("{namespace}/{name}"), "webhook certificate generated");
        return Ok(bundle);
    }
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(data),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            tracing::info!(secret = %format!("{namespace}/{name}"), "webhook certificate generated");
            Ok(bundle)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let stored = api.get(name).await.map_err(api_err("re-reading"))?;
            Ok(from_secret(&stored).unwrap_or(bundle))
        }
        Err(source) => Err(CertError::Api {
            what: format!("creating Secret {namespace}/{name}"),
            source,
        }),
    }
}

/// Writes `ca_pem` as the `caBundle` of every webhook of configuration `name` that calls
/// `service` in `namespace`. Returns how many were changed; none when they already carry it
/// or the configuration does not exist (`Ok(None)`).
pub async fn patch_ca_bundle(
    client: &Client,
    name: &str,
    namespace: &str,
    service: &str,
    ca_pem: &str,
) -> Result<Option<usize>, CertError> {
    let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let err = |what: &str| {
        let what = format!("{what} ValidatingWebhookConfiguration {name}");
        move |source| CertError::Api { what, source }
    };
    let Some(mut vwc) = api.get_opt(name).await.map_err(err("reading"))? else {
        return Ok(None);
    };
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let mut changed = 0;
    for w in vwc.webhooks.iter_mut().flatten() {
        let ours = w
            .client_config
            .service
            .as_ref()
            .is_some_and(|s| s.name == service && s.namespace == namespace);
        if ours && w.client_config.ca_bundle.as_ref() != Some(&bundle) {
            w.client_config.ca_bundle = Some(bundle.clone());
            changed += 1;
        }
    }
    if changed > 0 {
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": vwc.metadata.resource_version},
            "webhooks": vwc.webhooks,
        });
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(err("patching"))?;
        tracing::info!(
            configuration = name,
            webhooks = changed,
            "webhook caBundle written"
        );
    }
    Ok(Some(changed))
}
