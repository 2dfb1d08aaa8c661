//! `toolmesh_pool_*` metrics (the `metrics` facade) and the same figures as a snapshot.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use metrics::{Counter, Gauge, Histogram};
use serde::Serialize;
use toolmesh_core::ErrorKind;
use toolmesh_resilience::BreakerStats;

use crate::Health;

/// A cumulative count, kept once here; the `metrics` counter is set from it, so the
/// exported figure and [`Counts`] cannot disagree.
struct Tally {
    value: AtomicU64,
    exported: Counter,
}

impl Tally {
    fn new(exported: Counter) -> Self {
        Self {
            value: AtomicU64::new(0),
            exported,
        }
    }

    fn add(&self, n: u64) {
        let now = self.value.fetch_add(n, Relaxed).saturating_add(n);
        self.exported.absolute(now);
    }

    fn get(&self) -> u64 {
        self.value.load(Relaxed)
    }
}

/// Metric handles resolved once per pool, with the counts [`PoolSnapshot`] shows.
pub(crate) struct PoolMetrics {
    instance: Arc<str>,
    created: Tally,
    destroyed: Tally,
    acquisitions: Tally,
    acquire_wait: Histogram,
    sessions_active: Gauge,
    sessions_idle: Gauge,
    utilization: Gauge,
    health_checks: Tally,
    health_check_failures: Tally,
    health_check_duration: Histogram,
    wait_total_us: AtomicU64,
    wait_max_us: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl PoolMetrics {
    pub(crate) fn new(instance: Arc<str>) -> Self {
        let label = instance.to_string();
        let tally =
            |name: &'static str| Tally::new(metrics::counter!(name, "instance" => label.clone()));
        Self {
            created: tally("toolmesh_pool_sessions_created_total"),
            destroyed: tally("toolmesh_pool_sessions_destroyed_total"),
            acquisitions: tally("toolmesh_pool_acquisitions_total"),
            health_checks: tally("toolmesh_pool_health_checks_total"),
            health_check_failures: tally("toolmesh_pool_health_check_failures_total"),
            acquire_wait: metrics::histogram!("toolmesh_pool_acquire_wait_seconds", "instance" => label.clone()),
            sessions_active: metrics::gauge!("toolmesh_pool_sessions_active", "instance" => label.clone()),
            sessions_idle: metrics::gauge!("toolmesh_pool_sessions_idle", "instance" => label.clone()),
            utilization: metrics::gauge!("toolmesh_pool_utilization", "instance" => label.clone()),
            health_check_duration: metrics::histogram!("toolmesh_pool_health_check_duration_seconds", "instance" => label),
            instance,
            wait_total_us: AtomicU64::new(0),
            wait_max_us: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn session_created(&self) {
        self.created.add(1);
    }

    pub(crate) fn session_destroyed(&self) {
        self.destroyed.add(1);
    }

    pub(crate) fn acquired(&self, waited: Duration) {
        self.acquisitions.add(1);
        // Most acquisitions do not wait; skip the histogram work for them.
        if !waited.is_zero() {
            self.acquire_wait.record(waited.as_secs_f64());
            let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
            self.wait_total_us.fetch_add(us, Relaxed);
            self.wait_max_us.fetch_max(us, Relaxed);
        }
    }

    pub(crate) fn sessions(&self, active: usize, idle: usize, utilization: f64) {
        self.sessions_active.set(active as f64);
        self.sessions_idle.set(idle as f64);
        self.utilization.set(utilization);
    }

    pub(crate) fn health_check(&self, took: Duration, ok: bool) {
        self.health_checks.add(1);
        self.health_check_duration.record(took.as_secs_f64());
        if !ok {
            self.health_check_failures.add(1);
        }
    }

    pub(crate) fn error(&self, kind: ErrorKind) {
        let Ok(mut errors) = self.errors.lock() else {
            return;
        };
        let count = errors.entry(kind.as_str()).or_default();
        *count += 1;
        metrics::counter!("toolmesh_pool_errors_total", "instance" => self.instance.to_string(), "kind" => kind.as_str())
            .absolute(*count);
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            sessions_created: self.created.get(),
            sessions_destroyed: self.destroyed.get(),
            acquisitions: self.acquisitions.get(),
            acquire_wait_total: Duration::from_micros(self.wait_total_us.load(Relaxed)),
            acquire_wait_max: Duration::from_micros(self.wait_max_us.load(Relaxed)),
            health_checks: self.health_checks.get(),
            health_check_failures: self.health_check_failures.get(),
            errors_by_kind: self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }
}

/// Cumulative counters of a pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Sessions opened (processes spawned, connections made).
    pub sessions_created: u64,
    /// Sessions closed or found dead.
    pub sessions_destroyed: u64,
    /// Sessions handed to calls.
    pub acquisitions: u64,
    /// Total time calls waited for a session.
    pub acquire_wait_total: Duration,
    /// Longest wait.
    pub acquire_wait_max: Duration,
    /// Active health checks run.
    pub health_checks: u64,
    /// Of which failed.
    pub health_check_failures: u64,
    /// Failed calls by [`ErrorKind`] label.
    pub errors_by_kind: BTreeMap<&'static str, u64>,
}

/// A pool's figures at one moment, for status pages and tests.
#[derive(Debug, Clone, Serialize)]
pub struct PoolSnapshot {
    /// The instance.
    pub instance: Arc<str>,
    /// Open sessions.
    pub sessions: usize,
    /// Of which carrying at least one call.
    pub sessions_active: usize,
    /// Of which carrying none.
    pub sessions_idle: usize,
    /// Calls in flight.
    pub in_flight: usize,
    /// In-flight calls over the pool's capacity (sessions × requests per session).
    pub utilization: f64,
    /// Process ids of stdio sessions.
    pub pids: Vec<u32>,
    /// The instance's health.
    pub health: Health,
    /// Its circuit breaker.
    pub breaker: BreakerStats,
    /// Cumulative counters.
    pub counts: Counts,
}
