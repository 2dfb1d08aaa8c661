//! Editing the configuration of a running gateway: new servers appear in `tools/list`
//! (with a list-changed notification); a broken edit is reported and changes nothing.

#[path = "support/gateway.rs"]
mod support;

use std::time::Duration;

use support::{Gateway, config_yaml, eventually, write_atomically};
use toolmesh::{CallContext, ServerEvent};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

/// `/status` once it reports a reload error.
async fn status_with_error(gateway: &Gateway) -> anyhow::Result<serde_json::Value> {
    eventually(Duration::from_secs(20), "reload.last_error", || async {
        let status = gateway.status().await.ok()?;
        status["reload"]["last_error"].is_string().then_some(status)
    })
    .await
}

#[tokio::test]
async fn edits_apply_and_broken_edits_keep_the_previous_configuration() -> anyhow::Result<()> {
    let first = FixtureServer::start(FixtureOptions::new().instance_id("first")).await?;
    let second = FixtureServer::start(FixtureOptions::new().instance_id("second")).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("toolmesh.yaml");
    std::fs::write(
        &config,
        config_yaml(&[("alpha", vec![first.http_url().to_owned()])]),
    )?;
    let gateway = Gateway::with_config(&config, &[]).await?;
    let session = gateway.session().await?;
    let mut events = session.events();
    let ctx = || CallContext::with_timeout(Duration::from_secs(10));
    let names = |tools: Vec<toolmesh::layers::core::Tool>| -> Vec<String> {
        tools.into_iter().map(|t| t.name.to_string()).collect()
    };
    let before = names(session.list_tools(&ctx()).await?);
    assert!(before.contains(&"alpha__echo".to_owned()), "{before:?}");
    assert!(
        !before.iter().any(|n| n.starts_with("beta__")),
        "{before:?}"
    );

    // Add a server.
    write_atomically(
        &config,
        &config_yaml(&[
            ("alpha", vec![first.http_url().to_owned()]),
            ("beta", vec![second.http_url().to_owned()]),
        ]),
    )?;
    let after = eventually(
        Duration::from_secs(20),
        "beta__echo in tools/list",
        || async {
            let tools = names(session.list_tools(&ctx()).await.ok()?);
            tools.contains(&"beta__echo".to_owned()).then_some(tools)
        },
    )
    .await?;
    assert!(after.contains(&"alpha__echo".to_owned()), "{after:?}");
    let notified = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Ok(ServerEvent::ToolsChanged) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await;
    assert_eq!(notified, Ok(true), "no notifications/tools/list_changed");
    let status = gateway.status().await?;
    assert_eq!(status["reload"]["generation"], 1, "{status}");

    // Break it: the error shows in /status, the old tools are still served.
    write_atomically(&config, "servers:\n  beta:\n    urll: nope\n")?;
    let status = status_with_error(&gateway).await?;
    let error = status["reload"]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("servers.beta") && error.contains("urll"),
        "{error}"
    );
    assert_eq!(status["reload"]["generation"], 1, "{status}");
    let still = names(session.list_tools(&ctx()).await?);
    assert!(still.contains(&"alpha__echo".to_owned()), "{still:?}");
    assert!(still.contains(&"beta__echo".to_owned()), "{still:?}");
    let echoed = session
        .call_tool(
            "beta__echo",
            serde_json::json!({"message": "after a broken edit"})
                .as_object()
                .cloned(),
            &ctx(),
        )
        .await?;
    assert_ne!(echoed.is_error, Some(true), "{echoed:?}");
    session.close(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test]
async fn a_huge_duration_shows_in_status_and_the_next_good_edit_applies() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("toolmesh.yaml");
    let both = "servers:\n  math: { native: [calculator] }\n  clock: { native: [time_now] }\n";
    std::fs::write(&config, both)?;
    let gateway = Gateway::with_config(&config, &[]).await?;

    write_atomically(
        &config,
        "servers:\n  math: { native: [calculator] }\n  clock: { native: [time_now], timeout: 1e20 }\n",
    )?;
    let status = status_with_error(&gateway).await?;
    let error = status["reload"]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("servers.clock.timeout") && error.contains("365 days"),
        "{error}"
    );

    // Removing a server still applies: the reload task lives on.
    write_atomically(&config, "servers:\n  math: { native: [calculator] }\n")?;
    let status = eventually(Duration::from_secs(20), "reload generation 1", || async {
        let status = gateway.status().await.ok()?;
        (status["reload"]["generation"] == 1).then_some(status)
    })
    .await?;
    assert!(status["reload"]["last_error"].is_null(), "{status}");
    Ok(())
}
