//! What the mesh reports as it happens, for alert hooks and logs.

use std::sync::Arc;

use serde::Serialize;
use toolmesh_core::{InstanceId, ServerId};

/// Something an operator may want to be told about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MeshEvent {
    /// An instance's circuit breaker opened.
    BreakerTripped {
        /// The instance.
        instance: InstanceId,
    },
    /// An instance became unhealthy.
    InstanceDown {
        /// The instance.
        instance: InstanceId,
        /// Why.
        reason: Arc<str>,
    },
    /// An instance became healthy.
    InstanceUp {
        /// The instance.
        instance: InstanceId,
    },
    /// A call moved on to another instance.
    Failover {
        /// The tool (rendered name).
        tool: String,
        /// The instance that failed.
        from: InstanceId,
        /// The error there.
        error: String,
    },
    /// Services or tools were added, removed or changed.
    CatalogChanged {
        /// Tools in the catalog now.
        tools: usize,
    },
    /// A resource someone subscribed to changed upstream.
    ResourceUpdated {
        /// The resource.
        uri: String,
    },
    /// A tool's latency or error rate departed from its rolling baseline.
    Anomaly {
        /// The tool.
        tool: String,
        /// `latency` or `error_rate`.
        kind: &'static str,
        /// What was seen (milliseconds, or a rate).
        value: f64,
        /// The baseline.
        baseline: f64,
    },
    /// A service was added, replaced or removed.
    ServiceChanged {
        /// The service.
        service: ServerId,
        /// `added`, `replaced` or `removed`.
        change: &'static str,
    },
}
