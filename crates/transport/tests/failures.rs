//! Deadlines, dead servers, oversized messages, child processes and credentials.

mod common;

use std::time::{Duration, Instant};

use common::*;
use toolmesh_core::{CallContext, CallError, ErrorKind, Phase};
use toolmesh_testkit::FixtureOptions;
use toolmesh_testkit::process::{gone, state as process_state};
use toolmesh_transport::{Endpoint, Session, TransportKind};

/// Bound for "promptly": generous, so the test never depends on machine speed.
const SLACK: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_call_past_its_deadline_times_out_promptly_and_the_session_survives() -> anyhow::Result<()>
{
    for kind in ALL {
        let (session, _running) = connect(kind, FixtureOptions::new()).await?;
        let deadline = Duration::from_millis(300);
        let started = Instant::now();
        let err = session
            .call_tool(
                "sleep",
                args(serde_json::json!({"ms": 10_000})),
                &CallContext::with_timeout(deadline),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{kind}: {err}");
        assert_eq!(err.phase(), Phase::AfterSend);
        // The message reports the budget the call had, not what was left of it.
        match &err {
            CallError::Timeout { after, .. } => {
                assert!(
                    *after > deadline / 2 && *after <= deadline,
                    "{kind}: {after:?}"
                )
            }
            other => panic!("{kind}: {other}"),
        }
        assert!(
            started.elapsed() < deadline + SLACK,
            "{kind}: took {:?}",
            started.elapsed()
        );
        let echo = session
            .call_tool(
                "echo",
                args(serde_json::json!({"message": "still here"})),
                &ctx(),
            )
            .await?;
        assert_eq!(text(&echo), "still here", "{kind}");
    }
    Ok(())
}

#[tokio::test]
async fn cancelling_the_context_abandons_the_call() -> anyhow::Result<()> {
    for kind in ALL {
        let (session, _running) = connect(kind, FixtureOptions::new()).await?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let ctx = ctx().cancel_with(cancel.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        });
        let err = session
            .call_tool("sleep", args(serde_json::json!({"ms": 10_000})), &ctx)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled, "{kind}: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn a_stdio_server_crashing_mid_call_fails_the_call_and_closes_the_session()
-> anyhow::Result<()> {
    let (session, _running) =
        connect(TransportKind::Stdio, FixtureOptions::new().crash_after(1)).await?;
    let pid = session.pid().expect("stdio sessions have a pid");
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        session.call_tool("echo", args(serde_json::json!({"message": "boom"})), &ctx()),
    )
    .await?
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert_eq!(err.phase(), Phase::AfterSend);
    let msg = err.to_string();
    assert!(msg.contains("server `fixture`"), "{msg}");
    assert!(msg.contains("exited with status 3"), "{msg}");
    assert!(session.is_closed());
    assert!(gone(pid).await, "the crashed child must be reaped");
    let again = session.call_tool("echo", None, &ctx()).await.unwrap_err();
    assert_eq!(again.phase(), Phase::BeforeSend, "{again}");
    Ok(())
}

#[tokio::test]
async fn killing_a_remote_server_mid_call_yields_an_error_not_a_hang() -> anyhow::Result<()> {
    for kind in [TransportKind::StreamableHttp, TransportKind::Websocket] {
        let (session, mut running) = connect(kind, FixtureOptions::new()).await?;
        let mut events = session.events();
        let call = {
            let session = session.clone();
            tokio::spawn(async move {
                session
                    .call_tool(
                        "progress",
                        args(serde_json::json!({"steps": 100_000})),
                        &CallContext::with_timeout(Duration::from_secs(60)),
                    )
                    .await
            })
        };
        // The first progress notification proves the server is working on the call.
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
            if matches!(event, toolmesh_transport::ServerEvent::Progress(_)) {
                break;
            }
        }
        if let Some(server) = running.server.as_mut() {
            server.kill().await;
        }
        let err = tokio::time::timeout(Duration::from_secs(10), call)
            .await??
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Closed | ErrorKind::Connect),
            "{kind}: {err}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_oversized_message_is_an_error_not_a_hang() -> anyhow::Result<()> {
    for kind in ALL {
        let (session, _running) = connect(kind, FixtureOptions::new()).await?;
        let deadline = Duration::from_secs(5);
        let started = Instant::now();
        let result = session
            .call_tool(
                "large",
                args(serde_json::json!({"bytes": 17 * 1024 * 1024})),
                &CallContext::with_timeout(deadline),
            )
            .await;
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{kind}: a 17 MiB reply must exceed the limit"));
        assert!(
            matches!(
                err.kind(),
                ErrorKind::TooLarge | ErrorKind::Closed | ErrorKind::Timeout
            ),
            "{kind}: {err}"
        );
        assert!(
            started.elapsed() < deadline + SLACK,
            "{kind}: took {:?}",
            started.elapsed()
        );
    }
    Ok(())
}

