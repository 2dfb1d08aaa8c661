//! Linux: inotify on the files' directories, asking only for what ends a change — a
//! file written and closed, renamed in or out, created or deleted. Not for every
//! write: a log appended next to the configuration (an audit file, say) would
//! otherwise wake the watcher once per line, which cost the gateway ~50 µs per call.

use std::{collections::HashMap, path::PathBuf};

use futures::StreamExt;
use inotify::{EventMask, Inotify, WatchMask};
use tokio::sync::mpsc;

use super::Change;

/// The task reading the events; stops when dropped.
pub(super) struct Source(tokio::task::AbortHandle);

impl Drop for Source {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Source {
    /// Watches `dirs` for changes of `files`; needs a tokio runtime.
    pub(super) fn start(
        dirs: &[PathBuf],
        files: Vec<PathBuf>,
        sender: mpsc::UnboundedSender<Change>,
    ) -> Result<Self, (Option<PathBuf>, String)> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| (None, "watching needs a tokio runtime".to_owned()))?;
        let inotify = Inotify::init().map_err(|e| (None, format!("inotify: {e}")))?;
        let mask = WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF;
        let mut watched = HashMap::new();
        for dir in dirs {
            let wd = inotify
                .watches()
                .add(dir, mask)
                .map_err(|e| (Some(dir.clone()), e.to_string()))?;
            watched.insert(wd, dir.clone());
        }
        let mut events = inotify
            .into_event_stream([0u8; 4096])
            .map_err(|e| (None, format!("inotify: {e}")))?;
        let task = runtime.spawn(async move {
            while let Some(event) = events.next().await {
                let change = match event {
                    Ok(event) => {
                        let names_a_file = |name: std::ffi::OsString| {
                            watched
                                .get(&event.wd)
                                .is_some_and(|dir| files.contains(&dir.join(&name)))
                        };
                        // Lost events or a directory gone: assume the files changed.
                        let unsure = event.mask.intersects(
                            EventMask::Q_OVERFLOW | EventMask::DELETE_SELF | EventMask::MOVE_SELF,
                        );
                        if !unsure && !event.name.is_some_and(names_a_file) {
                            continue;
                        }
                        Ok(())
                    }
                    Err(e) => Err(format!("inotify: {e}")),
                };
                let failed = change.is_err();
                // The receiver is gone only when the watcher is being dropped.
                if sender.send(change).is_err() || failed {
                    return;
                }
            }
        });
        Ok(Self(task.abort_handle()))
    }
}
