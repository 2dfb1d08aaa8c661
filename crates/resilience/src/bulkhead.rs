//! Bulkhead: a cap on calls in flight to one target, so a slow target cannot take every
//! task and connection with it.

use std::{fmt, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError},
    time::Instant,
};
use toolmesh_core::CallError;

/// Settings of a [`Bulkhead`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadConfig {
    /// Calls allowed in flight at once.
    pub max_concurrent: usize,
    /// How long a call may wait for a free slot; 0 (the default) fails fast.
    #[serde(with = "toolmesh_core::duration")]
    pub max_wait: Duration,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 64,
            max_wait: Duration::ZERO,
        }
    }
}

impl BulkheadConfig {
    /// Checks the settings; the message names the field and what it must be.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrent == 0 {
            return Err("max_concurrent must be at least 1".into());
        }
        if self.max_concurrent > Semaphore::MAX_PERMITS {
            return Err(format!(
                "max_concurrent must be at most {}, got {}",
                Semaphore::MAX_PERMITS,
                self.max_concurrent
            ));
        }
        Ok(())
    }
}

/// A concurrency limit on a tokio [`Semaphore`]; cloning shares it.
#[derive(Clone)]
pub struct Bulkhead {
    name: Arc<str>,
    limit: usize,
    max_wait: Duration,
    semaphore: Arc<Semaphore>,
}

/// One slot of a [`Bulkhead`], freed on drop.
#[derive(Debug)]
#[must_use = "the slot is freed when the permit is dropped"]
pub struct BulkheadPermit {
    _permit: OwnedSemaphorePermit,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Bulkhead {
    /// A bulkhead named `name` (it appears in errors). `max_concurrent` is clamped to
    /// `1..=Semaphore::MAX_PERMITS`; call [`BulkheadConfig::validate`] to reject it instead.
    pub fn new(name: impl Into<Arc<str>>, config: BulkheadConfig) -> Self {
        let limit = config.max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            name: name.into(),
            limit,
            max_wait: config.max_wait,
            semaphore: Arc::new(Semaphore::new(limit)),
        }
    }

    /// The bulkhead's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Calls allowed at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Calls holding a permit now.
    pub fn in_flight(&self) -> usize {
        self.limit
            .saturating_sub(self.semaphore.available_permits())
    }

    fn full(&self) -> CallError {
        CallError::BulkheadFull {
            target: self.name.clone(),
            limit: self.limit,
        }
    }

    /// A slot now, or [`CallError::BulkheadFull`].
    pub fn try_acquire(&self) -> Result<BulkheadPermit, CallError> {
        match self.semaphore.clone().try_acquire_owned() {
            Ok(permit) => Ok(BulkheadPermit { _permit: permit }),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => Err(self.full()),
        }
    }

    /// A slot, waiting for one at most `max_wait` and never past `deadline`
    /// (first come, first served); [`CallError::BulkheadFull`] if none frees in time.
    pub async fn acquire(&self, deadline: Instant) -> Result<BulkheadPermit, CallError> {
        match self.try_acquire() {
            Ok(permit) => return Ok(permit),
            Err(full) if self.max_wait.is_zero() => return Err(full),
            Err(_) => {}
        }
        let until = deadline.min(toolmesh_core::duration::deadline_after(self.max_wait));
        match tokio::time::timeout_at(until, self.semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(BulkheadPermit { _permit: permit }),
            Ok(Err(_)) | Err(_) => Err(self.full()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[tokio::test(start_paused = true)]
    async fn fails_fast_when_full() {
        let b = Bulkhead::new(
            "inst-a",
            BulkheadConfig {
                max_concurrent: 2,
                max_wait: Duration::ZERO,
            },
        );
        let p1 = b.acquire(far()).await.unwrap();
        let _p2 = b.acquire(far()).await.unwrap();
        assert_eq!(b.in_flight(), 2);
        let start = Instant::now();
        let err = b.acquire(far()).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert!(matches!(err, CallError::BulkheadFull { limit: 2, .. }));
        let msg = err.to_string();
        assert!(msg.contains("inst-a") && msg.contains("2 calls"), "{msg}");
        drop(p1);
        assert_eq!(b.in_flight(), 1);
        assert!(b.try_acquire().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_a_slot_within_max_wait() {
        let b = Bulkhead::new(
            "inst",
            BulkheadConfig {
                max_concurrent: 1,
                max_wait: Duration::from_secs(1),
            },
        );
        let held = b.acquire(far()).await.unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            drop(held);
        });
        let start = Instant::now();
        let _permit = b.acquire(far()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_wait() {
        let b = Bulkhead::new(
            "inst",
            BulkheadConfig {
                max_concurrent: 1,
                max_wait: Duration::from_secs(1),
            },
        );
        let _held = b.acquire(far()).await.unwrap();
        let start = Instant::now();
        assert!(b.acquire(far()).await.is_err());
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_bounds_the_wait() {
        let b = Bulkhead::new(
            "inst",
            BulkheadConfig {
                max_concurrent: 1,
                max_wait: Duration::from_secs(10),
            },
        );
        let _held = b.acquire(far()).await.unwrap();
        let start = Instant::now();
        let deadline = start + Duration::from_millis(250);
        let err = b.acquire(deadline).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_millis(250));
        assert!(matches!(err, CallError::BulkheadFull { .. }));
    }

    #[test]
    fn validation() {
        assert!(BulkheadConfig::default().validate().is_ok());
        let bad = BulkheadConfig {
            max_concurrent: 0,
            ..BulkheadConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            "max_concurrent must be at least 1"
        );
    }
}
