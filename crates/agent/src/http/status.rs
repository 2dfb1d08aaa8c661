//! `/healthz`, `/readyz`, `/status` and `/metrics`.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::GatewayState;

/// 200 `ok` while the process serves HTTP at all.
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// 200 once the catalog is served, 503 while starting or shutting down, or while no
/// tool can be offered because every configured server is down.
pub(super) async fn readyz(State(state): State<GatewayState>) -> Response {
    let registry = state.server().map(|server| server.registry());
    if registry.is_some_and(|r| r.catalog().is_empty() && !r.services().is_empty()) {
        let body = "no tools: every configured server is down; see /status\n";
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    } else if state.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else if state.server().is_some() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

/// The registry's report plus `reload` and `gateway`, as JSON; 503 while starting.
pub(super) async fn status(State(state): State<GatewayState>) -> Response {
    let reload = state.reload();
    let Some(server) = state.server() else {
        let body = json!({ "summary": { "status": "starting" }, "reload": reload });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    };
    let mut report = server.registry().report_json();
    if let Some(object) = report.as_object_mut() {
        object.insert(
            "reload".to_owned(),
            serde_json::to_value(reload.unwrap_or_default()).unwrap_or_default(),
        );
        object.insert(
            "gateway".to_owned(),
            json!({
                "ready": state.is_ready(),
                "in_flight": server.in_flight(),
                "requests_in_flight": state.requests_in_flight(),
                "clients": server.connected_clients(),
            }),
        );
    }
    Json(report).into_response()
}

/// Prometheus text exposition; 404 when no recorder was installed.
pub(super) async fn metrics(State(state): State<GatewayState>) -> Response {
    match state.inner.metrics.get() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no metrics recorder is installed in this process\n",
        )
            .into_response(),
    }
}
