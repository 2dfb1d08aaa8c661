//! Two `toolmesh serve` processes share one registry in a real etcd: instances registered
//! with `toolmesh register` (or published by a gateway) reach both, leave both when their
//! registrar dies, and etcd going away and coming back under load fails no call.

#[path = "support/gateway.rs"]
mod support;

use std::{path::Path, process::Stdio, time::Duration};

use serde_json::{Value, json};
use support::{Gateway, bin, eventually};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use toolmesh::CallContext;
use toolmesh_testkit::{EtcdServer, FixtureOptions, FixtureServer};

/// The registrar's lease.
const TTL: Duration = Duration::from_secs(3);
/// Bounds on waits for things that take milliseconds when the machine is idle.
const PROPAGATION: Duration = Duration::from_secs(10);

fn write_config(
    dir: &Path,
    name: &str,
    etcd: &EtcdServer,
    extra: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "registry:\n  etcd:\n    endpoints: [\"{}\"]\n    prefix: /it\n    timeout: 2s\n{extra}",
            etcd.endpoint()
        ),
    )?;
    Ok(path)
}

/// `toolmesh register …`, killed on drop.
fn register(etcd: &EtcdServer, service: &str, id: &str, url: &str) -> anyhow::Result<Child> {
    Ok(Command::new(bin())
        .args([
            "register",
            "--etcd",
            &etcd.endpoint(),
            "--prefix",
            "/it",
            "--service",
            service,
        ])
        .args([
            "--id",
            id,
            "--url",
            url,
            "--ttl",
            &format!("{}s", TTL.as_secs()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?)
}

fn has_instance(status: &Value, id: &str) -> bool {
    status["instances"]
        .as_array()
        .is_some_and(|all| all.iter().any(|i| i["instance"] == id))
}

async fn wait_instance(
    gateway: &Gateway,
    id: &str,
    present: bool,
    within: Duration,
) -> anyhow::Result<()> {
    let what = format!(
        "{id} {} at {}",
        if present { "present" } else { "gone" },
        gateway.url
    );
    eventually(within, &what, || async {
        let status = gateway.status().await.ok()?;
        (has_instance(&status, id) == present).then_some(())
    })
    .await
}

#[tokio::test]
async fn a_registered_instance_reaches_both_gateways_and_leaves_when_its_registrar_dies()
-> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let fixture = FixtureServer::start(FixtureOptions::new().instance_id("fx-1")).await?;
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), "gw.yaml", &etcd, "")?;
    let gateways = [
        Gateway::with_config(&config, &[]).await?,
        Gateway::with_config(&config, &[]).await?,
    ];

    let mut registrar = register(&etcd, "fx", "fx-1", fixture.http_url())?;
    let started = std::time::Instant::now();
    for gateway in &gateways {
        wait_instance(gateway, "fx-1", true, PROPAGATION).await?;
        eprintln!(
            "registered → in {} after {:?}",
            gateway.url,
            started.elapsed()
        );
        let session = gateway.session().await?;
        let result = session
            .call_tool(
                "fx__echo",
                json!({"message": "via etcd"}).as_object().cloned(),
                &ctx(),
            )
            .await?;
        assert!(format!("{:?}", result.content).contains("via etcd"));
        session.close(Duration::from_secs(1)).await;
        let status = gateway.status().await?;
        assert_eq!(status["discovery"][0]["state"], "live", "{status}");
        assert_eq!(status["discovery"][0]["instances"], 1, "{status}");
    }

    // SIGKILL: no chance to withdraw; the lease runs out and etcd deletes the record.
    registrar.start_kill()?;
    registrar.wait().await?;
    let killed = std::time::Instant::now();
    for gateway in &gateways {
        wait_instance(gateway, "fx-1", false, TTL + PROPAGATION).await?;
        eprintln!(
            "SIGKILL → gone from {} after {:?} (ttl {TTL:?})",
            gateway.url,
            killed.elapsed()
        );
        let (_, tools) = gateway.get("/status").await?;
        assert!(!tools.contains("fx__echo"), "{tools}");
    }
    Ok(())
}

