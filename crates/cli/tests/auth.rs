//! Inbound authentication through the binary: `toolmesh auth hash-key`, and `toolmesh
//! serve` with `gateway.auth` in its configuration refusing clients without the key.

#[path = "support/gateway.rs"]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::{FixtureConfig, Gateway, config_yaml};
use toolmesh::{CallContext, Endpoint, Session};

type TestResult = anyhow::Result<()>;

/// The value of the line `name: value` in `text`.
fn line<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn hash_key_prints_a_new_key_its_digest_and_the_entry() -> TestResult {
    let (code, stdout, stderr) =
        support::run(&["auth", "hash-key", "--id", "ci", "--role", "ops"], &[]).await?;
    assert_eq!(code, 0, "{stderr}");
    let key = line(&stdout, "key").unwrap_or_default();
    let digest = line(&stdout, "sha256").unwrap_or_default();
    assert!(key.starts_with("tm_") && key.len() == 46, "{stdout}");
    assert_eq!(digest, hex_sha256(key), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "- {{ id: \"ci\", sha256: {digest}, roles: [\"ops\"] }}"
        )),
        "{stdout}"
    );
    let (_, again, _) = support::run(&["auth", "hash-key"], &[]).await?;
    assert_ne!(line(&again, "key"), Some(key), "keys must be random");

    let output = assert_cmd::Command::new(support::bin())
        .args(["auth", "hash-key", "--stdin"])
        .write_stdin("tm_mine\n")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert_eq!(
        line(&stdout, "sha256"),
        Some(hex_sha256("tm_mine").as_str())
    );
    assert_eq!(
        line(&stdout, "key"),
        None,
        "a given key is not printed back"
    );
    Ok(())
}

#[tokio::test]
async fn serve_with_gateway_auth_refuses_clients_without_the_key() -> TestResult {
    let served = FixtureConfig::start("authed").await?;
    let key = "tm_cli-test-key";
    let yaml = format!(
        "{}gateway:\n  auth:\n    api_keys:\n      - {{ id: cli, sha256: {}, roles: [ops] }}\n",
        config_yaml(&[("fixture", vec![served.fixture.http_url().to_owned()])]),
        hex_sha256(key)
    );
    std::fs::write(&served.path, yaml)?;
    let gateway = Gateway::with_config(&served.path, &["--stateless"]).await?;

    let (code, body) = gateway
        .post_mcp(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "fixture__counter", "arguments": {}}})
            .to_string(),
        )
        .await?;
    assert_eq!(code, 401, "{body}");
    assert_eq!(gateway.get("/status").await?.0, 401);
    assert_eq!(gateway.get("/healthz").await?.0, 200);
    let (code, document) = gateway.get("/.well-known/oauth-protected-resource").await?;
    assert_eq!(code, 200, "{document}");
    let document: Value = serde_json::from_str(&document)?;
    assert_eq!(document["resource"], json!(gateway.url));

    let ctx = CallContext::with_timeout(Duration::from_secs(10));
    let session = Session::connect(&Endpoint::url(gateway.url.clone()).bearer(key)).await?;
    let counted = session.call_tool("fixture__counter", None, &ctx).await?;
    // The refused call never reached the fixture.
    assert_eq!(toolmesh::layers::core::result_text(&counted), "1");
    session.close(Duration::from_secs(1)).await;

    // `toolmesh status` reads /status with the key.
    let (code, _, stderr) = support::run(&["status", "--url", &gateway.url], &[]).await?;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    let (code, stdout, stderr) = support::run(
        &["status", "--url", &gateway.url, "--json"],
        &[("TOOLMESH_TOKEN", key)],
    )
    .await?;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("fixture"), "{stdout}");
    Ok(())
}

#[tokio::test]
async fn a_bad_auth_section_is_a_configuration_error_naming_its_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("toolmesh.yaml");
    std::fs::write(
        &path,
        "gateway:\n  auth:\n    api_keys:\n      - { id: ci, sha256: not-a-digest }\n",
    )?;
    let path = path.to_string_lossy().into_owned();
    let (code, _, stderr) = support::run(&["config", "check", &path], &[]).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("gateway.auth.api_keys[0].sha256"),
        "{stderr}"
    );
    assert!(stderr.contains("hash-key"), "{stderr}");
    let (code, _, stderr) = support::run(
        &["serve", "--config", &path, "--listen", "127.0.0.1:0"],
        &[],
    )
    .await?;
    assert_eq!(code, 2, "{stderr}");
    Ok(())
}

