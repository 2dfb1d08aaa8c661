//! Auto-discovery routing: ask for capabilities, not servers. Services declare what they
//! can do; tool names and descriptions are probed too. The best match serves the call.
//!
//! Run it with `cargo run --example discovery`.

use std::time::Duration;

use toolmesh::{CallContext, ConfigLoader, Format, Mesh};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calc = FixtureServer::start(FixtureOptions::new().instance_id("calc")).await?;
    let web = FixtureServer::start(FixtureOptions::new().instance_id("web")).await?;
    let yaml = format!(
        "servers:\n  calculator:\n    url: {}\n    capabilities: [math, arithmetic]\n  web:\n    url: {}\n    capabilities: [web_search, fetch]\n",
        calc.http_url(),
        web.http_url()
    );
    let mesh = Mesh::start(
        &ConfigLoader::new()
            .text("discovery.yaml", Format::Yaml, yaml)
            .load()?,
    )
    .await?;
    let registry = mesh.registry();

    for wanted in [&["arithmetic"][..], &["web_search"], &["progress"]] {
        let found = registry.discover(wanted);
        println!(
            "{wanted:?} → {:?}",
            found
                .iter()
                .map(|m| (m.service.as_str(), m.score))
                .collect::<Vec<_>>()
        );
    }
    let best = registry.discover(&["arithmetic"]);
    let service = best
        .first()
        .map(|m| m.service.clone())
        .ok_or_else(|| anyhow::anyhow!("nothing does arithmetic"))?;
    let tool = format!("{service}__add");
    let ctx = CallContext::with_timeout(Duration::from_secs(5));
    let routed = registry
        .call(
            &tool,
            serde_json::json!({"a": 20, "b": 22}).as_object().cloned(),
            &ctx,
        )
        .await?;
    println!(
        "{tool} → {}",
        serde_json::to_string(&routed.result.structured_content)?
    );
    println!(
        "tools to give an agent that needs web_search: {:?}",
        registry.enable_tools(&["web_search"])
    );
    mesh.shutdown().await;
    Ok(())
}
