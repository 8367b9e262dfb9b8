//! The awc clients used toward engines, one pair per worker (`awc::Client` is `!Send`), and
//! how the router speaks to a Pod: HTTP/1.1, HTTP/2 with prior knowledge (h2c), or TLS.

pub mod egress;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use actix_service::{Service, fn_service};
use actix_tls::connect::{ConnectError, ConnectInfo, Connector as TcpConnector, Resolver};
use awc::http::Uri;
use kthena_core::Protocol;

/// How long an idle upstream connection is kept for reuse.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// The clients of one worker: `plain` dials TCP (`http://` as HTTP/1.1; `https://` as h2c,
/// awc's `dangerous-h2c`: a connector without TLS speaks HTTP/2 with prior knowledge there);
/// `tls` dials TLS with the Pod TLS policy (`--pod-tls-*`).
pub struct Clients {
    plain: awc::Client,
    tls: awc::Client,
    /// Toward ExternalModelProviders: verified and unverified TLS, made on first use.
    providers: std::cell::OnceCell<(awc::Client, awc::Client)>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").finish_non_exhaustive()
    }
}

impl Clients {
    /// The clients of one worker; `tls` is the Pod TLS policy ([`tls::client_config`]).
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            plain: client(None),
            tls: client(Some(tls)),
            providers: std::cell::OnceCell::new(),
        }
    }

    /// The client toward ExternalModelProviders ([`egress`]): certificates verified against
    /// the platform's roots unless `insecure_skip_verify`.
    pub fn provider(&self, insecure_skip_verify: bool) -> &awc::Client {
        let (verified, unverified) = self.providers.get_or_init(|| {
            let e = egress::egress();
            (
                egress::client(e.verified.clone(), e.proxy.clone()),
                egress::client(e.unverified.clone(), e.proxy.clone()),
            )
        });
        if insecure_skip_verify {
            unverified
        } else {
            verified
        }
    }

    /// The client for Pods spoken to with `protocol`, and the URL scheme it is asked with.
    pub fn for_protocol(&self, protocol: Protocol) -> (&awc::Client, &'static str) {
        match protocol {
            Protocol::Http => (&self.plain, "http"),
            // No TLS connector: awc's `dangerous-h2c` sends `https://` as cleartext HTTP/2.
            Protocol::H2c => (&self.plain, "https"),
            Protocol::Https => (&self.tls, "https"),
        }
    }
}

/// A client for engine traffic: no client-wide timeout (each attempt has its ModelServer's),
/// no redirects followed, no connection limit, and TCP_NODELAY on every upstream socket so
/// small writes (SSE requests, headers then body) are not held back by Nagle's algorithm.
fn client(tls: Option<Arc<rustls::ClientConfig>>) -> awc::Client {
    let tcp = TcpConnector::new(Resolver::default()).service();
    let nodelay = fn_service(move |req: ConnectInfo<Uri>| {
        let connect = tcp.call(req);
        async move {
            let conn = connect.await?;
            conn.io_ref().set_nodelay(true).map_err(ConnectError::Io)?;
            Ok::<_, ConnectError>(conn)
        }
    });
    let mut connector = awc::Connector::new()
        .connector(nodelay)
        .limit(0)
        .conn_keep_alive(KEEP_ALIVE)
        .conn_lifetime(Duration::from_secs(300))
        .timeout(Duration::from_secs(5))
        .handshake_timeout(Duration::from_secs(5));
    if let Some(config) = tls {
        connector = connector.rustls_0_23(config);
    }
    awc::Client::builder()
        .connector(connector)
        .disable_timeout()
        .disable_redirects()
        .finish()
}
