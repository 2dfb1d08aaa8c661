//! The pool against real fixture processes: respawn, breaker, restart, reaping, limits,
//! idle eviction, health checks and shutdown.

use std::time::{Duration, Instant};

use toolmesh_core::{CallContext, CallError, ErrorKind, InstanceId, Phase};
use toolmesh_pool::{HealthCheckMethod, HealthStatus, InstanceConfig, InstancePool};
use toolmesh_resilience::BreakerState;
use toolmesh_testkit::{FixtureOptions, FixtureServer, process, stdio_command};
use toolmesh_transport::Endpoint;

fn stdio(opts: &FixtureOptions) -> Endpoint {
    let (program, args) = stdio_command(opts);
    Endpoint::stdio(program.to_string_lossy(), args)
}

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(10))
}

fn args(v: serde_json::Value) -> Option<toolmesh_core::JsonObject> {
    v.as_object().cloned()
}

/// Fast reconnects, no background checks unless a test enables them.
fn quiet() -> InstanceConfig {
    let mut config = InstanceConfig::default();
    config.health_check.enabled = false;
    config.pool.reconnect.initial_backoff = Duration::from_millis(20);
    config.pool.reconnect.max_backoff = Duration::from_millis(200);
    config
}

async fn echo(pool: &InstancePool) -> Result<String, toolmesh_core::CallError> {
    let out = pool
        .call("echo", args(serde_json::json!({"message": "hi"})), &ctx())
        .await?;
    Ok(out.structured_content.unwrap_or_default()["instance"].to_string())
}

