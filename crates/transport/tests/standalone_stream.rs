//! `Session::connect` returns once the server has answered the standalone GET stream, so
//! the first call cannot overtake it and nothing sent on it right after the handshake is lost.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use futures::{StreamExt, stream};
use serde_json::{Value, json};
use toolmesh_transport::{Endpoint, Session};

/// GETs the server has answered.
#[derive(Clone, Default)]
struct Answered(Arc<AtomicUsize>);

/// How long the server takes to answer the GET: far longer than the handshake.
const GET_DELAY: Duration = Duration::from_millis(300);

async fn post_message(Json(message): Json<Value>) -> Response {
    let Some(id) = message.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    let result = if message["method"] == "initialize" {
        json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "serverInfo": { "name": "slow-get", "version": "1" },
        })
    } else {
        json!({})
    };
    let body = json!({ "jsonrpc": "2.0", "id": id, "result": result });
    ([("mcp-session-id", "s1")], Json(body)).into_response()
}

async fn get_stream(State(answered): State<Answered>, headers: HeaderMap) -> Response {
    if headers.get("mcp-session-id").is_none() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    tokio::time::sleep(GET_DELAY).await;
    answered.0.fetch_add(1, Ordering::SeqCst);
    let priming = stream::once(async { Ok::<_, std::io::Error>("id: 1\ndata: \n\n") });
    let body = Body::from_stream(priming.chain(stream::pending()));
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

#[tokio::test]
async fn connect_waits_for_the_standalone_stream() -> anyhow::Result<()> {
    let answered = Answered::default();
    let app = Router::new()
        .route(
            "/mcp",
            post(post_message)
                .get(get_stream)
                .delete(|| async { StatusCode::OK }),
        )
        .with_state(answered.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let session = Session::connect(&Endpoint::url(&url)).await?;
    assert_eq!(
        answered.0.load(Ordering::SeqCst),
        1,
        "connect returned before the server answered the standalone GET"
    );
    session.close(Duration::from_secs(2)).await;
    server.abort();
    Ok(())
}
