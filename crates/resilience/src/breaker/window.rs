//! Call and failure counts over a sliding window of fixed buckets, for the breaker's
//! failure-rate check.

use std::time::Duration;

/// Call and failure counts over a sliding window of fixed buckets.
pub(super) struct Window {
    bucket_nanos: u64,
    /// Absolute index (time / bucket length) of the newest bucket.
    head: u64,
    buckets: Vec<Bucket>,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    calls: u64,
    failures: u64,
}

impl Window {
    pub(super) fn new(length: Duration, buckets: usize) -> Self {
        let total = u64::try_from(length.as_nanos()).unwrap_or(u64::MAX);
        Self {
            bucket_nanos: (total / buckets as u64).max(1),
            head: 0,
            buckets: vec![Bucket::default(); buckets],
        }
    }

    pub(super) fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
    }

    fn advance(&mut self, at: u64) -> usize {
        let len = self.buckets.len() as u64;
        let index = at / self.bucket_nanos;
        if index > self.head {
            if index - self.head >= len {
                self.clear();
            } else {
                for i in self.head + 1..=index {
                    self.buckets[(i % len) as usize] = Bucket::default();
                }
            }
            self.head = index;
        }
        (self.head % len) as usize
    }

    /// Adds one call; returns (calls, failures) over the window.
    pub(super) fn record(&mut self, at: u64, failure: bool) -> (u64, u64) {
        let slot = self.advance(at);
        self.buckets[slot].calls += 1;
        self.buckets[slot].failures += u64::from(failure);
        self.buckets
            .iter()
            .fold((0, 0), |(c, f), b| (c + b.calls, f + b.failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_buckets_leave_the_window() {
        let second = 1_000_000_000;
        let mut w = Window::new(Duration::from_secs(10), 10);
        assert_eq!(w.record(0, true), (1, 1));
        assert_eq!(w.record(5 * second, false), (2, 1));
        assert_eq!(w.record(9 * second, false), (3, 1));
        // At 10s the bucket of 0s is reused.
        assert_eq!(w.record(10 * second, false), (3, 0));
        // A jump longer than the window clears it.
        assert_eq!(w.record(100 * second, true), (1, 1));
        w.clear();
        assert_eq!(w.record(100 * second, false), (1, 0));
    }
}
