//! `toolmesh workflow run` end to end: a configuration with a fixture MCP server, the
//! native tools, and workflows; and `config check` of a bad workflow.

#[path = "support/gateway.rs"]
mod support;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use toolmesh_testkit::{FixtureOptions, FixtureServer};

fn toolmesh() -> Command {
    let mut cmd = Command::new(support::bin());
    cmd.timeout(std::time::Duration::from_secs(60));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// A configuration serving `fixture` as the service `fx`, with `workflows`.
fn config(dir: &tempfile::TempDir, fixture: &FixtureServer, workflows: &str) -> std::path::PathBuf {
    let path = dir.path().join("toolmesh.yaml");
    let text = format!(
        "servers:\n  fx:\n    url: {}\n    health_check: {{ enabled: false }}\nworkflows:\n{workflows}",
        fixture.http_url()
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write the config: {e}"));
    path
}

const RESEARCH: &str = r#"
  research:
    steps:
      - id: find
        tool: fx__fail
        arguments: { reason: primary down, message: "papers on {{ input.topic }}" }
        fallback_tools: [fx__echo]
      - id: both
        parallel:
          - { id: count, tool: calculator, arguments: { expression: "6 * 7" } }
          - { id: wait, tool: fx__sleep, arguments: { ms: 10 } }
      - id: skipped
        tool: fx__counter
        when: input.count
    output:
      found: "{{ steps.find.text }}"
      answer: "{{ steps.count.text }}"
  broken:
    steps:
      - { id: only, tool: fx__fail, arguments: { reason: it broke } }
"#;

#[tokio::test]
async fn workflow_run_prints_each_step_and_the_output() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let dir = tempfile::tempdir()?;
    let file = config(&dir, &fixture, RESEARCH);
    let output = toolmesh()
        .args([
            "workflow",
            "run",
            "research",
            "--input",
            r#"{"topic": "MCP"}"#,
            "--config",
        ])
        .arg(&file)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("ok      find fx__echo @ fx-1 (at "),
        "{stdout}"
    );
    assert!(
        lines[1].contains("fx__fail failed: the tool answered with an error: primary down"),
        "{stdout}"
    );
    assert!(stdout.contains("ok      both parallel"), "{stdout}");
    assert!(
        stdout.contains("  ok      count calculator @ native"),
        "{stdout}"
    );
    assert!(stdout.contains("skipped skipped fx__counter"), "{stdout}");
    assert!(stdout.contains(r#""found": "papers on MCP""#), "{stdout}");
    assert!(stdout.contains(r#""answer": "42""#), "{stdout}");
    Ok(())
}

#[tokio::test]
async fn workflow_run_json_prints_the_result_with_routing() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let dir = tempfile::tempdir()?;
    let file = config(&dir, &fixture, RESEARCH);
    let output = toolmesh()
        .args([
            "workflow",
            "run",
            "research",
            "--json",
            "--input",
            r#"{"topic": "MCP", "count": true}"#,
            "-c",
        ])
        .arg(&file)
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout)?;
    let find = &result["steps"][0];
    assert_eq!(find["tool"], "fx__echo");
    assert_eq!(find["fallbacks_tried"][0]["tool"], "fx__fail");
    assert_eq!(find["instance"], "fx-1");
    assert_eq!(find["attempts"], 1);
    assert!(find["latency_ms"].is_number() && find["started_ms"].is_number());
    let skipped = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "skipped")
        .unwrap();
    assert_eq!(skipped["status"], "ok", "`count: true` runs it");
    assert_eq!(result["output"]["found"], "papers on MCP");
    Ok(())
}

#[tokio::test]
async fn a_failing_workflow_exits_1_with_the_reason() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let dir = tempfile::tempdir()?;
    let file = config(&dir, &fixture, RESEARCH);
    toolmesh()
        .args(["workflow", "run", "broken", "--config"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "toolmesh: step `only` failed: fx__fail: the tool answered with an error: it broke",
        ));
    toolmesh()
        .args(["workflow", "run", "nope", "--config"])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no workflow named `nope`; workflows are: broken, research",
        ));
    toolmesh()
        .args([
            "workflow", "run", "research", "--input", "{topic", "--config",
        ])
        .arg(&file)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--input is not JSON"));
    Ok(())
}

#[tokio::test]
async fn config_check_reports_workflow_mistakes_with_key_paths() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let dir = tempfile::tempdir()?;
    let bad = r#"
  research:
    steps:
      - { id: a, tool: fx__echo }
      - { id: b, tool: fx__echo, needs: [a] }
      - { id: c, tool: fx__echo, needs: [x] }
"#;
    let file = config(&dir, &fixture, bad);
    toolmesh()
        .args(["config", "check"])
        .arg(&file)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(
            "toolmesh.yaml: workflows.research.steps[2].needs: unknown step `x`; steps are: a, b, c",
        ));
    let file = config(&dir, &fixture, RESEARCH);
    toolmesh()
        .args(["config", "check"])
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "1 service, 1 instance, 2 workflows",
        ));
    Ok(())
}
