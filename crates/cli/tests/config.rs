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

/// `config check --format json` of `file`, which must succeed; its output ends in a newline.
fn check_json(file: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let output = toolmesh()
        .args(["config", "check", "--format", "json"])
        .arg(file)
        .output()?;
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.ends_with(b"}\n"));
    Ok(serde_json::from_slice(&output.stdout)?)
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

    let json = check_json(&file)?;
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

/// 10 000 servers: odd ones list two instances, even ones give one inline.
fn ten_thousand_servers() -> String {
    let mut text =
        String::from("defaults:\n  timeout: 20s\n  pool:\n    max_sessions: 4\nservers:\n");
    for i in 0..10_000 {
        let port = 1000 + i;
        if i % 2 == 1 {
            text.push_str(&format!(
                "  s{i}:\n    instances:\n      - url: http://127.0.0.1:{port}/mcp\n      - url: http://127.0.0.2:{port}/mcp\n        weight: 2\n"
            ));
        } else {
            text.push_str(&format!(
                "  s{i}:\n    url: http://127.0.0.1:{port}/mcp\n    timeout: 5s\n"
            ));
        }
    }
    text
}

#[test]
fn config_check_of_ten_thousand_servers_shows_every_one() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("toolmesh.yaml");
    std::fs::write(&file, ten_thousand_servers())?;

    let output = toolmesh().args(["config", "check"]).arg(&file).output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("configuration ok: 10000 services, 15000 instances"),
        "{stderr}"
    );
    let yaml: serde_yaml::Value = serde_yaml::from_slice(&output.stdout)?;
    let services = yaml["services"].as_sequence().map(Vec::len);
    assert_eq!(services, Some(10_000));
    // Name order: s0, s1, s10, s100, ...
    let s1 = &yaml["services"][1];
    assert_eq!(s1["name"].as_str(), Some("s1"));
    assert_eq!(s1["timeout"].as_str(), Some("20s"));
    assert_eq!(s1["instances"][1]["id"].as_str(), Some("s1-2"));
    assert_eq!(s1["instances"][1]["weight"].as_u64(), Some(2));
    assert_eq!(
        s1["instance_config"]["pool"]["max_sessions"].as_u64(),
        Some(4)
    );
    let s0 = &yaml["services"][0];
    assert_eq!(s0["timeout"].as_str(), Some("5s"));
    assert_eq!(
        s0["instances"][0]["endpoint"].as_str(),
        Some("server `s0` (http://127.0.0.1:1000/mcp)")
    );
    assert!(output.stdout.ends_with(b"max_wait: 0s\n"));

    let json = check_json(&file)?;
    assert_eq!(json["services"].as_array().map(Vec::len), Some(10_000));
    Ok(())
}

#[test]
fn config_check_whose_reader_stops_early_still_succeeds() -> anyhow::Result<()> {
    use std::io::Read as _;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("toolmesh.yaml");
    std::fs::write(&file, ten_thousand_servers())?;
    // Megabytes of output: the pipe fills, then its reader goes away (`| head`).
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_toolmesh"))
        .args(["config", "check"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut head = [0u8; 9];
    stdout.read_exact(&mut head)?;
    assert_eq!(&head, b"services:");
    drop(stdout);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill()?;
            anyhow::bail!("config check did not exit after its reader went away");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr)?;
    }
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("configuration ok: 10000 services"),
        "{stderr}"
    );
    Ok(())
}
