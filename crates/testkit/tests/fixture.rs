//! End-to-end tests of `toolmesh-fixture`: real processes, rmcp clients.

#![allow(
    deprecated,
    reason = "logging notifications are deprecated by SEP-2577 but the fixture still sends them"
)]

use std::{future::Future, path::Path, time::Duration};

use anyhow::{Context, bail, ensure};
use futures::{SinkExt, StreamExt};
use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResult, ClientJsonRpcMessage, ErrorCode,
        GetPromptRequestParams, LoggingMessageNotificationParam, ProgressNotificationParam,
        ReadResourceRequestParams, ResourceContents, ServerJsonRpcMessage,
    },
    service::{NotificationContext, RunningService, ServiceError},
    transport::{
        ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess,
        streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use toolmesh_testkit::{FixtureOptions, FixtureServer, stdio_command};

const FIXTURE: &str = env!("CARGO_BIN_EXE_toolmesh-fixture");
const LIMIT: Duration = Duration::from_secs(10);

/// Every wait in these tests goes through here.
async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(LIMIT, fut)
        .await
        .with_context(|| format!("timed out after {LIMIT:?}: {what}"))
}

/// Notifications the client saw.
#[derive(Debug)]
enum Seen {
    ToolListChanged,
    Progress(ProgressNotificationParam),
    Log(LoggingMessageNotificationParam),
}

/// A client handler that forwards notifications into a channel.
#[derive(Clone)]
struct Recorder(mpsc::UnboundedSender<Seen>);

impl Recorder {
    fn new() -> (Self, mpsc::UnboundedReceiver<Seen>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }
}

impl ClientHandler for Recorder {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        let _ = self.0.send(Seen::ToolListChanged);
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(Seen::Progress(params));
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(Seen::Log(params));
    }
}

type Client<H> = RunningService<RoleClient, H>;

async fn stdio_client<H: ClientHandler>(handler: H, args: &[&str]) -> anyhow::Result<Client<H>> {
    let command = tokio::process::Command::new(FIXTURE).configure(|cmd| {
        cmd.arg("--stdio").args(args);
    });
    let transport = TokioChildProcess::new(command)?;
    Ok(bounded("stdio initialize", handler.serve(transport)).await??)
}

fn http_config(url: &str, bearer: Option<&str>) -> StreamableHttpClientTransportConfig {
    let config = StreamableHttpClientTransportConfig::with_uri(url);
    match bearer {
        Some(token) => config.auth_header(token),
        None => config,
    }
}

async fn http_client<H: ClientHandler>(
    handler: H,
    url: &str,
    bearer: Option<&str>,
) -> anyhow::Result<Client<H>> {
    let transport = StreamableHttpClientTransport::from_config(http_config(url, bearer));
    Ok(bounded("http initialize", handler.serve(transport)).await??)
}

async fn call<H: ClientHandler>(
    client: &Client<H>,
    tool: &'static str,
    args: Value,
) -> anyhow::Result<Result<CallToolResult, ServiceError>> {
    let mut params = CallToolRequestParams::new(tool);
    if let Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    bounded(tool, client.call_tool(params)).await
}

async fn call_ok<H: ClientHandler>(
    client: &Client<H>,
    tool: &'static str,
    args: Value,
) -> anyhow::Result<CallToolResult> {
    let result = call(client, tool, args)
        .await?
        .with_context(|| format!("{tool} failed"))?;
    ensure!(
        result.is_error != Some(true),
        "{tool} returned a tool error: {result:?}"
    );
    Ok(result)
}

fn text(result: &CallToolResult) -> anyhow::Result<&str> {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.as_str())
        .with_context(|| format!("no text content in {result:?}"))
}

fn field<'a>(result: &'a CallToolResult, key: &str) -> anyhow::Result<&'a Value> {
    result
        .structured_content
        .as_ref()
        .and_then(|s| s.get(key))
        .with_context(|| format!("no structured `{key}` in {result:?}"))
}

