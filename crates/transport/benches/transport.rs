//! `cargo xtask bench transport`: echo calls through a toolmesh `Session` against a raw
//! rmcp peer on the same transport, same server and same HTTP client settings, in one run.
//! Writes `target/bench/transport.json`.

use std::time::Duration;

use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, JsonObject},
    service::{Peer, RoleClient},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use toolmesh_core::CallContext;
use toolmesh_testkit::{
    FixtureOptions, FixtureServer,
    bench::{self, Caller, SERVER_CPU},
    fixture_bin,
};
use toolmesh_transport::{Endpoint, Session, shared_client};

fn echo_args() -> JsonObject {
    serde_json::json!({ "message": "benchmark payload" })
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// The baseline: rmcp as a user would call it, without a deadline.
#[derive(Clone)]
struct Raw(Peer<RoleClient>);

impl Caller for Raw {
    async fn call(&self) -> bool {
        self.0
            .call_tool(CallToolRequestParams::new("echo").with_arguments(echo_args()))
            .await
            .is_ok()
    }
}

/// The subject: a toolmesh session, with a deadline on every call.
#[derive(Clone)]
struct Mesh(Session);

impl Caller for Mesh {
    async fn call(&self) -> bool {
        let ctx = CallContext::with_timeout(Duration::from_secs(30));
        self.0
            .call_tool("echo", Some(echo_args()), &ctx)
            .await
            .is_ok()
    }
}

async fn cases() -> anyhow::Result<Vec<serde_json::Value>> {
    let mut rows = Vec::new();

    // stdio: each client runs its own fixture process, on the server core.
    let bin = fixture_bin().to_string_lossy().into_owned();
    let argv = ["-c", SERVER_CPU, bin.as_str(), "--stdio"];
    let mut cmd = tokio::process::Command::new("taskset");
    cmd.args(argv);
    let raw = ().serve(TokioChildProcess::new(cmd)?).await?;
    let (raw, mesh) = (
        Raw(raw.peer().clone()),
        Mesh(Session::connect(&Endpoint::stdio("taskset", argv)).await?),
    );
    for inflight in [1, 32] {
        rows.push(
            bench::compare(
                &format!("stdio echo, {inflight} in flight"),
                &raw,
                &mesh,
                inflight,
            )
            .await,
        );
    }
    // Calibration: rmcp against itself shows the method's noise floor.
    rows.push(bench::compare("stdio echo, 1 in flight, A/A rmcp vs rmcp", &raw, &raw, 1).await);

    // streamable HTTP: one server, the same pooled TCP_NODELAY client for both.
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    bench::pin(server.pid(), SERVER_CPU)?;
    let config = StreamableHttpClientTransportConfig::with_uri(server.http_url().to_owned())
        .max_concurrent_requests(256);
    let raw = ()
        .serve(StreamableHttpClientTransport::with_client(
            shared_client()?,
            config,
        ))
        .await?;
    let (raw, mesh) = (
        Raw(raw.peer().clone()),
        Mesh(Session::connect(&Endpoint::url(server.http_url())).await?),
    );
    for inflight in [1, 32] {
        rows.push(
            bench::compare(
                &format!("streamable-http echo, {inflight} in flight"),
                &raw,
                &mesh,
                inflight,
            )
            .await,
        );
    }
    rows.push(
        bench::compare(
            "streamable-http echo, 1 in flight, A/A rmcp vs rmcp",
            &raw,
            &raw,
            1,
        )
        .await,
    );
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    bench::run("transport", cases)
}
