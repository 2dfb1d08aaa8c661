//! Helpers shared by the tests.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use rmcp::model::CallToolResult;
use serde_json::Value;
use toolmesh_tools::{CallContext, CallError, NativeTool};

/// Every wait in these tests is bounded by this.
pub(crate) const LIMIT: Duration = Duration::from_secs(20);

pub(crate) async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(LIMIT, fut)
        .await
        .with_context(|| format!("timed out after {LIMIT:?}: {what}"))
}

pub(crate) fn ctx() -> CallContext {
    CallContext::with_timeout(LIMIT)
}

/// Calls `tool` with `args` (a JSON object) under a generous deadline.
pub(crate) async fn call(tool: &impl NativeTool, args: Value) -> anyhow::Result<CallToolResult> {
    call_with(tool, args, &ctx())
        .await?
        .map_err(anyhow::Error::from)
}

pub(crate) async fn call_with(
    tool: &impl NativeTool,
    args: Value,
    ctx: &CallContext,
) -> anyhow::Result<Result<CallToolResult, CallError>> {
    let Value::Object(arguments) = args else {
        anyhow::bail!("arguments must be an object");
    };
    bounded("tool call", tool.call(arguments, ctx)).await
}

/// The text contents of a result, joined by newlines.
pub(crate) fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts a successful result and returns its structured content.
#[track_caller]
pub(crate) fn ok(result: &CallToolResult) -> Value {
    assert_eq!(
        result.is_error,
        Some(false),
        "expected success: {}",
        text(result)
    );
    assert!(!text(result).is_empty(), "a success carries text");
    let structured = result.structured_content.clone().unwrap_or(Value::Null);
    assert!(
        structured.is_object(),
        "structured content must be an object: {structured}"
    );
    structured
}

/// Asserts a tool error whose text contains every one of `needles`; returns the text.
#[track_caller]
pub(crate) fn tool_err(result: &CallToolResult, needles: &[&str]) -> String {
    let message = text(result);
    assert_eq!(
        result.is_error,
        Some(true),
        "expected a tool error, got: {message}"
    );
    for needle in needles {
        assert!(
            message.contains(needle),
            "tool error should mention `{needle}`: {message}"
        );
    }
    message
}

/// Serves `router` on 127.0.0.1 until the test's runtime ends.
pub(crate) async fn spawn_http(router: axum::Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            eprintln!("test server failed: {error}");
        }
    });
    Ok(addr)
}
