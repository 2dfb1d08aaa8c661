//! The connected clients, told when the catalog changes.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use rmcp::{Peer, RoleServer, model::ResourceUpdatedNotificationParam};
use tokio::sync::broadcast::{self, error::RecvError};
use toolmesh_registry::MeshEvent;

use super::relay::ClientState;

/// A connected client: its peer and what it asked for itself.
pub(crate) type Client = (Peer<RoleServer>, Arc<ClientState>);

/// Sessions that completed the handshake, by a process-unique number.
#[derive(Default)]
pub(crate) struct Peers {
    next: AtomicU64,
    live: Mutex<HashMap<u64, Client>>,
    /// The same clients by streamable-HTTP session id (`Mcp-Session-Id`), for the
    /// gateway's `tools/call` fast path.
    by_session: RwLock<HashMap<Arc<str>, Client>>,
}

impl Peers {
    /// Remembers `peer`; returns its number. Closed peers are dropped on the way.
    pub(crate) fn register(&self, peer: Peer<RoleServer>, client: Arc<ClientState>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let count = {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            live.retain(|_, (p, _)| !p.is_transport_closed());
            live.insert(id, (peer, client));
            live.len()
        };
        metrics::gauge!("toolmesh_gateway_sessions").set(count as f64);
        id
    }

    /// Remembers the client of the streamable-HTTP session `session`. Closed ones are
    /// dropped on the way.
    pub(crate) fn register_session(&self, session: &str, client: Client) {
        let mut sessions = self.by_session.write().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, (p, _)| !p.is_transport_closed());
        sessions.insert(session.into(), client);
    }

    /// The client of the streamable-HTTP session `session`, while it is connected.
    pub(crate) fn session(&self, session: &str) -> Option<Client> {
        let sessions = self.by_session.read().unwrap_or_else(|p| p.into_inner());
        sessions
            .get(session)
            .filter(|(p, _)| !p.is_transport_closed())
            .cloned()
    }

    /// The peers still connected (closed ones are forgotten).
    pub(crate) fn live(&self) -> Vec<Client> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|_, (p, _)| !p.is_transport_closed());
        metrics::gauge!("toolmesh_gateway_sessions").set(live.len() as f64);
        live.values().cloned().collect()
    }

    /// Tells every connected peer that the tool, prompt and resource lists changed.
    pub(crate) async fn notify_list_changed(&self) {
        let peers = self.live();
        tracing::debug!(peers = peers.len(), "notifying list_changed");
        for (peer, _) in peers {
            let told = async {
                peer.notify_tool_list_changed().await?;
                peer.notify_prompt_list_changed().await?;
                peer.notify_resource_list_changed().await
            };
            if let Err(error) = told.await {
                tracing::debug!(%error, "could not notify a client of the list change");
            }
        }
    }

    /// Tells the peers following `uri` that it changed.
    async fn notify_resource_updated(&self, uri: &str) {
        for (peer, client) in self.live() {
            if !client.follows(uri) {
                continue;
            }
            let param = ResourceUpdatedNotificationParam::new(uri.to_owned());
            if let Err(error) = peer.notify_resource_updated(param).await {
                tracing::debug!(%error, "could not notify a client of a resource update");
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
            Ok(MeshEvent::ResourceUpdated { uri }) => {
                let Some(peers) = peers.upgrade() else { return };
                peers.notify_resource_updated(&uri).await;
                false
            }
            Ok(_) => false,
            Err(RecvError::Closed) => return,
        };
        if !changed {
            continue;
        }
        // Coalesce the catalog changes already queued; resource updates still go out.
        let Some(peers) = peers.upgrade() else { return };
        loop {
            match events.try_recv() {
                Ok(MeshEvent::ResourceUpdated { uri }) => peers.notify_resource_updated(&uri).await,
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        peers.notify_list_changed().await;
    }
}
