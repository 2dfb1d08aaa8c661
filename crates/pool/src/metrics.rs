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

/// Metric handles resolved once per pool, plus plain counters for [`PoolSnapshot`].
pub(crate) struct PoolMetrics {
    instance: Arc<str>,
    created: Counter,
    destroyed: Counter,
    acquisitions: Counter,
    acquire_wait: Histogram,
    sessions_active: Gauge,
    sessions_idle: Gauge,
    utilization: Gauge,
    health_checks: Counter,
    health_check_failures: Counter,
    health_check_duration: Histogram,
    pub(crate) n_created: AtomicU64,
    pub(crate) n_destroyed: AtomicU64,
    pub(crate) n_acquisitions: AtomicU64,
    wait_total_us: AtomicU64,
    wait_max_us: AtomicU64,
    n_checks: AtomicU64,
    n_check_failures: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl PoolMetrics {
    pub(crate) fn new(instance: Arc<str>) -> Self {
        let label = instance.to_string();
        Self {
            created: metrics::counter!("toolmesh_pool_sessions_created_total", "instance" => label.clone()),
            destroyed: metrics::counter!("toolmesh_pool_sessions_destroyed_total", "instance" => label.clone()),
            acquisitions: metrics::counter!("toolmesh_pool_acquisitions_total", "instance" => label.clone()),
            acquire_wait: metrics::histogram!("toolmesh_pool_acquire_wait_seconds", "instance" => label.clone()),
            sessions_active: metrics::gauge!("toolmesh_pool_sessions_active", "instance" => label.clone()),
            sessions_idle: metrics::gauge!("toolmesh_pool_sessions_idle", "instance" => label.clone()),
            utilization: metrics::gauge!("toolmesh_pool_utilization", "instance" => label.clone()),
            health_checks: metrics::counter!("toolmesh_pool_health_checks_total", "instance" => label.clone()),
            health_check_failures: metrics::counter!("toolmesh_pool_health_check_failures_total", "instance" => label.clone()),
            health_check_duration: metrics::histogram!("toolmesh_pool_health_check_duration_seconds", "instance" => label),
            instance,
            n_created: AtomicU64::new(0),
            n_destroyed: AtomicU64::new(0),
            n_acquisitions: AtomicU64::new(0),
            wait_total_us: AtomicU64::new(0),
            wait_max_us: AtomicU64::new(0),
            n_checks: AtomicU64::new(0),
            n_check_failures: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn session_created(&self) {
        self.created.increment(1);
        self.n_created.fetch_add(1, Relaxed);
    }

    pub(crate) fn session_destroyed(&self) {
        self.destroyed.increment(1);
        self.n_destroyed.fetch_add(1, Relaxed);
    }

    pub(crate) fn acquired(&self, waited: Duration) {
        self.acquisitions.increment(1);
        self.n_acquisitions.fetch_add(1, Relaxed);
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
        self.health_checks.increment(1);
        self.n_checks.fetch_add(1, Relaxed);
        self.health_check_duration.record(took.as_secs_f64());
        if !ok {
            self.health_check_failures.increment(1);
            self.n_check_failures.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn error(&self, kind: ErrorKind) {
        metrics::counter!("toolmesh_pool_errors_total", "instance" => self.instance.to_string(), "kind" => kind.as_str())
            .increment(1);
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(kind.as_str()).or_default() += 1;
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            sessions_created: self.n_created.load(Relaxed),
            sessions_destroyed: self.n_destroyed.load(Relaxed),
            acquisitions: self.n_acquisitions.load(Relaxed),
            acquire_wait_total: Duration::from_micros(self.wait_total_us.load(Relaxed)),
            acquire_wait_max: Duration::from_micros(self.wait_max_us.load(Relaxed)),
            health_checks: self.n_checks.load(Relaxed),
            health_check_failures: self.n_check_failures.load(Relaxed),
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
