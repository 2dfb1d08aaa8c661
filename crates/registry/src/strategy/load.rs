//! Live load and latency statistics of one instance, fed by RAII in-flight guards.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::ewma::Ewma;
use super::picker::TierState;

/// Highest latency the histogram tells apart: one hour, in microseconds. Slower calls are
/// recorded as one hour.
const HISTOGRAM_MAX_MICROS: u64 = 3_600 * 1_000_000;

/// Significant figures of the histogram: 1% resolution, about 25 KiB per instance.
const HISTOGRAM_SIGFIG: u8 = 2;

/// Live load of one instance: written by calls through [`InFlight`], read by pickers and
/// reports.
///
/// Counters and the EWMA are atomics; the latency histogram (for percentiles) sits behind a
/// mutex that [`InFlight::finish`] only ever `try_lock`s.
pub struct LoadStats {
    outstanding: AtomicUsize,
    calls: AtomicU64,
    failures: AtomicU64,
    /// Sum of the latencies of completed calls, in nanoseconds (for the exact mean).
    total_nanos: AtomicU64,
    ewma: Ewma,
    /// Latencies of completed calls in microseconds, created with the first sample so an
    /// instance that never serves costs no histogram.
    histogram: Mutex<Option<Histogram<u64>>>,
    /// Picker state of the tiers this instance is the first candidate of.
    pub(super) tier: TierState,
}

impl LoadStats {
    /// Idle, with no calls recorded.
    pub fn new() -> Self {
        Self {
            outstanding: AtomicUsize::new(0),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            total_nanos: AtomicU64::new(0),
            ewma: Ewma::default(),
            histogram: Mutex::new(None),
            tier: TierState::default(),
        }
    }

    /// Calls in flight: guards from [`begin`](Self::begin) not yet finished or dropped.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Exponentially weighted moving average (alpha 0.3) of the latency of completed calls;
    /// `None` until the first call completes.
    pub fn latency_ewma(&self) -> Option<Duration> {
        self.ewma.get()
    }

    /// The EWMA in nanoseconds, for pickers.
    pub(super) fn latency_ewma_nanos(&self) -> Option<u64> {
        self.ewma.get_nanos()
    }

    /// Starts a call: it counts as outstanding until the returned guard is finished or
    /// dropped. Atomics only, no lock.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        InFlight { load: self.clone() }
    }

    /// A snapshot for reports. The fields are read one after another, not atomically
    /// together, so under concurrent calls they may be off by a call or so.
    pub fn stats(&self) -> LoadSnapshot {
        let outstanding = self.outstanding();
        let calls = self.calls.load(Ordering::Acquire);
        let failures = self.failures.load(Ordering::Acquire).min(calls);
        let total_nanos = self.total_nanos.load(Ordering::Acquire);
        let success_rate = if calls == 0 {
            1.0
        } else {
            (calls - failures) as f64 / calls as f64
        };
        let mean_latency = (calls > 0).then(|| Duration::from_nanos(total_nanos / calls));
        let p99_latency = {
            let h = self
                .histogram
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            h.as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| Duration::from_micros(h.value_at_quantile(0.99)))
        };
        LoadSnapshot {
            outstanding,
            calls,
            failures,
            success_rate,
            mean_latency,
            p99_latency,
            ewma_latency: self.latency_ewma(),
        }
    }

    fn record(&self, latency: Duration, ok: bool) {
        self.ewma.observe(latency, ok);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        // Saturating (a CAS loop) rather than wrapping; the closure never returns `None`.
        let _ = self
            .total_nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |total| {
                Some(total.saturating_add(nanos))
            });
        if !ok {
            self.failures.fetch_add(1, Ordering::AcqRel);
        }
        self.calls.fetch_add(1, Ordering::AcqRel);
        // Never wait on the call path: under contention (another call finishing at the
        // same instant, or a report reading) this sample is skipped. The percentile stays
        // a good estimate; counts, mean and EWMA above are exact.
        let guard = match self.histogram.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        if let Some(mut slot) = guard {
            if slot.is_none() {
                *slot = Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROS, HISTOGRAM_SIGFIG).ok();
            }
            if let Some(h) = slot.as_mut() {
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                h.saturating_record(micros);
            }
        }
    }
}

impl Default for LoadStats {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LoadStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadStats")
            .field("outstanding", &self.outstanding())
            .field("calls", &self.calls.load(Ordering::Relaxed))
            .field("failures", &self.failures.load(Ordering::Relaxed))
            .field("latency_ewma", &self.latency_ewma())
            .finish_non_exhaustive()
    }
}

/// RAII guard of one call: counts as outstanding on its instance until dropped;
/// [`finish`](Self::finish) also records the outcome.
///
/// Dropping it without `finish` (a cancelled or abandoned call) only decrements the
/// outstanding count: no call, failure or latency is recorded.
#[must_use = "the call counts as outstanding only while the guard is alive"]
#[derive(Debug)]
pub struct InFlight {
    load: Arc<LoadStats>,
}

impl InFlight {
    /// Records the completed call: counts it (as a failure unless `ok`), folds `latency`
    /// into the EWMA (a failure can raise the EWMA but never lower it, so failing fast
    /// does not attract traffic), the mean and the percentiles; then ends the call.
    pub fn finish(self, latency: Duration, ok: bool) {
        self.load.record(latency, ok);
        // `drop(self)` decrements `outstanding`.
    }

