//! What actix does not bound on a client connection: the headers of every request after the
//! first.
//!
//! actix times out the first request's headers (`client_request_timeout`) and a connection
//! idle between requests (`keep_alive`), but the idle timer stops at the next request's first
//! byte and the headers timer is armed only once per connection: a client that sends one
//! request and then dribbles the next one's headers a byte a second holds its connection (and
//! a file descriptor) for good. Here each connection records when it last started or finished
//! a request and how many are under way; a sweeper on each worker closes a connection with
//! none under way that has not completed a request head for `idle + request headers` timeouts
//! since. A connection that sends nothing is closed by actix's idle timer first; one that
//! dribbles gets at most the two timeouts together.
//!
//! The sweeper shuts the socket down through a duplicate of its descriptor taken at connect:
//! actix wakes on the closed socket and drops the connection, and the duplicate goes with it.
//!
//! Also here: the cap on connections open at once from one client address
//! (`--max-connections-per-ip`), counted over every worker and listener; a connection past it
//! is shut down as it is accepted, before a byte is read, as Envoy's connection limit does.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::dev::Extensions;

/// How often each worker looks for overdue connections.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// One client connection, as the sweeper sees it.
#[derive(Debug)]
pub struct Conn {
    /// A duplicate of the connection's socket, to shut it down.
    socket: socket2::Socket,
    /// Requests under way (handlers running, response bodies not yet ended).
    busy: Cell<u32>,
    /// When a request last started or ended (or the connection opened).
    last: Cell<Instant>,
}

thread_local! {
    /// This worker's connections.
    static CONNECTIONS: RefCell<Vec<Weak<Conn>>> = const { RefCell::new(Vec::new()) };
}

/// Most connections open at once from one client address (0: no cap), for the process.
static PER_IP_LIMIT: AtomicU32 = AtomicU32::new(0);

/// `kthena_router_connections_refused_total{reason="per_ip"}`: connections closed as accepted
/// because their address had [`PER_IP_LIMIT`] open (registered with the other metrics).
pub static PER_IP_REFUSED: std::sync::LazyLock<prometheus::IntCounter> =
    std::sync::LazyLock::new(|| {
        prometheus::IntCounter::with_opts(
            prometheus::Opts::new(
                "kthena_router_connections_refused_total",
                "Client connections closed as they were accepted",
            )
            .const_label("reason", "per_ip"),
        )
        .expect("a valid metric")
    });

/// Open connections per client address, while a cap is set.
static PER_IP: Mutex<Option<HashMap<IpAddr, u32>>> = Mutex::new(None);

/// Sets the cap on connections open at once from one client address (0: none).
pub fn set_per_ip_limit(limit: u32) {
    PER_IP_LIMIT.store(limit, Ordering::Relaxed);
}

/// A connection counted against its address's cap, until dropped with the connection.
#[derive(Debug)]
pub struct IpSlot(IpAddr);

impl IpSlot {
    /// A slot for a connection from `ip`, or `None` when `limit` are open from it already.
    fn take(ip: IpAddr, limit: u32) -> Option<Self> {
        let mut map = PER_IP.lock().unwrap_or_else(PoisonError::into_inner);
        let open = map.get_or_insert_with(HashMap::new).entry(ip).or_insert(0);
        if *open >= limit {
            return None;
        }
        *open += 1;
        Some(Self(ip))
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = PER_IP.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(map) = map.as_mut()
            && let Some(open) = map.get_mut(&self.0)
        {
            *open -= 1;
            if *open == 0 {
                map.remove(&self.0);
            }
        }
    }
}

