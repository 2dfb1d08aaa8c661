//! The gateway's data plane: `tools/call` on an established streamable-HTTP session,
//! served without rmcp's server-side machinery (its session worker, channels and
//! untagged message decoding). The edge's middleware has run (Host, TLS caller, auth,
//! readiness, version and body checks); this layer parses only the JSON-RPC envelope
//! ([`envelope`]), decides in one place ([`decide`]) and either serves the call through
//! the same [`CatalogServer`](crate::CatalogServer) call as rmcp's path — the same
//! router, context, argument check, policy and relay — or hands the request, untouched,
//! to rmcp. [`relay`] answers on the request's own SSE stream, with the call's progress
//! and its server-to-client requests (whose answers the client POSTs back here).

mod decide;
mod envelope;
mod relay;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use axum::{
    body::Body,
    extract::Request,
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
};
use dashmap::DashMap;
use rmcp::{
    ErrorData,
    model::{ClientResult, RequestId},
    transport::streamable_http_server::session::local::LocalSessionManager,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use decide::Decision;

use super::GatewayState;
use crate::CatalogServer;

/// A request relayed to a client on a fast-path stream, awaiting its answer.
struct Asked {
    session: String,
    answer: oneshot::Sender<Result<ClientResult, ErrorData>>,
}

struct Inner {
    state: GatewayState,
    sessions: Arc<LocalSessionManager>,
    enabled: bool,
    /// Calls being served, by session and request id as the client wrote it.
    calls: DashMap<(String, String), CancellationToken>,
    /// Requests relayed to clients, by id as JSON text.
    asked: DashMap<String, Asked>,
    next_ask: AtomicU64,
}

/// The fast path's state: the gateway, rmcp's sessions, and what is in flight.
#[derive(Clone)]
pub(super) struct FastPath(Arc<Inner>);

impl FastPath {
    pub(super) fn new(state: GatewayState, sessions: Arc<LocalSessionManager>) -> Self {
        let enabled = state.options().fast_path;
        Self(Arc::new(Inner {
            state,
            sessions,
            enabled,
            calls: DashMap::new(),
            asked: DashMap::new(),
            next_ask: AtomicU64::new(0),
        }))
    }

    fn enabled(&self) -> bool {
        self.0.enabled
    }

    fn server(&self) -> Option<CatalogServer> {
        self.0.state.server().cloned()
    }

    /// Whether rmcp's session manager holds `session` (it answers 404 otherwise).
    async fn rmcp_knows(&self, session: &str) -> bool {
        self.0.sessions.sessions.read().await.contains_key(session)
    }

    /// Whether the fast path serves the call `id` (JSON text) of `session`.
    fn serves(&self, session: &str, id: &str) -> bool {
        self.0
            .calls
            .contains_key(&(session.to_owned(), id.to_owned()))
    }

    /// Whether `id` (JSON text) names a request the fast path relayed.
    fn asked_by_us(&self, id: &str) -> bool {
        self.0.asked.contains_key(id)
    }

    /// A fresh id for a request relayed to a client, and its JSON text.
    fn ask_id(&self) -> (RequestId, String) {
        let n = self.0.next_ask.fetch_add(1, Ordering::Relaxed);
        let text = format!("toolmesh-fast-{n}");
        let key = format!("\"{text}\"");
        (RequestId::String(text.into()), key)
    }
}

/// Inside the body check: serves what [`decide`] gives the fast path, passes
/// everything else on to `next` unchanged.
pub(super) async fn serve(
    fast: &FastPath,
    request: Request,
    next: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    if request.method() != Method::POST {
        return next(request).await;
    }
    let (parts, body) = request.into_parts();
    // Already read in full (and limited) by `requests::check`: one chunk.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("Bad Request: could not read the request body: {e}\n"),
            )
                .into_response();
        }
    };
    match decide::decide(fast, &parts, &bytes).await {
        Decision::Rmcp => next(Request::from_parts(parts, Body::from(bytes))).await,
        Decision::Fast(eligible) => relay::serve(fast.clone(), *eligible).await,
        Decision::Cancel { session, id } => {
            if let Some(token) = fast.0.calls.get(&(session, id)) {
                token.cancel();
            }
            StatusCode::ACCEPTED.into_response()
        }
        Decision::Answer { id, outcome } => {
            let session = parts
                .headers
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok());
            let asked = fast
                .0
                .asked
                .remove_if(&id, |_, asked| Some(asked.session.as_str()) == session);
            match asked {
                Some((_, asked)) => {
                    let _ = asked.answer.send(relay::client_answer(outcome));
                    StatusCode::ACCEPTED.into_response()
                }
                // Another session's id: not ours to take.
                None => next(Request::from_parts(parts, Body::from(bytes))).await,
            }
        }
    }
}
