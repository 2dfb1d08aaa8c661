//! Where services come from besides the configuration, and what they can do: capability
//! matching over the catalog, and the membership that discovery sources (etcd, the MCP
//! Registry, `server.json` files) add to the configured services.

mod capability;
pub mod etcd;
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

/// A discovery source's state for `/status` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceStatus {
    /// Which source (`etcd`, `mcp_registry`).
    pub source: String,
    /// `starting`, `live` or `lost`.
    pub state: &'static str,
    /// Why it is lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For how long, in whole seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_for_secs: Option<u64>,
    /// Services it currently contributes.
    pub services: usize,
    /// Instances it currently contributes.
    pub instances: usize,
}

impl SourceStatus {
    /// The state of `source` from its latest `view`.
    pub fn of(source: &str, view: &Discovered) -> Self {
        let (state, error, lost_for_secs) = match &view.health {
            SourceHealth::Starting => ("starting", None, None),
            SourceHealth::Live => ("live", None, None),
            SourceHealth::Lost { error, since } => (
                "lost",
                Some(error.clone()),
                Some(since.elapsed().map_or(0, |d| d.as_secs())),
            ),
        };
        Self {
            source: source.to_owned(),
            state,
            error,
            lost_for_secs,
            services: view.services.len(),
            instances: view.services.iter().map(|s| s.instances.len()).sum(),
        }
    }
}
