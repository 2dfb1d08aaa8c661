//! `toolmesh_pool_*` metrics reach an installed recorder (a process-wide one, so this file
//! holds a single test).

use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use toolmesh_core::{CallContext, InstanceId};
use toolmesh_pool::{InstanceConfig, InstancePool};
use toolmesh_testkit::{FixtureOptions, stdio_command};
use toolmesh_transport::Endpoint;

#[tokio::test]
async fn pool_metrics_are_recorded_with_instance_and_kind_labels() -> anyhow::Result<()> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install()?;

    let (program, args) = stdio_command(&FixtureOptions::new().crash_after(2));
    let mut config = InstanceConfig::default();
    config.health_check.enabled = false;
    let pool = InstancePool::start(
        InstanceId::new("metered"),
        Endpoint::stdio(program.to_string_lossy(), args),
        config,
    )
    .await?;
    let ctx = CallContext::with_timeout(Duration::from_secs(10));
    pool.call(
        "echo",
        serde_json::json!({"message": "a"}).as_object().cloned(),
        &ctx,
    )
    .await?;
    assert!(
        pool.call("echo", None, &ctx).await.is_err(),
        "the second call crashes the server"
    );
    pool.call(
        "echo",
        serde_json::json!({"message": "b"}).as_object().cloned(),
        &ctx,
    )
    .await?;
    pool.shutdown().await;

    let mut counters = std::collections::HashMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<String> = key
            .key()
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        if let DebugValue::Counter(n) = value {
            counters.insert(format!("{}{{{}}}", key.key().name(), labels.join(",")), n);
        }
    }
    let instance = "instance=server `metered` (stdio: ";
    let find = |name: &str, extra: &str| {
        counters
            .iter()
            .filter(|(k, _)| k.starts_with(name) && k.contains(instance) && k.contains(extra))
            .map(|(_, v)| *v)
            .sum::<u64>()
    };
    assert_eq!(
        find("toolmesh_pool_sessions_created_total", ""),
        2,
        "{counters:?}"
    );
    assert_eq!(
        find("toolmesh_pool_acquisitions_total", ""),
        3,
        "{counters:?}"
    );
    assert_eq!(
        find("toolmesh_pool_errors_total", "kind=closed"),
        1,
        "{counters:?}"
    );
    assert!(
        find("toolmesh_pool_sessions_destroyed_total", "") >= 2,
        "{counters:?}"
    );
    // The snapshot shows the very figures exported.
    let counts = pool.snapshot().counts;
    let exported = [
        (
            "toolmesh_pool_sessions_created_total",
            counts.sessions_created,
        ),
        (
            "toolmesh_pool_sessions_destroyed_total",
            counts.sessions_destroyed,
        ),
        ("toolmesh_pool_acquisitions_total", counts.acquisitions),
        ("toolmesh_pool_health_checks_total", counts.health_checks),
    ];
    for (name, shown) in exported {
        assert_eq!(find(name, ""), shown, "{name}: {counters:?}");
    }
    assert_eq!(
        counts.errors_by_kind.get("closed").copied(),
        Some(find("toolmesh_pool_errors_total", "kind=closed")),
        "{counters:?}"
    );
    Ok(())
}
