//! The one error type of this crate.

use std::net::SocketAddr;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening address could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; is another process using the port? pick another with --listen"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up (a certificate or key file that does not load).
    #[error("{0}")]
    Tls(String),
    /// The HTTP server stopped with an I/O error.
    #[error("the HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
    /// The MCP session over stdio could not start or ended with an error.
    #[error("the stdio MCP session failed: {0}")]
    Stdio(String),
    /// Call arguments do not fit the tool's input schema; nothing was called.
    #[error("{message}")]
    InvalidArguments {
        /// The tool (rendered name).
        tool: String,
        /// The top-level argument at fault.
        field: String,
        /// JSON pointer to the value at fault (`/config/name`).
        pointer: String,
        /// What is wrong, naming the field and the tool.
        message: String,
    },
    /// The call failed in the router.
    #[error(transparent)]
    Call(#[from] toolmesh_core::CallError),
    /// An agent could not be exposed (no capability, a bad name, ...).
    #[error("cannot expose the agent: {0}")]
    Expose(#[from] toolmesh_agent::AgentError),
    /// The registry refused a service.
    #[error(transparent)]
    Registry(#[from] toolmesh_registry::RegistryError),
    /// The authentication settings cannot work.
    #[error("cannot authenticate clients: {0}")]
    Auth(String),
    /// The gateway was marked ready twice.
    #[error("the gateway is already serving a catalog")]
    AlreadyReady,
}
