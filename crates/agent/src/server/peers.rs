//! The connected clients, told when the catalog changes.

use std::{
    collections::HashMap,
    sync::{
        Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use rmcp::{Peer, RoleServer};
use tokio::sync::broadcast::{self, error::RecvError};
use toolmesh_registry::MeshEvent;

/// Sessions that completed the handshake, by a process-unique number.
#[derive(Default)]
pub(crate) struct Peers {
    next: AtomicU64,
    live: Mutex<HashMap<u64, Peer<RoleServer>>>,
}

impl Peers {
    /// Remembers `peer`; returns its number. Closed peers are dropped on the way.
    pub(crate) fn register(&self, peer: Peer<RoleServer>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let count = {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.retain(|_, p| !p.is_transport_closed());
            live.insert(id, peer);
            live.len()
        };
        metrics::gauge!("toolmesh_gateway_sessions").set(count as f64);
        id
    }

    /// The peers still connected (closed ones are forgotten).
    pub(crate) fn live(&self) -> Vec<Peer<RoleServer>> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, p| !p.is_transport_closed());
        metrics::gauge!("toolmesh_gateway_sessions").set(live.len() as f64);
        live.values().cloned().collect()
    }

    /// Tells every connected peer that the tool list changed.
    pub(crate) async fn notify_tool_list_changed(&self) {
        let peers = self.live();
        tracing::debug!(peers = peers.len(), "notifying tools/list_changed");
        for peer in peers {
            if let Err(error) = peer.notify_tool_list_changed().await {
                tracing::debug!(%error, "could not notify a client of the tool list change");
            }
        }
    }
}

/// Follows `events` until the registry or the server is gone, notifying the peers of
/// each catalog change (a burst of changes becomes one notification).
pub(crate) async fn follow_catalog(
    mut events: broadcast::Receiver<MeshEvent>,
    peers: Weak<Peers>,
    closing: tokio_util::sync::CancellationToken,
) {
    loop {
        let event = tokio::select! {
            () = closing.cancelled() => return,
            event = events.recv() => event,
        };
        let changed = match event {
            Ok(MeshEvent::CatalogChanged { .. }) | Err(RecvError::Lagged(_)) => true,
            Ok(_) => false,
            Err(RecvError::Closed) => return,
        };
        if !changed {
            continue;
        }
        // Coalesce what is already queued.
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = events.try_recv() {}
        let Some(peers) = peers.upgrade() else { return };
        peers.notify_tool_list_changed().await;
    }
}
