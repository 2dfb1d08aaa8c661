//! `cargo xtask bench gateway`: an MCP client calling `echo` on a fixture directly
//! (streamable HTTP) against the same calls through a `toolmesh serve` process fronting
//! that fixture, at 1 and 32 calls in flight; then the gateway's peak RSS. The gateway
//! and the fixture share the server core, the client has its own. Writes
//! `target/bench/gateway.json`. Also: an unpinned row, nginx's plain L7 hop for reference
//! (where installed) and the authenticated rows.

mod auth;
mod instructions;
mod nginx;

use std::{process::Stdio, time::Duration};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use toolmesh::{CallContext, Endpoint, Session, layers::core::JsonObject};
use toolmesh_testkit::{
    FixtureOptions, FixtureServer,
    bench::{self, Caller, SERVER_CPU},
};

/// Targets from the gateway's brief.
const TARGET_ADDED_P50_US: i64 = 150;
const TARGET_RATIO_AT_32: f64 = 0.6;
const TARGET_PEAK_RSS_MB: f64 = 20.0;

fn echo_args() -> Option<JsonObject> {
    json!({ "message": "benchmark payload" })
        .as_object()
        .cloned()
}

#[derive(Clone)]
struct Echo {
    session: Session,
    tool: &'static str,
}

impl Echo {
    /// A session at `endpoint` calling `tool`, once one call has succeeded.
    async fn ready(endpoint: Endpoint, tool: &'static str) -> anyhow::Result<Self> {
        let echo = Self {
            session: Session::connect(&endpoint).await?,
            tool,
        };
        anyhow::ensure!(echo.call().await, "the first `{tool}` call failed");
        Ok(echo)
    }
}

impl Caller for Echo {
    async fn call(&self) -> bool {
        let ctx = CallContext::with_timeout(Duration::from_secs(30));
        matches!(
            self.session.call_tool(self.tool, echo_args(), &ctx).await,
            Ok(result) if result.is_error != Some(true)
        )
    }
}

/// A `toolmesh serve` process on the server core.
struct Gateway {
    child: Child,
    pid: u32,
    url: String,
}

impl Gateway {
    async fn start(config: &std::path::Path, extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_on(SERVER_CPU, config, extra).await
    }

    /// Started on `cpus` (a `taskset` list).
    async fn start_on(
        cpus: &str,
        config: &std::path::Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let bin = env!("CARGO_BIN_EXE_toolmesh");
        let mut child = Command::new("taskset")
            .args(["-c", cpus, bin, "serve", "--listen", "127.0.0.1:0", "-q"])
            .arg("--config")
            .arg(config)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start toolmesh (is taskset installed?)")?;

        let pid = child.id().context("toolmesh exited at once")?;
        let url = listening_url(&mut child, Duration::from_secs(30)).await?;
        bench::pin(pid, cpus)?;
        Ok(Self { child, pid, url })
    }

    /// `VmHWM` and `VmRSS` of the process, in MiB.
    fn memory_mb(&self) -> anyhow::Result<(f64, f64)> {
        Ok((self.field_mb("VmHWM:")?, self.field_mb("VmRSS:")?))
    }

    /// One `…: N kB` line of `/proc/<pid>/status`, in MiB.
    fn field_mb(&self, name: &str) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no {name} in /proc/{}/status", self.pid))?;
        Ok(kb / 1024.0)
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// The URL a starting `toolmesh serve` prints, within `within`; its stdout is drained
/// from then on.
async fn listening_url(child: &mut Child, within: Duration) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(within, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(url) = line.strip_prefix("toolmesh listening on ") {
                return Ok(url.trim().to_owned());
            }
        }
        anyhow::bail!("toolmesh exited before listening")
    })
    .await
    .with_context(|| format!("toolmesh did not listen within {within:?}"))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(url)
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    anyhow::ensure!(fields.len() == 2, "cannot read /proc/{pid}/stat");
    // Clock ticks are 100 Hz on Linux.
    Ok(Duration::from_millis((fields[0] + fields[1]) * 10))
}

