//! A small harness for side-by-side benchmarks: a baseline and a subject make the same
//! calls in paired rounds (ABBA order) on a client core, with the servers on another core.
//! Results are rows of `{case, baseline, subject, ratio_throughput, added_p50_us}`.

use std::{
    future::Future,
    path::PathBuf,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// The core benchmark clients run on.
pub const CLIENT_CPU: &str = "0";
/// The core servers run on; start server processes under `taskset -c SERVER_CPU` or [`pin`] them.
pub const SERVER_CPU: &str = "1";

const WARMUP: Duration = Duration::from_millis(300);
const MEASURE: Duration = Duration::from_millis(300);
const ROUNDS: usize = 20;

/// One kind of call under test; cloned into each concurrent worker.
pub trait Caller: Clone + Send + Sync + 'static {
    /// Makes one call; `true` when it succeeded.
    fn call(&self) -> impl Future<Output = bool> + Send;
}

/// Pins every thread of `pid` to `cpu` (`taskset` from util-linux).
///
/// # Errors
///
/// When `taskset` is missing or fails.
pub fn pin(pid: u32, cpu: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpu, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "taskset failed for pid {pid}");
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Stats {
    calls_per_s: f64,
    p50_us: u64,
    p99_us: u64,
}

impl Stats {
    fn json(&self) -> Value {
        json!({ "calls_per_s": self.calls_per_s.round(), "p50_us": self.p50_us, "p99_us": self.p99_us })
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"))
}

/// `inflight` workers call back to back for `span`.
async fn load<C: Caller>(caller: &C, inflight: usize, span: Duration) -> Stats {
    let started = Instant::now();
    let workers = (0..inflight).map(|_| {
        let caller = caller.clone();
        tokio::spawn(async move {
            let mut hist = histogram();
            while started.elapsed() < span {
                let t = Instant::now();
                if caller.call().await {
                    let _ = hist.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
                }
            }
            hist
        })
    });
    let mut all = histogram();
    for h in futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        let _ = all.add(h);
    }
    Stats {
        calls_per_s: all.len() as f64 / started.elapsed().as_secs_f64(),
        p50_us: all.value_at_quantile(0.5),
        p99_us: all.value_at_quantile(0.99),
    }
}

fn median_by<T: Copy>(values: &[T], key: impl Fn(&T) -> f64) -> T {
    let mut v = values.to_vec();
    v.sort_by(|a, b| key(a).total_cmp(&key(b)));
    v[v.len() / 2]
}

/// Measures `subject` against `baseline` with `inflight` concurrent callers, prints a line
/// and returns the JSON row.
pub async fn compare<B: Caller, S: Caller>(
    name: &str,
    baseline: &B,
    subject: &S,
    inflight: usize,
) -> Value {
    load(baseline, inflight, WARMUP).await;
    load(subject, inflight, WARMUP).await;
    let (mut b, mut s, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // ABBA: drift and order effects cancel in the per-round ratio.
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
    let pick = |v: &[Stats]| Stats {
        calls_per_s: median_by(v, |x| x.calls_per_s).calls_per_s,
        p50_us: median_by(v, |x| x.p50_us as f64).p50_us,
        p99_us: median_by(v, |x| x.p99_us as f64).p99_us,
    };
    let (b, s) = (pick(&b), pick(&s));
    let ratio = median_by(&ratios, |r| *r);
    let added = s.p50_us as i64 - b.p50_us as i64;
    println!(
        "{name:<52} base {:>8.0}/s p50 {:>6}us p99 {:>6}us | toolmesh {:>8.0}/s p50 {:>6}us p99 {:>6}us | ratio {ratio:.3} added p50 {added:+}us",
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

/// Pins this process to [`CLIENT_CPU`], runs `body` on a current-thread runtime and writes
/// its rows to `target/bench/<name>.json`.
///
/// # Errors
///
/// When pinning, the body or writing the file fails.
pub fn run<F, Fut>(name: &str, body: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<Vec<Value>>>,
{
    pin(std::process::id(), CLIENT_CPU)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let rows = runtime.block_on(body())?;
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&rows)?)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// This process's resident set, in bytes (from `/proc/self/statm`; 0 where it is absent).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// `n` tools `tool_0…` sharing one small input schema, for catalogs of a given size.
pub fn tools(n: usize) -> Vec<toolmesh_core::Tool> {
    let schema = std::sync::Arc::new(
        json!({"type": "object", "properties": {"q": {"type": "string"}}})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    (0..n)
        .map(|t| {
            toolmesh_core::Tool::new(
                format!("tool_{t}"),
                format!("Tool number {t}"),
                schema.clone(),
            )
        })
        .collect()
}
