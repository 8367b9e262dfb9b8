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
    /// The CA's key, kept so that the serving certificate can be renewed under the same CA
    /// (the `caBundle` then stays valid). Absent in Secrets written by other tools.
    pub ca_key_pem: Option<String>,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving key.
    pub key_pem: String,
}

/// Validity of a generated CA.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// Validity of a generated serving certificate.
pub const CERT_VALIDITY_DAYS: i64 = 365;
/// A serving certificate this close to its end (or a CA that would end before a new serving
/// certificate) is renewed.
pub const RENEW_BEFORE_DAYS: i64 = 30;

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

/// Makes `params` valid from the day before `now` (a clock a little behind still accepts a
/// new certificate) until `days` after it (UTC calendar days, as rcgen takes them).
fn valid_for(params: &mut rcgen::CertificateParams, now: jiff::Timestamp, days: i64) {
    let day = |days: i64| {
        let date = (now + jiff::SignedDuration::from_hours(24 * days))
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        rcgen::date_time_ymd(
            i32::from(date.year()),
            date.month().unsigned_abs(),
            date.day().unsigned_abs(),
        )
    };
    params.not_before = day(-1);
    params.not_after = day(days);
}

/// A new CA and a serving certificate for `service` in `namespace` signed by it, valid from
/// the day before `now`.
pub fn generate(
    service: &str,
    namespace: &str,
    now: jiff::Timestamp,
) -> Result<Bundle, rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name
        .push(DnType::CommonName, "kthena-router webhook CA");
    valid_for(&mut ca, now, CA_VALIDITY_DAYS);
    let ca_cert = ca.self_signed(&ca_key)?;
    let (cert_pem, key_pem) = issue(service, namespace, now, &ca_cert, &ca_key)?;
    Ok(Bundle {
        ca_pem: ca_cert.pem(),
        ca_key_pem: Some(ca_key.serialize_pem()),
        cert_pem,
        key_pem,
    })
}

/// A serving certificate and key for `service` in `namespace`, signed by `ca`.
fn issue(
    service: &str,
    namespace: &str,
    now: jiff::Timestamp,
    ca: &rcgen::Certificate,
    ca_key: &rcgen::KeyPair,
) -> Result<(String, String), rcgen::Error> {
    use rcgen::{CertificateParams, DnType, KeyPair};
    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(dns_names(service, namespace))?;
    leaf.distinguished_name
        .push(DnType::CommonName, format!("{service}.{namespace}.svc"));
    valid_for(&mut leaf, now, CERT_VALIDITY_DAYS);
    let cert = leaf.signed_by(&key, ca, ca_key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// What `bundle` needs at `now` to keep serving `service` in `namespace`: `None` when it is
/// good; a new serving certificate under the same CA when the certificate ends within
/// [`RENEW_BEFORE_DAYS`], does not parse, or is not for the Service's names; a new CA as well
/// when the CA key is unknown or the CA ends before a new certificate would.
pub fn renewal(
    bundle: &Bundle,
    service: &str,
    namespace: &str,
    now: jiff::Timestamp,
) -> Result<Option<Bundle>, rcgen::Error> {
    use rcgen::{CertificateParams, KeyPair, SanType};
    let ends_within = |params: &CertificateParams, days: i64| {
        params.not_after.unix_timestamp()
            < (now + jiff::SignedDuration::from_hours(24 * days)).as_second()
    };
    let names = dns_names(service, namespace);
    let leaf_good = CertificateParams::from_ca_cert_pem(&bundle.cert_pem).is_ok_and(|leaf| {
        !ends_within(&leaf, RENEW_BEFORE_DAYS)
            && names.iter().all(|n| {
                leaf.subject_alt_names
                    .iter()
                    .any(|san| matches!(san, SanType::DnsName(d) if d.as_str() == n))
            })
    });
    if leaf_good {
        return Ok(None);
    }
    let ca = CertificateParams::from_ca_cert_pem(&bundle.ca_pem)
        .ok()
        .filter(|ca| !ends_within(ca, CERT_VALIDITY_DAYS + RENEW_BEFORE_DAYS));
    let ca_key = bundle
        .ca_key_pem
        .as_deref()
        .and_then(|k| KeyPair::from_pem(k).ok());
    let (Some(ca), Some(ca_key)) = (ca, ca_key) else {
        return generate(service, namespace, now).map(Some);
    };
    // The CA re-signed with its own key and subject: certificates it signs verify against
    // the stored CA certificate, which stays the caBundle.
    let signer = ca.self_signed(&ca_key)?;
    let (cert_pem, key_pem) = issue(service, namespace, now, &signer, &ca_key)?;
    Ok(Some(Bundle {
        cert_pem,
        key_pem,
        ..bundle.clone()
    }))
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
        ca_key_pem: text("ca.key"),
        cert_pem: text("tls.crt")?,
        key_pem: text("tls.key")?,
    })
}

fn secret_data(bundle: &Bundle) -> BTreeMap<String, ByteString> {
    [
        ("ca.crt", Some(&bundle.ca_pem)),
        ("ca.key", bundle.ca_key_pem.as_ref()),
        ("tls.crt", Some(&bundle.cert_pem)),
        ("tls.key", Some(&bundle.key_pem)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_owned(), ByteString(v?.clone().into_bytes()))))
    .collect()
}

/// The bundle stored in Secret `namespace/name`, made good for `service` at `now`: generated
/// and stored when the Secret is missing or incomplete, renewed (see [`renewal`]) and stored
/// when it is ending. Writes carry the `resourceVersion` read; when another replica writes
/// first, theirs is used.
pub async fn ensure_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    service: &str,
    now: jiff::Timestamp,
) -> Result<Bundle, CertError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let id = format!("{namespace}/{name}");
    let api_err = |what: &str| {
        let what = format!("{what} Secret {id}");
        move |source| CertError::Api { what, source }
    };
    let existing = api.get_opt(name).await.map_err(api_err("reading"))?;
    let stored = existing.as_ref().and_then(from_secret);
    let bundle = match &stored {
        Some(b) => match renewal(b, service, namespace, now)? {
            None => return Ok(b.clone()),
            Some(renewed) => renewed,
        },
        None => generate(service, namespace, now)?,
    };
    let written = match &existing {
        Some(secret) => {
            let patch = serde_json::json!({
                "metadata": {"resourceVersion": secret.metadata.resource_version},
                "data": secret_data(&bundle),
            });
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(drop)
        }
        None => {
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    namespace: Some(namespace.to_owned()),
                    ..ObjectMeta::default()
                },
                type_: Some("kubernetes.io/tls".to_owned()),
                data: Some(secret_data(&bundle)),
                ..Secret::default()
            };
            api.create(&PostParams::default(), &secret).await.map(drop)
        }
    };
    match written {
        Ok(()) => {
            let what = match &stored {
                Some(s) if s.ca_pem == bundle.ca_pem => "renewed under the same CA",
                Some(_) => "renewed with a new CA",
                None => "generated",
            };
            tracing::info!(secret = %id, "webhook certificate {what}");
            Ok(bundle)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let theirs = api.get(name).await.map_err(api_err("re-reading"))?;
            Ok(from_secret(&theirs).unwrap_or(bundle))
        }
        Err(source) => Err(CertError::Api {
            what: format!("writing Secret {id}"),
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
