use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::Query,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde_json::json;
use toolmesh_tools::{Toolbox, ToolsConfig, WebSearch, WebSearchConfig};

use crate::support::{call, call_with, ctx, ok, spawn_http, text, tool_err};

/// What the provider saw: the `q` parameter, `format` and the Authorization header.
type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

/// A SearXNG stand-in; `/locked` wants the bearer token `secret`.
async fn server() -> anyhow::Result<(String, Seen)> {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let handler = move |Query(params): Query<HashMap<String, String>>, headers: HeaderMap| {
        let auth = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Ok(mut seen) = record.lock() {
            seen.push((
                params.get("q").cloned().unwrap_or_default(),
                params.get("format").cloned().unwrap_or_default(),
                auth.clone(),
            ));
        }
        async move {
            if auth.as_deref() != Some("Bearer secret") {
                return (StatusCode::UNAUTHORIZED, "missing token").into_response();
            }
            axum::Json(json!({
                "query": params.get("q"),
                "number_of_results": 3,
                "results": [
                    { "title": "Rust Programming Language", "url": "https://www.rust-lang.org/", "content": "A language empowering everyone.", "engine": "duckduckgo" },
                    { "title": "The Rust Book", "url": "https://doc.rust-lang.org/book/", "content": "An introductory book about Rust.", "engine": "bing" },
                    { "title": "Rust (video game)", "url": "https://rust.facepunch.com/", "content": "A survival game." }
                ],
                "answers": [],
                "suggestions": ["rust lang"]
            }))
            .into_response()
        }
    };
    let router = Router::new()
        .route("/search", get(handler))
        .route("/plain/search", get(|| async { "<html>not json</html>" }))
        .route(
            "/busy/search",
            get(|| async { (StatusCode::TOO_MANY_REQUESTS, "slow down") }),
        );
    let addr = spawn_http(router).await?;
    Ok((format!("http://{addr}"), seen))
}

#[tokio::test]
async fn searches_with_the_api_key() -> anyhow::Result<()> {
    let (base, seen) = server().await?;
    let tool = WebSearch::new(WebSearchConfig {
        api_key: Some("secret".to_owned()),
        ..WebSearchConfig::new(format!("{base}/"))
    })?;
    let result = call(&tool, json!({ "query": "rust language", "max_results": 2 })).await?;
    let structured = ok(&result);
    assert_eq!(
        structured["results"],
        json!([
            { "title": "Rust Programming Language", "url": "https://www.rust-lang.org/", "content": "A language empowering everyone." },
            { "title": "The Rust Book", "url": "https://doc.rust-lang.org/book/", "content": "An introductory book about Rust." }
        ])
    );
    let body = text(&result);
    assert!(
        body.contains("1. Rust Programming Language\n   https://www.rust-lang.org/"),
        "{body}"
    );
    assert!(!body.contains("video game"), "{body}");
    let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(
        seen,
        vec![(
            "rust language".to_owned(),
            "json".to_owned(),
            Some("Bearer secret".to_owned())
        )]
    );
    Ok(())
}

#[tokio::test]
async fn provider_refusals_and_foreign_answers_are_tool_errors() -> anyhow::Result<()> {
    let (base, seen) = server().await?;
    let without_key = WebSearch::new(WebSearchConfig::new(base.clone()))?;
    let result = call(&without_key, json!({ "query": "rust" })).await?;
    tool_err(
        &result,
        &["refused the request", "401", "web_search.api_key"],
    );
    assert_eq!(
        seen.lock().map(|s| s[0].2.clone()).unwrap_or_default(),
        None
    );

    let plain = WebSearch::new(WebSearchConfig::new(format!("{base}/plain")))?;
    let result = call(&plain, json!({ "query": "rust" })).await?;
    tool_err(
        &result,
        &["did not answer with SearXNG JSON", "format=json"],
    );

    let result = call(&without_key, json!({ "query": "rust", "max_results": 0 })).await?;
    tool_err(&result, &["max_results must be between 1 and 20"]);
    let result = call(&without_key, json!({ "q": "rust" })).await?;
    tool_err(&result, &["invalid arguments for `web_search`"]);

    // A provider that is overloaded is not the caller's fault: a call error to fail over on.
    let busy = WebSearch::new(WebSearchConfig::new(format!("{base}/busy")))?;
    let error = call_with(&busy, json!({ "query": "rust" }), &ctx())
        .await?
        .expect_err("429 is a call error");
    assert!(error.is_retryable(), "{error}");
    assert!(error.to_string().contains("HTTP 429"), "{error}");
    Ok(())
}

#[test]
fn registered_only_when_configured_and_key_redacted() -> anyhow::Result<()> {
    let toolbox = Toolbox::default_tools(&ToolsConfig::default())?;
    assert!(toolbox.get("web_search").is_none());
    let config: ToolsConfig = serde_json::from_value(json!({
        "web_search": { "base_url": "http://127.0.0.1:1", "api_key": "hunter2" }
    }))?;
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    let toolbox = Toolbox::default_tools(&config)?;
    assert!(toolbox.get("web_search").is_some());
    Ok(())
}
