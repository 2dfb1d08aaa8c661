//! Why options were refused or a load failed.

use std::path::PathBuf;

/// Why the MCP Registry source cannot start or could not load.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum McpRegistryError {
    /// The options cannot work.
    #[error("mcp_registry options: {0}")]
    InvalidOptions(String),
    /// No HTTP client could be built.
    #[error(transparent)]
    Client(#[from] toolmesh_transport::ClientError),
    /// The request did not get an answer.
    #[error(
        "cannot reach the MCP Registry at {url}: {reason}; check `url` and that the registry is reachable"
    )]
    Unreachable {
        /// The request.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The registry answered with an error status.
    #[error(
        "the MCP Registry at {url} answered HTTP {status}: {body}; check that `url` is the base URL of a registry API (it serves /v0.1/servers)"
    )]
    Status {
        /// The request.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The answer is not a page of servers.
    #[error(
        "the MCP Registry at {url} sent something that is not a page of servers ({reason}); check that `url` points at a registry API"
    )]
    BadPage {
        /// The request.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Pagination did not end.
    #[error(
        "the MCP Registry at {url} kept sending pages ({reason}); stopped to avoid looping — narrow the load with `search` or `names`"
    )]
    Pagination {
        /// The first page's request.
        url: String,
        /// What looped.
        reason: String,
    },
    /// A local `server.json` could not be read.
    #[error("cannot load server.json file {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why, and what to fix.
        reason: String,
    },
}
