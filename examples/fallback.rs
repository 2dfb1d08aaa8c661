//! Hyper-available fallback: one service, two preferred replicas and a backup tier. A
//! replica is killed mid-stream; calls keep succeeding, the breaker trips, and the events
//! say what happened.
//!
//! Run it with `cargo run --example fallback`.

use std::time::Duration;

use toolmesh::{CallContext, ConfigLoader, Format, Mesh, MeshEvent};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut primary = FixtureServer::start(FixtureOptions::new().instance_id("primary-a")).await?;
    let second = FixtureServer::start(FixtureOptions::new().instance_id("primary-b")).await?;
    let backup = FixtureServer::start(FixtureOptions::new().instance_id("backup")).await?;
    let yaml = format!(
        "defaults:\n  circuit_breaker: {{ failure_threshold: 1, recovery_timeout: 30s }}\n\
         servers:\n  tools:\n    strategy: round_robin\n    instances:\n\
         \x20     - {{ url: {}, id: primary-a }}\n\
         \x20     - {{ url: {}, id: primary-b }}\n\
         \x20     - {{ url: {}, id: backup, priority: 2 }}\n",
        primary.http_url(),
        second.http_url(),
        backup.http_url()
    );
    let mesh = Mesh::start(
        &ConfigLoader::new()
            .text("fallback.yaml", Format::Yaml, yaml)
            .load()?,
    )
    .await?;
    let registry = mesh.registry();
    let mut events = registry.subscribe();
    let ctx = CallContext::with_timeout(Duration::from_secs(5));

    for i in 0..12 {
        if i == 4 {
            println!("-- killing primary-a --");
            primary.kill().await;
        }
        let args = serde_json::json!({ "message": format!("call {i}") });
        let routed = registry
            .call("tools__echo", args.as_object().cloned(), &ctx)
            .await?;
        println!(
            "call {i:>2}: answered by {:<10} attempts {} failovers {}",
            routed.result.structured_content.unwrap_or_default()["instance"]
                .as_str()
                .unwrap_or("?"),
            routed.meta.attempts,
            routed.meta.failovers
        );
    }
    while let Ok(event) = events.try_recv() {
        if matches!(
            event,
            MeshEvent::BreakerTripped { .. } | MeshEvent::Failover { .. }
        ) {
            println!("event: {}", serde_json::to_string(&event)?);
        }
    }
    for instance in registry.instance_reports() {
        println!(
            "{:<10} healthy {:<5} breaker {:?} calls {} ({})",
            instance.instance,
            instance.healthy,
            instance.breaker,
            instance.load.calls,
            instance.reason
        );
    }
    mesh.shutdown().await;
    Ok(())
}
