//! The control plane's own runtime: Kubernetes watchers (list, watch, JSON decoding of every
//! event) and the API client's connection run here, on their own threads, not on the actix
//! System whose actors publish the data plane's snapshots. What the watchers produce reaches
//! the actors as messages.

use std::sync::OnceLock;

/// Worker threads of the control runtime: decoding a big initial list is the heaviest work.
const THREADS: usize = 2;

/// The runtime, started on first use and kept for the life of the process.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(THREADS)
            .thread_name("kthena-control")
            .enable_all()
            .build()
            .expect("the control runtime starts (threads and timers are available)")
    })
}
