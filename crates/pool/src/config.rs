//! Configuration of one instance: its sessions (`pool`), health checks, circuit breaker
//! and bulkhead. Names follow the connection-pooling seed where they fit
//! (`min_connections` is accepted for `min_sessions`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use toolmesh_resilience::{BreakerConfig, BulkheadConfig};

/// Everything that governs one instance, as the `pool`, `health_check`,
/// `circuit_breaker` and `bulkhead` sections of a server (or of `defaults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceConfig {
    /// Sessions.
    pub pool: PoolConfig,
    /// Active health checks.
    pub health_check: HealthCheckConfig,
    /// Passive health: the instance's circuit breaker.
    pub circuit_breaker: BreakerConfig,
    /// Calls in flight to the instance at once (`max_concurrent`) and how long to wait.
    pub bulkhead: BulkheadConfig,
}

/// How one instance's sessions are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Sessions kept open even when idle (warmed up at start).
    #[serde(alias = "min_connections")]
    pub min_sessions: usize,
    /// Most sessions; for stdio each is a process, which only helps a sequential server.
    #[serde(alias = "max_connections")]
    pub max_sessions: usize,
    /// Calls one session carries before another is opened (up to `max_sessions`).
    pub max_requests_per_session: usize,
    /// Longest wait for a session when all are busy, capped by the call's deadline.
    #[serde(with = "toolmesh_core::duration", alias = "connection_timeout")]
    pub acquire_timeout: Duration,
    /// Sessions above `min_sessions` idle this long are closed.
    #[serde(with = "toolmesh_core::duration")]
    pub max_idle_time: Duration,
    /// Ping a session before each use (costs a round trip per call).
    pub validate_on_acquire: bool,
    /// Backoff between reconnect attempts after a session died or a connect failed.
    pub reconnect: ReconnectConfig,
    /// How long `shutdown` waits for in-flight calls.
    #[serde(with = "toolmesh_core::duration")]
    pub drain_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            min_sessions: 1,
            max_sessions: 4,
            max_requests_per_session: 64,
            acquire_timeout: Duration::from_secs(5),
            max_idle_time: Duration::from_secs(300),
            validate_on_acquire: false,
            reconnect: ReconnectConfig::default(),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Exponential backoff between reconnect attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconnectConfig {
    /// First delay.
    #[serde(with = "toolmesh_core::duration")]
    pub initial_backoff: Duration,
    /// Longest delay.
    #[serde(with = "toolmesh_core::duration")]
    pub max_backoff: Duration,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// What an active health check asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckMethod {
    /// MCP `ping`.
    #[default]
    Ping,
    /// `tools/list`: proves the server can serve, not only answer.
    ListTools,
}

/// Active health checking of an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Whether checks run.
    pub enabled: bool,
    /// Time between checks.
    #[serde(with = "toolmesh_core::duration")]
    pub interval: Duration,
    /// Deadline of one check.
    #[serde(with = "toolmesh_core::duration")]
    pub timeout: Duration,
    /// Consecutive failed checks that make the instance unhealthy.
    pub failure_threshold: u32,
    /// Consecutive passed checks that make it healthy again.
    pub success_threshold: u32,
    /// What a check asks.
    pub method: HealthCheckMethod,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            failure_threshold: 3,
            success_threshold: 1,
            method: HealthCheckMethod::Ping,
        }
    }
}

impl InstanceConfig {
    /// Checks every section; the message names the key to change.
    pub fn validate(&self) -> Result<(), String> {
        self.pool.validate().map_err(|e| format!("pool.{e}"))?;
        self.health_check
            .validate()
            .map_err(|e| format!("health_check.{e}"))?;
        self.circuit_breaker
            .validate()
            .map_err(|e| format!("circuit_breaker: {e}"))?;
        self.bulkhead
            .validate()
            .map_err(|e| format!("bulkhead: {e}"))
    }
}

impl PoolConfig {
    /// Checks the combination; the message starts with the key to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_sessions == 0 {
            return Err("max_sessions must be at least 1".into());
        }
        if self.min_sessions > self.max_sessions {
            return Err(format!(
                "min_sessions ({}) is greater than max_sessions ({}); raise max_sessions or lower min_sessions",
                self.min_sessions, self.max_sessions
            ));
        }
        if self.max_requests_per_session == 0 {
            return Err("max_requests_per_session must be at least 1".into());
        }
        if self.reconnect.initial_backoff.is_zero()
            || self.reconnect.initial_backoff > self.reconnect.max_backoff
        {
            return Err(
                "reconnect.initial_backoff must be above zero and at most reconnect.max_backoff"
                    .into(),
            );
        }
        Ok(())
    }
}

impl HealthCheckConfig {
    /// Checks the thresholds and times.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.interval.is_zero() || self.timeout.is_zero() {
            return Err("interval and timeout must be above zero".into());
        }
        if self.failure_threshold == 0 || self.success_threshold == 0 {
            return Err("failure_threshold and success_threshold must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_min_above_max_is_not() {
        assert_eq!(InstanceConfig::default().validate(), Ok(()));
        let mut bad = InstanceConfig::default();
        bad.pool.min_sessions = 5;
        bad.pool.max_sessions = 2;
        let err = bad.validate().unwrap_err();
        assert!(
            err.starts_with("pool.min_sessions (5) is greater than max_sessions (2)"),
            "{err}"
        );
    }
}
