//! `cargo xtask bench router`: (1) the routing decision with 1,000 services and 10,000
//! tools; (2) echo through the whole router against the bare `Session`; (3) a failover
//! drill — three HTTP replicas at a steady rate, one killed; (4) memory per service and
//! per tool. Writes `target/bench/router.json`.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use toolmesh_core::{CallContext, InstanceId, JsonObject, ServerId};
use toolmesh_registry::{InstanceSpec, Registry, RegistryOptions, ServiceSpec, Strategy};
use toolmesh_testkit::{
    FixtureOptions, FixtureServer,
    bench::{self, Caller, SERVER_CPU},
    fixture_bin,
};
use toolmesh_transport::{Endpoint, Session};

fn echo_args() -> Option<JsonObject> {
    json!({ "message": "benchmark payload" })
        .as_object()
        .cloned()
}

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(30))
}

/// A service whose one instance is never contacted (the tools are given).
fn offline_spec(i: usize) -> ServiceSpec {
    let mut spec = ServiceSpec::single(
        ServerId::new(format!("svc{i}")),
        Endpoint::url("http://127.0.0.1:9/mcp"),
    );
    spec.instance_config.pool.min_sessions = 0;
    spec.instance_config.health_check.enabled = false;
    spec
}

async fn offline_registry(services: usize, tools_each: usize) -> anyhow::Result<Registry> {
    let registry = Registry::new(RegistryOptions::default());
    let list = bench::tools(tools_each);
    registry
        .add_services_with_tools(
            (0..services)
                .map(|i| (offline_spec(i), list.clone()))
                .collect(),
        )
        .await?;
    Ok(registry)
}

async fn decision_and_memory() -> anyhow::Result<Vec<Value>> {
    let base = bench::rss_bytes();
    let one_tool = offline_registry(1000, 1).await?;
    let with_one = bench::rss_bytes();
    let ten_tools = offline_registry(1000, 10).await?;
    let with_ten = bench::rss_bytes();
    let per_tool = with_ten.saturating_sub(with_one) as f64 / 10_000.0;
    let per_service = with_one.saturating_sub(base) as f64 / 1000.0 - per_tool;
    drop(one_tool);
    assert_eq!(ten_tools.catalog().len(), 10_000);

    let names: Vec<String> = (0..1000)
        .flat_map(|s| (0..10).map(move |t| format!("svc{s}__tool_{t}")))
        .collect();
    let mut hist = Histogram::<u64>::new(3)?;
    for round in 0..200_000usize {
        let name = &names[(round * 7919) % names.len()];
        let t = Instant::now();
        let decision = ten_tools.route(name);
        let ns = t.elapsed().as_nanos() as u64;
        std::hint::black_box(decision.is_ok());
        hist.record(ns)?;
    }
    let median = hist.value_at_quantile(0.5);
    println!(
        "routing decision (1000 services, 10000 tools): median {median} ns, p99 {} ns; memory ≈ {:.1} KiB per service, {:.0} B per tool",
        hist.value_at_quantile(0.99),
        per_service / 1024.0,
        per_tool
    );
    ten_tools.shutdown().await;
    Ok(vec![
        json!({ "case": "routing decision, 1000 services / 10000 tools", "median_ns": median, "p99_ns": hist.value_at_quantile(0.99), "target_median_ns": 1000 }),
        json!({ "case": "memory per registered service and tool", "bytes_per_service": per_service.round(), "bytes_per_tool": per_tool.round() }),
    ])
}

#[derive(Clone)]
struct Bare(Session);

impl Caller for Bare {
    async fn call(&self) -> bool {
        self.0.call_tool("echo", echo_args(), &ctx()).await.is_ok()
    }
}

#[derive(Clone)]
struct Routed(Registry);

impl Caller for Routed {
    async fn call(&self) -> bool {
        self.0
            .call("bench__echo", echo_args(), &ctx())
            .await
            .is_ok()
    }
}

