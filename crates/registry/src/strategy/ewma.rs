//! A lock-free exponentially weighted moving average of latencies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Weight of the newest sample.
pub(super) const ALPHA: f64 = 0.3;

/// Stored while no sample has been recorded yet.
const NONE: u64 = u64::MAX;

/// EWMA of latencies in nanoseconds, updated by compare-and-swap on one `AtomicU64`.
#[derive(Debug)]
pub(super) struct Ewma {
    nanos: AtomicU64,
}

impl Default for Ewma {
    fn default() -> Self {
        Self {
            nanos: AtomicU64::new(NONE),
        }
    }
}

impl Ewma {
    /// The current average; `None` before the first sample.
    pub(super) fn get(&self) -> Option<Duration> {
        match self.nanos.load(Ordering::Acquire) {
            NONE => None,
            nanos => Some(Duration::from_nanos(nanos)),
        }
    }

    /// The current average in nanoseconds; `None` before the first sample.
    pub(super) fn get_nanos(&self) -> Option<u64> {
        match self.nanos.load(Ordering::Acquire) {
            NONE => None,
            nanos => Some(nanos),
        }
    }

    /// Folds in the latency of one completed call.
    ///
    /// A failed call can make the average slower but never faster: its sample is
    /// `max(latency, current average)`, so an instance that fails fast (connection refused)
    /// does not look attractive to the latency strategy, while timeouts still count fully.
    pub(super) fn observe(&self, latency: Duration, ok: bool) {
        // Saturate below the sentinel: 584 years is as slow as it gets.
        let sample = u64::try_from(latency.as_nanos()).map_or(NONE - 1, |n| n.min(NONE - 1));
        // `fetch_update` is a CAS loop; the closure always returns `Some`, so it cannot fail.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| {
                Some(Self::next(old, sample, ok))
            });
    }

    fn next(old: u64, sample: u64, ok: bool) -> u64 {
        if old == NONE {
            return sample;
        }
        let sample = if ok { sample } else { sample.max(old) };
        let next = ALPHA.mul_add(sample as f64, (1.0 - ALPHA) * old as f64);
        // `as` saturates; keep clear of the sentinel.
        (next.round() as u64).min(NONE - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_sample_is_taken_as_is() {
        let e = Ewma::default();
        assert_eq!(e.get(), None);
        assert_eq!(e.get_nanos(), None);
        e.observe(10 * MS, true);
        assert_eq!(e.get(), Some(10 * MS));
    }

    #[test]
    fn alpha_is_point_three() {
        let e = Ewma::default();
        e.observe(10 * MS, true);
        e.observe(20 * MS, true); // 0.3 * 20 + 0.7 * 10 = 13
        assert_eq!(e.get(), Some(13 * MS));
        e.observe(Duration::ZERO, true); // 0.7 * 13 = 9.1
        assert_eq!(e.get(), Some(Duration::from_micros(9_100)));
        e.observe(Duration::from_micros(9_100), true); // fixed point
        assert_eq!(e.get(), Some(Duration::from_micros(9_100)));
    }

    #[test]
    fn converges_to_a_steady_latency() {
        let e = Ewma::default();
        e.observe(100 * MS, true);
        for _ in 0..50 {
            e.observe(MS, true);
        }
        let got = e.get().unwrap_or_default();
        assert!(got >= MS && got < MS + Duration::from_micros(1), "{got:?}");
    }

    #[test]
    fn fast_failures_never_lower_the_average() {
        let e = Ewma::default();
        e.observe(10 * MS, true);
        e.observe(Duration::from_micros(5), false);
        assert_eq!(e.get(), Some(10 * MS));
        // A slow failure (timeout) counts fully.
        e.observe(20 * MS, false);
        assert_eq!(e.get(), Some(13 * MS));
        // A failure as the first sample is taken as is.
        let e = Ewma::default();
        e.observe(2 * MS, false);
        assert_eq!(e.get(), Some(2 * MS));
    }

    #[test]
    fn huge_latencies_saturate_below_the_sentinel() {
        let e = Ewma::default();
        e.observe(Duration::MAX, true);
        assert_eq!(e.get_nanos(), Some(u64::MAX - 1));
        e.observe(Duration::MAX, true);
        assert_eq!(e.get_nanos(), Some(u64::MAX - 1));
    }

    #[test]
    fn concurrent_updates_are_not_lost() {
        let e = std::sync::Arc::new(Ewma::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let e = e.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        e.observe(5 * MS, true);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(e.get(), Some(5 * MS));
    }
}
