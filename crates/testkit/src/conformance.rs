//! The MCP conformance fixtures behind `toolmesh-conformance-server` and
//! `toolmesh-conformance-client`.
//!
//! The official suite (`@modelcontextprotocol/conformance`) tests a *server* by calling
//! fixtures of fixed names (`test_simple_text`, `test://static-text`,
//! `test_simple_prompt`, …) and a *client* by starting it against scenario servers of
//! its own. [`run_server`] serves those fixtures over streamable HTTP with rmcp;
//! [`client::run`] plays the client scenarios with toolmesh's own
//! `toolmesh_transport::Session`. `cargo xtask conformance` runs both under the suite.

mod cli;
pub mod client;
mod elicit;
mod handler;
mod media;
mod prompts;
mod resources;
mod serve;
mod streams;
mod tools;

pub use cli::ServerCli;
pub use handler::ConformanceHandler;
pub use serve::run as run_server;
