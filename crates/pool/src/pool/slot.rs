//! A pooled session with its load, and the lease a call holds on it.

use std::sync::{
    Arc,
    atomic::{
        AtomicU64, AtomicUsize,
        Ordering::{Relaxed, SeqCst},
    },
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
        self.outstanding.load(SeqCst)
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

/// Wakes calls waiting for a session; free when nobody waits.
#[derive(Debug, Default)]
pub(crate) struct Freed {
    notify: Notify,
    waiting: AtomicUsize,
}

impl Freed {
    /// Wakes every waiter (they re-check for room themselves).
    pub(crate) fn wake(&self) {
        if self.waiting.load(SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Registers as a waiter until the guard drops; await `notify.notified()` after
    /// enabling it and re-checking.
    pub(crate) fn wait(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, SeqCst);
        Waiting(self)
    }

    pub(crate) fn notify(&self) -> &Notify {
        &self.notify
    }
}

/// A registered waiter.
pub(crate) struct Waiting<'a>(&'a Freed);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, SeqCst);
    }
}

/// A call's hold on a slot: counts toward its load until dropped.
pub(crate) struct Lease {
    pub(crate) slot: Arc<Slot>,
    freed: Arc<Freed>,
}

impl Lease {
    /// Takes a share of `slot`; the caller checked it had room.
    pub(crate) fn new(slot: Arc<Slot>, freed: Arc<Freed>) -> Self {
        slot.outstanding.fetch_add(1, SeqCst);
        Self { slot, freed }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // SeqCst pairs with `Freed::wait`: a waiter either sees this room or gets woken.
        self.slot.outstanding.fetch_sub(1, SeqCst);
        self.slot.touch();
        self.freed.wake();
    }
}
