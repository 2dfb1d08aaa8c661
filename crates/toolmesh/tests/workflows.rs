//! `workflows:` in configuration files: checked at load, with the file and key path of
//! each mistake; built over a running registry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tempfile::TempDir;
use toolmesh::{Config, ConfigLoader, Mesh, WorkflowError};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

fn load(text: &str) -> (TempDir, Result<Config, toolmesh::ConfigError>) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flows.yaml");
    std::fs::write(&path, text).unwrap();
    let loaded = ConfigLoader::new()
        .file(&path)
        .without_env_overrides()
        .load();
    (dir, loaded)
}

/// The message of a file that must not load, without the directory.
fn fail(text: &str) -> String {
    let (dir, loaded) = load(text);
    let message = loaded.expect_err("loading should fail").to_string();
    message.replace(&format!("{}/", dir.path().display()), "")
}

const SERVERS: &str = "
servers:
  papers: { url: http://127.0.0.1:9/mcp }
agents:
  writer: { instructions: Write briefly. }
";

#[test]
fn a_valid_workflow_loads() {
    let text = format!(
        "{SERVERS}
workflows:
  research:
    description: Finds and summarizes papers
    input_schema: {{ type: object, properties: {{ topic: {{ type: string }} }} }}
    steps:
      - id: search
        tool: papers__search
        arguments: {{ query: '{{{{ input.topic }}}}' }}
        fallback_tools: [calculator]
        timeout: 20s
      - id: both
        parallel:
          - {{ id: a, tool: papers__get, arguments: {{ id: '{{{{ steps.search.output.ids[0] }}}}' }} }}
          - {{ id: b, tool: time_now }}
      - id: summary
        agent: writer
        task: 'Summarize {{{{ steps.both.text }}}}'
        when: input.summarize
    output: '{{{{ steps.summary.output }}}}'
"
    );
    let (_dir, loaded) = load(&text);
    let config = loaded.unwrap();
    let research = &config.workflows["research"];
    assert_eq!(research.steps.len(), 3);
    assert_eq!(research.steps[1].parallel.len(), 2);
    assert_eq!(
        research.steps[0].timeout,
        Some(std::time::Duration::from_secs(20))
    );
}

#[test]
fn an_unknown_step_reference_is_reported_at_its_key_path() {
    let text = format!(
        "{SERVERS}
workflows:
  research:
    steps:
      - {{ id: a, tool: papers__search }}
      - {{ id: b, tool: papers__get }}
      - {{ id: c, tool: papers__get, needs: [x] }}
"
    );
    assert_eq!(
        fail(&text),
        "flows.yaml: workflows.research.steps[2].needs: unknown step `x`; steps are: a, b, c"
    );
}

#[test]
fn a_cycle_is_reported_with_the_steps_in_it() {
    let text = format!(
        "{SERVERS}
workflows:
  loop:
    steps:
      - {{ id: a, tool: papers__search, needs: [b] }}
      - {{ id: b, tool: papers__search, arguments: {{ q: '{{{{ steps.a.text }}}}' }} }}
"
    );
    let message = fail(&text);
    assert!(
        message.starts_with("flows.yaml: workflows.loop.steps[0].needs: the steps wait for each other in a cycle: a -> b -> a"),
        "{message}"
    );
}

#[test]
fn an_unknown_tool_is_reported_with_the_closest_names() {
    let text = format!(
        "{SERVERS}
workflows:
  research:
    steps:
      - id: search
        tool: paper__search
      - id: sum
        parallel:
          - {{ id: x, tool: calculater }}
"
    );
    let message = fail(&text);
    assert!(
        message.starts_with("flows.yaml: workflows.research.steps[0].tool: unknown tool `paper__search`: no server has the namespace `paper`; did you mean papers__search?"),
        "{message}"
    );
    let text = text.replace("paper__search", "papers__search");
    let message = fail(&text);
    assert!(
        message.starts_with(
            "flows.yaml: workflows.research.steps[1].parallel[0].tool: unknown tool `calculater`"
        ) && message.contains("did you mean calculator"),
        "{message}"
    );
}

#[test]
fn unknown_agents_template_errors_and_bad_keys_are_reported() {
    let message = fail(&format!(
        "{SERVERS}\nworkflows:\n  w:\n    steps:\n      - {{ id: s, agent: reader, task: hi }}\n"
    ));
    assert!(
        message.starts_with("flows.yaml: workflows.w.steps[0].agent: no agent named `reader` under `agents:`; agents are: writer"),
        "{message}"
    );
    let message = fail(&format!(
        "{SERVERS}\nworkflows:\n  w:\n    steps:\n      - {{ id: s, tool: papers__x, arguments: {{ q: '{{{{ input.q ' }} }}\n"
    ));
    assert!(
        message.starts_with("flows.yaml: workflows.w.steps[0].arguments.q: "),
        "{message}"
    );
    let message = fail(&format!(
        "{SERVERS}\nworkflows:\n  w:\n    steps:\n      - {{ id: s, tool: papers__x, fallback: [y] }}\n"
    ));
    assert!(message.contains("unknown key `fallback`"), "{message}");
}

#[tokio::test]
async fn a_configured_workflow_is_built_over_the_running_catalog() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let text = format!(
        "servers:\n  fx: {{ url: '{}' }}\nworkflows:\n  hello:\n    steps:\n      - {{ id: say, tool: fx__echo, arguments: {{ message: '{{{{ input.who }}}}' }} }}\n  typo:\n    steps:\n      - {{ id: say, tool: fx__ehco }}\n",
        server.http_url()
    );
    let (_dir, loaded) = load(&text);
    let config = loaded?;
    let mesh = Mesh::start(&config).await?;
    let workflow = config.workflow("hello", mesh.registry().clone())?;
    let result = workflow
        .run(serde_json::json!({"who": "ada"}), &Default::default())
        .await?;
    assert_eq!(result.output["message"], "ada");
    // A tool the server does not have is only known once it runs.
    let error = config
        .workflow("typo", mesh.registry().clone())
        .unwrap_err();
    assert!(
        error.to_string().starts_with("workflows.typo.steps[0].tool: no tool named `fx__ehco` in the catalog; did you mean fx__echo"),
        "{error}"
    );
    let error = config
        .workflow("nope", mesh.registry().clone())
        .unwrap_err();
    assert!(matches!(error, WorkflowError::Invalid { .. }));
    assert_eq!(
        error.to_string(),
        "no workflow named `nope`; workflows are: hello, typo"
    );
    mesh.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_exposed_workflow_is_a_tool_of_the_mesh() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let text = format!(
        "servers:\n  fx: {{ url: '{}' }}\nworkflows:\n  hello:\n    description: Greets someone.\n    expose: true\n    steps:\n      - {{ id: say, tool: fx__echo, arguments: {{ message: 'hi {{{{ input.who }}}}' }} }}\n  internal:\n    steps:\n      - {{ id: say, tool: fx__echo, arguments: {{ message: x }} }}\n",
        server.http_url()
    );
    let (_dir, loaded) = load(&text);
    let mesh = Mesh::start(&loaded?).await?;
    let catalog = mesh.registry().catalog();
    let entry = catalog
        .resolve("workflows__hello")
        .ok_or_else(|| anyhow::anyhow!("workflows__hello is not in the catalog"))?;
    assert_eq!(entry.tool.description.as_deref(), Some("Greets someone."));
    assert!(
        catalog.resolve("workflows__internal").is_none(),
        "not exposed"
    );
    let routed = mesh
        .registry()
        .call(
            "workflows__hello",
            serde_json::json!({"who": "ada"}).as_object().cloned(),
            &toolmesh::CallContext::with_timeout(std::time::Duration::from_secs(10)),
        )
        .await?;
    let structured = routed.result.structured_content.unwrap_or_default();
    assert_eq!(structured["output"]["message"], "hi ada", "{structured}");
    assert_eq!(structured["steps"][0]["tool"], "fx__echo", "{structured}");
    mesh.shutdown().await;
    Ok(())
}
