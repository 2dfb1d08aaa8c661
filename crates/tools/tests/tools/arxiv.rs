use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{Router, extract::Query, http::header, routing::get};
use serde_json::json;
use toolmesh_core::{ErrorKind, Phase};
use toolmesh_tools::{ArxivConfig, ArxivSearch};

use crate::support::{call, call_with, ctx, ok, spawn_http, text, tool_err};

const FEED: &str = include_str!("../data/arxiv.xml");
const ERROR_FEED: &str = include_str!("../data/arxiv_error.xml");

type Seen = Arc<Mutex<Vec<HashMap<String, String>>>>;

/// A stand-in for export.arxiv.org replaying recorded Atom documents.
async fn server() -> anyhow::Result<(String, Seen)> {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    fn atom(body: &'static str) -> impl axum::response::IntoResponse {
        (
            [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
            body,
        )
    }
    let router = Router::new()
        .route(
            "/api/query",
            get(move |Query(params): Query<HashMap<String, String>>| {
                if let Ok(mut seen) = record.lock() {
                    seen.push(params);
                }
                async move { atom(FEED) }
            }),
        )
        .route(
            "/broken/query",
            get(|| async { atom("<feed><entry><title>cut off") }),
        )
        .route(
            "/html/query",
            get(|| async { axum::response::Html("<html><body>Maintenance</body></html>") }),
        )
        .route("/error/query", get(|| async { atom(ERROR_FEED) }))
        .route(
            "/down/query",
            get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "retry later") }),
        );
    let addr = spawn_http(router).await?;
    Ok((format!("http://{addr}"), seen))
}

fn search(base: &str, path: &str) -> anyhow::Result<ArxivSearch> {
    Ok(ArxivSearch::new(ArxivConfig {
        base_url: format!("{base}{path}"),
        ..ArxivConfig::default()
    })?)
}

#[tokio::test]
async fn parses_a_recorded_feed() -> anyhow::Result<()> {
    let (base, seen) = server().await?;
    let tool = search(&base, "/api/query")?;
    let result = call(
        &tool,
        json!({ "query": "attention transformer", "max_results": 2, "sort_by": "submittedDate" }),
    )
    .await?;
    let structured = ok(&result);

    let params = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(params.len(), 1);
    assert_eq!(
        params[0]["search_query"],
        "all:attention AND all:transformer"
    );
    assert_eq!(params[0]["max_results"], "2");
    assert_eq!(params[0]["start"], "0");
    assert_eq!(params[0]["sortBy"], "submittedDate");

    assert_eq!(structured["total_results"], 24871);
    let entries = structured["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(entries.len(), 2);
    let first = &entries[0];
    assert_eq!(first["title"], "Attention Is All You Need");
    assert_eq!(first["id"], "http://arxiv.org/abs/1706.03762v7");
    assert_eq!(first["arxiv_id"], "1706.03762v7");
    assert_eq!(
        first["authors"],
        json!(["Ashish Vaswani", "Noam Shazeer", "Niki Parmar"])
    );
    assert_eq!(first["published"], "2017-06-12T17:57:34Z");
    assert_eq!(first["updated"], "2023-08-02T00:41:18Z");
    assert_eq!(first["links"]["abs"], "http://arxiv.org/abs/1706.03762v7");
    assert_eq!(first["links"]["pdf"], "http://arxiv.org/pdf/1706.03762v7");
    assert_eq!(first["primary_category"], "cs.CL");
    assert_eq!(first["categories"], json!(["cs.CL", "cs.LG"]));
    assert!(
        first["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("The dominant sequence"))
    );
    let second = &entries[1];
    assert_eq!(
        second["title"],
        "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale"
    );
    assert_eq!(
        second["authors"],
        json!(["Alexey Dosovitskiy", "Lucas Beyer"])
    );
    assert_eq!(second["doi"], "10.48550/arXiv.2010.11929");
    assert_eq!(second["links"]["pdf"], "http://arxiv.org/pdf/2010.11929v2");

    let body = text(&result);
    assert!(
        body.contains("1. Attention Is All You Need [1706.03762v7]"),
        "{body}"
    );
    assert!(
        body.contains("PDF: http://arxiv.org/pdf/2010.11929v2"),
        "{body}"
    );

    // arXiv syntax passes through; defaults are 5 results by relevance.
    let result = call(&tool, json!({ "query": "ti:attention AND au:vaswani" })).await?;
    ok(&result);
    let params = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(params[1]["search_query"], "ti:attention AND au:vaswani");
    assert_eq!(params[1]["max_results"], "5");
    assert_eq!(params[1]["sortBy"], "relevance");
    Ok(())
}

#[tokio::test]
async fn malformed_or_foreign_bodies_are_tool_errors() -> anyhow::Result<()> {
    let (base, _) = server().await?;
    let result = call(&search(&base, "/broken/query")?, json!({ "query": "x" })).await?;
    tool_err(&result, &["not a valid arXiv Atom feed", "malformed XML"]);
    let result = call(&search(&base, "/html/query")?, json!({ "query": "x" })).await?;
    tool_err(&result, &["not a valid arXiv Atom feed", "<html>"]);
    let result = call(&search(&base, "/error/query")?, json!({ "query": "x" })).await?;
    tool_err(&result, &["arXiv reported an error", "incorrect id format"]);
    Ok(())
}

/// arXiv down is the provider's failure, not the caller's: a call error, so the router
/// can fall back to another instance serving `arxiv_search`.
#[tokio::test]
async fn arxiv_out_of_reach_or_failing_is_a_call_error() -> anyhow::Result<()> {
    let (base, _) = server().await?;
    let failing = call_with(
        &search(&base, "/down/query")?,
        json!({ "query": "x" }),
        &ctx(),
    )
    .await?
    .expect_err("a 503 is a call error");
    assert_eq!(failing.kind(), ErrorKind::Rpc);
    assert!(failing.is_retryable() && failing.is_instance_failure());
    let message = failing.to_string();
    assert!(
        message.contains("HTTP 503") && message.contains("retry later"),
        "{message}"
    );

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let dead = format!("http://{}", closed.local_addr()?);
    drop(closed);
    let refused = call_with(
        &search(&dead, "/api/query")?,
        json!({ "query": "x" }),
        &ctx(),
    )
    .await?
    .expect_err("a refused connection is a call error");
    assert_eq!(refused.kind(), ErrorKind::Connect);
    assert_eq!(refused.phase(), Phase::BeforeSend);
    assert!(
        refused.to_string().contains("cannot reach arXiv"),
        "{refused}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_arguments_are_tool_errors() -> anyhow::Result<()> {
    let (base, seen) = server().await?;
    let tool = search(&base, "/api/query")?;
    let result = call(&tool, json!({ "query": "x", "max_results": 51 })).await?;
    tool_err(&result, &["max_results must be between 1 and 50"]);
    let result = call(&tool, json!({ "query": "x", "sort_by": "newest" })).await?;
    tool_err(&result, &["invalid arguments", "newest"]);
    let result = call(&tool, json!({ "query": "  " })).await?;
    tool_err(&result, &["query is empty"]);
    assert!(
        seen.lock().map(|s| s.is_empty()).unwrap_or(false),
        "nothing was sent"
    );
    Ok(())
}
