//! A small research workflow over two fixture MCP servers and an agent: the search's primary server fails every call, so its fallback answers; two
//! lookups run in parallel; an agent summarizes. Every tool step goes through the router,
//! and the result says which tool and instance answered each step, and when.
//!
//! Runs against the testkit's scripted OpenAI-compatible server by default; set
//! `OPENAI_BASE_URL` (and `OPENAI_API_KEY`, `TOOLMESH_MODEL`) to use a real model.
//!
//! Run it with `cargo run --example workflow`.

use serde_json::json;
use toolmesh::{CallContext, ConfigLoader, Format, Mesh};
use toolmesh_testkit::{FixtureOptions, FixtureServer, Reply, ScriptedLlm};

const WORKFLOW: &str = r#"
workflows:
  research:
    description: Searches for papers on a topic, looks two up, and summarizes them
    steps:
      - id: search
        tool: papers__echo          # this server fails every call...
        arguments: { message: "3 papers on {{ input.topic }}" }
        fallback_tools: [mirror__echo]  # ...so the mirror answers
        timeout: 10s
      - id: lookups
        parallel:
          - { id: first, tool: mirror__sleep, arguments: { ms: 200 } }
          - { id: second, tool: mirror__sleep, arguments: { ms: 200 } }
          - { id: pages, tool: mirror__add, arguments: { a: 12, b: 30 } }
      - id: summary
        agent: writer
        task: "Summarize for a newcomer: {{ steps.search.text }} ({{ steps.pages.text }} pages)"
        when: input.summarize
    output:
      found: "{{ steps.search.text }}"
      summary: "{{ steps.summary.output }}"
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let papers =
        FixtureServer::start(FixtureOptions::new().instance_id("papers").fail_rate(1.0)).await?;
    let mirror = FixtureServer::start(FixtureOptions::new().instance_id("mirror")).await?;
    let yaml = format!(
        "servers:\n  papers: {{ url: '{}' }}\n  mirror: {{ url: '{}' }}\nagents:\n  writer: {{ instructions: Answer in one sentence. }}\n{WORKFLOW}",
        papers.http_url(),
        mirror.http_url()
    );
    let mut config = ConfigLoader::new()
        .text("workflow.yaml", Format::Yaml, yaml)
        .load()?;
    let mesh = Mesh::start(&config).await?;

    // A scripted model unless a real one is configured (`llm:` unset: the environment).
    let scripted = match std::env::var("OPENAI_BASE_URL") {
        Ok(_) => None,
        Err(_) => Some(
            ScriptedLlm::start([Reply::text(
                "Three papers describe how MCP connects models to tools.",
            )])
            .await?,
        ),
    };
    if let Some(scripted) = &scripted {
        config.llm.base_url = Some(scripted.base_url());
        config.llm.model = Some("scripted".into());
    }

    let workflow = config.workflow("research", mesh.registry().clone())?;
    let result = workflow
        .run(
            json!({"topic": "MCP", "summarize": true}),
            &CallContext::default(),
        )
        .await?;
    println!("{}\n", result.summary());
    println!("{}", serde_json::to_string_pretty(&result.output)?);
    mesh.shutdown().await;
    Ok(())
}
