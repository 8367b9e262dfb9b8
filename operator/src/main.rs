//! `kthena-router`: the router, and in Kubernetes mode its controllers; see
//! [`kthena_operator::args::Args`].

use clap::Parser;
use kthena_operator::args::Args;

/// jemalloc, not glibc's malloc: after a burst of thousands of connections glibc kept ~100 MB
/// it no longer used (freed memory stranded in its per-thread arenas), while jemalloc gives
/// pages back within about a second (`dirty_decay_ms` in `.cargo/config.toml`); it also runs
/// ~9 % fewer instructions per proxied request (bench/memory.py, bench/instructions.sh).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    // One process-wide rustls crypto provider, before anything can use TLS.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    actix_rt::System::new().block_on(args.run())
}
