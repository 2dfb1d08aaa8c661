//! `toolmesh serve` with real third-party MCP software on both sides: the official
//! Python SDK client and the MCP Inspector CLI in front of it, and the reference npm
//! servers (everything, filesystem, memory) and a FastMCP server behind it.
//!
//! Needs the pinned peers in `target/peers` (`cargo xtask peers`).

#[path = "support/gateway.rs"]
mod support;

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use support::{FixtureConfig, Gateway};
use tokio::process::Command;
use toolmesh::{CallContext, Session};
use toolmesh_testkit::{
    peers::{
        ExternalServer, fastmcp, free_port, inspector_cli, python_client, server_everything,
        server_filesystem, server_memory,
    },
    process,
};

type TestResult = anyhow::Result<()>;

/// How long one run of a client peer (Python, Node) may take, start-up included.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(30))
}

/// Runs `program args` in `cwd` to completion and returns its stdout, or fails with its
/// stderr when it exits non-zero. It runs in a process group of its own, killed whole
/// when `CLIENT_TIMEOUT` passes or the test fails (with any server it started).
async fn run_client(program: &Path, args: &[String], cwd: Option<&Path>) -> anyhow::Result<String> {
    run_client_with(program, args, cwd, &[]).await
}

/// [`run_client`] with `env` set for the client.
async fn run_client_with(
    program: &Path,
    args: &[String],
    cwd: Option<&Path>,
    env: &[(&str, &Path)],
) -> anyhow::Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let shown = format!("{} {}", program.display(), args.join(" "));
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let _group = ProcessGroup(child.id());
    let output = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("`{shown}` did not finish within {CLIENT_TIMEOUT:?}"))?
        .with_context(|| format!("`{shown}` failed"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() {
        eprintln!("[{}] {}", program.display(), stderr.trim_end());
    }
    ensure!(
        output.status.success(),
        "`{shown}` failed with {}: {stderr}",
        output.status
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// Kills the process group led by the pid (if any) when dropped.
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The report of `tests/peers/py_client.py` (Python SDK) connecting to `url` in `mode`
/// and calling each tool with its arguments.
async fn python_sdk(url: &str, mode: &str, calls: &[(&str, Value)]) -> anyhow::Result<Value> {
    python_sdk_with(url, &["--mode", mode], calls).await
}

/// [`python_sdk`] with other options of the client (`--cancel-on-progress`).
async fn python_sdk_with(
    url: &str,
    options: &[&str],
    calls: &[(&str, Value)],
) -> anyhow::Result<Value> {
    let (python, mut args) = python_client()?;
    args.extend(options.iter().map(|o| (*o).to_owned()));
    args.push(url.to_owned());
    for (tool, arguments) in calls {
        args.push((*tool).to_owned());
        args.push(arguments.to_string());
    }
    let stdout = run_client(&python, &args, None).await?;
    serde_json::from_str(&stdout).with_context(|| format!("the Python client printed {stdout}"))
}

/// The JSON the Inspector CLI prints for `--method …` against `target`: a URL and
/// `--transport http`, or a command line it starts as a stdio server.
async fn inspector(target: &[&str], method: &[&str]) -> anyhow::Result<Value> {
    let (node, mut args, cwd) = inspector_cli()?;
    args.extend(target.iter().chain(method).map(|s| (*s).to_owned()));
    let stdout = run_client(&node, &args, Some(&cwd)).await?;
    serde_json::from_str(&stdout).with_context(|| format!("the Inspector printed {stdout}"))
}

/// The Python SDK over HTTPS, trusting only the certificate generated for the test.
#[tokio::test]
async fn python_sdk_client_calls_the_gateway_over_https() -> TestResult {
    let dir = tempfile::tempdir()?;
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, issued.cert.pem())?;
    std::fs::write(&key, issued.signing_key.serialize_pem())?;
    let config = dir.path().join("tls.yaml");
    std::fs::write(
        &config,
        format!(
            "gateway:\n  tls: {{ cert: \"{}\", key: \"{}\" }}\nservers:\n  math:\n    native: [calculator]\n",
            cert.display(),
            key.display()
        ),
    )?;
    let gateway = Gateway::with_config(&config, &["--no-watch"]).await?;
    assert!(gateway.url.starts_with("https://"), "{}", gateway.url);
    let (python, mut args) = python_client()?;
    args.extend([
        "--mode".to_owned(),
        "legacy".to_owned(),
        gateway.url.clone(),
        "math__calculator".to_owned(),
        json!({"expression": "6 * 7"}).to_string(),
    ]);
    let stdout =
        run_client_with(&python, &args, None, &[("SSL_CERT_FILE", cert.as_path())]).await?;
    let report: Value = serde_json::from_str(&stdout)?;
    assert_eq!(report["calls"][0]["text"], json!(["42"]), "{report}");
    Ok(())
}

/// `toolmesh agent serve` of a `mathematician` exposing `solve`, on the scripted model.
#[tokio::test]
async fn exposed_agents_answer_the_python_sdk_and_the_inspector() -> TestResult {
    use toolmesh_testkit::{Reply, ScriptedCall, ScriptedLlm};

    let calculate = |expression: &str| {
        Reply::ToolCalls(vec![ScriptedCall::new(
            "calculator",
            json!({ "expression": expression }),
        )])
    };
    let llm = ScriptedLlm::start([
        // Python SDK, answered.
        calculate("6 * 7"),
        Reply::text("42"),
        // Python SDK, cancelled at the first progress while the model thinks.
        calculate("1 + 1"),
        Reply::Delay(Duration::from_secs(60), Box::new(Reply::text("too late"))),
    ])
    .await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("agents.yaml");
    std::fs::write(
        &config,
        format!(
            "llm:\n  base_url: {}\n  model: scripted\n\
             agents:\n  mathematician:\n    instructions: Solve arithmetic with the calculator.\n\
             \x20   tools: [calculator]\n    expose:\n      capabilities:\n\
             \x20       solve: \"Solve an arithmetic word problem and return the number.\"\n",
            llm.base_url()
        ),
    )?;
    let config = config.to_str().context("non-UTF-8 path")?;
    let served = Gateway::start_command(
        &["agent", "serve"],
        "127.0.0.1:0",
        &["--config", config, "--agent", "mathematician"],
    )
    .await?;

    let answered = python_sdk(
        &served.url,
        "legacy",
        &[("solve", json!({"task": "What is six times seven?"}))],
    )
    .await?;
    let tool = reported_tool(&answered, "solve")?;
    assert_eq!(tool["required"], json!(["task"]), "{tool}");
    let call = &answered["calls"][0];
    assert_eq!(call["is_error"], false, "{call}");
    assert_eq!(call["text"], json!(["42"]), "{call}");
    assert_eq!(call["structured"]["answer"], "42", "{call}");
    assert_eq!(
        call["structured"]["steps"][0]["tool"], "calculator",
        "{call}"
    );
    assert_eq!(call["progress"][0]["progress"], 1.0, "{call}");
    assert_eq!(call["progress"][0]["total"], 10.0, "{call}");

    let cancelled = python_sdk_with(
        &served.url,
        &["--mode", "legacy", "--cancel-on-progress"],
        &[("solve", json!({"task": "1 + 1, slowly"}))],
    )
    .await?;
    let call = &cancelled["calls"][0];
    assert_eq!(call["cancelled"], true, "{call}");
    // The run ends on the cancel, while its second model call is pending.
    support::eventually(
        Duration::from_secs(20),
        "the cancelled run to end",
        || async {
            let (_, metrics) = served.get("/metrics").await.ok()?;
            metrics
                .lines()
                .any(|l| {
                    l.starts_with("toolmesh_agent_runs_total")
                        && l.contains("outcome=\"failed\"")
                        && l.ends_with(" 1")
                })
                .then_some(())
        },
    )
    .await?;
    // The cancel lands on the first progress, before or after the run's second model
    // request leaves (scheduling decides); a run that went on would make a third.
    let requests = llm.request_count();
    assert!(
        (3..=4).contains(&requests),
        "no model call after the cancel: {requests} requests"
    );
    // Inspector over HTTP, then over stdio; not after a delayed reply the cancelled run
    // never asked for.
    llm.discard_pending();
    llm.push(Reply::text("7"));
    llm.push(Reply::text("9"));

    let over_http = [served.url.as_str(), "--transport", "http"];
    let solve = [
        "--method",
        "tools/call",
        "--tool-name",
        "solve",
        "--tool-arg",
    ];
    let mut method = solve.to_vec();
    method.push("task=What is 3 + 4?");
    let called = inspector(&over_http, &method).await?;
    assert_eq!(texts(&called), ["7"], "{called}");
    assert_eq!(called["structuredContent"]["answer"], "7", "{called}");

    // Claude Desktop style: the client starts the agent server over stdio.
    let mut method = solve.to_vec();
    method.push("task=What is 4 + 5?");
    let piped = inspector(
        &[
            support::bin(),
            "agent",
            "serve",
            "--stdio",
            "--config",
            config,
            "--agent",
            "mathematician",
            "-q",
        ],
        &method,
    )
    .await?;
    assert_eq!(texts(&piped), ["9"], "{piped}");
    Ok(())
}

/// The tool named `name` in a Python client report.
fn reported_tool<'a>(report: &'a Value, name: &str) -> anyhow::Result<&'a Value> {
    report["tools"]
        .as_array()
        .and_then(|tools| tools.iter().find(|t| t["name"] == name))
        .with_context(|| format!("no {name} in {report}"))
}

