//! A discovery source for the [MCP Registry](https://registry.modelcontextprotocol.io)
//! API and local `server.json` files.
//!
//! Each server's hosted streamable HTTP remotes become instances of a service named
//! after it (`io.github.acme/weather` → `weather`, or an alias). A server offering only
//! packages runs locally over stdio only when [`McpRegistryOptions::packages`] allow-lists
//! it with the command to run: nothing from the registry is executed otherwise. The
//! services it finds are [`merge`](super::merge)d with the configured ones.

mod api;
mod convert;
mod error;
mod options;
mod source;

pub use convert::{META_NAME, META_STATUS, META_VERSION};
pub use error::McpRegistryError;
pub use options::{AllowedPackage, McpRegistryOptions};
pub use source::McpRegistrySource;
