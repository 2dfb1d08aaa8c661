#![doc = include_str!("../README.md")]

mod error;
mod expose;
mod http;
mod server;
mod stdio;

pub use error::ServerError;
pub use expose::{AgentServer, ExposeAsMcpServer};
pub use http::auth;
pub use http::{
    ClientCertificate, GatewayState, HttpOptions, HttpServer, ReloadSnapshot, ReloadSource,
    TlsConfig, TlsError, router, serve_http,
};
pub use server::{Caller, CatalogServer, DENIED_CODE, ROUTING_META_KEY, ServerOptions};
pub use stdio::{serve_io, serve_stdio};
