//! Native tools from the configuration: a native-only server, an unknown native name, and a
//! server whose MCP instance and native tools share one namespace.

use std::time::Duration;

use toolmesh::{CallContext, ConfigLoader, Format, Mesh, layers::registry::NATIVE_INSTANCE};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

fn load(yaml: String) -> Result<toolmesh::Config, toolmesh::ConfigError> {
    ConfigLoader::new()
        .without_env_overrides()
        .text("native.yaml", Format::Yaml, yaml)
        .load()
}

#[tokio::test]
async fn native_tools_are_served_through_the_router() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new().instance_id("mcp")).await?;
    let yaml = format!(
        "servers:\n  math:\n    native: [calculator]\n  mixed:\n    url: {}\n    native: [\"*\"]\n    prefer: mcp\n",
        fixture.http_url()
    );
    let mesh = Mesh::start(&load(yaml)?).await?;
    let registry = mesh.registry();
    let ctx = CallContext::with_timeout(Duration::from_secs(10));

    let routed = registry
        .call(
            "math__calculator",
            serde_json::json!({"expression": "2 + 3 * 4"})
                .as_object()
                .cloned(),
            &ctx,
        )
        .await?;
    assert_eq!(
        routed.meta.instance.as_ref().map(|i| i.as_str()),
        Some(NATIVE_INSTANCE)
    );
    assert!(serde_json::to_string(&routed.result.content)?.contains("14"));

    let echo = registry
        .call(
            "mixed__echo",
            serde_json::json!({"message": "m"}).as_object().cloned(),
            &ctx,
        )
        .await?;
    assert_eq!(
        echo.result.structured_content.unwrap_or_default()["instance"],
        "mcp",
        "MCP goes first"
    );
    let time = registry
        .call(
            "mixed__time_now",
            serde_json::json!({"timezone": "Europe/Paris"})
                .as_object()
                .cloned(),
            &ctx,
        )
        .await?;
    assert_eq!(
        time.meta.instance.as_ref().map(|i| i.as_str()),
        Some(NATIVE_INSTANCE),
        "only native has it"
    );
    assert_ne!(time.result.is_error, Some(true));

    let err = load("servers:\n  math:\n    native: [calculater]\n".into())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("servers.math.native") && err.contains("calculator"),
        "{err}"
    );
    mesh.shutdown().await;
    Ok(())
}

/// Seed 000's mechanism: the native `arxiv_search` goes first; when arXiv is out of its
/// reach, the same call is answered by the MCP instance serving `arxiv_search`.
#[tokio::test]
async fn a_native_tool_whose_provider_is_down_falls_back_to_mcp() -> anyhow::Result<()> {
    let arxiv = toolmesh_testkit::replay::ArxivReplay::start().await?;
    let remote_tools = toolmesh_tools::Toolbox::new().with(toolmesh_tools::ArxivSearch::new(
        toolmesh_tools::ArxivConfig {
            base_url: arxiv.base_url(),
            ..Default::default()
        },
    )?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mcp_addr = listener.local_addr()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(toolmesh_tools::serve_http(
        remote_tools,
        listener,
        "/mcp",
        stop.clone(),
    ));
    let refused = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let unreachable = format!("http://{}/api/query", refused.local_addr()?);
    drop(refused);
    let yaml = format!(
        "native_tools:\n  arxiv: {{ base_url: \"{unreachable}\" }}\n\
         servers:\n  research:\n    url: http://{mcp_addr}/mcp\n    native: [arxiv_search]\n"
    );
    let mesh = Mesh::start(&load(yaml)?).await?;
    let ctx = CallContext::with_timeout(Duration::from_secs(10));

    let routed = mesh
        .registry()
        .call(
            "research__arxiv_search",
            serde_json::json!({"query": "attention"})
                .as_object()
                .cloned(),
            &ctx,
        )
        .await?;
    assert_ne!(routed.result.is_error, Some(true));
    assert!(
        serde_json::to_string(&routed.result.content)?.contains("Attention Is All You Need"),
        "answered from the recorded feed"
    );
    assert_ne!(
        routed.meta.instance.as_ref().map(|i| i.as_str()),
        Some(NATIVE_INSTANCE),
        "the MCP instance answered"
    );
    assert_eq!(routed.meta.failovers, 1, "native was tried first");
    assert_eq!(arxiv.queries(), 1, "one query reached arXiv, through MCP");

    mesh.shutdown().await;
    stop.cancel();
    server.await??;
    Ok(())
}
