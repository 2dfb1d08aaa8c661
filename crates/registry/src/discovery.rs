//! Where services come from besides the configuration, and what they can do: capability
//! matching over the catalog, and the membership that discovery sources (etcd, the MCP
//! Registry, `server.json` files) add to the configured services.

mod capability;
mod merge;

pub use capability::ServiceMatch;
pub(crate) use capability::match_score;
pub use merge::merge;
