//! A tour of toolmesh's transport layer: starts the fixture MCP server, connects to it
//! over stdio, streamable HTTP and WebSocket, and calls tools on each.
//!
//! Run it with `cargo run --example tour`.

use std::time::Duration;

use toolmesh::{CallContext, Endpoint, ServerEvent, Session};
use toolmesh_testkit::{FixtureOptions, FixtureServer, stdio_command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new().instance_id("tour")).await?;
    let (program, args) = stdio_command(&FixtureOptions::new().instance_id("tour-stdio"));
    let endpoints = [
        Endpoint::stdio(program.to_string_lossy(), args).named("stdio"),
        Endpoint::url(server.http_url()).named("http"),
        Endpoint::url(server.ws_url()).named("websocket"),
    ];

    for endpoint in &endpoints {
        let session = Session::connect(endpoint).await?;
        let ctx = CallContext::with_timeout(Duration::from_secs(5));
        let tools = session.list_tools(&ctx).await?;
        println!(
            "{} — {} {} (protocol {}), tools: {}",
            session.label(),
            session
                .server_info()
                .server_info
                .as_ref()
                .map_or("?", |i| i.name.as_str()),
            session.transport(),
            session.protocol_version().as_str(),
            tools
                .iter()
                .map(|t| t.name.as_ref())
                .collect::<Vec<_>>()
                .join(", "),
        );

        let sum = session
            .call_tool(
                "add",
                serde_json::json!({"a": 2, "b": 40}).as_object().cloned(),
                &ctx,
            )
            .await?;
        println!(
            "  add(2, 40) -> {}",
            serde_json::to_string(&sum.structured_content)?
        );

        let mut events = session.events();
        session
            .call_tool(
                "progress",
                serde_json::json!({"steps": 3}).as_object().cloned(),
                &ctx,
            )
            .await?;
        let mut steps = 0;
        while steps < 3 {
            match tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
                Ok(Ok(ServerEvent::Progress(p))) => {
                    steps += 1;
                    println!("  progress {}/{}", p.progress, p.total.unwrap_or_default());
                }
                Ok(Ok(_)) => {} // log messages and the like
                _ => break,
            }
        }

        let slow = session
            .call_tool(
                "sleep",
                serde_json::json!({"ms": 5000}).as_object().cloned(),
                &CallContext::with_timeout(Duration::from_millis(200)),
            )
            .await;
        match slow {
            Err(e) => println!("  sleep(5s) with a 200 ms deadline -> {e} [{}]", e.kind()),
            Ok(_) => println!("  sleep(5s) unexpectedly finished within 200 ms"),
        }
    }
    Ok(())
}
