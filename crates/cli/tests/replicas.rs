//! Any gateway replica serves any request behind a load balancer: 2026-07-28 clients need
//! no session affinity (every request stands alone); 2025-11-25 sessions live in the
//! replica that created them, so the balancer pins them by `Mcp-Session-Id` — another
//! replica answers 404 and the client must start a new session (docs/scale.md).

#[path = "support/gateway.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use support::{FixtureConfig, Gateway};
use toolmesh::{CallContext, Endpoint, Session, services::ProtocolChoice};
use toolmesh_testkit::balancer::{Balance, Balancer};

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(10))
}

async fn echo(session: &Session, message: &str) -> anyhow::Result<()> {
    let result = session
        .call_tool(
            "fixture__echo",
            json!({"message": message}).as_object().cloned(),
            &ctx(),
        )
        .await?;
    anyhow::ensure!(
        format!("{:?}", result.content).contains(message),
        "{result:?}"
    );
    Ok(())
}

/// Calls each replica answered, from its `/status`.
async fn calls(gateway: &Gateway) -> anyhow::Result<u64> {
    let status = gateway.status().await?;
    Ok(status["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["load"]["calls"].as_u64().unwrap_or(0))
        .sum())
}

/// Two `toolmesh serve` replicas over one fixture, behind a balancer spreading by `balance`.
async fn replicas(balance: Balance) -> anyhow::Result<(FixtureConfig, [Gateway; 2], Balancer)> {
    let config = FixtureConfig::start("fx").await?;
    let replicas = [
        Gateway::with_config(&config.path, &[]).await?,
        Gateway::with_config(&config.path, &[]).await?,
    ];
    let balancer =
        Balancer::start(replicas.iter().map(|g| g.base.clone()).collect(), balance).await?;
    Ok((config, replicas, balancer))
}

#[tokio::test]
async fn stateless_clients_are_served_by_every_replica_in_turn() -> anyhow::Result<()> {
    let (_config, replicas, balancer) = replicas(Balance::RoundRobin).await?;
    let endpoint =
        Endpoint::url(format!("{}/mcp", balancer.base())).protocol(ProtocolChoice::V2026_07_28);
    let session = Session::connect(&endpoint).await?;
    assert_eq!(session.protocol_version().as_str(), "2026-07-28");
    assert!(
        session
            .list_tools(&ctx())
            .await?
            .iter()
            .any(|t| t.name == "fixture__echo")
    );
    for n in 0..10 {
        echo(&session, &format!("call {n}")).await?;
    }
    // Round robin sent requests to both, and both answered tool calls.
    let served = balancer.served();
    assert!(served.iter().all(|&n| n >= 5), "{served:?}");
    for replica in &replicas {
        assert!(calls(replica).await? >= 1, "a replica served no call");
    }
    session.close(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test]
async fn sessions_of_2025_11_25_work_when_pinned_and_are_unknown_elsewhere() -> anyhow::Result<()> {
    let (_config, replicas, balancer) = replicas(Balance::PinnedBySession).await?;
    let endpoint = Endpoint::url(format!("{}/mcp", balancer.base()));
    // Sessions land on both replicas; each keeps working on its own.
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(Session::connect(&endpoint).await?);
    }
    for (n, session) in sessions.iter().enumerate() {
        assert_eq!(session.protocol_version().as_str(), "2025-11-25");
        for k in 0..3 {
            echo(session, &format!("session {n} call {k}")).await?;
        }
    }
    for replica in &replicas {
        assert!(
            calls(replica).await? >= 3,
            "sessions did not spread over both replicas"
        );
    }

    // Unpinned, a session's request reaching the other replica is refused with 404, the
    // answer after which a client starts a new session.
    let http = reqwest::Client::new();
    let created = http
        .post(&replicas[0].url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await?;
    let id = created
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("a session id from the first replica");
    let elsewhere = http
        .post(&replicas[1].url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "2025-11-25")
        .body(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string())
        .send()
        .await?;
    assert_eq!(
        elsewhere.status().as_u16(),
        404,
        "{:?}",
        elsewhere.text().await
    );
    for session in sessions {
        session.close(Duration::from_secs(1)).await;
    }
    Ok(())
}
