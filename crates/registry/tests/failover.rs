//! Failover, retry safety, tiers, caching, hot changes and names — against real fixtures.

mod common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use common::*;
use futures::StreamExt;
use toolmesh_core::{CallError, ErrorKind, Phase, ServerId};
use toolmesh_registry::{Strategy, ToolPolicy};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

/// Runs `total` calls of `tool` with `concurrency` in flight; SIGKILLs `victim` after
/// `kill_after` completions. Returns every result in completion order.
async fn load_with_kill(
    registry: &toolmesh_registry::Registry,
    tool: &str,
    total: usize,
    concurrency: usize,
    mut victim: FixtureServer,
    kill_after: usize,
) -> Vec<Result<toolmesh_registry::Routed, CallError>> {
    let mut results = Vec::with_capacity(total);
    let mut calls = futures::stream::iter(0..total)
        .map(|i| {
            let registry = registry.clone();
            let tool = tool.to_owned();
            async move {
                registry
                    .call(
                        &tool,
                        args(serde_json::json!({"message": format!("m{i}")})),
                        &ctx(),
                    )
                    .await
            }
        })
        .buffer_unordered(concurrency);
    while let Some(result) = calls.next().await {
        results.push(result);
        if results.len() == kill_after {
            victim.kill().await;
        }
    }
    results
}