async fn pair(endpoint: Endpoint) -> anyhow::Result<(Bare, Routed)> {
    let mut spec = ServiceSpec::single(ServerId::new("bench"), endpoint.clone());
    spec.instance_config.pool.max_sessions = 1;
    spec.instance_config.bulkhead.max_concurrent = 256;
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    Ok((Bare(Session::connect(&endpoint).await?), Routed(registry)))
}

async fn side_by_side() -> anyhow::Result<Vec<Value>> {
    let mut rows = Vec::new();
    let bin = fixture_bin().to_string_lossy().into_owned();
    let (bare, routed) = pair(Endpoint::stdio(
        "taskset",
        ["-c", SERVER_CPU, bin.as_str(), "--stdio"],
    ))
    .await?;
    for inflight in [1, 32] {
        rows.push(
            bench::compare(
                &format!("stdio echo, {inflight} in flight"),
                &bare,
                &routed,
                inflight,
            )
            .await,
        );
    }
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    bench::pin(server.pid(), SERVER_CPU)?;
    let (bare, routed) = pair(Endpoint::url(server.http_url())).await?;
    for inflight in [1, 32] {
        rows.push(
            bench::compare(
                &format!("streamable-http echo, {inflight} in flight"),
                &bare,
                &routed,
                inflight,
            )
            .await,
        );
    }
    routed.0.shutdown().await;
    Ok(rows)
}

/// Three replicas at a steady 500 calls/s for 6 s; one is SIGKILLed at 2 s.
async fn failover_drill() -> anyhow::Result<Value> {
    let mut servers = Vec::new();
    for i in 1..=3 {
        let server =
            FixtureServer::start(FixtureOptions::new().instance_id(format!("r{i}"))).await?;
        bench::pin(server.pid(), SERVER_CPU)?;
        servers.push(server);
    }
    let mut spec =
        ServiceSpec::single(ServerId::new("bench"), Endpoint::url(servers[0].http_url()));
    spec.instances = servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            InstanceSpec::new(
                InstanceId::new(format!("r{}", i + 1)),
                Endpoint::url(s.http_url()),
            )
        })
        .collect();
    spec.strategy = Strategy::RoundRobin;
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let (rate, span, kill_at) = (500u32, Duration::from_secs(6), Duration::from_secs(2));
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    let mut calls = Vec::new();
    let mut victim = Some(servers.remove(1));
    while started.elapsed() < span {
        tick.tick().await;
        if started.elapsed() >= kill_at
            && let Some(mut v) = victim.take()
        {
            v.kill().await;
        }
        let registry = registry.clone();
        calls.push(tokio::spawn(async move {
            let at = started.elapsed();
            let t = Instant::now();
            let ok = registry
                .call("bench__echo", echo_args(), &ctx())
                .await
                .is_ok();
            (at, t.elapsed(), ok)
        }));
    }
    let mut phases = [
        (Histogram::<u64>::new(3)?, 0u64, 0u64),
        (Histogram::<u64>::new(3)?, 0, 0),
        (Histogram::<u64>::new(3)?, 0, 0),
    ];
    for call in calls {
        let (at, took, ok) = call.await?;
        let phase = if at < kill_at {
            0
        } else if at < kill_at + Duration::from_secs(1) {
            1
        } else {
            2
        };
        let (hist, n, errors) = &mut phases[phase];
        hist.record(took.as_micros() as u64)?;
        *n += 1;
        *errors += u64::from(!ok);
    }
    let row = |i: usize| {
        let (hist, n, errors) = &phases[i];
        json!({ "calls": n, "errors": errors, "p50_us": hist.value_at_quantile(0.5), "p99_us": hist.value_at_quantile(0.99) })
    };
    let value = json!({
        "case": "failover drill: 3 HTTP replicas, 500 calls/s, one SIGKILLed at 2 s",
        "before_kill": row(0),
        "first_second_after_kill": row(1),
        "after": row(2),
    });
    println!("{value}");
    registry.shutdown().await;
    Ok(value)
}

async fn cases() -> anyhow::Result<Vec<Value>> {
    let mut rows = decision_and_memory().await?;
    rows.extend(side_by_side().await?);
    rows.push(failover_drill().await?);
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    bench::run("router", cases)
}
