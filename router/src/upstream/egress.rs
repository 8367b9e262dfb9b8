//! Connections to ExternalModelProviders (outside the cluster): TLS verified against the
//! platform's roots (`rustls-native-certs`, which also honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`), or not verified for `insecureSkipVerify`; an HTTPS proxy from the
//! environment (`HTTPS_PROXY`, `NO_PROXY`, either case) reached with HTTP `CONNECT`; idle
//! connections kept for reuse.
//!
//! Read once per process (first use): a change of the environment or of the roots takes a
//! restart, as for most programs.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_service::{Service, fn_service};
use actix_tls::connect::{
    ConnectError, ConnectInfo, Connection, Connector as TcpConnector, Resolver,
};
use awc::http::Uri;

/// How long an idle provider connection is kept for reuse.
const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// What every worker's provider clients are built from.
#[derive(Debug, Clone)]
pub struct Egress {
    /// TLS verified against the platform's roots.
    pub verified: Arc<rustls::ClientConfig>,
    /// TLS without certificate checks (`insecureSkipVerify: true`).
    pub unverified: Arc<rustls::ClientConfig>,
    /// The proxy from the environment, if any.
    pub proxy: Option<Arc<Proxy>>,
}

/// The process's [`Egress`], read on first use.
pub fn egress() -> &'static Egress {
    static EGRESS: OnceLock<Egress> = OnceLock::new();
    EGRESS.get_or_init(|| {
        let env = |name: &str| {
            std::env::var(name)
                .or_else(|_| std::env::var(name.to_ascii_lowercase()))
                .ok()
                .filter(|v| !v.is_empty())
        };
        let proxy = env("HTTPS_PROXY").and_then(|url| match Proxy::parse(&url, env("NO_PROXY")) {
            Ok(p) => {
                tracing::info!(proxy = %p.authority, no_proxy = ?p.no_proxy, "external providers are reached through the HTTPS_PROXY");
                Some(Arc::new(p))
            }
            Err(e) => {
                tracing::error!(error = %e, "HTTPS_PROXY is not usable: providers are dialled directly");
                None
            }
        });
        Egress {
            verified: platform_config(),
            unverified: super::tls::client_config(&super::tls::PodTls::default())
                .expect("the unverified configuration needs no file"),
            proxy,
        }
    })
}

/// The platform's roots, ring provider, TLS 1.2 and 1.3, HTTP/1.1.
fn platform_config() -> Arc<rustls::ClientConfig> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "reading the platform's CA certificates");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(
        added,
        ignored,
        "platform CA certificates for external providers"
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// An HTTP proxy reached with `CONNECT host:port` (the TLS session to the provider runs
/// inside the tunnel, so the proxy sees neither the request nor the credentials).
#[derive(Debug)]
pub struct Proxy {
    /// `host:port` of the proxy.
    pub authority: String,
    /// `Proxy-Authorization` value from the URL's user info (never logged).
    basic_auth: Option<String>,
    /// `NO_PROXY` entries, lower-cased.
    pub no_proxy: Vec<String>,
}

impl Proxy {
    /// Reads `http://[user:pass@]host[:port][/]` (port 80 by default; `https://` proxies
    /// are not supported) and a `NO_PROXY` list.
    pub fn parse(url: &str, no_proxy: Option<String>) -> Result<Self, String> {
        let rest = match url.split_once("://") {
            None => url,
            Some(("http", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "proxy scheme {scheme:?} is not supported (only http://)"
                ));
            }
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err("the proxy URL has no host".to_owned());
        }
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']') && p.parse::<u16>().is_ok());
        let authority = if has_port {
            host.to_owned()
        } else {
            format!("{host}:80")
        };
        let basic_auth = user.map(|u| {
            use base64::Engine as _;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(percent_decode(u))
            )
        });
        let no_proxy = no_proxy
            .unwrap_or_default()
            .split(',')
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        Ok(Self {
            authority,
            basic_auth,
            no_proxy,
        })
    }

    /// True when `host` is reached through the proxy: no `NO_PROXY` entry matches it (`*`,
    /// the host itself, or a domain it is in, with or without a leading dot; a `:port` on an
    /// entry is ignored).
    pub fn applies_to(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        !self.no_proxy.iter().any(|entry| {
            let entry = match entry.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() && !h.contains(':') => h,
                _ => entry.as_str(),
            };
            let entry = entry.trim_start_matches('[').trim_end_matches(']');
            let domain = entry.trim_start_matches("*.").trim_start_matches('.');
            entry == "*"
                || host == domain
                || (host.len() > domain.len()
                    && host.ends_with(domain)
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
        })
    }
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A provider client over `tls`, through `proxy` when it applies: no client-wide timeout
/// (the caller bounds each request), no redirects, TCP_NODELAY, idle connections kept.
pub fn client(tls: Arc<rustls::ClientConfig>, proxy: Option<Arc<Proxy>>) -> awc::Client {
    let tcp = TcpConnector::new(Resolver::default()).service();
    let connect = fn_service(move |req: ConnectInfo<Uri>| {
        let proxy = proxy.clone().filter(|p| p.applies_to(req.hostname()));
        type Dial = std::pin::Pin<
            Box<
                dyn std::future::Future<
                        Output = Result<Connection<Uri, actix_rt::net::TcpStream>, ConnectError>,
                    >,
            >,
        >;
        let dial: Dial = match proxy {
            Some(p) => Box::pin(async move { tunnel(&p, req).await }),
            None => Box::pin(tcp.call(req)),
        };
        async move {
            let conn = dial.await?;
            conn.io_ref().set_nodelay(true).map_err(ConnectError::Io)?;
            Ok::<_, ConnectError>(conn)
        }
    });
    let connector = awc::Connector::new()
        .connector(connect)
        .rustls_0_23(tls)
        .limit(0)
        .conn_keep_alive(KEEP_ALIVE)
        .conn_lifetime(Duration::from_secs(600))
        .timeout(Duration::from_secs(10))
        .handshake_timeout(Duration::from_secs(10));
    awc::Client::builder()
        .connector(connector)
        .disable_timeout()
        .disable_redirects()
        .finish()
}

