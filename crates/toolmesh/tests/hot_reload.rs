//! Editing the configuration file of a running mesh: servers are added, changed and removed
//! while a call is in flight, and that call finishes.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use toolmesh::{CallContext, ConfigLoader, ErrorKind, Mesh, ServerId};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

fn write(path: &Path, servers: &[(&str, &FixtureServer)], extra: &str) -> std::io::Result<()> {
    let mut yaml = String::from("defaults:\n  health_check: { enabled: false }\nservers:\n");
    for (name, server) in servers {
        yaml.push_str(&format!(
            "  {name}:\n    url: {}\n{extra}",
            server.http_url()
        ));
    }
    // Write-then-rename, as editors do.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, yaml)?;
    std::fs::rename(&tmp, path)
}

async fn wait_generation(mesh: &Mesh, generation: u64) {
    let mut status = mesh.reload_status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while status.borrow().generation < generation {
        assert!(
            Instant::now() < deadline,
            "reload {generation} never applied: {:?}",
            *status.borrow()
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), status.changed()).await;
    }
}

#[tokio::test]
async fn edits_apply_while_calls_run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("toolmesh.yaml");
    let (a, b) = (
        FixtureServer::start(FixtureOptions::new().instance_id("a")).await?,
        FixtureServer::start(FixtureOptions::new().instance_id("b")).await?,
    );
    write(&path, &[("alpha", &a)], "")?;
    let mesh =
        Mesh::start_watching(ConfigLoader::new().file(&path).without_env_overrides()).await?;
    let registry = mesh.registry().clone();
    let ctx = CallContext::with_timeout(Duration::from_secs(10));
    let slow = {
        let registry = registry.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            registry
                .call(
                    "alpha__sleep",
                    serde_json::json!({"ms": 1500}).as_object().cloned(),
                    &ctx,
                )
                .await
        })
    };

    // Add a server and change the other while the slow call runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !registry
        .instance_reports()
        .iter()
        .any(|r| r.instance.as_str() == "alpha-1" && r.load.outstanding > 0)
    {
        assert!(
            !slow.is_finished(),
            "the slow call ended before it was seen"
        );
        assert!(Instant::now() < deadline, "the slow call never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    write(&path, &[("alpha", &a), ("beta", &b)], "    timeout: 20s\n")?;
    wait_generation(&mesh, 1).await;
    assert!(registry.catalog().resolve("beta__echo").is_some());
    assert_eq!(
        registry.spec(&ServerId::new("alpha")).map(|s| s.timeout),
        Some(Duration::from_secs(20))
    );
    registry
        .call(
            "beta__echo",
            serde_json::json!({"message": "hi"}).as_object().cloned(),
            &ctx,
        )
        .await?;

    // A broken edit is reported and ignored.
    std::fs::write(&path, "servers: [oops")?;
    let mut status = mesh.reload_status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while status.borrow().last_error.is_none() {
        assert!(
            Instant::now() < deadline,
            "the broken edit was not reported"
        );
        let _ = tokio::time::timeout(Duration::from_millis(200), status.changed()).await;
    }
    assert!(
        status
            .borrow()
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("toolmesh.yaml"))
    );
    assert!(
        registry.catalog().resolve("beta__echo").is_some(),
        "the previous configuration stays"
    );

    // Remove a server.
    write(&path, &[("beta", &b)], "")?;
    wait_generation(&mesh, 2).await;
    let gone = registry.call("alpha__echo", None, &ctx).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::ToolNotFound);

    let finished = slow
        .await?
        .map_err(|e| anyhow::anyhow!("in-flight call lost: {e}"))?;
    assert_ne!(finished.result.is_error, Some(true));
    mesh.shutdown().await;
    Ok(())
}

/// Waits until the status has an error, and returns it.
async fn wait_error(mesh: &Mesh) -> String {
    let mut status = mesh.reload_status();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(error) = status.borrow().last_error.clone() {
            return error;
        }
        assert!(Instant::now() < deadline, "the bad edit was not reported");
        let _ = tokio::time::timeout(Duration::from_millis(200), status.changed()).await;
    }
}

#[tokio::test]
async fn a_huge_duration_is_an_error_and_the_next_good_edit_applies() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("toolmesh.yaml");
    let both = "servers:\n  math: { native: [calculator] }\n  clock: { native: [time_now] }\n";
    std::fs::write(&path, both)?;
    let mesh =
        Mesh::start_watching(ConfigLoader::new().file(&path).without_env_overrides()).await?;
    let ctx = CallContext::with_timeout(Duration::from_secs(10));

    std::fs::write(
        &path,
        "servers:\n  math: { native: [calculator] }\n  clock: { native: [time_now], timeout: 1e20 }\n",
    )?;
    let error = wait_error(&mesh).await;
    assert!(
        error.contains("servers.clock.timeout") && error.contains("365 days"),
        "{error}"
    );
    // The next good edit, removing a server, applies.
    std::fs::write(&path, "servers:\n  math: { native: [calculator] }\n")?;
    wait_generation(&mesh, 1).await;
    assert_eq!(mesh.reload_status().borrow().last_error, None);
    let gone = mesh
        .registry()
        .call("clock__time_now", None, &ctx)
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::ToolNotFound);

    std::fs::write(
        &path,
        "servers:\n  math: { native: [calculator], pool: { max_idle_time: 1000000000y } }\n",
    )?;
    let error = wait_error(&mesh).await;
    assert!(
        error.contains("servers.math.pool.max_idle_time") && error.contains("365 days"),
        "{error}"
    );
    std::fs::write(&path, both)?;
    wait_generation(&mesh, 2).await;
    mesh.registry().call("clock__time_now", None, &ctx).await?;
    mesh.shutdown().await;
    Ok(())
}
