//! Path confinement shared by the filesystem tools.

use std::{
    io::ErrorKind,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use crate::{FilesystemConfig, ToolsError};

/// The roots the filesystem tools are confined to; cheap to clone.
///
/// Checks are made on canonical paths (symbolic links resolved). Like every path check
/// done before an open, they cannot stop another process that swaps a directory for a
/// link between the check and the open; the roots should not be writable by anyone the
/// sandbox protects against.
#[derive(Debug, Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    roots: Vec<Root>,
    allow_write: bool,
    max_read_bytes: u64,
}

#[derive(Debug)]
struct Root {
    /// As configured (may contain links).
    configured: PathBuf,
    /// Canonical form; every check compares against it.
    canonical: PathBuf,
}

/// What a path resolved to.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// Canonical path, inside a root.
    pub(crate) canonical: PathBuf,
    /// Whether the path as given is a symbolic link (to somewhere inside a root).
    pub(crate) via_symlink: bool,
}

impl Sandbox {
    /// Canonicalizes the configured roots; each must be an existing directory.
    pub fn new(config: FilesystemConfig) -> Result<Self, ToolsError> {
        if config.roots.is_empty() {
            return Err(ToolsError::Config {
                field: "filesystem.roots",
                reason: "no root configured; list at least one directory the tools may access"
                    .to_owned(),
            });
        }
        let mut roots = Vec::with_capacity(config.roots.len());
        for configured in config.roots {
            let canonical = std::fs::canonicalize(&configured).map_err(|e| ToolsError::Root {
                path: configured.clone(),
                reason: e.to_string(),
            })?;
            if !canonical.is_dir() {
                return Err(ToolsError::Root {
                    path: configured,
                    reason: "not a directory".to_owned(),
                });
            }
            roots.push(Root {
                configured,
                canonical,
            });
        }
        Ok(Self {
            inner: Arc::new(Inner {
                roots,
                allow_write: config.allow_write,
                max_read_bytes: config.max_read_bytes,
            }),
        })
    }

    /// The canonical roots; the first is the base of relative paths.
    pub fn roots(&self) -> impl Iterator<Item = &Path> {
        self.inner.roots.iter().map(|root| root.canonical.as_path())
    }

    /// Whether `fs_write` may write.
    pub fn allow_write(&self) -> bool {
        self.inner.allow_write
    }

    /// Most bytes `fs_read` returns per call.
    pub fn max_read_bytes(&self) -> u64 {
        self.inner.max_read_bytes
    }

    fn base(&self) -> &Path {
        // `new` refuses an empty list.
        self.inner
            .roots
            .first()
            .map_or(Path::new("/nonexistent"), |root| root.canonical.as_path())
    }

