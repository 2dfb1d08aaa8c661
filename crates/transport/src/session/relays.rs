//! Calls in flight that carry a [`Relay`], and which one a server message belongs to.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
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

struct Running {
    key: u64,
    id: RequestId,
    token: ProgressToken,
    relay: Arc<dyn Relay>,
}

#[derive(Default)]
struct Calls {
    running: Vec<Running>,
    /// The last two calls that ended, newest first: enough to tell whether exactly one
    /// ended within [`LINGER`], and bounded whatever the call rate.
    ended: VecDeque<(Instant, Arc<dyn Relay>)>,
}

/// The relays of one session's calls in flight.
#[derive(Default)]
pub(crate) struct Relays {
    next: std::sync::atomic::AtomicU64,
    calls: Mutex<Calls>,
}

impl Relays {
    fn calls(&self) -> MutexGuard<'_, Calls> {
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
        self.calls().running.push(Running {
            key,
            id,
            token,
            relay,
        });
        Registered {
            relays: self.clone(),
            key,
        }
    }

    /// The relay of the running call `token` reports progress for.
    pub(crate) fn by_token(&self, token: &ProgressToken) -> Option<Arc<dyn Relay>> {
        let calls = self.calls();
        calls
            .running
            .iter()
            .find(|c| &c.token == token)
            .map(|c| c.relay.clone())
    }

    /// The relay a server request belongs to: the call whose response stream it came on
    /// (streamable HTTP says so), else the only call running with a relay. `None` when
    /// that is ambiguous: guessing could hand one client's data to another.
    pub(crate) fn owner(&self, origin: Option<&InboundStreamOrigin>) -> Option<Arc<dyn Relay>> {
        let calls = self.calls();
        if let Some(InboundStreamOrigin::OutboundRequest(id)) = origin
            && let Some(call) = calls.running.iter().find(|c| &c.id == id)
        {
            return Some(call.relay.clone());
        }
        match calls.running.as_slice() {
            [only] => Some(only.relay.clone()),
            _ => None,
        }
    }

    /// The relay a log belongs to: the only call running, or when none runs, the only
    /// one that ended within [`LINGER`] (a log sent just before that call's answer).
    pub(crate) fn log_owner(&self) -> Option<Arc<dyn Relay>> {
        let calls = self.calls();
        match calls.running.as_slice() {
            [only] => return Some(only.relay.clone()),
            [] => {}
            _ => return None,
        }
        let mut recent = calls.ended.iter().filter(|(at, _)| at.elapsed() < LINGER);
        match (recent.next(), recent.next()) {
            (Some((_, only)), None) => Some(only.clone()),
            _ => None,
        }
    }
}

/// Moves a call's relay from running to ended when the call ends, however it ends.
pub(crate) struct Registered {
    relays: Arc<Relays>,
    key: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut calls = self.relays.calls();
        let Some(at) = calls.running.iter().position(|c| c.key == self.key) else {
            return;
        };
        let call = calls.running.swap_remove(at);
        calls.ended.push_front((Instant::now(), call.relay));
        calls.ended.truncate(2);
    }
}
