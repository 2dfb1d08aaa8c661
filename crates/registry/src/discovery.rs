//! Where services come from besides the configuration, and what they can do: capability
//! matching over the catalog, and the membership that discovery sources (etcd, the MCP
//! Registry, `server.json` files) add to the configured services.

mod capability;
pub mod mcp_registry;
mod merge;

pub use capability::ServiceMatch;
pub(crate) use capability::match_score;
pub use merge::merge;

use std::{sync::Arc, time::SystemTime};

use crate::ServiceSpec;

/// A discovery source's latest view: the services it found (each with the instances it
/// knows of) and whether it is currently reachable. A source that loses its backend keeps
/// its last view, so routing goes on with the last known membership.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// What it found, to be [`merge`]d with the configured services.
    pub services: Arc<Vec<ServiceSpec>>,
    /// Whether the view is current.
    pub health: SourceHealth,
}

/// Whether a discovery source's view is current.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SourceHealth {
    /// Not loaded yet.
    #[default]
    Starting,
    /// Loaded and followed.
    Live,
    /// Unreachable since `since`; the last view stays in force.
    Lost {
        /// Why, for `/status`.
        error: String,
        /// When it was lost.
        since: SystemTime,
    },
}
