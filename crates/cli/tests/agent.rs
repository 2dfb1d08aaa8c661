//! `toolmesh agent run` against the testkit's scripted OpenAI-compatible server, with
//! the native tools and fixture MCP servers.

#[path = "support/gateway.rs"]
mod support;

use serde_json::{Value, json};
use support::FixtureConfig;
use toolmesh_testkit::{Reply, ScriptedCall, ScriptedLlm};

/// Runs `toolmesh agent args…` against `llm` (no key, no model unless given).
async fn agent(llm: &str, args: &[&str]) -> anyhow::Result<(i32, String, String)> {
    let mut all = vec!["agent"];
    all.extend_from_slice(args);
    support::run(
        &all,
        &[
            ("OPENAI_BASE_URL", llm),
            ("OPENAI_API_KEY", ""),
            ("TOOLMESH_MODEL", ""),
        ],
    )
    .await
}

#[tokio::test]
async fn run_uses_the_native_tools_under_their_own_names() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([
        Reply::ToolCalls(vec![ScriptedCall::new(
            "calculator",
            json!({"expression": "17 * 23"}),
        )]),
        Reply::Text("391".into()),
    ])
    .await?;
    let (code, stdout, stderr) = agent(
        &llm.base_url(),
        &["run", "--model", "scripted", "--json", "What is 17 * 23?"],
    )
    .await?;
    assert_eq!(code, 0, "{stderr}");
    let run: Value = serde_json::from_str(&stdout)?;
    assert_eq!(run["answer"], "391");
    let step = &run["steps"][0];
    assert_eq!(step["tool"], "calculator");
    assert_eq!(step["instance"], "native");
    assert_eq!(step["is_error"], false, "{step}");
    assert!(
        step["latency_ms"].is_number() && step["attempts"] == 1,
        "{step}"
    );
    assert!(run["usage"]["total_tokens"].as_u64() > Some(0));
    // The model was asked with the calculator offered, and got its result back.
    let requests = llm.requests();
    assert_eq!(requests[0]["model"], "scripted");
    assert!(
        requests[0]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "calculator"))
    );
    let fed = &requests[1]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        fed.iter()
            .any(|m| m["role"] == "tool" && m["content"] == "391"),
        "{fed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn run_routes_configured_agents_tools_through_the_mesh() -> anyhow::Result<()> {
    let served = FixtureConfig::start("solo").await?;
    let llm = ScriptedLlm::start([
        Reply::ToolCalls(vec![ScriptedCall::new(
            "fixture__echo",
            json!({"message": "via mesh"}),
        )]),
        Reply::Text("echoed".into()),
    ])
    .await?;
    let dir = tempfile::tempdir()?;
    let agents = dir.path().join("agents.yaml");
    std::fs::write(
        &agents,
        "llm: { model: scripted }\nagents:\n  helper:\n    instructions: Use the echo tool.\n    tools: [\"fixture__*\"]\n    max_steps: 4\n",
    )?;
    let config = served.arg();
    let agents = agents.display().to_string();
    let (code, stdout, stderr) = agent(
        &llm.base_url(),
        &["run", "--config", &config, "--config", &agents, "echo it"],
    )
    .await?;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "echoed");
    let first = &llm.requests()[0];
    assert_eq!(first["messages"][0]["role"], "system");
    let offered: Vec<&str> = first["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(offered.contains(&"fixture__echo"), "{offered:?}");
    assert!(
        !offered.contains(&"calculator"),
        "the selection holds: {offered:?}"
    );
    Ok(())
}

#[tokio::test]
async fn failures_exit_non_zero_with_one_line_reasons() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([Reply::Repeat(Box::new(Reply::ToolCalls(vec![
        ScriptedCall::new("time_now", json!({})),
    ])))])
    .await?;
    let (code, _, stderr) = agent(&llm.base_url(), &["run", "hi"]).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no model set"), "{stderr}");

    let (code, _, stderr) = agent(
        &llm.base_url(),
        &["run", "--model", "m", "--max-steps", "2", "loop"],
    )
    .await?;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("max_steps limit reached (2)"), "{stderr}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/v1", closed.local_addr()?);
    drop(closed);
    let (code, _, stderr) = agent(&url, &["run", "--model", "m", "hi"]).await?;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("LLM unreachable at {url}")),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn config_check_validates_llm_and_agents() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("agents.yaml");
    std::fs::write(
        &file,
        "servers:\n  search: { url: \"http://127.0.0.1:9/mcp\" }\nllm: { base_url: \"http://127.0.0.1:9/v1\", model: m }\nagents:\n  researcher:\n    tools: [calculater, \"search__*\", time_now]\n",
    )?;
    let path = file.display().to_string();
    let (code, _, stderr) = support::run(&["config", "check", &path], &[]).await?;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "agents.researcher.tools: `calculater` matches no known tool; did you mean calculator"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("`search__*`") && !stderr.contains("`time_now`"),
        "{stderr}"
    );
    assert!(stderr.contains("1 agent"), "{stderr}");

    std::fs::write(
        &file,
        "llm: { base_url: \"localhost:11434\" }\nagents: { a: { tools: [\"[\"] } }\n",
    )?;
    let (code, _, stderr) = support::run(&["config", "check", &path], &[]).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("must start with http:// or https://"),
        "{stderr}"
    );
    std::fs::write(&file, "agents: { a: { tools: [\"[\"] } }\n")?;
    let (code, _, stderr) = support::run(&["config", "check", &path], &[]).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("agents.a.tools"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn stream_prints_the_text_as_it_arrives() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([
        Reply::ToolCalls(vec![ScriptedCall::new(
            "calculator",
            json!({"expression": "2 + 2"}),
        )]),
        Reply::Text("Two and two make four.".into()),
    ])
    .await?;
    let (code, stdout, stderr) = agent(
        &llm.base_url(),
        &["run", "--model", "m", "--stream", "2 + 2?"],
    )
    .await?;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Two and two make four.\n");
    assert!(llm.requests().iter().all(|r| r["stream"] == true));
    Ok(())
}

