//! `cargo xtask bench pool`: echo through an `InstancePool` (breaker, bulkhead, session
//! choice, metrics with a Prometheus recorder installed) against the bare `Session` it
//! wraps, over stdio and streamable HTTP. Writes `target/bench/pool.json`.

use std::time::Duration;

use toolmesh_core::{CallContext, InstanceId, JsonObject};
use toolmesh_pool::{InstanceConfig, InstancePool};
use toolmesh_testkit::{
    FixtureOptions, FixtureServer,
    bench::{self, Caller, SERVER_CPU},
    fixture_bin,
};
use toolmesh_transport::{Endpoint, Session};

fn echo_args() -> Option<JsonObject> {
    serde_json::json!({ "message": "benchmark payload" })
        .as_object()
        .cloned()
}

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(30))
}

/// The baseline: the bare session.
#[derive(Clone)]
struct Bare(Session);

impl Caller for Bare {
    async fn call(&self) -> bool {
        self.0.call_tool("echo", echo_args(), &ctx()).await.is_ok()
    }
}

/// The subject: the same kind of session behind the pool.
#[derive(Clone)]
struct Pooled(InstancePool);

impl Caller for Pooled {
    async fn call(&self) -> bool {
        self.0.call("echo", echo_args(), &ctx()).await.is_ok()
    }
}

async fn pair(endpoint: Endpoint) -> anyhow::Result<(Bare, Pooled)> {
    let mut config = InstanceConfig::default();
    config.pool.max_sessions = 1;
    config.bulkhead.max_concurrent = 256;
    let pool = InstancePool::start(InstanceId::new("bench"), endpoint.clone(), config).await?;
    Ok((Bare(Session::connect(&endpoint).await?), Pooled(pool)))
}

async fn cases() -> anyhow::Result<Vec<serde_json::Value>> {
    // Metrics are part of the subject's cost: record them for real.
    metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let mut rows = Vec::new();
    let bin = fixture_bin().to_string_lossy().into_owned();
    let (bare, pooled) = pair(Endpoint::stdio(
        "taskset",
        ["-c", SERVER_CPU, bin.as_str(), "--stdio"],
    ))
    .await?;
    for inflight in [1, 32] {
        rows.push(
            bench::compare(
                &format!("stdio echo, {inflight} in flight"),
                &bare,
                &pooled,
                inflight,
            )
            .await,
        );
    }
    rows.push(
        bench::compare(
            "stdio echo, 1 in flight, A/A session vs session",
            &bare,
            &bare,
            1,
        )
        .await,
    );

    let server = FixtureServer::start(FixtureOptions::new()).await?;
    bench::pin(server.pid(), SERVER_CPU)?;
    let (bare, pooled) = pair(Endpoint::url(server.http_url())).await?;
    for inflight in [1, 32] {
        rows.push(
            bench::compare(
                &format!("streamable-http echo, {inflight} in flight"),
                &bare,
                &pooled,
                inflight,
            )
            .await,
        );
    }
    rows.push(
        bench::compare(
            "streamable-http echo, 1 in flight, A/A session vs session",
            &bare,
            &bare,
            1,
        )
        .await,
    );
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    bench::run("pool", cases)
}
