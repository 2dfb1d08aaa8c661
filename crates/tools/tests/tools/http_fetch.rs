use std::{net::SocketAddr, time::Duration};

use axum::{
    Router,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect},
    routing::get,
};
use serde_json::json;
use toolmesh_tools::{CallContext, CallError, HttpFetch, HttpFetchConfig};

use crate::support::{call, call_with, ok, spawn_http, text, tool_err};

const PAGE: &str = "<!doctype html><html><head><title>Local  Page</title>\
<script>var hidden = 1;</script></head><body><h1>Welcome</h1>\
<p>Some <em>important</em> text.</p><ul><li>first</li><li>second</li></ul></body></html>";

async fn server() -> anyhow::Result<SocketAddr> {
    // The redirect target to another loopback address needs the port, known only later.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let port = addr.port();
    let router =
        Router::new()
            .route("/page", get(|| async { Html(PAGE) }))
            .route(
                "/json",
                get(|| async { axum::Json(json!({ "name": "toolmesh", "tags": ["a", "b"] })) }),
            )
            .route("/big", get(|| async { "x".repeat(100_000) }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    "late"
                }),
            )
            .route("/redirect", get(|| async { Redirect::temporary("/json") }))
            .route(
                "/redirect-loopback",
                get(move || async move {
                    Redirect::temporary(&format!("http://127.0.0.2:{port}/json"))
                }),
            )
            .route(
                "/redirect-file",
                get(|| async { Redirect::temporary("file:///etc/passwd") }),
            )
            .route("/loop", get(|| async { Redirect::temporary("/loop") }))
            .route(
                "/binary",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "image/png")],
                        vec![0x89u8, b'P', b'N', b'G', 0, 0],
                    )
                }),
            )
            .route(
                "/missing",
                get(|| async { (StatusCode::NOT_FOUND, "no such page").into_response() }),
            );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

fn allowed(config: HttpFetchConfig) -> anyhow::Result<HttpFetch> {
    Ok(HttpFetch::new(HttpFetchConfig {
        allow_hosts: vec!["127.0.0.1".to_owned()],
        ..config
    })?)
}

#[tokio::test]
async fn html_becomes_title_and_text() -> anyhow::Result<()> {
    let addr = server().await?;
    let fetch = allowed(HttpFetchConfig::default())?;
    let result = call(&fetch, json!({ "url": format!("http://{addr}/page") })).await?;
    let structured = ok(&result);
    assert_eq!(structured["title"], "Local Page");
    assert_eq!(structured["kind"], "html");
    assert_eq!(structured["status"], 200);
    let body = text(&result);
    assert!(body.contains("Title: Local Page"), "{body}");
    assert!(body.contains("Welcome"), "{body}");
    assert!(body.contains("Some important text."), "{body}");
    assert!(body.contains("first\nsecond"), "{body}");
    assert!(!body.contains("hidden"), "{body}");
    Ok(())
}

#[tokio::test]
async fn json_is_pretty_printed() -> anyhow::Result<()> {
    let addr = server().await?;
    let fetch = allowed(HttpFetchConfig::default())?;
    let result = call(&fetch, json!({ "url": format!("http://{addr}/json") })).await?;
    let structured = ok(&result);
    assert_eq!(structured["kind"], "json");
    assert_eq!(structured["content_type"], "application/json");
    let body = text(&result);
    assert!(body.contains("\"name\": \"toolmesh\""), "{body}");
    assert!(body.contains("  \"tags\": [\n"), "{body}");
    Ok(())
}

#[tokio::test]
async fn bodies_over_the_limit_are_truncated() -> anyhow::Result<()> {
    let addr = server().await?;
    let fetch = allowed(HttpFetchConfig {
        max_bytes: 1000,
        ..HttpFetchConfig::default()
    })?;
    let url = format!("http://{addr}/big");
    let result = call(&fetch, json!({ "url": url })).await?;
    let structured = ok(&result);
    assert_eq!(structured["truncated"], true);
    assert_eq!(structured["bytes"], 1000);
    assert!(
        text(&result).contains("[truncated: only the first 1000 bytes"),
        "{}",
        text(&result)
    );

    // The caller may ask for less, not for more.
    let result = call(&fetch, json!({ "url": url, "max_bytes": 10 })).await?;
    assert_eq!(ok(&result)["bytes"], 10);
    let result = call(&fetch, json!({ "url": url, "max_bytes": 5_000_000 })).await?;
    assert_eq!(ok(&result)["bytes"], 1000);

    let result = call(
        &fetch,
        json!({ "url": format!("http://{addr}/json"), "max_bytes": 100_000 }),
    )
    .await?;
    assert_eq!(ok(&result)["truncated"], false);
    Ok(())
}

