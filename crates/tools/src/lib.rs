#![doc = include_str!("../README.md")]

mod arxiv;
mod calculator;
mod config;
mod error;
mod filesystem;
mod http;
mod http_fetch;
mod native;
mod serve;
mod time;
mod toolbox;
mod web_search;

pub use arxiv::{ArxivConfig, ArxivSearch};
pub use calculator::Calculator;
pub use config::ToolsConfig;
pub use error::ToolsError;
pub use filesystem::{FilesystemConfig, FsList, FsRead, FsSearch, FsStat, FsWrite, Sandbox};
pub use http_fetch::{HttpFetch, HttpFetchConfig};
pub use native::{DynNativeTool, NativeInvoker, NativeTool, tool_error, tool_success};
pub use serve::{
    SERVER_NAME, ToolboxServer, router, serve_http, serve_io, serve_stdio, streamable_http_service,
    streamable_http_service_with_config,
};
pub use time::{TimeConvert, TimeFormat, TimeNow, TimeParse};
pub use toolbox::Toolbox;
pub use web_search::{WebSearch, WebSearchConfig};

/// rmcp and core types that appear in this crate's public API.
pub use toolmesh_core::{CallContext, CallError, CallToolResult, JsonObject, Tool};