fn mcp_error(result: Result<CallToolResult, ServiceError>) -> anyhow::Result<rmcp::ErrorData> {
    match result {
        Err(ServiceError::McpError(error)) => Ok(error),
        other => bail!("expected a JSON-RPC error, got {other:?}"),
    }
}

/// Wait until `pid` is no longer a fixture process: `/proc/<pid>` is gone, or
/// the pid now belongs to something else. A zombie counts as not reaped.
/// (`/proc` is Linux-only.)
async fn wait_reaped(pid: u32) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok();
        let Some(status) = status else {
            return Ok(());
        };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        let (name, state) = (field("Name:"), field("State:"));
        if !name.starts_with("toolmesh-fixtur") && !state.starts_with('Z') {
            return Ok(()); // pid reused by an unrelated process
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("pid {pid} ({name}) still present after 5 s in state {state}");
        }
    }
}

#[tokio::test]
async fn stdio_lists_tools_and_runs_them() -> anyhow::Result<()> {
    let client = stdio_client((), &["--instance-id", "s1"]).await?;

    let tools = bounded("list tools", client.list_all_tools()).await??;
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "add", "ask", "counter", "echo", "fail", "flaky", "large", "progress", "sleep"
        ]
    );
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .context(name.to_owned())
    };
    let counter = tool("counter")?
        .annotations
        .clone()
        .context("counter annotations")?;
    assert_eq!(counter.read_only_hint, Some(false));
    assert_eq!(counter.idempotent_hint, Some(false));
    assert_eq!(counter.destructive_hint, Some(false));
    let echo = tool("echo")?
        .annotations
        .clone()
        .context("echo annotations")?;
    assert_eq!(echo.read_only_hint, Some(true));
    assert_eq!(echo.idempotent_hint, Some(true));

    let result = call_ok(&client, "echo", json!({ "message": "hi there" })).await?;
    assert_eq!(text(&result)?, "hi there");
    assert_eq!(field(&result, "instance")?, "s1");
    assert_eq!(field(&result, "message")?, "hi there");

    for expected in 1..=3u64 {
        let result = call_ok(&client, "counter", json!({})).await?;
        assert_eq!(text(&result)?, expected.to_string());
        assert_eq!(field(&result, "count")?, expected);
        assert_eq!(field(&result, "instance")?, "s1");
    }

    let result = call(&client, "fail", json!({ "reason": "nope" })).await??;
    assert_eq!(result.is_error, Some(true));
    assert_eq!(text(&result)?, "nope");
    assert_eq!(field(&result, "instance")?, "s1");

    let result = call_ok(&client, "add", json!({ "a": 2, "b": 0.5 })).await?;
    assert_eq!(text(&result)?, "2.5");

    let result = call_ok(&client, "large", json!({ "bytes": 100_000 })).await?;
    let body = text(&result)?;
    assert_eq!(body.len(), 100_000);
    assert!(body.bytes().all(|b| b == b'x'));

    let result = call_ok(&client, "sleep", json!({ "ms": 20 })).await?;
    assert_eq!(text(&result)?, "slept 20ms");
    // The server's own clock: the sleep ended at least 20 ms after it started.
    let (started, ended) = (field(&result, "started_us")?, field(&result, "ended_us")?);
    let (started, ended) = (started.as_u64().unwrap_or(0), ended.as_u64().unwrap_or(0));
    assert!(
        started > 0 && ended >= started + 20_000,
        "{started} {ended}"
    );

    let error = mcp_error(call(&client, "flaky", json!({ "p": 1.0 })).await?)?;
    assert_eq!(error.code, ErrorCode::INTERNAL_ERROR);
    assert!(error.message.contains("flaky failure"));
    let result = call_ok(&client, "flaky", json!({ "p": 0.0 })).await?;
    assert_eq!(field(&result, "ok")?, true);

    let read = bounded(
        "read resource",
        client.read_resource(ReadResourceRequestParams::new("fixture://info")),
    )
    .await??;
    match read.contents.first() {
        Some(ResourceContents::TextResourceContents { text, .. }) => {
            assert_eq!(text, "toolmesh fixture s1");
        }
        other => bail!("unexpected resource contents {other:?}"),
    }

    let mut args = serde_json::Map::new();
    args.insert("name".to_owned(), json!("Ada"));
    let prompt = bounded(
        "get prompt",
        client.get_prompt(GetPromptRequestParams::new("greet").with_arguments(args)),
    )
    .await??;
    let message = prompt.messages.first().context("no prompt message")?;
    assert_eq!(
        message.content.as_text().map(|t| t.text.as_str()),
        Some("Hello, Ada!")
    );

    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn stdio_progress_sends_progress_and_logging() -> anyhow::Result<()> {
    let (recorder, mut seen) = Recorder::new();
    let client = stdio_client(recorder, &[]).await?;
    let result = call_ok(&client, "progress", json!({ "steps": 3 })).await?;
    assert_eq!(text(&result)?, "done 3 steps");

    let mut progress = Vec::new();
    let mut logs = Vec::new();
    while progress.len() < 3 || logs.len() < 3 {
        match bounded("progress notifications", seen.recv()).await? {
            Some(Seen::Progress(p)) => progress.push(p),
            Some(Seen::Log(l)) => logs.push(l),
            Some(Seen::ToolListChanged) => {}
            None => bail!("client closed"),
        }
    }
    for (i, p) in progress.iter().enumerate() {
        let step = i + 1;
        assert_eq!(p.progress, step as f64);
        assert_eq!(p.total, Some(3.0));
        assert_eq!(
            p.message.as_deref(),
            Some(format!("step {step}/3").as_str())
        );
    }
    for (i, l) in logs.iter().enumerate() {
        assert_eq!(l.logger.as_deref(), Some("fixture"));
        assert_eq!(l.data, json!(format!("step {}/3", i + 1)));
    }
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn stdio_crash_after_closes_the_transport() -> anyhow::Result<()> {
    let client = stdio_client((), &["--crash-after", "2"]).await?;
    call_ok(&client, "echo", json!({ "message": "one" })).await?;
    match call(&client, "echo", json!({ "message": "two" })).await? {
        Err(ServiceError::TransportClosed) => {}
        other => bail!("expected TransportClosed, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn stdio_command_runs_the_fixture() -> anyhow::Result<()> {
    let (program, args) = stdio_command(&FixtureOptions::new().instance_id("cmd"));
    assert_eq!(args.first().map(String::as_str), Some("--stdio"));
    let command = tokio::process::Command::new(program).configure(|cmd| {
        cmd.args(&args);
    });
    let client = bounded("initialize", ().serve(TokioChildProcess::new(command)?)).await??;
    let result = call_ok(&client, "echo", json!({ "message": "x" })).await?;
    assert_eq!(field(&result, "instance")?, "cmd");
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn http_echo_and_injected_faults() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new().instance_id("h1")).await?;
    assert!(server.http_url().starts_with("http://127.0.0.1:"));
    assert!(server.http_url().ends_with("/mcp"));
    assert!(server.ws_url().ends_with("/ws"));
    let client = http_client((), server.http_url(), None).await?;
    let result = call_ok(&client, "echo", json!({ "message": "over http" })).await?;
    assert_eq!(text(&result)?, "over http");
    assert_eq!(field(&result, "instance")?, "h1");
    client.cancel().await?;

    let failing = FixtureServer::start(FixtureOptions::new().fail_rate(1.0)).await?;
    let client = http_client((), failing.http_url(), None).await?;
    let error = mcp_error(call(&client, "echo", json!({ "message": "x" })).await?)?;
    assert_eq!(error.code, ErrorCode::INTERNAL_ERROR);
    assert!(error.message.contains("injected failure"), "{error:?}");
    client.cancel().await?;

    let slow = FixtureServer::start(FixtureOptions::new().latency_ms(200)).await?;
    let client = http_client((), slow.http_url(), None).await?;
    let started = std::time::Instant::now();
    call_ok(&client, "echo", json!({ "message": "x" })).await?;
    assert!(started.elapsed() >= Duration::from_millis(200));
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn http_require_bearer() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new().require_bearer("s3cret")).await?;
    for bearer in [None, Some("nope")] {
        let transport =
            StreamableHttpClientTransport::from_config(http_config(server.http_url(), bearer));
        let outcome = bounded("unauthorized connect", ().serve(transport)).await?;
        assert!(outcome.is_err(), "connect with bearer {bearer:?} succeeded");
    }

    let client = http_client((), server.http_url(), Some("s3cret")).await?;
    call_ok(&client, "echo", json!({ "message": "authorized" })).await?;
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn http_tools_changed_notifies_and_lists_extra() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new().tools_changed_after(1)).await?;
    let (recorder, mut seen) = Recorder::new();
    let client = http_client(recorder, server.http_url(), None).await?;
    let before = bounded("list tools", client.list_all_tools()).await??;
    assert!(!before.iter().any(|t| t.name == "extra"));

    call_ok(&client, "counter", json!({})).await?;
    loop {
        match bounded("tools/list_changed", seen.recv()).await? {
            Some(Seen::ToolListChanged) => break,
            Some(_) => {}
            None => bail!("client closed"),
        }
    }
    let after = bounded("list tools", client.list_all_tools()).await??;
    assert!(after.iter().any(|t| t.name == "extra"), "{after:?}");
    let result = call_ok(&client, "extra", json!({})).await?;
    assert_eq!(text(&result)?, "extra");
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn dropping_the_server_reaps_the_process() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let pid = server.pid();
    ensure!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "fixture not running"
    );
    drop(server);
    wait_reaped(pid).await
}

