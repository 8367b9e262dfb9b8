//! `kthena-mock`: a vLLM-compatible mock inference engine. See the `kthena_mock` crate docs.

mod args;

use clap::Parser;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    args::Args::parse().run().await
}
