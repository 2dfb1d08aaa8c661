//! Retry budget: retries may add at most a fraction of the traffic, so that a failing
//! dependency does not get three times the load just when it can least take it.

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Settings of a [`RetryBudget`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryBudgetConfig {
    /// Retries allowed per first attempt in the window (0.2 = retries add at most 20%).
    pub ratio: f64,
    /// Retries allowed per second regardless of traffic, so that a quiet client can
    /// still retry.
    pub min_per_second: u32,
    /// How far back requests and retries are counted (ten fixed buckets).
    #[serde(with = "toolmesh_core::duration")]
    pub window: Duration,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 10,
            window: Duration::from_secs(10),
        }
    }
}

impl RetryBudgetConfig {
    /// Checks the settings; the message names the field and what it must be.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.ratio.is_finite() && self.ratio >= 0.0) {
            return Err(format!(
                "ratio must be a number of at least 0 (e.g. 0.2 lets retries add 20%), got {}",
                self.ratio
            ));
        }
        if self.window < Duration::from_millis(10) {
            return Err(format!(
                "window must be at least 10ms, got {:?}",
                self.window
            ));
        }
        Ok(())
    }
}

/// What a budget holds now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryBudgetStats {
    /// First attempts in the window.
    pub requests: u64,
    /// Retries withdrawn in the window.
    pub retries: u64,
    /// Retries the window allows in all (`min_per_second · window + ratio · requests`).
    pub allowed: f64,
    /// Retries refused since creation.
    pub denied: u64,
}

/// A retry budget shared by every caller of one dependency; cloning shares it.
///
/// Call [`record_request`](Self::record_request) for every first attempt and
/// [`try_retry`](Self::try_retry) before every retry. Uses tokio's clock.
#[derive(Clone)]
pub struct RetryBudget {
    shared: Arc<Shared>,
}

struct Shared {
    config: RetryBudgetConfig,
    /// `min_per_second · window`.
    floor: f64,
    epoch: Instant,
    state: Mutex<State>,
}

const BUCKETS: u64 = 10;

struct State {
    bucket_nanos: u64,
    head: u64,
    buckets: [Bucket; BUCKETS as usize],
    denied: u64,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    requests: u64,
    retries: u64,
}

impl State {
    fn advance(&mut self, at: u64) -> usize {
        let index = at / self.bucket_nanos;
        if index > self.head {
            if index - self.head >= BUCKETS {
                self.buckets = [Bucket::default(); BUCKETS as usize];
            } else {
                for i in self.head + 1..=index {
                    self.buckets[(i % BUCKETS) as usize] = Bucket::default();
                }
            }
            self.head = index;
        }
        (self.head % BUCKETS) as usize
    }

    fn totals(&self) -> (u64, u64) {
        self.buckets
            .iter()
            .fold((0, 0), |(q, r), b| (q + b.requests, r + b.retries))
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl RetryBudget {
    /// A budget with nothing recorded yet.
    pub fn new(config: RetryBudgetConfig) -> Self {
        let window_nanos = u64::try_from(config.window.as_nanos()).unwrap_or(u64::MAX);
        let floor = f64::from(config.min_per_second) * config.window.as_secs_f64();
        Self {
            shared: Arc::new(Shared {
                floor,
                epoch: Instant::now(),
                state: Mutex::new(State {
                    bucket_nanos: (window_nanos / BUCKETS).max(1),
                    head: 0,
                    buckets: [Bucket::default(); BUCKETS as usize],
                    denied: 0,
                }),
                config,
            }),
        }
    }

    fn with_state<R>(&self, f: impl FnOnce(&mut State, usize) -> R) -> R {
        let at = u64::try_from(self.shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = state.advance(at);
        f(&mut state, slot)
    }

    /// Counts a first attempt (which deposits `ratio` of a retry).
    pub fn record_request(&self) {
        self.with_state(|state, slot| state.buckets[slot].requests += 1);
    }

    /// Withdraws one retry if the window allows it; `false` means: do not retry.
    pub fn try_retry(&self) -> bool {
        let floor = self.shared.floor;
        let ratio = self.shared.config.ratio;
        self.with_state(|state, slot| {
            let (requests, retries) = state.totals();
            if (retries as f64) < floor + ratio * requests as f64 {
                state.buckets[slot].retries += 1;
                true
            } else {
                state.denied += 1;
                false
            }
        })
    }

    /// What the window holds now.
    pub fn stats(&self) -> RetryBudgetStats {
        let floor = self.shared.floor;
        let ratio = self.shared.config.ratio;
        self.with_state(|state, _| {
            let (requests, retries) = state.totals();
            RetryBudgetStats {
                requests,
                retries,
                allowed: floor + ratio * requests as f64,
                denied: state.denied,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storm(budget: &RetryBudget, requests: usize, retries_each: usize) -> usize {
        let mut granted = 0;
        for _ in 0..requests {
            budget.record_request();
            for _ in 0..retries_each {
                if budget.try_retry() {
                    granted += 1;
                } else {
                    break;
                }
            }
        }
        granted
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_storm_is_capped_at_the_ratio() {
        let budget = RetryBudget::new(RetryBudgetConfig {
            ratio: 0.2,
            min_per_second: 0,
            window: Duration::from_secs(10),
        });
        let granted = storm(&budget, 1000, 3);
        // 3000 retries wanted; 20% of 1000 requests allowed.
        assert!((199..=200).contains(&granted), "granted {granted}");
        assert!(budget.stats().denied >= 800);
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_allows_retries_without_traffic() {
        let budget = RetryBudget::new(RetryBudgetConfig::default());
        // 10/s over 10s = 100 retries, plus 20% of 1000 requests.
        let granted = storm(&budget, 1000, 3);
        assert!((299..=300).contains(&granted), "granted {granted}");
        let stats = budget.stats();
        assert_eq!(stats.requests, 1000);
        assert_eq!(stats.retries, granted as u64);
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_forgets_old_retries() {
        let budget = RetryBudget::new(RetryBudgetConfig {
            ratio: 0.0,
            min_per_second: 1,
            window: Duration::from_secs(10),
        });
        let granted = (0..20).filter(|_| budget.try_retry()).count();
        assert_eq!(granted, 10);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!budget.try_retry(), "still in the window");
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(budget.try_retry(), "old retries left the window");
    }

    #[test]
    fn validation() {
        assert!(RetryBudgetConfig::default().validate().is_ok());
        let bad = RetryBudgetConfig {
            ratio: -1.0,
            ..RetryBudgetConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("ratio"));
    }
}
