//! HTTP plumbing shared by the tools that call web APIs.

use std::time::Duration;

use toolmesh_core::{CallError, Phase};

use crate::{
    ToolsError,
    native::{self, Failure},
};

/// The User-Agent of every request the tools make.
pub(crate) const USER_AGENT: &str = concat!("toolmesh-tools/", env!("CARGO_PKG_VERSION"));

/// A client for an operator-configured endpoint (arXiv, a search provider).
pub(crate) fn client(tool: &'static str, timeout: Duration) -> Result<reqwest::Client, ToolsError> {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .build()
        .map_err(|source| ToolsError::HttpClient { tool, source })
}

/// Reads at most `limit` bytes of the body; `true` when more was left unread.
pub(crate) async fn read_limited(
    response: &mut reqwest::Response,
    limit: u64,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
        if body.len() == limit {
            // Exactly at the limit: truncated only if anything follows.
            return Ok((body, response.chunk().await?.is_some_and(|c| !c.is_empty())));
        }
    }
    Ok((body, false))
}

/// A request to `what` that got no usable answer: the provider is unavailable to `tool`.
pub(crate) fn unreachable(
    tool: &str,
    error: &reqwest::Error,
    what: &str,
    timeout: Duration,
) -> Failure {
    let target = native::target(tool);
    Failure::Unavailable(if error.is_timeout() {
        CallError::Timeout {
            target,
            after: timeout,
            phase: Phase::AfterSend,
        }
    } else if error.is_connect() {
        CallError::Connect {
            target,
            reason: format!("cannot reach {what}: {}", chain(error)),
        }
    } else {
        CallError::Closed {
            target,
            phase: Phase::AfterSend,
            reason: format!("request to {what} failed: {}", chain(error)),
        }
    })
}

/// An HTTP status that says the provider, not the request, is at fault (429, 5xx).
pub(crate) fn provider_failing(
    tool: &str,
    status: reqwest::StatusCode,
    what: &str,
    body: &[u8],
) -> Option<Failure> {
    (status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()).then(|| {
        Failure::Unavailable(CallError::Rpc {
            target: native::target(tool),
            code: rmcp::model::ErrorCode::INTERNAL_ERROR.0,
            message: format!(
                "{what} answered HTTP {status}: {}",
                excerpt(String::from_utf8_lossy(body).trim(), 500)
            ),
        })
    })
}

/// An error and its causes, joined.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub(crate) fn humanize(d: Duration) -> String {
    if d.as_secs() >= 1 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() >= 1 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The first `max` characters of `text`, with an ellipsis when cut.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
