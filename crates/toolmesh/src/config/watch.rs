//! Hot reload: [`ConfigWatcher`] reloads the configuration when one of its files
//! changes.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::{sync::mpsc, time::Instant};

use super::{Config, ConfigError, ConfigLoader};

#[cfg(target_os = "linux")]
#[path = "watch/inotify.rs"]
mod source;
#[cfg(not(target_os = "linux"))]
#[path = "watch/portable.rs"]
mod source;

/// A change of one of the watched files, or why watching failed.
type Change = Result<(), String>;

/// Watches the files of a [`ConfigLoader`] and loads the configuration again after each
/// change.
///
/// The directories holding the files are watched, not the files themselves, so editors
/// and deploy tools that write a new file and rename it over the old one are seen too.
/// Changes that come in quick succession (an editor's several writes of one save) are
/// taken together: [`next`](Self::next) waits until the files have been quiet for
/// [`DEBOUNCE`](Self::DEBOUNCE), then loads.
///
/// A file that does not load (a typo, half-written YAML) yields its [`ConfigError`],
/// which names the file; keep running on the previous configuration and wait for the
/// next change. Dropping the watcher stops watching.
///
/// Create the watcher before the first [`ConfigLoader::load`], so that no change made in
/// between is missed:
///
/// ```no_run
/// use toolmesh::{ConfigLoader, ConfigWatcher};
///
/// # async fn run() -> Result<(), toolmesh::ConfigError> {
/// let loader = ConfigLoader::new().file("toolmesh.yaml");
/// let mut watcher = ConfigWatcher::new(loader.clone())?;
/// let mut config = loader.load()?;
/// loop {
///     match watcher.next().await {
///         Ok(new) => config = new,
///         Err(e) => eprintln!("keeping the previous configuration: {e}"),
///     }
///     # let _ = &config;
/// }
/// # }
/// ```
pub struct ConfigWatcher {
    loader: ConfigLoader,
    events: mpsc::UnboundedReceiver<Change>,
    /// A change was seen and not loaded yet (kept across a cancelled `next`).
    pending: bool,
    first_file: PathBuf,
    /// Stops watching when dropped.
    _source: source::Source,
}

impl std::fmt::Debug for ConfigWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWatcher")
            .field("loader", &self.loader)
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl ConfigWatcher {
    /// How long the files must be quiet after a change before it is loaded.
    pub const DEBOUNCE: Duration = Duration::from_millis(200);
    /// Longest wait for quiet: files that keep changing are loaded at least this often.
    pub const MAX_DEBOUNCE: Duration = Duration::from_secs(2);

    /// Starts watching the files added to `loader` with [`ConfigLoader::file`]; their
    /// directories must exist (the files themselves may appear later).
    ///
    /// Fails when the loader has no files or a directory cannot be watched.
    pub fn new(loader: ConfigLoader) -> Result<Self, ConfigError> {
        let given: Vec<PathBuf> = loader.files().map(Path::to_path_buf).collect();
        let Some(first_file) = given.first().cloned() else {
            return Err(ConfigError::Watch {
                path: PathBuf::new(),
                message: "the loader has no files to watch; add them with ConfigLoader::file"
                    .into(),
            });
        };
        let mut files = Vec::with_capacity(given.len());
        let mut dirs: Vec<PathBuf> = Vec::new();
        for path in &given {
            let fail = |message: String| ConfigError::Watch {
                path: path.clone(),
                message,
            };
            let name = path
                .file_name()
                .ok_or_else(|| fail("the path does not name a file".into()))?;
            let parent = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            let dir = std::fs::canonicalize(parent).map_err(|e| {
                fail(format!(
                    "its directory {} cannot be opened: {e}",
                    parent.display()
                ))
            })?;
            files.push(dir.join(name));
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }

        let (sender, events) = mpsc::unbounded_channel();
        let source = source::Source::start(&dirs, files, sender).map_err(|(path, message)| {
            ConfigError::Watch {
                path: path.unwrap_or_else(|| first_file.clone()),
                message,
            }
        })?;
        Ok(Self {
            loader,
            events,
            pending: false,
            first_file,
            _source: source,
        })
    }

    /// The loader this watcher reloads with.
    pub fn loader(&self) -> &ConfigLoader {
        &self.loader
    }

    /// Whether a change has been seen and not loaded yet: a [`next`](Self::next)
    /// cancelled while waiting for quiet leaves it to the following call.
    pub fn change_pending(&self) -> bool {
        self.pending
    }

    /// Waits for the next change of any file, then loads and validates the whole
    /// configuration again: the new configuration, or why it does not load.
    ///
    /// Cancel safe: a change seen by a cancelled call is loaded by the next one.
    pub async fn next(&mut self) -> Result<Config, ConfigError> {
        if !self.pending {
            self.receive().await?;
            self.pending = true;
        }
        let started = Instant::now();
        while started.elapsed() < Self::MAX_DEBOUNCE {
            match tokio::time::timeout(Self::DEBOUNCE, self.receive()).await {
                Err(_quiet) => break,
                Ok(received) => received?,
            }
        }
        self.pending = false;
        self.loader.load()
    }

    /// The next change event.
    async fn receive(&mut self) -> Result<(), ConfigError> {
        match self.events.recv().await {
            Some(Ok(())) => Ok(()),
            Some(Err(message)) => Err(ConfigError::Watch {
                path: self.first_file.clone(),
                message,
            }),
            None => Err(ConfigError::Watch {
                path: self.first_file.clone(),
                message: "the file watcher stopped".into(),
            }),
        }
    }
}
