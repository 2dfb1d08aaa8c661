//! Scale-out: gateways share one registry in etcd. An MCP server is registered (as
//! `toolmesh register` does for a sidecar); a gateway following etcd routes to it within
//! moments; the registration is withdrawn and the instance leaves the catalog.
//!
//! Needs `etcd` on PATH (`cargo xtask test` installs Debian's etcd-server). Run it with
//! `cargo run --example shared_registry`.

use std::time::Duration;

use serde_json::json;
use toolmesh::{
    CallContext, ConfigLoader, Format, Mesh,
    services::discovery::etcd::{EtcdOptions, Member, MemberRecord, Registration},
};
use toolmesh_testkit::{EtcdServer, FixtureOptions, FixtureServer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let etcd = EtcdServer::start().await?;
    let server = FixtureServer::start(FixtureOptions::new().instance_id("search-a")).await?;

    // A gateway whose configuration names no server: everything comes from etcd.
    let yaml = format!(
        "registry:\n  etcd:\n    endpoints: [\"{}\"]\n    prefix: /toolmesh\n",
        etcd.endpoint()
    );
    let config = ConfigLoader::new()
        .text("gateway.yaml", Format::Yaml, yaml)
        .load()?;
    let mesh = Mesh::start(&config).await?;
    let registry = mesh.registry().clone();
    println!("gateway started: {} tools", registry.catalog().len());

    // Register the server, as a sidecar would.
    let options = EtcdOptions::new([etcd.endpoint()]).prefix("/toolmesh");
    let member = Member {
        service: "search".into(),
        id: "search-a".into(),
        record: MemberRecord::new(server.http_url()),
    };
    let registration = Registration::start(options, vec![member], Duration::from_secs(10))?;
    registration.registered(Duration::from_secs(10)).await?;
    let mut events = registry.subscribe();
    while registry.catalog().is_empty() {
        tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
    }
    println!(
        "registered: the catalog now has {} tools",
        registry.catalog().len()
    );

    let ctx = CallContext::with_timeout(Duration::from_secs(10));
    let routed = registry
        .call(
            "search__echo",
            json!({"message": "via etcd"}).as_object().cloned(),
            &ctx,
        )
        .await?;
    println!("search__echo answered by {:?}", routed.meta.instance);
    for source in mesh.sources().status() {
        println!(
            "source {}: {} ({} instances)",
            source.source, source.state, source.instances
        );
    }

    // Withdrawn at once on close (a dead registrar's lease runs out after its TTL instead).
    registration.close().await;
    while !registry.catalog().is_empty() {
        tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
    }
    println!(
        "withdrawn: the catalog has {} tools",
        registry.catalog().len()
    );
    mesh.shutdown().await;
    Ok(())
}
