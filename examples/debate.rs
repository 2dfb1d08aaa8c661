//! Seed 002's debate: a researcher, an analyst and a critic, each an agent exposed as an
//! MCP server over streamable HTTP, and a coordinator agent whose tools are their
//! capabilities. The coordinator asks the researcher and the analyst at once, has the
//! critic challenge their answers, then merges everything into one answer. Every
//! question between agents is an MCP call through the coordinator's router.
//!
//! Runs against the testkit's scripted OpenAI-compatible server by default (one script
//! per agent); set `OPENAI_BASE_URL` (and `OPENAI_API_KEY`, `TOOLMESH_MODEL`) to debate
//! with a real model.
//!
//! Run it with `cargo run --example debate`.

#[path = "support/llm.rs"]
mod llm_support;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use toolmesh::{
    Agent, ConfigLoader, Format, Mesh, Registry, ToolSelection,
    agent::{ExposeAsMcpServer, ExposeOptions},
    enterprise::{GatewayState, HttpOptions, HttpServer},
    services::RegistryOptions,
};
use toolmesh_testkit::{Reply, ScriptedCall, ScriptedLlm};

const QUESTION: &str = "Should a team run several replicas of every MCP server it depends on?";

/// One debater, served over MCP on a free loopback port; returns its URL.
async fn debater(
    name: &str,
    role: &str,
    capability: (&str, &str),
    scripted_answer: &str,
    stop: &CancellationToken,
) -> anyhow::Result<(String, Option<ScriptedLlm>)> {
    let (llm, scripted) = llm_support::scripted_or_env([Reply::text(scripted_answer)]).await?;
    let agent = Agent::builder(llm)
        .name(name)
        .registry(Registry::new(RegistryOptions::default()))
        .instructions(role)
        .max_steps(3)
        .build()?;
    let server = agent
        .expose_as_mcp_server(
            ExposeOptions::new()
                .capability(capability.0, capability.1)
                .description(role),
        )
        .await?;
    let listener = HttpServer::bind("127.0.0.1:0".parse()?).await?;
    let url = listener.mcp_url();
    let state = GatewayState::ready(server.catalog_server().clone(), HttpOptions::default());
    tokio::spawn(listener.serve(state, stop.clone()));
    Ok((url, scripted))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let (researcher, _r) = debater(
        "researcher",
        "You gather the facts that bear on a question, briefly.",
        ("research", "Gather the facts that bear on a question."),
        "Facts: a single server instance is a single point of failure; replicas let calls fail over.",
        &stop,
    )
    .await?;
    let (analyst, _a) = debater(
        "analyst",
        "You weigh costs against benefits, briefly.",
        ("analyze", "Weigh the costs and benefits of a proposal."),
        "Analysis: two replicas double the cost but remove most outages; worth it for critical tools.",
        &stop,
    )
    .await?;
    let (critic, _c) = debater(
        "critic",
        "You find the weakest point of an argument, briefly.",
        ("critique", "Find the weakest point of the arguments given as context."),
        "Critique: replicas of a server sharing one backend fail together; replicate the backend too.",
        &stop,
    )
    .await?;

    // The coordinator reaches the debaters as MCP servers in its own mesh.
    let yaml = format!(
        "servers:\n  researcher:\n    url: {researcher}\n  analyst:\n    url: {analyst}\n  critic:\n    url: {critic}\n"
    );
    let mesh = Mesh::start(
        &ConfigLoader::new()
            .text("debate.yaml", Format::Yaml, yaml)
            .load()?,
    )
    .await?;
    let ask = |tool: &str, context: &str| {
        ScriptedCall::new(tool, json!({ "task": QUESTION, "context": context }))
    };
    let (llm, _coordinator) = llm_support::scripted_or_env([
        // Round 1: research and analysis at once.
        Reply::ToolCalls(vec![
            ask("researcher__research", ""),
            ask("analyst__analyze", ""),
        ]),
        // Round 2: the critic reads both.
        Reply::ToolCalls(vec![ask(
            "critic__critique",
            "the researcher's facts and the analyst's weighing above",
        )]),
        Reply::text(
            "Yes for critical tools: replicas remove the single point of failure and are worth \
             their cost, provided what they depend on is replicated as well.",
        ),
    ])
    .await?;
    let coordinator = Agent::builder(llm)
        .name("coordinator")
        .registry(mesh.registry().clone())
        .instructions(
            "You run a debate: ask the researcher and the analyst, then the critic with their \
             answers as context, then merge everything into one short answer.",
        )
        .tools(ToolSelection::globs([
            "researcher__*",
            "analyst__*",
            "critic__*",
        ])?)
        .max_steps(5)
        .build()?;

    let run = coordinator.run(QUESTION).await?;
    for step in &run.steps {
        println!(
            "[round {}] {} (on {}): {}",
            step.step,
            step.tool,
            step.instance.as_deref().unwrap_or("-"),
            step.output.lines().next().unwrap_or_default()
        );
    }
    println!("\nverdict: {}", run.answer);
    mesh.shutdown().await;
    stop.cancel();
    Ok(())
}
