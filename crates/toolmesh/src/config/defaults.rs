//! `defaults`: what every server gets unless it overrides it; and the seed's
//! `global_settings`, which sets the same things under other names.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use toolmesh_pool::{HealthCheckConfig, InstanceConfig, PoolConfig};
use toolmesh_registry::Strategy;
use toolmesh_resilience::{BreakerConfig, BulkheadConfig};

use super::overrides::{BreakerOverrides, BulkheadOverrides, HealthCheckOverrides, PoolOverrides};

/// Settings every server gets unless it sets its own (the `defaults` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// Default deadline of a call, and each endpoint's call timeout (30 s).
    #[serde(with = "toolmesh_core::duration")]
    pub timeout: Duration,
    /// How an instance is picked within a priority tier (`round_robin`).
    pub strategy: Strategy,
    /// Instances tried after the first one fails (3); `max_retries` is accepted too.
    #[serde(alias = "max_retries")]
    pub max_failover_attempts: u32,
    /// Each instance's circuit breaker.
    pub circuit_breaker: BreakerConfig,
    /// Each instance's sessions.
    pub pool: PoolConfig,
    /// Each instance's active health checks.
    pub health_check: HealthCheckConfig,
    /// Calls in flight to each instance at once.
    pub bulkhead: BulkheadConfig,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            strategy: Strategy::default(),
            max_failover_attempts: 3,
            circuit_breaker: BreakerConfig::default(),
            pool: PoolConfig::default(),
            health_check: HealthCheckConfig::default(),
            bulkhead: BulkheadConfig::default(),
        }
    }
}

impl Defaults {
    /// The pool, health check, breaker and bulkhead sections as one instance's settings.
    pub fn instance_config(&self) -> InstanceConfig {
        InstanceConfig {
            pool: self.pool.clone(),
            health_check: self.health_check.clone(),
            circuit_breaker: self.circuit_breaker.clone(),
            bulkhead: self.bulkhead.clone(),
        }
    }
}

/// Checks each section of `config`; on failure the section's key (`pool`) and what to
/// change.
pub(crate) fn validate_sections(config: &InstanceConfig) -> Result<(), (&'static str, String)> {
    config.pool.validate().map_err(|e| ("pool", e))?;
    config
        .health_check
        .validate()
        .map_err(|e| ("health_check", e))?;
    config
        .circuit_breaker
        .validate()
        .map_err(|e| ("circuit_breaker", e))?;
    config.bulkhead.validate().map_err(|e| ("bulkhead", e))?;
    // Whatever else the pool crate checks on the whole.
    config.validate().map_err(|e| ("", e))
}

/// `defaults` as written: only the keys given, applied over the seed's `global_settings`
/// and the built-in defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DefaultsSection {
    #[serde(with = "toolmesh_core::duration::option")]
    timeout: Option<Duration>,
    strategy: Option<Strategy>,
    #[serde(alias = "max_retries")]
    max_failover_attempts: Option<u32>,
    circuit_breaker: BreakerOverrides,
    pool: PoolOverrides,
    health_check: HealthCheckOverrides,
    bulkhead: BulkheadOverrides,
}

impl DefaultsSection {
    fn apply_to(&self, base: &mut Defaults) {
        if let Some(timeout) = self.timeout {
            base.timeout = timeout;
        }
        if let Some(strategy) = self.strategy {
            base.strategy = strategy;
        }
        if let Some(attempts) = self.max_failover_attempts {
            base.max_failover_attempts = attempts;
        }
        self.circuit_breaker.apply_to(&mut base.circuit_breaker);
        self.pool.apply_to(&mut base.pool);
        self.health_check.apply_to(&mut base.health_check);
        self.bulkhead.apply_to(&mut base.bulkhead);
    }
}

/// The seed configuration's `global_settings`, mapped onto [`Defaults`]; `defaults`
/// wins where both set the same thing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct GlobalSettings {
    /// `defaults.timeout`.
    #[serde(with = "toolmesh_core::duration::option")]
    default_timeout: Option<Duration>,
    /// `defaults.bulkhead.max_concurrent`.
    max_concurrent_connections: Option<usize>,
    /// `defaults.health_check.enabled`.
    health_check_enabled: Option<bool>,
    /// `defaults.pool.reconnect.initial_backoff` (and `max_backoff` when that is shorter).
    #[serde(with = "toolmesh_core::duration::option")]
    reconnect_delay: Option<Duration>,
    /// Accepted and ignored: logging is set up by the binary (`RUST_LOG`).
    #[allow(dead_code)]
    log_level: Option<String>,
    /// Accepted and ignored: metrics are always recorded; the binary exports them.
    #[allow(dead_code)]
    metrics_enabled: Option<bool>,
    /// `defaults.circuit_breaker`, key by key.
    circuit_breaker: BreakerOverrides,
}

impl GlobalSettings {
    fn apply_to(&self, base: &mut Defaults) {
        if let Some(timeout) = self.default_timeout {
            base.timeout = timeout;
        }
        if let Some(max) = self.max_concurrent_connections {
            base.bulkhead.max_concurrent = max;
        }
        if let Some(enabled) = self.health_check_enabled {
            base.health_check.enabled = enabled;
        }
        if let Some(delay) = self.reconnect_delay {
            let reconnect = &mut base.pool.reconnect;
            reconnect.initial_backoff = delay;
            reconnect.max_backoff = reconnect.max_backoff.max(delay);
        }
        self.circuit_breaker.apply_to(&mut base.circuit_breaker);
    }

    /// The `global_settings` key that sets something in `section` of `defaults`.
    pub(crate) fn key_for(section: &str) -> Option<&'static str> {
        Some(match section {
            "timeout" => "default_timeout",
            "bulkhead" => "max_concurrent_connections",
            "health_check" => "health_check_enabled",
            "pool" => "reconnect_delay",
            "circuit_breaker" => "circuit_breaker",
            _ => return None,
        })
    }
}

/// The resolved defaults: built-in, then `global_settings`, then `defaults`.
pub(crate) fn resolve(section: &DefaultsSection, global: Option<&GlobalSettings>) -> Defaults {
    let mut defaults = Defaults::default();
    if let Some(global) = global {
        global.apply_to(&mut defaults);
    }
    section.apply_to(&mut defaults);
    defaults
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_win_over_global_settings() {
        let section: DefaultsSection = serde_json::from_str(
            r#"{ "timeout": "5s", "circuit_breaker": { "failure_threshold": 9 } }"#,
        )
        .unwrap();
        let global: GlobalSettings = serde_json::from_str(
            r#"{ "default_timeout": 20, "reconnect_delay": 60, "log_level": "INFO",
                 "circuit_breaker": { "failure_threshold": 2, "half_open_max_calls": 7 } }"#,
        )
        .unwrap();
        let defaults = resolve(&section, Some(&global));
        assert_eq!(defaults.timeout, Duration::from_secs(5));
        assert_eq!(defaults.circuit_breaker.failure_threshold, 9);
        assert_eq!(defaults.circuit_breaker.half_open_max_calls, 7);
        assert_eq!(
            defaults.pool.reconnect.initial_backoff,
            Duration::from_secs(60)
        );
        assert_eq!(defaults.pool.reconnect.max_backoff, Duration::from_secs(60));
        assert_eq!(validate_sections(&defaults.instance_config()), Ok(()));
    }
}
