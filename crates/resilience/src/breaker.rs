//! Circuit breaker: stop sending calls to something that keeps failing, then probe it.
//!
//! The closed-state hot path (`admit` + `success`/`failure` below the threshold) touches
//! atomics only. Transitions, half-open probe accounting and the optional failure-rate
//! window take a small mutex that is never held across an `.await`.

use std::{
    fmt,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{sync::broadcast, time::Instant};
use toolmesh_core::CallError;

use self::window::Window;

mod window;

/// Settings of a [`CircuitBreaker`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures that open a closed breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before it lets probes through.
    #[serde(with = "toolmesh_core::duration")]
    pub recovery_timeout: Duration,
    /// Probes a half-open breaker lets through at the same time.
    pub half_open_max_calls: u32,
    /// Successful probes that close a half-open breaker.
    pub success_threshold: u32,
    /// Also open when the failure rate over `window` reaches this fraction (0 < rate ≤ 1),
    /// once at least `min_calls` calls were seen there. `None` (the default) turns the
    /// rate check off, which keeps every closed-state outcome lock-free.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    /// Length of the sliding window for `failure_rate` (ten fixed buckets).
    #[serde(with = "toolmesh_core::duration")]
    pub window: Duration,
    /// Calls the window must hold before `failure_rate` can open the breaker.
    pub min_calls: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            recovery_timeout: Duration::from_secs(60),
            half_open_max_calls: 3,
            success_threshold: 2,
            failure_rate: None,
            window: Duration::from_secs(10),
            min_calls: 10,
        }
    }
}

impl BreakerConfig {
    /// Checks the settings; the message names the field and what it must be.
    pub fn validate(&self) -> Result<(), String> {
        if self.failure_threshold == 0 {
            return Err("failure_threshold must be at least 1".into());
        }
        if self.half_open_max_calls == 0 {
            return Err("half_open_max_calls must be at least 1".into());
        }
        if self.success_threshold == 0 {
            return Err("success_threshold must be at least 1".into());
        }
        if let Some(rate) = self.failure_rate {
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(format!(
                    "failure_rate must be greater than 0 and at most 1 (e.g. 0.5 for 50%), got {rate}"
                ));
            }
            if self.window.is_zero() {
                return Err("window must be longer than 0 when failure_rate is set".into());
            }
            if self.min_calls == 0 {
                return Err("min_calls must be at least 1 when failure_rate is set".into());
            }
        }
        Ok(())
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls pass; failures are counted.
    Closed,
    /// Calls are refused until the recovery timeout has passed.
    Open,
    /// A few probe calls pass; their outcome closes or re-opens the breaker.
    HalfOpen,
}

