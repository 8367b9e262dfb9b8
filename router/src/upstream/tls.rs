//! TLS toward Pods (`workloadPort.protocol: https`): the verification policy of
//! `--pod-tls-ca-file` and `--pod-tls-server-name`.
//!
//! Pods are dialled by IP and usually present a self-signed certificate, and Kthena sends
//! plain HTTP to them whatever the protocol says, so by default the certificate is not
//! verified (the handshake's signatures still are: the connection is encrypted and the peer
//! holds the key of the certificate it sent). With a CA file, the chain must lead to one of
//! its certificates and name the Pod's IP, or `--pod-tls-server-name` when given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How certificates of Pods are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodTls {
    /// CA certificates (PEM) a Pod's chain must lead to; `None`: not verified.
    pub ca_file: Option<PathBuf>,
    /// The name the certificate must carry instead of the Pod's IP (needs `ca_file`).
    pub server_name: Option<String>,
}

/// A Pod TLS policy that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PodTlsError {
    /// The CA file could not be read.
    #[error("--pod-tls-ca-file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file is not PEM certificates, or none is usable.
    #[error("--pod-tls-ca-file {path}: {reason}")]
    Ca {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `--pod-tls-server-name` is not a DNS name or IP address.
    #[error("--pod-tls-server-name {0:?} is not a DNS name or IP address")]
    ServerName(String),
    /// `--pod-tls-server-name` without `--pod-tls-ca-file` would check nothing.
    #[error("--pod-tls-server-name needs --pod-tls-ca-file: without a CA nothing is verified")]
    NameWithoutCa,
    /// rustls refused the configuration.
    #[error("pod TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client configuration of `policy` (ring provider, TLS 1.2 and 1.3, ALPN h2 then
/// HTTP/1.1).
pub fn client_config(policy: &PodTls) -> Result<Arc<rustls::ClientConfig>, PodTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (&policy.ca_file, &policy.server_name) {
        (None, None) => Arc::new(Unverified {
            algorithms: provider.signature_verification_algorithms,
        }),
        (None, Some(_)) => return Err(PodTlsError::NameWithoutCa),
        (Some(path), name) => {
            let roots = roots(path)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| PodTlsError::Ca {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            match name {
                None => webpki,
                Some(name) => Arc::new(Named {
                    name: ServerName::try_from(name.clone())
                        .map_err(|_| PodTlsError::ServerName(name.clone()))?,
                    inner: webpki,
                }),
            }
        }
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn roots(path: &Path) -> Result<Arc<RootCertStore>, PodTlsError> {
    let pem = std::fs::read(path).map_err(|source| PodTlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let ca = |reason: String| PodTlsError::Ca {
        path: path.to_owned(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| ca(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(ca("holds no certificate".to_owned()));
    }
    let mut store = RootCertStore::empty();
    for cert in certs {
        store
            .add(cert)
            .map_err(|e| ca(format!("unusable CA certificate: {e}")))?;
    }
    Ok(Arc::new(store))
}

/// No check of the chain or the name; handshake signatures are still verified.
#[derive(Debug)]
struct Unverified {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The chain checked by `inner`, against `name` instead of the address dialled.
#[derive(Debug)]
struct Named {
    name: ServerName<'static>,
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for Named {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_builds_and_a_name_needs_a_ca() {
        assert!(client_config(&PodTls::default()).is_ok());
        let named = PodTls {
            ca_file: None,
            server_name: Some("engine.local".to_owned()),
        };
        assert!(matches!(
            client_config(&named),
            Err(PodTlsError::NameWithoutCa)
        ));
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("kthena-pod-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = PodTls {
            ca_file: Some(dir.join("missing.pem")),
            server_name: None,
        };
        let err = client_config(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with("--pod-tls-ca-file ") && err.contains("missing.pem"),
            "{err}"
        );
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client_config(&PodTls {
            ca_file: Some(empty),
            server_name: None,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("holds no certificate"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
