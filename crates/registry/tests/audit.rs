//! The audit log over a real fixture server: one line per call (answered, tool error,
//! refused by the policy), who made it, and no argument value in clear.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde_json::{Value, json};
use toolmesh_core::{CallContext, ServerId};
use toolmesh_registry::{
    ArgumentsRecord, Audit, AuditConfig, Policy, Registry, RegistryOptions, RoleGrant, ServiceSpec,
};
use toolmesh_testkit::{FixtureOptions, FixtureServer};
use toolmesh_transport::Endpoint;

mod common;

async fn registry(fixture: &FixtureServer) -> anyhow::Result<Registry> {
    let spec = ServiceSpec::single(ServerId::new("fx"), Endpoint::url(fixture.http_url()));
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let roles: BTreeMap<String, RoleGrant> = serde_json::from_value(json!({
        "reader": { "allow": ["fx__echo", "fx__fail"] },
    }))?;
    registry.set_policy(Some(Policy::new(&roles)?));
    Ok(registry)
}

fn alice(request: &str) -> CallContext {
    let mut ctx = CallContext::with_timeout(Duration::from_secs(10)).principal("alice");
    ctx.roles = Some(Arc::from(vec!["reader".to_owned()]));
    ctx.request_id = Some(toolmesh_core::RequestId::String(request.into()));
    ctx
}

/// An audit log of `file` holding lines for `interval`.
fn held(file: std::path::PathBuf, interval: Duration) -> std::io::Result<Audit> {
    Audit::new(AuditConfig {
        file: Some(file),
        flush_interval: Some(interval),
        ..AuditConfig::default()
    })
}

fn lines(path: &std::path::Path) -> anyhow::Result<Vec<Value>> {
    Ok(std::fs::read_to_string(path)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

#[tokio::test]
async fn every_call_is_one_line_without_its_argument_values() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = registry(&fixture).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audit.jsonl");
    registry.set_audit(Some(Audit::new(AuditConfig {
        file: Some(file.clone()),
        ..AuditConfig::default()
    })?));

    let secret = json!({"message": "token sk-live-SECRET"});
    registry
        .call("fx__echo", secret.as_object().cloned(), &alice("r-1"))
        .await?;
    registry
        .call(
            "fx__fail",
            json!({"reason": "no"}).as_object().cloned(),
            &alice("r-2"),
        )
        .await?;
    let refused = registry.call("fx__counter", None, &alice("r-3")).await;
    assert!(refused.is_err());

    let text = std::fs::read_to_string(&file)?;
    assert!(!text.contains("SECRET"), "an argument value leaked: {text}");
    let lines = lines(&file)?;
    let outcomes: Vec<&str> = lines.iter().filter_map(|l| l["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["ok", "tool_error", "denied"]);
    let first = &lines[0];
    assert_eq!(first["principal"], "alice");
    assert_eq!(first["roles"], json!(["reader"]));
    assert_eq!(first["request_id"], "r-1");
    assert_eq!(first["tool"], "fx__echo");
    assert_eq!(first["attempts"], 1);
    assert!(
        first["instance"].is_string() && first["latency_ms"].is_number(),
        "{first}"
    );
    assert!(
        first["arguments"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{first}"
    );
    assert_eq!(lines[2]["error_kind"], "denied");
    assert_eq!(
        lines[2]["attempts"], 0,
        "a refused call reached no instance"
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_file_rotates_by_size_and_redacted_arguments_keep_only_keys() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = registry(&fixture).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audit.jsonl");
    registry.set_audit(Some(Audit::new(AuditConfig {
        file: Some(file.clone()),
        max_bytes: 600,
        keep: 2,
        arguments: ArgumentsRecord::Redacted,
        ..AuditConfig::default()
    })?));
    for i in 0..8 {
        let args = json!({"message": format!("call {i}")});
        registry
            .call(
                "fx__echo",
                args.as_object().cloned(),
                &alice(&format!("r-{i}")),
            )
            .await?;
    }
    let rotated = dir.path().join("audit.jsonl.1");
    assert!(rotated.exists(), "rotated once the file reached max_bytes");
    assert!(std::fs::metadata(&file)?.len() <= 600);
    assert!(!dir.path().join("audit.jsonl.3").exists(), "keep: 2");
    let last = lines(&file)?;
    assert_eq!(
        last.last().map(|l| l["request_id"].clone()),
        Some(json!("r-7"))
    );
    assert_eq!(last[0]["arguments"], json!({"message": "[redacted]"}));
    registry.shutdown().await;
    Ok(())
}

/// With `flush_interval`, lines wait in memory: none is written before the interval (here
/// far away) and every one is written by a clean stop.
#[tokio::test]
async fn held_lines_are_written_by_a_clean_stop() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = registry(&fixture).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audit.jsonl");
    registry.set_audit(Some(held(file.clone(), Duration::from_secs(3600))?));
    for i in 0..5 {
        registry
            .call("fx__echo", None, &alice(&format!("r-{i}")))
            .await?;
    }
    assert_eq!(lines(&file)?.len(), 0, "held until the interval or a stop");
    registry.shutdown().await;
    let written = lines(&file)?;
    let ids: Vec<Value> = written.iter().map(|l| l["request_id"].clone()).collect();
    assert_eq!(ids, ["r-0", "r-1", "r-2", "r-3", "r-4"].map(|r| json!(r)));
    Ok(())
}

/// Held lines reach the file within the interval without a stop, and a replaced audit
/// log writes what it held.
#[tokio::test]
async fn held_lines_are_written_each_interval_and_on_replacement() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = registry(&fixture).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("audit.jsonl");
    registry.set_audit(Some(held(file.clone(), Duration::from_millis(50))?));
    registry.call("fx__echo", None, &alice("r-1")).await?;
    common::wait_for("the held line in the file", async || {
        lines(&file).is_ok_and(|l| !l.is_empty())
    })
    .await;

    let second = dir.path().join("second.jsonl");
    registry.set_audit(Some(held(second.clone(), Duration::from_secs(3600))?));
    registry.call("fx__echo", None, &alice("r-2")).await?;
    assert!(lines(&second)?.is_empty());
    registry.set_audit(None);
    assert_eq!(
        lines(&second)?.len(),
        1,
        "written when the log was replaced"
    );
    registry.shutdown().await;
    Ok(())
}

#[test]
fn a_zero_flush_interval_is_refused_with_what_to_write() {
    let refused = Audit::new(AuditConfig {
        flush_interval: Some(Duration::ZERO),
        ..AuditConfig::default()
    });
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("flush_interval"), "{message}");
    assert!(message.contains("100ms"), "{message}");
}
