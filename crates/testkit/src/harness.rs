//! Starting the fixture binary from tests: [`FixtureServer`], [`fixture_bin`]
//! and [`stdio_command`].

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, ChildStdout, Command},
};

use crate::{FixtureOptions, fixture::READY_PREFIX};

/// File name of the fixture binary.
const BIN_NAME: &str = "toolmesh-fixture";
/// Environment variable that overrides where the fixture binary is.
const BIN_ENV: &str = "TOOLMESH_FIXTURE_BIN";
/// How long [`FixtureServer::start_on`] waits for the READY line.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `Drop` waits for the killed child to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Locate the `toolmesh-fixture` binary, or say how to build it.
///
/// `$TOOLMESH_FIXTURE_BIN` wins if set. Otherwise the directories above the
/// running executable are searched (tests run from `target/<profile>/deps/`,
/// the binary lives in `target/<profile>/`).
///
/// # Errors
///
/// When `$TOOLMESH_FIXTURE_BIN` names a missing file, or no ancestor
/// directory of the current executable holds the binary.
pub fn try_fixture_bin() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(BIN_ENV) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("{BIN_ENV}={} does not name a file", path.display());
    }
    let exe = std::env::current_exe().context("cannot locate the current executable")?;
    let file_name = format!("{BIN_NAME}{}", std::env::consts::EXE_SUFFIX);
    exe.ancestors()
        .skip(1)
        .map(|dir| dir.join(&file_name))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "{BIN_NAME} not found above {} (set {BIN_ENV} or build it with \
                 `cargo build -p toolmesh-testkit --bin toolmesh-fixture`)",
                exe.display()
            )
        })
}

/// Like [`try_fixture_bin`], but panics with build instructions if the binary
/// is missing (a test-only helper: failing loudly is the point).
///
/// # Panics
///
/// If the binary cannot be found; the message says to build it with
/// `cargo build -p toolmesh-testkit --bin toolmesh-fixture`.
pub fn fixture_bin() -> PathBuf {
    match try_fixture_bin() {
        Ok(path) => path,
        Err(error) => panic!("{error:#}"),
    }
}

/// Program and arguments that run the fixture over stdio with `opts`
/// (for `TokioChildProcess` or any stdio MCP client). The arguments start
/// with `--stdio`.
///
/// # Panics
///
/// Like [`fixture_bin`], if the binary cannot be found.
pub fn stdio_command(opts: &FixtureOptions) -> (PathBuf, Vec<String>) {
    let mut args = vec!["--stdio".to_owned()];
    args.extend(opts.args());
    (fixture_bin(), args)
}

/// A running `toolmesh-fixture` process serving streamable HTTP at
/// [`http_url`](Self::http_url) and WebSocket at [`ws_url`](Self::ws_url).
///
/// Dropping it kills the process with SIGKILL and reaps it before returning.
#[derive(Debug)]
pub struct FixtureServer {
    options: FixtureOptions,
    child: Option<Child>,
    pid: u32,
    http_url: String,
    ws_url: String,
    http_port: u16,
    ws_port: u16,
}

impl FixtureServer {
    /// Start the fixture on a free loopback port (HTTP and WebSocket share it)
    /// and wait up to 10 s for it to listen.
    ///
    /// # Errors
    ///
    /// If the binary is missing, fails to start, or does not report ready in time.
    pub async fn start(options: FixtureOptions) -> anyhow::Result<Self> {
        Self::start_on(options, 0, 0).await
    }

    /// Start the fixture with HTTP on `127.0.0.1:http_port` and WebSocket on
    /// `127.0.0.1:ws_port` (0 picks a free port; equal ports share one
    /// listener), and wait up to 10 s for it to listen.
    ///
    /// # Errors
    ///
    /// If the binary is missing, fails to start (e.g. the port is taken), or
    /// does not report ready in time.
    pub async fn start_on(
        options: FixtureOptions,
        http_port: u16,
        ws_port: u16,
    ) -> anyhow::Result<Self> {
        let bin = try_fixture_bin()?;
        Self::spawn(&bin, options, http_port, ws_port).await
    }

