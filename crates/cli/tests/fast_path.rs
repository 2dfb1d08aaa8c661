//! The gateway's `tools/call` fast path, through a real `toolmesh serve`: which path
//! served each call (`toolmesh_gateway_calls_total` in `/metrics`), one fallback per
//! condition, and the fast path relaying progress, elicitation and cancellation as the
//! rmcp path does.

#[path = "support/gateway.rs"]
mod support;

use std::{collections::BTreeMap, time::Duration};

use anyhow::Context;
use serde_json::{Value, json};
use support::{FixtureConfig, Gateway, eventually};

type TestResult = anyhow::Result<()>;

const ACCEPT: &str = "application/json, text/event-stream";

/// `toolmesh_gateway_calls_total` by `path/reason`.
async fn paths(gateway: &Gateway) -> anyhow::Result<BTreeMap<String, u64>> {
    counted(gateway, "toolmesh_gateway_calls_total", &["path", "reason"]).await
}

/// `toolmesh_upstream_calls_total` by `path`: the leg each upstream call took.
async fn upstream_paths(gateway: &Gateway) -> anyhow::Result<BTreeMap<String, u64>> {
    counted(gateway, "toolmesh_upstream_calls_total", &["path"]).await
}

/// The counter `name` in `/metrics`, keyed by its `labels`' values joined with `/`.
async fn counted(
    gateway: &Gateway,
    name: &str,
    labels: &[&str],
) -> anyhow::Result<BTreeMap<String, u64>> {
    let (code, metrics) = gateway.get("/metrics").await?;
    anyhow::ensure!(code == 200, "/metrics answered {code}");
    let label = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let end = line[start..].find('"')? + start;
        Some(line[start..end].to_owned())
    };
    let prefix = format!("{name}{{");
    Ok(metrics
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| {
            let count = line.rsplit(' ').next()?.parse::<f64>().ok()? as u64;
            let key: Option<Vec<String>> = labels.iter().map(|l| label(line, l)).collect();
            Some((key?.join("/"), count))
        })
        .collect())
}

/// How many calls each `path/reason` gained between `before` and `after`.
fn gained(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(key, n)| {
            let was = before.get(key).copied().unwrap_or(0);
            (*n > was).then(|| (key.clone(), n - was))
        })
        .collect()
}

/// What a request is, the request, its extra headers, the HTTP status expected (0: any)
/// and the `path/reason` it must be counted under.
type Case<'a> = (&'a str, Value, Vec<(&'a str, &'a str)>, u16, &'a str);

fn one(key: &str) -> BTreeMap<String, u64> {
    BTreeMap::from([(key.to_owned(), 1)])
}

/// A client session spoken in raw HTTP, so each request can be shaped by hand.
struct Raw {
    http: reqwest::Client,
    url: String,
    session: String,
}

impl Raw {
    async fn open(url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::new();
        let response = http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", ACCEPT)
            .body(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"elicitation": {}},
                    "clientInfo": {"name": "raw", "version": "0"}}})
                .to_string(),
            )
            .send()
            .await?;
        let session = response
            .headers()
            .get("mcp-session-id")
            .context("no Mcp-Session-Id on the initialize answer")?
            .to_str()?
            .to_owned();
        response.text().await?;
        let raw = Self {
            http,
            url: url.to_owned(),
            session,
        };
        let (code, _) = raw
            .post(
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                &[],
            )
            .await?;
        anyhow::ensure!(code == 202, "initialized answered {code}");
        Ok(raw)
    }

    /// A POST in this session with the usual headers, `extra` replacing or adding some
    /// (an empty value removes the header).
    fn request(&self, body: &Value, extra: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let mut headers = vec![
            ("content-type", "application/json"),
            ("accept", ACCEPT),
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-session-id", self.session.as_str()),
        ];
        for (name, value) in extra {
            headers.retain(|(n, _)| n != name);
            headers.push((name, value));
        }
        let mut request = self.http.post(&self.url).body(body.to_string());
        for (name, value) in headers.into_iter().filter(|(_, v)| !v.is_empty()) {
            request = request.header(name, value);
        }
        request
    }

    async fn post(&self, body: Value, extra: &[(&str, &str)]) -> anyhow::Result<(u16, String)> {
        let response = self.request(&body, extra).send().await?;
        Ok((response.status().as_u16(), response.text().await?))
    }
}

