//! The crate's error type: failures of setting tools up or serving them, never of a call.

use std::path::PathBuf;

/// Why building or serving native tools failed.
///
/// Tool calls never fail with this type: bad input is a tool error result, and deadlines
/// or cancellation are a [`CallError`](toolmesh_core::CallError).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolsError {
    /// A filesystem root is missing, unreadable or not a directory.
    #[error(
        "filesystem root {path} is unusable: {reason}; create it or remove it from `filesystem.roots`"
    )]
    Root {
        /// The configured root.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value is invalid.
    #[error("invalid tools configuration `{field}`: {reason}")]
    Config {
        /// The offending field, e.g. `web_search.base_url`.
        field: &'static str,
        /// What to fix.
        reason: String,
    },
    /// The HTTP client of a tool could not be built (TLS backend, system configuration).
    #[error("cannot build the HTTP client for `{tool}`: {source}")]
    HttpClient {
        /// The tool that needed it.
        tool: &'static str,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The MCP session did not start (the peer did not complete `initialize`).
    #[error("MCP session over {transport} failed to initialize: {reason}")]
    Initialize {
        /// `stdio`, `io`, ...
        transport: &'static str,
        /// What rmcp reported.
        reason: String,
    },
    /// The MCP session task ended abnormally.
    #[error("MCP session over {transport} ended abnormally: {reason}")]
    Session {
        /// `stdio`, `io`, ...
        transport: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// Serving HTTP failed (accepting connections).
    #[error("serving MCP over HTTP failed: {0}")]
    Http(#[source] std::io::Error),
}