impl BreakerState {
    fn from_bits(bits: u64) -> Self {
        match bits & STATE_MASK {
            CLOSED => BreakerState::Closed,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    fn bits(self) -> u64 {
        match self {
            BreakerState::Closed => CLOSED,
            BreakerState::Open => OPEN,
            BreakerState::HalfOpen => HALF_OPEN,
        }
    }

    /// Snake-case label, e.g. for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change, published to [`CircuitBreaker::subscribe`] receivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerEvent {
    /// The breaker's name.
    pub breaker: Arc<str>,
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
}

/// Counters of a breaker, cheap to take and ready to serialize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerStats {
    /// Current state.
    pub state: BreakerState,
    /// Failures since the last success while closed.
    pub consecutive_failures: u32,
    /// Successes recorded since creation or [`reset`](CircuitBreaker::reset).
    pub total_successes: u64,
    /// Failures recorded since creation or reset.
    pub total_failures: u64,
    /// Calls refused by [`admit`](CircuitBreaker::admit).
    pub rejected: u64,
    /// Times the breaker opened (including re-opening from half-open and forced opens).
    pub trips: u64,
    /// Time since the last state change; `None` if it never changed.
    #[serde(serialize_with = "toolmesh_core::duration::option::serialize")]
    pub since_last_transition: Option<Duration>,
    /// Whether the breaker is held open by [`force_open`](CircuitBreaker::force_open).
    pub forced_open: bool,
}

// The state word: state in the low two bits, a generation counter (bumped on every
// transition) above them. One atomic load tells both.
const STATE_MASK: u64 = 0b11;
const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;

/// Sentinel of `retry_at` while the breaker is forced open.
const FORCED: u64 = u64::MAX;

const WINDOW_BUCKETS: usize = 10;

/// A circuit breaker; cloning shares it.
///
/// Closed → Open after `failure_threshold` consecutive failures, or when the failure rate
/// over the window reaches `failure_rate` (with at least `min_calls` calls). Open → HalfOpen
/// lazily, on the first [`admit`](Self::admit) after `recovery_timeout`. HalfOpen lets at
/// most `half_open_max_calls` probes run at once, closes after `success_threshold`
/// successes and re-opens on any failure.
///
/// Outcomes of calls admitted before a transition do not decide a later half-open state:
/// only probes admitted in that half-open state (or passive
/// [`record_success`](Self::record_success)/[`record_failure`](Self::record_failure))
/// close or re-open it.
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

struct Shared {
    name: Arc<str>,
    config: BreakerConfig,
    word: AtomicU64,
    consecutive_failures: AtomicU32,
    total_successes: AtomicU64,
    total_failures: AtomicU64,
    rejected: AtomicU64,
    trips: AtomicU64,
    /// Nanoseconds after `epoch` at which an open breaker lets a probe through.
    retry_at: AtomicU64,
    epoch: Instant,
    inner: Mutex<Inner>,
    events: broadcast::Sender<BreakerEvent>,
}

struct Inner {
    probes_in_flight: u32,
    half_open_successes: u32,
    forced_open: bool,
    last_transition: Option<Instant>,
    window: Option<Window>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// A closed breaker. `name` appears in errors and events (e.g. the instance id).
    ///
    /// Zero thresholds are treated as 1; call [`BreakerConfig::validate`] to reject them.
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig) -> Self {
        let window = config
            .failure_rate
            .map(|_| Window::new(config.window, WINDOW_BUCKETS));
        let (events, _) = broadcast::channel(64);
        Self {
            shared: Arc::new(Shared {
                name: name.into(),
                config,
                word: AtomicU64::new(CLOSED),
                consecutive_failures: AtomicU32::new(0),
                total_successes: AtomicU64::new(0),
                total_failures: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                trips: AtomicU64::new(0),
                retry_at: AtomicU64::new(0),
                epoch: Instant::now(),
                inner: Mutex::new(Inner {
                    probes_in_flight: 0,
                    half_open_successes: 0,
                    forced_open: false,
                    last_transition: None,
                    window,
                }),
                events,
            }),
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &Arc<str> {
        &self.shared.name
    }

    /// The settings it runs with.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// Asks to make a call. Refused with [`CallError::CircuitOpen`] while open (its
    /// `retry_in` says when a probe may pass) or while half-open with every probe slot
    /// taken (`retry_in` zero: a slot frees as soon as a probe finishes).
    ///
    /// Report the outcome on the returned [`Admission`]; dropping it unreported frees a
    /// probe slot without counting anything.
    #[inline]
    pub fn admit(&self) -> Result<Admission, CallError> {
        let word = self.shared.word.load(Ordering::Acquire);
        if word & STATE_MASK == CLOSED {
            return Ok(Admission {
                breaker: self.clone(),
                word,
                probe: false,
                done: false,
            });
        }
        self.admit_slow()
    }

    #[cold]
    fn admit_slow(&self) -> Result<Admission, CallError> {
        let shared = &*self.shared;
        let now = Instant::now();
        let word = shared.word.load(Ordering::Acquire);
        if word & STATE_MASK == OPEN {
            // Refuse without the lock while the recovery timeout runs.
            let retry_at = shared.retry_at.load(Ordering::Acquire);
            let now_n = shared.nanos(now);
            if retry_at == FORCED || now_n < retry_at {
                return Err(self.refuse(retry_at, now_n));
            }
        }
        let mut inner = shared.lock();
        let word = shared.word.load(Ordering::Acquire);
        match BreakerState::from_bits(word) {
            BreakerState::Closed => Ok(Admission {
                breaker: self.clone(),
                word,
                probe: false,
                done: false,
            }),
            BreakerState::Open => {
                let retry_at = shared.retry_at.load(Ordering::Acquire);
                let now_n = shared.nanos(now);
                if retry_at == FORCED || now_n < retry_at {
                    return Err(self.refuse(retry_at, now_n));
                }
                let word = shared.transition(&mut inner, BreakerState::HalfOpen, now);
                inner.probes_in_flight = 1;
                Ok(Admission {
                    breaker: self.clone(),
                    word,
                    probe: true,
                    done: false,
                })
            }
            BreakerState::HalfOpen => {
                if inner.probes_in_flight < shared.config.half_open_max_calls.max(1) {
                    inner.probes_in_flight += 1;
                    Ok(Admission {
                        breaker: self.clone(),
                        word,
                        probe: true,
                        done: false,
                    })
                } else {
                    shared.rejected.fetch_add(1, Ordering::Relaxed);
                    Err(CallError::CircuitOpen {
                        target: shared.name.clone(),
                        retry_in: Duration::ZERO,
                    })
                }
            }
        }
    }

    fn refuse(&self, retry_at: u64, now_n: u64) -> CallError {
        let shared = &*self.shared;
        shared.rejected.fetch_add(1, Ordering::Relaxed);
        let retry_in = if retry_at == FORCED {
            shared.config.recovery_timeout
        } else {
            Duration::from_nanos(retry_at.saturating_sub(now_n))
        };
        CallError::CircuitOpen {
            target: shared.name.clone(),
            retry_in,
        }
    }

    /// Records a success observed without an admission (e.g. a health check).
    /// In half-open it counts toward `success_threshold`.
    pub fn record_success(&self) {
        self.shared.on_success(None, false);
    }

    /// Records a failure observed without an admission (e.g. a health check or a dropped
    /// connection). In half-open it re-opens the breaker.
    pub fn record_failure(&self) {
        self.shared.on_failure(None, false);
    }

    /// The current state. An open breaker whose recovery timeout has passed still reads
    /// `Open` until the next [`admit`](Self::admit) moves it to half-open.
    pub fn state(&self) -> BreakerState {
        BreakerState::from_bits(self.shared.word.load(Ordering::Acquire))
    }

    /// Counters and state.
    pub fn stats(&self) -> BreakerStats {
        let shared = &*self.shared;
        let (since_last_transition, forced_open) = {
            let inner = shared.lock();
            (
                inner.last_transition.map(|t| t.elapsed()),
                inner.forced_open,
            )
        };
        BreakerStats {
            state: self.state(),
            consecutive_failures: shared.consecutive_failures.load(Ordering::Relaxed),
            total_successes: shared.total_successes.load(Ordering::Relaxed),
            total_failures: shared.total_failures.load(Ordering::Relaxed),
            rejected: shared.rejected.load(Ordering::Relaxed),
            trips: shared.trips.load(Ordering::Relaxed),
            since_last_transition,
            forced_open,
        }
    }

    /// Opens the breaker and holds it open (no probes) until
    /// [`force_close`](Self::force_close) or [`reset`](Self::reset): for taking an
    /// instance out of rotation by hand.
    pub fn force_open(&self) {
        let shared = &*self.shared;
        let mut inner = shared.lock();
        inner.forced_open = true;
        shared.transition(&mut inner, BreakerState::Open, Instant::now());
        // After `transition` set the recovery deadline (or when already open).
        shared.retry_at.store(FORCED, Ordering::Release);
    }

    /// Closes the breaker, lifting a forced open, and clears the failure counts that
    /// decide the next trip. Totals are kept.
    pub fn force_close(&self) {
        let shared = &*self.shared;
        let mut inner = shared.lock();
        inner.forced_open = false;
        shared.transition(&mut inner, BreakerState::Closed, Instant::now());
        shared.clear_closed_counts(&mut inner);
    }

    /// Back to a new breaker's state: closed, every counter zero (an event is still
    /// published if the state changes).
    pub fn reset(&self) {
        let shared = &*self.shared;
        let mut inner = shared.lock();
        inner.forced_open = false;
        shared.transition(&mut inner, BreakerState::Closed, Instant::now());
        shared.clear_closed_counts(&mut inner);
        for counter in [
            &shared.total_successes,
            &shared.total_failures,
            &shared.rejected,
            &shared.trips,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// State changes from now on, in order. A receiver that falls more than 64 events
    /// behind gets [`broadcast::error::RecvError::Lagged`].
    pub fn subscribe(&self) -> broadcast::Receiver<BreakerEvent> {
        self.shared.events.subscribe()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(FORCED - 1)
    }

    fn clear_closed_counts(&self, inner: &mut Inner) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        if let Some(window) = &mut inner.window {
            window.clear();
        }
    }

    /// Moves to `to` (no-op when already there); returns the new state word.
    fn transition(&self, inner: &mut Inner, to: BreakerState, now: Instant) -> u64 {
        let word = self.word.load(Ordering::Acquire);
        let from = BreakerState::from_bits(word);
        if from == to {
            return word;
        }
        match to {
            BreakerState::Open => {
                let retry_at = self
                    .nanos(now)
                    .saturating_add(
                        u64::try_from(self.config.recovery_timeout.as_nanos()).unwrap_or(FORCED),
                    )
                    .min(FORCED - 1);
                self.retry_at.store(retry_at, Ordering::Release);
                self.trips.fetch_add(1, Ordering::Relaxed);
            }
            BreakerState::Closed => self.consecutive_failures.store(0, Ordering::Relaxed),
            BreakerState::HalfOpen => {}
        }
        inner.probes_in_flight = 0;
        inner.half_open_successes = 0;
        if let Some(window) = &mut inner.window {
            window.clear();
        }
        inner.last_transition = Some(now);
        let next = ((word >> 2).wrapping_add(1) << 2) | to.bits();
        self.word.store(next, Ordering::Release);
        match to {
            BreakerState::Open => {
                tracing::warn!(breaker = %self.name, %from, %to, "circuit breaker opened")
            }
            _ => tracing::info!(breaker = %self.name, %from, %to, "circuit breaker state changed"),
        }
        // Sent under the lock, so receivers see transitions in order.
        let _ = self.events.send(BreakerEvent {
            breaker: self.name.clone(),
            from,
            to,
        });
        next
    }

    /// `admitted`: the state word at admission (`None` for passive outcomes).
    #[inline]
    fn on_success(&self, admitted: Option<u64>, probe: bool) {
        self.total_successes.fetch_add(1, Ordering::Relaxed);
        let word = self.word.load(Ordering::Acquire);
        if word & STATE_MASK == CLOSED && !probe && self.config.failure_rate.is_none() {
            if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
                self.consecutive_failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        self.on_success_slow(admitted, probe);
    }

    #[cold]
    fn on_success_slow(&self, admitted: Option<u64>, probe: bool) {
        let now = Instant::now();
        let mut inner = self.lock();
        let word = self.word.load(Ordering::Acquire);
        match BreakerState::from_bits(word) {
            BreakerState::Closed => {
                self.consecutive_failures.store(0, Ordering::Relaxed);
                let at = self.nanos(now);
                if let Some(window) = &mut inner.window {
                    window.record(at, false);
                }
            }
            BreakerState::HalfOpen => {
                if admitted.is_some_and(|w| w != word) {
                    // Admitted before this half-open state began: says nothing about it.
                    return;
                }
                if probe {
                    inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
                }
                inner.half_open_successes += 1;
                if inner.half_open_successes >= self.config.success_threshold.max(1) {
                    self.transition(&mut inner, BreakerState::Closed, now);
                }
            }
            BreakerState::Open => {}
        }
    }

    #[inline]
    fn on_failure(&self, admitted: Option<u64>, probe: bool) {
        self.total_failures.fetch_add(1, Ordering::Relaxed);
        let word = self.word.load(Ordering::Acquire);
        if word & STATE_MASK == CLOSED && !probe && self.config.failure_rate.is_none() {
            let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
            if n < self.config.failure_threshold.max(1) {
                return;
            }
        }
        self.on_failure_slow(admitted, probe);
    }

    #[cold]
    fn on_failure_slow(&self, admitted: Option<u64>, probe: bool) {
        let now = Instant::now();
        let mut inner = self.lock();
        let word = self.word.load(Ordering::Acquire);
        match BreakerState::from_bits(word) {
            BreakerState::Closed => {
                // Without a window the fast path already counted this failure.
                let consecutive = if inner.window.is_none() && !probe {
                    self.consecutive_failures.load(Ordering::Relaxed)
                } else {
                    self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1
                };
                let at = self.nanos(now);
                let rate_trip = match (&mut inner.window, self.config.failure_rate) {
                    (Some(window), Some(rate)) => {
                        let (calls, failures) = window.record(at, true);
                        calls >= u64::from(self.config.min_calls.max(1))
                            && failures as f64 >= rate * calls as f64
                    }
                    _ => false,
                };
                if consecutive >= self.config.failure_threshold.max(1) || rate_trip {
                    self.transition(&mut inner, BreakerState::Open, now);
                }
            }
            BreakerState::HalfOpen => {
                if admitted.is_some_and(|w| w != word) {
                    return;
                }
                self.transition(&mut inner, BreakerState::Open, now);
            }
            BreakerState::Open => {}
        }
    }

    fn release_probe(&self, admitted: u64) {
        let mut inner = self.lock();
        if self.word.load(Ordering::Acquire) == admitted {
            inner.probes_in_flight = inner.probes_in_flight.saturating_sub(1);
        }
    }
}

/// Permission to make one call through a [`CircuitBreaker`]; report how it went.
///
/// Dropping it without [`success`](Self::success) or [`failure`](Self::failure) (the call
/// was cancelled, or failed in a way that says nothing about the target's health) frees
/// its half-open probe slot and counts nothing.
#[must_use = "report the outcome with .success() or .failure()"]
pub struct Admission {
    breaker: CircuitBreaker,
    word: u64,
    probe: bool,
    done: bool,
}

impl Admission {
    /// The call succeeded.
    #[inline]
    pub fn success(mut self) {
        self.done = true;
        self.breaker.shared.on_success(Some(self.word), self.probe);
    }

    /// The call failed in a way that speaks about the target's health.
    #[inline]
    pub fn failure(mut self) {
        self.done = true;
        self.breaker.shared.on_failure(Some(self.word), self.probe);
    }

    /// Whether this call is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }
}

impl Drop for Admission {
    #[inline]
    fn drop(&mut self) {
        if self.probe && !self.done {
            self.breaker.shared.release_probe(self.word);
        }
    }
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("breaker", &self.breaker.shared.name)
            .field("probe", &self.probe)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BreakerConfig {
        BreakerConfig {
            failure_threshold: 3,
            recovery_timeout: Duration::from_secs(10),
            half_open_max_calls: 2,
            success_threshold: 2,
            ..BreakerConfig::default()
        }
    }

    fn fail(b: &CircuitBreaker, n: usize) {
        for _ in 0..n {
            b.admit().unwrap().failure();
        }
    }

    fn retry_in(err: CallError) -> Duration {
        match err {
            CallError::CircuitOpen { retry_in, .. } => retry_in,
            other => panic!("expected CircuitOpen, got {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures() {
        let b = CircuitBreaker::new("inst", config());
        fail(&b, 2);
        b.admit().unwrap().success(); // resets the streak
        fail(&b, 2);
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b, 1);
        assert_eq!(b.state(), BreakerState::Open);
        let err = b.admit().unwrap_err();
        assert!(err.to_string().contains("inst"), "{err}");
        assert_eq!(retry_in(err), Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(retry_in(b.admit().unwrap_err()), Duration::from_secs(6));
        let stats = b.stats();
        assert_eq!(stats.trips, 1);
        assert_eq!(stats.rejected, 2);
        assert_eq!(stats.total_failures, 5);
        assert_eq!(stats.total_successes, 1);
        assert_eq!(stats.consecutive_failures, 3);
        assert_eq!(stats.since_last_transition, Some(Duration::from_secs(4)));
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_closes_after_success_threshold() {
        let b = CircuitBreaker::new("inst", config());
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.state(), BreakerState::Open, "half-open is entered lazily");
        let p1 = b.admit().unwrap();
        assert!(p1.is_probe());
        assert_eq!(b.state(), BreakerState::HalfOpen);
        p1.success();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.admit().unwrap().success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(!b.admit().unwrap().is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_reopens_on_failure() {
        let b = CircuitBreaker::new("inst", config());
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(10)).await;
        let p = b.admit().unwrap();
        p.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(retry_in(b.admit().unwrap_err()), Duration::from_secs(10));
        assert_eq!(b.stats().trips, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_limits_concurrent_probes() {
        let b = CircuitBreaker::new("inst", config());
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(10)).await;
        let p1 = b.admit().unwrap();
        let p2 = b.admit().unwrap();
        let err = b.admit().unwrap_err();
        assert_eq!(retry_in(err), Duration::ZERO);
        drop(p1); // cancelled: frees the slot, counts nothing
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let p3 = b.admit().unwrap();
        assert!(b.admit().is_err());
        p2.success();
        p3.success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn stale_outcomes_do_not_decide_half_open() {
        let b = CircuitBreaker::new("inst", config());
        let straggler = b.admit().unwrap();
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = b.admit().unwrap();
        straggler.failure(); // admitted while closed: does not re-open
        assert_eq!(b.state(), BreakerState::HalfOpen);
        probe.success();
        b.record_success(); // passive outcomes do count
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn passive_failure_reopens_half_open() {
        let b = CircuitBreaker::new("inst", config());
        for _ in 0..3 {
            b.record_failure();
        }
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(10)).await;
        let _probe = b.admit().unwrap();
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_failure_rate_with_min_calls() {
        let b = CircuitBreaker::new(
            "inst",
            BreakerConfig {
                failure_threshold: 100,
                failure_rate: Some(0.5),
                window: Duration::from_secs(10),
                min_calls: 10,
                ..config()
            },
        );
        // 4 failures out of 8 calls: rate 50% but fewer than min_calls.
        for i in 0..8 {
            let a = b.admit().unwrap();
            if i % 2 == 0 { a.failure() } else { a.success() }
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.admit().unwrap().success(); // 9 calls, 4 failures
        b.admit().unwrap().failure(); // 10 calls, 5 failures: 50%
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn failure_rate_window_slides() {
        let b = CircuitBreaker::new(
            "inst",
            BreakerConfig {
                failure_threshold: 100,
                failure_rate: Some(0.5),
                window: Duration::from_secs(10),
                min_calls: 10,
                ..config()
            },
        );
        for _ in 0..6 {
            b.admit().unwrap().failure();
        }
        // The failures age out of the window before enough calls arrive.
        tokio::time::advance(Duration::from_secs(11)).await;
        for _ in 0..6 {
            b.admit().unwrap().success();
        }
        for _ in 0..4 {
            b.admit().unwrap().failure();
        }
        assert_eq!(b.state(), BreakerState::Closed, "{:?}", b.stats());
        b.admit().unwrap().failure(); // 11 calls, 5 failures: 45%
        assert_eq!(b.state(), BreakerState::Closed);
        b.admit().unwrap().failure(); // 12 calls, 6 failures: 50%
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn force_open_holds_until_force_close() {
        let b = CircuitBreaker::new("inst", config());
        b.force_open();
        assert_eq!(b.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(3600)).await;
        let err = b.admit().unwrap_err();
        assert_eq!(retry_in(err), Duration::from_secs(10));
        assert!(b.stats().forced_open);
        b.force_close();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(!b.stats().forced_open);
        b.admit().unwrap().success();
        // A tripped breaker can be forced open too, and then stays open.
        fail(&b, 3);
        b.force_open();
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(b.admit().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn reset_clears_everything() {
        let b = CircuitBreaker::new("inst", config());
        fail(&b, 3);
        assert!(b.admit().is_err());
        b.reset();
        let stats = b.stats();
        assert_eq!(stats.state, BreakerState::Closed);
        assert_eq!(
            (
                stats.total_failures,
                stats.rejected,
                stats.trips,
                stats.consecutive_failures
            ),
            (0, 0, 0, 0)
        );
        fail(&b, 2);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn events_are_published_in_order() {
        let b = CircuitBreaker::new("inst", config());
        let mut rx = b.subscribe();
        fail(&b, 3);
        tokio::time::advance(Duration::from_secs(10)).await;
        b.admit().unwrap().failure();
        tokio::time::advance(Duration::from_secs(10)).await;
        b.admit().unwrap().success();
        b.admit().unwrap().success();
        b.force_open();
        b.force_close();
        b.force_close(); // no change, no event
        use BreakerState::*;
        let expected = [
            (Closed, Open),
            (Open, HalfOpen),
            (HalfOpen, Open),
            (Open, HalfOpen),
            (HalfOpen, Closed),
            (Closed, Open),
            (Open, Closed),
        ];
        for (from, to) in expected {
            let event = rx.recv().await.unwrap();
            assert_eq!((event.from, event.to), (from, to));
            assert_eq!(&*event.breaker, "inst");
        }
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn config_validation_and_serde() {
        assert!(BreakerConfig::default().validate().is_ok());
        let bad = BreakerConfig {
            failure_threshold: 0,
            ..BreakerConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err(),
            "failure_threshold must be at least 1"
        );
        let bad = BreakerConfig {
            failure_rate: Some(1.5),
            ..BreakerConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("failure_rate"));
        let parsed: BreakerConfig = serde_json::from_value(serde_json::json!({
            "failure_threshold": 2, "recovery_timeout": "30s", "window": 5
        }))
        .unwrap();
        assert_eq!(parsed.recovery_timeout, Duration::from_secs(30));
        assert_eq!(parsed.window, Duration::from_secs(5));
        assert_eq!(parsed.success_threshold, 2);
        let typo =
            serde_json::from_value::<BreakerConfig>(serde_json::json!({"failure_treshold": 2}));
        assert!(typo.unwrap_err().to_string().contains("unknown field"));
    }

    #[tokio::test(start_paused = true)]
    async fn stats_serialize() {
        let b = CircuitBreaker::new("inst", config());
        let json = serde_json::to_value(b.stats()).unwrap();
        assert_eq!(json["state"], "closed");
        assert!(json["since_last_transition"].is_null());
        fail(&b, 3);
        let json = serde_json::to_value(b.stats()).unwrap();
        assert_eq!(json["state"], "open");
        assert_eq!(json["since_last_transition"], "0s");
    }
}