/// The JSON-RPC messages of an SSE (or JSON) body.
fn messages(body: &str) -> Vec<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        return vec![value];
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect()
}

/// The answer (result or error) among `body`'s messages.
fn answer(body: &str) -> Option<Value> {
    messages(body)
        .into_iter()
        .find(|m| m.get("result").is_some() || m.get("error").is_some())
}

fn call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": arguments}})
}

fn text(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A gateway over one fixture and a raw session on it.
async fn gateway_and_session(args: &[&str]) -> anyhow::Result<(FixtureConfig, Gateway, Raw)> {
    let served = FixtureConfig::start("only").await?;
    let mut all = vec!["--no-watch"];
    all.extend_from_slice(args);
    let gateway = Gateway::with_config(&served.path, &all).await?;
    let raw = Raw::open(&gateway.url).await?;
    Ok((served, gateway, raw))
}

/// [`gateway_and_session`] with the fast path on, once a first call (`echo`, id 1) has
/// been served on it: the session's `initialized` may still be in flight at first.
async fn fast_session() -> anyhow::Result<(FixtureConfig, Gateway, Raw)> {
    let (served, gateway, raw) = gateway_and_session(&[]).await?;
    eventually(
        Duration::from_secs(10),
        "a call on the fast path",
        || async {
            let (code, body) = raw
                .post(call(1, "fixture__echo", json!({"message": "hi"})), &[])
                .await
                .ok()?;
            assert_eq!(code, 200, "{body}");
            assert_eq!(text(&answer(&body)?), "hi", "{body}");
            (paths(&gateway).await.ok()?.get("fast/eligible") == Some(&1)).then_some(())
        },
    )
    .await?;
    Ok((served, gateway, raw))
}

#[tokio::test]
async fn session_calls_take_the_fast_path_and_each_fallback_is_counted() -> TestResult {
    let (_served, gateway, raw) = fast_session().await?;
    let echo = |id| call(id, "fixture__echo", json!({"message": "hi"}));
    // The upstream leg of a streamable-HTTP instance is direct as well.
    let upstream = upstream_paths(&gateway).await?;
    assert_eq!(upstream.get("rmcp"), None, "{upstream:?}");
    assert!(
        upstream.get("direct").is_some_and(|n| *n >= 1),
        "{upstream:?}"
    );

    // Each request, what it is answered, and the one path/reason it is counted under.
    let mut shaped = echo(2);
    shaped["params"]["_meta"] = json!({"progressToken": "p"});
    let mut unknown_meta = echo(3);
    unknown_meta["params"]["_meta"] = json!({"io.example/trace": "x"});
    let cases: [Case<'_>; 7] = [
        (
            "a progress token is relayed",
            shaped,
            vec![],
            200,
            "fast/eligible",
        ),
        ("unknown _meta", unknown_meta, vec![], 200, "rmcp/shape"),
        (
            "Accept without SSE",
            echo(4),
            vec![("accept", "application/json")],
            406,
            "rmcp/media",
        ),
        (
            "a 2026-07-28 version header",
            echo(5),
            vec![("mcp-protocol-version", "2026-07-28")],
            0,
            "rmcp/version",
        ),
        (
            "a SEP-2243 header",
            echo(6),
            vec![("mcp-method", "tools/call")],
            0,
            "rmcp/version",
        ),
        (
            "an unknown session",
            echo(7),
            vec![("mcp-session-id", "no-such-session")],
            404,
            "rmcp/unknown_session",
        ),
        (
            "no session",
            echo(8),
            vec![("mcp-session-id", "")],
            0,
            "rmcp/no_session",
        ),
    ];
    for (what, body, headers, status, path) in cases {
        let before = paths(&gateway).await?;
        let (code, answered) = raw.post(body, &headers).await?;
        if status != 0 {
            assert_eq!(code, status, "{what}: {answered}");
        }
        if status == 200 {
            let answer = answer(&answered).context("no answer")?;
            assert_eq!(text(&answer), "hi", "{what}: {answered}");
        }
        assert_eq!(
            gained(&before, &paths(&gateway).await?),
            one(path),
            "{what}"
        );
    }

    // Mistakes are answered alike on both paths: the same JSON-RPC error.
    for (tool, arguments) in [
        ("fixture__echo", json!({"message": 5})),
        ("fixture__nope", json!({})),
    ] {
        let fast = raw.post(call(9, tool, arguments.clone()), &[]).await?;
        let mut via_rmcp = call(9, tool, arguments);
        via_rmcp["params"]["_meta"] = json!({"io.example/trace": "x"});
        let rmcp = raw.post(via_rmcp, &[]).await?;
        let (fast, rmcp) = (answer(&fast.1), answer(&rmcp.1));
        assert_eq!(fast, rmcp, "{tool}");
        assert_eq!(
            fast.and_then(|a| a["error"]["code"].as_i64()),
            Some(-32602),
            "{tool}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn switched_off_every_call_goes_through_rmcp() -> TestResult {
    let (_served, gateway, raw) = gateway_and_session(&["--no-fast-path"]).await?;
    for id in 1..=3 {
        let (code, body) = raw
            .post(call(id, "fixture__echo", json!({"message": "hi"})), &[])
            .await?;
        assert_eq!(code, 200, "{body}");
        assert_eq!(text(&answer(&body).context("no answer")?), "hi");
    }
    assert_eq!(
        paths(&gateway).await?,
        BTreeMap::from([("rmcp/disabled".to_owned(), 3)])
    );
    // Upstream too (the tools were listed through rmcp before).
    assert_eq!(upstream_paths(&gateway).await?.get("direct"), None);
    assert_eq!(upstream_paths(&gateway).await?.get("rmcp"), Some(&3));
    Ok(())
}

#[tokio::test]
async fn stateless_calls_go_through_rmcp() -> TestResult {
    let served = FixtureConfig::start("only").await?;
    let gateway = Gateway::with_config(&served.path, &["--no-watch", "--stateless"]).await?;
    let (code, body) = gateway
        .post_mcp(call(1, "fixture__echo", json!({"message": "hi"})).to_string())
        .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(text(&answer(&body).context("no answer")?), "hi");
    assert_eq!(
        paths(&gateway).await?,
        BTreeMap::from([("rmcp/no_session".to_owned(), 1)])
    );
    Ok(())
}

/// Progress goes on the call's own stream under the client's token, before the answer.
#[tokio::test]
async fn progress_is_relayed_on_the_fast_path() -> TestResult {
    let (_served, gateway, raw) = gateway_and_session(&[]).await?;
    let before = paths(&gateway).await?;
    let mut progress = call(1, "fixture__progress", json!({"steps": 3}));
    progress["params"]["_meta"] = json!({"progressToken": "mine"});
    let (code, body) = raw.post(progress, &[]).await?;
    assert_eq!(code, 200, "{body}");
    let messages = messages(&body);
    let progressed: Vec<f64> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| {
            assert_eq!(m["params"]["progressToken"], "mine", "{m}");
            m["params"]["progress"].as_f64().unwrap_or(-1.0)
        })
        .collect();
    assert_eq!(progressed, [1.0, 2.0, 3.0], "{body}");
    assert_eq!(
        messages.last().map(text).as_deref(),
        Some("done 3 steps"),
        "the answer comes last: {body}"
    );
    let gained = gained(&before, &paths(&gateway).await?);
    // The session's first call may still find `initialized` in flight.
    assert_eq!(gained.values().sum::<u64>(), 1, "{gained:?}");
    Ok(())
}

/// An elicitation from the upstream reaches the client on its call's stream; the
/// client's answer, POSTed back, reaches the upstream.
#[tokio::test]
async fn elicitation_is_relayed_on_the_fast_path() -> TestResult {
    let (_served, gateway, raw) = fast_session().await?;
    let ask = call(
        2,
        "fixture__ask",
        json!({"kind": "elicit", "message": "Name?"}),
    );
    let mut response = raw.request(&ask, &[]).send().await?;
    assert_eq!(response.status().as_u16(), 200);
    let mut seen = String::new();
    let mut answered = false;
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let Some(chunk) = response.chunk().await? else {
                anyhow::bail!("the stream ended without an answer: {seen}");
            };
            seen.push_str(&String::from_utf8_lossy(&chunk));
            for message in messages(&seen) {
                if message["method"] == "elicitation/create" && !answered {
                    answered = true;
                    let reply = json!({"jsonrpc": "2.0", "id": message["id"],
                        "result": {"action": "accept", "content": {"name": "Ada"}}});
                    let (code, body) = raw.post(reply, &[]).await?;
                    anyhow::ensure!(code == 202, "the reply was answered {code}: {body}");
                }
                if message.get("result").is_some() && message["id"] == 2 {
                    return Ok(message);
                }
            }
        }
    })
    .await
    .context("no answer within 20 s")??;
    assert!(answered, "no elicitation reached the client: {seen}");
    assert!(text(&answer).contains("Ada"), "{answer}");
    assert_eq!(paths(&gateway).await?.get("fast/eligible"), Some(&2));
    Ok(())
}

