//! The authenticated rows: the same gateway with `gateway.auth`, roles and an audit file
//! against the unauthenticated one, in the same run (issue: the enterprise edge).

use std::time::Duration;

use serde_json::{Value, json};
use toolmesh::Endpoint;
use toolmesh_testkit::bench;

use super::{Echo, Gateway, cpu_per_call};

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The same gateway with `gateway.auth` (an API key, then a JWT), a role granting the tool
/// and an audit file, against the unauthenticated gateway, in the same run.
pub(super) async fn authenticated(
    plain_config: &std::path::Path,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<Value>> {
    const TARGET_AUTH_ADDED_P50_US: i64 = 10;
    const KEY: &str = "tm_benchmark-key";
    const SECRET: &str = "a-benchmark-secret-of-32-bytes-or-more";
    const RESOURCE: &str = "http://127.0.0.1/mcp";
    const PAIRS: usize = 3;
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(KEY.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let plain_yaml = std::fs::read_to_string(plain_config)?;
    let authed_yaml = |audit: String| {
        format!(
            "{plain_yaml}gateway:\n  auth:\n    resource: {RESOURCE}\n    api_keys: [{{ id: bench, sha256: {digest}, roles: [bench] }}]\n\
             \x20   jwt: {{ issuer: bench, hs256_secret: {SECRET} }}\n\
             \x20 roles: {{ bench: {{ allow: [\"fixture__*\"] }} }}\n\
             \x20 audit: {{ {audit} }}\n"
        )
    };
    let config = dir.join("authenticated.yaml");
    std::fs::write(
        &config,
        authed_yaml(format!("file: \"{}\"", dir.join("audit.jsonl").display())),
    )?;
    // The same with the audit's lines held and written every 100 ms.
    let held = dir.join("authenticated-held.yaml");
    std::fs::write(
        &held,
        authed_yaml(format!(
            "file: \"{}\", flush_interval: 100ms",
            dir.join("audit-held.jsonl").display()
        )),
    )?;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": "bench", "iss": "bench", "aud": RESOURCE, "roles": ["bench"],
                 "exp": jsonwebtoken::get_current_timestamp() + 3600 }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes())?,
    )?;
    // Two processes of the same configuration differ by up to ~20 us in p50 here (layout,
    // not load), more than the target: each pair is a fresh plain and a fresh
    // authenticated process, and the result is the median over the pairs.
    let credentials = [
        ("API key", &config, KEY.to_owned()),
        ("JWT (HS256)", &config, token),
        ("API key, audit flush_interval 100ms", &held, KEY.to_owned()),
    ];
    let mut added: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); credentials.len()];
    let mut rows = Vec::new();
    for pair in 1..=PAIRS {
        let plain = Gateway::start(plain_config, &[]).await?;
        let open = Echo::ready(Endpoint::url(plain.url.clone()), "fixture__echo").await?;
        for ((how, config, credential), (p50s, cpus)) in credentials.iter().zip(&mut added) {
            let authed = Gateway::start(config, &[]).await?;
            let caller = Echo::ready(
                Endpoint::url(authed.url.clone()).bearer(credential.clone()),
                "fixture__echo",
            )
            .await?;
            let mut row = bench::compare(
                &format!("pair {pair}: auth ({how}) + roles + audit vs without, 1 in flight"),
                &open,
                &caller,
                1,
            )
            .await;
            // Each gateway's own CPU per call, in turns.
            let (mut plain_us, mut authed_us) = (0.0, 0.0);
            for _ in 0..2 {
                plain_us += cpu_per_call(&open, &[plain.pid], 1, 10_000).await?[0] / 2.0;
                authed_us += cpu_per_call(&caller, &[authed.pid], 1, 10_000).await?[0] / 2.0;
            }
            println!(
                "pair {pair}: gateway CPU per call, 1 in flight: plain {plain_us:.1}us | with auth ({how}) + roles + audit {authed_us:.1}us | added {:+.1}us",
                authed_us - plain_us
            );
            p50s.push(row["added_p50_us"].as_f64().unwrap_or(f64::NAN));
            cpus.push(authed_us - plain_us);
            row["gateway_cpu_per_call_us"] =
                json!({ "plain": plain_us.round(), "authenticated": authed_us.round() });
            rows.push(row);
            caller.session.close(Duration::from_secs(1)).await;
            authed.stop().await;
        }
        open.session.close(Duration::from_secs(1)).await;
        plain.stop().await;
    }
    for ((how, _, _), (p50s, cpus)) in credentials.iter().zip(&added) {
        let (p50, cpu) = (median(p50s), median(cpus));
        println!(
            "auth ({how}) + roles + audit, median of {PAIRS} process pairs: added p50 {p50:+.1}us, added gateway CPU {cpu:+.1}us per call (target p50 <= {TARGET_AUTH_ADDED_P50_US}us)"
        );
        rows.push(json!({
            "case": format!("echo via toolmesh serve with auth ({how}) + roles + audit vs without, 1 in flight, median of {PAIRS} process pairs"),
            "added_p50_us": p50,
            "added_gateway_cpu_us": (cpu * 10.0).round() / 10.0,
            "pairs_added_p50_us": p50s,
            "target_added_p50_us": TARGET_AUTH_ADDED_P50_US,
        }));
    }
    if super::instructions::available() {
        let plain = super::instructions::per_call(plain_config, None, dir).await?;
        println!("instructions per call (callgrind, user space): plain gateway {plain}");
        for (how, config, credential) in &credentials {
            let edge = super::instructions::per_call(config, Some(credential), dir).await?;
            let added = i128::from(edge) - i128::from(plain);
            println!(
                "instructions per call (callgrind, user space): auth ({how}) + roles + audit {edge}, added {added:+}"
            );
            rows.push(json!({
                "case": format!("instructions per call (callgrind, user space): auth ({how}) + roles + audit vs without"),
                "plain": plain,
                "authenticated": edge,
                "added": added,
            }));
        }
    } else {
        println!("valgrind is not installed: no instruction counts (apt-get install valgrind)");
    }
    if std::env::var_os("TOOLMESH_BENCH_AUTH_BREAKDOWN").is_some() {
        let base = std::fs::read_to_string(plain_config)?;
        let plain = Gateway::start(plain_config, &[]).await?;
        let open = Echo::ready(Endpoint::url(plain.url.clone()), "fixture__echo").await?;
        let variants = [
            ("plain again", String::new()),
            (
                "auth only",
                format!(
                    "gateway:\n  auth:\n    resource: {RESOURCE}\n    api_keys: [{{ id: bench, sha256: {digest}, roles: [bench] }}]\n"
                ),
            ),
            (
                "auth + roles",
                format!(
                    "gateway:\n  auth:\n    resource: {RESOURCE}\n    api_keys: [{{ id: bench, sha256: {digest}, roles: [bench] }}]\n  roles: {{ bench: {{ allow: [\"fixture__*\"] }} }}\n"
                ),
            ),
            (
                "roles + audit, no auth",
                format!(
                    "gateway:\n  roles: {{ bench: {{ allow: [\"fixture__*\"] }} }}\n  audit: {{ file: \"{}\" }}\n",
                    dir.join("audit2.jsonl").display()
                ),
            ),
        ];
        for (i, (label, extra)) in variants.iter().enumerate() {
            let path = dir.join(format!("variant{i}.yaml"));
            std::fs::write(&path, format!("{base}{extra}"))?;
            let gateway = Gateway::start(&path, &[]).await?;
            let endpoint = Endpoint::url(gateway.url.clone());
            let endpoint = if extra.contains("api_keys") {
                endpoint.bearer(KEY)
            } else {
                endpoint
            };
            let caller = Echo::ready(endpoint, "fixture__echo").await?;
            rows.push(
                bench::compare(
                    &format!("breakdown: {label} vs plain, 1 in flight"),
                    &open,
                    &caller,
                    1,
                )
                .await,
            );
            caller.session.close(Duration::from_secs(1)).await;
            gateway.stop().await;
        }
        open.session.close(Duration::from_secs(1)).await;
        plain.stop().await;
    }
    Ok(rows)
}
