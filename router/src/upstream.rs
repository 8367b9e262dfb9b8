//! The awc client used toward engines, one per worker (`awc::Client` is `!Send`).

use std::time::Duration;

use actix_service::{Service, fn_service};
use actix_tls::connect::{ConnectError, ConnectInfo, Connector as TcpConnector, Resolver};
use awc::http::Uri;

/// How long an idle upstream connection is kept for reuse.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// A client for engine traffic: no client-wide timeout (each attempt has its ModelServer's),
/// no redirects followed, no connection limit, and TCP_NODELAY on every upstream socket so
/// small writes (SSE requests, headers then body) are not held back by Nagle's algorithm.
pub fn client() -> awc::Client {
    let tcp = TcpConnector::new(Resolver::default()).service();
    let nodelay = fn_service(move |req: ConnectInfo<Uri>| {
        let connect = tcp.call(req);
        async move {
            let conn = connect.await?;
            conn.io_ref().set_nodelay(true).map_err(ConnectError::Io)?;
            Ok::<_, ConnectError>(conn)
        }
    });
    let connector = awc::Connector::new()
        .connector(nodelay)
        .limit(0)
        .conn_keep_alive(KEEP_ALIVE)
        .conn_lifetime(Duration::from_secs(300))
        .timeout(Duration::from_secs(5));
    awc::Client::builder()
        .connector(connector)
        .disable_timeout()
        .disable_redirects()
        .finish()
}
