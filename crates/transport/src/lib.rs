#![doc = include_str!("../README.md")]

mod endpoint;
mod http;
mod session;
mod stdio;
mod websocket;

pub use endpoint::{Auth, CommandLine, Endpoint, EndpointError, ProtocolChoice, TransportKind};
pub use http::{ClientError, shared_client};
pub use session::{ServerEvent, Session};

/// rmcp model types that appear in the session's API.
pub use rmcp::model::{
    CompleteRequestParams, CompleteResult, GetPromptResult, Prompt, ReadResourceResult, Reference,
    Resource, ResourceTemplate,
};
