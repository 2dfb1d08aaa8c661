//! Per-server changes to the `pool`, `health_check`, `circuit_breaker` and `bulkhead`
//! sections of `defaults`: every key is optional, and only the keys given replace the
//! default's (so `pool: { max_sessions: 8 }` keeps the default `min_sessions`).
//!
//! The keys and aliases are those of [`PoolConfig`], [`HealthCheckConfig`],
//! [`BreakerConfig`] and [`BulkheadConfig`]; a test checks that every key of those
//! is covered here.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use toolmesh_pool::{HealthCheckConfig, HealthCheckMethod, PoolConfig, ReconnectConfig};
use toolmesh_resilience::{BreakerConfig, BulkheadConfig};

/// Replaces `slot` when `value` is given.
fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
    if let Some(value) = value {
        *slot = value.clone();
    }
}

/// Changes to [`PoolConfig`] (a server's or `defaults`' `pool`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolOverrides {
    /// Sessions kept open even when idle (`min_connections` is accepted too).
    #[serde(alias = "min_connections", skip_serializing_if = "Option::is_none")]
    pub min_sessions: Option<usize>,
    /// Most sessions (`max_connections` is accepted too).
    #[serde(alias = "max_connections", skip_serializing_if = "Option::is_none")]
    pub max_sessions: Option<usize>,
    /// Calls one session carries before another is opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_requests_per_session: Option<usize>,
    /// Longest wait for a session when all are busy (`connection_timeout` is accepted too).
    #[serde(
        with = "toolmesh_core::duration::option",
        alias = "connection_timeout",
        skip_serializing_if = "Option::is_none"
    )]
    pub acquire_timeout: Option<Duration>,
    /// Sessions above `min_sessions` idle this long are closed.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_idle_time: Option<Duration>,
    /// Ping a session before each use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validate_on_acquire: Option<bool>,
    /// Backoff between reconnect attempts.
    #[serde(skip_serializing_if = "ReconnectOverrides::is_unset")]
    pub reconnect: ReconnectOverrides,
    /// How long a shutdown waits for in-flight calls.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub drain_timeout: Option<Duration>,
}

impl PoolOverrides {
    /// Replaces the keys given here in `base`.
    pub fn apply_to(&self, base: &mut PoolConfig) {
        set(&mut base.min_sessions, &self.min_sessions);
        set(&mut base.max_sessions, &self.max_sessions);
        set(
            &mut base.max_requests_per_session,
            &self.max_requests_per_session,
        );
        set(&mut base.acquire_timeout, &self.acquire_timeout);
        set(&mut base.max_idle_time, &self.max_idle_time);
        set(&mut base.validate_on_acquire, &self.validate_on_acquire);
        self.reconnect.apply_to(&mut base.reconnect);
        set(&mut base.drain_timeout, &self.drain_timeout);
    }

    /// Whether no key is given.
    pub fn is_unset(&self) -> bool {
        self == &Self::default()
    }
}

/// Changes to [`ReconnectConfig`] (`pool.reconnect`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconnectOverrides {
    /// First delay.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub initial_backoff: Option<Duration>,
    /// Longest delay.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_backoff: Option<Duration>,
}

impl ReconnectOverrides {
    /// Replaces the keys given here in `base`.
    pub fn apply_to(&self, base: &mut ReconnectConfig) {
        set(&mut base.initial_backoff, &self.initial_backoff);
        set(&mut base.max_backoff, &self.max_backoff);
    }

    /// Whether no key is given.
    pub fn is_unset(&self) -> bool {
        self == &Self::default()
    }
}

/// Changes to [`HealthCheckConfig`] (`health_check`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheckOverrides {
    /// Whether checks run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Time between checks.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    /// Deadline of one check.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Consecutive failed checks that make the instance unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    /// Consecutive passed checks that make it healthy again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
    /// What a check asks: `ping` or `list_tools`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<HealthCheckMethod>,
}

impl HealthCheckOverrides {
    /// Replaces the keys given here in `base`.
    pub fn apply_to(&self, base: &mut HealthCheckConfig) {
        set(&mut base.enabled, &self.enabled);
        set(&mut base.interval, &self.interval);
        set(&mut base.timeout, &self.timeout);
        set(&mut base.failure_threshold, &self.failure_threshold);
        set(&mut base.success_threshold, &self.success_threshold);
        set(&mut base.method, &self.method);
    }

    /// Whether no key is given.
    pub fn is_unset(&self) -> bool {
        self == &Self::default()
    }
}