#[tokio::test]
async fn roles_limit_what_a_key_sees_and_calls_and_every_call_is_audited() -> TestResult {
    let served = FixtureConfig::start("policed").await?;
    let key = "tm_reader-key-must-not-leak";
    let audit = served.path.with_file_name("audit.jsonl");
    let yaml = format!(
        "{}gateway:\n  auth:\n    api_keys:\n      - {{ id: reader-1, sha256: {}, roles: [reader] }}\n\
         \x20 roles:\n    reader: {{ allow: [\"fixture__*\"], deny: [\"*counter\"] }}\n\
         \x20 audit: {{ file: \"{}\" }}\n",
        config_yaml(&[("fixture", vec![served.fixture.http_url().to_owned()])]),
        hex_sha256(key),
        audit.display()
    );
    std::fs::write(&served.path, yaml)?;
    let gateway = Gateway::with_config(&served.path, &["--no-watch"]).await?;
    let ctx = CallContext::with_timeout(Duration::from_secs(10));
    let session = Session::connect(&Endpoint::url(gateway.url.clone()).bearer(key)).await?;

    let names: Vec<String> = session
        .list_tools(&ctx)
        .await?
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    assert!(names.contains(&"fixture__echo".to_owned()), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with("counter")), "{names:?}");
    session
        .call_tool(
            "fixture__echo",
            json!({"message": "hi"}).as_object().cloned(),
            &ctx,
        )
        .await?;
    let refused = session
        .call_tool("fixture__counter", None, &ctx)
        .await
        .expect_err("the reader role denies the counter");
    assert!(
        refused.to_string().contains("key:reader-1") && refused.to_string().contains("denies"),
        "{refused}"
    );
    session.close(Duration::from_secs(1)).await;

    let text = std::fs::read_to_string(&audit)?;
    assert!(!text.contains(key), "the key leaked into the audit log");
    let outcomes: Vec<(String, String)> = text
        .lines()
        .map(serde_json::from_str::<Value>)
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .map(|l| {
            (
                l["principal"].as_str().unwrap_or_default().to_owned(),
                l["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("key:reader-1".to_owned(), "ok".to_owned()),
            ("key:reader-1".to_owned(), "denied".to_owned())
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_zero_audit_flush_interval_is_a_configuration_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("toolmesh.yaml");
    std::fs::write(
        &path,
        "gateway:\n  audit: { file: audit.jsonl, flush_interval: 0s }\n",
    )?;
    let path = path.to_string_lossy().into_owned();
    let (code, _, stderr) = support::run(&["config", "check", &path], &[]).await?;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("gateway.audit.flush_interval"), "{stderr}");
    assert!(stderr.contains("100ms"), "{stderr}");
    Ok(())
}

/// `gateway.audit.flush_interval`: the lines wait in memory (the interval is an hour) and
/// SIGTERM's clean stop writes them.
#[tokio::test]
async fn held_audit_lines_are_written_when_serve_stops() -> TestResult {
    let served = FixtureConfig::start("held").await?;
    let audit = served.path.with_file_name("audit.jsonl");
    let yaml = format!(
        "{}gateway:\n  audit: {{ file: \"{}\", flush_interval: 1h }}\n",
        config_yaml(&[("fixture", vec![served.fixture.http_url().to_owned()])]),
        audit.display()
    );
    std::fs::write(&served.path, yaml)?;
    let mut gateway = Gateway::with_config(&served.path, &["--no-watch"]).await?;
    let ctx = CallContext::with_timeout(Duration::from_secs(10));
    let session = gateway.session().await?;
    for message in ["one", "two", "three"] {
        session
            .call_tool(
                "fixture__echo",
                json!({ "message": message }).as_object().cloned(),
                &ctx,
            )
            .await?;
    }
    session.close(Duration::from_secs(1)).await;
    let held = std::fs::read_to_string(&audit).unwrap_or_default();
    assert_eq!(held.lines().count(), 0, "held for the interval: {held}");
    let exit = gateway.terminate(Duration::from_secs(30)).await?;
    assert!(exit.success(), "{exit:?}");
    let written = std::fs::read_to_string(&audit)?;
    let outcomes: Vec<Value> = written
        .lines()
        .map(serde_json::from_str::<Value>)
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .map(|l| l["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        [json!("ok"), json!("ok"), json!("ok")],
        "{written}"
    );
    Ok(())
}

#[tokio::test]
async fn a_clients_credential_is_never_passed_to_an_upstream() -> TestResult {
    // The upstream takes only its own token; the client presents the gateway's key.
    let upstream = toolmesh_testkit::FixtureServer::start(
        toolmesh_testkit::FixtureOptions::new().require_bearer("upstream-secret"),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("toolmesh.yaml");
    let key = "tm_gateway-key";
    std::fs::write(
        &path,
        format!(
            "servers:\n  fixture:\n    url: {}\n    auth: {{ type: bearer, token: upstream-secret }}\n\
             gateway:\n  auth:\n    api_keys: [{{ id: client, sha256: {}, roles: [ops] }}]\n",
            upstream.http_url(),
            hex_sha256(key)
        ),
    )?;
    let gateway = Gateway::with_config(&path, &["--no-watch"]).await?;
    let ctx = CallContext::with_timeout(Duration::from_secs(10));
    let session = Session::connect(&Endpoint::url(gateway.url.clone()).bearer(key)).await?;
    let echoed = session
        .call_tool(
            "fixture__echo",
            json!({"message": "hi"}).as_object().cloned(),
            &ctx,
        )
        .await?;
    // Had the client's key replaced the configured token, the upstream would refuse.
    assert_ne!(echoed.is_error, Some(true), "{echoed:?}");
    session.close(Duration::from_secs(1)).await;
    Ok(())
}
