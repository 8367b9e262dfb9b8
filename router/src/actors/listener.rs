//! The Listener actor: owns the actix-web server of one port.

use std::net::{SocketAddr, TcpListener};

use std::time::Duration;

use actix::{Actor, ActorContext, Context, Handler, Message, ResponseFuture};
use actix_web::dev::{ServerHandle, Service as _};
use actix_web::{App, HttpServer, web};

use crate::handlers::{self, RouterContext};
use crate::upstream;

/// Serves the router's HTTP surface on an already bound socket; stopping the actor stops the
/// server gracefully.
#[derive(Debug)]
pub struct Listener {
    socket: Option<TcpListener>,
    ctx: RouterContext,
    workers: usize,
    drain: Duration,
    tls: Option<rustls::ServerConfig>,
    handle: Option<ServerHandle>,
    addr: Option<SocketAddr>,
}

impl Listener {
    /// A listener that will serve `socket` with `workers` threads; a graceful stop waits up
    /// to `drain` for requests in flight.
    pub fn new(socket: TcpListener, ctx: RouterContext, workers: usize, drain: Duration) -> Self {
        Self {
            socket: Some(socket),
            ctx,
            workers,
            drain,
            tls: None,
            handle: None,
            addr: None,
        }
    }
}

impl Listener {
    /// Terminates TLS with `config` (an HTTPS Gateway listener).
    pub fn with_tls(mut self, config: rustls::ServerConfig) -> Self {
        self.tls = Some(config);
        self
    }
}

impl Actor for Listener {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(socket) = self.socket.take() else {
            return;
        };
        self.addr = socket.local_addr().ok();
        let data = web::Data::new(self.ctx.clone());
        let pod_tls = self.ctx.pod_tls.clone();
        let timeouts = self.ctx.timeouts;
        let per_worker = self
            .ctx
            .max_connections
            .div_ceil(self.workers.max(1))
            .max(1);
        let server = HttpServer::new(move || {
            // Later requests' headers (see crate::connection): swept on each worker.
            actix_rt::spawn(crate::connection::sweeper(
                timeouts.idle + timeouts.request_headers,
            ));
            // The factory runs once on each worker thread: flush its access log lines there.
            actix_rt::spawn(async {
                let mut tick = actix_rt::time::interval(crate::access_log::FLUSH_INTERVAL);
                loop {
                    tick.tick().await;
                    crate::access_log::flush_thread();
                }
            });
            App::new()
                // A request keeps its connection busy while its handler runs (a proxied
                // one until its response body ends, through its exchange).
                .wrap_fn(|req, srv| {
                    let busy = crate::connection::Busy::of(req.request());
                    let call = srv.call(req);
                    async move {
                        let res = call.await;
                        drop(busy);
                        res
                    }
                })
                .app_data(data.clone())
                .app_data(web::Data::new(upstream::Clients::new(pod_tls.clone())))
                .configure(handlers::configure)
        })
        .workers(self.workers)
        .max_connections(per_worker)
        .client_request_timeout(timeouts.request_headers)
        .keep_alive(timeouts.idle)
        .on_connect(crate::connection::on_connect)
        .tcp_nodelay(true)
        // A client's end of stream aborts its request at once, as nginx does: the handler is
        // dropped, with it the upstream request (the engine stops working on it) and the
        // exchange, which logs and counts a 499 `client_disconnected`. Without this actix
        // carries on until the engine answers or the route's timeout fires. A client that
        // half-closes after sending its request is treated as gone.
        .h1_allow_half_closed(false)
        .disable_signals()
        .shutdown_timeout(self.drain.as_secs().max(1));
        let server = match self.tls.take() {
            Some(config) => server.listen_rustls_0_23(socket, config),
            None => server.listen(socket),
        };
        match server {
            Ok(server) => {
                let server = server.run();
                self.handle = Some(server.handle());
                actix_rt::spawn(server);
                tracing::info!(addr = ?self.addr, "listener serving");
            }
            Err(e) => {
                tracing::error!(addr = ?self.addr, error = %e, "listener failed to start");
                ctx.stop();
            }
        }
    }
}

/// Stop serving: with `graceful`, wait for requests in flight (up to the drain timeout).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Stop {
    /// Finish requests in flight first.
    pub graceful: bool,
    /// Longest wait for them.
    pub drain: Duration,
}

impl Handler<Stop> for Listener {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, stop: Stop, ctx: &mut Context<Self>) -> Self::Result {
        let handle = self.handle.take();
        ctx.stop();
        Box::pin(async move {
            if let Some(h) = handle {
                let _ = actix_rt::time::timeout(stop.drain, h.stop(stop.graceful)).await;
            }
        })
    }
}