/// actix's `on_connect` hook: refuses a connection past its address's cap, and records the
/// connection (plain TCP or TLS over TCP) for the sweeper. A connection whose socket cannot
/// be duplicated (out of descriptors) is not swept; actix's own timers still apply to it.
pub fn on_connect(io: &dyn Any, ext: &mut Extensions) {
    let tcp = io.downcast_ref::<actix_rt::net::TcpStream>().or_else(|| {
        io.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<actix_rt::net::TcpStream>>()
            .map(|tls| tls.get_ref().0)
    });
    let Some(tcp) = tcp else {
        return;
    };
    let limit = PER_IP_LIMIT.load(Ordering::Relaxed);
    if limit > 0
        && let Ok(peer) = tcp.peer_addr()
    {
        match IpSlot::take(peer.ip(), limit) {
            Some(slot) => {
                ext.insert(slot);
            }
            None => {
                PER_IP_REFUSED.inc();
                tracing::debug!(client = %peer.ip(), limit, "connection refused: too many from this address");
                // actix then reads end of file and drops the connection.
                let _ = socket2::SockRef::from(tcp).shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
    let socket = match socket2::SockRef::from(tcp).try_clone() {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "cannot watch a connection's request headers");
            return;
        }
    };
    let conn = Rc::new(Conn {
        socket,
        busy: Cell::new(0),
        last: Cell::new(Instant::now()),
    });
    CONNECTIONS.with(|c| c.borrow_mut().push(Rc::downgrade(&conn)));
    ext.insert(conn);
}

/// A request under way on its connection: started when made, ended when dropped.
#[derive(Debug)]
pub struct Busy(Rc<Conn>);

impl Busy {
    /// Marks a request of `req`'s connection as under way; `None` when the connection is
    /// not watched.
    pub fn of(req: &HttpRequest) -> Option<Self> {
        let conn = req.conn_data::<Rc<Conn>>()?.clone();
        conn.busy.set(conn.busy.get() + 1);
        conn.last.set(Instant::now());
        Some(Self(conn))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let c = &self.0;
        c.busy.set(c.busy.get().saturating_sub(1));
        c.last.set(Instant::now());
    }
}

/// Closes this worker's connections with no request under way for longer than `limit`;
/// forgets the ones already closed. Returns how many it closed.
pub fn sweep(limit: Duration) -> usize {
    let now = Instant::now();
    CONNECTIONS.with(|c| {
        let mut closed = 0;
        c.borrow_mut().retain(|w| {
            let Some(conn) = w.upgrade() else {
                return false;
            };
            if conn.busy.get() > 0 || now.duration_since(conn.last.get()) <= limit {
                return true;
            }
            // Shut down, not closed: actix owns the descriptor and closes it.
            let _ = conn.socket.shutdown(std::net::Shutdown::Both);
            closed += 1;
            false
        });
        closed
    })
}

/// Runs [`sweep`] every [`SWEEP_INTERVAL`] on the current worker, for good.
pub async fn sweeper(limit: Duration) {
    let mut tick = actix_rt::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let closed = sweep(limit);
        if closed > 0 {
            tracing::debug!(
                closed,
                ?limit,
                "closed connections whose next request's headers did not come"
            );
        }
    }
}

/// A third of the process's soft limit on open file descriptors (`/proc/self/limits`; 1,024
/// when it cannot be read), at least 64: each client connection may hold three descriptors
/// (its socket, the sweeper's duplicate, one to an engine), so the router never runs out
/// and new connections wait in the listen backlog instead.
pub fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| nofile_soft_limit(&text))
        .unwrap_or(1_024);
    (soft / 3).max(64)
}

/// The soft "Max open files" of a `/proc/<pid>/limits` text; `None` when unlimited or absent.
fn nofile_soft_limit(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_cap_of_slots_and_dropping_one_frees_it() {
        let ip: IpAddr = "127.9.9.9".parse().expect("an address");
        let other: IpAddr = "127.9.9.10".parse().expect("an address");
        let a = IpSlot::take(ip, 2).expect("first");
        let b = IpSlot::take(ip, 2).expect("second");
        assert!(IpSlot::take(ip, 2).is_none(), "third refused");
        let c = IpSlot::take(other, 2).expect("another address counts apart");
        drop(a);
        let d = IpSlot::take(ip, 2).expect("a freed slot is taken again");
        drop((b, c, d));
        let map = PER_IP.lock().expect("lock");
        assert!(
            !map.as_ref()
                .is_some_and(|m| m.contains_key(&ip) || m.contains_key(&other)),
            "addresses with no connection are forgotten"
        );
    }

    #[test]
    fn the_descriptor_limit_is_read_from_proc() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95651                95651                processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(nofile_soft_limit(limits), Some(1_024));
        assert_eq!(
            nofile_soft_limit("Max open files unlimited unlimited files\n"),
            None
        );
        assert_eq!(nofile_soft_limit(""), None);
        assert!(default_max_connections() >= 64);
    }
}
