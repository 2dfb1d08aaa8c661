//! `toolmesh-fixture`: a configurable MCP server for toolmesh tests.
//!
//! See `toolmesh-fixture --help` and the `toolmesh-testkit` crate docs.

use clap::Parser;
use toolmesh_testkit::fixture::{Cli, run};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // stdout belongs to the READY line (or to MCP itself with --stdio): log to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_env("TOOLMESH_FIXTURE_LOG")
                .unwrap_or_else(|_| EnvFilter::new("warn,rmcp::service=error")),
        )
        .init();
    run(cli).await
}
