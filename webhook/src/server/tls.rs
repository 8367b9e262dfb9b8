//! The webhook's TLS settings: one serving certificate, replaceable while the server runs
//! (rotation), TLS 1.2 and 1.3 only.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
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
    /// rustls refused the settings, the certificate or the key (e.g. a key that does not
    /// belong to the certificate).
    #[error("unusable TLS settings: {0}")]
    Tls(#[from] rustls::Error),
}

/// The certificate the server presents. [`ServingCert::replace`] swaps it in place: every
/// handshake after the call presents the new one, connections already open keep theirs, and
/// nothing restarts.
#[derive(Debug)]
pub struct ServingCert {
    current: ArcSwap<CertifiedKey>,
}

impl ServingCert {
    /// The certificate `cert_pem` (the chain, leaf first) with its key `key_pem`.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            current: ArcSwap::from_pointee(certified_key(cert_pem, key_pem)?),
        })
    }

    /// Serves `cert_pem` and `key_pem` from the next handshake on. On error the certificate
    /// in use stays. Returns false (and changes nothing) when they are the ones in use.
    pub fn replace(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<bool, Error> {
        let next = certified_key(cert_pem, key_pem)?;
        if next.cert == self.current.load().cert {
            return Ok(false);
        }
        self.current.store(Arc::new(next));
        Ok(true)
    }

    /// The leaf certificate in use (DER).
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.current.load().cert[0].clone()
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses the chain and key, and checks that the key is the leaf's.
fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(Error::CertificatePem)?;
    if certs.is_empty() {
        return Err(Error::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(Error::KeyPem)?;
    Ok(CertifiedKey::from_der(certs, key, &provider())?)
}

/// A server configuration presenting `cert` over [`PROTOCOL_VERSIONS`] with the ring crypto
/// provider (no process-wide provider needed).
pub fn tls_config(cert: Arc<ServingCert>) -> Result<rustls::ServerConfig, Error> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    Ok(config)
}
