//! HTTPS at the edge: a certificate generated for the test, a client that trusts only it,
//! and a renewed certificate picked up while serving.

use std::{path::Path, time::Duration};

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use toolmesh_core::ServerId;
use toolmesh_registry::{NativeBackend, Policy, Registry, RegistryOptions, RoleGrant, ServiceSpec};
use toolmesh_server::{CatalogServer, GatewayState, HttpOptions, HttpServer, TlsConfig};

/// A self-signed certificate for 127.0.0.1 written as `cert.pem` / `key.pem` in `dir`;
/// returns the certificate's PEM.
fn issue(dir: &Path) -> anyhow::Result<String> {
    let issued =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let cert = issued.cert.pem();
    // Written to the side and renamed, as a certificate renewal tool does.
    std::fs::write(dir.join("cert.tmp"), &cert)?;
    std::fs::write(dir.join("key.tmp"), issued.signing_key.serialize_pem())?;
    std::fs::rename(dir.join("key.tmp"), dir.join("key.pem"))?;
    std::fs::rename(dir.join("cert.tmp"), dir.join("cert.pem"))?;
    Ok(cert)
}

/// A client that trusts `cert` alone.
fn client(cert: &str) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.as_bytes())?])
        .timeout(Duration::from_secs(5))
        .build()?)
}

#[tokio::test]
async fn the_edge_serves_https_and_picks_up_a_renewed_certificate() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = issue(dir.path())?;
    let tls = TlsConfig::new(dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let registry = Registry::new(RegistryOptions::default());
    let state = GatewayState::ready(
        CatalogServer::new(registry.clone()),
        HttpOptions::default().tls(tls),
    );
    let server = HttpServer::bind("127.0.0.1:0".parse()?).await?;
    let url = server.mcp_url_for(true);
    let base = url.trim_end_matches("/mcp").to_owned();
    let stop = CancellationToken::new();
    let serving = tokio::spawn(server.serve(state, stop.clone()));

    let answer = client(&first)?
        .get(format!("{base}/healthz"))
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await?, "ok");
    // Plain HTTP on the same port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("{}/healthz", base.replace("https", "http")))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP must not be served: {plain:?}");

    // Renewed: a client trusting only the new certificate gets in once it is picked up.
    let second = issue(dir.path())?;
    let renewed = client(&second)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match renewed.get(format!("{base}/healthz")).send().await {
            Ok(answer) if answer.status() == 200 => break,
            other if tokio::time::Instant::now() >= deadline => {
                anyhow::bail!("the renewed certificate was not picked up: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    assert!(
        client(&first)?
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err(),
        "the old certificate is no longer presented"
    );

    stop.cancel();
    serving.await??;
    Ok(())
}

#[test]
fn files_that_do_not_load_are_named() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("cert.pem"), "not a certificate")?;
    let error = TlsConfig::new(dir.path().join("cert.pem"), dir.path().join("missing.pem"))
        .server_config()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cert.pem") && error.contains("no certificate"),
        "{error}"
    );
    Ok(())
}

/// A certificate authority and a client certificate it signed for `name`: (CA PEM,
/// client certificate PEM + key PEM).
fn client_certificate(name: &str) -> anyhow::Result<(String, String)> {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "toolmesh test CA");
    let ca_key = rcgen::KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut client = rcgen::CertificateParams::new(Vec::<String>::new())?;
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = rcgen::KeyPair::generate()?;
    let client_cert = client.signed_by(&client_key, &issuer)?;
    Ok((
        ca_cert.pem(),
        format!("{}{}", client_cert.pem(), client_key.serialize_pem()),
    ))
}

/// `tools/call` of `tool` as one JSON request (stateless serving).
async fn call(
    client: &reqwest::Client,
    url: &str,
    tool: &str,
    arguments: Value,
) -> anyhow::Result<Value> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": tool, "arguments": arguments}});
    let answer = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await?;
    Ok(serde_json::from_str(&answer.text().await?)?)
}

#[tokio::test]
async fn a_client_certificate_is_a_caller_with_the_roles_of_its_name() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server_cert = issue(dir.path())?;
    let (ca, identity) = client_certificate("robot-1")?;
    std::fs::write(dir.path().join("clients.pem"), &ca)?;
    let mut tls = TlsConfig::new(dir.path().join("cert.pem"), dir.path().join("key.pem"));
    tls.client_ca = Some(dir.path().join("clients.pem"));
    tls.client_roles = BTreeMap::from([("robot-1".to_owned(), vec!["calc".to_owned()])]);

    let toolbox = toolmesh_tools::Toolbox::default_tools(&Default::default())?;
    let mut spec = ServiceSpec::native(ServerId::new("native"), NativeBackend::toolbox(toolbox));
    spec.prefix = false;
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let roles = BTreeMap::from([(
        "calc".to_owned(),
        RoleGrant {
            allow: vec!["calculator".to_owned()],
            deny: Vec::new(),
        },
    )]);
    registry.set_policy(Some(Policy::new(&roles)?));
    let state = GatewayState::ready(
        CatalogServer::new(registry.clone()),
        HttpOptions::default().tls(tls).stateless(true),
    );
    let server = HttpServer::bind("127.0.0.1:0".parse()?).await?;
    let url = server.mcp_url_for(true);
    let stop = CancellationToken::new();
    let serving = tokio::spawn(server.serve(state, stop.clone()));

    let robot = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(server_cert.as_bytes())?])
        .identity(reqwest::Identity::from_pem(identity.as_bytes())?)
        .build()?;
    let allowed = call(&robot, &url, "calculator", json!({"expression": "1 + 1"})).await?;
    assert_eq!(allowed["result"]["isError"], false, "{allowed}");
    // Refused before its arguments are even looked at.
    let refused = call(&robot, &url, "time_now", json!({"no": "such argument"})).await?;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        refused["error"]["code"] == -32003 && message.contains("`cert:robot-1`"),
        "{refused}"
    );

    // Without a certificate the client is no one in particular: no roles, no policy.
    let anonymous = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(server_cert.as_bytes())?])
        .build()?;
    let answered = call(&anonymous, &url, "time_now", json!({})).await?;
    assert!(answered.get("result").is_some(), "{answered}");

    stop.cancel();
    serving.await??;
    registry.shutdown().await;
    Ok(())
}
