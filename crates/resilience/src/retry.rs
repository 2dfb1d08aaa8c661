//! Retry schedule: exponential backoff (from backon) bounded by a deadline and a budget
//! of elapsed time.

use std::{iter::FusedIterator, time::Duration};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// How often and how far apart to retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 = no retry).
    pub max_attempts: u32,
    /// Delay before the second attempt.
    #[serde(with = "toolmesh_core::duration")]
    pub initial_backoff: Duration,
    /// Upper bound of any delay.
    #[serde(with = "toolmesh_core::duration")]
    pub max_backoff: Duration,
    /// Growth factor of the delay from one retry to the next (≥ 1).
    pub multiplier: f64,
    /// Randomize delays ("equal jitter": each delay is drawn from `[d/2, d]` where `d` is
    /// the un-jittered delay), so that clients failing together do not retry together.
    /// Delays are rounded to whole milliseconds (microseconds below 1ms).
    pub jitter: bool,
    /// Offer no retry whose delay would end later than this after the schedule started.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_elapsed: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: true,
            max_elapsed: None,
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Checks the settings; the message names the field and what it must be.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err("max_attempts must be at least 1 (it counts the first attempt)".into());
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(format!(
                "multiplier must be a number of at least 1.0 (e.g. 2.0 doubles each delay), got {}",
                self.multiplier
            ));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(format!(
                "initial_backoff ({:?}) must not exceed max_backoff ({:?})",
                self.initial_backoff, self.max_backoff
            ));
        }
        Ok(())
    }

    /// The delays before attempts 2..=`max_attempts`, for a call that must be done by
    /// `deadline`. Start it when the first attempt starts: the iterator reads the clock
    /// (tokio's) each time it is advanced, and ends early, for good, when the next retry
    /// could not start before `deadline`, or when its delay would end more than
    /// `max_elapsed` after the iterator was made.
    pub fn delays(&self, deadline: Instant) -> RetryDelays {
        let builder = ExponentialBuilder::new()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(self.multiplier.max(1.0) as f32)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        let builder = if self.jitter {
            builder.with_jitter()
        } else {
            builder
        };
        RetryDelays {
            backoff: builder.build(),
            jitter: self.jitter,
            max_backoff: self.max_backoff,
            started: Instant::now(),
            deadline,
            max_elapsed: self.max_elapsed,
            done: false,
        }
    }
}

/// The delays of one retry schedule; see [`RetryPolicy::delays`].
#[derive(Debug)]
pub struct RetryDelays {
    backoff: ExponentialBackoff,
    jitter: bool,
    max_backoff: Duration,
    started: Instant,
    deadline: Instant,
    max_elapsed: Option<Duration>,
    done: bool,
}

impl Iterator for RetryDelays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.done {
            return None;
        }
        let Some(mut delay) = self.backoff.next() else {
            self.done = true;
            return None;
        };
        if self.jitter {
            // backon's jitter yields d·(1 + U[0,1)); halving gives equal jitter in
            // [d/2, d), which never exceeds the un-jittered schedule.
            delay /= 2;
        }
        delay = round(delay).min(self.max_backoff);
        let start = Instant::now() + delay;
        let past_deadline = start >= self.deadline;
        let past_budget = self
            .max_elapsed
            .is_some_and(|max| start.saturating_duration_since(self.started) > max);
        if past_deadline || past_budget {
            self.done = true;
            return None;
        }
        Some(delay)
    }
}

impl FusedIterator for RetryDelays {}

/// backon computes in `f32`, so 200ms comes out as 200.000003ms; round to whole
/// milliseconds (tokio's timer resolution), or microseconds below one millisecond.
fn round(delay: Duration) -> Duration {
    const MS: u128 = 1_000_000;
    const US: u128 = 1_000;
    let nanos = delay.as_nanos();
    let unit = if nanos >= MS { MS } else { US };
    let rounded = (nanos + unit / 2) / unit * unit;
    Duration::from_nanos(u64::try_from(rounded).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            multiplier: 2.0,
            jitter: false,
            max_elapsed: None,
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    #[tokio::test(start_paused = true)]
    async fn grows_and_caps_without_jitter() {
        let delays: Vec<_> = policy().delays(far()).collect();
        let ms = |v: u64| Duration::from_millis(v);
        assert_eq!(delays, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
    }

    #[tokio::test(start_paused = true)]
    async fn count_is_max_attempts_minus_one() {
        for n in 1..8 {
            let p = RetryPolicy {
                max_attempts: n,
                ..policy()
            };
            assert_eq!(p.delays(far()).count(), n as usize - 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_stays_within_half_to_full_delay() {
        let p = RetryPolicy {
            jitter: true,
            max_attempts: 20,
            ..policy()
        };
        let plain: Vec<_> = RetryPolicy {
            max_attempts: 20,
            ..policy()
        }
        .delays(far())
        .collect();
        let jittered: Vec<_> = p.delays(far()).collect();
        assert_eq!(jittered.len(), plain.len());
        for (j, d) in jittered.iter().zip(&plain) {
            assert!(
                *j >= *d / 2 && *j <= *d,
                "{j:?} not in [{:?}, {d:?}]",
                *d / 2
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_stops_the_schedule() {
        // 100 + 200 = 300ms of sleeps fit before 450ms; the third (400ms) would start at
        // 700ms: not offered.
        let deadline = Instant::now() + Duration::from_millis(450);
        let mut delays = policy().delays(deadline);
        for expected in [100, 200] {
            let d = delays.next().unwrap();
            assert_eq!(d, Duration::from_millis(expected));
            tokio::time::advance(d).await;
        }
        assert_eq!(delays.next(), None);
        assert_eq!(delays.next(), None, "stays done");
    }

    #[tokio::test(start_paused = true)]
    async fn time_spent_in_attempts_counts_against_the_deadline() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut delays = policy().delays(deadline);
        tokio::time::advance(Duration::from_millis(950)).await; // a slow first attempt
        assert_eq!(
            delays.next(),
            None,
            "100ms from 950ms ends past the deadline"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn max_elapsed_stops_the_schedule() {
        let p = RetryPolicy {
            max_elapsed: Some(Duration::from_millis(350)),
            ..policy()
        };
        let mut total = Duration::ZERO;
        for d in p.delays(far()) {
            tokio::time::advance(d).await;
            total += d;
        }
        assert_eq!(total, Duration::from_millis(300));
    }

    #[test]
    fn validation_and_serde() {
        assert!(RetryPolicy::default().validate().is_ok());
        assert!(
            RetryPolicy {
                max_attempts: 0,
                ..policy()
            }
            .validate()
            .unwrap_err()
            .contains("max_attempts")
        );
        assert!(
            RetryPolicy {
                multiplier: 0.5,
                ..policy()
            }
            .validate()
            .unwrap_err()
            .contains("multiplier")
        );
        let p: RetryPolicy = serde_json::from_value(serde_json::json!({
            "initial_backoff": "50ms", "max_elapsed": "5s", "jitter": false
        }))
        .unwrap();
        assert_eq!(p.initial_backoff, Duration::from_millis(50));
        assert_eq!(p.max_elapsed, Some(Duration::from_secs(5)));
        assert_eq!(p.max_attempts, 3);
        let back: RetryPolicy = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
