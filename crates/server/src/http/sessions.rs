//! MCP sessions at the edge: ending one with `DELETE /mcp`, answered as clients expect
//! (`204` when the session ended, `404` when the server does not know it; rmcp answers `202`
//! to both), and each session bound to the caller that created it, so a session id is no
//! credential: another caller presenting it is told the session does not exist.

use std::sync::Arc;

use dashmap::DashMap;

use axum::{
    extract::Request,
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

use crate::Caller;

const SESSION_HEADER: &str = "mcp-session-id";

/// `DELETE /mcp`: `404` for a session rmcp does not know, `204` once ended.
pub(super) async fn delete(
    sessions: &LocalSessionManager,
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    if request.method() != Method::DELETE {
        return next(request).await;
    }
    if let Some(id) = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        let known = sessions.sessions.read().await.contains_key(id);
        if !known {
            return (StatusCode::NOT_FOUND, "no MCP session with this id\n").into_response();
        }
    }
    let mut response = next(request).await;
    if response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

/// Which principal created each session.
#[derive(Debug, Clone)]
pub(super) struct Owners {
    sessions: Arc<LocalSessionManager>,
    owners: Arc<DashMap<String, Arc<str>>>,
}

impl Owners {
    pub(super) fn new(sessions: Arc<LocalSessionManager>) -> Self {
        Self {
            sessions,
            owners: Arc::new(DashMap::new()),
        }
    }

    /// Forgets sessions the server no longer has, once the map has grown well past them.
    async fn sweep(&self) {
        let live = self.sessions.sessions.read().await;
        if self.owners.len() > live.len() * 2 + 64 {
            self.owners.retain(|id, _| live.contains_key(id.as_str()));
        }
    }
}

/// Refuses a session's requests from any caller but its creator (as an unknown session:
/// 404), and records the creator of each new session. Without authentication there is no
/// caller and nothing to bind.
pub(super) async fn bind(
    owners: &Owners,
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let Some(caller) = request
        .extensions()
        .get::<Caller>()
        .map(|c| c.principal.clone())
    else {
        return next(request).await;
    };
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session
        && owners.owners.get(id).is_some_and(|owner| *owner != caller)
    {
        return (StatusCode::NOT_FOUND, "no MCP session with this id\n").into_response();
    }
    let response = next(request).await;
    if session.is_none()
        && let Some(created) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        owners.owners.insert(created.to_owned(), caller);
        owners.sweep().await;
    }
    response
}
