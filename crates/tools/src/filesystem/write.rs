//! `fs_write {path, content, mode?, create_dirs?}`.

use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use toolmesh_core::{CallContext, CallError};

use super::Sandbox;
use crate::native::{NativeTool, answer, schema_for, tool_success};

/// `fs_write {path, content, mode?, create_dirs?}`: writes a text file inside the roots.
///
/// Refused unless the sandbox allows writes (`allow_write`). `mode` is `create` (the
/// default: refuse if the file exists), `overwrite` or `append`.
#[derive(Debug, Clone)]
pub struct FsWrite {
    sandbox: Sandbox,
}

impl FsWrite {
    /// `fs_write` confined to `sandbox`; it writes only if the sandbox allows it.
    pub fn new(sandbox: Sandbox) -> Self {
        Self { sandbox }
    }
}

/// How `fs_write` treats an existing file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Mode {
    /// Create a new file; refuse if it exists.
    #[default]
    Create,
    /// Replace the file's content (or create it).
    Overwrite,
    /// Add to the end of the file (or create it).
    Append,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Create => "create",
            Mode::Overwrite => "overwrite",
            Mode::Append => "append",
        }
    }
}

/// Arguments of `fs_write`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    /// File to write: relative to the first root, or absolute inside a root.
    path: String,
    /// Text to write (UTF-8).
    content: String,
    /// "create" (default; fails if the file exists), "overwrite" or "append".
    #[serde(default)]
    mode: Mode,
    /// Create missing parent directories; default false.
    #[serde(default)]
    create_dirs: bool,
}

impl NativeTool for FsWrite {
    fn definition(&self) -> Tool {
        Tool::new(
            "fs_write",
            format!(
                "Write a text file. mode \"create\" (default) refuses to replace an existing file; \
                 \"overwrite\" replaces it; \"append\" adds to it. Allowed roots: {}.",
                self.sandbox.describe_roots()
            ),
            schema_for::<WriteArgs>(),
        )
        .with_title("Write file")
        .with_annotations(
            ToolAnnotations::new()
                .read_only(false)
                .destructive(true)
                .idempotent(false)
                .open_world(false),
        )
    }

    async fn call(
        &self,
        arguments: JsonObject,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(answer("fs_write", arguments, |args| self.write(args)).await)
    }
}

impl FsWrite {
    async fn write(&self, args: WriteArgs) -> Result<CallToolResult, String> {
        if !self.sandbox.allow_write() {
            return Err(
                "writing is disabled for this sandbox: the operator must set `filesystem.allow_write: true`; \
                 the file was not written"
                    .to_owned(),
            );
        }
        let target = self
            .sandbox
            .resolve_for_write(&args.path, args.create_dirs)
            .await?;
        let shown = self.sandbox.display(&target);
        let existed = tokio::fs::try_exists(&target).await.unwrap_or(false);
        let mut options = tokio::fs::OpenOptions::new();
        match args.mode {
            Mode::Create => options.write(true).create_new(true),
            Mode::Overwrite => options.write(true).create(true).truncate(true),
            Mode::Append => options.append(true).create(true),
        };
        let mut file = options.open(&target).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "`{shown}` already exists; pass \"mode\": \"overwrite\" to replace it or \"append\" to add to it"
                )
            } else {
                format!("cannot open `{shown}` for writing: {e}")
            }
        })?;
        file.write_all(args.content.as_bytes())
            .await
            .map_err(|e| format!("cannot write `{shown}`: {e}"))?;
        file.flush()
            .await
            .map_err(|e| format!("cannot write `{shown}`: {e}"))?;
        let bytes = args.content.len();
        let verb = match (args.mode, existed) {
            (Mode::Append, true) => "appended",
            (Mode::Overwrite, true) => "overwrote",
            _ => "created",
        };
        Ok(tool_success(
            format!("{verb} `{shown}`: {bytes} bytes written"),
            serde_json::json!({
                "path": shown,
                "bytes_written": bytes,
                "mode": args.mode.as_str(),
                "created": !existed,
            }),
        ))
    }
}
