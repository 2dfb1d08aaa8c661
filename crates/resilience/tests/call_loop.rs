//! The policies composed the way a router uses them: admit through the breaker and the
//! bulkhead, retry on the schedule while the budget and the deadline allow, hedge slow
//! calls. On tokio's paused clock, so every timing is exact.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::time::{Instant, sleep};
use toolmesh_core::{CallError, Phase};
use toolmesh_resilience::{
    BreakerConfig, BreakerState, Bulkhead, BulkheadConfig, CircuitBreaker, RetryBudget,
    RetryBudgetConfig, RetryPolicy, hedge,
};

struct Target {
    breaker: CircuitBreaker,
    bulkhead: Bulkhead,
    calls: AtomicUsize,
    /// Calls numbered below this fail.
    failing_until: usize,
}

impl Target {
    fn new(failing_until: usize) -> Self {
        Self::with_threshold(failing_until, 3)
    }

    fn with_threshold(failing_until: usize, failure_threshold: u32) -> Self {
        Self {
            breaker: CircuitBreaker::new(
                "fixture#1",
                BreakerConfig {
                    failure_threshold,
                    recovery_timeout: Duration::from_secs(5),
                    ..BreakerConfig::default()
                },
            ),
            bulkhead: Bulkhead::new("fixture#1", BulkheadConfig::default()),
            calls: AtomicUsize::new(0),
            failing_until,
        }
    }

    async fn call(&self, deadline: Instant) -> Result<usize, CallError> {
        let admission = self.breaker.admit()?;
        let _permit = self.bulkhead.acquire(deadline).await?;
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        sleep(Duration::from_millis(10)).await;
        if n < self.failing_until {
            admission.failure();
            Err(CallError::Connect {
                target: "fixture#1".into(),
                reason: "connection refused".into(),
            })
        } else {
            admission.success();
            Ok(n)
        }
    }
}

async fn call_with_retries(
    target: &Target,
    policy: &RetryPolicy,
    budget: &RetryBudget,
    deadline: Instant,
) -> Result<usize, CallError> {
    budget.record_request();
    let mut delays = policy.delays(deadline);
    loop {
        match target.call(deadline).await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && e.phase() == Phase::BeforeSend => match delays.next() {
                Some(delay) if budget.try_retry() => sleep(delay).await,
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        jitter: false,
        ..RetryPolicy::default()
    }
}

#[tokio::test(start_paused = true)]
async fn retries_ride_out_a_short_outage() {
    let target = Target::new(2);
    let budget = RetryBudget::new(RetryBudgetConfig::default());
    let t0 = Instant::now();
    let result = call_with_retries(&target, &policy(), &budget, t0 + Duration::from_secs(5)).await;
    assert_eq!(result.unwrap(), 2);
    // 3 calls of 10ms, sleeps of 100ms and 200ms.
    assert_eq!(t0.elapsed(), Duration::from_millis(330));
    assert_eq!(target.breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_ends_retries_against_a_dead_target_then_recovers() {
    let target = Target::new(3);
    let budget = RetryBudget::new(RetryBudgetConfig::default());
    let t0 = Instant::now();
    let err = call_with_retries(&target, &policy(), &budget, t0 + Duration::from_secs(5))
        .await
        .unwrap_err();
    // Three failures open the breaker; the fourth attempt is refused without a call.
    assert!(matches!(err, CallError::CircuitOpen { .. }), "{err}");
    assert_eq!(target.calls.load(Ordering::SeqCst), 3);
    assert_eq!(target.breaker.stats().trips, 1);

    sleep(Duration::from_secs(5)).await;
    let result = call_with_retries(
        &target,
        &policy(),
        &budget,
        Instant::now() + Duration::from_secs(5),
    )
    .await;
    assert_eq!(result.unwrap(), 3, "a half-open probe got through");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_the_schedule_short() {
    // Breaker out of the way: only the deadline stops this.
    let target = Target::with_threshold(usize::MAX, u32::MAX);
    let budget = RetryBudget::new(RetryBudgetConfig::default());
    let policy = RetryPolicy {
        max_attempts: 10,
        ..policy()
    };
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_millis(500);
    let err = call_with_retries(&target, &policy, &budget, deadline)
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Connect { .. }));
    // Calls at 0, 110, 320 (then 400ms more would start at 730 > 500).
    assert_eq!(target.calls.load(Ordering::SeqCst), 3);
    assert!(Instant::now() <= deadline);
}

#[tokio::test(start_paused = true)]
async fn hedging_a_slow_instance() {
    let started = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let latencies = [Duration::from_secs(2), Duration::from_millis(40)];
    let result: Result<usize, CallError> = hedge(Duration::from_millis(50), 2, |n| {
        started.fetch_add(1, Ordering::SeqCst);
        async move {
            sleep(latencies[n]).await;
            Ok(n)
        }
    })
    .await;
    assert_eq!(result.unwrap(), 1);
    assert_eq!(t0.elapsed(), Duration::from_millis(90));
    assert_eq!(started.load(Ordering::SeqCst), 2);
}
