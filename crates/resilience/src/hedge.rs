//! Hedged requests: when an answer is late, ask again elsewhere and take whichever
//! answer comes first. Only for calls that are safe to repeat.

use std::time::Duration;

use futures::{StreamExt, stream::FuturesUnordered};
use tokio::time::{Instant, sleep};

/// Runs `attempt(0)`; whenever `delay` passes without a success, starts the next attempt
/// (`attempt(1)`, `attempt(2)`, … up to `max_attempts` in all, 0 counting as 1), keeping
/// the earlier ones running. A failed attempt starts the next one at once, as gRPC
/// hedging does, rather than waiting for the delay.
///
/// The first `Ok` wins and every other attempt still running is dropped (cancelled). If
/// all attempts fail, the error of the last one to fail is returned.
///
/// Uses tokio's clock. `attempt` receives the attempt number, e.g. to pick another
/// instance.
pub async fn hedge<T, E, F, Fut>(
    delay: Duration,
    max_attempts: usize,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let max_attempts = max_attempts.max(1);
    let mut running = FuturesUnordered::new();
    running.push(attempt(0));
    let mut started = 1;
    let timer = sleep(delay);
    tokio::pin!(timer);
    loop {
        // Invariant: `running` is never empty here (each failure either starts another
        // attempt, leaves others running, or returns), so one branch is always enabled.
        tokio::select! {
            biased;
            Some(result) = running.next() => match result {
                Ok(value) => return Ok(value),
                Err(error) => {
                    if started < max_attempts {
                        running.push(attempt(started));
                        started += 1;
                        timer.as_mut().reset(Instant::now() + delay);
                    } else if running.is_empty() {
                        return Err(error);
                    }
                }
            },
            () = &mut timer, if started < max_attempts => {
                running.push(attempt(started));
                started += 1;
                timer.as_mut().reset(Instant::now() + delay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    };

    use super::*;

    struct DropFlag(Arc<AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_first_attempt_starts_no_second() {
        let starts = Arc::new(Mutex::new(Vec::new()));
        let result: Result<&str, ()> = hedge(Duration::from_millis(100), 3, |n| {
            starts.lock().unwrap().push(n);
            async move {
                sleep(Duration::from_millis(50)).await;
                Ok("first")
            }
        })
        .await;
        assert_eq!(result, Ok("first"));
        assert_eq!(*starts.lock().unwrap(), [0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_attempt_is_hedged_and_dropped() {
        let t0 = Instant::now();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let first_dropped = Arc::new(AtomicBool::new(false));
        let result: Result<usize, ()> = hedge(Duration::from_millis(100), 3, |n| {
            starts.lock().unwrap().push((n, t0.elapsed()));
            let guard = (n == 0).then(|| DropFlag(first_dropped.clone()));
            async move {
                let _guard = guard;
                let took = if n == 0 { 10_000 } else { 30 };
                sleep(Duration::from_millis(took)).await;
                Ok(n)
            }
        })
        .await;
        assert_eq!(result, Ok(1));
        assert_eq!(t0.elapsed(), Duration::from_millis(130));
        assert_eq!(
            *starts.lock().unwrap(),
            [(0, Duration::ZERO), (1, Duration::from_millis(100))]
        );
        assert!(
            first_dropped.load(Ordering::SeqCst),
            "the loser was cancelled"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_start_one_delay_apart_up_to_the_limit() {
        let t0 = Instant::now();
        let starts = Arc::new(Mutex::new(Vec::new()));
        let result: Result<(), usize> = hedge(Duration::from_millis(100), 3, |n| {
            starts.lock().unwrap().push(t0.elapsed());
            async move {
                sleep(Duration::from_millis(1000)).await;
                Err(n)
            }
        })
        .await;
        let ms = Duration::from_millis;
        assert_eq!(*starts.lock().unwrap(), [ms(0), ms(100), ms(200)]);
        assert_eq!(result, Err(2), "the last to fail");
        assert_eq!(t0.elapsed(), ms(1200));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_starts_the_next_attempt_at_once() {
        let t0 = Instant::now();
        let result: Result<usize, &str> = hedge(Duration::from_millis(100), 2, |n| async move {
            sleep(Duration::from_millis(10)).await;
            if n == 0 { Err("down") } else { Ok(n) }
        })
        .await;
        assert_eq!(result, Ok(1));
        assert_eq!(t0.elapsed(), Duration::from_millis(20));
    }
}
