//! The gateway in front of three replicas keeps every call working while one dies.

#[path = "support/gateway.rs"]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Gateway, config_yaml, eventually};
use tokio_util::sync::CancellationToken;
use toolmesh::{CallContext, layers::core::CallToolResult};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

/// Concurrent callers.
const CONCURRENCY: usize = 8;
/// How long each call sleeps on its replica: long enough that a call seen in flight on
/// the victim is still there when it is killed.
const CALL_MS: u64 = 300;
/// How long the load goes on after the kill.
const AFTER_KILL: Duration = Duration::from_secs(2);
/// The load stops here whatever happens.
const LOAD_LIMIT: Duration = Duration::from_secs(40);

#[tokio::test]
async fn killing_a_replica_under_load_fails_no_call() -> anyhow::Result<()> {
    let mut replicas = Vec::new();
    for id in ["r1", "r2", "r3"] {
        replicas.push(FixtureServer::start(FixtureOptions::new().instance_id(id)).await?);
    }
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("toolmesh.yaml");
    std::fs::write(
        &config,
        config_yaml(&[(
            "fixture",
            replicas.iter().map(|r| r.http_url().to_owned()).collect(),
        )]),
    )?;
    let gateway = Gateway::with_config(&config, &[]).await?;
    let session = gateway.session().await?;

    // Callers loop until `stop` (set after the kill) or the hard limit.
    let stop = CancellationToken::new();
    let limit = tokio::time::Instant::now() + LOAD_LIMIT;
    let callers: Vec<_> = (0..CONCURRENCY)
        .map(|worker| {
            let session = session.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let mut n = 0;
                while !stop.is_cancelled() && tokio::time::Instant::now() < limit {
                    n += 1;
                    let ctx = CallContext::with_timeout(Duration::from_secs(20));
                    let arguments = json!({ "ms": CALL_MS }).as_object().cloned();
                    let outcome = match session.call_tool("fixture__sleep", arguments, &ctx).await {
                        Ok(result) if result.is_error != Some(true) => Ok(attempts(&result)),
                        Ok(result) => Err(format!(
                            "worker {worker} call {n}: tool error {:?}",
                            result.content
                        )),
                        Err(e) => Err(format!("worker {worker} call {n}: {e}")),
                    };
                    outcomes.push(outcome);
                }
                outcomes
            })
        })
        .collect();

    // Kill the second replica while a call is in flight on it (its in-flight gauge).
    eventually(
        Duration::from_secs(20),
        "a call in flight on fixture-2",
        || async {
            let status = gateway.status().await.ok()?;
            (victim(&status)?["load"]["outstanding"].as_u64()? > 0).then_some(())
        },
    )
    .await?;
    replicas[1].kill().await;
    tokio::time::sleep(AFTER_KILL).await;
    let outcomes = support::stop_all_ok(&stop, callers).await?;

    // The status page shows the dead replica out of rotation, and an attempt that failed
    // on it: a call was failed over, since none failed.
    let status = eventually(Duration::from_secs(15), "fixture-2 marked down", || async {
        let status = gateway.status().await.ok()?;
        let dead = victim(&status)?;
        (dead["healthy"] == false || dead["breaker"] == "open").then_some(status)
    })
    .await?;
    let dead = victim(&status).cloned().unwrap_or_default();
    assert!(
        dead["load"]["failures"].as_u64() >= Some(1),
        "no attempt failed on the killed replica, so nothing was failed over: {status}"
    );
    // Where the gateway reports routing in the result, a call shows the failover.
    let routed: Vec<u64> = outcomes.iter().filter_map(|a| *a).collect();
    assert!(
        routed.is_empty() || routed.iter().any(|&a| a > 1),
        "no call reports more than one attempt: {routed:?}"
    );
    let served: u64 = status["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["load"]["calls"].as_u64().unwrap_or(0))
        .sum();
    assert!(served >= outcomes.len() as u64, "{status}");

    let (code, metrics) = gateway.get("/metrics").await?;
    assert_eq!(code, 200);
    assert!(metrics.contains("toolmesh_calls_total"), "{metrics}");
    assert!(metrics.contains("instance=\"fixture-1\""), "{metrics}");
    session.close(Duration::from_secs(1)).await;
    Ok(())
}

/// The killed replica's row of `/status`.
fn victim(status: &Value) -> Option<&Value> {
    status["instances"]
        .as_array()?
        .iter()
        .find(|i| i["instance"] == "fixture-2")
}

/// The attempts the gateway reports in the result's routing, when it does.
fn attempts(result: &CallToolResult) -> Option<u64> {
    result.meta.as_ref()?.0.get("io.toolmesh/routing")?["attempts"].as_u64()
}
