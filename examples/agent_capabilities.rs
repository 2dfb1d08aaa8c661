//! An agent that routes by capability: three replicas of one service declare what they
//! have (`gpu`, `eu`); an agent asking for `eu` has every tool call served where `eu` is.
//!
//! Runs against the testkit's scripted OpenAI-compatible server by default; set
//! `OPENAI_BASE_URL` (and `OPENAI_API_KEY`, `TOOLMESH_MODEL`) to use a real model.
//!
//! Run it with `cargo run --example agent_capabilities`.

#[path = "support/llm.rs"]
mod llm_support;

use serde_json::json;
use toolmesh::{Agent, ConfigLoader, Format, Mesh, ToolSelection};
use toolmesh_testkit::{FixtureOptions, FixtureServer, Reply, ScriptedCall};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let plain = FixtureServer::start(FixtureOptions::new().instance_id("render-us")).await?;
    let gpu = FixtureServer::start(FixtureOptions::new().instance_id("render-gpu-us")).await?;
    let eu = FixtureServer::start(FixtureOptions::new().instance_id("render-gpu-eu")).await?;
    let yaml = format!(
        "servers:\n  render:\n    strategy: capability_match\n    instances:\n\
         \x20     - {{ url: {}, id: render-us }}\n\
         \x20     - {{ url: {}, id: render-gpu-us, capabilities: [gpu] }}\n\
         \x20     - {{ url: {}, id: render-gpu-eu, capabilities: [gpu, eu] }}\n",
        plain.http_url(),
        gpu.http_url(),
        eu.http_url()
    );
    let mesh = Mesh::start(
        &ConfigLoader::new()
            .text("render.yaml", Format::Yaml, yaml)
            .load()?,
    )
    .await?;

    let call = Reply::ToolCalls(vec![ScriptedCall::new(
        "render__echo",
        json!({"message": "frame 1"}),
    )]);
    // A scripted model unless a real one is configured.
    let (llm, _scripted) =
        llm_support::scripted_or_env([call, Reply::Text("Rendered in the EU.".into())]).await?;
    let agent = Agent::builder(llm)
        .registry(mesh.registry().clone())
        .tools(ToolSelection::globs(["render__*"])?)
        .capabilities(["eu"])
        .build()?;
    let run = agent
        .run("Render frame 1; the data must stay in the EU.")
        .await?;
    println!("answer: {}", run.answer);
    for step in &run.steps {
        println!(
            "  {} served by {}",
            step.tool,
            step.instance.as_deref().unwrap_or("-")
        );
    }
    mesh.shutdown().await;
    Ok(())
}