/// A `tools/call` result (any client's JSON) as its text blocks.
fn texts(result: &Value) -> Vec<&str> {
    result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|block| block["text"].as_str())
        .collect()
}

/// A gateway fronting one fixture instance `id` as the service `fixture` (the fixture
/// and its configuration live as long as the second value).
async fn fronting_fixture(id: &str) -> anyhow::Result<(Gateway, FixtureConfig)> {
    let served = FixtureConfig::start(id).await?;
    let gateway = Gateway::with_config(&served.path, &["--no-watch"]).await?;
    Ok((gateway, served))
}

#[tokio::test]
async fn python_sdk_client_lists_and_calls_the_native_tools() -> TestResult {
    let gateway = Gateway::start(&[]).await?;
    let calls = [
        ("native__calculator", json!({"expression": "2 * (3 + 4)"})),
        ("native__no_such_tool", json!({})),
        ("native__calculator", json!({})),
    ];
    // The classic initialize handshake, and the SDK's default (`server/discover` first).
    for mode in ["legacy", "auto"] {
        let report = python_sdk(&gateway.url, mode, &calls).await?;
        assert_eq!(report["server"]["name"], "toolmesh", "{mode}: {report}");
        assert!(
            report["protocol"].as_str().is_some_and(|p| p.len() == 10),
            "{mode}: {report}"
        );
        assert_eq!(
            reported_tool(&report, "native__calculator")?["required"],
            json!(["expression"]),
            "{mode}"
        );
        reported_tool(&report, "native__time_now")?;

        let [sum, unknown, missing] = report["calls"]
            .as_array()
            .and_then(|c| <[Value; 3]>::try_from(c.clone()).ok())
            .with_context(|| format!("{mode}: three call results expected in {report}"))?;
        assert_eq!(sum["is_error"], false, "{mode}: {sum}");
        assert_eq!(sum["text"], json!(["14"]), "{mode}: {sum}");
        assert_eq!(sum["structured"]["result"], 14.0, "{mode}: {sum}");
        assert_eq!(unknown["error"]["code"], -32602, "{mode}: {unknown}");
        assert!(
            unknown["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("no tool named `native__no_such_tool`")),
            "{mode}: {unknown}"
        );
        assert_eq!(missing["error"]["code"], -32602, "{mode}: {missing}");
        assert!(
            missing["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("`expression`")),
            "{mode}: {missing}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn python_sdk_client_calls_a_fronted_server() -> TestResult {
    let (gateway, _fixture) = fronting_fixture("py-sdk").await?;

    let report = python_sdk(
        &gateway.url,
        "legacy",
        &[
            ("fixture__echo", json!({"message": "through the gateway"})),
            ("fixture__add", json!({"a": 2, "b": 3.5})),
            ("fixture__fail", json!({"reason": "on purpose"})),
        ],
    )
    .await?;
    assert_eq!(
        reported_tool(&report, "fixture__echo")?["required"],
        json!(["message"])
    );
    let calls = &report["calls"];
    assert_eq!(calls[0]["is_error"], false, "{report}");
    assert_eq!(calls[0]["text"], json!(["through the gateway"]), "{report}");
    // The upstream instance answered, and its structured content came through whole.
    assert_eq!(calls[0]["structured"]["instance"], "py-sdk", "{report}");
    assert_eq!(calls[1]["text"], json!(["5.5"]), "{report}");
    assert_eq!(calls[1]["structured"]["sum"], 5.5, "{report}");
    // An upstream tool error stays a result with isError, not a protocol error.
    assert_eq!(calls[2]["is_error"], true, "{report}");
    assert_eq!(calls[2]["text"], json!(["on purpose"]), "{report}");
    Ok(())
}

#[tokio::test]
async fn inspector_cli_lists_and_calls_tools() -> TestResult {
    let gateway = Gateway::start(&[]).await?;
    let over_http = [gateway.url.as_str(), "--transport", "http"];
    let listed = inspector(&over_http, &["--method", "tools/list"]).await?;
    let calculator = listed["tools"]
        .as_array()
        .and_then(|tools| tools.iter().find(|t| t["name"] == "native__calculator"))
        .with_context(|| format!("no native__calculator in {listed}"))?;
    assert_eq!(calculator["inputSchema"]["type"], "object", "{calculator}");
    assert_eq!(
        calculator["inputSchema"]["required"],
        json!(["expression"]),
        "{calculator}"
    );

    let called = inspector(
        &over_http,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "native__calculator",
            "--tool-arg",
            "expression=6 * 7",
        ],
    )
    .await?;
    assert_eq!(called["isError"], false, "{called}");
    assert_eq!(texts(&called), ["42"], "{called}");
    assert_eq!(called["structuredContent"]["result"], 42, "{called}");

    // The gateway over stdio, started by the Inspector.
    let piped = inspector(
        &[support::bin(), "serve", "--stdio", "-q"],
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "native__calculator",
            "--tool-arg",
            "expression=2^10",
        ],
    )
    .await?;
    assert_eq!(texts(&piped), ["1024"], "{piped}");

    // Through to a fronted server. `b=.5` is no JSON, so the Inspector converts it by
    // the input schema the gateway relays: a string would be refused as invalid params.
    let (fronting, _fixture) = fronting_fixture("inspected").await?;
    let added = inspector(
        &[fronting.url.as_str(), "--transport", "http"],
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "fixture__add",
            "--tool-arg",
            "a=40",
            "b=.5",
        ],
    )
    .await?;
    assert_eq!(added["isError"], false, "{added}");
    assert_eq!(texts(&added), ["40.5"], "{added}");
    assert_eq!(
        added["structuredContent"]["instance"], "inspected",
        "{added}"
    );
    Ok(())
}

/// Kills what a gateway started (its stdio servers) when dropped, even if the test
/// failed before the gateway stopped them: a SIGKILLed gateway would leave them running.
/// Declare it after the [`Gateway`] so it drops first.
struct Descendants {
    root: u32,
    /// Processes seen under `root`, by pid and start time (so a reused pid is left alone).
    seen: HashSet<(u32, u64)>,
}

impl Descendants {
    fn of(root: u32) -> Self {
        Self {
            root,
            seen: HashSet::new(),
        }
    }

    /// The current processes under the root (recorded for the drop), by pid.
    fn list(&mut self) -> Vec<u32> {
        let found = descendants(self.root);
        self.seen.extend(found.iter().copied());
        found.into_iter().map(|(pid, _)| pid).collect()
    }
}

impl Drop for Descendants {
    fn drop(&mut self) {
        // Freeze the gateway so it respawns nothing, then kill everything under it;
        // the `Gateway` guard kills and reaps the gateway itself afterwards.
        signal("STOP", self.root);
        self.list();
        for (pid, started) in &self.seen {
            if stat(*pid).is_some_and(|(_, s)| s == *started) {
                signal("KILL", *pid);
            }
        }
    }
}

fn signal(name: &str, pid: u32) {
    let _ = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Parent pid and start time of `pid`, from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the parenthesised command: state, ppid, … starttime (field 22 overall).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.get(1)?.parse().ok()?, fields.get(19)?.parse().ok()?))
}