/// A TCP connection to `req`'s host and port through `proxy`'s `CONNECT` tunnel.
async fn tunnel(
    proxy: &Proxy,
    req: ConnectInfo<Uri>,
) -> Result<Connection<Uri, actix_rt::net::TcpStream>, ConnectError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = |e: std::io::Error| ConnectError::Io(e);
    let fail = |m: String| ConnectError::Io(std::io::Error::other(m));
    let target = format!("{}:{}", req.hostname(), req.port());
    let mut stream = actix_rt::net::TcpStream::connect(proxy.authority.as_str())
        .await
        .map_err(io)?;
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.basic_auth {
        head.push_str("Proxy-Authorization: ");
        head.push_str(auth);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    // The proxy's answer ends with a blank line; nothing follows it before the TLS
    // handshake, so reading byte by byte takes nothing from the tunnel.
    let mut answer = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() > 8192 {
            return Err(fail("the proxy's CONNECT answer is too long".to_owned()));
        }
        let n = stream.read(&mut byte).await.map_err(io)?;
        if n == 0 {
            return Err(fail(
                "the proxy closed the connection during CONNECT".to_owned(),
            ));
        }
        answer.push(byte[0]);
    }
    let status_line = answer
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_owned())
        .unwrap_or_default();
    let ok = status_line
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    if !ok {
        return Err(fail(format!(
            "the proxy refused CONNECT {target}: {status_line}"
        )));
    }
    Ok(Connection::new(req.request().clone(), stream))
}

#[cfg(test)]
mod tests {
    use super::Proxy;

    #[test]
    fn no_proxy_entries_exempt_hosts_and_their_subdomains() {
        let p = Proxy::parse(
            "http://proxy.corp:3128",
            Some("localhost, .internal.example,api.local:443,10.0.0.1".to_owned()),
        )
        .expect("a valid proxy");
        assert_eq!(p.authority, "proxy.corp:3128");
        for (host, through) in [
            ("api.openai.com", true),
            ("localhost", false),
            ("svc.internal.example", false),
            ("internal.example", false),
            ("notinternal.example", true),
            ("api.local", false),
            ("10.0.0.1", false),
            ("10.0.0.2", true),
        ] {
            assert_eq!(p.applies_to(host), through, "{host}");
        }
        let all = Proxy::parse("proxy:8080", Some("*".to_owned())).expect("valid");
        assert!(!all.applies_to("api.openai.com"));
    }

    #[test]
    fn proxy_urls_default_the_port_and_refuse_https() {
        let p = Proxy::parse("http://u:p%40ss@proxy/", None).expect("valid");
        assert_eq!(p.authority, "proxy:80");
        assert_eq!(p.basic_auth.as_deref(), Some("Basic dTpwQHNz"));
        assert!(Proxy::parse("https://proxy:443", None).is_err());
        assert!(Proxy::parse("http://", None).is_err());
    }
}