#[tokio::test]
async fn killing_a_replica_mid_load_loses_no_idempotent_call() -> anyhow::Result<()> {
    let mut servers = fleet("idem", 3, |_| FixtureOptions::new().latency_ms(5)).await?;
    let registry = registry(vec![service("idem", &servers, Strategy::RoundRobin)]).await?;
    let victim = servers.remove(1);
    let results = load_with_kill(&registry, "idem__echo", 300, 16, victim, 100).await;
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of 300 failed, e.g. {}",
        failed.len(),
        failed[0]
    );
    let failovers: u32 = results.iter().flatten().map(|r| r.meta.failovers).sum();
    assert!(failovers > 0 || results.iter().flatten().all(|r| answered_by(r) != "idem-2"));
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_non_idempotent_tool_never_runs_twice_and_after_send_failures_are_reported()
-> anyhow::Result<()> {
    let mut servers = fleet("side", 3, |_| FixtureOptions::new().latency_ms(5)).await?;
    let registry = registry(vec![service("side", &servers, Strategy::RoundRobin)]).await?;
    let victim = servers.remove(1);
    let results = load_with_kill(&registry, "side__counter", 300, 16, victim, 100).await;

    let mut counts: HashMap<String, Vec<u64>> = HashMap::new();
    for routed in results.iter().flatten() {
        // A success may follow failures only if none of them could have run the tool.
        for failure in &routed.meta.tried {
            assert_eq!(
                failure.phase,
                Phase::BeforeSend,
                "retried after a send: {failure:?}"
            );
        }
        let count = routed.result.structured_content.clone().unwrap_or_default()["count"].as_u64();
        counts
            .entry(answered_by(routed))
            .or_default()
            .push(count.unwrap_or_default());
    }
    for (instance, mut seen) in counts {
        let n = seen.len();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), n, "{instance} reported a count twice");
        if instance != "side-2" {
            // Survivors: every execution was answered exactly once, so counts are 1..=n.
            assert_eq!(
                seen.last().copied(),
                Some(n as u64),
                "{instance} executed calls it did not answer"
            );
        }
    }
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(
            err.phase(),
            Phase::AfterSend,
            "only calls that may have run fail: {err}"
        );
    }
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn tier_two_serves_only_while_tier_one_is_unavailable() -> anyhow::Result<()> {
    let primary = FixtureServer::start(FixtureOptions::new().instance_id("primary")).await?;
    let backup = FixtureServer::start(FixtureOptions::new().instance_id("backup")).await?;
    let port = primary.http_port();
    let servers = [primary, backup];
    let mut spec = service("tiered", &servers, Strategy::RoundRobin);
    spec.instances[1].priority = 2;
    let [mut primary, _backup] = servers;
    let registry = registry(vec![spec]).await?;
    let echo = async |registry: &toolmesh_registry::Registry| {
        registry
            .call(
                "tiered__echo",
                args(serde_json::json!({"message": "t"})),
                &ctx(),
            )
            .await
            .map(|r| answered_by(&r))
    };
    for _ in 0..10 {
        assert_eq!(echo(&registry).await?, "primary");
    }
    primary.kill().await;
    for _ in 0..10 {
        assert_eq!(
            echo(&registry).await?,
            "backup",
            "tier 2 takes over without failed calls"
        );
    }
    let _primary =
        FixtureServer::start_on(FixtureOptions::new().instance_id("primary"), port, port).await?;
    wait_for("tier 1 to take calls again", async || {
        echo(&registry).await.is_ok_and(|who| who == "primary")
    })
    .await;
    for _ in 0..5 {
        assert_eq!(echo(&registry).await?, "primary");
    }
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn cache_hits_merge_concurrent_misses_and_serve_stale_when_all_fail() -> anyhow::Result<()> {
    let servers = fleet("cached", 1, |_| FixtureOptions::new().latency_ms(100)).await?;
    let mut spec = service("cached", &servers, Strategy::RoundRobin);
    let ttl = Duration::from_millis(400);
    spec.tools.insert(
        "counter".into(),
        ToolPolicy {
            idempotent: Some(true),
            cache_ttl: Some(ttl),
            ..ToolPolicy::default()
        },
    );
    spec.max_failover_attempts = 0;
    let [mut server] = <[_; 1]>::try_from(servers).map_err(|_| anyhow::anyhow!("one server"))?;
    let registry = Arc::new(registry(vec![spec]).await?);
    let count = |r: &toolmesh_registry::Routed| {
        r.result.structured_content.clone().unwrap_or_default()["count"].as_u64()
    };

    let concurrent = futures::future::join_all((0..10).map(|_| {
        let registry = registry.clone();
        async move { registry.call("cached__counter", None, &ctx()).await }
    }))
    .await;
    let mut hits = 0;
    for routed in &concurrent {
        let routed = routed.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(
            count(routed),
            Some(1),
            "ten concurrent misses ran the tool once"
        );
        hits += usize::from(routed.meta.cache_hit);
    }
    assert_eq!(hits, 9, "one call fetched, nine shared it");
    let hit = registry.call("cached__counter", None, &ctx()).await?;
    assert!(hit.meta.cache_hit && !hit.meta.degraded);
    assert_eq!(count(&hit), Some(1));

    server.kill().await;
    tokio::time::sleep(ttl + Duration::from_millis(100)).await;
    let stale = registry.call("cached__counter", None, &ctx()).await?;
    assert!(
        stale.meta.degraded,
        "every instance failed: the stale answer is marked degraded"
    );
    assert_eq!(count(&stale), Some(1));
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn services_are_added_changed_and_removed_while_calls_run() -> anyhow::Result<()> {
    let a = fleet("a", 1, |_| FixtureOptions::new()).await?;
    let b = fleet("b", 1, |_| FixtureOptions::new()).await?;
    let spec_a = service("a", &a, Strategy::RoundRobin);
    let registry = registry(vec![spec_a.clone()]).await?;
    let in_flight = {
        let registry = registry.clone();
        tokio::spawn(async move {
            registry
                .call("a__sleep", args(serde_json::json!({"ms": 600})), &ctx())
                .await
        })
    };
    wait_for("the slow call to start", async || {
        registry
            .instance_reports()
            .iter()
            .any(|r| r.load.outstanding == 1)
    })
    .await;
    let mut changed_a = spec_a.clone();
    changed_a.max_failover_attempts = 1;
    registry
        .apply(vec![
            changed_a.clone(),
            service("b", &b, Strategy::RoundRobin),
        ])
        .await?;
    assert_eq!(
        registry
            .spec(&ServerId::new("a"))
            .map(|s| s.max_failover_attempts),
        Some(1)
    );
    assert!(
        registry.catalog().resolve("b__echo").is_some(),
        "b's tools are in the catalog"
    );
    registry
        .call(
            "b__echo",
            args(serde_json::json!({"message": "new"})),
            &ctx(),
        )
        .await?;
    let finished = in_flight
        .await?
        .map_err(|e| anyhow::anyhow!("the in-flight call was dropped: {e}"))?;
    assert_ne!(finished.result.is_error, Some(true));

    registry
        .apply(vec![service("b", &b, Strategy::RoundRobin)])
        .await?;
    let gone = registry.call("a__echo", None, &ctx()).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::ToolNotFound, "{gone}");
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn collisions_and_invalid_names_are_clear_and_long_names_stay_reversible()
-> anyhow::Result<()> {
    let one = fleet("one", 1, |_| FixtureOptions::new()).await?;
    let two = fleet("two", 1, |_| FixtureOptions::new()).await?;
    let first = service("first", &one, Strategy::RoundRobin);
    let mut second = service("second", &two, Strategy::RoundRobin);
    second.namespace = "first".into();
    let long_ns = "n".repeat(60);
    let mut long = service("long", &one, Strategy::RoundRobin);
    long.namespace = long_ns.clone();
    let registry = registry(vec![first, second, long]).await?;
    let problems = registry.catalog().problems().to_vec();
    assert!(
        problems.iter().any(|p| p.service.as_str() == "second"
            && p.problem.contains("collides")
            && p.problem.contains("`first`")),
        "{problems:?}"
    );
    assert!(!registry.health_summary().problems.is_empty());

    let entry = registry
        .catalog()
        .entries()
        .iter()
        .find(|e| e.name.namespace() == long_ns && e.name.tool() == "echo")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("long-namespace echo missing"))?;
    assert!(
        entry.rendered.len() <= 64
            && entry
                .rendered
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    );
    let routed = registry
        .call(
            &entry.rendered,
            args(serde_json::json!({"message": "long"})),
            &ctx(),
        )
        .await?;
    assert_eq!(
        routed.meta.service.as_ref().map(ServerId::as_str),
        Some("long")
    );

    let mut bad = service("bad", &one, Strategy::RoundRobin);
    bad.namespace = "has space".into();
    let err = registry.add_service(bad).await.unwrap_err().to_string();
    assert!(
        err.contains("has space") && err.contains("namespace"),
        "{err}"
    );

    let unknown = registry.call("first__ech", None, &ctx()).await.unwrap_err();
    assert!(unknown.to_string().contains("did you mean"), "{unknown}");
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_shared_cached_fetch_outlives_the_caller_that_started_it() -> anyhow::Result<()> {
    let servers = fleet("flight", 1, |_| FixtureOptions::new()).await?;
    let mut spec = service("flight", &servers, Strategy::RoundRobin);
    spec.tools.insert(
        "sleep".into(),
        ToolPolicy {
            cache_ttl: Some(Duration::from_secs(60)),
            ..ToolPolicy::default()
        },
    );
    spec.max_failover_attempts = 0;
    let registry = registry(vec![spec]).await?;
    let call = |ctx: toolmesh_core::CallContext| {
        let registry = registry.clone();
        tokio::spawn(async move {
            registry
                .call("flight__sleep", args(serde_json::json!({"ms": 800})), &ctx)
                .await
        })
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let first = call(ctx().cancel_with(cancel.clone()));
    wait_for("the first caller's fetch to be in flight", async || {
        registry.instance_reports()[0].load.outstanding == 1
    })
    .await;
    let second = call(ctx());
    // A caller waits under its own deadline, whatever the fetch has.
    let impatient = call(toolmesh_core::CallContext::with_timeout(
        Duration::from_millis(100),
    ));
    cancel.cancel();

    let first = tokio::time::timeout(Duration::from_millis(500), first).await??;
    assert!(
        matches!(first, Err(CallError::Cancelled { .. })),
        "the first caller's own cancellation ends its wait at once: {first:?}"
    );
    let impatient = impatient.await?;
    assert!(
        matches!(impatient, Err(CallError::Timeout { .. })),
        "{impatient:?}"
    );
    let second = second.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(answered_by(&second), "flight-1");
    let load = registry.instance_reports()[0].load.clone();
    assert_eq!(
        (load.outstanding, load.calls),
        (0, 1),
        "one upstream call served both: neither cancelled nor repeated"
    );
    let hit = registry
        .call(
            "flight__sleep",
            args(serde_json::json!({"ms": 800})),
            &ctx(),
        )
        .await?;
    assert!(hit.meta.cache_hit, "the shared answer was cached");
    registry.shutdown().await;
    Ok(())
}
