//! `cargo xtask bench transport`: echo calls through a toolmesh `Session` against a raw
//! rmcp peer on the same transport, same server and same HTTP client settings, in one run.
//! Writes `target/bench/transport.json`.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use rmcp::{
    ServiceExt,
    model::CallToolRequestParams,
    service::{Peer, RoleClient},
    transport::{
        StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::json;
use toolmesh_core::CallContext;
use toolmesh_testkit::{FixtureOptions, FixtureServer, fixture_bin};
use toolmesh_transport::{Endpoint, Session, shared_client};

const WARMUP: Duration = Duration::from_millis(300);
const MEASURE: Duration = Duration::from_millis(300);
const ROUNDS: usize = 20;

#[derive(Clone)]
enum Client {
    Raw(Peer<RoleClient>),
    Mesh(Session),
}

impl Client {
    async fn echo(&self, args: &serde_json::Map<String, serde_json::Value>) -> bool {
        match self {
            Client::Raw(peer) => peer
                .call_tool(CallToolRequestParams::new("echo").with_arguments(args.clone()))
                .await
                .is_ok(),
            Client::Mesh(session) => session
                .call_tool(
                    "echo",
                    Some(args.clone()),
                    &CallContext::with_timeout(Duration::from_secs(30)),
                )
                .await
                .is_ok(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    calls_per_s: f64,
    p50_us: u64,
    p99_us: u64,
}

impl Stats {
    fn json(&self) -> serde_json::Value {
        json!({ "calls_per_s": self.calls_per_s.round(), "p50_us": self.p50_us, "p99_us": self.p99_us })
    }
}

/// `inflight` workers call echo back to back for `span`.
async fn load(client: &Client, inflight: usize, span: Duration) -> Stats {
    let args: serde_json::Map<String, serde_json::Value> =
        json!({ "message": "benchmark payload" })
            .as_object()
            .cloned()
            .unwrap_or_default();
    let args = Arc::new(args);
    let started = Instant::now();
    let workers = (0..inflight).map(|_| {
        let client = client.clone();
        let args = args.clone();
        tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!());
            while started.elapsed() < span {
                let t = Instant::now();
                if client.echo(&args).await {
                    let _ = hist.record(t.elapsed().as_micros() as u64);
                }
            }
            hist
        })
    });
    let mut all = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!());
    for h in futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        let _ = all.add(h);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Stats {
        calls_per_s: all.len() as f64 / elapsed,
        p50_us: all.value_at_quantile(0.5),
        p99_us: all.value_at_quantile(0.99),
    }
}

fn median(mut v: Vec<Stats>) -> Stats {
    v.sort_by(|a, b| a.calls_per_s.total_cmp(&b.calls_per_s));
    let mid = v[v.len() / 2];
    let mut p50: Vec<_> = v.iter().map(|s| s.p50_us).collect();
    let mut p99: Vec<_> = v.iter().map(|s| s.p99_us).collect();
    p50.sort_unstable();
    p99.sort_unstable();
    Stats {
        calls_per_s: mid.calls_per_s,
        p50_us: p50[p50.len() / 2],
        p99_us: p99[p99.len() / 2],
    }
}

/// Alternates baseline and subject rounds so drift hits both alike.
async fn compare(
    name: &str,
    baseline: &Client,
    subject: &Client,
    inflight: usize,
) -> serde_json::Value {
    load(baseline, inflight, WARMUP).await;
    load(subject, inflight, WARMUP).await;
    let (mut b, mut s, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Paired rounds in ABBA order, so drift and order effects cancel in the ratio.
        let (rb, rs) = if round % 4 == 0 || round % 4 == 3 {
            let rb = load(baseline, inflight, MEASURE).await;
            (rb, load(subject, inflight, MEASURE).await)
        } else {
            let rs = load(subject, inflight, MEASURE).await;
            (load(baseline, inflight, MEASURE).await, rs)
        };
        ratios.push(rs.calls_per_s / rb.calls_per_s);
        b.push(rb);
        s.push(rs);
    }
    let (b, s) = (median(b), median(s));
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let added = s.p50_us as i64 - b.p50_us as i64;
    println!(
        "{name:<52} rmcp {:>8.0}/s p50 {:>6}us p99 {:>6}us | toolmesh {:>8.0}/s p50 {:>6}us p99 {:>6}us | ratio {ratio:.3} added p50 {added:+}us",
        b.calls_per_s, b.p50_us, b.p99_us, s.calls_per_s, s.p50_us, s.p99_us
    );
    json!({
        "case": name,
        "baseline": b.json(),
        "subject": s.json(),
        "ratio_throughput": (ratio * 1000.0).round() / 1000.0,
        "added_p50_us": added,
    })
}

async fn run() -> anyhow::Result<Vec<serde_json::Value>> {
    let mut results = Vec::new();

    // stdio: each client runs its own fixture process, on the server core.
    let bin = fixture_bin().to_string_lossy().into_owned();
    let server_argv = ["-c", SERVER_CPU, bin.as_str(), "--stdio"];
    let mut cmd = tokio::process::Command::new("taskset");
    cmd.args(server_argv);
    let raw = ().serve(TokioChildProcess::new(cmd)?).await?;
    let mesh = Session::connect(&Endpoint::stdio("taskset", server_argv)).await?;
    for inflight in [1, 32] {
        let (b, s) = (Client::Raw(raw.peer().clone()), Client::Mesh(mesh.clone()));
        results.push(
            compare(
                &format!("stdio echo, {inflight} in flight"),
                &b,
                &s,
                inflight,
            )
            .await,
        );
    }

    // Calibration: rmcp against itself shows the method's noise floor.
    let same = Client::Raw(raw.peer().clone());
    results.push(compare("stdio echo, 1 in flight, A/A rmcp vs rmcp", &same, &same, 1).await);

    // streamable HTTP: one server, the same pooled TCP_NODELAY client for both.
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    pin(server.pid(), SERVER_CPU)?;
    let config = StreamableHttpClientTransportConfig::with_uri(server.http_url().to_owned())
        .max_concurrent_requests(256);
    let raw_http = ()
        .serve(StreamableHttpClientTransport::with_client(
            shared_client(),
            config,
        ))
        .await?;
    let mesh_http = Session::connect(&Endpoint::url(server.http_url())).await?;
    for inflight in [1, 32] {
        let (b, s) = (
            Client::Raw(raw_http.peer().clone()),
            Client::Mesh(mesh_http.clone()),
        );
        results.push(
            compare(
                &format!("streamable-http echo, {inflight} in flight"),
                &b,
                &s,
                inflight,
            )
            .await,
        );
    }
    let same = Client::Raw(raw_http.peer().clone());
    results.push(
        compare(
            "streamable-http echo, 1 in flight, A/A rmcp vs rmcp",
            &same,
            &same,
            1,
        )
        .await,
    );
    Ok(results)
}

/// Client and server on separate cores: on a small shared machine this is what keeps
/// the paired rounds comparable.
const CLIENT_CPU: &str = "0";
const SERVER_CPU: &str = "1";

/// Pins every thread of `pid` to `cpu` (`taskset` from util-linux).
fn pin(pid: u32, cpu: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpu, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "taskset failed for pid {pid}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing to parse.
    pin(std::process::id(), CLIENT_CPU)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = runtime.block_on(run())?;
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("transport.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
    println!("wrote {}", path.display());
    Ok(())
}
