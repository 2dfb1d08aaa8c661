//! A pooled session with its load, and the lease a call holds on it.

use std::sync::{
    Arc,
    atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed},
};

use tokio::{sync::Notify, time::Instant};
use toolmesh_transport::Session;

/// One session of the pool.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) session: Session,
    pub(crate) outstanding: AtomicUsize,
    /// Milliseconds since `epoch` when the last call ended.
    last_used_ms: AtomicU64,
    epoch: Instant,
}

impl Slot {
    pub(crate) fn new(session: Session, epoch: Instant) -> Self {
        let slot = Self {
            session,
            outstanding: AtomicUsize::new(0),
            last_used_ms: AtomicU64::new(0),
            epoch,
        };
        slot.touch();
        slot
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_used_ms.store(ms, Relaxed);
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Relaxed)
    }

    /// Idle for at least this long (zero while busy).
    pub(crate) fn idle_for(&self) -> std::time::Duration {
        if self.outstanding() > 0 {
            return std::time::Duration::ZERO;
        }
        let last = std::time::Duration::from_millis(self.last_used_ms.load(Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }

    pub(crate) fn is_alive(&self) -> bool {
        !self.session.is_closed()
    }
}

/// A call's hold on a slot: counts toward its load until dropped.
pub(crate) struct Lease {
    pub(crate) slot: Arc<Slot>,
    freed: Arc<Notify>,
}

impl Lease {
    /// Takes a share of `slot`; the caller checked it had room.
    pub(crate) fn new(slot: Arc<Slot>, freed: Arc<Notify>) -> Self {
        slot.outstanding.fetch_add(1, Relaxed);
        Self { slot, freed }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slot.outstanding.fetch_sub(1, Relaxed);
        self.slot.touch();
        self.freed.notify_one();
    }
}