    /// The roots for descriptions and messages.
    pub(crate) fn describe_roots(&self) -> String {
        self.inner
            .roots
            .iter()
            .enumerate()
            .map(|(i, root)| {
                if i == 0 {
                    format!("{} (base of relative paths)", root.canonical.display())
                } else {
                    root.canonical.display().to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// How results name `canonical`: relative to the first root, else absolute.
    pub(crate) fn display(&self, canonical: &Path) -> String {
        match canonical.strip_prefix(self.base()) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => canonical.display().to_string(),
        }
    }

    fn is_inside(&self, canonical: &Path) -> bool {
        self.inner
            .roots
            .iter()
            .any(|root| canonical.starts_with(&root.canonical))
    }

    /// The lexical checks: no `..`, absolute paths inside a root. Returns the path to
    /// look up (not yet canonical).
    fn lexical(&self, path: &str) -> Result<PathBuf, String> {
        let trimmed = path.trim();
        if trimmed.contains('\0') {
            return Err("the path contains a NUL byte".to_owned());
        }
        if trimmed.is_empty() || trimmed == "." {
            return Ok(self.base().to_path_buf());
        }
        let given = Path::new(trimmed);
        if given
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return Err(format!(
                "`{trimmed}` contains `..`, which is not allowed: paths must stay inside the allowed roots ({}); \
                 give a path relative to the first root, without `..`",
                self.describe_roots()
            ));
        }
        if given.is_absolute() {
            let inside = self.inner.roots.iter().any(|root| {
                given.starts_with(&root.canonical) || given.starts_with(&root.configured)
            });
            if !inside {
                return Err(format!(
                    "`{trimmed}` is outside the allowed roots ({}); use a path relative to the first root \
                     or an absolute path inside one of them",
                    self.describe_roots()
                ));
            }
            return Ok(given.to_path_buf());
        }
        Ok(self.base().join(given))
    }

    /// Resolves an existing path (following links) and checks it stays inside a root.
    pub(crate) async fn resolve_existing(&self, path: &str) -> Result<Resolved, String> {
        let candidate = self.lexical(path)?;
        let canonical = tokio::fs::canonicalize(&candidate)
            .await
            .map_err(|e| self.io_message(path, &e))?;
        if !self.is_inside(&canonical) {
            return Err(self.escape_message(path));
        }
        let via_symlink = tokio::fs::symlink_metadata(&candidate)
            .await
            .map(|m| m.file_type().is_symlink())
            .unwrap_or(false);
        Ok(Resolved {
            canonical,
            via_symlink,
        })
    }

    /// Resolves a file path to write: its parent is canonicalized (and created with
    /// `create_dirs`) and checked; an existing link is followed only to inside a root.
    pub(crate) async fn resolve_for_write(
        &self,
        path: &str,
        create_dirs: bool,
    ) -> Result<PathBuf, String> {
        let candidate = self.lexical(path)?;
        let Some(name) = candidate.file_name().map(ToOwned::to_owned) else {
            return Err(format!(
                "`{path}` names no file; give a file path like `notes/todo.txt`"
            ));
        };
        let parent = candidate.parent().unwrap_or(self.base()).to_path_buf();

        // The deepest existing ancestor, canonical, plus the directories missing below it.
        let mut missing = Vec::new();
        let mut existing = parent.as_path();
        let base = loop {
            match tokio::fs::canonicalize(existing).await {
                Ok(canonical) => break canonical,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    let (Some(up), Some(last)) = (existing.parent(), existing.file_name()) else {
                        return Err(self.io_message(path, &e));
                    };
                    missing.push(last.to_owned());
                    existing = up;
                }
                Err(e) => return Err(self.io_message(path, &e)),
            }
        };
        if !self.is_inside(&base) {
            return Err(self.escape_message(path));
        }
        let parent = if missing.is_empty() {
            base
        } else if create_dirs {
            let dir = join_missing(&base, &missing);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| self.io_message(path, &e))?;
            let canonical = tokio::fs::canonicalize(&dir)
                .await
                .map_err(|e| self.io_message(path, &e))?;
            if !self.is_inside(&canonical) {
                return Err(self.escape_message(path));
            }
            canonical
        } else {
            return Err(format!(
                "the directory `{}` does not exist; pass \"create_dirs\": true to create it",
                self.display(&join_missing(&base, &missing))
            ));
        };
        if !parent.is_dir() {
            return Err(format!("`{}` is not a directory", self.display(&parent)));
        }

        let target = parent.join(name);
        match tokio::fs::symlink_metadata(&target).await {
            Ok(meta) if meta.file_type().is_symlink() => {
                let resolved = tokio::fs::canonicalize(&target).await.map_err(|_| {
                    format!("`{path}` is a symbolic link to a missing file; refusing to write through it")
                })?;
                if !self.is_inside(&resolved) {
                    return Err(self.escape_message(path));
                }
                if resolved.is_dir() {
                    return Err(format!("`{path}` is a directory; give a file path"));
                }
                Ok(resolved)
            }
            Ok(meta) if meta.is_dir() => Err(format!("`{path}` is a directory; give a file path")),
            _ => Ok(target),
        }
    }

    fn escape_message(&self, path: &str) -> String {
        format!(
            "`{path}` resolves (through a symbolic link) to a location outside the allowed roots ({}); \
             only files inside them can be accessed",
            self.describe_roots()
        )
    }

    fn io_message(&self, path: &str, error: &std::io::Error) -> String {
        match error.kind() {
            ErrorKind::NotFound => format!(
                "`{path}` does not exist; use fs_list or fs_search to find the right path (relative \
                 paths start at {})",
                self.base().display()
            ),
            ErrorKind::PermissionDenied => format!("permission denied for `{path}`"),
            _ => format!("cannot access `{path}`: {error}"),
        }
    }
}

fn join_missing(base: &Path, missing: &[std::ffi::OsString]) -> PathBuf {
    let mut dir = base.to_path_buf();
    for component in missing.iter().rev() {
        dir.push(component);
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_must_exist() {
        let err = Sandbox::new(FilesystemConfig::new(["/definitely/not/here"])).unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
        let err = Sandbox::new(FilesystemConfig::default()).unwrap_err();
        assert!(err.to_string().contains("filesystem.roots"), "{err}");
    }
}
