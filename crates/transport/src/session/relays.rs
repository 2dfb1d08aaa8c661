//! Calls in flight that carry a [`Relay`], and which one a server message belongs to.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rmcp::{
    model::{ProgressToken, RequestId},
    service::InboundStreamOrigin,
};
use toolmesh_core::Relay;

/// How long a finished call still takes its logs: rmcp hands notifications to spawned
/// tasks, so a log sent just before the answer may be handled just after it.
const LINGER: Duration = Duration::from_millis(250);

struct Entry {
    key: u64,
    id: RequestId,
    token: ProgressToken,
    relay: Arc<dyn Relay>,
    /// When the call ended; `None` while it runs.
    ended: Option<Instant>,
}

/// The relays of one session's calls in flight.
#[derive(Default)]
pub(crate) struct Relays {
    next: std::sync::atomic::AtomicU64,
    calls: Mutex<Vec<Entry>>,
}

impl Relays {
    fn calls(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers `relay` for the request `id` until the guard drops.
    pub(crate) fn register(
        self: &Arc<Self>,
        id: RequestId,
        token: ProgressToken,
        relay: Arc<dyn Relay>,
    ) -> Registered {
        let key = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut calls = self.calls();
        calls.retain(|c| c.ended.is_none_or(|at| at.elapsed() < LINGER));
        calls.push(Entry {
            key,
            id,
            token,
            relay,
            ended: None,
        });
        drop(calls);
        Registered {
            relays: self.clone(),
            key,
        }
    }

    /// The relay of the call `token` reports progress for.
    pub(crate) fn by_token(&self, token: &ProgressToken) -> Option<Arc<dyn Relay>> {
        let calls = self.calls();
        calls
            .iter()
            .find(|c| c.ended.is_none() && &c.token == token)
            .map(|c| c.relay.clone())
    }

    /// The relay a server request or log belongs to: the call whose response stream it
    /// came on (streamable HTTP says so), else the only call in flight with a relay.
    /// `None` when that is ambiguous: guessing could hand one client's data to another.
    pub(crate) fn owner(&self, origin: Option<&InboundStreamOrigin>) -> Option<Arc<dyn Relay>> {
        let calls = self.calls();
        let mut running = calls.iter().filter(|c| c.ended.is_none());
        if let Some(InboundStreamOrigin::OutboundRequest(id)) = origin
            && let Some(call) = running.clone().find(|c| &c.id == id)
        {
            return Some(call.relay.clone());
        }
        match (running.next(), running.next()) {
            (Some(only), None) => Some(only.relay.clone()),
            _ => None,
        }
    }

    /// The relay a log belongs to: the only call running, or when none runs, the only
    /// one that ended within [`LINGER`] (a log sent just before that call's answer).
    pub(crate) fn log_owner(&self) -> Option<Arc<dyn Relay>> {
        let calls = self.calls();
        let running = calls.iter().filter(|c| c.ended.is_none());
        let ended = calls
            .iter()
            .filter(|c| c.ended.is_some_and(|at| at.elapsed() < LINGER));
        for mut candidates in [running.collect::<Vec<_>>(), ended.collect()] {
            match candidates.len() {
                0 => continue,
                1 => return candidates.pop().map(|c| c.relay.clone()),
                _ => return None,
            }
        }
        None
    }
}

/// Marks a call's relay ended when the call ends, however it ends (it lingers for late
/// logs, then goes).
pub(crate) struct Registered {
    relays: Arc<Relays>,
    key: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut calls = self.relays.calls();
        calls.retain(|c| c.ended.is_none_or(|at| at.elapsed() < LINGER));
        if let Some(call) = calls.iter_mut().find(|c| c.key == self.key) {
            call.ended = Some(Instant::now());
        }
    }
}