#[tokio::test]
async fn etcd_restarted_under_load_fails_no_call_and_membership_converges() -> anyhow::Result<()> {
    let mut etcd = EtcdServer::start().await?;
    let fixture = FixtureServer::start(FixtureOptions::new().instance_id("pub-1")).await?;
    let dir = tempfile::tempdir()?;
    // The first gateway serves the fixture from its configuration and publishes it; the
    // second knows it only from etcd.
    let publisher = write_config(
        dir.path(),
        "publisher.yaml",
        &etcd,
        &format!(
            "  publish: true\nservers:\n  fx:\n    instances:\n      - id: pub-1\n        url: {}\n",
            fixture.http_url()
        ),
    )?;
    let follower = write_config(dir.path(), "follower.yaml", &etcd, "")?;
    let gateways = [
        Gateway::with_config(&publisher, &[]).await?,
        Gateway::with_config(&follower, &[]).await?,
    ];
    wait_instance(&gateways[1], "pub-1", true, PROPAGATION).await?;

    let stop = CancellationToken::new();
    let mut load = Vec::new();
    let mut sessions = Vec::new();
    for gateway in &gateways {
        let session = gateway.session().await?;
        sessions.push(session.clone());
        load.push(tokio::spawn(support::call_until(
            session,
            "fx__echo",
            json!({"message": "load"}),
            stop.clone(),
            Duration::from_secs(90),
        )));
    }

    etcd.kill().await;
    for gateway in &gateways {
        eventually(PROPAGATION, "readyz saying etcd is unreachable", || async {
            let (code, body) = gateway.get("/readyz").await.ok()?;
            (code == 200 && body.contains("unreachable")).then_some(())
        })
        .await?;
        let status = gateway.status().await?;
        assert_eq!(status["discovery"][0]["state"], "lost", "{status}");
        assert!(
            has_instance(&status, "pub-1"),
            "the last membership stays: {status}"
        );
    }
    etcd.restart().await?;
    for gateway in &gateways {
        eventually(PROPAGATION, "etcd live again", || async {
            let status = gateway.status().await.ok()?;
            (status["discovery"][0]["state"] == "live").then_some(())
        })
        .await?;
    }
    // Converged: a registration made after the return reaches both.
    let late = FixtureServer::start(FixtureOptions::new().instance_id("late-1")).await?;
    let mut registrar = register(&etcd, "fx", "late-1", late.http_url())?;
    for gateway in &gateways {
        wait_instance(gateway, "late-1", true, PROPAGATION).await?;
        wait_instance(gateway, "pub-1", true, PROPAGATION).await?;
    }
    stop.cancel();
    let mut calls = 0;
    for caller in load {
        let outcomes = tokio::time::timeout(Duration::from_secs(30), caller).await??;
        calls += outcomes.len();
        let failed: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{} of {} calls failed: {failed:#?}",
            failed.len(),
            outcomes.len()
        );
    }
    assert!(calls > 0);
    for session in sessions {
        session.close(Duration::from_secs(1)).await;
    }
    registrar.start_kill()?;
    registrar.wait().await?;
    Ok(())
}

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(10))
}

#[tokio::test]
async fn register_says_what_is_wrong_with_its_arguments() -> anyhow::Result<()> {
    let ok_url = "http://127.0.0.1:9/mcp";
    let cases: [(&[&str], &str); 3] = [
        (&["--service", "s", "--url", "not a url"], "--url not a url"),
        (
            &["--service", "s", "--url", ok_url, "--ttl", "1s"],
            "too short",
        ),
        (&["--service", "a/b", "--url", ok_url], "without `/`"),
    ];
    for (args, expected) in cases {
        let mut command = vec!["register", "--etcd", "http://127.0.0.1:9"];
        command.extend_from_slice(args);
        let (code, _, stderr) = support::run(&command, &[]).await?;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    Ok(())
}
