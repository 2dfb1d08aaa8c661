//! Elsewhere: `notify` on the files' directories.

use std::path::PathBuf;

use notify::{
    Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher,
    event::{AccessKind, AccessMode, ModifyKind},
};
use tokio::sync::mpsc;

use super::Change;

/// Stops watching when dropped.
pub(super) struct Source(#[allow(dead_code)] RecommendedWatcher);

impl Source {
    /// Watches `dirs` for changes of `files`.
    pub(super) fn start(
        dirs: &[PathBuf],
        files: Vec<PathBuf>,
        sender: mpsc::UnboundedSender<Change>,
    ) -> Result<Self, (Option<PathBuf>, String)> {
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            let change = match &event {
                Ok(event) if !is_change(event, &files) => return,
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            // The receiver is gone only when the watcher is being dropped.
            let _ = sender.send(change);
        })
        .map_err(|e| (None, e.to_string()))?;
        for dir in dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| (Some(dir.clone()), e.to_string()))?;
        }
        Ok(Self(watcher))
    }
}

/// Whether `event` may have changed one of `files` (reads, including our own loads,
/// and metadata-only changes do not).
fn is_change(event: &Event, files: &[PathBuf]) -> bool {
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => return false,
        _ => {}
    }
    event.need_rescan() || event.paths.iter().any(|path| files.contains(path))
}
