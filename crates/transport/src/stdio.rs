//! Child processes speaking MCP on stdin/stdout: spawned without a shell, stderr forwarded
//! to `tracing`, killed (with their process group) and reaped when the session goes away.

use std::{
    process::Stdio,
    sync::{Arc, OnceLock},
};

use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio_util::sync::CancellationToken;

use crate::Endpoint;

/// A running child. Dropping it kills the process group at once; a task reaps the child.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    pid: u32,
    stop: CancellationToken,
}

impl ChildGuard {
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the process group now; the reaper task collects the child.
    pub(crate) fn kill(&self) {
        kill_group(self.pid);
        self.stop.cancel();
    }
}

/// How a child ended, observable once it has.
#[derive(Debug, Clone)]
pub(crate) struct ExitWatch {
    how: Arc<OnceLock<String>>,
    done: CancellationToken,
}

impl ExitWatch {
    /// Resolves when the child has exited and been reaped.
    pub(crate) async fn exited(&self) {
        self.done.cancelled().await;
    }

    /// How the child ended, waiting for it at most `bound`.
    pub(crate) async fn how(&self, bound: std::time::Duration) -> Option<String> {
        let _ = tokio::time::timeout(bound, self.exited()).await;
        self.how.get().cloned()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        kill_group(self.pid);
        self.stop.cancel();
    }
}

/// SIGKILL to the child's process group (it leads one: see `process_group(0)`).
fn kill_group(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: killpg only sends a signal; a stale pgid yields ESRCH, which is harmless.
        #[allow(unsafe_code)]
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

/// What [`spawn`] hands back.
pub(crate) struct Spawned {
    pub(crate) guard: ChildGuard,
    pub(crate) stdout: ChildStdout,
    pub(crate) stdin: ChildStdin,
    pub(crate) exit: ExitWatch,
}

/// Starts the endpoint's command.
pub(crate) fn spawn(endpoint: &Endpoint, label: Arc<str>) -> std::io::Result<Spawned> {
    let (program, args) = endpoint
        .argv()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .envs(&endpoint.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, so grandchildren (npx, shell wrappers) die with it.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &endpoint.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn()?;
    let pid = child.id().unwrap_or_default();
    let (Some(stdout), Some(stdin), stderr) =
        (child.stdout.take(), child.stdin.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("child stdio was not piped"));
    };
    if let Some(stderr) = stderr {
        tokio::spawn(forward_stderr(stderr, label.clone()));
    }
    let stop = CancellationToken::new();
    let exit = ExitWatch {
        how: Arc::new(OnceLock::new()),
        done: CancellationToken::new(),
    };
    tokio::spawn({
        let (stop, exit) = (stop.clone(), exit.clone());
        async move {
            let status = tokio::select! {
                status = child.wait() => status,
                () = stop.cancelled() => {
                    kill_group(pid);
                    child.wait().await
                }
            };
            let what = match status {
                Ok(s) => describe_exit(s),
                Err(e) => format!("process state unknown ({e})"),
            };
            tracing::debug!(server = %label, pid, "{what}");
            let _ = exit.how.set(what);
            // Take the rest of the group down too: a lone grandchild must not linger.
            kill_group(pid);
            exit.done.cancel();
        }
    });
    Ok(Spawned {
        guard: ChildGuard { pid, stop },
        stdout,
        stdin,
        exit,
    })
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("process exited with status {code}"),
        (None, Some(sig)) => format!("process killed by signal {sig}"),
        _ => "process exited".to_owned(),
    }
}

async fn forward_stderr(stderr: tokio::process::ChildStderr, label: Arc<str>) {
    use futures::StreamExt;
    use tokio_util::codec::{FramedRead, LinesCodec};
    // Bounded lines: a server printing megabytes without a newline must not grow memory.
    let mut lines = FramedRead::new(stderr, LinesCodec::new_with_max_length(16 * 1024));
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => {
                tracing::info!(target: "toolmesh::server_stderr", server = %label, "{line}")
            }
            Err(tokio_util::codec::LinesCodecError::MaxLineLengthExceeded) => {
                tracing::info!(target: "toolmesh::server_stderr", server = %label, "<stderr line over 16 KiB skipped>");
            }
            Err(_) => break,
        }
    }
}