#[tokio::test]
async fn slow_servers_time_out_as_a_tool_error() -> anyhow::Result<()> {
    let addr = server().await?;
    let fetch = allowed(HttpFetchConfig {
        timeout: Duration::from_millis(300),
        ..HttpFetchConfig::default()
    })?;
    let started = std::time::Instant::now();
    let result = call(&fetch, json!({ "url": format!("http://{addr}/slow") })).await?;
    tool_err(&result, &["did not answer within 300ms"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    Ok(())
}

#[tokio::test]
async fn the_call_deadline_is_a_call_error() -> anyhow::Result<()> {
    let addr = server().await?;
    let fetch = allowed(HttpFetchConfig::default())?;
    let ctx = CallContext::with_timeout(Duration::from_millis(200));
    let outcome = call_with(
        &fetch,
        json!({ "url": format!("http://{addr}/slow") }),
        &ctx,
    )
    .await?;
    match outcome {
        Err(CallError::Timeout { .. }) => {}
        other => anyhow::bail!("expected a timeout CallError, got {other:?}"),
    }
    let token = tokio_util::sync::CancellationToken::new();
    let ctx = CallContext::with_timeout(Duration::from_secs(10)).cancel_with(token.clone());
    let url = format!("http://{addr}/slow");
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
    };
    let (outcome, ()) = tokio::join!(call_with(&fetch, json!({ "url": url }), &ctx), cancel);
    assert!(matches!(outcome?, Err(CallError::Cancelled { .. })));
    Ok(())
}

#[tokio::test]
async fn loopback_is_refused_without_the_allow_list() -> anyhow::Result<()> {
    let addr = server().await?;
    let fetch = HttpFetch::new(HttpFetchConfig::default())?;
    let result = call(&fetch, json!({ "url": format!("http://{addr}/json") })).await?;
    tool_err(
        &result,
        &["refused", "127.0.0.1 is a loopback", "allow_hosts"],
    );
    let result = call(
        &fetch,
        json!({ "url": format!("http://localhost:{}/json", addr.port()) }),
    )
    .await?;
    tool_err(&result, &["the host `localhost` resolves to", "loopback"]);
    let result = call(
        &fetch,
        json!({ "url": format!("http://[::1]:{}/", addr.port()) }),
    )
    .await?;
    tool_err(&result, &["::1 is a loopback"]);
    // Other spellings of loopback: IPv4-mapped IPv6, decimal, octal.
    for url in [
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0177.0.0.1/",
    ] {
        let result = call(&fetch, json!({ "url": url })).await?;
        tool_err(&result, &["refused", "loopback"]);
    }
    // Never contacted, so never a connection error: private, link-local, unspecified.
    for (url, class) in [
        ("http://10.0.0.1/", "private-network"),
        ("http://192.168.1.1/", "private-network"),
        ("http://172.16.0.1/", "private-network"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[fd00::1]/", "unique-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://224.0.0.1/", "multicast"),
    ] {
        let result = call(&fetch, json!({ "url": url })).await?;
        tool_err(&result, &["refused", class]);
    }
    Ok(())
}

#[tokio::test]
async fn every_redirect_hop_is_checked() -> anyhow::Result<()> {
    let addr = server().await?;
    let fetch = allowed(HttpFetchConfig::default())?;
    let result = call(&fetch, json!({ "url": format!("http://{addr}/redirect") })).await?;
    let structured = ok(&result);
    assert_eq!(structured["final_url"], format!("http://{addr}/json"));
    assert_eq!(
        structured["redirects"],
        json!([format!("http://{addr}/redirect")])
    );

    // 127.0.0.1 is allowed, 127.0.0.2 is not: the hop is refused before connecting.
    let result = call(
        &fetch,
        json!({ "url": format!("http://{addr}/redirect-loopback") }),
    )
    .await?;
    tool_err(&result, &["refused", "127.0.0.2 is a loopback"]);
    let result = call(
        &fetch,
        json!({ "url": format!("http://{addr}/redirect-file") }),
    )
    .await?;
    tool_err(&result, &["not http or https"]);
    let result = call(&fetch, json!({ "url": format!("http://{addr}/loop") })).await?;
    tool_err(&result, &["redirected more than 5 times"]);
    Ok(())
}

#[tokio::test]
async fn other_schemes_bad_urls_and_http_errors() -> anyhow::Result<()> {
    let addr = server().await?;
    let fetch = allowed(HttpFetchConfig::default())?;
    let result = call(&fetch, json!({ "url": "file:///etc/passwd" })).await?;
    tool_err(&result, &["`file` scheme", "http:// and https://"]);
    let result = call(&fetch, json!({ "url": "ftp://example.com/x" })).await?;
    tool_err(&result, &["`ftp` scheme"]);
    let result = call(&fetch, json!({ "url": "not a url" })).await?;
    tool_err(&result, &["not a valid URL"]);
    let result = call(&fetch, json!({ "url": format!("http://{addr}/missing") })).await?;
    tool_err(&result, &["HTTP 404", "no such page"]);
    let result = call(&fetch, json!({ "url": format!("http://{addr}/binary") })).await?;
    assert!(
        text(&result).contains("binary content (image/png), 6 bytes"),
        "{}",
        text(&result)
    );
    let result = call(&fetch, json!({ "link": "http://example.com" })).await?;
    tool_err(&result, &["invalid arguments for `http_fetch`"]);
    Ok(())
}

#[test]
fn malformed_allow_list_entries_are_configuration_errors() {
    let err = HttpFetch::new(HttpFetchConfig {
        allow_hosts: vec!["10.0.0.0/99".to_owned()],
        ..HttpFetchConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("http_fetch.allow_hosts"), "{err}");
}

#[tokio::test]
async fn spawn_http_helper_serves() -> anyhow::Result<()> {
    // The shared helper is used by other tests; check it once here, allowed by host name.
    let addr = spawn_http(Router::new().route("/", get(|| async { "hi" }))).await?;
    let fetch = HttpFetch::new(HttpFetchConfig {
        allow_hosts: vec![
            "localhost".to_owned(),
            "127.0.0.0/8".to_owned(),
            "::1".to_owned(),
        ],
        ..HttpFetchConfig::default()
    })?;
    let result = call(&fetch, json!({ "url": format!("http://{addr}/") })).await?;
    assert!(text(&result).ends_with("hi"), "{}", text(&result));
    Ok(())
}
