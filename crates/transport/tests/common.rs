//! Starts the fixture over each transport and wraps it in an `Endpoint`.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::time::Duration;

use toolmesh_core::CallContext;
use toolmesh_testkit::{FixtureOptions, FixtureServer, stdio_command};
use toolmesh_transport::{Endpoint, Session, TransportKind};

pub const ALL: [TransportKind; 3] = [
    TransportKind::Stdio,
    TransportKind::StreamableHttp,
    TransportKind::Websocket,
];

/// A fixture reachable over `kind`; the HTTP/WS server (if any) lives as long as this.
pub struct Running {
    pub endpoint: Endpoint,
    pub server: Option<FixtureServer>,
}

pub async fn fixture(kind: TransportKind, opts: FixtureOptions) -> anyhow::Result<Running> {
    Ok(match kind {
        TransportKind::Stdio => {
            let (program, args) = stdio_command(&opts);
            Running {
                endpoint: Endpoint::stdio(program.to_string_lossy(), args).named("fixture"),
                server: None,
            }
        }
        TransportKind::StreamableHttp => {
            let server = FixtureServer::start(opts).await?;
            Running {
                endpoint: Endpoint::url(server.http_url()).named("fixture"),
                server: Some(server),
            }
        }
        TransportKind::Websocket => {
            let server = FixtureServer::start(opts).await?;
            Running {
                endpoint: Endpoint::url(server.ws_url()).named("fixture"),
                server: Some(server),
            }
        }
    })
}

pub async fn connect(
    kind: TransportKind,
    opts: FixtureOptions,
) -> anyhow::Result<(Session, Running)> {
    let running = fixture(kind, opts).await?;
    let session = Session::connect(&running.endpoint).await?;
    Ok((session, running))
}

pub fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(10))
}

pub fn args(v: serde_json::Value) -> Option<toolmesh_core::JsonObject> {
    v.as_object().cloned()
}

pub fn text(result: &toolmesh_core::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("")
}