/// `notifications/cancelled` for a fast-path call ends it at once, without an answer.
#[tokio::test]
async fn cancellation_reaches_a_fast_path_call() -> TestResult {
    let (_served, gateway, raw) = fast_session().await?;
    let started = tokio::time::Instant::now();
    let slow = raw.request(&call(2, "fixture__sleep", json!({"ms": 20_000})), &[]);
    let slow = tokio::spawn(async move {
        let response = slow.send().await?;
        anyhow::Ok((response.status().as_u16(), response.text().await?))
    });
    eventually(Duration::from_secs(10), "the sleep in flight", || async {
        let status = gateway.status().await.ok()?;
        let outstanding: u64 = status["instances"]
            .as_array()?
            .iter()
            .filter_map(|i| i["load"]["outstanding"].as_u64())
            .sum();
        (outstanding > 0).then_some(())
    })
    .await?;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 2, "reason": "changed my mind"}});
    let (code, _) = raw.post(cancel, &[]).await?;
    assert_eq!(code, 202);
    let (code, body) = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .context("the cancelled call did not end")???;
    assert_eq!(code, 200);
    assert!(
        answer(&body).is_none(),
        "a cancelled call is not answered: {body}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    eventually(
        Duration::from_secs(10),
        "nothing in flight upstream",
        || async {
            let status = gateway.status().await.ok()?;
            let outstanding: u64 = status["instances"]
                .as_array()?
                .iter()
                .filter_map(|i| i["load"]["outstanding"].as_u64())
                .sum();
            (outstanding == 0).then_some(())
        },
    )
    .await?;
    Ok(())
}

