//! One health state per instance, with the reason it is in it.

use std::{sync::Arc, time::Duration};

use serde::Serialize;
use tokio::time::Instant;

/// Whether an instance should receive calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Nothing known yet (no check has run).
    Unknown,
    /// Calls may go there.
    Healthy,
    /// Calls should go elsewhere.
    Unhealthy,
}

/// The health of an instance and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// The verdict.
    pub status: HealthStatus,
    /// Why, in words (the last check's error, the breaker state, …).
    pub reason: Arc<str>,
    /// How long the status has held.
    pub since: Duration,
}

impl Health {
    /// Whether calls may be routed here (unknown counts as usable).
    pub fn is_usable(&self) -> bool {
        self.status != HealthStatus::Unhealthy
    }
}

/// Turns check results into a status with thresholds (hysteresis).
#[derive(Debug)]
pub(crate) struct HealthTracker {
    status: HealthStatus,
    reason: Arc<str>,
    since: Instant,
    failures: u32,
    successes: u32,
    failure_threshold: u32,
    success_threshold: u32,
}

impl HealthTracker {
    pub(crate) fn new(failure_threshold: u32, success_threshold: u32) -> Self {
        Self {
            status: HealthStatus::Unknown,
            reason: "no health check has run yet".into(),
            since: Instant::now(),
            failures: 0,
            successes: 0,
            failure_threshold: failure_threshold.max(1),
            success_threshold: success_threshold.max(1),
        }
    }

    /// Records one check; returns the new status when it changed.
    pub(crate) fn record(&mut self, outcome: Result<(), String>) -> Option<HealthStatus> {
        let next = match outcome {
            Ok(()) => {
                self.failures = 0;
                self.successes += 1;
                if self.status == HealthStatus::Healthy {
                    return None;
                }
                // The first success of an unknown instance is enough; a sick one must prove itself.
                (self.status == HealthStatus::Unknown || self.successes >= self.success_threshold)
                    .then(|| (HealthStatus::Healthy, Arc::from("health checks pass")))
            }
            Err(reason) => {
                self.successes = 0;
                self.failures += 1;
                if self.status == HealthStatus::Unhealthy {
                    self.reason = format!(
                        "{} consecutive failed health checks; last: {reason}",
                        self.failures
                    )
                    .into();
                    return None;
                }
                (self.failures >= self.failure_threshold).then(|| {
                    (
                        HealthStatus::Unhealthy,
                        Arc::from(format!(
                            "{} consecutive failed health checks; last: {reason}",
                            self.failures
                        )),
                    )
                })
            }
        };
        let (status, reason) = next?;
        self.status = status;
        self.reason = reason;
        self.since = Instant::now();
        Some(status)
    }

    pub(crate) fn health(&self) -> Health {
        Health {
            status: self.status,
            reason: self.reason.clone(),
            since: self.since.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn thresholds_give_hysteresis() {
        let mut t = HealthTracker::new(3, 2);
        assert_eq!(t.record(Ok(())), Some(HealthStatus::Healthy));
        assert_eq!(t.record(Err("a".into())), None);
        assert_eq!(t.record(Err("b".into())), None);
        assert_eq!(t.record(Err("c".into())), Some(HealthStatus::Unhealthy));
        assert!(
            t.health()
                .reason
                .contains("3 consecutive failed health checks; last: c")
        );
        assert_eq!(
            t.record(Ok(())),
            None,
            "one success is not enough to recover"
        );
        assert_eq!(t.record(Ok(())), Some(HealthStatus::Healthy));
    }
}
