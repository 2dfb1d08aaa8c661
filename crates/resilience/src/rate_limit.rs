//! Keyed rate limiting (GCRA, from governor): one budget per key — a tool, a principal,
//! an instance, or any combination the caller folds into the key.

use std::{
    fmt,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use governor::{
    Quota, clock::Clock, middleware::NoOpMiddleware, nanos::Nanos, state::keyed::DashMapStateStore,
};
use serde::{Deserialize, Serialize};
use toolmesh_core::CallError;

/// Settings of a [`RateLimiter`]: each key gets `per_second` calls a second on average,
/// and up to `burst` at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained calls per second per key.
    pub per_second: u32,
    /// Calls a key may make at once after being idle.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_second: 100,
            burst: 100,
        }
    }
}

impl RateLimitConfig {
    /// Checks the settings; the message names the field and what it must be.
    pub fn validate(&self) -> Result<(), String> {
        if self.per_second == 0 {
            return Err("per_second must be at least 1".into());
        }
        if self.burst == 0 {
            return Err("burst must be at least 1".into());
        }
        Ok(())
    }

    fn quota(&self) -> Quota {
        let per_second = NonZeroU32::new(self.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(per_second).allow_burst(burst)
    }
}

/// governor's clock reading tokio's time, so limits follow
/// `#[tokio::test(start_paused = true)]` and `tokio::time::advance` like every other
/// policy here. Reads the OS clock when tokio's is not paused.
#[derive(Debug, Clone)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::new(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

type Limiter<C> = governor::RateLimiter<
    Arc<str>,
    DashMapStateStore<Arc<str>>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// A keyed rate limiter; cloning shares it.
///
/// State is kept per key in a dashmap: every [`SWEEP_EVERY`] checks it forgets the keys
/// whose budget is full again, so many callers seen once do not stay in memory
/// ([`retain_recent`](Self::retain_recent) does the same on demand).
pub struct RateLimiter<C: Clock = TokioClock> {
    limiter: Arc<Limiter<C>>,
    checks: Arc<AtomicU64>,
}

/// Checks between two sweeps of idle keys (amortized: a sweep visits every key).
pub const SWEEP_EVERY: u64 = 4096;

impl<C: Clock> Clone for RateLimiter<C> {
    fn clone(&self) -> Self {
        Self {
            limiter: self.limiter.clone(),
            checks: self.checks.clone(),
        }
    }
}

impl<C: Clock> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("keys", &self.limiter.len())
            .finish_non_exhaustive()
    }
}

impl RateLimiter<TokioClock> {
    /// A limiter on tokio's clock. Zero settings are treated as 1; call
    /// [`RateLimitConfig::validate`] to reject them instead.
    pub fn new(config: RateLimitConfig) -> Self {
        Self::with_clock(config, TokioClock::default())
    }
}

impl<C: Clock> RateLimiter<C> {
    /// A limiter on any governor clock, e.g. [`FakeRelativeClock`](crate::FakeRelativeClock)
    /// in tests or [`MonotonicClock`](crate::MonotonicClock).
    pub fn with_clock(config: RateLimitConfig, clock: C) -> Self {
        Self {
            limiter: Arc::new(governor::RateLimiter::dashmap_with_clock(
                config.quota(),
                clock,
            )),
            checks: Arc::default(),
        }
    }

    /// Takes one call from `key`'s budget, or says when the next one may pass with
    /// [`CallError::RateLimited`] (`retry_in` > 0). Copies `key` for the lookup; use
    /// [`check_key`](Self::check_key) with a shared key to avoid that.
    pub fn check(&self, key: &str) -> Result<(), CallError> {
        self.check_key(&Arc::from(key))
    }

    /// [`check`](Self::check) for a key the caller already holds as `Arc<str>`.
    pub fn check_key(&self, key: &Arc<str>) -> Result<(), CallError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let retry_in = not_until.wait_time_from(self.limiter.clock().now());
            CallError::RateLimited {
                key: key.clone(),
                retry_in: retry_in.max(Duration::from_nanos(1)),
            }
        })
    }

    /// Forgets keys whose budget is full again (indistinguishable from a new key).
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Keys held (approximate while calls run).
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeRelativeClock;

    fn config() -> RateLimitConfig {
        RateLimitConfig {
            per_second: 10,
            burst: 3,
        }
    }

    fn retry_in(err: CallError) -> Duration {
        match err {
            CallError::RateLimited { retry_in, .. } => retry_in,
            other => panic!("expected RateLimited, got {other:?}"),
        }
    }

    #[test]
    fn burst_then_refusal_with_fake_clock() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(config(), clock.clone());
        for _ in 0..3 {
            limiter.check("tool:search").unwrap();
        }
        let err = limiter.check("tool:search").unwrap_err();
        assert!(err.to_string().contains("tool:search"), "{err}");
        assert_eq!(retry_in(err), Duration::from_millis(100));
        clock.advance(Duration::from_millis(60));
        assert_eq!(
            retry_in(limiter.check("tool:search").unwrap_err()),
            Duration::from_millis(40)
        );
        clock.advance(Duration::from_millis(40));
        limiter.check("tool:search").unwrap();
        assert!(limiter.check("tool:search").is_err());
    }

    #[test]
    fn keys_are_independent() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(config(), clock.clone());
        for _ in 0..3 {
            limiter.check("principal:alice").unwrap();
        }
        assert!(limiter.check("principal:alice").is_err());
        let bob: Arc<str> = Arc::from("principal:bob");
        for _ in 0..3 {
            limiter.check_key(&bob).unwrap();
        }
        assert!(limiter.check_key(&bob).is_err());
        assert_eq!(limiter.len(), 2);
        clock.advance(Duration::from_secs(1));
        limiter.retain_recent();
        assert!(limiter.is_empty());
    }

    #[test]
    fn idle_keys_are_forgotten_as_checks_go_on() {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(config(), clock.clone());
        for i in 0..1000 {
            limiter.check(&format!("principal:{i}")).unwrap();
        }
        assert_eq!(limiter.len(), 1000);
        clock.advance(Duration::from_secs(1));
        // One caller keeps calling; the others, idle and full again, are swept.
        let busy: Arc<str> = Arc::from("principal:busy");
        for _ in 0..SWEEP_EVERY {
            let _ = limiter.check_key(&busy);
        }
        assert!(limiter.len() <= 1, "{} keys kept", limiter.len());
    }

    #[tokio::test(start_paused = true)]
    async fn follows_paused_tokio_time() {
        let limiter = RateLimiter::new(config());
        for _ in 0..3 {
            limiter.check("instance:a").unwrap();
        }
        let wait = retry_in(limiter.check("instance:a").unwrap_err());
        assert_eq!(wait, Duration::from_millis(100));
        tokio::time::advance(wait).await;
        limiter.check("instance:a").unwrap();
    }

    #[test]
    fn validation() {
        assert!(RateLimitConfig::default().validate().is_ok());
        let bad = RateLimitConfig {
            burst: 0,
            ..config()
        };
        assert_eq!(bad.validate().unwrap_err(), "burst must be at least 1");
    }
}
