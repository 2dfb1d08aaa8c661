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
