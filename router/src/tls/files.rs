//! The certificate of `--port` from `--tls-cert` and `--tls-key`: read at start (an unusable
//! file fails the start), read again every `--tls-reload-interval` and swapped in live when
//! the files changed and hold a usable pair; a broken pair is refused and the one in use
//! stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};

/// The protocol versions `--port` offers: TLS 1.3 and 1.2 (never 1.1 or older).
pub const PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&TLS13, &TLS12];

/// `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// The certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf, PEM.
    pub key: PathBuf,
}

/// A certificate file or key file the router cannot serve; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum CertFileError {
    /// The file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate file is not PEM.
    #[error("{}: invalid certificate PEM: {source}", path.display())]
    CertificatePem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("{}: no certificate in the file", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file is not PEM or holds no private key.
    #[error("{}: invalid private key PEM: {source}", path.display())]
    KeyPem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: pem::Error,
    },
    /// rustls refused the pair: a key of an unsupported type, or one that is not the
    /// certificate's (as between the two writes of a rotation).
    #[error("{} with {}: {source}", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
}

/// What [`CertFiles::reload`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The files hold what was read last time: nothing to do.
    Unchanged,
    /// A new certificate is served from the next handshake on.
    Replaced,
}

/// The certificate `--port` presents, kept in step with its files. Handshakes read the
/// current one (an atomic load); connections already open keep theirs.
#[derive(Debug)]
pub struct CertFiles {
    paths: CertPaths,
    current: ArcSwap<CertifiedKey>,
    /// The bytes of the last read (usable or not), so unchanged files are not parsed again
    /// and a broken pair is reported once, not at every check.
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl CertFiles {
    /// Reads and checks both files.
    pub fn load(paths: CertPaths) -> Result<Self, CertFileError> {
        let (cert_pem, key_pem) = read(&paths)?;
        let key = certified_key(&paths, &cert_pem, &key_pem)?;
        Ok(Self {
            paths,
            current: ArcSwap::from_pointee(key),
            seen: Mutex::new((cert_pem, key_pem)),
        })
    }

    /// Reads the files again; when they changed since the last read and hold a usable pair,
    /// serves it from the next handshake on. On error the certificate in use stays.
    pub fn reload(&self) -> Result<Reload, CertFileError> {
        let (cert_pem, key_pem) = read(&self.paths)?;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.0 == cert_pem && seen.1 == key_pem {
            return Ok(Reload::Unchanged);
        }
        let parsed = certified_key(&self.paths, &cert_pem, &key_pem);
        *seen = (cert_pem, key_pem);
        drop(seen);
        let key = parsed?;
        if key.cert == self.current.load().cert {
            return Ok(Reload::Unchanged);
        }
        self.current.store(Arc::new(key));
        Ok(Reload::Replaced)
    }

    /// [`Self::reload`], logged: a replacement at info, a refused pair at warn.
    pub fn reload_logged(&self) {
        match self.reload() {
            Ok(Reload::Unchanged) => {}
            Ok(Reload::Replaced) => {
                tracing::info!(cert = %self.paths.cert.display(), "router TLS certificate reloaded")
            }
            Err(e) => {
                tracing::warn!(error = %e, "router TLS certificate files not reloaded: serving the previous certificate")
            }
        }
    }

    /// The leaf certificate in use (DER).
    pub fn leaf(&self) -> CertificateDer<'static> {
        self.current.load().cert[0].clone()
    }

    /// The files.
    pub fn paths(&self) -> &CertPaths {
        &self.paths
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A server configuration presenting `files` over [`PROTOCOL_VERSIONS`], with the ring
/// crypto provider (no process-wide provider needed).
pub fn server_config(files: Arc<CertFiles>) -> Result<rustls::ServerConfig, rustls::Error> {
    Ok(rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)?
        .with_no_client_auth()
        .with_cert_resolver(files))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(paths: &CertPaths) -> Result<(Vec<u8>, Vec<u8>), CertFileError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| CertFileError::Read {
            path: path.to_owned(),
            source,
        })
    };
    Ok((read(&paths.cert)?, read(&paths.key)?))
}

/// Parses the chain and the key, and checks that the key is the leaf's.
fn certified_key(
    paths: &CertPaths,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertifiedKey, CertFileError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|source| CertFileError::CertificatePem {
            path: paths.cert.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(CertFileError::NoCertificate {
            path: paths.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| CertFileError::KeyPem {
        path: paths.key.clone(),
        source,
    })?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(|source| CertFileError::Pair {
        cert: paths.cert.clone(),
        key: paths.key.clone(),
        source,
    })
}
