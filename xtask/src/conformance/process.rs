//! Child processes that cannot outlive the run: each is the leader of its own process
//! group, and [`Guarded`] kills that group by id when dropped.

use std::{
    fs::File,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// How often a timed wait looks at the child.
const POLL: Duration = Duration::from_millis(50);

/// A child process (and its process group) killed on drop unless it was reaped.
pub(crate) struct Guarded {
    name: String,
    child: Child,
    reaped: bool,
}

impl Guarded {
    /// Starts `cmd` in a new process group, its stdout and stderr going to `log`.
    pub(crate) fn spawn(name: &str, cmd: &mut Command, log: &Path) -> anyhow::Result<Self> {
        let file = open_log(log, true)?;
        cmd.stdout(Stdio::from(file.try_clone()?));
        Self::start(name, cmd, file)
    }

    /// Like [`spawn`](Self::spawn), but with stdout piped for [`await_line`](Self::await_line).
    pub(crate) fn spawn_piped(name: &str, cmd: &mut Command, log: &Path) -> anyhow::Result<Self> {
        let file = open_log(log, true)?;
        cmd.stdout(Stdio::piped());
        Self::start(name, cmd, file)
    }

    fn start(name: &str, cmd: &mut Command, stderr: File) -> anyhow::Result<Self> {
        cmd.stdin(Stdio::null()).stderr(Stdio::from(stderr));
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            reaped: false,
        })
    }

    /// Waits up to `timeout` for the process to exit; kills its group if it does not.
    pub(crate) fn wait(mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} (pid {}) did not finish within {timeout:?}; killed",
                    self.name,
                    self.child.id()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Reads stdout lines until one satisfies `ready` (returning what it extracts), within
    /// `timeout`; the rest of stdout goes on to `log`.
    pub(crate) fn await_line<T: Send + 'static>(
        &mut self,
        timeout: Duration,
        log: &Path,
        ready: impl Fn(&str) -> Option<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let stdout = self
            .child
            .stdout
            .take()
            .with_context(|| format!("{}: stdout was not piped", self.name))?;
        let log_path = log.to_owned();
        let mut log = open_log(log, false)?;
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout after the line, so the child never blocks on a full pipe.
        thread::spawn(move || {
            let mut found = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if !found && let Some(value) = ready(&line) {
                    found = true;
                    let _ = tx.send(value);
                }
            }
        });
        if let Ok(value) = rx.recv_timeout(timeout) {
            return Ok(value);
        }
        let how = match self.child.try_wait() {
            Ok(Some(status)) => {
                self.reaped = true;
                format!("exited ({status})")
            }
            _ => format!("did not announce itself within {timeout:?}"),
        };
        bail!(
            "{} (pid {}) {how}; see {}",
            self.name,
            self.child.id(),
            log_path.display()
        )
    }
}

/// `path` for appending (every writer at the end, so none overwrites another),
/// emptied first when `fresh`.
fn open_log(path: &Path, fresh: bool) -> anyhow::Result<File> {
    if fresh {
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    File::options()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        // The group id is the leader's pid, still ours while the leader is unreaped.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
