//! HTTP plumbing shared by the tools that call web APIs.

use std::time::Duration;

use crate::ToolsError;

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

/// What went wrong with a request to `what`, for a tool error.
pub(crate) fn describe_error(error: &reqwest::Error, what: &str, timeout: Duration) -> String {
    if error.is_timeout() {
        format!(
            "{what} did not answer within {}; try again later",
            humanize(timeout)
        )
    } else if error.is_connect() {
        format!("cannot connect to {what}: {}", chain(error))
    } else {
        format!("request to {what} failed: {}", chain(error))
    }
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
