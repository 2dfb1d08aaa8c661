//! Instructions per call, counted by callgrind: the same gateway with and without the
//! enterprise edge, each under `valgrind --tool=callgrind`, counting only while a fixed
//! number of calls runs. Repeatable to a few hundred instructions whatever else the
//! machine does, where latency and CPU time here move by more than the edge costs.
//! User-space only: the kernel's share (the audit's `write`) is not in it, and SHA-256
//! runs in software under valgrind (natively the CPU's SHA instructions do it).

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::Context;
use tokio::process::{Child, Command};
use toolmesh::Endpoint;
use toolmesh_testkit::bench::Caller;

use super::Echo;

/// Calls counted per gateway.
const CALLS: u64 = 400;

/// Whether valgrind's callgrind is on this machine.
pub(super) fn available() -> bool {
    std::process::Command::new("callgrind_control")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// User-space instructions per `echo` call of `toolmesh serve --config config`, the
/// client presenting `credential`.
pub(super) async fn per_call(
    config: &Path,
    credential: Option<&str>,
    out_dir: &Path,
) -> anyhow::Result<u64> {
    let out = out_dir.join(format!("callgrind.{}", std::process::id()));
    let mut child = Command::new("valgrind")
        .args(["--tool=callgrind", "--instr-atstart=no"])
        .arg(format!("--callgrind-out-file={}.%p", out.display()))
        .arg(env!("CARGO_BIN_EXE_toolmesh"))
        .args(["serve", "--listen", "127.0.0.1:0", "-q", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start valgrind")?;
    let result = count(&mut child, credential).await;
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let pid = result?;
    let mut total = 0u64;
    for entry in std::fs::read_dir(out_dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with(&format!("callgrind.{}.{pid}", std::process::id())) {
            let text = std::fs::read_to_string(&path)?;
            total += text
                .lines()
                .filter_map(|l| l.strip_prefix("totals:"))
                .filter_map(|n| n.trim().parse::<u64>().ok())
                .sum::<u64>();
            std::fs::remove_file(&path)?;
        }
    }
    anyhow::ensure!(total > 0, "callgrind counted nothing for pid {pid}");
    Ok(total / CALLS)
}

/// Warms the gateway up, counts `CALLS` calls and dumps; the gateway's pid.
async fn count(child: &mut Child, credential: Option<&str>) -> anyhow::Result<u32> {
    let pid = child.id().context("valgrind exited at once")?;
    // Slow to start under valgrind.
    let url = super::listening_url(child, Duration::from_secs(120)).await?;
    let endpoint = Endpoint::url(url);
    let endpoint = match credential {
        Some(credential) => endpoint.bearer(credential),
        None => endpoint,
    };
    let echo = Echo::ready(endpoint, "fixture__echo").await?;
    for _ in 0..50 {
        anyhow::ensure!(echo.call().await, "echo under valgrind failed");
    }
    control(pid, &["-i", "on"]).await?;
    for _ in 0..CALLS {
        anyhow::ensure!(echo.call().await, "echo under valgrind failed");
    }
    control(pid, &["-i", "off"]).await?;
    control(pid, &["-d"]).await?;
    echo.session.close(Duration::from_secs(5)).await;
    Ok(pid)
}

async fn control(pid: u32, args: &[&str]) -> anyhow::Result<()> {
    let status = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new("callgrind_control")
            .args(args)
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .status(),
    )
    .await
    .context("callgrind_control did not answer within 60 s")??;
    anyhow::ensure!(status.success(), "callgrind_control {args:?} {pid} failed");
    Ok(())
}