/// Every live process below `root` in the process tree, with its start time.
fn descendants(root: u32) -> Vec<(u32, u64)> {
    let mut children: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some((parent, started)) = stat(pid) {
            children.entry(parent).or_default().push((pid, started));
        }
    }
    let mut found = Vec::new();
    let mut next = vec![root];
    while let Some(parent) = next.pop() {
        for &(pid, started) in children.get(&parent).into_iter().flatten() {
            found.push((pid, started));
            next.push(pid);
        }
    }
    found
}

/// A YAML string (JSON is YAML): paths and commands go in quoted.
fn quoted(text: impl AsRef<str>) -> String {
    Value::from(text.as_ref()).to_string()
}

/// `command: [program, args...]` of a peer.
fn command_line((program, args): (PathBuf, Vec<String>)) -> String {
    let mut all = vec![quoted(program.to_string_lossy())];
    all.extend(args.iter().map(quoted));
    format!("[{}]", all.join(", "))
}

/// Calls `tool` and returns its result as JSON, failing on a protocol error or isError.
async fn call_ok(session: &Session, tool: &str, arguments: Value) -> anyhow::Result<Value> {
    let result = call(session, tool, arguments).await?;
    ensure!(result["isError"] != true, "{tool} failed: {result}");
    Ok(result)
}

