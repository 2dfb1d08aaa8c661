//! HTTPS at the edge: a certificate generated for the test, a client that trusts only it,
//! and a renewed certificate picked up while serving.

use std::{path::Path, time::Duration};

use tokio_util::sync::CancellationToken;
use toolmesh_registry::{Registry, RegistryOptions};
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
    let tls = TlsConfig {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
    };
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
    let error = TlsConfig {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("missing.pem"),
    }
    .server_config()
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("cert.pem") && error.contains("no certificate"),
        "{error}"
    );
    Ok(())
}
