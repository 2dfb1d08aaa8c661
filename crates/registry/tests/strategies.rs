//! Each strategy distributes calls as specified, against real fixture processes.

mod common;

use std::collections::HashMap;

use common::*;
use toolmesh_registry::Strategy;
use toolmesh_testkit::FixtureOptions;

async fn tally(
    registry: &toolmesh_registry::Registry,
    tool: &str,
    calls: usize,
) -> anyhow::Result<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for _ in 0..calls {
        let routed = registry
            .call(tool, args(serde_json::json!({"message": "x"})), &ctx())
            .await?;
        *counts.entry(answered_by(&routed)).or_default() += 1;
    }
    Ok(counts)
}

#[tokio::test]
async fn round_robin_is_exact() -> anyhow::Result<()> {
    let servers = fleet("rr", 3, |_| FixtureOptions::new()).await?;
    let registry = registry(vec![service("rr", &servers, Strategy::RoundRobin)]).await?;
    let mut sequence = Vec::new();
    for _ in 0..30 {
        let routed = registry
            .call(
                "rr__echo",
                args(serde_json::json!({"message": "x"})),
                &ctx(),
            )
            .await?;
        sequence.push(answered_by(&routed));
    }
    for (i, who) in sequence.iter().enumerate().skip(3) {
        assert_eq!(
            who,
            &sequence[i - 3],
            "rotation breaks at call {i}: {sequence:?}"
        );
    }
    let counts = tally(&registry, "rr__echo", 30).await?;
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![10, 10, 10],
        "{counts:?}"
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn weighted_follows_weights_within_tolerance() -> anyhow::Result<()> {
    let servers = fleet("w", 2, |_| FixtureOptions::new()).await?;
    let mut spec = service("w", &servers, Strategy::Weighted);
    spec.instances[1].weight = 3;
    let registry = registry(vec![spec]).await?;
    let counts = tally(&registry, "w__echo", 400).await?;
    let heavy = counts.get("w-2").copied().unwrap_or_default() as f64 / 400.0;
    assert!(
        (0.65..=0.85).contains(&heavy),
        "expected ~75% on the weight-3 instance: {counts:?}"
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn least_outstanding_prefers_the_idle_instance() -> anyhow::Result<()> {
    let servers = fleet("lo", 2, |_| FixtureOptions::new()).await?;
    let registry = registry(vec![service("lo", &servers, Strategy::LeastOutstanding)]).await?;
    // Occupy one instance with a slow call, then everything else goes to the other.
    let slow = {
        let registry = registry.clone();
        tokio::spawn(async move {
            registry
                .call("lo__sleep", args(serde_json::json!({"ms": 1500})), &ctx())
                .await
        })
    };
    let busy_instance = || {
        registry
            .instance_reports()
            .into_iter()
            .find(|r| r.load.outstanding == 1)
            .map(|r| r.instance.to_string())
    };
    wait_for("the slow call to be in flight", async || {
        busy_instance().is_some()
    })
    .await;
    let busy = busy_instance().unwrap_or_default();
    let counts = tally(&registry, "lo__echo", 20).await?;
    assert_eq!(
        counts.get(&busy),
        None,
        "the busy instance {busy} got calls: {counts:?}"
    );
    slow.await??;
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn latency_prefers_the_fast_instance_after_warm_up() -> anyhow::Result<()> {
    let servers = fleet("lat", 2, |i| {
        if i == 2 {
            FixtureOptions::new().latency_ms(40)
        } else {
            FixtureOptions::new()
        }
    })
    .await?;
    let registry = registry(vec![service("lat", &servers, Strategy::Latency)]).await?;
    tally(&registry, "lat__echo", 10).await?;
    let counts = tally(&registry, "lat__echo", 50).await?;
    let fast = counts.get("lat-1").copied().unwrap_or_default();
    assert!(
        fast >= 40,
        "the fast instance should take most calls: {counts:?}"
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn capability_match_sends_calls_to_the_instance_declaring_what_they_need()
-> anyhow::Result<()> {
    let servers = fleet("cap", 3, |_| FixtureOptions::new()).await?;
    let mut spec = service("cap", &servers, Strategy::CapabilityMatch);
    spec.capabilities = vec!["echoing".into()];
    spec.instances[1].capabilities = vec!["gpu".into()];
    spec.instances[2].capabilities = vec!["gpu".into(), "eu".into()];
    let registry = registry(vec![spec]).await?;
    let tally_for = async |wanted: &[&str]| -> anyhow::Result<HashMap<String, usize>> {
        let mut counts = HashMap::new();
        for _ in 0..12 {
            let ctx = ctx().capabilities(wanted.iter().copied());
            let routed = registry
                .call("cap__echo", args(serde_json::json!({"message": "x"})), &ctx)
                .await?;
            *counts.entry(answered_by(&routed)).or_default() += 1;
        }
        Ok(counts)
    };
    // Declared by one instance only: it serves them all.
    let counts = tally_for(&["GPU", "eu"]).await?;
    assert_eq!(
        counts,
        HashMap::from([("cap-3".to_owned(), 12)]),
        "{counts:?}"
    );
    // Declared by two: they share the calls; the third never serves.
    let counts = tally_for(&["gpu"]).await?;
    assert_eq!(
        counts,
        HashMap::from([("cap-2".to_owned(), 6), ("cap-3".to_owned(), 6)]),
        "{counts:?}"
    );
    // What the service declares and the tools offer (`echo`) counts for every instance.
    let counts = tally_for(&["echo", "echoing"]).await?;
    assert_eq!(
        counts,
        HashMap::from([
            ("cap-1".to_owned(), 4),
            ("cap-2".to_owned(), 4),
            ("cap-3".to_owned(), 4)
        ]),
        "{counts:?}"
    );
    registry.shutdown().await;
    Ok(())
}
