//! Health and performance reports: per instance, per service, overall; JSON-ready.

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use toolmesh_core::{InstanceId, ServerId};
use toolmesh_pool::HealthStatus;
use toolmesh_resilience::BreakerState;

use crate::{CatalogProblem, Registry, strategy::LoadSnapshot};

/// One instance: health, load and latency.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    /// The service.
    pub service: ServerId,
    /// The instance.
    pub instance: InstanceId,
    /// Its endpoint, as named in errors.
    pub endpoint: String,
    /// Whether calls go there.
    pub healthy: bool,
    /// Health status.
    pub status: HealthStatus,
    /// Why.
    pub reason: Arc<str>,
    /// Routing enabled.
    pub enabled: bool,
    /// Tier.
    pub priority: u32,
    /// Breaker state.
    pub breaker: BreakerState,
    /// Calls, success rate, latencies.
    pub load: LoadSnapshot,
    /// Open sessions.
    pub sessions: usize,
}

/// One service: how many instances can serve, and whether they agree.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    /// The service.
    pub service: ServerId,
    /// Its namespace.
    pub namespace: String,
    /// `healthy` (all instances), `degraded` (some), `down` (none) or `disabled`.
    pub status: &'static str,
    /// Healthy instances.
    pub healthy_instances: usize,
    /// All instances.
    pub instances: usize,
    /// Tools it offers.
    pub tools: usize,
    /// Instances whose tools differ from the service's.
    pub divergence: Vec<String>,
    /// How long ago its tools were listed.
    pub discovery_age: Option<Duration>,
}

/// The whole mesh in one line of numbers.
#[derive(Debug, Clone, Serialize)]
pub struct HealthSummary {
    /// `healthy`, `degraded` or `down`.
    pub status: &'static str,
    /// Services registered.
    pub services: usize,
    /// Services with every instance healthy.
    pub services_healthy: usize,
    /// Instances registered.
    pub instances: usize,
    /// Healthy instances.
    pub instances_healthy: usize,
    /// Tools in the catalog.
    pub tools: usize,
    /// Catalog problems (collisions, invalid names).
    pub problems: Vec<CatalogProblem>,
}

/// Everything, for `GET /status` and `toolmesh status --json`.
#[derive(Debug, Clone, Serialize)]
pub struct MeshReport {
    /// Overall.
    pub summary: HealthSummary,
    /// Per service.
    pub services: Vec<ServiceReport>,
    /// Per instance (the performance report: calls, success rate, mean and p99 latency).
    pub instances: Vec<InstanceReport>,
}

impl Registry {
    /// Per-instance health and performance.
    pub fn instance_reports(&self) -> Vec<InstanceReport> {
        let state = self.inner.state.load();
        state
            .services
            .iter()
            .flat_map(|s| {
                s.instances.iter().map(move |i| {
                    let health = i.pool.health();
                    InstanceReport {
                        service: s.spec.id.clone(),
                        instance: i.spec.id.clone(),
                        endpoint: i.pool.label().to_owned(),
                        healthy: health.is_usable(),
                        status: health.status,
                        reason: health.reason,
                        enabled: i.is_enabled(),
                        priority: i.spec.priority,
                        breaker: i.pool.breaker().state(),
                        load: i.load.stats(),
                        sessions: i.pool.snapshot().sessions,
                    }
                })
            })
            .collect()
    }

    /// Per-service health.
    pub fn service_reports(&self) -> Vec<ServiceReport> {
        let state = self.inner.state.load();
        state
            .services
            .iter()
            .map(|s| {
                let healthy = s
                    .instances
                    .iter()
                    .filter(|i| i.pool.health().is_usable())
                    .count();
                let status = if !s.is_enabled() {
                    "disabled"
                } else if healthy == s.instances.len() {
                    "healthy"
                } else if healthy > 0 {
                    "degraded"
                } else {
                    "down"
                };
                ServiceReport {
                    service: s.spec.id.clone(),
                    namespace: s.spec.namespace.clone(),
                    status,
                    healthy_instances: healthy,
                    instances: s.instances.len(),
                    tools: s.tools().map_or(0, |t| t.len()),
                    divergence: s.divergence(),
                    discovery_age: s.discovery_age(),
                }
            })
            .collect()
    }

    /// The overall summary.
    pub fn health_summary(&self) -> HealthSummary {
        summarize(&self.service_reports(), &self.instance_reports(), self)
    }

    /// Summary, services and instances together.
    pub fn report(&self) -> MeshReport {
        let services = self.service_reports();
        let instances = self.instance_reports();
        MeshReport {
            summary: summarize(&services, &instances, self),
            services,
            instances,
        }
    }

    /// [`report`](Self::report) as JSON.
    pub fn report_json(&self) -> serde_json::Value {
        serde_json::to_value(self.report()).unwrap_or_default()
    }
}

fn summarize(
    services: &[ServiceReport],
    instances: &[InstanceReport],
    registry: &Registry,
) -> HealthSummary {
    let services_healthy = services.iter().filter(|s| s.status == "healthy").count();
    let serving = services.iter().filter(|s| s.healthy_instances > 0).count();
    let status = if services_healthy == services.len() {
        "healthy"
    } else if serving > 0 {
        "degraded"
    } else {
        "down"
    };
    let catalog = registry.catalog();
    HealthSummary {
        status,
        services: services.len(),
        services_healthy,
        instances: instances.len(),
        instances_healthy: instances.iter().filter(|i| i.healthy).count(),
        tools: catalog.len(),
        problems: catalog.problems().to_vec(),
    }
}
