//! `fs_stat {path}`.

use chrono::{DateTime, SecondsFormat, Utc};
use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde::Deserialize;
use toolmesh_core::{CallContext, CallError};

use super::{Sandbox, kind_of, read_only};
use crate::native::{NativeTool, answer, schema_for, tool_success};

/// `fs_stat {path}`: type, size, modification time and permissions of a path inside
/// the roots (of the link target, for a link that stays inside them).
#[derive(Debug, Clone)]
pub struct FsStat {
    sandbox: Sandbox,
}

impl FsStat {
    /// `fs_stat` confined to `sandbox`.
    pub fn new(sandbox: Sandbox) -> Self {
        Self { sandbox }
    }
}

/// Arguments of `fs_stat`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct StatArgs {
    /// File or directory: relative to the first root, or absolute inside a root.
    path: String,
}

impl NativeTool for FsStat {
    fn definition(&self) -> Tool {
        Tool::new(
            "fs_stat",
            format!(
                "Type, size, modification time and read-only flag of a file or directory. Allowed \
                 roots: {}.",
                self.sandbox.describe_roots()
            ),
            schema_for::<StatArgs>(),
        )
        .with_title("File information")
        .with_annotations(read_only())
    }

    async fn call(
        &self,
        arguments: JsonObject,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(answer("fs_stat", arguments, |args: StatArgs| async move {
            self.stat(&args.path).await
        })
        .await)
    }
}

impl FsStat {
    async fn stat(&self, path: &str) -> Result<CallToolResult, String> {
        let resolved = self.sandbox.resolve_existing(path).await?;
        let shown = self.sandbox.display(&resolved.canonical);
        let meta = tokio::fs::metadata(&resolved.canonical)
            .await
            .map_err(|e| format!("cannot stat `{shown}`: {e}"))?;
        let modified = meta
            .modified()
            .ok()
            .map(|time| DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Secs, true));
        let kind = kind_of(meta.file_type());
        let readonly = meta.permissions().readonly();
        let text = format!(
            "{shown}: {kind}, {} bytes, modified {}{}{}",
            meta.len(),
            modified.as_deref().unwrap_or("(unknown)"),
            if readonly { ", read-only" } else { "" },
            if resolved.via_symlink {
                " (reached through a symbolic link)"
            } else {
                ""
            }
        );
        Ok(tool_success(
            text,
            serde_json::json!({
                "path": shown,
                "type": kind,
                "size": meta.len(),
                "modified": modified,
                "readonly": readonly,
                "symlink": resolved.via_symlink,
            }),
        ))
    }
}
