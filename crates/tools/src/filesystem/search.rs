//! `fs_search {pattern, path?, max_results?}`.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde::Deserialize;
use toolmesh_core::{CallContext, CallError};

use super::{Sandbox, kind_of, read_only};
use crate::native::{NativeTool, answer, schema_for, tool_success};

/// Default of `max_results`.
const DEFAULT_RESULTS: usize = 50;
/// Upper bound of `max_results`.
const MAX_RESULTS: usize = 500;
/// Most entries one search looks at, so a huge tree cannot stall the tool.
const MAX_VISITED: usize = 100_000;

/// `fs_search {pattern, path?, max_results?}`: finds files and directories by name under
/// a directory inside the roots.
///
/// A pattern with `*`, `?` or `[` is a case-insensitive glob matched against the file
/// name (or, if it contains `/`, against the path relative to the searched directory);
/// anything else is a case-insensitive substring of the file name. Symbolic links are
/// listed but not followed.
#[derive(Debug, Clone)]
pub struct FsSearch {
    sandbox: Sandbox,
}

impl FsSearch {
    /// `fs_search` confined to `sandbox`.
    pub fn new(sandbox: Sandbox) -> Self {
        Self { sandbox }
    }
}

/// Arguments of `fs_search`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// Glob ("*.rs", "src/**/mod*.rs") or plain substring ("readme") of the names to find.
    pattern: String,
    /// Directory to search under; default "." (the first root).
    #[serde(default)]
    path: Option<String>,
    /// Most matches to return (1-500); default 50.
    #[serde(default)]
    max_results: Option<usize>,
}

enum Matcher {
    Glob {
        pattern: glob::Pattern,
        whole_path: bool,
    },
    Substring(String),
}

impl Matcher {
    fn new(pattern: &str) -> Result<Self, String> {
        if pattern.contains(['*', '?', '[']) {
            let glob = glob::Pattern::new(pattern).map_err(|e| {
                format!(
                    "invalid glob `{pattern}`: {e}; use * for any characters, ? for one, [abc] for a set"
                )
            })?;
            Ok(Matcher::Glob {
                pattern: glob,
                whole_path: pattern.contains('/'),
            })
        } else {
            Ok(Matcher::Substring(pattern.to_lowercase()))
        }
    }

    fn matches(&self, relative: &Path, name: &str) -> bool {
        match self {
            Matcher::Glob {
                pattern,
                whole_path,
            } => {
                let options = glob::MatchOptions {
                    case_sensitive: false,
                    require_literal_separator: false,
                    require_literal_leading_dot: false,
                };
                if *whole_path {
                    pattern.matches_path_with(relative, options)
                } else {
                    pattern.matches_with(name, options)
                }
            }
            Matcher::Substring(needle) => name.to_lowercase().contains(needle),
        }
    }
}

/// Sets the flag when dropped: stops the blocking walk when the call is abandoned.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

struct Found {
    path: PathBuf,
    kind: &'static str,
    size: Option<u64>,
}

struct Walk {
    found: Vec<Found>,
    truncated: bool,
    visited_limit: bool,
    unreadable: usize,
}

fn walk(dir: &Path, matcher: &Matcher, max: usize, stop: &AtomicBool) -> Walk {
    let mut walk = Walk {
        found: Vec::new(),
        truncated: false,
        visited_limit: false,
        unreadable: 0,
    };
    for (visited, entry) in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .enumerate()
    {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if visited >= MAX_VISITED {
            walk.visited_limit = true;
            break;
        }
        let Ok(entry) = entry else {
            walk.unreadable += 1;
            continue;
        };
        let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let name = entry.file_name().to_string_lossy();
        if matcher.matches(relative, &name) {
            if walk.found.len() == max {
                walk.truncated = true;
                break;
            }
            let size = entry
                .metadata()
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len());
            walk.found.push(Found {
                path: entry.path().to_path_buf(),
                kind: kind_of(entry.file_type()),
                size,
            });
        }
    }
    walk
}

impl NativeTool for FsSearch {
    fn definition(&self) -> Tool {
        Tool::new(
            "fs_search",
            format!(
                "Find files and directories by name under a directory (recursively). A pattern with * ? [ \
                 is a case-insensitive glob on the file name (on the relative path if it contains /); \
                 otherwise a case-insensitive substring of the name. Allowed roots: {}.",
                self.sandbox.describe_roots()
            ),
            schema_for::<SearchArgs>(),
        )
        .with_title("Search files")
        .with_annotations(read_only())
    }

    async fn call(
        &self,
        arguments: JsonObject,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(answer("fs_search", arguments, |args| self.search(args)).await)
    }
}

impl FsSearch {
    async fn search(&self, args: SearchArgs) -> Result<CallToolResult, String> {
        let pattern = args.pattern.trim().to_owned();
        if pattern.is_empty() {
            return Err("the pattern is empty; pass a name fragment like \"readme\" or a glob like \"*.md\"".to_owned());
        }
        let max = args.max_results.unwrap_or(DEFAULT_RESULTS);
        if !(1..=MAX_RESULTS).contains(&max) {
            return Err(format!(
                "max_results must be between 1 and {MAX_RESULTS}, got {max}"
            ));
        }
        let matcher = Matcher::new(&pattern)?;
        let path = args.path.as_deref().unwrap_or(".");
        let resolved = self.sandbox.resolve_existing(path).await?;
        let shown_dir = self.sandbox.display(&resolved.canonical);
        if !resolved.canonical.is_dir() {
            return Err(format!("`{shown_dir}` is not a directory"));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let _guard = StopOnDrop(stop.clone());
        let dir = resolved.canonical.clone();
        let walk = tokio::task::spawn_blocking(move || walk(&dir, &matcher, max, &stop))
            .await
            .map_err(|e| format!("the search failed: {e}"))?;

        let mut text = format!(
            "{} match(es) for `{pattern}` under {shown_dir}\n",
            walk.found.len()
        );
        let mut matches = Vec::with_capacity(walk.found.len());
        for found in &walk.found {
            let shown = self.sandbox.display(&found.path);
            match found.size {
                Some(size) => text.push_str(&format!("{shown} ({size} bytes)\n")),
                None => text.push_str(&format!("{shown} ({})\n", found.kind)),
            }
            matches
                .push(serde_json::json!({ "path": shown, "type": found.kind, "size": found.size }));
        }
        if walk.truncated {
            text.push_str(&format!(
                "[stopped at {max} matches; narrow the pattern or raise max_results (at most {MAX_RESULTS})]\n"
            ));
        }
        if walk.visited_limit {
            text.push_str(&format!(
                "[stopped after looking at {MAX_VISITED} entries; search a smaller directory]\n"
            ));
        }
        if walk.unreadable > 0 {
            text.push_str(&format!(
                "[{} entries could not be read]\n",
                walk.unreadable
            ));
        }
        Ok(tool_success(
            text,
            serde_json::json!({
                "path": shown_dir,
                "pattern": pattern,
                "matches": matches,
                "truncated": walk.truncated || walk.visited_limit,
            }),
        ))
    }
}
