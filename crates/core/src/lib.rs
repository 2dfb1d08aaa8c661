#![doc = include_str!("../README.md")]

mod call;
pub mod duration;
mod error;
mod id;
mod invoker;
mod name;
mod relay;
mod result;

pub use call::{CallContext, DEPTH_META_KEY, ToolCall};
pub use error::{CallError, ErrorKind, Phase};
pub use id::{InstanceId, ServerId};
pub use invoker::{BoxFuture, DynInvoker, Invoker};
pub use name::{NameError, NameTable, ToolName, ToolNaming};
pub use relay::Relay;
pub use result::result_text;

/// rmcp model types that appear in toolmesh's public API.
pub use rmcp::model::{CallToolResult, JsonObject, RequestId, Tool, ToolAnnotations};
