//! Calls in flight that carry a [`Relay`], and which one a server message belongs to.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use rmcp::{
    model::{JsonObject, ProgressToken, RequestId},
    service::InboundStreamOrigin,
};
use toolmesh_core::Relay;

/// How long a finished call still takes the logs that name it: rmcp hands notifications
/// to spawned tasks, so a log sent just before the answer may be handled just after it.
const LINGER: Duration = Duration::from_millis(250);

/// Finished calls remembered for [`LINGER`], at most: bounded whatever the call rate.
const ENDED_MAX: usize = 64;

/// `_meta` key naming the request a notification is about (the progress token is the
/// other way to say it).
const RELATED_REQUEST_ID: &str = "relatedRequestId";

struct Call {
    id: RequestId,
    token: ProgressToken,
    relay: Arc<dyn Relay>,
}

impl Call {
    fn is(&self, about: &About) -> bool {
        about.token.as_ref() == Some(&self.token) || about.id.as_ref() == Some(&self.id)
    }
}

#[derive(Default)]
struct Calls {
    running: Vec<(u64, Call)>,
    /// Calls that ended within [`LINGER`] (roughly), newest first.
    ended: VecDeque<(Instant, Call)>,
}

/// Which request a notification says it is about, from its `_meta`.
#[derive(Debug, Default)]
pub(crate) struct About {
    token: Option<ProgressToken>,
    id: Option<RequestId>,
}

impl About {
    /// Reads `progressToken` and `relatedRequestId` from each `_meta` given.
    pub(crate) fn from_meta<'a>(metas: impl IntoIterator<Item = &'a JsonObject>) -> Self {
        let mut about = Self::default();
        for meta in metas {
            let read = |key: &str| meta.get(key).cloned();
            about.token = about
                .token
                .or_else(|| read("progressToken").and_then(|v| serde_json::from_value(v).ok()));
            about.id = about
                .id
                .or_else(|| read(RELATED_REQUEST_ID).and_then(|v| serde_json::from_value(v).ok()));
        }
        about
    }
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
        self.calls().running.push((key, Call { id, token, relay }));
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
            .find(|(_, c)| &c.token == token)
            .map(|(_, c)| c.relay.clone())
    }

    /// The relay a server request belongs to: the call whose response stream it came on
    /// (streamable HTTP says so), else the only call running with a relay. `None` when
    /// that is ambiguous: guessing could hand one client's data to another.
    pub(crate) fn owner(&self, origin: Option<&InboundStreamOrigin>) -> Option<Arc<dyn Relay>> {
        let calls = self.calls();
        if let Some(InboundStreamOrigin::OutboundRequest(id)) = origin
            && let Some((_, call)) = calls.running.iter().find(|(_, c)| &c.id == id)
        {
            return Some(call.relay.clone());
        }
        match calls.running.as_slice() {
            [(_, only)] => Some(only.relay.clone()),
            _ => None,
        }
    }

    /// The relay a log belongs to: the call its `_meta` names by progress token or
    /// request id, running or ended within [`LINGER`]. A log that names no call goes to
    /// no call: which call caused it cannot be known, and it may be another client's.
    pub(crate) fn log_owner(&self, about: &About) -> Option<Arc<dyn Relay>> {
        if about.token.is_none() && about.id.is_none() {
            return None;
        }
        let calls = self.calls();
        if let Some((_, call)) = calls.running.iter().find(|(_, c)| c.is(about)) {
            return Some(call.relay.clone());
        }
        calls
            .ended
            .iter()
            .take_while(|(at, _)| at.elapsed() < LINGER)
            .find(|(_, c)| c.is(about))
            .map(|(_, c)| c.relay.clone())
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
        let Some(at) = calls.running.iter().position(|(k, _)| *k == self.key) else {
            return;
        };
        let (_, call) = calls.running.swap_remove(at);
        let now = Instant::now();
        calls.ended.push_front((now, call));
        while calls
            .ended
            .back()
            .is_some_and(|(at, _)| now.duration_since(*at) >= LINGER)
            || calls.ended.len() > ENDED_MAX
        {
            calls.ended.pop_back();
        }
    }
}
