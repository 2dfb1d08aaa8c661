//! `fs_list {path?}`.

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde::Deserialize;
use toolmesh_core::{CallContext, CallError};

use super::{Sandbox, kind_of, read_only};
use crate::native::{NativeTool, answer, schema_for, tool_success};

/// Most entries one listing returns.
const MAX_ENTRIES: usize = 1000;

/// `fs_list {path?}`: the entries of a directory inside the roots, sorted by name.
#[derive(Debug, Clone)]
pub struct FsList {
    sandbox: Sandbox,
}

impl FsList {
    /// `fs_list` confined to `sandbox`.
    pub fn new(sandbox: Sandbox) -> Self {
        Self { sandbox }
    }
}

/// Arguments of `fs_list`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    /// Directory to list; default "." (the first root).
    #[serde(default)]
    path: Option<String>,
}

impl NativeTool for FsList {
    fn definition(&self) -> Tool {
        Tool::new(
            "fs_list",
            format!(
                "List a directory: name, type (file, directory, symlink) and size of each entry, at most \
                 {MAX_ENTRIES}. Allowed roots: {}.",
                self.sandbox.describe_roots()
            ),
            schema_for::<ListArgs>(),
        )
        .with_title("List directory")
        .with_annotations(read_only())
    }

    async fn call(
        &self,
        arguments: JsonObject,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(answer("fs_list", arguments, |args: ListArgs| async move {
            self.list(args.path.as_deref().unwrap_or(".")).await
        })
        .await)
    }
}

impl FsList {
    async fn list(&self, path: &str) -> Result<CallToolResult, String> {
        let resolved = self.sandbox.resolve_existing(path).await?;
        let shown = self.sandbox.display(&resolved.canonical);
        let io = |e: std::io::Error| format!("cannot list `{shown}`: {e}");
        if !resolved.canonical.is_dir() {
            return Err(format!(
                "`{shown}` is not a directory; use fs_read or fs_stat"
            ));
        }
        let mut dir = tokio::fs::read_dir(&resolved.canonical).await.map_err(io)?;
        let mut entries = Vec::new();
        let mut truncated = false;
        while let Some(entry) = dir.next_entry().await.map_err(io)? {
            if entries.len() == MAX_ENTRIES {
                truncated = true;
                break;
            }
            let Ok(meta) = tokio::fs::symlink_metadata(entry.path()).await else {
                continue;
            };
            let kind = kind_of(meta.file_type());
            entries.push((
                entry.file_name().to_string_lossy().into_owned(),
                kind,
                meta.is_file().then_some(meta.len()),
            ));
        }
        entries.sort();
        let mut text = format!("{shown}: {} entries\n", entries.len());
        for (name, kind, size) in &entries {
            match (kind, size) {
                (&"directory", _) => text.push_str(&format!("{name}/\n")),
                (_, Some(size)) => text.push_str(&format!("{name} ({size} bytes)\n")),
                (kind, None) => text.push_str(&format!("{name} ({kind})\n")),
            }
        }
        if truncated {
            text.push_str(&format!(
                "[truncated at {MAX_ENTRIES} entries; use fs_search to narrow down]\n"
            ));
        }
        let entries: Vec<_> = entries
            .into_iter()
            .map(|(name, kind, size)| serde_json::json!({ "name": name, "type": kind, "size": size }))
            .collect();
        Ok(tool_success(
            text,
            serde_json::json!({ "path": shown, "entries": entries, "truncated": truncated }),
        ))
    }
}
