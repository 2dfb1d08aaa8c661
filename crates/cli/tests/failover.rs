//! The gateway in front of three replicas keeps every call working while one dies.

#[path = "support/gateway.rs"]
mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use serde_json::json;
use support::{Gateway, config_yaml, eventually};
use toolmesh::CallContext;
use toolmesh_testkit::{FixtureOptions, FixtureServer};

const CALLS: usize = 200;
const CONCURRENCY: usize = 8;

#[tokio::test]
async fn killing_a_replica_under_load_fails_no_call() -> anyhow::Result<()> {
    let mut replicas = Vec::new();
    for id in ["r1", "r2", "r3"] {
        // A little latency keeps calls in flight when the replica dies.
        replicas
            .push(FixtureServer::start(FixtureOptions::new().instance_id(id).latency_ms(2)).await?);
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

    let done = Arc::new(AtomicUsize::new(0));
    let calls = {
        let session = session.clone();
        let done = done.clone();
        tokio::spawn(async move {
            futures::stream::iter(0..CALLS)
                .map(|n| {
                    let session = session.clone();
                    let done = done.clone();
                    async move {
                        let ctx = CallContext::with_timeout(Duration::from_secs(20));
                        let arguments = json!({ "message": format!("call {n}") })
                            .as_object()
                            .cloned();
                        let outcome = session.call_tool("fixture__echo", arguments, &ctx).await;
                        done.fetch_add(1, Ordering::Relaxed);
                        match outcome {
                            Ok(result) if result.is_error != Some(true) => Ok(()),
                            Ok(result) => Err(format!("call {n}: tool error {:?}", result.content)),
                            Err(e) => Err(format!("call {n}: {e}")),
                        }
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect::<Vec<_>>()
                .await
        })
    };

    // Kill the second replica once the load is well under way.
    eventually(Duration::from_secs(30), "the first 50 calls", || {
        let done = done.clone();
        async move { (done.load(Ordering::Relaxed) >= 50).then_some(()) }
    })
    .await?;
    replicas[1].kill().await;

    let outcomes = tokio::time::timeout(Duration::from_secs(60), calls).await??;
    let failures: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert_eq!(outcomes.len(), CALLS);
    assert!(
        failures.is_empty(),
        "{} calls failed: {failures:#?}",
        failures.len()
    );

    // The status page shows the dead replica out of rotation.
    let status = eventually(Duration::from_secs(15), "fixture-2 marked down", || async {
        let status = gateway.status().await.ok()?;
        let dead = status["instances"]
            .as_array()?
            .iter()
            .find(|i| i["instance"] == "fixture-2")?
            .clone();
        (dead["healthy"] == false || dead["breaker"] == "open").then_some(status)
    })
    .await?;
    let served: u64 = status["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["load"]["calls"].as_u64().unwrap_or(0))
        .sum();
    assert!(served >= CALLS as u64, "{status}");

    let (code, metrics) = gateway.get("/metrics").await?;
    assert_eq!(code, 200);
    assert!(metrics.contains("toolmesh_calls_total"), "{metrics}");
    assert!(metrics.contains("instance=\"fixture-1\""), "{metrics}");
    session.close(Duration::from_secs(1)).await;
    Ok(())
}
