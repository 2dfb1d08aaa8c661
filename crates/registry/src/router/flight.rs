//! One upstream fetch of a cached tool, shared by every caller that misses the cache
//! meanwhile.
//!
//! The fetch belongs to no caller: it runs in its own task, with its own deadline and no
//! client relay, so a caller that cancels or times out leaves it running for the others
//! (and its answer is cached for later callers), and no client is asked for sampling or
//! elicitation on behalf of another.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use futures::{FutureExt, future::Shared};
use toolmesh_core::{BoxFuture, CallError, CallToolResult, Phase};

use super::CallMeta;
use crate::registry::CacheKey;

/// The outcome of a shared fetch.
pub(crate) type Fetched = Result<(CallToolResult, CallMeta), CallError>;

type Flight = Shared<BoxFuture<'static, Fetched>>;

/// The fetches running now, by cache key.
#[derive(Default)]
pub(crate) struct Flights {
    running: Mutex<HashMap<CacheKey, Flight>>,
}

impl Flights {
    fn running(&self) -> MutexGuard<'_, HashMap<CacheKey, Flight>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The running fetch for `key`, or `fetch` started in its own task. `fetch` must
    /// call [`Flights::landed`] for `key` when it ends.
    pub(crate) fn join(
        &self,
        key: &CacheKey,
        tool: &str,
        fetch: impl FnOnce() -> BoxFuture<'static, Fetched>,
    ) -> Flight {
        let mut running = self.running();
        if let Some(flight) = running.get(key) {
            return flight.clone();
        }
        let task = tokio::spawn(fetch());
        let tool = tool.to_owned();
        let flight = async move {
            task.await.unwrap_or_else(|e| {
                Err(CallError::Exhausted {
                    tool,
                    tried: vec![format!("the shared fetch ended without an answer: {e}")],
                    phase: Phase::AfterSend,
                })
            })
        }
        .boxed()
        .shared();
        running.insert(key.clone(), flight.clone());
        flight
    }

    /// Forgets the fetch for `key`: the next miss starts a new one.
    pub(crate) fn landed(&self, key: &CacheKey) {
        self.running().remove(key);
    }
}
