//! Multi-server aggregation: two MCP servers behind one catalog, each tool under its
//! namespace, called by one name; then the health report.
//!
//! Run it with `cargo run --example multi_server`.

use std::time::Duration;

use toolmesh::{CallContext, Config, ConfigLoader, Format, Mesh};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let weather = FixtureServer::start(FixtureOptions::new().instance_id("weather-1")).await?;
    let search = FixtureServer::start(FixtureOptions::new().instance_id("search-1")).await?;
    let yaml = format!(
        "servers:\n  weather:\n    url: {}\n    capabilities: [forecast]\n  search:\n    url: {}\n    capabilities: [web_search]\n",
        weather.http_url(),
        search.http_url()
    );
    let config: Config = ConfigLoader::new()
        .text("example.yaml", Format::Yaml, yaml)
        .load()?;
    let mesh = Mesh::start(&config).await?;
    let registry = mesh.registry();

    let catalog = registry.catalog();
    println!(
        "{} tools from {} servers:",
        catalog.len(),
        registry.services().len()
    );
    for entry in catalog.entries().iter().take(6) {
        println!(
            "  {:<22} → {} (idempotent: {})",
            entry.rendered, entry.service, entry.idempotent
        );
    }

    let ctx = CallContext::with_timeout(Duration::from_secs(5));
    for tool in ["weather__echo", "search__add"] {
        let args = serde_json::json!({ "message": "hello", "a": 2, "b": 3 });
        let routed = registry.call(tool, args.as_object().cloned(), &ctx).await?;
        println!(
            "{tool}: {} via {:?} in {:?}",
            serde_json::to_string(&routed.result.structured_content)?,
            routed.meta.instance.as_ref().map(|i| i.as_str()),
            routed.meta.latency
        );
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&registry.health_summary())?
    );
    mesh.shutdown().await;
    Ok(())
}
