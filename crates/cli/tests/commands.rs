//! `toolmesh tools`, `call` and `status` against real fixture processes.

#[path = "support/gateway.rs"]
mod support;

use serde_json::Value;
use support::{FixtureConfig, Gateway, config_yaml};

/// Runs `toolmesh args…` (bounded) and returns the exit code, stdout and stderr.
async fn toolmesh(args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    support::run(args, &[]).await
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
    // Durations in milliseconds.
    assert!(out["meta"]["latency_ms"].as_f64() > Some(0.0), "{out}");
    assert!(out["meta"].get("latency").is_none(), "{out}");

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
    // No call yet: no success rate, no latency.
    let row = stdout
        .lines()
        .find(|l| l.contains("fixture-1"))
        .unwrap_or_default();
    assert!(!row.contains('%'), "a success rate without calls: {row}");

    // JSON durations are milliseconds.
    let (code, stdout, stderr) = toolmesh(&["status", "--config", &config, "--json"]).await?;
    assert_eq!(code, 0, "{stderr}");
    let status: Value = serde_json::from_str(&stdout)?;
    let load = &status["instances"][0]["load"];
    assert!(load.get("p99_latency_ms").is_some(), "{load}");
    assert!(!stdout.contains("\"secs\""), "{stdout}");
    Ok(())
}

/// A configuration whose only server is an HTTP URL nothing listens on.
fn dead_config(dir: &tempfile::TempDir) -> anyhow::Result<(String, String)> {
    let port = toolmesh_testkit::peers::free_port()?;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let path = dir.path().join("toolmesh.yaml");
    std::fs::write(&path, config_yaml(&[("fixture", vec![url.clone()])]))?;
    Ok((path.to_string_lossy().into_owned(), url))
}

#[tokio::test]
async fn every_server_down_fails_tools_status_and_call_with_the_reason() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (config, url) = dead_config(&dir)?;

    let (code, _, stderr) = toolmesh(&["tools", "--config", &config]).await?;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("service down: fixture") && stderr.contains(&url),
        "{stderr}"
    );

    let (code, stdout, stderr) = toolmesh(&["status", "--config", &config]).await?;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("fixture-1") && stdout.contains("NO"),
        "{stdout}"
    );

    // The call names the server and why it is down, not an unknown tool.
    let (code, _, stderr) = toolmesh(&[
        "call",
        "fixture__echo",
        r#"{"message": "hi"}"#,
        "--config",
        &config,
    ])
    .await?;
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("no tool named"), "{stderr}");
    assert!(
        stderr.contains("its server is down: fixture: fixture-1") && stderr.contains(&url),
        "{stderr}"
    );

    // The gateway serving it is not ready.
    let gateway = Gateway::start(&["--config", &config]).await?;
    let (code, body) = gateway.get("/readyz").await?;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("every configured server is down"), "{body}");
    Ok(())
}

#[tokio::test]
async fn connection_errors_say_what_failed_in_plain_words() -> anyhow::Result<()> {
    let port = toolmesh_testkit::peers::free_port()?;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let (code, _, stderr) = toolmesh(&["tools", "--url", &url]).await?;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to {url}: connection refused")),
        "{stderr}"
    );
    for noise in ["WorkerTransport", "rmcp::", "Client(", "{"] {
        assert!(!stderr.contains(noise), "`{noise}` in {stderr}");
    }
    // -v adds the whole chain of causes.
    let (code, _, verbose) = toolmesh(&["tools", "--url", &url, "-v"]).await?;
    assert_eq!(code, 1);
    assert!(verbose.len() > stderr.len(), "{verbose}");
    assert!(
        verbose.contains("Connection refused (os error"),
        "{verbose}"
    );

    // A server that is not an MCP endpoint at this path.
    let served = FixtureConfig::start("solo").await?;
    let gateway = Gateway::start(&["--config", &served.arg()]).await?;
    let wrong = format!("{}/status", gateway.base);
    let (code, _, stderr) = toolmesh(&["tools", "--url", &wrong]).await?;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("this does not look like an MCP endpoint (check the path, usually /mcp)"),
        "{stderr}"
    );
    for noise in ["WorkerTransport", "rmcp::", "{"] {
        assert!(!stderr.contains(noise), "`{noise}` in {stderr}");
    }
    Ok(())
}

#[tokio::test]
async fn url_calls_are_quiet_and_show_the_gateway_routing() -> anyhow::Result<()> {
    let served = FixtureConfig::start("solo").await?;
    let gateway = Gateway::start(&["--config", &served.arg()]).await?;
    let echo = ["call", "fixture__echo", r#"{"message": "hi"}"#, "--url"];

    let (code, stdout, stderr) = toolmesh(&[&echo[..], &[&gateway.url, "--json"]].concat()).await?;
    assert_eq!(code, 0, "{stderr}");
    let out: Value = serde_json::from_str(&stdout)?;
    let reported = out["result"]["_meta"].get("io.toolmesh/routing").is_some();
    if reported {
        assert_eq!(out["meta"]["instance"], "fixture-1", "{out}");
        assert!(out["meta"]["latency_ms"].is_number(), "{out}");
    } else {
        assert!(out.get("meta").is_none(), "{out}");
    }

    // The routing as --config shows it (when the gateway reports it); with -q nothing else,
    // in several runs (rmcp's "fail to close sink" came in about one of four).
    for _ in 0..4 {
        let (code, stdout, stderr) = toolmesh(&[&echo[..], &[&gateway.url, "-q"]].concat()).await?;
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(stdout.trim(), "hi");
        let (code, _, plain) = toolmesh(&[&echo[..], &[&gateway.url]].concat()).await?;
        assert_eq!(code, 0, "{plain}");
        if reported {
            assert!(
                plain.starts_with("routed: service fixture instance fixture-1 attempts 1"),
                "{plain}"
            );
        } else {
            assert_eq!(plain, "", "-q: {stderr}");
        }
        assert!(
            !plain.contains("ERROR") && !stderr.contains("ERROR"),
            "{plain}{stderr}"
        );
    }

    // Arguments that do not fit the schema exit 2 through the gateway, as locally.
    let (code, _, stderr) =
        toolmesh(&["call", "fixture__echo", "{}", "--url", &gateway.url]).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("message"), "{stderr}");
    // An unknown tool is a failed call in both modes.
    let (code, _, stderr) = toolmesh(&["call", "fixture__nope", "--url", &gateway.url]).await?;
    assert_eq!(code, 1, "{stderr}");
    Ok(())
}

#[tokio::test]
async fn tables_fit_the_width() -> anyhow::Result<()> {
    let served = FixtureConfig::start("solo").await?;
    let config = served.arg();
    let (code, table, stderr) =
        support::run(&["tools", "--config", &config], &[("COLUMNS", "60")]).await?;
    assert_eq!(code, 0, "{stderr}");
    let widest = table.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(widest <= 60, "a line of {widest} characters:\n{table}");
    assert!(table.contains("fixture__ec"), "{table}");
    Ok(())
}