#[tokio::test]
async fn dropping_a_stdio_session_leaves_no_process() -> anyhow::Result<()> {
    let (session, _running) = connect(TransportKind::Stdio, FixtureOptions::new()).await?;
    let pid = session.pid().expect("stdio sessions have a pid");
    assert!(process_state(pid).is_some());
    let clone = session.clone();
    drop(session);
    assert!(
        process_state(pid).is_some(),
        "a clone keeps the session alive"
    );
    drop(clone);
    assert!(
        gone(pid).await,
        "child {pid} still present: {:?}",
        process_state(pid)
    );
    Ok(())
}

#[tokio::test]
async fn a_child_killed_from_outside_closes_the_session() -> anyhow::Result<()> {
    let (session, _running) = connect(TransportKind::Stdio, FixtureOptions::new()).await?;
    let pid = session.pid().expect("stdio sessions have a pid");
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    assert!(gone(pid).await);
    let err = session.call_tool("echo", None, &ctx()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(err.to_string().contains("fixture"), "{err}");
    assert!(session.is_closed());
    Ok(())
}

#[tokio::test]
async fn wrong_or_missing_bearer_is_a_401_naming_the_endpoint() -> anyhow::Result<()> {
    for kind in [TransportKind::StreamableHttp, TransportKind::Websocket] {
        let running = fixture(kind, FixtureOptions::new().require_bearer("s3cret")).await?;
        let url = running.endpoint.url.clone().unwrap_or_default();
        for endpoint in [Endpoint::url(&url), Endpoint::url(&url).bearer("wrong")] {
            let err = Session::connect(&endpoint).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unauthorized, "{kind}: {err}");
            let msg = err.to_string();
            assert!(msg.contains("401"), "{msg}");
            assert!(msg.contains(&url), "{msg}");
        }
        let session = Session::connect(&Endpoint::url(&url).bearer("s3cret")).await?;
        session.ping(&ctx()).await?;
    }
    Ok(())
}

#[tokio::test]
async fn connect_failures_are_clear() {
    let err = Session::connect(&Endpoint::stdio("/nonexistent/mcp-server", ["--x"]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(err.to_string().contains("/nonexistent/mcp-server"), "{err}");

    // A port nobody listens on: bind, learn the port, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    for url in [
        format!("http://127.0.0.1:{port}/mcp"),
        format!("ws://127.0.0.1:{port}/ws"),
    ] {
        let err = Session::connect(&Endpoint::url(&url)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
        assert!(err.to_string().contains(&url), "{err}");
    }

    let err = Session::connect(&Endpoint::stdio("true", Vec::<String>::new()).named("quits"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.to_string().contains("quits"), "{err}");
}

#[tokio::test]
async fn invalid_endpoints_are_refused_before_connecting() {
    let err = Session::connect(&Endpoint::default().named("empty"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(
        err.to_string().contains("missing `url` or `command`"),
        "{err}"
    );
}
