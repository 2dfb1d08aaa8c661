//! Seed 000: a research agent whose `arxiv_search` is native first and falls back to an
//! MCP server offering the same tool — and the three ways an agent reaches a tool: the
//! catalog it is given, the model's choice, and an explicit call.
//!
//! arXiv is played by two loopback replays of a recorded answer (the example does not
//! reach the internet): the native tool queries one, the MCP research server the other.
//! When the native tool's arXiv goes down, the same call is answered by the MCP server;
//! the step's routing shows the failover.
//!
//! Runs against the testkit's scripted OpenAI-compatible server by default; set
//! `OPENAI_BASE_URL` (and `OPENAI_API_KEY`, `TOOLMESH_MODEL`) to use a real model.
//!
//! Run it with `cargo run --example agent_native_first`.

#[path = "support/llm.rs"]
mod llm_support;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use toolmesh::{Agent, ConfigLoader, Format, Mesh, RunResult, ToolSelection};
use toolmesh_testkit::{Reply, ScriptedCall, replay::ArxivReplay};
use toolmesh_tools::{ArxivConfig, ArxivSearch, Toolbox};

const TASK: &str = "Find the paper that introduced the Transformer and give its arXiv id.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The arXiv the native tool reaches, and the one behind the MCP research server.
    let native_arxiv = ArxivReplay::start().await?;
    let remote_arxiv = ArxivReplay::start().await?;
    let research_server = Toolbox::new().with(ArxivSearch::new(ArxivConfig {
        base_url: remote_arxiv.base_url(),
        ..ArxivConfig::default()
    })?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let research_url = format!("http://{}/mcp", listener.local_addr()?);
    let stop = CancellationToken::new();
    let server = tokio::spawn(toolmesh_tools::serve_http(
        research_server,
        listener,
        "/mcp",
        stop.clone(),
    ));

    // `native: [arxiv_search]` puts the in-process tool first (`prefer: native`, the default).
    let yaml = format!(
        "native_tools:\n  arxiv: {{ base_url: \"{}\" }}\n\
         servers:\n  research:\n    url: {research_url}\n    native: [arxiv_search]\n",
        native_arxiv.base_url()
    );
    let mesh = Mesh::start(
        &ConfigLoader::new()
            .text("research.yaml", Format::Yaml, yaml)
            .load()?,
    )
    .await?;

    let search = || {
        Reply::ToolCalls(vec![ScriptedCall::new(
            "research__arxiv_search",
            json!({"query": "attention is all you need", "max_results": 2}),
        )])
    };
    let answer = || Reply::Text("\"Attention Is All You Need\", arXiv:1706.03762.".into());
    let (llm, _scripted) =
        llm_support::scripted_or_env([search(), answer(), search(), answer()]).await?;
    // 1. Discovery: the agent is given the research tools from the catalog.
    let agent = Agent::builder(llm)
        .registry(mesh.registry().clone())
        .instructions("You find papers on arXiv with research__arxiv_search and cite their ids.")
        .tools(ToolSelection::globs(["research__*"])?)
        .max_steps(4)
        .build()?;

    // 2. The model picks the tool: served natively.
    println!("-- arXiv reachable from here --");
    report(&agent.run(TASK).await?);

    // The native tool's arXiv goes down; the MCP research server still reaches its own.
    drop(native_arxiv);
    println!("-- the native tool's arXiv is down --");
    report(&agent.run(TASK).await?);

    // 3. An explicit call, through the same router.
    let routed = agent
        .call_tool(
            "research__arxiv_search",
            json!({"query": "ti:attention AND au:vaswani", "max_results": 1})
                .as_object()
                .cloned(),
        )
        .await?;
    println!(
        "explicit call: answered by {} after {} attempt(s)",
        routed.meta.instance.as_ref().map_or("-", |i| i.as_str()),
        routed.meta.attempts
    );
    println!(
        "queries that reached arXiv through the MCP server: {}",
        remote_arxiv.queries()
    );

    mesh.shutdown().await;
    stop.cancel();
    server.await??;
    Ok(())
}

fn report(run: &RunResult) {
    for step in &run.steps {
        println!(
            "  {} answered by {} ({} attempt(s), {} failover(s)){}",
            step.tool,
            step.instance.as_deref().unwrap_or("-"),
            step.attempts,
            step.failovers,
            if step.is_error { " error" } else { "" }
        );
    }
    println!("  answer: {}", run.answer);
}
