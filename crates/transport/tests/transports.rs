//! Every transport against the fixture: list, call, ping, notifications, protocol versions.

mod common;

use std::time::Duration;

use common::*;
use toolmesh_testkit::FixtureOptions;
use toolmesh_transport::{ProtocolChoice, ServerEvent, Session};

#[tokio::test]
async fn list_call_ping_over_every_transport() -> anyhow::Result<()> {
    for kind in ALL {
        let (session, _running) =
            connect(kind, FixtureOptions::new().instance_id(format!("i-{kind}"))).await?;
        assert_eq!(session.transport(), kind);
        assert_eq!(session.protocol_version().as_str(), "2025-11-25", "{kind}");
        let tools = session.list_tools(&ctx()).await?;
        let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "add", "ask", "counter", "echo", "fail", "flaky", "large", "progress", "sleep"
            ],
            "{kind}"
        );
        let echo = session
            .call_tool(
                "echo",
                args(serde_json::json!({"message": "hello"})),
                &ctx(),
            )
            .await?;
        assert_eq!(text(&echo), "hello", "{kind}");
        let structured = echo.structured_content.clone().unwrap_or_default();
        assert_eq!(structured["instance"], format!("i-{kind}"), "{kind}");
        let failed = session.call_tool("fail", None, &ctx()).await?;
        assert_eq!(
            failed.is_error,
            Some(true),
            "a tool error is a result: {kind}"
        );
        session.ping(&ctx()).await?;
        assert!(!session.is_closed());
    }
    Ok(())
}

#[tokio::test]
async fn progress_and_log_notifications_arrive() -> anyhow::Result<()> {
    for kind in ALL {
        let (session, _running) = connect(kind, FixtureOptions::new()).await?;
        let mut events = session.events();
        let done = session
            .call_tool("progress", args(serde_json::json!({"steps": 3})), &ctx())
            .await?;
        assert!(text(&done).contains('3'), "{kind}: {}", text(&done));
        let (mut progress, mut logs) = (Vec::new(), 0);
        while progress.len() < 3 || logs < 3 {
            match tokio::time::timeout(Duration::from_secs(5), events.recv()).await?? {
                ServerEvent::Progress(p) => progress.push(p.progress),
                ServerEvent::Log(_) => logs += 1,
                _ => {}
            }
        }
        assert_eq!(progress, [1.0, 2.0, 3.0], "{kind}");
    }
    Ok(())
}

#[tokio::test]
async fn tools_list_changed_arrives_and_the_new_tool_is_listed() -> anyhow::Result<()> {
    for kind in ALL {
        let (session, _running) =
            connect(kind, FixtureOptions::new().tools_changed_after(1)).await?;
        let mut events = session.events();
        session
            .call_tool("echo", args(serde_json::json!({"message": "x"})), &ctx())
            .await?;
        loop {
            let event = tokio::time::timeout(Duration::from_secs(5), events.recv()).await??;
            if event == ServerEvent::ToolsChanged {
                break;
            }
        }
        let tools = session.list_tools(&ctx()).await?;
        assert!(tools.iter().any(|t| t.name == "extra"), "{kind}");
    }
    Ok(())
}

#[tokio::test]
async fn resources_and_prompts() -> anyhow::Result<()> {
    for kind in ALL {
        let (session, _running) = connect(kind, FixtureOptions::new().instance_id("res")).await?;
        let resources = session.list_resources(&ctx()).await?;
        assert!(
            resources.iter().any(|r| r.uri == "fixture://info"),
            "{kind}"
        );
        let read = session.read_resource("fixture://info", &ctx()).await?;
        let body = serde_json::to_string(&read.contents)?;
        assert!(body.contains("toolmesh fixture res"), "{kind}: {body}");
        let prompts = session.list_prompts(&ctx()).await?;
        assert!(prompts.iter().any(|p| p.name == "greet"), "{kind}");
        let prompt = session
            .get_prompt("greet", args(serde_json::json!({"name": "Ada"})), &ctx())
            .await?;
        assert!(
            serde_json::to_string(&prompt.messages)?.contains("Hello, Ada!"),
            "{kind}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn protocol_2026_07_28_when_configured() -> anyhow::Result<()> {
    for kind in ALL {
        let mut running = fixture(kind, FixtureOptions::new()).await?;
        running.endpoint = running.endpoint.protocol(ProtocolChoice::V2026_07_28);
        let session = Session::connect(&running.endpoint).await?;
        assert_eq!(session.protocol_version().as_str(), "2026-07-28", "{kind}");
        let echo = session
            .call_tool("echo", args(serde_json::json!({"message": "new"})), &ctx())
            .await?;
        assert_eq!(text(&echo), "new", "{kind}");
    }
    Ok(())
}

#[tokio::test]
async fn many_concurrent_calls_share_one_session() -> anyhow::Result<()> {
    for kind in ALL {
        let (session, _running) = connect(kind, FixtureOptions::new()).await?;
        let calls = (0..64).map(|i| {
            let session = session.clone();
            async move {
                let out = session
                    .call_tool("add", args(serde_json::json!({"a": i, "b": 1})), &ctx())
                    .await?;
                anyhow::Ok((
                    i,
                    out.structured_content.unwrap_or_default()["sum"].as_f64(),
                ))
            }
        });
        for result in futures::future::join_all(calls).await {
            let (i, sum) = result?;
            assert_eq!(sum, Some(f64::from(i + 1)), "{kind}");
        }
    }
    Ok(())
}
