//! Serving the catalog over stdin/stdout, for MCP clients that start the gateway as a
//! child process.

use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;

use crate::{CatalogServer, ServerError};

/// Serves `server` over this process's stdin and stdout until the client closes stdin
/// or `shutdown` is cancelled. Nothing else may write to stdout meanwhile (log to
/// stderr).
///
/// # Errors
///
/// [`ServerError::Stdio`] when the session cannot start or fails.
pub async fn serve_stdio(
    server: CatalogServer,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    serve_io(server, rmcp::transport::stdio(), shutdown).await
}

/// Serves `server` over any byte stream pair (`(reader, writer)`), like
/// [`serve_stdio`]; for tests and embedding.
///
/// # Errors
///
/// [`ServerError::Stdio`] when the session cannot start or fails.
pub async fn serve_io<R, W>(
    server: CatalogServer,
    io: (R, W),
    shutdown: CancellationToken,
) -> Result<(), ServerError>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
    W: tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let running = server
        .serve_with_ct(io, shutdown.child_token())
        .await
        .map_err(|e| ServerError::Stdio(e.to_string()))?;
    let reason = running
        .waiting()
        .await
        .map_err(|e| ServerError::Stdio(e.to_string()))?;
    tracing::info!(?reason, "stdio session ended");
    Ok(())
}