#[tokio::test]
async fn restart_keeps_the_port_and_options() -> anyhow::Result<()> {
    let mut server = FixtureServer::start(FixtureOptions::new().instance_id("r")).await?;
    let (port, url, old_pid) = (
        server.http_port(),
        server.http_url().to_owned(),
        server.pid(),
    );
    let client = http_client((), &url, None).await?;
    call_ok(&client, "echo", json!({ "message": "before" })).await?;

    server.restart().await?;
    assert_eq!(server.http_port(), port);
    assert_eq!(server.http_url(), url);
    assert_ne!(server.pid(), old_pid);
    wait_reaped(old_pid).await?;

    let fresh = http_client((), &url, None).await?;
    let result = call_ok(&fresh, "counter", json!({})).await?;
    assert_eq!(
        field(&result, "count")?,
        1,
        "the restarted process starts from scratch"
    );
    assert_eq!(field(&result, "instance")?, "r");
    fresh.cancel().await?;
    let _ = bounded("old client close", client.cancel()).await?;

    server.kill().await;
    wait_reaped(server.pid()).await
}

/// rmcp over a tokio-tungstenite client socket: one text frame per message.
async fn ws_client<H: ClientHandler>(
    handler: H,
    url: &str,
    bearer: Option<&str>,
) -> anyhow::Result<Client<H>> {
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

    let mut request = url.into_client_request()?;
    if let Some(token) = bearer {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let (socket, _) = bounded("ws connect", tokio_tungstenite::connect_async(request)).await??;
    let (sink, stream) = socket.split();
    let sink = Box::pin(sink.sink_map_err(std::io::Error::other).with(
        |message: ClientJsonRpcMessage| {
            futures::future::ready(
                serde_json::to_string(&message)
                    .map(|text| Message::Text(text.into()))
                    .map_err(std::io::Error::other),
            )
        },
    ));
    let stream = Box::pin(
        stream
            .take_while(|frame| {
                futures::future::ready(matches!(
                    frame,
                    Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))
                ))
            })
            .filter_map(|frame| {
                futures::future::ready(match frame {
                    Ok(Message::Text(text)) => {
                        serde_json::from_str::<ServerJsonRpcMessage>(&text).ok()
                    }
                    _ => None,
                })
            }),
    );
    Ok(bounded("ws initialize", handler.serve((sink, stream))).await??)
}

