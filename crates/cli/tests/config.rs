//! Invalid configurations exit 2 naming the key path; `config check` shows valid ones.

use assert_cmd::Command;
use predicates::prelude::*;

const GOOD: &str = "\
defaults:
  timeout: 20s
servers:
  search:
    instances:
      - url: http://127.0.0.1:9/mcp
        auth: { type: bearer, token: s3cret-token }
      - url: http://127.0.0.1:10/mcp
        weight: 2
  compute:
    command: [toolmesh-fixture, --stdio]
    replicas: 2
";

const BAD: &str = "\
servers:
  search:
    instances:
      - url: http://127.0.0.1:9/mcp
      - urll: http://127.0.0.1:10/mcp
";

fn toolmesh() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_toolmesh"));
    cmd.timeout(std::time::Duration::from_secs(30));
    cmd
}

#[test]
fn serve_with_a_bad_config_exits_2_naming_the_key_path() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("toolmesh.yaml");
    std::fs::write(&file, BAD)?;
    toolmesh()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("listening").not())
        .stderr(predicate::str::contains("servers.search.instances[1]"))
        .stderr(predicate::str::contains("unknown key `urll`"))
        .stderr(predicate::str::contains("did you mean `url`?"));
    Ok(())
}

#[test]
fn serve_with_a_missing_config_file_exits_2() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    toolmesh()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path().join("absent.yaml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("absent.yaml"));
    Ok(())
}

#[test]
fn config_check_prints_the_normalized_services() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("toolmesh.yaml");
    std::fs::write(&file, GOOD)?;
    toolmesh()
        .args(["config", "check"])
        .arg(&file)
        .assert()
        .success()
        .stdout(predicate::str::contains("name: search"))
        .stdout(predicate::str::contains("id: search-2"))
        .stdout(predicate::str::contains("id: compute-2"))
        .stdout(predicate::str::contains("timeout: 20s"))
        .stdout(predicate::str::contains("s3cret-token").not())
        .stderr(predicate::str::contains(
            "configuration ok: 2 services, 4 instances",
        ));

    let output = toolmesh()
        .args(["config", "check", "--format", "json"])
        .arg(&file)
        .output()?;
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let services = json["services"].as_array().map(Vec::len);
    assert_eq!(services, Some(2), "{json}");
    assert_eq!(json["services"][1]["instances"][1]["weight"], 2, "{json}");
    Ok(())
}

#[test]
fn config_check_of_a_bad_file_exits_2_with_the_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("toolmesh.yaml");
    std::fs::write(&file, BAD)?;
    toolmesh()
        .args(["config", "check"])
        .arg(&file)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(
            "toolmesh.yaml: servers.search.instances[1]: unknown key `urll`",
        ));
    Ok(())
}

#[test]
fn config_check_of_an_empty_file_warns_that_nothing_is_served() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("toolmesh.yaml");
    std::fs::write(&file, "")?;
    toolmesh()
        .args(["config", "check"])
        .arg(&file)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: the configuration defines no servers",
        ));
    Ok(())
}
