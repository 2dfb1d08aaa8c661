//! The fixture MCP server behind the `toolmesh-fixture` binary.
//!
//! Everything the binary does lives here so it can also be embedded: build a
//! [`FixtureState`], hand [`FixtureHandler::new`] to any rmcp transport, or
//! call [`run`] with a parsed [`Cli`].

mod auth;
mod cli;
mod serve;
mod state;
mod tools;
mod ws;

pub use cli::Cli;
pub use serve::{READY_PREFIX, run};
pub use state::FixtureState;
pub use tools::FixtureHandler;
