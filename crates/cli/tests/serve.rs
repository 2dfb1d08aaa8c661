//! `toolmesh serve` as a real process: the native default, the HTTP edge, protocol
//! errors, argument validation, limits and shutdown.

#[path = "support/gateway.rs"]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{FixtureConfig, Gateway};
use toolmesh::{CallContext, CallError};

type TestResult = anyhow::Result<()>;

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(10))
}

fn args(value: Value) -> Option<toolmesh::layers::core::JsonObject> {
    value.as_object().cloned()
}

#[tokio::test]
async fn without_config_it_serves_the_native_tools_and_the_operational_endpoints() -> TestResult {
    let gateway = Gateway::start(&[]).await?;
    assert!(
        gateway.url.starts_with("http://127.0.0.1:"),
        "{}",
        gateway.url
    );

    let session = gateway.session().await?;
    let info = session
        .server_info()
        .server_info
        .as_ref()
        .map(|i| i.name.as_str());
    assert_eq!(info, Some("toolmesh"));
    let tools = session.list_tools(&ctx()).await?;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"native__calculator"), "{names:?}");
    assert!(names.contains(&"native__time_now"), "{names:?}");

    let result = session
        .call_tool(
            "native__calculator",
            args(json!({"expression": "2 * (3 + 4)"})),
            &ctx(),
        )
        .await?;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert!(format!("{:?}", result.content).contains("14"), "{result:?}");

    assert_eq!(gateway.get("/healthz").await?, (200, "ok".to_owned()));
    assert_eq!(gateway.get("/readyz").await?.0, 200);
    let (code, metrics) = gateway.get("/metrics").await?;
    assert_eq!(code, 200);
    assert!(metrics.contains("toolmesh_calls_total"), "{metrics}");
    let status = gateway.status().await?;
    assert_eq!(status["summary"]["status"], "healthy");
    assert_eq!(status["gateway"]["ready"], true);
    session.close(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_the_gateway_keeps_serving() -> TestResult {
    let served = FixtureConfig::start("only").await?;
    let gateway = Gateway::with_config(&served.path, &["--no-watch"]).await?;
    let session = gateway.session().await?;

    // Malformed JSON-RPC: an HTTP 4xx (or a JSON-RPC parse error), nothing breaks.
    let (code, body) = gateway.post_mcp("{this is not json").await?;
    assert!(
        (400..500).contains(&code) || body.contains("-32700"),
        "malformed body answered {code}: {body}"
    );

    // Unknown tool: a JSON-RPC invalid-params error with a hint.
    match session
        .call_tool("fixture__ech", args(json!({})), &ctx())
        .await
    {
        Err(CallError::Rpc { code, message, .. }) => {
            assert_eq!(code, -32602, "{message}");
            assert!(
                message.contains("no tool named `fixture__ech`"),
                "{message}"
            );
            assert!(message.contains("fixture__echo"), "{message}");
        }
        other => panic!("unknown tool answered {other:?}"),
    }

    // Missing required argument: invalid params naming the field, no upstream call.
    match session
        .call_tool("fixture__echo", args(json!({"mesage": "typo"})), &ctx())
        .await
    {
        Err(CallError::Rpc { code, message, .. }) => {
            assert_eq!(code, -32602, "{message}");
            assert!(message.contains("`message`"), "{message}");
        }
        other => panic!("missing argument answered {other:?}"),
    }
    // Wrong type: the same.
    match session
        .call_tool("fixture__add", args(json!({"a": "1", "b": 2})), &ctx())
        .await
    {
        Err(CallError::Rpc { code, message, .. }) => {
            assert_eq!(code, -32602, "{message}");
            assert!(
                message.contains("`a`") && message.contains("number"),
                "{message}"
            );
        }
        other => panic!("wrong type answered {other:?}"),
    }
    let status = gateway.status().await?;
    let calls: u64 = status["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["load"]["calls"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        calls, 0,
        "an invalid call reached the upstream server: {status}"
    );

    // A tool error is a result with isError, not a protocol error.
    let failed = session
        .call_tool(
            "fixture__fail",
            args(json!({"reason": "on purpose"})),
            &ctx(),
        )
        .await?;
    assert_eq!(failed.is_error, Some(true));

    // A body over 4 MiB: 413 as soon as the headers say so, before the body is read.
    assert_eq!(post_headers_only(&gateway, 5 * 1024 * 1024).await?, 413);
    assert_ne!(post_headers_only(&gateway, 1024).await?, 413);

    // Still serving.
    let echoed = session
        .call_tool(
            "fixture__echo",
            args(json!({"message": "still here"})),
            &ctx(),
        )
        .await?;
    assert!(format!("{:?}", echoed.content).contains("still here"));
    assert_eq!(gateway.get("/healthz").await?.0, 200);
    session.close(Duration::from_secs(1)).await;
    Ok(())
}

/// Sends a POST's headers announcing `length` bytes, and no body; returns the status
/// the gateway answers (a raw socket: HTTP clients insist on sending the body first).
async fn post_headers_only(gateway: &Gateway, length: usize) -> anyhow::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = gateway.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let mut response = vec![0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut response)).await;
    let Ok(read) = read else {
        // Waiting for the body: not refused.
        return Ok(0);
    };
    let text = String::from_utf8_lossy(&response[..read?]).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no HTTP status in {text:?}"))?;
    Ok(code)
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() -> TestResult {
    let served = FixtureConfig::start("draining").await?;
    let mut gateway = Gateway::with_config(&served.path, &[]).await?;
    let session = gateway.session().await?;
    // A call in flight when the signal arrives still gets its answer.
    let slow = {
        let session = session.clone();
        tokio::spawn(async move {
            session
                .call_tool("fixture__sleep", args(json!({"ms": 500})), &ctx())
                .await
        })
    };
    support::eventually(
        Duration::from_secs(10),
        "the call to be in flight",
        || async {
            let status = gateway.status().await.ok()?;
            (status["gateway"]["in_flight"].as_u64() >= Some(1)).then_some(())
        },
    )
    .await?;
    let exit = gateway.terminate(Duration::from_secs(20)).await?;
    assert!(exit.success(), "exit status {exit}");
    let answered = slow.await??;
    assert_ne!(answered.is_error, Some(true), "{answered:?}");
    Ok(())
}