#[tokio::test]
async fn websocket_sessions_share_process_state() -> anyhow::Result<()> {
    let server =
        FixtureServer::start(FixtureOptions::new().instance_id("w").require_bearer("t")).await?;
    assert!(server.ws_url().starts_with("ws://127.0.0.1:"));

    let refused = tokio_tungstenite::connect_async(server.ws_url()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.as_bytes()),
                Some(&b"Bearer"[..])
            );
        }
        other => bail!("expected HTTP 401, got {other:?}"),
    }

    let (recorder, mut seen) = Recorder::new();
    let a = ws_client(recorder, server.ws_url(), Some("t")).await?;
    let b = ws_client((), server.ws_url(), Some("t")).await?;
    let result = call_ok(&a, "echo", json!({ "message": "over ws" })).await?;
    assert_eq!(text(&result)?, "over ws");
    assert_eq!(field(&result, "instance")?, "w");
    assert_eq!(
        field(&call_ok(&a, "counter", json!({})).await?, "count")?,
        1
    );
    assert_eq!(
        field(&call_ok(&b, "counter", json!({})).await?, "count")?,
        2
    );

    // Progress notifications travel over the socket too.
    call_ok(&a, "progress", json!({ "steps": 2 })).await?;
    let mut progress = 0;
    while progress < 2 {
        if let Seen::Progress(_) = bounded("ws progress", seen.recv())
            .await?
            .context("closed")?
        {
            progress += 1;
        }
    }

    // HTTP is served on the same process: the counter is shared.
    let http = http_client((), server.http_url(), Some("t")).await?;
    assert_eq!(
        field(&call_ok(&http, "counter", json!({})).await?, "count")?,
        3
    );
    http.cancel().await?;
    a.cancel().await?;
    b.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn cancelling_sleep_ends_it_early() -> anyhow::Result<()> {
    use rmcp::{
        model::{ClientRequest, Request},
        service::PeerRequestOptions,
    };

    // The `extra` tool appears once one call has *completed*: seeing the
    // notification proves the 60 s sleep stopped when it was cancelled.
    let (recorder, mut seen) = Recorder::new();
    let client = stdio_client(recorder, &["--tools-changed-after", "1"]).await?;
    let mut params = CallToolRequestParams::new("sleep");
    if let Value::Object(map) = json!({ "ms": 60_000 }) {
        params = params.with_arguments(map);
    }
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::no_options(),
        )
        .await?;
    handle.cancel(Some("test".to_owned())).await?;
    loop {
        match bounded("sleep to end after cancel", seen.recv()).await? {
            Some(Seen::ToolListChanged) => break,
            Some(_) => {}
            None => bail!("client closed"),
        }
    }
    client.cancel().await?;
    Ok(())
}

#[tokio::test]
async fn http_progress_rides_the_request_stream() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let (recorder, mut seen) = Recorder::new();
    let client = http_client(recorder, server.http_url(), None).await?;
    let result = call_ok(&client, "progress", json!({ "steps": 4 })).await?;
    assert_eq!(text(&result)?, "done 4 steps");
    let mut steps = Vec::new();
    while steps.len() < 4 {
        if let Seen::Progress(p) = bounded("http progress", seen.recv())
            .await?
            .context("closed")?
        {
            steps.push(p.progress);
        }
    }
    assert_eq!(steps, [1.0, 2.0, 3.0, 4.0]);
    client.cancel().await?;
    Ok(())
}