#[tokio::test]
async fn chat_keeps_the_conversation_across_lines() -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let llm = ScriptedLlm::start([Reply::Repeat(Box::new(Reply::Echo))]).await?;
    let mut child = tokio::process::Command::new(support::bin())
        .args(["agent", "chat", "--model", "m"])
        .env("OPENAI_BASE_URL", llm.base_url())
        .env("OPENAI_API_KEY", "")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    stdin.write_all(b"first line\n\nsecond line\n").await?;
    drop(stdin);
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout, "first line\nsecond line\n");
    // The second turn carried the first one.
    let second = &llm.requests()[1]["messages"];
    assert_eq!(second.as_array().map(Vec::len), Some(3), "{second}");
    assert_eq!(second[0]["content"], "first line");
    Ok(())
}

/// A loopback OTLP/HTTP collector: answers every POST with 200 and keeps the bodies.
async fn collector() -> anyhow::Result<(
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
)> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut request_line = String::new();
                    if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        let mut header = String::new();
                        if stream.read_line(&mut header).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if header.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    let _ = tx.send((path, body));
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if stream.get_mut().write_all(ok).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((url, rx))
}

#[tokio::test]
async fn traces_reach_an_otlp_collector_with_genai_attributes_and_the_routers_attempts()
-> anyhow::Result<()> {
    let served = FixtureConfig::start("solo").await?;
    let llm = ScriptedLlm::start([
        Reply::ToolCalls(vec![ScriptedCall::new(
            "fixture__echo",
            json!({"message": "traced"}),
        )]),
        Reply::Text("done".into()),
    ])
    .await?;
    let (endpoint, mut bodies) = collector().await?;
    let config = served.arg();
    let (code, _, stderr) = support::run(
        &[
            "agent",
            "run",
            "--config",
            &config,
            "--model",
            "traced-model",
            "go",
        ],
        &[
            ("OPENAI_BASE_URL", &llm.base_url()),
            ("OPENAI_API_KEY", ""),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ],
    )
    .await?;
    assert_eq!(code, 0, "{stderr}");
    // The process flushed its spans before exiting: they are all here.
    let mut exported = Vec::new();
    while let Ok((path, body)) = bodies.try_recv() {
        assert_eq!(path, "/v1/traces");
        exported.extend(body);
    }
    let text = String::from_utf8_lossy(&exported);
    for expected in [
        "agent_run",
        "chat",
        "tool_call",
        "attempt",
        "gen_ai.request.model",
        "traced-model",
        "gen_ai.tool.name",
        "fixture__echo",
        "gen_ai.usage.input_tokens",
        "fixture-1",
    ] {
        assert!(
            text.contains(expected),
            "no `{expected}` in the exported spans"
        );
    }
    Ok(())
}

/// A configuration with a model at `llm` and the `mathematician` agent exposed.
fn exposed_config(dir: &std::path::Path, llm: &str, extra: &str) -> anyhow::Result<String> {
    let path = dir.join("agents.yaml");
    std::fs::write(
        &path,
        format!(
            "llm:\n  base_url: {llm}\n  model: scripted\n\
             agents:\n  mathematician:\n    instructions: Solve arithmetic with the calculator; answer with the number.\n\
             \x20   tools: [calculator]\n    expose:\n{extra}      capabilities:\n\
             \x20       solve: \"Solve an arithmetic word problem and return the number.\"\n"
        ),
    )?;
    Ok(path.to_string_lossy().into_owned())
}

fn solving(llm: &ScriptedLlm) {
    llm.push(Reply::ToolCalls(vec![ScriptedCall::new(
        "calculator",
        json!({"expression": "6 * 7"}),
    )]));
    llm.push(Reply::Text("42".into()));
}

