//! The HTTP edge in process, in front of a real fixture server: readiness, list-changed
//! notifications, cancellation reaching the router, stdio.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use toolmesh_core::{CallContext, ServerId};
use toolmesh_registry::{Registry, RegistryOptions, ServiceSpec};
use toolmesh_server::{CatalogServer, GatewayState, HttpOptions, HttpServer, ServerOptions};
use toolmesh_testkit::{FixtureOptions, FixtureServer};
use toolmesh_transport::{Endpoint, ServerEvent, Session};

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(10))
}

async fn fixture_registry(fixture: &FixtureServer, name: &str) -> anyhow::Result<Registry> {
    let spec = ServiceSpec::single(ServerId::new(name), Endpoint::url(fixture.http_url()));
    Ok(Registry::from_specs(vec![spec], RegistryOptions::default()).await?)
}

/// Serves `state` on a free port; returns the base URL and the shutdown token.
async fn serve(state: &GatewayState) -> anyhow::Result<(String, CancellationToken)> {
    let server = HttpServer::bind("127.0.0.1:0".parse()?).await?;
    let base = format!("http://{}", server.local_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(server.serve(state.clone(), shutdown.clone()));
    Ok((base, shutdown))
}

async fn get(url: String) -> anyhow::Result<(u16, String)> {
    let response = reqwest::get(url).await?;
    Ok((response.status().as_u16(), response.text().await?))
}

#[tokio::test]
async fn readiness_follows_the_catalog_and_shutdown() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let state = GatewayState::new(HttpOptions::default());
    let (base, shutdown) = serve(&state).await?;

    assert_eq!(get(format!("{base}/healthz")).await?, (200, "ok".into()));
    assert_eq!(get(format!("{base}/readyz")).await?.0, 503);
    assert_eq!(get(format!("{base}/status")).await?.0, 503);
    assert_eq!(get(format!("{base}/metrics")).await?.0, 404);
    assert!(
        Session::connect(&Endpoint::url(format!("{base}/mcp")))
            .await
            .is_err(),
        "/mcp must refuse sessions while starting"
    );

    let registry = fixture_registry(&fixture, "fx").await?;
    state.set_ready(CatalogServer::new(registry.clone()))?;
    assert!(
        state
            .set_ready(CatalogServer::new(registry.clone()))
            .is_err()
    );
    assert_eq!(get(format!("{base}/readyz")).await?.0, 200);
    let session = Session::connect(&Endpoint::url(format!("{base}/mcp"))).await?;
    assert_eq!(session.list_tools(&ctx()).await?.len(), 9);

    shutdown.cancel();
    let unready = tokio::time::timeout(Duration::from_secs(5), async {
        while state.is_ready() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(unready.is_ok(), "still ready after shutdown");
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn clients_are_told_when_the_catalog_changes() -> anyhow::Result<()> {
    let first = FixtureServer::start(FixtureOptions::new()).await?;
    let second = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = fixture_registry(&first, "one").await?;
    let server = CatalogServer::new(registry.clone());
    let state = GatewayState::ready(server.clone(), HttpOptions::default());
    let (base, shutdown) = serve(&state).await?;
    let session = Session::connect(&Endpoint::url(format!("{base}/mcp"))).await?;
    let mut events = session.events();
    assert_eq!(session.list_tools(&ctx()).await?.len(), 9);
    // The peer registers on `notifications/initialized`, which may trail `connect`.
    tokio::time::timeout(Duration::from_secs(5), async {
        while server.connected_clients() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await?;

    registry
        .add_service(ServiceSpec::single(
            ServerId::new("two"),
            Endpoint::url(second.http_url()),
        ))
        .await?;
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(ServerEvent::ToolsChanged) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(event.is_ok(), "no notifications/tools/list_changed");
    let names: Vec<String> = session
        .list_tools(&ctx())
        .await?
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"two__echo".to_owned()), "{names:?}");
    shutdown.cancel();
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_cancelled_request_stops_the_routed_call() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = fixture_registry(&fixture, "fx").await?;
    let server = CatalogServer::with_options(
        registry.clone(),
        ServerOptions::default().call_timeout(Duration::from_secs(30)),
    );
    let state = GatewayState::ready(server.clone(), HttpOptions::default());
    let (base, shutdown) = serve(&state).await?;
    let session = Session::connect(&Endpoint::url(format!("{base}/mcp"))).await?;

    // The client gives up once its call is in flight; rmcp sends notifications/cancelled.
    let give_up = CancellationToken::new();
    let call = {
        let session = session.clone();
        let ctx = CallContext::with_timeout(Duration::from_secs(20)).cancel_with(give_up.clone());
        tokio::spawn(async move {
            session
                .call_tool(
                    "fx__sleep",
                    json!({"ms": 20_000}).as_object().cloned(),
                    &ctx,
                )
                .await
        })
    };
    let in_flight = tokio::time::timeout(Duration::from_secs(5), async {
        while server.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(in_flight.is_ok(), "the call never reached the gateway");
    assert_eq!(
        server.in_flight(),
        1,
        "the call is in flight before the drain"
    );
    let started = std::time::Instant::now();
    give_up.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(5), call).await??;
    assert!(outcome.is_err(), "{outcome:?}");
    // The gateway's call ends long before the 20 s sleep would.
    let idle = server.drain(Duration::from_secs(5)).await;
    assert!(idle, "the routed call was not cancelled");
    assert!(started.elapsed() < Duration::from_secs(6));
    shutdown.cancel();
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_same_server_answers_over_a_byte_stream() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = fixture_registry(&fixture, "fx").await?;
    let server = CatalogServer::new(registry.clone());
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(toolmesh_server::serve_io(
        server,
        tokio::io::split(server_io),
        shutdown.clone(),
    ));

    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = tokio::io::split(client_io);
    let mut lines = BufReader::new(read).lines();
    for message in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "fx__echo", "arguments": {"message": "over a pipe"}}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "fx__echo", "arguments": {}}}),
    ] {
        write.write_all(format!("{message}\n").as_bytes()).await?;
    }
    let mut answers = Vec::new();
    while answers.len() < 3 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await??
            .ok_or_else(|| anyhow::anyhow!("stream closed"))?;
        answers.push(serde_json::from_str::<serde_json::Value>(&line)?);
    }
    // Calls run concurrently: answers may come in any order.
    answers.sort_by_key(|a| a["id"].as_u64());
    assert_eq!(answers[0]["result"]["serverInfo"]["name"], "toolmesh");
    assert_eq!(
        answers[0]["result"]["capabilities"]["tools"]["listChanged"],
        true
    );
    assert_eq!(answers[1]["result"]["content"][0]["text"], "over a pipe");
    assert_eq!(answers[2]["error"]["code"], -32602);
    assert_eq!(answers[2]["error"]["data"]["field"], "message");
    shutdown.cancel();
    drop(write);
    let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn clients_of_2026_07_28_discover_and_call() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = fixture_registry(&fixture, "fx").await?;
    let state = GatewayState::ready(CatalogServer::new(registry.clone()), HttpOptions::default());
    let (base, shutdown) = serve(&state).await?;
    let endpoint = Endpoint::url(format!("{base}/mcp"))
        .protocol(toolmesh_transport::ProtocolChoice::V2026_07_28);
    let session = Session::connect(&endpoint).await?;
    assert_eq!(session.protocol_version().as_str(), "2026-07-28");
    assert_eq!(session.list_tools(&ctx()).await?.len(), 9);
    let result = session
        .call_tool(
            "fx__echo",
            json!({"message": "new protocol"}).as_object().cloned(),
            &ctx(),
        )
        .await?;
    assert!(format!("{:?}", result.content).contains("new protocol"));
    shutdown.cancel();
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn delete_ends_a_session_and_unknown_sessions_are_404() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = fixture_registry(&fixture, "fx").await?;
    let state = GatewayState::ready(CatalogServer::new(registry.clone()), HttpOptions::default());
    let (base, shutdown) = serve(&state).await?;
    let url = format!("{base}/mcp");
    let client = reqwest::Client::new();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": { "name": "raw", "version": "0" }
        }
    });
    let response = client
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no session id"))?;
    let delete = |id: String| {
        client
            .delete(&url)
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
    };
    assert_eq!(delete(session.clone()).await?.status(), 204);
    assert_eq!(delete(session).await?.status(), 404, "already ended");
    assert_eq!(delete("nope".into()).await?.status(), 404);
    shutdown.cancel();
    registry.shutdown().await;
    Ok(())
}
