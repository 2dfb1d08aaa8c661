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

/// A fixture server as the service `fx` and a configuration with `workflows`; both live
/// as long as the value.
struct Served {
    _fixture: FixtureServer,
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
}

impl Served {
    async fn start(workflows: &str) -> anyhow::Result<Self> {
        let fixture = FixtureServer::start(FixtureOptions::new()).await?;
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("toolmesh.yaml");
        let text = format!(
            "servers:\n  fx:\n    url: {}\n    health_check: {{ enabled: false }}\nworkflows:\n{workflows}",
            fixture.http_url()
        );
        std::fs::write(&file, text)?;
        Ok(Self {
            _fixture: fixture,
            _dir: dir,
            file,
        })
    }

    /// `toolmesh ARGS… --config FILE`.
    fn toolmesh(&self, args: &[&str]) -> Command {
        let mut cmd = toolmesh();
        cmd.args(args).arg("--config").arg(&self.file);
        cmd
    }
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

/// `toolmesh workflow run ARGS… --config FILE`: exit code, stdout, stderr.
fn run(served: &Served, args: &[&str]) -> anyhow::Result<(Option<i32>, String, String)> {
    let mut all = vec!["workflow", "run"];
    all.extend_from_slice(args);
    let output = served.toolmesh(&all).output()?;
    Ok((
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn workflow_run_prints_each_step_and_the_output() -> anyhow::Result<()> {
    let served = Served::start(RESEARCH).await?;
    let (code, stdout, stderr) = run(&served, &["research", "--input", r#"{"topic": "MCP"}"#])?;
    assert_eq!(code, Some(0), "{stderr}");
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
    assert!(
        stdout.contains("skipped skipped fx__counter: when"),
        "{stdout}"
    );
    assert!(stdout.contains(r#""found": "papers on MCP""#), "{stdout}");
    assert!(stdout.contains(r#""answer": "42""#), "{stdout}");
    Ok(())
}

#[tokio::test]
async fn workflow_run_json_prints_the_result_with_routing() -> anyhow::Result<()> {
    let served = Served::start(RESEARCH).await?;
    let input = r#"{"topic": "MCP", "count": true}"#;
    let (code, stdout, stderr) = run(&served, &["research", "--json", "--input", input])?;
    assert_eq!(code, Some(0), "{stderr}");
    let result: Value = serde_json::from_str(&stdout)?;
    let find = &result["steps"][0];
    assert_eq!(find["tool"], "fx__echo");
    assert_eq!(find["fallbacks_tried"][0]["tool"], "fx__fail");
    assert_eq!(find["instance"], "fx-1");
    assert_eq!(find["attempts"], 1);
    assert!(find["latency_ms"].is_number() && find["started_ms"].is_number());
    let steps = result["steps"].as_array().cloned().unwrap_or_default();
    let counted = steps.iter().find(|s| s["id"] == "skipped");
    assert_eq!(
        counted.map(|s| &s["status"]),
        Some(&Value::from("ok")),
        "`count: true` runs it"
    );
    assert_eq!(result["output"]["found"], "papers on MCP");
    Ok(())
}

#[tokio::test]
async fn a_failing_workflow_exits_1_with_the_reason() -> anyhow::Result<()> {
    let served = Served::start(RESEARCH).await?;
    let (code, _, stderr) = run(&served, &["broken"])?;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "toolmesh: step `only` failed: fx__fail: the tool answered with an error: it broke"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = run(&served, &["nope"])?;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("no workflow named `nope`; workflows are: broken, research"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&served, &["research", "--input", "{topic"])?;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--input is not JSON"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn config_check_reports_workflow_mistakes_with_key_paths() -> anyhow::Result<()> {
    let bad = r#"
  research:
    steps:
      - { id: a, tool: fx__echo }
      - { id: b, tool: fx__echo, needs: [a] }
      - { id: c, tool: fx__echo, needs: [x] }
"#;
    let served = Served::start(bad).await?;
    toolmesh()
        .args(["config", "check"])
        .arg(&served.file)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(
            "toolmesh.yaml: workflows.research.steps[2].needs: unknown step `x`; steps are: a, b, c",
        ));
    let served = Served::start(RESEARCH).await?;
    toolmesh()
        .args(["config", "check"])
        .arg(&served.file)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "1 service, 1 instance, 2 workflows",
        ));
    Ok(())
}