async fn solve(session: &toolmesh::Session, tool: &str) -> anyhow::Result<Value> {
    let ctx = toolmesh::CallContext::with_timeout(std::time::Duration::from_secs(20));
    let result = session
        .call_tool(
            tool,
            json!({"task": "six times seven?"}).as_object().cloned(),
            &ctx,
        )
        .await?;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    Ok(result.structured_content.unwrap_or_default())
}

#[tokio::test]
async fn serve_exposes_configured_agents_beside_the_catalog() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([]).await?;
    solving(&llm);
    let dir = tempfile::tempdir()?;
    let config = exposed_config(dir.path(), &llm.base_url(), "")?;
    let gateway = support::Gateway::start(&["--config", &config]).await?;
    let session = gateway.session().await?;
    let ctx = toolmesh::CallContext::with_timeout(std::time::Duration::from_secs(10));
    let names: Vec<String> = session
        .list_tools(&ctx)
        .await?
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    assert!(
        names.contains(&"mathematician__solve".to_owned()),
        "{names:?}"
    );
    let answer = solve(&session, "mathematician__solve").await?;
    assert_eq!(answer["answer"], "42");
    assert_eq!(answer["steps"][0]["tool"], "calculator");
    assert_eq!(llm.request_count(), 2);
    Ok(())
}

#[tokio::test]
async fn agent_serve_serves_one_agent_alone_and_config_check_names_bad_capabilities()
-> anyhow::Result<()> {
    let llm = ScriptedLlm::start([]).await?;
    solving(&llm);
    let dir = tempfile::tempdir()?;
    let config = exposed_config(dir.path(), &llm.base_url(), "      prefix: true\n")?;
    let server = support::Gateway::start_command(
        &["agent", "serve"],
        "127.0.0.1:0",
        &["--config", &config, "--agent", "mathematician"],
    )
    .await?;
    let session = server.session().await?;
    let ctx = toolmesh::CallContext::with_timeout(std::time::Duration::from_secs(10));
    let tools = session.list_tools(&ctx).await?;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        ["mathematician__solve"],
        "only the agent, `prefix` honoured"
    );
    assert_eq!(
        solve(&session, "mathematician__solve").await?["answer"],
        "42"
    );

    std::fs::write(
        &config,
        "agents:\n  mathematician:\n    expose:\n      capabilities:\n        \"so lve\": x\n",
    )?;
    let (code, _, stderr) = support::run(&["config", "check", &config], &[]).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("agents.mathematician.expose") && stderr.contains("so lve"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn a_dead_replica_of_an_agent_server_is_routed_around_and_the_run_happens_once()
-> anyhow::Result<()> {
    let llm = ScriptedLlm::start([Reply::Text("answered by a replica".into())]).await?;
    let dir = tempfile::tempdir()?;
    let config = exposed_config(dir.path(), &llm.base_url(), "")?;
    let args = ["--config", config.as_str(), "--agent", "mathematician"];
    let replica = || support::Gateway::start_command(&["agent", "serve"], "127.0.0.1:0", &args);
    let (first, second) = (replica().await?, replica().await?);
    // A caller whose mesh has both replicas, the first preferred.
    let yaml = format!(
        "servers:\n  mathematician:\n    health_check: {{ interval: 100ms, timeout: 1s, failure_threshold: 1 }}\n    instances:\n      - {{ url: {}, id: first }}\n      - {{ url: {}, id: second, priority: 2 }}\n",
        first.url, second.url
    );
    let mesh = toolmesh::Mesh::start(
        &toolmesh::ConfigLoader::new()
            .without_env_overrides()
            .text("caller.yaml", toolmesh::Format::Yaml, yaml)
            .load()?,
    )
    .await?;
    assert!(
        mesh.registry()
            .catalog()
            .resolve("mathematician__solve")
            .is_some(),
        "the caller lists the agent's tool"
    );
    drop(first); // SIGKILL, reaped
    // A run may have started once a request is sent, so it is never repeated elsewhere:
    // the caller must see the replica gone (its session ended) to route around it.
    support::eventually(
        std::time::Duration::from_secs(30),
        "the caller to notice the dead replica",
        || async {
            mesh.registry()
                .instance_reports()
                .iter()
                .any(|r| r.instance.as_str() == "first" && (r.sessions == 0 || !r.healthy))
                .then_some(())
        },
    )
    .await?;
    let ctx = toolmesh::CallContext::with_timeout(std::time::Duration::from_secs(20));
    let routed = mesh
        .registry()
        .call(
            "mathematician__solve",
            json!({"task": "anything"}).as_object().cloned(),
            &ctx,
        )
        .await?;
    assert_eq!(
        routed.meta.instance.as_ref().map(|i| i.as_str()),
        Some("second")
    );
    assert_eq!(
        routed.result.structured_content.unwrap_or_default()["answer"],
        "answered by a replica"
    );
    assert_eq!(llm.request_count(), 1, "the run happened once");
    mesh.shutdown().await;
    Ok(())
}
