use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::{RunningService, ServiceError},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use toolmesh_tools::{
    Calculator, SERVER_NAME, TimeNow, Toolbox, ToolsConfig, router, serve_http, serve_io,
};

use crate::support::{bounded, ok, spawn_http, text, tool_err};

type Client = RunningService<RoleClient, ()>;

async fn http_client(url: &str) -> anyhow::Result<Client> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url),
    );
    Ok(bounded("http initialize", ().serve(transport)).await??)
}

async fn call(
    client: &Client,
    tool: &str,
    args: Value,
) -> anyhow::Result<Result<CallToolResult, ServiceError>> {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    if let Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    bounded(tool, client.call_tool(params)).await
}

/// Lists tools, runs the calculator (a success and a tool error) and an unknown tool.
async fn exercise(client: &Client) -> anyhow::Result<()> {
    let info = client
        .peer_info()
        .and_then(|info| info.server_info.as_ref().map(|s| s.name.clone()));
    assert_eq!(info.as_deref(), Some(SERVER_NAME));
    let tools = bounded("tools/list", client.list_all_tools()).await??;
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    assert!(names.contains(&"calculator".to_owned()), "{names:?}");
    let calculator = tools.iter().find(|t| t.name == "calculator");
    assert_eq!(
        calculator
            .and_then(|t| t.annotations.as_ref())
            .and_then(|a| a.read_only_hint),
        Some(true)
    );

    let result = call(client, "calculator", json!({ "expression": "6 * 7" })).await??;
    assert_eq!(ok(&result)["result"], json!(42.0));
    assert_eq!(text(&result), "42");
    let result = call(client, "calculator", json!({ "expression": "1/0" })).await??;
    tool_err(&result, &["divides by zero"]);
    match call(client, "no_such_tool", json!({})).await? {
        Err(err) => assert!(err.to_string().contains("no_such_tool"), "{err}"),
        Ok(result) => anyhow::bail!("an unknown tool must be a JSON-RPC error: {result:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn router_serves_streamable_http() -> anyhow::Result<()> {
    let toolbox = Toolbox::new().with(Calculator).with(TimeNow);
    let addr = spawn_http(router(toolbox, "/mcp")).await?;
    let client = http_client(&format!("http://{addr}/mcp")).await?;
    exercise(&client).await?;
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn serve_http_stops_on_shutdown() -> anyhow::Result<()> {
    let toolbox = Toolbox::default_tools(&ToolsConfig::default())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_http(toolbox, listener, "mcp", shutdown.clone()));
    let client = http_client(&format!("http://{addr}/mcp")).await?;
    exercise(&client).await?;
    let tools = bounded("tools/list", client.list_all_tools()).await??;
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "arxiv_search",
            "calculator",
            "http_fetch",
            "time_convert",
            "time_format",
            "time_now",
            "time_parse"
        ]
    );
    shutdown.cancel();
    bounded("server shutdown", server).await???;
    drop(client);
    Ok(())
}

#[tokio::test]
async fn serve_io_speaks_mcp_over_a_byte_stream() -> anyhow::Result<()> {
    let (client_side, server_side) = tokio::io::duplex(64 * 1024);
    let (server_read, server_write) = tokio::io::split(server_side);
    let server = tokio::spawn(serve_io(
        Toolbox::new().with(Calculator),
        server_read,
        server_write,
    ));
    let (client_read, client_write) = tokio::io::split(client_side);
    let client = bounded("io initialize", ().serve((client_read, client_write))).await??;
    exercise(&client).await?;
    client.cancel().await?;
    bounded("server end", server).await???;
    Ok(())
}