/// Calls until one is served on the fast path (a session's first call may still find
/// its `initialized` in flight), then the counts.
async fn warmed(
    gateway: &Gateway,
    session: &toolmesh::Session,
) -> anyhow::Result<BTreeMap<String, u64>> {
    eventually(
        Duration::from_secs(10),
        "a call on the fast path",
        || async {
            let ctx = toolmesh::CallContext::with_timeout(Duration::from_secs(10));
            let arguments = json!({"message": "hi"}).as_object().cloned();
            session
                .call_tool("fixture__echo", arguments, &ctx)
                .await
                .ok()?;
            let paths = paths(gateway).await.ok()?;
            paths.contains_key("fast/eligible").then_some(paths)
        },
    )
    .await
}

/// Three replicas, 32 calls in flight through the fast path, one replica SIGKILLed:
/// no idempotent call fails.
#[tokio::test]
async fn killing_a_replica_at_32_in_flight_fails_no_fast_path_call() -> TestResult {
    const CONCURRENCY: usize = 32;
    let mut replicas = Vec::new();
    for id in ["r1", "r2", "r3"] {
        replicas.push(
            toolmesh_testkit::FixtureServer::start(
                toolmesh_testkit::FixtureOptions::new().instance_id(id),
            )
            .await?,
        );
    }
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("toolmesh.yaml");
    std::fs::write(
        &config,
        support::config_yaml(&[(
            "fixture",
            replicas.iter().map(|r| r.http_url().to_owned()).collect(),
        )]),
    )?;
    let gateway = Gateway::with_config(&config, &["--no-watch"]).await?;
    let session = gateway.session().await?;
    let before = warmed(&gateway, &session).await?;

    let stop = tokio_util::sync::CancellationToken::new();
    let callers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            tokio::spawn(support::call_until(
                session.clone(),
                "fixture__sleep",
                json!({ "ms": 200 }),
                stop.clone(),
                Duration::from_secs(40),
            ))
        })
        .collect();
    eventually(
        Duration::from_secs(20),
        "calls in flight on fixture-2",
        || async {
            let status = gateway.status().await.ok()?;
            let victim = status["instances"]
                .as_array()?
                .iter()
                .find(|i| i["instance"] == "fixture-2")?;
            (victim["load"]["outstanding"].as_u64()? > 0).then_some(())
        },
    )
    .await?;
    replicas[1].kill().await;
    // Load goes on for a while after the kill: calls routed to the dead replica fail over.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outcomes = support::stop_all_ok(&stop, callers).await?;
    let gained = gained(&before, &paths(&gateway).await?);
    assert_eq!(
        gained,
        BTreeMap::from([("fast/eligible".to_owned(), outcomes.len() as u64)]),
        "every call under load took the fast path"
    );
    session.close(Duration::from_secs(1)).await;
    Ok(())
}