#[tokio::test]
async fn stateless_mode_answers_without_sessions() -> TestResult {
    let gateway = Gateway::start(&["--stateless"]).await?;
    let session = gateway.session().await?;
    let tools = session.list_tools(&ctx()).await?;
    assert!(tools.iter().any(|t| t.name == "native__calculator"));
    let result = session
        .call_tool(
            "native__calculator",
            args(json!({"expression": "6 * 7"})),
            &ctx(),
        )
        .await?;
    assert!(format!("{:?}", result.content).contains("42"), "{result:?}");
    match session
        .call_tool("native__calculator", args(json!({})), &ctx())
        .await
    {
        Err(CallError::Rpc { code, message, .. }) => {
            assert_eq!(code, -32602);
            assert!(message.contains("`expression`"), "{message}");
        }
        other => panic!("missing argument answered {other:?}"),
    }
    session.close(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test]
async fn stdio_mode_serves_the_same_catalog_to_a_child_process_client() -> TestResult {
    let served = FixtureConfig::start("piped").await?;
    let config = served.arg();
    // The session owns the child: closing it kills and reaps `toolmesh`.
    let endpoint = toolmesh::Endpoint::stdio(
        support::bin(),
        ["serve", "--stdio", "-q", "--config", config.as_str()],
    );
    let session = toolmesh::Session::connect(&endpoint).await?;
    let tools = session.list_tools(&ctx()).await?;
    assert!(tools.iter().any(|t| t.name == "fixture__echo"), "{tools:?}");
    let result = session
        .call_tool(
            "fixture__echo",
            args(json!({"message": "over stdio"})),
            &ctx(),
        )
        .await?;
    assert!(
        format!("{:?}", result.content).contains("over stdio"),
        "{result:?}"
    );
    session.close(Duration::from_secs(5)).await;
    Ok(())
}

/// Runs `toolmesh serve args…` that must exit at once: exit code and stderr.
async fn serve_fails(args: &[&str]) -> anyhow::Result<(i32, String)> {
    let (code, _, stderr) = support::run(&[&["serve"], args].concat(), &[]).await?;
    Ok((code, stderr))
}

#[tokio::test]
async fn listen_takes_localhost_and_a_bare_port_and_refuses_to_expose_without_auth() -> TestResult {
    for listen in ["localhost:0", "0"] {
        let gateway = Gateway::start_on(listen, &[]).await?;
        assert!(
            gateway.url.starts_with("http://127.0.0.1:"),
            "{listen}: {}",
            gateway.url
        );
        assert_eq!(gateway.get("/healthz").await?.0, 200);
    }

    // Without `gateway.auth` a non-loopback address is refused (nothing binds).
    let (code, stderr) = serve_fails(&["--listen", "0.0.0.0:0"]).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("does not authenticate its clients")
            && stderr.contains("--allow-unauthenticated"),
        "{stderr}"
    );

    // An address this machine does not have (TEST-NET-1): that hint, not the port's.
    let (code, stderr) =
        serve_fails(&["--listen", "192.0.2.1:0", "--allow-unauthenticated"]).await?;
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("this machine has no such address"),
        "{stderr}"
    );
    assert!(!stderr.contains("another process"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn worker_threads_size_the_async_runtime() -> TestResult {
    let cpus = std::thread::available_parallelism()?.get();
    for (args, workers) in [
        (&[][..], cpus),
        (&["--worker-threads", "1"][..], 1),
        (&["--worker-threads", "3"][..], 3),
    ] {
        let gateway = Gateway::start(args).await?;
        let status = gateway.status().await?;
        assert_eq!(
            status["gateway"]["worker_threads"],
            json!(workers),
            "{args:?}: {status}"
        );
    }
    let (code, stderr) = serve_fails(&["--worker-threads", "0"]).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--worker-threads") && stderr.contains("1 or more"),
        "{stderr}"
    );
    Ok(())
}
