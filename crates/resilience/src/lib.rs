#![doc = include_str!("../README.md")]

mod breaker;
mod budget;
mod bulkhead;
mod cache;
mod hedge;
mod rate_limit;

pub use breaker::{
    Admission, BreakerConfig, BreakerEvent, BreakerState, BreakerStats, CircuitBreaker,
};
pub use budget::{RetryBudget, RetryBudgetConfig, RetryBudgetStats};
pub use bulkhead::{Bulkhead, BulkheadConfig, BulkheadPermit};
pub use cache::{CacheConfig, Cached, ResultCache};
pub use hedge::hedge;
pub use rate_limit::{RateLimitConfig, RateLimiter, SWEEP_EVERY, TokioClock};

/// governor clocks, for [`RateLimiter::with_clock`]: [`FakeRelativeClock`] for tests,
/// [`MonotonicClock`] for the OS clock without tokio.
pub use governor::clock::{Clock as RateLimitClock, FakeRelativeClock, MonotonicClock};
