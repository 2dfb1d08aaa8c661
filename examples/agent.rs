//! An agent over a replicated MCP server and the native tools: the model's tool calls go
//! through the router, so a replica killed mid-run costs nothing but a failover.
//!
//! Runs against the testkit's scripted OpenAI-compatible server by default; set
//! `OPENAI_BASE_URL` (and `OPENAI_API_KEY`, `TOOLMESH_MODEL`) to use a real model.
//!
//! Run it with `cargo run --example agent`.

#[path = "support/llm.rs"]
mod llm_support;

use serde_json::json;
use toolmesh::{Agent, ConfigLoader, Format, Mesh, ToolSelection};
use toolmesh_testkit::{FixtureOptions, FixtureServer, Reply, ScriptedCall};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut first = FixtureServer::start(FixtureOptions::new().instance_id("echo-1")).await?;
    let second = FixtureServer::start(FixtureOptions::new().instance_id("echo-2")).await?;
    let yaml = format!(
        "servers:\n  echo:\n    instances:\n      - {{ url: {}, id: echo-1 }}\n      - {{ url: {}, id: echo-2, priority: 2 }}\n",
        first.http_url(),
        second.http_url()
    );
    let mesh = Mesh::start(
        &ConfigLoader::new()
            .text("agent.yaml", Format::Yaml, yaml)
            .load()?,
    )
    .await?;

    // A scripted model unless a real one is configured.
    let (llm, _scripted) = llm_support::scripted_or_env([
        Reply::ToolCalls(vec![ScriptedCall::new("echo__sleep", json!({"ms": 500}))]),
        Reply::Text("The tool answered after a failover.".into()),
    ])
    .await?;
    let agent = Agent::builder(llm)
        .registry(mesh.registry().clone())
        .instructions("Use the echo tools; sleep 500 ms when asked to wait.")
        .tools(ToolSelection::globs(["echo__*"])?)
        .max_steps(4)
        .build()?;

    let run = tokio::spawn({
        let agent = agent.clone();
        async move { agent.run("Wait half a second, then say so.").await }
    });
    // Kill the preferred replica while the model's call runs on it.
    while !mesh
        .registry()
        .instance_reports()
        .iter()
        .any(|r| r.instance.as_str() == "echo-1" && r.load.outstanding > 0)
    {
        if run.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    println!("-- killing echo-1 while the call runs --");
    first.kill().await;
    let run = run.await??;
    println!("answer: {}", run.answer);
    for step in &run.steps {
        println!(
            "step {}: {} on {} ({} attempts, {} failovers, {:.1} ms){}",
            step.step,
            step.tool,
            step.instance.as_deref().unwrap_or("-"),
            step.attempts,
            step.failovers,
            step.latency.as_secs_f64() * 1000.0,
            if step.is_error { " error" } else { "" }
        );
    }
    println!("tokens: {}", run.usage.total_tokens);
    mesh.shutdown().await;
    Ok(())
}
