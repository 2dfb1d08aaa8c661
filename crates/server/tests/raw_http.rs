//! The HTTP edge answering raw requests as the MCP transport and JSON-RPC specs ask:
//! malformed bodies, batches, oversized streamed bodies, unknown methods, unsupported
//! protocol versions, refused `Host`/`Origin` names; and `/status` keeping command lines
//! to itself unless asked from this machine.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use toolmesh_core::ServerId;
use toolmesh_registry::{Registry, RegistryOptions, ServiceSpec};
use toolmesh_server::{CatalogServer, GatewayState, HttpOptions, HttpServer};
use toolmesh_testkit::{FixtureOptions, FixtureServer, stdio_command};
use toolmesh_transport::Endpoint;

const ACCEPT: &str = "application/json, text/event-stream";

/// A gateway over `endpoint` on a free loopback port, stopped on drop.
struct Gateway {
    addr: std::net::SocketAddr,
    registry: Registry,
    shutdown: CancellationToken,
}

impl Gateway {
    async fn start(endpoint: Endpoint, options: HttpOptions) -> anyhow::Result<Self> {
        let spec = ServiceSpec::single(ServerId::new("fx"), endpoint);
        let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
        let state = GatewayState::ready(CatalogServer::new(registry.clone()), options);
        let server = HttpServer::bind("127.0.0.1:0".parse()?).await?;
        let addr = server.local_addr();
        let shutdown = CancellationToken::new();
        tokio::spawn(server.serve(state, shutdown.clone()));
        Ok(Self {
            addr,
            registry,
            shutdown,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.registry.shutdown().await;
    }
}

/// POSTs `body` (raw text) to `/mcp` as JSON; returns the status and the body as JSON.
async fn post(gateway: &Gateway, body: &str) -> anyhow::Result<(u16, Value)> {
    let response = reqwest::Client::new()
        .post(gateway.url("/mcp"))
        .header("accept", ACCEPT)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let json = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("answer {status} is not JSON ({e}): {text}"))?;
    Ok((status, json))
}

#[tokio::test]
async fn malformed_json_and_batches_are_json_rpc_errors() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let gateway = Gateway::start(Endpoint::url(fixture.http_url()), HttpOptions::default()).await?;

    let (status, answer) = post(&gateway, "{\"jsonrpc\": \"2.0\", \"id\": 1,").await?;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], Value::Null);
    assert_eq!(answer["error"]["code"], -32700, "{answer}");

    let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).to_string();
    let (status, answer) = post(&gateway, &batch).await?;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("batch")),
        "{answer}"
    );

    let (status, answer) = post(&gateway, r#"{"jsonrpc": "2.0", "id": 7, "params": 3}"#).await?;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert_eq!(answer["id"], 7);
    gateway.stop().await;
    Ok(())
}

/// Sends `POST /mcp` with a chunked body (no content-length) over a raw connection and
/// returns the whole answer as text.
async fn post_chunked(gateway: &Gateway, chunks: &[Vec<u8>]) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(gateway.addr).await?;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nhost: {}\r\naccept: {ACCEPT}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        gateway.addr
    );
    let mut request = head.into_bytes();
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_is_413() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let limit = 64 * 1024;
    let gateway = Gateway::start(
        Endpoint::url(fixture.http_url()),
        HttpOptions::default().max_body_bytes(limit),
    )
    .await?;
    // Nine chunks of 8 KiB: the ninth crosses the limit.
    let chunks = vec![vec![b' '; 8 * 1024]; 9];
    let answer = post_chunked(&gateway, &chunks).await?;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(&limit.to_string()), "{answer}");

    // Under the limit, the same streamed body reaches the JSON-RPC check.
    let answer = post_chunked(&gateway, &[b"{\"jsonrpc\"".to_vec(), b": 1".to_vec()]).await?;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("-32700"), "{answer}");
    gateway.stop().await;
    Ok(())
}

/// The JSON-RPC messages in an SSE (or plain JSON) answer.
fn messages(text: &str) -> Vec<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return vec![value];
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect()
}

