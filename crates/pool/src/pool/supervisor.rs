//! The pool's background task: replaces dead sessions, keeps `min_sessions`, closes idle
//! ones and runs health checks. It holds the pool weakly and ends with it.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use tokio::time::Instant;
use toolmesh_core::{CallContext, duration::deadline_after};

use super::{PoolEvent, Shared};
use crate::HealthCheckMethod;

/// Longest sleep between two rounds, whatever is configured.
const MAX_TICK: Duration = Duration::from_secs(1);

pub(super) async fn run(pool: Weak<Shared>) {
    let mut next_check = Instant::now();
    loop {
        let Some(shared) = pool.upgrade() else { return };
        if shared.stop.is_cancelled() {
            return;
        }
        round(&shared, &mut next_check).await;
        let (wake, stop) = (shared.wake.clone(), shared.stop.clone());
        let tick = next_tick(&shared, next_check);
        // Never sleep holding the pool: dropping the last handle must end this task.
        drop(shared);
        tokio::select! {
            () = tokio::time::sleep_until(tick) => {}
            () = wake.notified() => {}
            () = stop.cancelled() => return,
        }
    }
}

fn next_tick(shared: &Shared, next_check: Instant) -> Instant {
    let mut tick = deadline_after(MAX_TICK);
    if shared.config.health_check.enabled {
        tick = tick.min(next_check);
    }
    if let Some(retry_at) = shared.connect.lock().ok().and_then(|c| c.retry_at) {
        tick = tick.min(retry_at.max(Instant::now()));
    }
    tick
}

async fn round(shared: &Arc<Shared>, next_check: &mut Instant) {
    // Dead sessions go first, so replenishing sees the true count.
    for slot in shared.slots.load().iter().filter(|s| !s.is_alive()) {
        shared.retire(
            slot,
            "the session died (transport closed or process exited)",
        );
    }
    shared.replenish().await;
    evict_idle(shared);
    if shared.config.health_check.enabled && Instant::now() >= *next_check {
        check(shared).await;
        *next_check = deadline_after(shared.config.health_check.interval);
    }
    let snapshot = shared.snapshot();
    shared.metrics.sessions(
        snapshot.sessions_active,
        snapshot.sessions_idle,
        snapshot.utilization,
    );
}

/// Closes sessions idle past `max_idle_time`, never below `min_sessions`.
fn evict_idle(shared: &Shared) {
    let slots = shared.slots.load();
    let mut live = slots.iter().filter(|s| s.is_alive()).count();
    for slot in slots.iter() {
        if live <= shared.config.pool.min_sessions {
            break;
        }
        if slot.is_alive() && slot.idle_for() >= shared.config.pool.max_idle_time {
            shared.retire(slot, "idle past max_idle_time");
            live -= 1;
        }
    }
}

/// One active health check on the least-loaded live session.
async fn check(shared: &Shared) {
    let hc = &shared.config.health_check;
    let slot = shared
        .slots
        .load()
        .iter()
        .filter(|s| s.is_alive())
        .min_by_key(|s| s.outstanding())
        .cloned();
    let started = Instant::now();
    let outcome = match slot {
        None => match shared
            .connect
            .lock()
            .ok()
            .and_then(|c| c.last_error.clone())
        {
            Some(e) => Err(format!("no live session; last connect failed: {e}")),
            // Nothing open and nothing failing (min_sessions = 0): nothing to judge.
            None => return,
        },
        Some(slot) => {
            let ctx = CallContext::with_timeout(hc.timeout);
            let result = match hc.method {
                HealthCheckMethod::Ping => slot.session.ping(&ctx).await,
                HealthCheckMethod::ListTools => slot.session.list_tools(&ctx).await.map(|_| ()),
            };
            if let Err(e) = &result
                && (e.kind() == toolmesh_core::ErrorKind::Closed || !slot.is_alive())
            {
                shared.retire(&slot, "the session failed a health check");
            }
            result.map_err(|e| e.to_string())
        }
    };
    shared
        .metrics
        .health_check(started.elapsed(), outcome.is_ok());
    let changed = shared
        .health
        .lock()
        .ok()
        .and_then(|mut h| h.record(outcome));
    if let Some(status) = changed {
        let health = shared.health();
        tracing::info!(instance = %shared.label, ?status, reason = %health.reason, "health changed");
        shared.event(PoolEvent::HealthChanged {
            instance: shared.id.clone(),
            status,
            reason: health.reason,
        });
    }
}