/// A side-effecting call whose replica dies after receiving it is reported to the
/// client, not run again on the other replica.
#[tokio::test]
async fn a_side_effect_cut_after_send_is_reported_not_retried() -> TestResult {
    let dying = toolmesh_testkit::FixtureServer::start(
        toolmesh_testkit::FixtureOptions::new()
            .instance_id("dies")
            .crash_after(1),
    )
    .await?;
    let living = toolmesh_testkit::FixtureServer::start(
        toolmesh_testkit::FixtureOptions::new().instance_id("lives"),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("toolmesh.yaml");
    std::fs::write(
        &config,
        support::config_yaml(&[(
            "fixture",
            vec![dying.http_url().to_owned(), living.http_url().to_owned()],
        )]),
    )?;
    let gateway = Gateway::with_config(&config, &["--no-watch"]).await?;
    let session = gateway.session().await?;
    // No warm-up call: the dying replica dies on the first call it gets, whatever it is.
    let before = paths(&gateway).await?;

    // Counts the living replica returned, and the errors, in call order.
    let mut counts = Vec::new();
    let mut errors = Vec::new();
    for _ in 0..6 {
        let ctx = toolmesh::CallContext::with_timeout(Duration::from_secs(10));
        let result = session.call_tool("fixture__counter", None, &ctx).await?;
        if result.is_error == Some(true) {
            errors.push(format!("{:?}", result.content));
        } else {
            let count = result
                .structured_content
                .as_ref()
                .and_then(|s| s["count"].as_u64())
                .context("no count")?;
            counts.push(count);
        }
    }
    assert_eq!(
        errors.len(),
        1,
        "the cut call is reported: {errors:?} {counts:?}"
    );
    assert_eq!(
        counts,
        (1..=5).collect::<Vec<u64>>(),
        "the living replica ran each call once: the cut one was not retried there"
    );
    let gained = gained(&before, &paths(&gateway).await?);
    assert_eq!(gained.values().sum::<u64>(), 6, "{gained:?}");
    // The session's first call may still find its `initialized` in flight.
    assert!(gained.get("fast/eligible") >= Some(&5), "{gained:?}");
    session.close(Duration::from_secs(1)).await;
    Ok(())
}
