//! Fixture fleets and service specs for router tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::time::{Duration, Instant};

use toolmesh_core::{CallContext, InstanceId, JsonObject, ServerId};
use toolmesh_registry::{InstanceSpec, Registry, RegistryOptions, Routed, ServiceSpec, Strategy};
use toolmesh_testkit::{FixtureOptions, FixtureServer};
use toolmesh_transport::Endpoint;

/// `n` HTTP fixtures with instance ids `<prefix>-1..n`.
pub async fn fleet(
    prefix: &str,
    n: usize,
    opts: impl Fn(usize) -> FixtureOptions,
) -> anyhow::Result<Vec<FixtureServer>> {
    let mut servers = Vec::new();
    for i in 1..=n {
        servers.push(FixtureServer::start(opts(i).instance_id(format!("{prefix}-{i}"))).await?);
    }
    Ok(servers)
}

/// A service over `servers`, instance ids matching the fixtures' instance ids.
pub fn service(name: &str, servers: &[FixtureServer], strategy: Strategy) -> ServiceSpec {
    let mut spec = ServiceSpec::single(ServerId::new(name), Endpoint::url(servers[0].http_url()));
    spec.instances = servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            InstanceSpec::new(
                InstanceId::new(format!("{name}-{}", i + 1)),
                Endpoint::url(s.http_url()),
            )
        })
        .collect();
    spec.strategy = strategy;
    spec.instance_config.health_check.enabled = false;
    spec.instance_config.pool.reconnect.initial_backoff = Duration::from_millis(20);
    spec.instance_config.pool.reconnect.max_backoff = Duration::from_millis(200);
    spec
}

pub async fn registry(specs: Vec<ServiceSpec>) -> anyhow::Result<Registry> {
    Ok(Registry::from_specs(specs, RegistryOptions::default()).await?)
}

pub fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(10))
}

pub fn args(v: serde_json::Value) -> Option<JsonObject> {
    v.as_object().cloned()
}

/// Which fixture answered (its `--instance-id`).
pub fn answered_by(routed: &Routed) -> String {
    routed.result.structured_content.clone().unwrap_or_default()["instance"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub async fn wait_for(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
