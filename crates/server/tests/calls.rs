//! `tools/call` through the HTTP edge with a real MCP client in front of a real fixture:
//! arguments checked against the whole input schema, routing metadata in `_meta`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use toolmesh_core::{CallContext, ServerId};
use toolmesh_registry::{Registry, RegistryOptions, ServiceSpec};
use toolmesh_server::{CatalogServer, GatewayState, HttpOptions, HttpServer, ROUTING_META_KEY};
use toolmesh_testkit::{FixtureOptions, FixtureServer};
use toolmesh_transport::{Endpoint, Session};

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(10))
}

/// A fixture, a gateway in front of it and a client session to the gateway.
async fn connect() -> anyhow::Result<(FixtureServer, Registry, CancellationToken, Session)> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let spec = ServiceSpec::single(ServerId::new("fx"), Endpoint::url(fixture.http_url()));
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let state = GatewayState::ready(CatalogServer::new(registry.clone()), HttpOptions::default());
    let server = HttpServer::bind("127.0.0.1:0".parse()?).await?;
    let url = server.mcp_url();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.serve(state, shutdown.clone()));
    let session = Session::connect(&Endpoint::url(url)).await?;
    Ok((fixture, registry, shutdown, session))
}

fn arguments(value: Value) -> Option<serde_json::Map<String, Value>> {
    value.as_object().cloned()
}

#[tokio::test]
async fn arguments_are_checked_against_the_whole_schema() -> anyhow::Result<()> {
    let (_fixture, registry, shutdown, session) = connect().await?;
    // `sleep`'s schema says `ms` is an integer of at least 0: -5 has the right type but
    // breaks the minimum, which a required/type check lets through to the server.
    let refused = session
        .call_tool("fx__sleep", arguments(json!({"ms": -5})), &ctx())
        .await;
    let message = match refused {
        Ok(result) => anyhow::bail!("-5 ms must be refused before the call: {result:?}"),
        Err(error) => error.to_string(),
    };
    assert!(message.contains("`/ms`"), "{message}");
    assert!(message.contains("minimum"), "{message}");

    let result = session
        .call_tool("fx__sleep", arguments(json!({"ms": 1})), &ctx())
        .await?;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    // A missing required argument still names it.
    let missing = session.call_tool("fx__echo", None, &ctx()).await;
    let message = missing.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("missing required argument `message`"),
        "{message}"
    );
    shutdown.cancel();
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn results_carry_the_routing_metadata() -> anyhow::Result<()> {
    let (_fixture, registry, shutdown, session) = connect().await?;
    let result = session
        .call_tool("fx__echo", arguments(json!({"message": "hi"})), &ctx())
        .await?;
    let meta = result
        .meta
        .ok_or_else(|| anyhow::anyhow!("no _meta in the result"))?;
    let routing = &meta[ROUTING_META_KEY];
    assert_eq!(ROUTING_META_KEY, "io.toolmesh/routing");
    assert_eq!(routing["service"], "fx", "{routing}");
    assert_eq!(routing["instance"], "fx-1", "{routing}");
    assert_eq!(routing["attempts"], 1, "{routing}");
    assert_eq!(routing["failovers"], 0, "{routing}");
    assert!(
        routing["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{routing}"
    );
    assert!(routing["strategy"].is_string(), "{routing}");
    assert_eq!(routing["cache_hit"], false, "{routing}");
    assert_eq!(routing["degraded"], false, "{routing}");
    assert_eq!(routing["tried"], json!([]), "{routing}");
    shutdown.cancel();
    registry.shutdown().await;
    Ok(())
}
