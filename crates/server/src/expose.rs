//! One agent served over MCP on its own: its capabilities are the whole catalog, behind
//! the same edge as the gateway (Host/Origin checks, body limits, `/healthz`, `/metrics`).

use std::{future::Future, net::SocketAddr};

use tokio_util::sync::CancellationToken;
use toolmesh_agent::{Agent, ExposeOptions};
use toolmesh_registry::{Registry, RegistryOptions};

use crate::{CatalogServer, GatewayState, HttpOptions, HttpServer, ServerError, ServerOptions};

/// Serving an [`Agent`] as an MCP server.
pub trait ExposeAsMcpServer {
    /// A server whose tools are the agent's capabilities (see [`Agent::service`]), under
    /// their own names (`solve`) unless [`ExposeOptions::prefix`] asks for the agent's
    /// namespace; each call runs the agent with the client's cancellation and progress
    /// token.
    ///
    /// # Errors
    ///
    /// [`ServerError::Expose`] when the options are not valid.
    fn expose_as_mcp_server(
        &self,
        options: ExposeOptions,
    ) -> impl Future<Output = Result<AgentServer, ServerError>> + Send;
}

impl ExposeAsMcpServer for Agent {
    async fn expose_as_mcp_server(
        &self,
        mut options: ExposeOptions,
    ) -> Result<AgentServer, ServerError> {
        // Alone, the server is the agent: its tools need no namespace unless asked.
        options.prefix.get_or_insert(false);
        let spec = self.service(&options)?;
        let mut server_options = ServerOptions::default().call_timeout(spec.timeout);
        server_options.name = spec.id.to_string();
        server_options.instructions = options.description.clone();
        let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
        Ok(AgentServer {
            server: CatalogServer::with_options(registry, server_options),
        })
    }
}

/// An exposed agent, ready to serve over streamable HTTP or stdio. Cheap to clone.
#[derive(Clone)]
pub struct AgentServer {
    server: CatalogServer,
}

impl std::fmt::Debug for AgentServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentServer")
            .field("name", &self.server.options().name)
            .finish_non_exhaustive()
    }
}

impl AgentServer {
    /// The MCP server behind it.
    pub fn catalog_server(&self) -> &CatalogServer {
        &self.server
    }

    /// Runs calls that carry no authenticated caller (every call over stdio) as
    /// `caller`, e.g. the local user ([`Identity::local_user`](crate::auth::Identity::local_user)).
    pub fn with_default_caller(self, caller: crate::Caller) -> Self {
        let mut options = self.server.options().clone();
        options.default_caller = Some(caller);
        Self {
            server: CatalogServer::with_options(self.server.registry().clone(), options),
        }
    }
    /// An axum router to mount: `/mcp`, `/healthz`, `/readyz`, `/status`, `/metrics`.
    pub fn router(&self, options: HttpOptions) -> axum::Router {
        crate::router(GatewayState::ready(self.server.clone(), options))
    }

    /// Binds `addr` and serves until `shutdown`, draining calls in flight.
    ///
    /// # Errors
    ///
    /// When the address cannot be bound or the server fails.
    pub async fn serve_http(
        &self,
        addr: SocketAddr,
        options: HttpOptions,
        shutdown: CancellationToken,
    ) -> Result<(), ServerError> {
        let state = GatewayState::ready(self.server.clone(), options);
        HttpServer::bind(addr).await?.serve(state, shutdown).await
    }

    /// Serves over this process's stdin and stdout (an MCP client started it).
    ///
    /// # Errors
    ///
    /// [`ServerError::Stdio`] when the session cannot start or fails.
    pub async fn serve_stdio(&self, shutdown: CancellationToken) -> Result<(), ServerError> {
        crate::serve_stdio(self.server.clone(), shutdown).await
    }
}
