//! A real etcd on loopback ports, in a directory of its own, for the distributed registry's
//! tests: started per test, restartable on the same data (a store that goes away and comes
//! back), stopped by PID on drop.

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    process::{Child, Command},
};

use crate::peers::free_port;

/// How long etcd may take to answer `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One etcd member on `127.0.0.1`.
#[derive(Debug)]
pub struct EtcdServer {
    child: Option<Child>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
    tls: Option<EtcdServerTls>,
}

/// Files of an etcd serving its clients over TLS and asking them for a certificate.
#[derive(Debug, Clone)]
pub struct EtcdServerTls {
    /// Its certificate (PEM), valid for `127.0.0.1`.
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
    /// The CA that signs the client certificates it accepts (PEM).
    pub client_ca: PathBuf,
}

impl EtcdServer {
    /// Starts etcd (from `PATH`; `cargo xtask test` installs Debian's `etcd-server`) with
    /// its data in a new temporary directory, and waits until it is healthy.
    ///
    /// # Errors
    ///
    /// When etcd is missing, exits early or is not healthy in time.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// Starts etcd serving `https://` with `tls` and client-certificate authentication;
    /// ready once its port accepts connections (a client without a certificate cannot ask
    /// `/health`).
    ///
    /// # Errors
    ///
    /// As [`Self::start`].
    pub async fn start_tls(tls: EtcdServerTls) -> anyhow::Result<Self> {
        Self::start_with(Some(tls)).await
    }

    async fn start_with(tls: Option<EtcdServerTls>) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "toolmesh-etcd-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {dir:?}"))?;
        let mut server = Self {
            child: None,
            dir,
            client_port: free_port()?,
            peer_port: free_port()?,
            tls,
        };
        server.spawn().await?;
        Ok(server)
    }

    /// The client URL, `http://127.0.0.1:<port>` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Kills it (SIGKILL) and waits until it is gone; the data stays for [`Self::restart`].
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
    }

    /// Kills it, deletes its data and starts an empty etcd on the same ports: a store
    /// rebuilt from scratch, whose revisions start again at 1.
    ///
    /// # Errors
    ///
    /// As [`Self::start`].
    pub async fn wipe_and_restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        let data = self.dir.join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data).with_context(|| format!("cannot delete {data:?}"))?;
        }
        self.spawn().await
    }

    /// Starts it again on the same ports and data (after [`Self::kill`]).
    ///
    /// # Errors
    ///
    /// As [`Self::start`].
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        self.spawn().await
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = Command::new("etcd");
        cmd.args([
            "--name",
            "toolmesh-test",
            "--data-dir",
            &self.dir.join("data").to_string_lossy(),
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--initial-cluster",
            &format!("toolmesh-test={peer}"),
            "--log-level",
            "error",
        ])
        .args(self.tls.iter().flat_map(|tls| {
            [
                "--cert-file".to_owned(),
                tls.cert.to_string_lossy().into_owned(),
                "--key-file".to_owned(),
                tls.key.to_string_lossy().into_owned(),
                "--client-cert-auth".to_owned(),
                "--trusted-ca-file".to_owned(),
                tls.client_ca.to_string_lossy().into_owned(),
            ]
        }))
        .current_dir(&self.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
        let child = cmd.spawn().context(
            "cannot start etcd: install Debian's etcd-server (cargo xtask test does) or put etcd on PATH",
        )?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if self.healthy().await {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("etcd exited before it was healthy: {status}");
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "etcd was not healthy on port {} within {START_TIMEOUT:?}",
                    self.client_port
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether `/health` says so (one bounded HTTP/1.0 request); with TLS, whether the
    /// port accepts connections.
    async fn healthy(&self) -> bool {
        if self.tls.is_some() {
            return tokio::net::TcpStream::connect(("127.0.0.1", self.client_port))
                .await
                .is_ok();
        }
        let ask = async {
            let mut stream =
                tokio::net::TcpStream::connect(("127.0.0.1", self.client_port)).await?;
            stream
                .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                .await?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await?;
            Ok::<_, std::io::Error>(answer.contains("\"health\":\"true\""))
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), ask).await,
            Ok(Ok(true))
        )
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
