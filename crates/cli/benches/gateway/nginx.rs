//! The reference L7 hop: nginx `proxy_pass` with keep-alive in front of the same fixture,
//! on the server core. The floor for any HTTP gateway on this machine.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::Context;
use tokio::process::{Child, Command};
use toolmesh_testkit::bench::{self, SERVER_CPU};

/// A running nginx (one worker, no daemon), stopped by its PID on drop.
pub(super) struct Nginx {
    child: Child,
    pub(super) url: String,
}

/// Where nginx is, when it is installed (Debian puts it in `/usr/sbin`).
fn binary() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

impl Nginx {
    /// Starts nginx proxying `/mcp` to `upstream_port` with pooled keep-alive connections
    /// and unbuffered answers (SSE); `None` when nginx is not installed.
    pub(super) async fn start(dir: &Path, upstream_port: u16) -> anyhow::Result<Option<Self>> {
        let Some(bin) = binary() else {
            return Ok(None);
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let prefix = dir.join("nginx");
        std::fs::create_dir_all(prefix.join("logs"))?;
        let conf = prefix.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {pid};\nerror_log stderr error;\n\
                 events {{ worker_connections 1024; }}\n\
                 http {{\n  access_log off;\n\
                 \x20 client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n\
                 \x20 fastcgi_temp_path {tmp}/fastcgi;\n  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n\
                 \x20 upstream fixture {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}\n\
                 \x20 server {{\n    listen 127.0.0.1:{port};\n    tcp_nodelay on;\n\
                 \x20   location / {{\n      proxy_pass http://fixture;\n      proxy_http_version 1.1;\n\
                 \x20     proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n      proxy_buffering off;\n      proxy_request_buffering off;\n    }}\n  }}\n}}\n",
                pid = prefix.join("nginx.pid").display(),
                tmp = prefix.display(),
            ),
        )?;
        let child = Command::new("taskset")
            .args(["-c", SERVER_CPU])
            .arg(&bin)
            .arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let nginx = Self {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        };
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        anyhow::ensure!(ready.is_ok(), "nginx did not listen on {port} in 10 s");
        if let Some(pid) = nginx.child.id() {
            bench::pin(pid, SERVER_CPU)?;
        }
        Ok(Some(nginx))
    }

    /// Process id of the nginx worker (`master_process off`: the only process).
    pub(super) fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    pub(super) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