/// Retries `echo` until it succeeds (bounded), returning how many attempts failed.
async fn until_echo_works(pool: &InstancePool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut failed = 0;
    loop {
        match echo(pool).await {
            Ok(_) => return failed,
            Err(_) if Instant::now() < deadline => {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("echo never recovered: {e}"),
        }
    }
}

#[tokio::test]
async fn a_crashed_stdio_server_is_respawned_and_the_crash_call_fails_after_send()
-> anyhow::Result<()> {
    let pool = InstancePool::start(
        InstanceId::new("crashy"),
        stdio(&FixtureOptions::new().crash_after(2)),
        quiet(),
    )
    .await?;
    let first_pid = pool.snapshot().pids[0];
    echo(&pool).await?;
    let err = echo(&pool).await.unwrap_err();
    assert_eq!(err.phase(), Phase::AfterSend, "{err}");
    assert_eq!(err.kind(), ErrorKind::Closed, "{err}");
    assert!(err.to_string().contains("crashy"), "{err}");
    echo(&pool).await?;
    let snapshot = pool.snapshot();
    assert_eq!(snapshot.pids.len(), 1);
    assert_ne!(snapshot.pids[0], first_pid, "a new process answers");
    assert!(snapshot.counts.sessions_created >= 2);
    assert_eq!(snapshot.counts.errors_by_kind.get("closed"), Some(&1));
    assert!(
        process::gone(first_pid).await,
        "the crashed child is reaped"
    );
    pool.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_breaker_opens_after_the_threshold_and_recovers_through_half_open() -> anyhow::Result<()>
{
    let mut server = FixtureServer::start(FixtureOptions::new().crash_after(1)).await?;
    let port = server.http_port();
    let mut config = quiet();
    config.circuit_breaker.failure_threshold = 2;
    config.circuit_breaker.recovery_timeout = Duration::from_millis(300);
    config.circuit_breaker.half_open_max_calls = 1;
    config.circuit_breaker.success_threshold = 1;
    let pool = InstancePool::start(
        InstanceId::new("flappy"),
        Endpoint::url(server.http_url()),
        config,
    )
    .await?;

    let crash = echo(&pool).await.unwrap_err();
    assert!(crash.is_instance_failure(), "{crash}");
    let down = echo(&pool).await.unwrap_err();
    assert!(down.is_instance_failure(), "{down}");
    assert_eq!(pool.breaker().state(), BreakerState::Open);
    let refused = echo(&pool).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::CircuitOpen, "{refused}");
    assert_eq!(refused.phase(), Phase::BeforeSend);
    assert_eq!(pool.health().status, HealthStatus::Unhealthy);

    // The instance comes back healthy on the same port.
    server.kill().await;
    drop(server);
    let _server = FixtureServer::start_on(FixtureOptions::new(), port, port).await?;
    until_echo_works(&pool).await;
    assert_eq!(pool.breaker().state(), BreakerState::Closed);
    assert_eq!(pool.breaker().stats().trips, 1);
    pool.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_http_server_restarted_on_the_same_port_is_used_again_by_the_same_pool()
-> anyhow::Result<()> {
    let mut server = FixtureServer::start(FixtureOptions::new().instance_id("before")).await?;
    let pool = InstancePool::start(
        InstanceId::new("web"),
        Endpoint::url(server.http_url()),
        quiet(),
    )
    .await?;
    assert_eq!(echo(&pool).await?, "\"before\"");
    server.restart().await?;
    until_echo_works(&pool).await;
    assert!(pool.snapshot().sessions >= 1);
    pool.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn two_hundred_forced_respawns_leave_no_process_and_no_zombie() -> anyhow::Result<()> {
    let pool = InstancePool::start(
        InstanceId::new("churn"),
        stdio(&FixtureOptions::new()),
        quiet(),
    )
    .await?;
    let mut pids = Vec::new();
    for _ in 0..200 {
        until_echo_works(&pool).await;
        let pid = pool.snapshot().pids[0];
        pids.push(pid);
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()?;
    }
    until_echo_works(&pool).await;
    pids.extend(pool.snapshot().pids);
    pool.shutdown().await;
    pids.sort_unstable();
    pids.dedup();
    assert!(
        pids.len() >= 201,
        "each kill led to a new process: {}",
        pids.len()
    );
    for pid in &pids {
        assert!(
            process::gone(*pid).await,
            "pid {pid} still exists: {:?}",
            process::state(*pid)
        );
    }
    // Other tests of this binary may hold a child for a moment while reaping it; none may stay.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process::zombie_children().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(process::zombie_children(), Vec::<u32>::new());
    Ok(())
}

#[tokio::test]
async fn a_full_bulkhead_and_an_exhausted_pool_are_distinct_clear_errors() -> anyhow::Result<()> {
    let mut config = quiet();
    config.bulkhead.max_concurrent = 2;
    let pool = InstancePool::start(
        InstanceId::new("narrow"),
        stdio(&FixtureOptions::new()),
        config,
    )
    .await?;
    let slow = || {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.call("sleep", args(serde_json::json!({"ms": 1000})), &ctx())
                .await
        })
    };
    let (a, b) = (slow(), slow());
    wait_for(|| pool.in_flight() == 2).await;
    let full = echo(&pool).await.unwrap_err();
    assert_eq!(full.kind(), ErrorKind::BulkheadFull, "{full}");
    assert!(
        full.to_string().contains("bulkhead") && full.to_string().contains('2'),
        "{full}"
    );
    a.await??;
    b.await??;

    let mut config = quiet();
    config.pool.max_sessions = 1;
    config.pool.max_requests_per_session = 1;
    config.pool.acquire_timeout = Duration::from_millis(200);
    let pool = InstancePool::start(
        InstanceId::new("single"),
        stdio(&FixtureOptions::new()),
        config,
    )
    .await?;
    let busy = {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.call("sleep", args(serde_json::json!({"ms": 1000})), &ctx())
                .await
        })
    };
    wait_for(|| pool.in_flight() == 1).await;
    let exhausted = echo(&pool).await.unwrap_err();
    assert_eq!(exhausted.kind(), ErrorKind::PoolExhausted, "{exhausted}");
    assert!(exhausted.to_string().contains("exhausted"), "{exhausted}");
    assert_eq!(exhausted.phase(), Phase::BeforeSend);
    busy.await??;
    pool.shutdown().await;
    Ok(())
}

async fn wait_for(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached in 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn sessions_grow_under_load_and_idle_ones_are_evicted_down_to_min() -> anyhow::Result<()> {
    let mut config = quiet();
    config.pool.min_sessions = 1;
    config.pool.max_sessions = 3;
    config.pool.max_requests_per_session = 1;
    config.pool.max_idle_time = Duration::from_millis(300);
    let pool = InstancePool::start(
        InstanceId::new("elastic"),
        stdio(&FixtureOptions::new()),
        config,
    )
    .await?;
    assert_eq!(pool.snapshot().sessions, 1, "min_sessions warmed up");
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.call("sleep", args(serde_json::json!({"ms": 300})), &ctx())
                    .await
            })
        })
        .collect();
    for call in calls {
        call.await??;
    }
    assert_eq!(
        pool.snapshot().counts.sessions_created,
        3,
        "one process per concurrent call"
    );
    wait_for(|| pool.snapshot().sessions == 1).await;
    assert_eq!(pool.snapshot().counts.sessions_destroyed, 2);
    pool.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn health_checks_mark_the_instance_down_within_interval_times_threshold_and_up_again()