#[tokio::test]
async fn unknown_methods_and_protocol_versions_are_named() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let gateway = Gateway::start(Endpoint::url(fixture.http_url()), HttpOptions::default()).await?;
    let client = reqwest::Client::new();
    let send = |body: Value, session: Option<&str>, version: &str| {
        let mut request = client
            .post(gateway.url("/mcp"))
            .header("accept", ACCEPT)
            .header("mcp-protocol-version", version)
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let client_info = json!({ "name": "raw-http", "version": "0" });
    let params =
        json!({ "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": client_info });
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params });

    // An unsupported version is refused before anything else, with what is supported.
    let refused = send(initialize.clone(), None, "1999-01-01").await?;
    assert_eq!(refused.status(), 400);
    let answer: Value = refused.json().await?;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("1999-01-01") && m.contains("2025-11-25")),
        "{answer}"
    );

    let response = send(initialize, None, "2025-11-25").await?;
    assert_eq!(response.status(), 200);
    let Some(session) = response.headers().get("mcp-session-id") else {
        anyhow::bail!("no session id in {response:?}");
    };
    let session = session.to_str()?.to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let accepted = send(initialized, Some(&session), "2025-11-25").await?;
    assert_eq!(accepted.status(), 202);

    let unknown = json!({"jsonrpc": "2.0", "id": 2, "method": "foo/bar", "params": {}});
    let response = send(unknown, Some(&session), "2025-11-25").await?;
    assert_eq!(response.status(), 200);
    let text = response.text().await?;
    let answer = messages(&text)
        .into_iter()
        .find(|m| m["id"] == 2)
        .ok_or_else(|| anyhow::anyhow!("no answer to id 2 in {text}"))?;
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    assert_eq!(answer["error"]["message"], "method not found: foo/bar");
    gateway.stop().await;
    Ok(())
}

#[tokio::test]
async fn refused_hosts_and_origins_are_told_how_to_allow_them() -> anyhow::Result<()> {
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let gateway = Gateway::start(
        Endpoint::url(fixture.http_url()),
        HttpOptions::default().allow_host("mesh.internal"),
    )
    .await?;
    let client = reqwest::Client::new();
    let refused = [("host", "evil.example"), ("origin", "https://evil.example")];
    for (path, (header, value)) in ["/mcp", "/status"]
        .into_iter()
        .flat_map(|path| refused.map(|h| (path, h)))
    {
        let response = client
            .get(gateway.url(path))
            .header(header, value)
            .send()
            .await?;
        assert_eq!(response.status(), 403, "{path} {header}");
        let text = response.text().await?;
        assert!(
            text.contains("toolmesh serve --allow-host evil.example"),
            "{path} {header}: {text}"
        );
    }
    // An allowed name passes the rule.
    let response = client
        .get(gateway.url("/status"))
        .header("host", "mesh.internal")
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    gateway.stop().await;
    Ok(())
}

#[tokio::test]
async fn status_shows_command_lines_only_in_detail_from_this_machine() -> anyhow::Result<()> {
    let (program, args) = stdio_command(&FixtureOptions::new());
    let program = program.display().to_string();
    let gateway = Gateway::start(Endpoint::stdio(&program, args), HttpOptions::default()).await?;
    let client = reqwest::Client::new();

    let basic = client.get(gateway.url("/status")).send().await?;
    assert_eq!(basic.status(), 200);
    let basic = basic.text().await?;
    assert!(!basic.contains(&program), "{basic}");
    let report: Value = serde_json::from_str(&basic)?;
    assert_eq!(report["detail"], "basic");
    assert_eq!(report["instances"][0]["service"], "fx");
    assert!(report["instances"][0].get("endpoint").is_none(), "{report}");

    // The test's own connection comes from loopback.
    let full = client
        .get(gateway.url("/status?detail=full"))
        .send()
        .await?;
    assert_eq!(full.status(), 200);
    let full = full.text().await?;
    assert!(full.contains(&program), "{full}");
    gateway.stop().await;
    Ok(())
}

#[tokio::test]
async fn mcp_is_served_under_its_path_with_the_same_checks_and_nowhere_else() -> anyhow::Result<()>
{
    let fixture = FixtureServer::start(FixtureOptions::new()).await?;
    let gateway = Gateway::start(Endpoint::url(fixture.http_url()), HttpOptions::default()).await?;
    let client = reqwest::Client::new();
    let params = json!({ "protocolVersion": "2025-11-25", "capabilities": {},
                         "clientInfo": { "name": "raw-http", "version": "0" } });
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params });
    let status = |path: &'static str, host: Option<&'static str>| {
        let mut request = client
            .post(gateway.url(path))
            .header("accept", ACCEPT)
            .json(&initialize);
        if let Some(host) = host {
            request = request.header("host", host);
        }
        async move { anyhow::Ok(request.send().await?.status().as_u16()) }
    };
    for path in ["/mcp", "/mcp/", "/mcp/sub"] {
        assert_eq!(status(path, None).await?, 200, "{path}");
        // The Host check guards every path MCP is served on.
        assert_eq!(status(path, Some("evil.example")).await?, 403, "{path}");
    }
    assert_eq!(status("/nowhere", None).await?, 404);
    gateway.stop().await;
    Ok(())
}
