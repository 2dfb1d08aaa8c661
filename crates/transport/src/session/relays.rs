//! Calls in flight that carry a [`Relay`], and which one a server message belongs to.

use std::sync::{Arc, Mutex};

use rmcp::{
    model::{ProgressToken, RequestId},
    service::InboundStreamOrigin,
};
use toolmesh_core::Relay;

struct Entry {
    key: u64,
    id: RequestId,
    token: ProgressToken,
    relay: Arc<dyn Relay>,
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
        self.calls().push(Entry {
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

    /// The relay of the call `token` reports progress for.
    pub(crate) fn by_token(&self, token: &ProgressToken) -> Option<Arc<dyn Relay>> {
        let calls = self.calls();
        calls
            .iter()
            .find(|c| &c.token == token)
            .map(|c| c.relay.clone())
    }

    /// The relay a server request or log belongs to: the call whose response stream it
    /// came on (streamable HTTP says so), else the only call in flight with a relay.
    /// `None` when that is ambiguous: guessing could hand one client's data to another.
    pub(crate) fn owner(&self, origin: Option<&InboundStreamOrigin>) -> Option<Arc<dyn Relay>> {
        let calls = self.calls();
        if let Some(InboundStreamOrigin::OutboundRequest(id)) = origin
            && let Some(call) = calls.iter().find(|c| &c.id == id)
        {
            return Some(call.relay.clone());
        }
        match calls.as_slice() {
            [only] => Some(only.relay.clone()),
            _ => None,
        }
    }
}

/// Forgets a call's relay when the call ends, however it ends.
pub(crate) struct Registered {
    relays: Arc<Relays>,
    key: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.relays.calls().retain(|c| c.key != self.key);
    }
}
