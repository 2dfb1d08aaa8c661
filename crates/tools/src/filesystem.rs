//! `fs_read`, `fs_list`, `fs_stat`, `fs_search`, `fs_write`: files confined to configured roots.
//!
//! Every path goes through a [`Sandbox`]: `..` components are refused outright, absolute
//! paths must lie inside a root, relative paths are relative to the first root, and the
//! path is canonicalized (symbolic links resolved) and checked again, so a link inside a
//! root that points outside it is refused too. Writes canonicalize the parent directory
//! and refuse unless `allow_write` is set.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod list;
mod read;
mod sandbox;
mod search;
mod stat;
mod write;

pub use list::FsList;
pub use read::FsRead;
pub use sandbox::Sandbox;
pub use search::FsSearch;
pub use stat::FsStat;
pub use write::FsWrite;

/// Where the filesystem tools may look, and whether they may write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesystemConfig {
    /// Directories the tools are confined to; relative paths in calls are relative to the
    /// first. Each must exist.
    pub roots: Vec<PathBuf>,
    /// Registers `fs_write` and lets it write; default `false`.
    pub allow_write: bool,
    /// Most bytes `fs_read` returns per call (longer files are truncated, with the offset
    /// to continue from); default 1 MiB.
    pub max_read_bytes: u64,
}

impl FilesystemConfig {
    /// Default of [`max_read_bytes`](Self::max_read_bytes): 1 MiB.
    pub const DEFAULT_MAX_READ_BYTES: u64 = 1024 * 1024;

    /// Read-only access to `roots`.
    pub fn new(roots: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        Self {
            roots: roots.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            allow_write: false,
            max_read_bytes: Self::DEFAULT_MAX_READ_BYTES,
        }
    }
}

/// `file`, `directory`, `symlink` or `other`.
fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_file() {
        "file"
    } else {
        "other"
    }
}

/// Annotations of the tools that only read.
fn read_only() -> rmcp::model::ToolAnnotations {
    rmcp::model::ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false)
}
