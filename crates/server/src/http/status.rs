//! `/healthz`, `/readyz`, `/status` and `/metrics`.

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

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
        // A lost registry source does not stop the gateway routing on what it last knew:
        // still ready, and said so.
        let lost: Vec<String> = state
            .reload()
            .map(|r| r.discovery)
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.state == "lost")
            .map(|s| {
                format!(
                    "registry source {} unreachable for {}s ({}); routing on the last known membership",
                    s.source,
                    s.lost_for_secs.unwrap_or_default(),
                    s.error.unwrap_or_default()
                )
            })
            .collect();
        let mut body = "ready\n".to_owned();
        for line in lost {
            body.push_str(&line);
            body.push('\n');
        }
        (StatusCode::OK, body).into_response()
    } else if state.server().is_some() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response()
    }
}

/// The registry's report plus `reload` and `gateway`, as JSON; 503 while starting.
///
/// Instances' endpoints (command lines, paths, URLs) are left out unless the request
/// asks for `?detail=full` from a loopback peer address; from elsewhere that is 403.
pub(super) async fn status(State(state): State<GatewayState>, request: Request) -> Response {
    let full = request
        .uri()
        .query()
        .is_some_and(|query| query.split('&').any(|pair| pair == "detail=full"));
    if full && !from_loopback(&request) {
        return (
            StatusCode::FORBIDDEN,
            "Forbidden: /status?detail=full (endpoints, command lines, paths) is served only to \
             clients on the gateway's own machine (a loopback address); ask without `detail`\n",
        )
            .into_response();
    }
    let reload = state.reload();
    let Some(server) = state.server() else {
        let body = json!({ "summary": { "status": "starting" }, "reload": reload });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    };
    let mut report = server.registry().report_json();
    if !full {
        hide_endpoints(&mut report);
    }
    if let Some(object) = report.as_object_mut() {
        object.insert(
            "detail".to_owned(),
            Value::from(if full { "full" } else { "basic" }),
        );
        let reload = reload.unwrap_or_default();
        object.insert(
            "discovery".to_owned(),
            serde_json::to_value(&reload.discovery).unwrap_or_default(),
        );
        object.insert(
            "reload".to_owned(),
            serde_json::to_value(reload).unwrap_or_default(),
        );
        object.insert(
            "anomalies".to_owned(),
            serde_json::to_value(server.registry().anomalies()).unwrap_or_default(),
        );
        object.insert(
            "gateway".to_owned(),
            json!({
                "ready": state.is_ready(),
                "in_flight": server.in_flight(),
                "requests_in_flight": state.requests_in_flight(),
                "clients": server.connected_clients(),
                "worker_threads": tokio::runtime::Handle::current().metrics().num_workers(),
            }),
        );
    }
    Json(report).into_response()
}

/// Whether the connection comes from this machine; unknown peers are not.
fn from_loopback(request: &Request) -> bool {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().to_canonical().is_loopback())
}

/// Removes each instance's `endpoint` (its command line or URL) and the same text
/// from its health `reason`, which often quotes it.
fn hide_endpoints(report: &mut Value) {
    let Some(instances) = report.get_mut("instances").and_then(Value::as_array_mut) else {
        return;
    };
    for instance in instances.iter_mut().filter_map(Value::as_object_mut) {
        let Some(Value::String(endpoint)) = instance.remove("endpoint") else {
            continue;
        };
        let name = instance
            .get("instance")
            .and_then(Value::as_str)
            .unwrap_or("this instance")
            .to_owned();
        if let Some(Value::String(reason)) = instance.get_mut("reason")
            && !endpoint.is_empty()
        {
            *reason = reason.replace(&endpoint, &name);
        }
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::body::Body;

    use super::*;

    fn request(uri: &str, peer: Option<&str>) -> Request {
        let mut request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        if let Some(peer) = peer {
            let peer: SocketAddr = peer.parse().unwrap();
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        request
    }

    #[test]
    fn only_loopback_peers_are_local() {
        assert!(from_loopback(&request("/", Some("127.0.0.1:5000"))));
        assert!(from_loopback(&request("/", Some("[::1]:5000"))));
        assert!(from_loopback(&request(
            "/",
            Some("[::ffff:127.0.0.1]:5000")
        )));
        assert!(!from_loopback(&request("/", Some("10.0.0.7:5000"))));
        assert!(!from_loopback(&request("/", None)));
    }

    #[tokio::test]
    async fn full_detail_is_refused_to_other_machines() {
        let state = GatewayState::default();
        let refused = status(
            State(state.clone()),
            request("/status?detail=full", Some("10.0.0.7:5000")),
        )
        .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        // Without `detail`, the same peer gets the (starting) report.
        let basic = status(State(state), request("/status", Some("10.0.0.7:5000"))).await;
        assert_eq!(basic.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
