//! `registry:` in a configuration: services found by discovery sources join the mesh
//! beside `servers:` (here local `server.json` files; etcd and the MCP Registry API have
//! their own tests in the registry and cli crates).

use std::time::Duration;

use serde_json::json;
use toolmesh::{CallContext, ConfigLoader, Mesh};
use toolmesh_testkit::{FixtureOptions, FixtureServer};

#[tokio::test]
async fn a_server_json_file_adds_a_routable_service_and_joins_a_configured_one()
-> anyhow::Result<()> {
    let tickets = FixtureServer::start(FixtureOptions::new().instance_id("tickets")).await?;
    let configured = FixtureServer::start(FixtureOptions::new().instance_id("search-a")).await?;
    let extra = FixtureServer::start(FixtureOptions::new().instance_id("search-b")).await?;
    let dir = tempfile::tempdir()?;
    let server_json = |name: &str, url: &str| {
        json!({
            "name": name,
            "version": "1.0.0",
            "remotes": [{"type": "streamable-http", "url": url}]
        })
        .to_string()
    };
    std::fs::write(
        dir.path().join("tickets.json"),
        server_json("com.example/Tickets", tickets.http_url()),
    )?;
    std::fs::write(
        dir.path().join("search.json"),
        server_json("com.example/search", extra.http_url()),
    )?;
    let config_path = dir.path().join("toolmesh.yaml");
    std::fs::write(
        &config_path,
        format!(
            "servers:\n  search:\n    instances:\n      - id: search-a\n        url: {}\nregistry:\n  mcp_registry:\n    files: [{:?}, {:?}]\n",
            configured.http_url(),
            dir.path().join("tickets.json"),
            dir.path().join("search.json"),
        ),
    )?;
    let config = ConfigLoader::new().file(&config_path).load()?;
    let mesh = Mesh::start(&config).await?;
    let registry = mesh.registry();
    let ctx = CallContext::with_timeout(Duration::from_secs(10));

    let routed = registry
        .call(
            "tickets__echo",
            json!({"message": "hi"}).as_object().cloned(),
            &ctx,
        )
        .await?;
    assert_eq!(
        routed.meta.instance.as_ref().map(|i| i.as_str()),
        Some("tickets-remote-1")
    );

    // The discovered instance joined the configured service, which keeps its own.
    let report = registry.report();
    let mut search: Vec<String> = report
        .instances
        .iter()
        .filter(|i| i.service.as_str() == "search")
        .map(|i| i.instance.to_string())
        .collect();
    search.sort();
    assert_eq!(search, ["search-a", "search-remote-1"]);
    let status = mesh.sources().status();
    assert_eq!(status[0].source, "mcp_registry");
    assert_eq!(status[0].state, "live");
    assert_eq!(status[0].services, 2);
    mesh.shutdown().await;
    Ok(())
}

/// An etcd event: its kind (0 put, 1 delete) and key.
type Seen = (i32, String);

#[tokio::test]
async fn a_reload_republishes_without_withdrawing_the_instances_that_stay() -> anyhow::Result<()> {
    use toolmesh_testkit::EtcdServer;

    let etcd = EtcdServer::start().await?;
    let a = FixtureServer::start(FixtureOptions::new().instance_id("fx-a")).await?;
    let b = FixtureServer::start(FixtureOptions::new().instance_id("fx-b")).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("toolmesh.yaml");
    let config = |urls: &[(&str, &str)]| {
        let mut yaml = format!(
            "registry:\n  etcd:\n    endpoints: [\"{}\"]\n    prefix: /pub\n  publish: true\nservers:\n  fx:\n    instances:\n",
            etcd.endpoint()
        );
        for (id, url) in urls {
            yaml.push_str(&format!("      - id: {id}\n        url: {url}\n"));
        }
        yaml
    };
    std::fs::write(&path, config(&[("fx-a", a.http_url())]))?;

    // Every event under the prefix, from etcd itself.
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None).await?;
    let mut events = client
        .watch(
            "/pub/",
            Some(etcd_client::WatchOptions::new().with_prefix()),
        )
        .await?;
    let mesh = Mesh::start_watching(ConfigLoader::new().file(&path)).await?;
    let mut seen: Vec<Seen> = Vec::new();
    let mut until = async |seen: &mut Vec<Seen>, what: &str, done: &dyn Fn(&[Seen]) -> bool| {
        while !done(seen) {
            let response = tokio::time::timeout(Duration::from_secs(20), events.message())
                .await
                .map_err(|_| anyhow::anyhow!("timed out waiting for {what}: {seen:?}"))??
                .ok_or_else(|| anyhow::anyhow!("the watch ended"))?;
            for event in response.events() {
                if let Some(kv) = event.kv() {
                    seen.push((event.0.r#type, kv.key_str()?.to_owned()));
                }
            }
        }
        anyhow::Ok(())
    };
    fn put(key: &'static str) -> impl Fn(&[Seen]) -> bool {
        move |seen| seen.iter().any(|(kind, k)| *kind == 0 && k.ends_with(key))
    }
    until(&mut seen, "fx-a published", &put("/fx-a")).await?;

    std::fs::write(
        &path,
        config(&[("fx-a", a.http_url()), ("fx-b", b.http_url())]),
    )?;
    until(&mut seen, "fx-b published", &put("/fx-b")).await?;
    assert!(
        !seen.iter().any(|(t, k)| *t == 1 && k.ends_with("/fx-a")),
        "fx-a was withdrawn during the reload: {seen:?}"
    );
    mesh.shutdown().await;
    Ok(())
}
