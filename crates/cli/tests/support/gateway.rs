//! Running `toolmesh serve` as a real process from tests.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use toolmesh::{Endpoint, Session};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

/// How long a gateway may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The line `toolmesh serve` prints once it serves.
const LISTENING: &str = "toolmesh listening on ";

/// The `toolmesh` binary under test.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_toolmesh")
}

/// A `toolmesh serve` process on a free loopback port; killed (SIGKILL) and reaped on drop.
pub(crate) struct Gateway {
    child: Option<Child>,
    pid: u32,
    /// `http://127.0.0.1:<port>/mcp`.
    pub(crate) url: String,
    /// `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    http: reqwest::Client,
}

impl Gateway {
    /// `toolmesh serve --listen 127.0.0.1:0` plus `args`, once it prints its URL.
    pub(crate) async fn start(args: &[&str]) -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0", args).await
    }

    /// `toolmesh serve --listen <listen>` plus `args`, once it prints its URL.
    pub(crate) async fn start_on(listen: &str, args: &[&str]) -> anyhow::Result<Self> {
        Self::start_command(&["serve"], listen, args).await
    }

    /// `toolmesh <command…> --listen <listen>` plus `args`, once it prints its URL.
    pub(crate) async fn start_command(
        command: &[&str],
        listen: &str,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(bin())
            .args(command)
            .args(["--listen", listen])
            .args(args)
            .env("RUST_LOG", "warn,rmcp=error,toolmesh=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start toolmesh")?;
        let pid = child.id().context("toolmesh exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix(LISTENING) {
                    return Ok(url.trim().to_owned());
                }
                eprintln!("[toolmesh stdout] {line}");
            }
            bail!("toolmesh closed stdout without printing `{LISTENING}…`")
        })
        .await
        .context("toolmesh printed no listening line in time")??;
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[toolmesh stdout] {line}");
            }
        });
        let base = url
            .strip_suffix("/mcp")
            .with_context(|| format!("unexpected URL {url}"))?
            .to_owned();
        Ok(Self {
            child: Some(child),
            pid,
            url,
            base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        })
    }

    /// `toolmesh serve --config <file>` plus `args`.
    pub(crate) async fn with_config(config: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let config = config.to_str().context("non-UTF-8 path")?;
        let mut all = vec!["--config", config];
        all.extend_from_slice(args);
        Self::start(&all).await
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// A new MCP client session.
    pub(crate) async fn session(&self) -> anyhow::Result<Session> {
        Ok(Session::connect(&Endpoint::url(self.url.clone())).await?)
    }

    /// `GET <base><path>`: status and body.
    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let response = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// `GET /status` as JSON.
    pub(crate) async fn status(&self) -> anyhow::Result<Value> {
        let (code, body) = self.get("/status").await?;
        anyhow::ensure!(code == 200, "/status answered {code}: {body}");
        Ok(serde_json::from_str(&body)?)
    }

    /// A raw POST to `/mcp`.
    pub(crate) async fn post_mcp(
        &self,
        body: impl Into<reqwest::Body>,
    ) -> anyhow::Result<(u16, String)> {
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub(crate) async fn terminate(
        &mut self,
        within: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.pid);
        let child = self.child.as_mut().context("already gone")?;
        let exit = tokio::time::timeout(within, child.wait())
            .await
            .context("toolmesh did not exit after SIGTERM")??;
        self.child = None;
        Ok(exit)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let Some(child) = &mut self.child else {
            return;
        };
        let _ = child.start_kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        eprintln!("toolmesh pid {} not reaped after SIGKILL", self.pid);
    }
}

/// Runs `toolmesh args…` with `env` (RUST_LOG and COLUMNS unset otherwise), bounded:
/// the exit code, stdout and stderr.
pub(crate) async fn run(
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<(i32, String, String)> {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(bin())
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("COLUMNS")
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("toolmesh did not exit within 60 s")??;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Polls `check` every 100 ms until it returns `Some` or `within` passes.
pub(crate) async fn eventually<T, F, Fut>(
    within: Duration,
    what: &str,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fixture process (instance id `id`) and a configuration file serving it as the
/// service `fixture`; both live as long as the value.
pub(crate) struct FixtureConfig {
    pub(crate) fixture: FixtureServer,
    pub(crate) path: PathBuf,
    _dir: tempfile::TempDir,
}

impl FixtureConfig {
    pub(crate) async fn start(id: &str) -> anyhow::Result<Self> {
        let fixture = FixtureServer::start(FixtureOptions::new().instance_id(id)).await?;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("toolmesh.yaml");
        std::fs::write(
            &path,
            config_yaml(&[("fixture", vec![fixture.http_url().to_owned()])]),
        )?;
        Ok(Self {
            fixture,
            path,
            _dir: dir,
        })
    }

    /// The configuration file's path as a command-line argument.
    pub(crate) fn arg(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }
}

/// A YAML configuration of one service `name` with `urls` as its instances, with quick
/// health checks so tests see failures within a second or two.
pub(crate) fn config_yaml(services: &[(&str, Vec<String>)]) -> String {
    let mut yaml = String::from(
        "defaults:\n  timeout: 10s\n  health_check: { interval: 500ms, timeout: 1s, failure_threshold: 1 }\n  circuit_breaker: { failure_threshold: 3, recovery_timeout: 30s }\nservers:\n",
    );
    for (name, urls) in services {
        yaml.push_str(&format!("  {name}:\n    instances:\n"));
        for url in urls {
            yaml.push_str(&format!("      - url: {url}\n"));
        }
    }
    yaml
}

/// Writes `text` to `path` atomically (write then rename), as editors do.
pub(crate) fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Calls `tool` with `arguments` back to back on `session` until `stop` (or `limit` passes,
/// whatever happens); each outcome, a tool error counting as a failure.
pub(crate) async fn call_until(
    session: Session,
    tool: &'static str,
    arguments: Value,
    stop: tokio_util::sync::CancellationToken,
    limit: Duration,
) -> Vec<Result<(), String>> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut outcomes = Vec::new();
    while !stop.is_cancelled() && tokio::time::Instant::now() < deadline {
        let ctx = toolmesh::CallContext::with_timeout(Duration::from_secs(20));
        outcomes.push(
            match session
                .call_tool(tool, arguments.as_object().cloned(), &ctx)
                .await
            {
                Ok(result) if result.is_error != Some(true) => Ok(()),
                Ok(result) => Err(format!("tool error: {:?}", result.content)),
                Err(e) => Err(e.to_string()),
            },
        );
    }
    outcomes
}

/// Stops the `callers` (looping until `stop`) and gathers what their calls came to.
///
/// # Errors
///
/// When a caller does not end within 60 s or panicked, or when any call failed (the
/// error lists them).
pub(crate) async fn stop_all_ok<T>(
    stop: &tokio_util::sync::CancellationToken,
    callers: Vec<tokio::task::JoinHandle<Vec<Result<T, String>>>>,
) -> anyhow::Result<Vec<T>> {
    stop.cancel();
    let mut outcomes = Vec::new();
    for caller in callers {
        outcomes.extend(tokio::time::timeout(Duration::from_secs(60), caller).await??);
    }
    let total = outcomes.len();
    let (ok, failures): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(Result::is_ok);
    let failures: Vec<String> = failures.into_iter().filter_map(Result::err).collect();
    anyhow::ensure!(
        failures.is_empty(),
        "{} of {total} calls failed: {failures:#?}",
        failures.len()
    );
    Ok(ok.into_iter().filter_map(Result::ok).collect())
}
