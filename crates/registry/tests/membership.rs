//! Membership changes (discovery, reloads) keep what did not change: an instance that stays
//! keeps its pool, load and in-flight calls when others join or leave its service.

mod common;

use common::{args, ctx, fleet, registry, service, wait_for};
use serde_json::json;
use toolmesh_registry::{InstanceReport, Registry, Strategy};
use toolmesh_testkit::FixtureOptions;

fn instance(registry: &Registry, id: &str) -> Option<InstanceReport> {
    registry
        .report()
        .instances
        .into_iter()
        .find(|i| i.instance.as_str() == id)
}

#[tokio::test]
async fn instances_that_stay_keep_their_pool_and_calls_when_others_join_and_leave()
-> anyhow::Result<()> {
    let servers = fleet("m", 2, |_| FixtureOptions::new()).await?;
    let both = service("m", &servers, Strategy::RoundRobin);
    let mut first = both.clone();
    first.instances.truncate(1);
    let registry = registry(vec![first]).await?;
    registry
        .call("m__echo", args(json!({"message": "x"})), &ctx())
        .await?;

    // A call in flight on m-1 while m-2 joins.
    let slow = {
        let registry = registry.clone();
        tokio::spawn(async move {
            registry
                .call("m__sleep", args(json!({"ms": 1500})), &ctx())
                .await
        })
    };
    wait_for("the call in flight", async || {
        instance(&registry, "m-1").is_some_and(|i| i.load.outstanding == 1)
    })
    .await;
    registry.apply(vec![both.clone()]).await?;
    let kept = instance(&registry, "m-1").expect("m-1 stays");
    assert_eq!(kept.load.calls, 1, "m-1 kept its load statistics: {kept:?}");
    assert_eq!(
        kept.load.outstanding, 1,
        "and the call in flight on its pool"
    );
    assert!(instance(&registry, "m-2").is_some(), "m-2 joined");
    slow.await??;

    // m-1 leaves; m-2 carries on with what it had.
    registry
        .call("m__echo", args(json!({"message": "y"})), &ctx())
        .await?;
    let before = instance(&registry, "m-2").expect("m-2").load.calls;
    let mut second = both;
    second.instances.remove(0);
    registry.apply(vec![second]).await?;
    assert!(instance(&registry, "m-1").is_none());
    assert_eq!(instance(&registry, "m-2").expect("m-2").load.calls, before);
    let routed = registry
        .call("m__echo", args(json!({"message": "z"})), &ctx())
        .await?;
    assert_eq!(common::answered_by(&routed), "m-2");
    registry.shutdown().await;
    Ok(())
}