/// Changes to [`BreakerConfig`] (`circuit_breaker`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerOverrides {
    /// Consecutive failures that open a closed breaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    /// How long an open breaker refuses calls before it lets probes through.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub recovery_timeout: Option<Duration>,
    /// Probes a half-open breaker lets through at the same time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub half_open_max_calls: Option<u32>,
    /// Successful probes that close a half-open breaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
    /// Also open when the failure rate over `window` reaches this fraction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    /// Length of the sliding window for `failure_rate`.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
    /// Calls the window must hold before `failure_rate` can open the breaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_calls: Option<u32>,
}

impl BreakerOverrides {
    /// Replaces the keys given here in `base`.
    pub fn apply_to(&self, base: &mut BreakerConfig) {
        set(&mut base.failure_threshold, &self.failure_threshold);
        set(&mut base.recovery_timeout, &self.recovery_timeout);
        set(&mut base.half_open_max_calls, &self.half_open_max_calls);
        set(&mut base.success_threshold, &self.success_threshold);
        if self.failure_rate.is_some() {
            base.failure_rate = self.failure_rate;
        }
        set(&mut base.window, &self.window);
        set(&mut base.min_calls, &self.min_calls);
    }

    /// Whether no key is given.
    pub fn is_unset(&self) -> bool {
        self == &Self::default()
    }
}

/// Changes to [`BulkheadConfig`] (`bulkhead`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadOverrides {
    /// Calls allowed in flight at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<usize>,
    /// How long a call may wait for a free slot.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_wait: Option<Duration>,
}

impl BulkheadOverrides {
    /// Replaces the keys given here in `base`.
    pub fn apply_to(&self, base: &mut BulkheadConfig) {
        set(&mut base.max_concurrent, &self.max_concurrent);
        set(&mut base.max_wait, &self.max_wait);
    }

    /// Whether no key is given.
    pub fn is_unset(&self) -> bool {
        self == &Self::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every key of the full section is a key here, and applying all of them onto the
    /// default reproduces the section: nothing of the pool or resilience crates' config
    /// is missing from the overrides.
    fn covers<Full, Over>(full: &Full, apply: impl Fn(&Over, &mut Full))
    where
        Full: Serialize + Default + PartialEq + std::fmt::Debug,
        Over: for<'de> Deserialize<'de>,
    {
        assert_ne!(full, &Full::default(), "change every field in the test");
        let json = serde_json::to_value(full).unwrap();
        let over: Over = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("overrides reject {json}: {e}"));
        let mut base = Full::default();
        apply(&over, &mut base);
        assert_eq!(&base, full);
    }

    #[test]
    fn overrides_cover_every_key() {
        let d = Duration::from_millis;
        covers(
            &PoolConfig {
                min_sessions: 2,
                max_sessions: 9,
                max_requests_per_session: 7,
                acquire_timeout: d(1234),
                max_idle_time: d(4321),
                validate_on_acquire: true,
                reconnect: ReconnectConfig {
                    initial_backoff: d(7),
                    max_backoff: d(77_000),
                },
                drain_timeout: d(999),
            },
            PoolOverrides::apply_to,
        );
        covers(
            &HealthCheckConfig {
                enabled: false,
                interval: d(11_000),
                timeout: d(1_100),
                failure_threshold: 9,
                success_threshold: 8,
                method: HealthCheckMethod::ListTools,
            },
            HealthCheckOverrides::apply_to,
        );
        covers(
            &BreakerConfig {
                failure_threshold: 11,
                recovery_timeout: d(12_000),
                half_open_max_calls: 13,
                success_threshold: 14,
                failure_rate: Some(0.25),
                window: d(15_000),
                min_calls: 16,
            },
            BreakerOverrides::apply_to,
        );
        covers(
            &BulkheadConfig {
                max_concurrent: 3,
                max_wait: d(250),
            },
            BulkheadOverrides::apply_to,
        );
    }

    #[test]
    fn only_given_keys_change() {
        let mut pool = PoolConfig {
            min_sessions: 3,
            ..PoolConfig::default()
        };
        PoolOverrides {
            max_sessions: Some(8),
            ..PoolOverrides::default()
        }
        .apply_to(&mut pool);
        assert_eq!((pool.min_sessions, pool.max_sessions), (3, 8));
        assert_eq!(pool.acquire_timeout, PoolConfig::default().acquire_timeout);
    }
}
