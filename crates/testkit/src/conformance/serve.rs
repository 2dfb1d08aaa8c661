//! Serve the conformance fixtures over streamable HTTP at `/mcp`.

use std::{io::Write, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

use super::{cli::ServerCli, handler::ConformanceHandler, streams::ReconnectingSessions};
use crate::fixture::READY_PREFIX;

/// What clients are told to wait before reconnecting a closed SSE stream (SEP-1699).
const SSE_RETRY: Duration = Duration::from_secs(1);

/// Runs the server until the process is killed. Prints the fixture's READY line
/// (`TOOLMESH_FIXTURE_READY http=<url> ws=- pid=<pid>`) on stdout once it listens.
pub async fn run(cli: ServerCli) -> anyhow::Result<()> {
    let addr = SocketAddr::new(cli.host, cli.port);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}/mcp");

    let sessions = Arc::new(ReconnectingSessions::new(SSE_RETRY));
    let factory_sessions = sessions.clone();
    let service = StreamableHttpService::new(
        move || Ok(ConformanceHandler::new(factory_sessions.clone())),
        sessions,
        config(),
    );
    let router = Router::new().nest_service("/mcp", service);

    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "{READY_PREFIX} http={url} ws=- pid={}",
            std::process::id()
        )?;
        stdout.flush()?;
    }
    tracing::info!(%url, "toolmesh-conformance-server ready");
    axum::serve(listener, router)
        .await
        .context("the HTTP server failed")
}

/// Sessions with resumable streams; only loopback `Host` and `Origin` values are
/// accepted, so a page on another site cannot reach the server by DNS rebinding.
fn config() -> StreamableHttpServerConfig {
    StreamableHttpServerConfig::default()
        .with_sse_retry(Some(SSE_RETRY))
        .with_allowed_hosts(["localhost", "127.0.0.1", "::1", "[::1]"])
        .with_allowed_origins(["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"])
}
