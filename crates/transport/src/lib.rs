#![doc = include_str!("../README.md")]

mod endpoint;
mod http;
mod session;
mod stdio;
mod websocket;

pub use endpoint::{Auth, CommandLine, Endpoint, EndpointError, ProtocolChoice, TransportKind};
pub use http::shared_client;
pub use session::{ServerEvent, Session};
