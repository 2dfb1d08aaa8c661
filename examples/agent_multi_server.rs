//! An agent over two real MCP servers from npm (`server-everything` and `server-filesystem`)
//! and the native tools: one catalog, every call routed, the transcript with its routing.
//!
//! Needs the pinned peers (`cargo xtask peers` installs them under `target/peers`). Runs
//! against the testkit's scripted OpenAI-compatible server by default; set
//! `OPENAI_BASE_URL` (and `OPENAI_API_KEY`, `TOOLMESH_MODEL`) to use a real model.
//!
//! Run it with `cargo run --example agent_multi_server`.

#[path = "support/llm.rs"]
mod llm_support;

use serde_json::json;
use toolmesh::{Agent, ConfigLoader, Format, Mesh, ToolSelection};
use toolmesh_testkit::{
    Reply, ScriptedCall,
    peers::{server_everything, server_filesystem},
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("notes.txt"),
        "MCP servers: everything, filesystem\n",
    )?;
    let command = |(program, args): (std::path::PathBuf, Vec<String>)| {
        let mut argv = vec![program.to_string_lossy().into_owned()];
        argv.extend(args);
        serde_json::to_string(&argv).unwrap_or_default()
    };
    let yaml = format!(
        "servers:\n  everything:\n    command: {}\n  filesystem:\n    command: {}\n",
        command(server_everything(&[])?),
        command(server_filesystem(&[dir.path()])?),
    );
    let mesh = Mesh::start(
        &ConfigLoader::new()
            .text("agent.yaml", Format::Yaml, yaml)
            .load()?,
    )
    .await?;
    println!("catalog: {} tools", mesh.registry().catalog().len());

    let notes = dir.path().join("notes.txt").to_string_lossy().into_owned();
    // A scripted model unless a real one is configured.
    let (llm, _scripted) = llm_support::scripted_or_env([
        Reply::ToolCalls(vec![
            ScriptedCall::new("filesystem__read_text_file", json!({"path": notes})),
            ScriptedCall::new(
                "everything__echo",
                json!({"message": "hello from the mesh"}),
            ),
        ]),
        Reply::Text("The notes list two MCP servers, and the echo came back.".into()),
    ])
    .await?;
    let agent = Agent::builder(llm)
        .registry(mesh.registry().clone())
        .instructions("Read files with the filesystem tools; echo with the everything tools.")
        .tools(ToolSelection::globs(["everything__*", "filesystem__*"])?)
        .build()?;
    let run = agent
        .run("Read notes.txt in the shared folder and echo a greeting.")
        .await?;
    println!("answer: {}", run.answer);
    for step in &run.steps {
        println!(
            "  {} on {} ({} attempt(s)): {}",
            step.tool,
            step.instance.as_deref().unwrap_or("-"),
            step.attempts,
            step.output.lines().next().unwrap_or_default()
        );
    }
    mesh.shutdown().await;
    Ok(())
}
