//! Ending an MCP session with `DELETE /mcp`, answered as clients expect: `204` when the
//! session ended, `404` when the server does not know it (rmcp answers `202` to both).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

const SESSION_HEADER: &str = "mcp-session-id";

pub(super) async fn delete(
    State(sessions): State<Arc<LocalSessionManager>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::DELETE {
        return next.run(request).await;
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
    let mut response = next.run(request).await;
    if response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}