    /// The statistics this call feeds.
    pub fn load(&self) -> &Arc<LoadStats> {
        &self.load
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.load.outstanding.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What one instance's [`LoadStats`] say, for reports.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LoadSnapshot {
    /// Calls in flight.
    pub outstanding: usize,
    /// Completed calls (finished guards), successful or not.
    pub calls: u64,
    /// Completed calls that failed.
    pub failures: u64,
    /// `(calls - failures) / calls`; 1.0 when no call completed yet.
    pub success_rate: f64,
    /// Mean latency of completed calls (exact).
    pub mean_latency: Option<Duration>,
    /// 99th percentile latency of completed calls (1% resolution, microsecond units;
    /// samples may be skipped under contention).
    pub p99_latency: Option<Duration>,
    /// EWMA latency (alpha 0.3), as used by the latency strategy.
    pub ewma_latency: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn types_are_send_and_sync() {
        assert_send_sync::<LoadStats>();
        assert_send_sync::<InFlight>();
        assert_send_sync::<LoadSnapshot>();
    }

    #[test]
    fn new_is_idle_and_empty() {
        let load = LoadStats::default();
        assert_eq!(load.outstanding(), 0);
        assert_eq!(load.latency_ewma(), None);
        assert_eq!(
            load.stats(),
            LoadSnapshot {
                success_rate: 1.0,
                ..LoadSnapshot::default()
            }
        );
    }

    #[test]
    fn guards_count_as_outstanding() {
        let load = Arc::new(LoadStats::new());
        let a = load.begin();
        let b = load.begin();
        assert_eq!(load.outstanding(), 2);
        assert_eq!(load.stats().outstanding, 2);
        a.finish(MS, true);
        assert_eq!(load.outstanding(), 1);
        drop(b);
        assert_eq!(load.outstanding(), 0);
    }

    #[test]
    fn dropping_without_finish_counts_no_call() {
        let load = Arc::new(LoadStats::new());
        let guard = load.begin();
        assert_eq!(load.outstanding(), 1);
        assert!(Arc::ptr_eq(guard.load(), &load));
        drop(guard);
        assert_eq!(load.outstanding(), 0);
        let stats = load.stats();
        assert_eq!(stats.calls, 0);
        assert_eq!(stats.failures, 0);
        assert_eq!(stats.mean_latency, None);
        assert_eq!(stats.p99_latency, None);
        assert_eq!(load.latency_ewma(), None);
    }

    #[test]
    fn finish_updates_the_ewma_with_alpha_point_three() {
        let load = Arc::new(LoadStats::new());
        load.begin().finish(10 * MS, true);
        assert_eq!(load.latency_ewma(), Some(10 * MS));
        load.begin().finish(20 * MS, true);
        assert_eq!(load.latency_ewma(), Some(13 * MS));
        assert_eq!(load.stats().ewma_latency, Some(13 * MS));
    }

    #[test]
    fn snapshot_success_rate_mean_and_p99() {
        let load = Arc::new(LoadStats::new());
        // 1 ms .. 100 ms, every tenth one failing.
        for i in 1..=100u64 {
            load.begin().finish(Duration::from_millis(i), i % 10 != 0);
        }
        let s = load.stats();
        assert_eq!(s.outstanding, 0);
        assert_eq!(s.calls, 100);
        assert_eq!(s.failures, 10);
        assert!((s.success_rate - 0.9).abs() < 1e-12, "{}", s.success_rate);
        assert_eq!(s.mean_latency, Some(Duration::from_micros(50_500)));
        let p99 = s.p99_latency.unwrap();
        // 1% resolution around 99 ms.
        assert!(
            p99 >= Duration::from_millis(98) && p99 <= Duration::from_millis(100),
            "{p99:?}"
        );
        assert!(s.ewma_latency.is_some());
    }

    #[test]
    fn p99_sees_the_tail() {
        let load = Arc::new(LoadStats::new());
        for _ in 0..980 {
            load.begin().finish(MS, true);
        }
        for _ in 0..20 {
            load.begin().finish(500 * MS, false);
        }
        let s = load.stats();
        let p99 = s.p99_latency.unwrap();
        assert!(
            p99 >= Duration::from_millis(495) && p99 <= Duration::from_millis(505),
            "{p99:?}"
        );
        assert!((s.success_rate - 0.98).abs() < 1e-12);
    }

    #[test]
    fn extreme_latencies_do_not_panic() {
        let load = Arc::new(LoadStats::new());
        load.begin().finish(Duration::ZERO, true);
        load.begin().finish(Duration::MAX, true);
        let s = load.stats();
        assert_eq!(s.calls, 2);
        assert!(s.p99_latency.unwrap() >= Duration::from_secs(3_500));
    }

    #[test]
    fn concurrent_calls_balance_out() {
        let load = Arc::new(LoadStats::new());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let load = load.clone();
                std::thread::spawn(move || {
                    for i in 0..500 {
                        let guard = load.begin();
                        if (i + t) % 3 == 0 {
                            drop(guard);
                        } else {
                            guard.finish(MS, i % 2 == 0);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = load.stats();
        assert_eq!(s.outstanding, 0);
        let finished: u64 = (0..8u64)
            .map(|t| (0..500u64).filter(|i| (i + t) % 3 != 0).count() as u64)
            .sum();
        assert_eq!(s.calls, finished);
        assert_eq!(s.mean_latency, Some(MS));
        assert_eq!(load.latency_ewma(), Some(MS));
    }

    #[test]
    fn snapshot_serializes() {
        let load = Arc::new(LoadStats::new());
        load.begin().finish(MS, true);
        let json = serde_json::to_value(load.stats()).unwrap();
        assert_eq!(json["calls"], 1);
        assert_eq!(json["success_rate"], 1.0);
    }
}
