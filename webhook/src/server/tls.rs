//! The webhook's TLS settings: one certificate, TLS 1.2 and 1.3 only.

use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::version::{TLS12, TLS13};

/// The only protocol versions offered: TLS 1.3 and 1.2 (never 1.1 or older).
pub const PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&TLS13, &TLS12];

/// A certificate or key the server cannot use.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The certificate PEM does not parse.
    #[error("invalid certificate PEM: {0}")]
    CertificatePem(#[source] pem::Error),
    /// The certificate PEM holds no `CERTIFICATE` block.
    #[error("certificate PEM holds no certificate")]
    NoCertificate,
    /// The key PEM does not parse or holds no private key.
    #[error("invalid private key PEM: {0}")]
    KeyPem(#[source] pem::Error),
    /// rustls refused the settings, the certificate or the key.
    #[error("unusable TLS settings: {0}")]
    Tls(#[from] rustls::Error),
}

/// A server configuration serving `cert_pem` (the chain, leaf first) with `key_pem`, over
/// [`PROTOCOL_VERSIONS`] with the ring crypto provider (no process-wide provider needed).
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<rustls::ServerConfig, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(Error::CertificatePem)?;
    if certs.is_empty() {
        return Err(Error::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(Error::KeyPem)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(PROTOCOL_VERSIONS)?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(config)
}