    async fn spawn(
        bin: &Path,
        options: FixtureOptions,
        http_port: u16,
        ws_port: u16,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .arg("--http")
            .arg(format!("127.0.0.1:{http_port}"))
            .arg("--ws")
            .arg(format!("127.0.0.1:{ws_port}"))
            .args(options.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot spawn {}", bin.display()))?;
        let pid = child.id().context("fixture exited immediately")?;
        let Some(stdout) = child.stdout.take() else {
            bail!("fixture stdout was not captured");
        };
        let mut reader = BufReader::new(stdout);
        let ready = tokio::time::timeout(READY_TIMEOUT, read_ready_line(&mut reader)).await;
        let line = match ready {
            Ok(Ok(line)) => line,
            Ok(Err(error)) => {
                let status = reap(&mut child).await;
                return Err(error.context(format!("fixture (pid {pid}) {status}")));
            }
            Err(_) => {
                let status = reap(&mut child).await;
                bail!(
                    "fixture (pid {pid}) printed no {READY_PREFIX} line within {READY_TIMEOUT:?}; {status}"
                );
            }
        };
        let ready = match Ready::parse(&line) {
            Ok(ready) => ready,
            Err(error) => {
                reap(&mut child).await;
                return Err(error);
            }
        };
        forward_stdout(reader, pid);
        Ok(Self {
            options,
            child: Some(child),
            pid,
            http_url: ready.http_url,
            ws_url: ready.ws_url,
            http_port: ready.http_port,
            ws_port: ready.ws_port,
        })
    }

    /// Streamable HTTP endpoint, e.g. `http://127.0.0.1:41234/mcp`.
    pub fn http_url(&self) -> &str {
        &self.http_url
    }

    /// WebSocket endpoint, e.g. `ws://127.0.0.1:41234/ws`.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// Port of [`http_url`](Self::http_url).
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// Port of [`ws_url`](Self::ws_url).
    pub fn ws_port(&self) -> u16 {
        self.ws_port
    }

    /// Process id of the current fixture process (the latest one after
    /// [`restart`](Self::restart)).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The options the fixture runs with.
    pub fn options(&self) -> &FixtureOptions {
        &self.options
    }

    /// The process's exit status if it has exited (e.g. after
    /// `--crash-after`), without blocking; `None` while it runs.
    ///
    /// # Errors
    ///
    /// If the status cannot be queried.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        match &mut self.child {
            Some(child) => Ok(child.try_wait()?),
            None => bail!("fixture (pid {}) was killed", self.pid),
        }
    }

    /// Kill the process with SIGKILL and reap it. Idempotent.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only if the child was already reaped; `wait` is still right.
            let _ = child.start_kill();
            if let Err(error) = child.wait().await {
                tracing::warn!(pid = self.pid, %error, "failed to reap fixture");
            }
        }
    }

    /// Kill the process and start a new one with the same options on the same
    /// ports (in-flight calls fail; clients must reconnect).
    ///
    /// # Errors
    ///
    /// If the new process fails to start or to bind the old ports.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        let next = Self::start_on(self.options.clone(), self.http_port, self.ws_port).await?;
        *self = next;
        Ok(())
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        let Some(child) = &mut self.child else {
            return;
        };
        let _ = child.start_kill();
        let deadline = Instant::now() + REAP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    eprintln!(
                        "toolmesh-testkit: fixture pid {} not reaped after SIGKILL",
                        self.pid
                    );
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}

/// Read lines until the READY line; anything else is forwarded to stderr.
async fn read_ready_line(reader: &mut BufReader<ChildStdout>) -> anyhow::Result<String> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .await
            .context("reading fixture stdout")?;
        if n == 0 {
            bail!("fixture closed stdout before printing {READY_PREFIX}");
        }
        let trimmed = line.trim_end();
        if trimmed.starts_with(READY_PREFIX) {
            return Ok(trimmed.to_owned());
        }
        eprintln!("[toolmesh-fixture] {trimmed}");
    }
}

/// Kill and reap a child that failed to start; describe how it ended.
async fn reap(child: &mut Child) -> String {
    let _ = child.start_kill();
    match tokio::time::timeout(REAP_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) => format!("exited with {status}"),
        Ok(Err(error)) => format!("could not be reaped: {error}"),
        Err(_) => "was not reaped in time".to_owned(),
    }
}

/// Keep draining the child's stdout so it can never block on a full pipe.
fn forward_stdout(reader: BufReader<ChildStdout>, pid: u32) {
    tokio::spawn(async move {
        let mut lines = reader.lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[toolmesh-fixture {pid}] {line}");
        }
    });
}

/// The parsed READY line.
#[derive(Debug, PartialEq)]
struct Ready {
    http_url: String,
    ws_url: String,
    http_port: u16,
    ws_port: u16,
}

impl Ready {
    fn parse(line: &str) -> anyhow::Result<Self> {
        let mut http_url = None;
        let mut ws_url = None;
        for field in line.split_whitespace().skip(1) {
            match field.split_once('=') {
                Some(("http", url)) => http_url = Some(url.to_owned()),
                Some(("ws", url)) => ws_url = Some(url.to_owned()),
                _ => {}
            }
        }
        let http_url = http_url.with_context(|| format!("no http= in {line:?}"))?;
        let ws_url = ws_url.with_context(|| format!("no ws= in {line:?}"))?;
        let http_port = url_port(&http_url)?;
        let ws_port = url_port(&ws_url)?;
        Ok(Self {
            http_url,
            ws_url,
            http_port,
            ws_port,
        })
    }
}

/// The port of `scheme://host:port/path`.
fn url_port(url: &str) -> anyhow::Result<u16> {
    let authority = url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(rest))
        .with_context(|| format!("{url:?} is not a URL"))?;
    let (_, port) = authority
        .rsplit_once(':')
        .with_context(|| format!("{url:?} has no port"))?;
    port.parse()
        .with_context(|| format!("{url:?} has a bad port"))
}

#[cfg(test)]
mod tests {
    use super::{Ready, url_port};

    #[test]
    fn parses_ready_line() -> anyhow::Result<()> {
        let ready = Ready::parse(
            "TOOLMESH_FIXTURE_READY http=http://127.0.0.1:41234/mcp ws=ws://[::1]:41235/ws pid=1234",
        )?;
        assert_eq!(
            ready,
            Ready {
                http_url: "http://127.0.0.1:41234/mcp".to_owned(),
                ws_url: "ws://[::1]:41235/ws".to_owned(),
                http_port: 41234,
                ws_port: 41235,
            }
        );
        assert!(Ready::parse("TOOLMESH_FIXTURE_READY http=- ws=- pid=1").is_err());
        assert!(url_port("http://127.0.0.1/mcp").is_err());
        Ok(())
    }
}
