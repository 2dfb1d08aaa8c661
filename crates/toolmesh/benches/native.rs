//! `cargo xtask bench native`: the native `calculator` called through the router against
//! the same tool served over an in-process MCP session (a duplex pipe, no network).
//! Writes `target/bench/native.json`.

use std::{sync::Arc, time::Duration};

use rmcp::{
    ServiceExt,
    model::CallToolRequestParams,
    service::{Peer, RoleClient},
};
use toolmesh::{
    CallContext, ServerId,
    layers::registry::{NativeBackend, Registry, RegistryOptions, ServiceSpec},
};
use toolmesh_core::{DynInvoker, JsonObject};
use toolmesh_testkit::bench::{self, Caller};
use toolmesh_tools::{Toolbox, ToolsConfig, serve_io};

fn expression() -> JsonObject {
    serde_json::json!({ "expression": "(2 + 3) * 4 - sqrt(16)" })
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// The baseline: the toolbox behind an MCP session in the same process.
#[derive(Clone)]
struct OverMcp(Peer<RoleClient>);

impl Caller for OverMcp {
    async fn call(&self) -> bool {
        self.0
            .call_tool(CallToolRequestParams::new("calculator").with_arguments(expression()))
            .await
            .is_ok_and(|r| r.is_error != Some(true))
    }
}

/// The subject: the router calling the native tool directly.
#[derive(Clone)]
struct Native(Registry);

impl Caller for Native {
    async fn call(&self) -> bool {
        let ctx = CallContext::with_timeout(Duration::from_secs(30));
        self.0
            .call("math__calculator", Some(expression()), &ctx)
            .await
            .is_ok_and(|r| r.result.is_error != Some(true))
    }
}

async fn cases() -> anyhow::Result<Vec<serde_json::Value>> {
    let toolbox = Toolbox::default_tools(&ToolsConfig::default())?;
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_io);
    tokio::spawn(serve_io(toolbox.clone(), server_read, server_write));
    let client = ().serve(client_io).await?;
    let over_mcp = OverMcp(client.peer().clone());

    let tools = toolbox
        .definitions()
        .into_iter()
        .filter(|t| t.name == "calculator")
        .collect();
    let invoker: Arc<dyn DynInvoker> = Arc::new(toolbox);
    let spec = ServiceSpec::native(
        ServerId::new("math"),
        NativeBackend {
            tools,
            invoker,
            prefer: true,
        },
    );
    let native = Native(Registry::from_specs(vec![spec], RegistryOptions::default()).await?);

    let mut rows = Vec::new();
    for inflight in [1, 32] {
        rows.push(
            bench::compare(
                &format!("calculator, {inflight} in flight (baseline: in-process MCP session)"),
                &over_mcp,
                &native,
                inflight,
            )
            .await,
        );
    }
    Ok(rows)
}

fn main() -> anyhow::Result<()> {
    bench::run("native", cases)
}
