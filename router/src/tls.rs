//! TLS termination for HTTPS Gateway listeners: certificates from `kubernetes.io/tls`
//! Secrets, chosen per connection by SNI like listeners are chosen by Host. The certificate
//! of `--port` itself (`--tls-cert`, `--tls-key`) comes from files: [`files`].

pub mod files;

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::source::TlsSecret;

/// The certificate and key of one Secret, ready to serve.
pub fn certified_key(secret: &TlsSecret) -> Result<Arc<CertifiedKey>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&secret.cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("invalid tls.crt: {e}"))?;
    if certs.is_empty() {
        return Err("tls.crt holds no certificate".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(&secret.key_pem)
        .map_err(|e| format!("invalid tls.key: {e}"))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unusable tls.key: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing)))
}

/// Picks the certificate of the listener the client names with SNI: exact hostname, then the
/// longest wildcard, then a listener without hostname, then the first.
#[derive(Debug)]
struct SniResolver {
    keys: SharedKeys,
}

/// The certificates of one port's HTTPS listeners: (listener hostname, key).
pub type PortKeys = Vec<(Option<String>, Arc<CertifiedKey>)>;

/// [`PortKeys`] replaced in place when Secrets or Gateways change, so a running listener
/// serves new certificates without a restart.
pub type SharedKeys = Arc<arc_swap::ArcSwap<PortKeys>>;

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello
            .server_name()
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let rank = |h: &Option<String>| match h.as_deref() {
            Some(h) if h == sni => usize::MAX,
            Some(h)
                if h.starts_with("*.") && kthena_core::http_route::hostname_matches(h, &sni) =>
            {
                2 + h.len()
            }
            None => 1,
            Some(_) => 0,
        };
        let keys = self.keys.load();
        keys.iter()
            .max_by_key(|(h, _)| rank(h))
            .map(|(_, k)| k.clone())
    }
}

/// A server configuration for the HTTPS listeners of one port.
pub fn server_config(keys: SharedKeys) -> rustls::ServerConfig {
    rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { keys }))
}
