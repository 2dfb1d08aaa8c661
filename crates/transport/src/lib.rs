#![doc = include_str!("../README.md")]

mod endpoint;
mod http;
mod session;
mod stdio;
mod websocket;

pub use endpoint::{Auth, CommandLine, Endpoint, EndpointError, ProtocolChoice, TransportKind};
pub use http::{ClientError, direct::set_direct_calls, shared_client};
pub use session::{ServerEvent, Session, UPSTREAM_CALLS};

/// rmcp model types that appear in the session's API.
pub use rmcp::model::{
    CompleteRequestParams, CompleteResult, GetPromptResult, Prompt, ReadResourceResult, Reference,
    Resource, ResourceTemplate,
};
