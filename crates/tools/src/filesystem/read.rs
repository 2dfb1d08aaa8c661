//! `fs_read {path, offset?, max_bytes?}`.

use rmcp::model::{CallToolResult, JsonObject, Tool};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use toolmesh_core::{CallContext, CallError};

use super::{Sandbox, read_only};
use crate::native::{NativeTool, answer, schema_for, tool_success};

/// `fs_read {path, offset?, max_bytes?}`: reads a UTF-8 text file inside the roots.
///
/// At most `max_read_bytes` (configuration) are returned per call; a longer file is
/// truncated, and the result says so and gives the `offset` to continue from. Binary
/// (non-UTF-8) files are a tool error.
#[derive(Debug, Clone)]
pub struct FsRead {
    sandbox: Sandbox,
}

impl FsRead {
    /// `fs_read` confined to `sandbox`.
    pub fn new(sandbox: Sandbox) -> Self {
        Self { sandbox }
    }
}

/// Arguments of `fs_read`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    /// File to read: relative to the first root, or absolute inside a root.
    path: String,
    /// Byte offset to start at (to continue a truncated read); default 0.
    #[serde(default)]
    offset: u64,
    /// Most bytes to return; default and upper bound is the configured limit.
    #[serde(default)]
    max_bytes: Option<u64>,
}

impl NativeTool for FsRead {
    fn definition(&self) -> Tool {
        Tool::new(
            "fs_read",
            format!(
                "Read a UTF-8 text file. At most {} bytes per call: a longer file is truncated and \
                 the answer gives the offset to continue from. Allowed roots: {}.",
                self.sandbox.max_read_bytes(),
                self.sandbox.describe_roots()
            ),
            schema_for::<ReadArgs>(),
        )
        .with_title("Read file")
        .with_annotations(read_only())
    }

    async fn call(
        &self,
        arguments: JsonObject,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(answer("fs_read", arguments, |args| self.read(args)).await)
    }
}

impl FsRead {
    async fn read(&self, args: ReadArgs) -> Result<CallToolResult, String> {
        let resolved = self.sandbox.resolve_existing(&args.path).await?;
        let shown = self.sandbox.display(&resolved.canonical);
        let io = |e: std::io::Error| format!("cannot read `{shown}`: {e}");
        let mut file = tokio::fs::File::open(&resolved.canonical)
            .await
            .map_err(io)?;
        let meta = file.metadata().await.map_err(io)?;
        if meta.is_dir() {
            return Err(format!(
                "`{shown}` is a directory; use fs_list to see its entries"
            ));
        }
        let size = meta.len();
        if args.offset > size {
            return Err(format!(
                "offset {} is past the end of `{shown}` ({size} bytes)",
                args.offset
            ));
        }
        let limit = args
            .max_bytes
            .unwrap_or(u64::MAX)
            .min(self.sandbox.max_read_bytes());
        file.seek(std::io::SeekFrom::Start(args.offset))
            .await
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.take(limit).read_to_end(&mut bytes).await.map_err(io)?;
        let mut end = args.offset + bytes.len() as u64;
        let truncated = end < size;

        let text = match std::str::from_utf8(&bytes) {
            Ok(text) => text.to_owned(),
            // A multi-byte character cut by the limit: stop before it.
            Err(e) if truncated && e.error_len().is_none() => {
                let valid = e.valid_up_to();
                end = args.offset + valid as u64;
                String::from_utf8_lossy(&bytes[..valid]).into_owned()
            }
            Err(_) => {
                return Err(format!(
                    "`{shown}` is not UTF-8 text (a binary file of {size} bytes); fs_read returns text only"
                ));
            }
        };
        if text.contains('\0') {
            return Err(format!(
                "`{shown}` looks binary (it contains NUL bytes, {size} bytes in all); fs_read returns text only"
            ));
        }
        let mut shown_text = text.clone();
        if truncated {
            shown_text.push_str(&format!(
                "\n\n[truncated: bytes {}..{end} of {size} shown; call fs_read with offset {end} to read on]",
                args.offset
            ));
        }
        Ok(tool_success(
            shown_text,
            serde_json::json!({
                "path": shown,
                "size": size,
                "offset": args.offset,
                "bytes_read": end - args.offset,
                "truncated": truncated,
                "next_offset": if truncated { Some(end) } else { None },
                "content": text,
            }),
        ))
    }
}
