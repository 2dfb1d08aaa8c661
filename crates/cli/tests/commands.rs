//! `toolmesh tools`, `call` and `status` against real fixture processes.

#[path = "support/gateway.rs"]
mod support;

use std::time::Duration;

use serde_json::Value;
use support::{FixtureConfig, Gateway};
use tokio::process::Command;

/// Runs `toolmesh args…` (bounded) and returns the exit code, stdout and stderr.
async fn toolmesh(args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new(support::bin())
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await??;
    Ok((
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

#[tokio::test]
async fn tools_json_lists_the_configured_catalog() -> anyhow::Result<()> {
    let served = FixtureConfig::start("solo").await?;
    let config = served.arg();
    let (code, stdout, stderr) = toolmesh(&["tools", "--config", &config, "--json"]).await?;
    assert_eq!(code, 0, "{stderr}");
    let tools: Vec<Value> = serde_json::from_str(&stdout)?;
    let echo = tools
        .iter()
        .find(|t| t["name"] == "fixture__echo")
        .unwrap_or_else(|| panic!("no fixture__echo in {stdout}"));
    assert_eq!(echo["service"], "fixture");
    assert_eq!(echo["inputSchema"]["required"][0], "message");
    assert_eq!(echo["annotations"]["readOnlyHint"], true);

    let (code, table, _) = toolmesh(&["tools", "--config", &config]).await?;
    assert_eq!(code, 0);
    assert!(
        table.contains("fixture__echo") && table.contains("read-only"),
        "{table}"
    );
    Ok(())
}

#[tokio::test]
async fn call_prints_the_result_and_the_routing() -> anyhow::Result<()> {
    let served = FixtureConfig::start("solo").await?;
    let config = served.arg();
    let (code, stdout, stderr) = toolmesh(&[
        "call",
        "fixture__echo",
        r#"{"message": "hello mesh"}"#,
        "--config",
        &config,
    ])
    .await?;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "hello mesh");
    assert!(
        stderr.contains("instance fixture-1") && stderr.contains("attempts 1"),
        "{stderr}"
    );

    let (code, stdout, stderr) = toolmesh(&[
        "call",
        "fixture__echo",
        r#"{"message": "as json"}"#,
        "--config",
        &config,
        "--json",
    ])
    .await?;
    assert_eq!(code, 0, "{stderr}");
    let out: Value = serde_json::from_str(&stdout)?;
    assert_eq!(
        out["result"]["structuredContent"]["instance"], "solo",
        "{out}"
    );
    assert_eq!(out["meta"]["instance"], "fixture-1", "{out}");
    assert_eq!(out["meta"]["attempts"], 1, "{out}");

    // A tool error: exit 1, the reason on one line.
    let (code, _, stderr) = toolmesh(&[
        "call",
        "fixture__fail",
        r#"{"reason": "broken on purpose"}"#,
        "--config",
        &config,
    ])
    .await?;
    assert_eq!(code, 1);
    assert!(stderr.contains("broken on purpose"), "{stderr}");

    // Arguments that are not JSON, or miss a field: exit 2 with a clear message.
    let (code, _, stderr) = toolmesh(&[
        "call",
        "fixture__echo",
        "{message: hi}",
        "--config",
        &config,
    ])
    .await?;
    assert_eq!(code, 2);
    assert!(stderr.contains("ARGS_JSON is not valid JSON"), "{stderr}");
    let (code, _, stderr) = toolmesh(&["call", "fixture__echo", "{}", "--config", &config]).await?;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("missing required argument `message`"),
        "{stderr}"
    );

    // An unknown tool: exit 1 naming it.
    let (code, _, stderr) = toolmesh(&["call", "fixture__nope", "--config", &config]).await?;
    assert_eq!(code, 1);
    assert!(stderr.contains("no tool named `fixture__nope`"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn url_commands_talk_to_a_running_gateway() -> anyhow::Result<()> {
    let served = FixtureConfig::start("solo").await?;
    let config = served.arg();
    let gateway = Gateway::start(&["--config", &config]).await?;

    let (code, stdout, stderr) = toolmesh(&["tools", "--url", &gateway.url, "--json"]).await?;
    assert_eq!(code, 0, "{stderr}");
    let tools: Vec<Value> = serde_json::from_str(&stdout)?;
    assert!(
        tools.iter().any(|t| t["name"] == "fixture__echo"),
        "{stdout}"
    );

    let (code, stdout, stderr) = toolmesh(&[
        "call",
        "fixture__echo",
        r#"{"message": "through the gateway"}"#,
        "--url",
        &gateway.url,
    ])
    .await?;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "through the gateway");

    let (code, stdout, stderr) = toolmesh(&["status", "--url", &gateway.url]).await?;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("fixture-1") && stdout.contains("closed"),
        "{stdout}"
    );
    let (code, stdout, _) = toolmesh(&["status", "--url", &gateway.base, "--json"]).await?;
    assert_eq!(code, 0);
    let status: Value = serde_json::from_str(&stdout)?;
    assert_eq!(status["summary"]["services"], 1, "{status}");
    assert_eq!(status["reload"]["generation"], 0, "{status}");
    Ok(())
}

#[tokio::test]
async fn status_with_a_config_shows_the_instance_table() -> anyhow::Result<()> {
    let served = FixtureConfig::start("solo").await?;
    let config = served.arg();
    let (code, stdout, stderr) = toolmesh(&["status", "--config", &config]).await?;
    assert_eq!(code, 0, "{stderr}");
    for column in [
        "service", "instance", "healthy", "breaker", "calls", "success", "p99",
    ] {
        assert!(stdout.contains(column), "{column} missing: {stdout}");
    }
    assert!(stdout.contains("fixture-1"), "{stdout}");
    Ok(())
}
