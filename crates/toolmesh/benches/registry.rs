//! `cargo xtask bench registry`: the distributed registry at scale. (1) Time from an etcd
//! put to an instance routable in a gateway (a `Mesh`, as `toolmesh serve` runs it), p50
//! and p99, with 1, 100 and 1,000 instances already registered; (2) 1,000 instances loaded
//! in one batch, at start and into a running gateway; (3) the catalog rebuild one change
//! costs at 1,000 and 10,000 services, and memory per service. Real etcd, a real fixture
//! MCP server over HTTP. Writes `target/bench/registry.json`.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use toolmesh::{
    ConfigLoader, Mesh, Registry,
    services::{
        RegistryOptions, ServiceSpec,
        discovery::etcd::{EtcdOptions, Member, MemberRecord, Registration},
    },
};
use toolmesh_core::ServerId;
use toolmesh_testkit::{EtcdServer, FixtureOptions, FixtureServer, bench};
use toolmesh_transport::Endpoint;

/// Instances per service in the registered fleets.
const PER_SERVICE: usize = 10;
/// Samples of put → routable per fleet size.
const SAMPLES: usize = 30;
const WAIT: Duration = Duration::from_secs(120);

fn main() -> anyhow::Result<()> {
    bench::run("registry", || async {
        let etcd = EtcdServer::start().await?;
        let fixture = FixtureServer::start(FixtureOptions::new()).await?;
        let mut rows = Vec::new();
        for fleet in [1, 100, 1000] {
            rows.extend(put_to_routable(&etcd, fixture.http_url(), fleet).await?);
        }
        rows.extend(catalog_rebuild().await?);
        Ok(rows)
    })
}

fn members(prefix: &str, n: usize, url: &str) -> Vec<Member> {
    (0..n)
        .map(|i| Member {
            service: format!("{prefix}{}", i / PER_SERVICE),
            id: format!("{prefix}-{i}"),
            record: MemberRecord::new(url),
        })
        .collect()
}

fn has_instance(registry: &Registry, id: &str) -> bool {
    registry
        .report()
        .instances
        .iter()
        .any(|i| i.instance.as_str() == id)
}

/// Waits until `check` holds, re-checking on every registry event (and every 2 ms).
async fn until(
    registry: &Registry,
    what: &str,
    check: impl Fn(&Registry) -> bool,
) -> anyhow::Result<()> {
    let mut events = registry.subscribe();
    let deadline = Instant::now() + WAIT;
    while !check(registry) {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        let _ = tokio::time::timeout(Duration::from_millis(2), events.recv()).await;
    }
    Ok(())
}

async fn put_to_routable(etcd: &EtcdServer, url: &str, fleet: usize) -> anyhow::Result<Vec<Value>> {
    let prefix = format!("/bench{fleet}");
    let options = EtcdOptions::new([etcd.endpoint()]).prefix(prefix.clone());
    let registered = Registration::start(
        options.clone(),
        members("s", fleet, url),
        Duration::from_secs(60),
    )?;
    registered.registered(WAIT).await?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        format!(
            "registry:\n  etcd:\n    endpoints: [\"{}\"]\n    prefix: {prefix}\n",
            etcd.endpoint()
        ),
    )?;
    let config = ConfigLoader::new().file(&path).load()?;
    let started = Instant::now();
    let mesh = Mesh::start(&config).await?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let registry = mesh.registry().clone();
    anyhow::ensure!(
        registry.report().instances.len() == fleet,
        "not every instance loaded"
    );

    let mut hist = Histogram::<u64>::new(3)?;
    for sample in 0..SAMPLES {
        let id = format!("joiner-{sample}");
        let member = Member {
            service: "s0".into(),
            id: id.clone(),
            record: MemberRecord::new(url),
        };
        let t = Instant::now();
        let joiner = Registration::start(options.clone(), vec![member], Duration::from_secs(60))?;
        until(&registry, "the joiner routable", |r| has_instance(r, &id)).await?;
        hist.record(t.elapsed().as_micros() as u64)?;
        joiner.close().await;
        until(&registry, "the joiner gone", |r| !has_instance(r, &id)).await?;
    }
    let (p50, p99) = (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99));
    println!(
        "etcd put → routable with {fleet} instances registered: p50 {:.1} ms, p99 {:.1} ms ({SAMPLES} samples); gateway start loading them {load_ms:.0} ms",
        p50 as f64 / 1e3,
        p99 as f64 / 1e3
    );
    let mut rows = vec![json!({
        "case": format!("etcd put → routable, {fleet} instances registered"),
        "p50_us": p50, "p99_us": p99, "samples": SAMPLES, "gateway_start_ms": load_ms.round(),
    })];

    if fleet == 1000 {
        // A second thousand registered in one go into the running gateway.
        let t = Instant::now();
        let batch = Registration::start(
            options.clone(),
            members("b", 1000, url),
            Duration::from_secs(60),
        )?;
        until(&registry, "the batch routable", |r| {
            r.report().instances.len() == 2000
        })
        .await?;
        let batch_ms = t.elapsed().as_secs_f64() * 1e3;
        println!("1000 more instances registered at once → all routable in {batch_ms:.0} ms");
        rows.push(json!({ "case": "1000 instances registered at once into a running gateway", "ms": batch_ms.round() }));
        batch.close().await;
    }
    mesh.shutdown().await;
    registered.close().await;
    Ok(rows)
}

/// A service whose instance is never contacted (its tools are given).
fn offline(i: usize) -> ServiceSpec {
    let mut spec = ServiceSpec::single(
        ServerId::new(format!("svc{i}")),
        Endpoint::url("http://127.0.0.1:9/mcp"),
    );
    spec.instance_config.pool.min_sessions = 0;
    spec.instance_config.health_check.enabled = false;
    spec
}

/// What one membership change costs the registry when it holds `n` services (catalog
/// rebuilt once, the unchanged services kept), and memory per service.
async fn catalog_rebuild() -> anyhow::Result<Vec<Value>> {
    let mut rows = Vec::new();
    for n in [1000, 10_000] {
        let before = bench::rss_bytes();
        let registry = Registry::new(RegistryOptions::default());
        registry
            .add_services_with_tools((0..n).map(|i| (offline(i), bench::tools(5))).collect())
            .await?;
        let per_service = bench::rss_bytes().saturating_sub(before) as f64 / n as f64;
        let specs: Vec<ServiceSpec> = (0..n).map(offline).collect();
        let mut hist = Histogram::<u64>::new(3)?;
        for round in 0..20 {
            // One service gains an instance (a registration), then loses it.
            let mut changed = specs.clone();
            let mut joiner = changed[round % n].instances[0].clone();
            joiner.id = toolmesh_core::InstanceId::new(format!("joiner-{round}"));
            changed[round % n].instances.push(joiner);
            let t = Instant::now();
            registry.apply(changed).await?;
            hist.record(t.elapsed().as_micros() as u64)?;
        }
        let (p50, p99) = (hist.value_at_quantile(0.5), hist.value_at_quantile(0.99));
        println!(
            "{n} services (5 tools each): one membership change applied in p50 {:.2} ms, p99 {:.2} ms; ≈ {:.1} KiB per service",
            p50 as f64 / 1e3,
            p99 as f64 / 1e3,
            per_service / 1024.0
        );
        rows.push(json!({ "case": format!("membership change applied, {n} services"), "p50_us": p50, "p99_us": p99, "bytes_per_service": per_service.round() }));
        registry.shutdown().await;
    }
    Ok(rows)
}