/// Calls `tool` and returns its result as JSON (isError included).
async fn call(session: &Session, tool: &str, arguments: Value) -> anyhow::Result<Value> {
    let result = session
        .call_tool(tool, arguments.as_object().cloned(), &ctx())
        .await
        .with_context(|| format!("calling {tool}"))?;
    Ok(serde_json::to_value(result)?)
}

#[tokio::test]
async fn one_gateway_fronts_everything_filesystem_memory_and_fastmcp() -> TestResult {
    let port = free_port()?;
    let (python, args) = fastmcp(&["--http", "--port", &port.to_string()])?;
    let python_peer = ExternalServer::start(python, args, &[], port).await?;

    let dir = tempfile::tempdir()?;
    let files = dir.path().join("files");
    std::fs::create_dir(&files)?;
    // The filesystem server resolves symlinks: give it the canonical path.
    let files = files.canonicalize()?;
    let note = files.join("note.txt");
    std::fs::write(&note, "toolmesh read this through server-filesystem\n")?;
    let secret = dir.path().join("outside.txt");
    std::fs::write(&secret, "not for the filesystem server")?;
    let memory_file = dir.path().join("memory.jsonl");

    // Slow starts on a busy machine are no failure: generous connect timeouts.
    let stdio = |name: &str, peer: (PathBuf, Vec<String>)| {
        format!(
            "  {name}:\n    connect_timeout: 60s\n    command: {}\n",
            command_line(peer)
        )
    };
    let yaml = [
        "defaults:\n  timeout: 30s\nservers:\n".to_owned(),
        stdio("everything", server_everything(&[])?),
        stdio("filesystem", server_filesystem(&[&files])?),
        stdio("memory", server_memory()?),
        format!(
            "    env: {{ MEMORY_FILE_PATH: {} }}\n",
            quoted(memory_file.to_string_lossy())
        ),
        format!("  python:\n    url: {}\n", quoted(python_peer.url("/mcp"))),
    ]
    .concat();
    let config = dir.path().join("toolmesh.yaml");
    std::fs::write(&config, &yaml)?;
    let mut gateway = Gateway::with_config(&config, &["--no-watch"]).await?;
    let mut upstream = Descendants::of(gateway.pid());
    let session = gateway.session().await?;

    let tools = session.list_tools(&ctx()).await?;
    let names: HashSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "everything__echo",
        "everything__get-sum",
        "filesystem__read_text_file",
        "filesystem__write_file",
        "memory__create_entities",
        "memory__read_graph",
        "python__echo",
        "python__add",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }

    // server-everything (stdio, Node).
    let echoed = call_ok(&session, "everything__echo", json!({"message": "hi npm"})).await?;
    assert_eq!(texts(&echoed), ["Echo: hi npm"], "{echoed}");
    let sum = call_ok(&session, "everything__get-sum", json!({"a": 19, "b": 23})).await?;
    assert!(texts(&sum).concat().contains("42"), "{sum}");
    // Output schemas, structured content and image blocks come through whole.
    let weather_tool = tools
        .iter()
        .find(|t| t.name == "everything__get-structured-content")
        .context("no everything__get-structured-content")?;
    let weather_tool = serde_json::to_value(weather_tool)?;
    assert_eq!(
        weather_tool["outputSchema"]["type"], "object",
        "{weather_tool}"
    );
    let weather = call_ok(
        &session,
        "everything__get-structured-content",
        json!({"location": "New York"}),
    )
    .await?;
    assert!(
        weather["structuredContent"]["temperature"].is_number(),
        "{weather}"
    );
    let image = call_ok(&session, "everything__get-tiny-image", json!({})).await?;
    let block = image["content"]
        .as_array()
        .and_then(|c| c.iter().find(|b| b["type"] == "image"))
        .with_context(|| format!("no image block in {image}"))?;
    assert_eq!(block["mimeType"], "image/png", "{block}");
    assert!(
        block["data"].as_str().is_some_and(|d| d.len() > 100),
        "{block}"
    );

    // server-filesystem: reads the file, writes one the test then finds on disk, and
    // refuses a path outside its directory with a tool error.
    let read = call_ok(
        &session,
        "filesystem__read_text_file",
        json!({"path": note.to_string_lossy()}),
    )
    .await?;
    assert_eq!(
        texts(&read),
        ["toolmesh read this through server-filesystem\n"],
        "{read}"
    );
    let written = files.join("written.txt");
    call_ok(
        &session,
        "filesystem__write_file",
        json!({"path": written.to_string_lossy(), "content": "via the gateway"}),
    )
    .await?;
    assert_eq!(std::fs::read_to_string(&written)?, "via the gateway");
    let denied = call(
        &session,
        "filesystem__read_text_file",
        json!({"path": secret.to_string_lossy()}),
    )
    .await?;
    assert_eq!(denied["isError"], true, "{denied}");
    assert!(
        !texts(&denied)
            .concat()
            .contains("not for the filesystem server"),
        "{denied}"
    );

    // server-memory: an entity created in one call is in the graph the next call reads,
    // and in the file the configuration's `env` pointed the server at.
    call_ok(
        &session,
        "memory__create_entities",
        json!({"entities": [{
            "name": "toolmesh",
            "entityType": "gateway",
            "observations": ["fronts four MCP servers"],
        }]}),
    )
    .await?;
    let graph = call_ok(&session, "memory__read_graph", json!({})).await?;
    let graph_text = texts(&graph).concat();
    assert!(
        graph_text.contains("\"toolmesh\"") && graph_text.contains("fronts four MCP servers"),
        "{graph}"
    );
    let stored = std::fs::read_to_string(&memory_file)
        .with_context(|| format!("server-memory wrote no {}", memory_file.display()))?;
    assert!(stored.contains("fronts four MCP servers"), "{stored}");

    // FastMCP over streamable HTTP.
    let echoed = call_ok(&session, "python__echo", json!({"message": "hi pypi"})).await?;
    assert_eq!(texts(&echoed), ["hi pypi"], "{echoed}");
    let added = call_ok(&session, "python__add", json!({"a": 40, "b": 2})).await?;
    assert_eq!(texts(&added), ["42"], "{added}");
    let failed = call(&session, "python__fail", json!({"reason": "as asked"})).await?;
    assert_eq!(failed["isError"], true, "{failed}");
    assert!(texts(&failed).concat().contains("as asked"), "{failed}");

    // The Python SDK, in a session of its own, through the gateway to the Node servers:
    // it checks the structured content against the output schema the gateway relays,
    // and sees the entity the first session created.
    let report = python_sdk(
        &gateway.url,
        "legacy",
        &[
            (
                "everything__get-structured-content",
                json!({"location": "Chicago"}),
            ),
            ("memory__open_nodes", json!({"names": ["toolmesh"]})),
        ],
    )
    .await?;
    let calls = &report["calls"];
    assert_eq!(calls[0]["is_error"], false, "{report}");
    assert!(calls[0]["structured"]["conditions"].is_string(), "{report}");
    assert!(
        calls[1]["text"][0]
            .as_str()
            .is_some_and(|t| t.contains("fronts four MCP servers")),
        "{report}"
    );

    // A graceful stop closes the three stdio servers it started.
    let children = upstream.list();
    assert_eq!(
        children.len(),
        3,
        "stdio servers under the gateway: {children:?}"
    );
    session.close(Duration::from_secs(1)).await;
    let exit = gateway.terminate(Duration::from_secs(30)).await?;
    assert!(exit.success(), "toolmesh exited with {exit}");
    for pid in children {
        // Gone, or a zombie of an init that does not reap (containers): it exited.
        support::eventually(Duration::from_secs(10), "the stdio servers to exit", || {
            std::future::ready(matches!(process::state(pid), None | Some('Z')).then_some(()))
        })
        .await?;
    }
    Ok(())
}
