//! `toolmesh-conformance-server`: the fixtures the MCP conformance suite's server
//! scenarios call, over streamable HTTP. See `--help`.

use clap::Parser;
use toolmesh_testkit::conformance::{ServerCli, run_server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ServerCli::parse();
    // stdout carries the READY line: log to stderr.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_env("TOOLMESH_CONFORMANCE_LOG")
                .unwrap_or_else(|_| EnvFilter::new("warn,rmcp=error")),
        )
        .init();
    run_server(cli).await
}