/// Microseconds of CPU `pids` use per call while `caller` makes `calls` calls,
/// `inflight` at a time.
async fn cpu_per_call<C: Caller>(
    caller: &C,
    pids: &[u32],
    inflight: usize,
    calls: usize,
) -> anyhow::Result<Vec<f64>> {
    let before: Vec<Duration> = pids
        .iter()
        .map(|p| cpu_time(*p))
        .collect::<Result<_, _>>()?;
    let per_worker = calls / inflight;
    let workers: Vec<_> = (0..inflight)
        .map(|_| {
            let caller = caller.clone();
            tokio::spawn(async move {
                for _ in 0..per_worker {
                    caller.call().await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await?;
    }
    let after: Vec<Duration> = pids
        .iter()
        .map(|p| cpu_time(*p))
        .collect::<Result<_, _>>()?;
    Ok(before
        .iter()
        .zip(&after)
        .map(|(b, a)| (*a - *b).as_secs_f64() * 1e6 / (per_worker * inflight) as f64)
        .collect())
}

/// `toolmesh serve` with `extra` flags against direct calls: added latency at 1 in
/// flight, throughput ratio at 32, server CPU per call, peak RSS and which path served
/// the calls (`toolmesh_gateway_calls_total`).
async fn one_gateway(
    config: &std::path::Path,
    extra: &[&str],
    path: &str,
    fixture: &FixtureServer,
    direct: &Echo,
) -> anyhow::Result<Vec<Value>> {
    let gateway = Gateway::start(config, extra).await?;
    let (_, rss_idle) = gateway.memory_mb()?;
    let through = Echo::ready(Endpoint::url(gateway.url.clone()), "fixture__echo").await?;

    let mut rows = Vec::new();
    for inflight in [1, 32] {
        let mut row = bench::compare(
            &format!("streamable-http echo via toolmesh serve ({path}), {inflight} in flight"),
            direct,
            &through,
            inflight,
        )
        .await;
        if inflight == 1 {
            row["target_added_p50_us"] = json!(TARGET_ADDED_P50_US);
        } else {
            row["target_ratio_throughput"] = json!(TARGET_RATIO_AT_32);
        }
        rows.push(row);
    }
    for inflight in [1, 32] {
        let direct_cpu = cpu_per_call(direct, &[fixture.pid()], inflight, 20_000).await?;
        let through_cpu =
            cpu_per_call(&through, &[fixture.pid(), gateway.pid], inflight, 20_000).await?;
        println!(
            "CPU per call ({path}), {inflight} in flight: direct: fixture {:.0}us | via toolmesh: fixture {:.0}us + gateway {:.0}us",
            direct_cpu[0], through_cpu[0], through_cpu[1]
        );
        rows.push(json!({
            "case": format!("server CPU per call ({path}), {inflight} in flight"),
            "direct_fixture_us": direct_cpu[0].round(),
            "via_gateway_fixture_us": through_cpu[0].round(),
            "via_gateway_gateway_us": through_cpu[1].round(),
        }));
    }
    let (peak, rss) = gateway.memory_mb()?;
    let (file, anon) = (gateway.field_mb("RssFile:")?, gateway.field_mb("RssAnon:")?);
    println!(
        "toolmesh serve memory ({path}): peak RSS (VmHWM) {peak:.1} MiB, now {rss:.1} MiB ({file:.1} MiB mapped from the binary and libraries, {anon:.1} MiB anonymous), idle after start {rss_idle:.1} MiB (target peak <= {TARGET_PEAK_RSS_MB} MB)"
    );
    rows.push(json!({
        "case": format!("toolmesh serve memory ({path}; one HTTP upstream, after the runs above)"),
        "peak_rss_mib": (peak * 10.0).round() / 10.0,
        "rss_mib": (rss * 10.0).round() / 10.0,
        "rss_file_mib": (file * 10.0).round() / 10.0,
        "rss_anon_mib": (anon * 10.0).round() / 10.0,
        "idle_rss_mib": (rss_idle * 10.0).round() / 10.0,
        "target_peak_rss_mb": TARGET_PEAK_RSS_MB,
    }));
    let served = served_paths(&gateway.url).await?;
    println!("calls by path ({path}): {served}");
    rows.push(json!({ "case": format!("calls by path ({path})"), "paths": served }));
    through.session.close(Duration::from_secs(1)).await;
    gateway.stop().await;
    Ok(rows)
}

/// `toolmesh_gateway_calls_total` of the gateway at `mcp_url`, by `path/reason`.
async fn served_paths(mcp_url: &str) -> anyhow::Result<Value> {
    let base = mcp_url.trim_end_matches("/mcp");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    let mut paths = serde_json::Map::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("toolmesh_gateway_calls_total{"))
    {
        let (labels, count) = line.rsplit_once(' ').unwrap_or_default();
        let label = |name: &str| {
            labels
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("?")
                .to_owned()
        };
        let count: f64 = count.parse().unwrap_or(0.0);
        paths.insert(
            format!("{}/{}", label("path"), label("reason")),
            json!(count),
        );
    }
    Ok(Value::Object(paths))
}

async fn body() -> anyhow::Result<Vec<Value>> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    bench::pin(fixture.pid(), SERVER_CPU)?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("toolmesh.yaml");
    std::fs::write(
        &config,
        format!(
            "defaults:\n  bulkhead: {{ max_concurrent: 256 }}\nservers:\n  fixture:\n    url: {}\n",
            fixture.http_url()
        ),
    )?;
    let direct = Echo::ready(Endpoint::url(fixture.http_url()), "echo").await?;
    let mut rows = Vec::new();
    if std::env::var_os("TOOLMESH_BENCH_EDGE_ONLY").is_some() {
        rows.extend(auth::authenticated(&config, dir.path()).await?);
        return Ok(rows);
    }
    if std::env::var_os("TOOLMESH_BENCH_NGINX_ONLY").is_some() {
        return nginx_hop(&config, dir.path(), &fixture, &direct).await;
    }
    // The same gateway twice, in turn: `tools/call` on the fast path (the default), then
    // every request through rmcp (`--no-fast-path`), each against direct calls.
    for (path, extra) in [
        ("fast path", &[][..]),
        ("rmcp path", &["--no-fast-path"][..]),
    ] {
        rows.extend(one_gateway(&config, extra, path, &fixture, &direct).await?);
    }
    rows.extend(nginx_hop(&config, dir.path(), &fixture, &direct).await?);
    rows.extend(unpinned(&config).await?);
    if std::env::var_os("TOOLMESH_BENCH_PATHS_ONLY").is_some() {
        direct.session.close(Duration::from_secs(1)).await;
        return Ok(rows);
    }
    // The same through `toolmesh serve --stateless` (JSON answers, no sessions).
    let gateway = Gateway::start(&config, &["--stateless"]).await?;
    let stateless = Echo::ready(Endpoint::url(gateway.url.clone()), "fixture__echo").await?;
    for inflight in [1, 32] {
        rows.push(
            bench::compare(
                &format!(
                    "streamable-http echo via toolmesh serve --stateless, {inflight} in flight"
                ),
                &direct,
                &stateless,
                inflight,
            )
            .await,
        );
    }
    let (peak, _) = gateway.memory_mb()?;
    println!("toolmesh serve --stateless: peak RSS {peak:.1} MiB");
    stateless.session.close(Duration::from_secs(1)).await;
    gateway.stop().await;
    rows.extend(auth::authenticated(&config, dir.path()).await?);
    direct.session.close(Duration::from_secs(1)).await;
    Ok(rows)
}

/// nginx's `proxy_pass` against direct calls, then the gateway (fast path) against nginx:
/// the floor for any HTTP hop and the gateway's distance from it. No rows without nginx.
async fn nginx_hop(
    config: &std::path::Path,
    dir: &std::path::Path,
    fixture: &FixtureServer,
    direct: &Echo,
) -> anyhow::Result<Vec<Value>> {
    let Some(nginx) = nginx::Nginx::start(dir, fixture.http_port()).await? else {
        println!("nginx is not installed: no L7 reference row (apt-get install nginx-light)");
        return Ok(Vec::new());
    };
    let hop = Echo::ready(Endpoint::url(nginx.url.clone()), "echo").await?;
    let gateway = Gateway::start(config, &[]).await?;
    let through = Echo::ready(Endpoint::url(gateway.url.clone()), "fixture__echo").await?;
    let mut rows = Vec::new();
    for inflight in [1, 32] {
        rows.push(
            bench::compare(
                &format!("nginx proxy_pass (keep-alive) vs direct, {inflight} in flight"),
                direct,
                &hop,
                inflight,
            )
            .await,
        );
    }
    for inflight in [1, 32] {
        rows.push(
            bench::compare(
                &format!("toolmesh serve (fast path) vs nginx hop, {inflight} in flight"),
                &hop,
                &through,
                inflight,
            )
            .await,
        );
    }
    let nginx_cpu = cpu_per_call(&hop, &[nginx.pid()], 32, 20_000).await?[0];
    let gateway_cpu = cpu_per_call(&through, &[gateway.pid], 32, 20_000).await?[0];
    println!(
        "hop CPU per call, 32 in flight: nginx {nginx_cpu:.0}us | toolmesh serve {gateway_cpu:.0}us"
    );
    rows.push(json!({
        "case": "hop CPU per call, 32 in flight",
        "nginx_us": nginx_cpu.round(),
        "toolmesh_us": gateway_cpu.round(),
    }));
    hop.session.close(Duration::from_secs(1)).await;
    through.session.close(Duration::from_secs(1)).await;
    gateway.stop().await;
    nginx.stop().await;
    Ok(rows)
}

/// Client, gateway and upstream sharing both cores, as users run them: a fixture and a
/// gateway of their own, nothing pinned.
async fn unpinned(plain_config: &std::path::Path) -> anyhow::Result<Vec<Value>> {
    const BOTH: &str = "0-1";
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    bench::pin(fixture.pid(), BOTH)?;
    let config = plain_config.with_file_name("unpinned.yaml");
    let plain = std::fs::read_to_string(plain_config)?;
    let fixture_url = plain
        .lines()
        .find_map(|l| l.trim().strip_prefix("url: "))
        .context("no url in the gateway's configuration")?;
    std::fs::write(&config, plain.replace(fixture_url, fixture.http_url()))?;
    let gateway = Gateway::start_on(BOTH, &config, &[]).await?;
    bench::pin(std::process::id(), BOTH)?;
    let direct = Echo::ready(Endpoint::url(fixture.http_url()), "echo").await?;
    let through = Echo::ready(Endpoint::url(gateway.url.clone()), "fixture__echo").await?;
    let mut rows = Vec::new();
    for inflight in [1, 32] {
        let mut row = bench::compare(
            &format!("streamable-http echo via toolmesh serve, unpinned, {inflight} in flight"),
            &direct,
            &through,
            inflight,
        )
        .await;
        if inflight == 32 {
            row["target_ratio_throughput"] = json!(TARGET_RATIO_AT_32);
        }
        rows.push(row);
    }
    let (peak, _) = gateway.memory_mb()?;
    println!("toolmesh serve, unpinned: peak RSS {peak:.1} MiB");
    bench::pin(std::process::id(), bench::CLIENT_CPU)?;
    through.session.close(Duration::from_secs(1)).await;
    direct.session.close(Duration::from_secs(1)).await;
    gateway.stop().await;
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    bench::run("gateway", body)
}
