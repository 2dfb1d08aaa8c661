//! Serving a [`Toolbox`] as an MCP server: stdio, any byte stream, streamable HTTP.

use std::{sync::Arc, time::Duration};

use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use toolmesh_core::{CallContext, CallError};

use crate::{Toolbox, ToolsError};

/// The name the server gives in `initialize`.
pub const SERVER_NAME: &str = "toolmesh-tools";

/// An rmcp [`ServerHandler`] serving the tools of a [`Toolbox`]; cheap to clone.
///
/// `tools/list` answers the toolbox's definitions; `tools/call` runs the tool with a
/// deadline ([`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT) unless changed) and the
/// request's cancellation (a `notifications/cancelled` from the client, or the session
/// going away). An unknown tool is a JSON-RPC invalid-params error; a deadline passed
/// is an internal error; bad input is a tool result with `isError: true`.
#[derive(Debug, Clone)]
pub struct ToolboxServer {
    toolbox: Arc<Toolbox>,
    timeout: Duration,
}

impl ToolboxServer {
    /// Budget of one `tools/call` unless set with [`with_timeout`](Self::with_timeout).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// Serves `toolbox`.
    pub fn new(toolbox: Toolbox) -> Self {
        Self {
            toolbox: Arc::new(toolbox),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// Sets the budget of one `tools/call`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The served toolbox.
    pub fn toolbox(&self) -> &Toolbox {
        &self.toolbox
    }
}

impl ServerHandler for ToolboxServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Native toolmesh tools: calculator, time, sandboxed files, HTTP fetch, arXiv and web search \
                 (as configured). Tool errors say what was wrong and how to fix the call.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.toolbox.definitions()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.toolbox.definition(name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let ctx = CallContext::with_timeout(self.timeout).cancel_with(context.ct.clone());
        let arguments = request.arguments.unwrap_or_default();
        match self.toolbox.call(&request.name, arguments, &ctx).await {
            Ok(result) => Ok(result.into()),
            Err(error @ (CallError::ToolNotFound { .. } | CallError::InvalidRequest { .. })) => {
                Err(ErrorData::invalid_params(error.to_string(), None))
            }
            Err(error) => {
                tracing::debug!(tool = %request.name, %error, "native tool call failed");
                Err(ErrorData::internal_error(error.to_string(), None))
            }
        }
    }
}

/// Serves `toolbox` over this process's stdin and stdout until the client disconnects.
pub async fn serve_stdio(toolbox: Toolbox) -> Result<(), ToolsError> {
    let (stdin, stdout) = rmcp::transport::stdio();
    serve_with(toolbox, (stdin, stdout), "stdio").await
}

/// Serves `toolbox` over a byte stream pair (newline-delimited JSON-RPC, as on stdio)
/// until the peer disconnects.
pub async fn serve_io<R, W>(toolbox: Toolbox, read: R, write: W) -> Result<(), ToolsError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    serve_with(toolbox, (read, write), "io").await
}

async fn serve_with<R, W>(
    toolbox: Toolbox,
    transport: (R, W),
    name: &'static str,
) -> Result<(), ToolsError>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let running = ToolboxServer::new(toolbox)
        .serve(transport)
        .await
        .map_err(|e| ToolsError::Initialize {
            transport: name,
            reason: e.to_string(),
        })?;
    let reason = running.waiting().await.map_err(|e| ToolsError::Session {
        transport: name,
        reason: e.to_string(),
    })?;
    tracing::debug!(?reason, transport = name, "MCP session ended");
    Ok(())
}

/// The streamable HTTP service for `toolbox` with rmcp's default configuration
/// (stateful sessions; only loopback `Host` headers accepted), to mount in axum.
pub fn streamable_http_service(
    toolbox: Toolbox,
) -> StreamableHttpService<ToolboxServer, LocalSessionManager> {
    streamable_http_service_with_config(toolbox, StreamableHttpServerConfig::default())
}

/// The streamable HTTP service for `toolbox` with `config` (allowed hosts, keep-alive,
/// cancellation token, ...).
pub fn streamable_http_service_with_config(
    toolbox: Toolbox,
    config: StreamableHttpServerConfig,
) -> StreamableHttpService<ToolboxServer, LocalSessionManager> {
    let server = ToolboxServer::new(toolbox);
    StreamableHttpService::new(move || Ok(server.clone()), Arc::default(), config)
}

/// An axum router serving `toolbox` over streamable HTTP at `path` (e.g. `/mcp`;
/// `/` or empty serves every path).
pub fn router(toolbox: Toolbox, path: &str) -> axum::Router {
    mount(streamable_http_service(toolbox), path)
}

fn mount(
    service: StreamableHttpService<ToolboxServer, LocalSessionManager>,
    path: &str,
) -> axum::Router {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return axum::Router::new().fallback_service(service);
    }
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    axum::Router::new().nest_service(&path, service)
}

/// Serves `toolbox` over streamable HTTP at `path` on `listener` until `shutdown` is
/// cancelled; open sessions are closed on shutdown.
pub async fn serve_http(
    toolbox: Toolbox,
    listener: tokio::net::TcpListener,
    path: &str,
    shutdown: CancellationToken,
) -> Result<(), ToolsError> {
    use axum::serve::ListenerExt;

    let config =
        StreamableHttpServerConfig::default().with_cancellation_token(shutdown.child_token());
    let router = mount(streamable_http_service_with_config(toolbox, config), path);
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "failed to set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(ToolsError::Http)
}
