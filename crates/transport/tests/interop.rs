//! Real third-party servers: server-everything (npm) and a FastMCP server (PyPI), over
//! stdio and streamable HTTP. Installed by `cargo xtask peers`.

mod common;

use std::path::PathBuf;

use common::*;
use toolmesh_core::ErrorKind;
use toolmesh_testkit::peers::{self, ExternalServer};
use toolmesh_testkit::process::gone;
use toolmesh_transport::{Endpoint, ServerEvent, Session};

fn stdio((program, args): (PathBuf, Vec<String>), name: &str) -> Endpoint {
    Endpoint::stdio(program.to_string_lossy(), args).named(name)
}

async fn check_everything(session: &Session) -> anyhow::Result<()> {
    let tools = session.list_tools(&ctx()).await?;
    assert!(
        tools.iter().any(|t| t.name == "echo"),
        "{:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );
    let echo = session
        .call_tool(
            "echo",
            args(serde_json::json!({"message": "interop"})),
            &ctx(),
        )
        .await?;
    assert!(text(&echo).contains("interop"), "{}", text(&echo));
    session.ping(&ctx()).await?;
    assert!(!session.list_resources(&ctx()).await?.is_empty());
    assert!(!session.list_prompts(&ctx()).await?.is_empty());
    let missing = session.call_tool("no-such-tool", None, &ctx()).await;
    match missing {
        Ok(result) => assert_eq!(result.is_error, Some(true)),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Rpc, "{e}"),
    }
    Ok(())
}

#[tokio::test]
async fn server_everything_over_stdio() -> anyhow::Result<()> {
    let session =
        Session::connect(&stdio(peers::server_everything(&["stdio"])?, "everything")).await?;
    check_everything(&session).await?;
    let pid = session.pid().unwrap_or_default();
    drop(session);
    assert!(
        gone(pid).await,
        "server-everything must not outlive its session"
    );
    Ok(())
}

#[tokio::test]
async fn server_everything_over_streamable_http() -> anyhow::Result<()> {
    let port = peers::free_port()?;
    let (program, args) = peers::server_everything(&["streamableHttp"])?;
    let server = ExternalServer::start(program, args, &[("PORT", port.to_string())], port).await?;
    let session =
        Session::connect(&Endpoint::url(server.url("/mcp")).named("everything-http")).await?;
    check_everything(&session).await
}

async fn check_fastmcp(session: &Session) -> anyhow::Result<()> {
    let tools = session.list_tools(&ctx()).await?;
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["add", "count", "echo", "fail"]);
    let sum = session
        .call_tool("add", args(serde_json::json!({"a": 2, "b": 40})), &ctx())
        .await?;
    assert_eq!(text(&sum), "42");
    let failed = session
        .call_tool("fail", args(serde_json::json!({"reason": "nope"})), &ctx())
        .await?;
    assert_eq!(failed.is_error, Some(true));
    let mut events = session.events();
    session
        .call_tool("count", args(serde_json::json!({"n": 2})), &ctx())
        .await?;
    let mut seen = 0;
    while seen < 2 {
        if let ServerEvent::Progress(_) =
            tokio::time::timeout(std::time::Duration::from_secs(5), events.recv()).await??
        {
            seen += 1;
        }
    }
    let read = session.read_resource("peer://greeting", &ctx()).await?;
    assert!(serde_json::to_string(&read.contents)?.contains("hello from python"));
    Ok(())
}

#[tokio::test]
async fn fastmcp_over_stdio() -> anyhow::Result<()> {
    let session = Session::connect(&stdio(peers::fastmcp(&[])?, "fastmcp")).await?;
    check_fastmcp(&session).await
}

#[tokio::test]
async fn fastmcp_over_streamable_http() -> anyhow::Result<()> {
    let port = peers::free_port()?;
    let (program, args) = peers::fastmcp(&["--http", "--port", &port.to_string()])?;
    let server = ExternalServer::start(program, args, &[], port).await?;
    let session =
        Session::connect(&Endpoint::url(server.url("/mcp")).named("fastmcp-http")).await?;
    check_fastmcp(&session).await
}
