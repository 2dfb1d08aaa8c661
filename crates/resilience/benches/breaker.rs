//! `cargo bench -p toolmesh-resilience --bench breaker`: the circuit breaker's hot path.

use std::hint::black_box;

use divan::Bencher;
use toolmesh_resilience::{BreakerConfig, CircuitBreaker};

fn main() {
    divan::main();
}

/// `admit` + `success` on a closed breaker (the per-call cost when all is well).
#[divan::bench]
fn admit_success_closed(bencher: Bencher<'_, '_>) {
    let breaker = CircuitBreaker::new("bench", BreakerConfig::default());
    bencher.bench_local(|| {
        if let Ok(admission) = black_box(&breaker).admit() {
            admission.success();
        }
    });
}

/// The same with the failure-rate window on (takes the window's mutex per outcome).
#[divan::bench]
fn admit_success_closed_with_rate_window(bencher: Bencher<'_, '_>) {
    let breaker = CircuitBreaker::new(
        "bench",
        BreakerConfig {
            failure_rate: Some(0.5),
            ..BreakerConfig::default()
        },
    );
    bencher.bench_local(|| {
        if let Ok(admission) = black_box(&breaker).admit() {
            admission.success();
        }
    });
}

/// `admit` + `success` from every thread on one shared closed breaker.
#[divan::bench(threads = [1, 2, 4])]
fn admit_success_closed_contended(bencher: Bencher<'_, '_>) {
    let breaker = CircuitBreaker::new("bench", BreakerConfig::default());
    bencher.bench(|| {
        if let Ok(admission) = black_box(&breaker).admit() {
            admission.success();
        }
    });
}

/// A refused `admit` on an open breaker.
#[divan::bench]
fn admit_open(bencher: Bencher<'_, '_>) {
    let breaker = CircuitBreaker::new("bench", BreakerConfig::default());
    breaker.force_open();
    bencher.bench_local(|| black_box(black_box(&breaker).admit().is_err()));
}
