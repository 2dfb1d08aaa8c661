//! Anomalies: per tool, a call's latency or the error rate far from the tool's own rolling
//! baseline (exponentially weighted mean and variance). An anomaly is an event
//! ([`MeshEvent::Anomaly`](crate::MeshEvent::Anomaly)), a metric, a log line, and stays in
//! the report until the next one replaces it.

use std::{
    collections::VecDeque,
    sync::Mutex,
    time::{Duration, SystemTime},
};

use dashmap::DashMap;

use serde::Serialize;

/// Weight of the newest call in the rolling baseline.
const ALPHA: f64 = 0.05;
/// Calls seen before a tool's baseline is trusted.
const WARM_UP: u64 = 30;
/// Standard deviations from the mean that count as anomalous latency.
const LATENCY_BAND: f64 = 4.0;
/// Error rate above the baseline's by this much is anomalous.
const ERROR_RATE_JUMP: f64 = 0.25;
/// Anomalies kept for the report.
const KEPT: usize = 32;

/// An anomaly, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    /// When (RFC 3339).
    pub at: String,
    /// The tool.
    pub tool: String,
    /// `latency` or `error_rate`.
    pub kind: &'static str,
    /// What was seen (milliseconds, or a rate).
    pub value: f64,
    /// The baseline it departs from.
    pub baseline: f64,
}

#[derive(Default)]
struct Baseline {
    calls: u64,
    latency_mean: f64,
    latency_var: f64,
    errors: f64,
    /// The error rate of the warm-up, frozen while an anomaly lasts.
    error_baseline: f64,
    in_error_anomaly: bool,
}

/// Rolling baselines per tool, and the recent anomalies.
#[derive(Default)]
pub(crate) struct Anomalies {
    /// Sharded: calls of different tools do not wait on each other.
    tools: DashMap<String, Baseline>,
    recent: Mutex<VecDeque<Anomaly>>,
}

impl Anomalies {
    /// Folds one call of `tool` in; returns the anomalies it reveals.
    pub(crate) fn observe(&self, tool: &str, latency: Duration, failed: bool) -> Vec<Anomaly> {
        let millis = latency.as_secs_f64() * 1000.0;
        let mut found = Vec::new();
        {
            let mut b = match self.tools.get_mut(tool) {
                Some(b) => b,
                None => self.tools.entry(tool.to_owned()).or_default(),
            };
            b.calls += 1;
            let failure = if failed { 1.0 } else { 0.0 };
            if b.calls == 1 {
                b.latency_mean = millis;
                b.errors = failure;
            }
            let warm = b.calls > WARM_UP;
            let std_dev = b.latency_var.sqrt().max(b.latency_mean * 0.1).max(0.1);
            if warm && !failed && millis > b.latency_mean + LATENCY_BAND * std_dev {
                found.push(anomaly(tool, "latency", millis, b.latency_mean));
            }
            // The baseline learns from every call; an outlier moves it only a little.
            let delta = millis - b.latency_mean;
            b.latency_mean += ALPHA * delta;
            b.latency_var = (1.0 - ALPHA) * (b.latency_var + ALPHA * delta * delta);
            b.errors += ALPHA * (failure - b.errors);
            if !warm {
                b.error_baseline = b.errors;
            } else if !b.in_error_anomaly && b.errors > b.error_baseline + ERROR_RATE_JUMP {
                b.in_error_anomaly = true;
                found.push(anomaly(tool, "error_rate", b.errors, b.error_baseline));
            } else if b.in_error_anomaly && b.errors < b.error_baseline + ERROR_RATE_JUMP / 2.0 {
                b.in_error_anomaly = false;
            } else if !b.in_error_anomaly {
                b.error_baseline += ALPHA / 10.0 * (b.errors - b.error_baseline);
            }
        }
        if !found.is_empty() {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            for a in &found {
                if recent.len() == KEPT {
                    recent.pop_front();
                }
                recent.push_back(a.clone());
            }
        }
        found
    }

    /// The latest anomalies, oldest first.
    pub(crate) fn recent(&self) -> Vec<Anomaly> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

fn anomaly(tool: &str, kind: &'static str, value: f64, baseline: f64) -> Anomaly {
    Anomaly {
        at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        tool: tool.to_owned(),
        kind,
        value,
        baseline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_slow_call_after_a_steady_baseline_is_an_anomaly_and_jitter_is_not() {
        let a = Anomalies::default();
        for i in 0..100 {
            assert!(a.observe("t", ms(10 + i % 3), false).is_empty(), "call {i}");
        }
        let found = a.observe("t", ms(200), false);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, "latency");
        assert!(found[0].baseline > 9.0 && found[0].baseline < 13.0);
        assert_eq!(a.recent().len(), 1);
    }

    #[test]
    fn a_burst_of_errors_is_reported_once_until_it_subsides() {
        let a = Anomalies::default();
        for _ in 0..50 {
            a.observe("t", ms(10), false);
        }
        let mut reported = 0;
        for _ in 0..30 {
            reported += a.observe("t", ms(10), true).len();
        }
        assert_eq!(reported, 1, "one event for the burst");
        for _ in 0..100 {
            a.observe("t", ms(10), false);
        }
        let again: usize = (0..30).map(|_| a.observe("t", ms(10), true).len()).sum();
        assert_eq!(again, 1, "a new burst after recovery is reported");
    }

    #[test]
    fn nothing_is_reported_while_warming_up() {
        let a = Anomalies::default();
        assert!(a.observe("t", ms(1), false).is_empty());
        assert!(a.observe("t", ms(1000), true).is_empty());
    }
}
