//! Reports, events, discovery, hedging and call_many against real fixtures.

mod common;

use std::time::{Duration, Instant};

use common::*;
use toolmesh_registry::{MeshEvent, Strategy, ToolPolicy};
use toolmesh_testkit::FixtureOptions;

#[tokio::test]
async fn reports_and_events_follow_an_instance_going_down() -> anyhow::Result<()> {
    let mut servers = fleet("rep", 2, |_| FixtureOptions::new()).await?;
    let mut spec = service("rep", &servers, Strategy::RoundRobin);
    spec.capabilities = vec!["echoing".into()];
    spec.instance_config.circuit_breaker.failure_threshold = 1;
    let registry = registry(vec![spec]).await?;
    let mut events = registry.subscribe();
    for _ in 0..4 {
        registry
            .call(
                "rep__echo",
                args(serde_json::json!({"message": "r"})),
                &ctx(),
            )
            .await?;
    }
    let report = registry.report();
    assert_eq!(report.summary.status, "healthy");
    assert_eq!(report.summary.instances, 2);
    assert_eq!(report.services[0].tools, 9);
    assert!(
        report
            .instances
            .iter()
            .all(|i| i.load.calls == 2 && i.load.success_rate == 1.0)
    );
    assert!(
        report
            .instances
            .iter()
            .all(|i| i.load.p99_latency.is_some())
    );

    servers[1].kill().await;
    // Calls keep succeeding by failing over; the dead instance trips its breaker.
    for _ in 0..4 {
        registry
            .call(
                "rep__echo",
                args(serde_json::json!({"message": "r"})),
                &ctx(),
            )
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut tripped, mut failover) = (false, false);
    while !(tripped && failover) && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
            Ok(Ok(MeshEvent::BreakerTripped { instance })) => {
                tripped |= instance.as_str() == "rep-2"
            }
            Ok(Ok(MeshEvent::Failover { from, .. })) => failover |= from.as_str() == "rep-2",
            _ => {}
        }
    }
    assert!(
        tripped && failover,
        "breaker trip and failover events (tripped {tripped}, failover {failover})"
    );
    let summary = registry.health_summary();
    assert_eq!(summary.status, "degraded");
    assert_eq!(summary.instances_healthy, 1);
    let json = registry.report_json();
    assert_eq!(json["summary"]["status"], "degraded");
    assert_eq!(json["instances"][1]["breaker"], "open");
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn discovery_matches_declared_capabilities_and_tool_descriptions() -> anyhow::Result<()> {
    let a = fleet("search", 1, |_| FixtureOptions::new()).await?;
    let b = fleet("math", 1, |_| FixtureOptions::new()).await?;
    let mut search = service("search", &a, Strategy::RoundRobin);
    search.capabilities = vec!["web_search".into()];
    let math = service("math", &b, Strategy::RoundRobin);
    let registry = registry(vec![search, math]).await?;
    let found = registry.discover(&["web_search"]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].service.as_str(), "search");
    // Both fixtures have an `add` tool: probed tool names match too, declared ones rank first.
    let both = registry.discover(&["web_search", "add"]);
    assert_eq!(
        both.iter().map(|m| m.service.as_str()).collect::<Vec<_>>(),
        ["search", "math"]
    );
    let tools = registry.enable_tools(&["web_search"]);
    assert!(
        tools.contains(&"search__echo".to_owned())
            && !tools.iter().any(|t| t.starts_with("math__"))
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_slow_read_only_call_is_hedged_to_another_instance() -> anyhow::Result<()> {
    let servers = fleet("hedge", 2, |i| {
        if i == 1 {
            FixtureOptions::new().latency_ms(2000)
        } else {
            FixtureOptions::new()
        }
    })
    .await?;
    let mut spec = service("hedge", &servers, Strategy::RoundRobin);
    spec.tools.insert(
        "echo".into(),
        ToolPolicy {
            hedge_after: Some(Duration::from_millis(100)),
            ..ToolPolicy::default()
        },
    );
    let registry = registry(vec![spec]).await?;
    for _ in 0..2 {
        let started = Instant::now();
        let routed = registry
            .call(
                "hedge__echo",
                args(serde_json::json!({"message": "h"})),
                &ctx(),
            )
            .await?;
        assert_eq!(answered_by(&routed), "hedge-2", "the fast instance wins");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "no wait for the slow one"
        );
        assert!(routed.meta.attempts >= 1);
    }
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn call_many_runs_calls_concurrently_and_keeps_their_order() -> anyhow::Result<()> {
    let servers = fleet("many", 2, |_| FixtureOptions::new()).await?;
    let registry = registry(vec![service("many", &servers, Strategy::RoundRobin)]).await?;
    let calls: Vec<_> = (0..10)
        .map(|i| {
            (
                "many__sleep".to_owned(),
                args(serde_json::json!({"ms": 200 + i})),
            )
        })
        .collect();
    let started = Instant::now();
    let results = registry.call_many(calls, &ctx(), 10).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "ten 200 ms calls ran together"
    );
    for (i, r) in results.iter().enumerate() {
        let text = serde_json::to_string(
            &r.as_ref()
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .result
                .content,
        )?;
        assert!(
            text.contains(&format!("{}", 200 + i)),
            "result {i} out of order: {text}"
        );
    }
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn rate_limits_per_tool_and_principal_refuse_before_sending() -> anyhow::Result<()> {
    use toolmesh_core::{ErrorKind, Phase};
    use toolmesh_registry::{Registry, RegistryOptions};
    use toolmesh_resilience::RateLimitConfig;

    let servers = fleet("limited", 1, |_| FixtureOptions::new()).await?;
    let options = RegistryOptions {
        rate_limit_per_tool: Some(RateLimitConfig {
            per_second: 1,
            burst: 3,
        }),
        rate_limit_per_principal: Some(RateLimitConfig {
            per_second: 1,
            burst: 2,
        }),
        ..RegistryOptions::default()
    };
    let registry = Registry::from_specs(
        vec![service("limited", &servers, Strategy::RoundRobin)],
        options,
    )
    .await?;
    let count = |r: &toolmesh_registry::Routed| {
        r.result.structured_content.clone().unwrap_or_default()["count"].as_u64()
    };
    for expected in 1..=3 {
        let routed = registry.call("limited__counter", None, &ctx()).await?;
        assert_eq!(count(&routed), Some(expected));
    }
    let refused = registry
        .call("limited__counter", None, &ctx())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::RateLimited, "{refused}");
    assert_eq!(refused.phase(), Phase::BeforeSend);
    assert!(
        refused.to_string().contains("limited__counter"),
        "{refused}"
    );

    // A principal's own limit applies across tools.
    let alice = ctx().principal("alice");
    for _ in 0..2 {
        registry
            .call(
                "limited__echo",
                args(serde_json::json!({"message": "a"})),
                &alice,
            )
            .await?;
    }
    let refused = registry
        .call(
            "limited__echo",
            args(serde_json::json!({"message": "a"})),
            &alice,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::RateLimited);
    assert!(refused.to_string().contains("alice"), "{refused}");
    // Another principal is not held back by alice's limit.
    registry
        .call(
            "limited__add",
            args(serde_json::json!({"a": 1, "b": 1})),
            &ctx().principal("bob"),
        )
        .await?;
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn prompts_and_resources_are_aggregated_and_routed() -> anyhow::Result<()> {
    let a = fleet("pa", 2, |_| FixtureOptions::new()).await?;
    let b = fleet("pb", 1, |_| FixtureOptions::new()).await?;
    let registry = registry(vec![
        service("pa", &a, Strategy::RoundRobin),
        service("pb", &b, Strategy::RoundRobin),
    ])
    .await?;
    let mut prompts: Vec<String> = registry.prompts().into_iter().map(|p| p.name).collect();
    prompts.sort();
    assert_eq!(prompts, ["pa__greet", "pb__greet"]);
    let rendered = registry
        .get_prompt(
            "pb__greet",
            args(serde_json::json!({"name": "Ada"})),
            &ctx(),
        )
        .await?;
    assert!(serde_json::to_string(&rendered.messages)?.contains("Hello, Ada!"));

    // Both fixtures serve `fixture://info`: the first service keeps it, the clash is reported.
    let resources = registry.resources();
    assert_eq!(
        resources
            .iter()
            .filter(|r| r.uri == "fixture://info")
            .count(),
        1
    );
    assert!(
        registry
            .catalog()
            .problems()
            .iter()
            .any(|p| p.service.as_str() == "pb" && p.problem.contains("fixture://info"))
    );
    let read = registry.read_resource("fixture://info", &ctx()).await?;
    assert!(
        serde_json::to_string(&read.contents)?.contains("toolmesh fixture pa-"),
        "served by pa"
    );
    let missing = registry
        .get_prompt("pa__nope", None, &ctx())
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), toolmesh_core::ErrorKind::ToolNotFound);
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unprefixed_services_keep_their_own_names_and_clashes_are_reported() -> anyhow::Result<()> {
    let a = fleet("bare", 1, |_| FixtureOptions::new()).await?;
    let b = fleet("also", 1, |_| FixtureOptions::new()).await?;
    let c = fleet("ns", 1, |_| FixtureOptions::new()).await?;
    let mut bare = service("bare", &a, Strategy::RoundRobin);
    bare.prefix = false;
    let mut also = service("also", &b, Strategy::RoundRobin);
    also.prefix = false;
    let registry = registry(vec![bare, also, service("ns", &c, Strategy::RoundRobin)]).await?;

    let catalog = registry.catalog();
    assert!(
        catalog
            .resolve("echo")
            .is_some_and(|e| e.service.as_str() == "bare")
    );
    assert!(catalog.resolve("ns__echo").is_some());
    assert!(
        catalog.resolve("also__echo").is_none(),
        "unprefixed means no prefixed twin"
    );
    let clashes = catalog
        .problems()
        .iter()
        .filter(|p| p.service.as_str() == "also" && p.problem.contains("already uses"))
        .count();
    assert_eq!(
        clashes, 9,
        "every tool of the second unprefixed service clashes"
    );
    let routed = registry
        .call("echo", args(serde_json::json!({"message": "hi"})), &ctx())
        .await?;
    assert_eq!(answered_by(&routed), "bare-1");
    let prompts: Vec<String> = registry.prompts().into_iter().map(|p| p.name).collect();
    assert_eq!(
        prompts,
        ["greet", "ns__greet"],
        "the clashing prompt is skipped"
    );
    registry.shutdown().await;
    Ok(())
}