-> anyhow::Result<()> {
    for method in [HealthCheckMethod::Ping, HealthCheckMethod::ListTools] {
        health_checks_with(method).await?;
    }
    Ok(())
}

async fn health_checks_with(method: HealthCheckMethod) -> anyhow::Result<()> {
    let mut server = FixtureServer::start(FixtureOptions::new()).await?;
    let port = server.http_port();
    let mut config = quiet();
    config.health_check.enabled = true;
    config.health_check.interval = Duration::from_millis(200);
    config.health_check.timeout = Duration::from_millis(200);
    config.health_check.failure_threshold = 3;
    config.health_check.method = method;
    let (interval, threshold) = (
        config.health_check.interval,
        config.health_check.failure_threshold,
    );
    let pool = InstancePool::start(
        InstanceId::new("watched"),
        Endpoint::url(server.http_url()),
        config,
    )
    .await?;
    wait_for(|| pool.health().status == HealthStatus::Healthy).await;

    server.kill().await;
    let killed = Instant::now();
    wait_for(|| pool.health().status == HealthStatus::Unhealthy).await;
    let took = killed.elapsed();
    assert!(
        took <= interval * threshold + Duration::from_secs(2),
        "{method:?} took {took:?}"
    );
    assert!(!pool.health().reason.is_empty());
    assert!(pool.snapshot().counts.health_check_failures >= 1);

    let _server = FixtureServer::start_on(FixtureOptions::new(), port, port).await?;
    wait_for(|| pool.health().status == HealthStatus::Healthy).await;
    pool.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn shutdown_drains_in_flight_calls_then_refuses_and_closes() -> anyhow::Result<()> {
    let pool = InstancePool::start(
        InstanceId::new("draining"),
        stdio(&FixtureOptions::new()),
        quiet(),
    )
    .await?;
    let pid = pool.snapshot().pids[0];
    let in_flight = {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.call("sleep", args(serde_json::json!({"ms": 300})), &ctx())
                .await
        })
    };
    wait_for(|| pool.in_flight() == 1).await;
    let shutdown = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.shutdown().await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !refuses_as_shutting_down(&pool).await {
        assert!(Instant::now() < deadline, "the pool never refused calls");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let finished = in_flight.await??;
    assert_ne!(
        finished.is_error,
        Some(true),
        "the in-flight call completed"
    );
    shutdown.await?;
    assert!(process::gone(pid).await);
    let late = echo(&pool).await.unwrap_err();
    assert_eq!(late.phase(), Phase::BeforeSend);
    assert!(late.to_string().contains("shutting down"), "{late}");
    Ok(())
}

/// Whether the pool refuses calls as shutting down. The probe's operation sends nothing,
/// so probing never adds a call to the server, whichever way it goes.
async fn refuses_as_shutting_down(pool: &InstancePool) -> bool {
    let ctx = ctx();
    let probe = pool.run(&ctx, |_session| async { Ok::<_, CallError>(()) });
    match tokio::time::timeout(Duration::from_secs(5), probe).await {
        Ok(Err(e)) => e.to_string().contains("shutting down"),
        Ok(Ok(())) | Err(_) => false,
    }
}

#[tokio::test]
async fn validate_on_acquire_replaces_a_session_that_died_between_calls() -> anyhow::Result<()> {
    let mut config = quiet();
    config.pool.validate_on_acquire = true;
    let pool = InstancePool::start(
        InstanceId::new("validated"),
        stdio(&FixtureOptions::new()),
        config,
    )
    .await?;
    echo(&pool).await?;
    let counted = pool.call("counter", None, &ctx()).await?;
    assert_eq!(counted.structured_content.unwrap_or_default()["count"], 1);
    let pid = pool.snapshot().pids[0];
    std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()?;
    // A stopped process answers no ping: validation must fail before the call is sent.
    let ctx = CallContext::with_timeout(Duration::from_millis(300));
    let err = pool.call("counter", None, &ctx).await.unwrap_err();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()?;
    assert_eq!(err.phase(), Phase::BeforeSend, "{err}");
    // The replacement starts from zero: the refused call never ran anywhere.
    let deadline = Instant::now() + Duration::from_secs(10);
    let count = loop {
        match pool.call("counter", None, &self::ctx()).await {
            Ok(out) => break out.structured_content.unwrap_or_default()["count"].clone(),
            Err(e) => assert!(Instant::now() < deadline, "never recovered: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(count, 1);
    pool.shutdown().await;
    Ok(())
}
