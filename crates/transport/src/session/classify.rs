//! rmcp errors → [`CallError`]: what failed, where, and whether the request was sent.

use std::{error::Error as StdError, sync::Arc};

use rmcp::{
    service::{ClientInitializeError, ServiceError},
    transport::{
        DynamicTransportError,
        streamable_http_client::{AuthRequiredError, InsufficientScopeError, StreamableHttpError},
    },
};
use toolmesh_core::{CallError, Phase};

/// rmcp's error for our streamable HTTP client.
type HttpError = StreamableHttpError<reqwest::Error>;

/// Walks an error and its causes, joined for a message. rmcp's wrapper that only names
/// the transport type is left out.
pub(crate) fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !c.is::<DynamicTransportError>() && !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// An HTTP failure in words, without rmcp's types.
enum Http {
    /// The request never reached the server.
    NotSent(String),
    /// The server answered, not as an MCP server would.
    Answered(String),
}

/// `None` when nothing better than the chain can be said.
fn http_reason(e: &HttpError) -> Option<Http> {
    const NOT_MCP: &str = "this does not look like an MCP endpoint (check the path, usually /mcp)";
    match e {
        StreamableHttpError::Client(r) if r.is_connect() => {
            let refused = find::<std::io::Error>(r)
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
            Some(Http::NotSent(if refused {
                "connection refused; is the server running and listening on this port?".to_owned()
            } else {
                format!("the connection failed: {}", innermost(r))
            }))
        }
        StreamableHttpError::UnexpectedServerResponse(text) => {
            let status = text
                .strip_prefix("HTTP ")
                .and_then(|rest| rest.get(..3))
                .and_then(|code| code.parse::<u16>().ok())?;
            Some(Http::Answered(
                if matches!(status, 404 | 405 | 406 | 415 | 501) {
                    format!("HTTP {status}: {NOT_MCP}")
                } else {
                    let detail = text.split_once(": ").map_or("", |(_, body)| body).trim();
                    let detail: String = detail.chars().take(200).collect();
                    format!("HTTP {status} from the server: {detail}")
                },
            ))
        }
        StreamableHttpError::UnexpectedContentType(kind) => Some(Http::Answered(format!(
            "it answered with content type {}: {NOT_MCP}",
            kind.as_deref().unwrap_or("none")
        ))),
        _ => None,
    }
}

/// The last cause of `e`: the words of the operating system or the library at fault.
fn innermost(e: &(dyn StdError + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(t) = c.downcast_ref::<T>() {
            return Some(t);
        }
        cur = c.source();
    }
    None
}

/// HTTP 401/403 anywhere in the chain (with or without a `WWW-Authenticate` challenge).
fn auth_status(e: &(dyn StdError + 'static), text: &str) -> Option<u16> {
    // rmcp's worker transport does not always chain its sources: fall back to the text.
    if find::<AuthRequiredError>(e).is_some()
        || text.contains("HTTP 401")
        || text.contains("Auth required")
    {
        Some(401)
    } else if find::<InsufficientScopeError>(e).is_some()
        || text.contains("HTTP 403")
        || text.contains("Insufficient scope")
    {
        Some(403)
    } else if let Some(tokio_tungstenite::tungstenite::Error::Http(resp)) =
        find::<tokio_tungstenite::tungstenite::Error>(e)
    {
        matches!(resp.status().as_u16(), 401 | 403).then(|| resp.status().as_u16())
    } else {
        None
    }
}

fn is_connect_failure(e: &(dyn StdError + 'static)) -> bool {
    if find::<reqwest::Error>(e).is_some_and(|r| r.is_connect()) {
        return true;
    }
    find::<std::io::Error>(e).is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::NotFound
                | std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::AddrNotAvailable
        )
    })
}

/// Classifies a transport-level failure (connect or send); the whole chain of causes is
/// logged at debug level, the error keeps what a user needs.
pub(crate) fn transport(
    target: &Arc<str>,
    e: &(dyn StdError + 'static),
    phase: Phase,
) -> CallError {
    let reason = chain(e);
    // rmcp does not chain the HTTP client's error: add its causes.
    let client = match find::<HttpError>(e) {
        Some(StreamableHttpError::Client(r)) => format!(": {}", chain(r)),
        _ => String::new(),
    };
    tracing::debug!(server = %target, "transport failure {phase}: {reason}{client}");
    if let Some(status) = auth_status(e, &reason) {
        return CallError::Unauthorized {
            target: target.clone(),
            status,
            reason,
        };
    }
    if reason.contains("HTTP 413") || reason.contains("exceeded the maximum size") {
        return CallError::TooLarge {
            target: target.clone(),
            reason,
            phase,
        };
    }
    if let Some(http) = find::<HttpError>(e).and_then(http_reason) {
        return match http {
            Http::NotSent(reason) => CallError::Connect {
                target: target.clone(),
                reason,
            },
            Http::Answered(reason) if phase == Phase::BeforeSend => CallError::Connect {
                target: target.clone(),
                reason,
            },
            Http::Answered(reason) => CallError::Closed {
                target: target.clone(),
                phase,
                reason,
            },
        };
    }
    if is_connect_failure(e) {
        return CallError::Connect {
            target: target.clone(),
            reason,
        };
    }
    CallError::Closed {
        target: target.clone(),
        phase,
        reason,
    }
}

/// Classifies a failed request on an established session.
pub(crate) fn service(
    target: &Arc<str>,
    e: ServiceError,
    closed_reason: Option<&str>,
) -> CallError {
    match e {
        ServiceError::McpError(err) => CallError::Rpc {
            target: target.clone(),
            code: err.code.0,
            message: err.message.into_owned(),
        },
        ServiceError::TransportClosed => CallError::Closed {
            target: target.clone(),
            phase: Phase::AfterSend,
            reason: closed_reason.unwrap_or("the transport closed").to_owned(),
        },
        // A failed HTTP POST may have reached the server unless the connect itself failed.
        ServiceError::TransportSend(err) => transport(target, &*err.error, Phase::AfterSend),
        ServiceError::Timeout { timeout } => CallError::Timeout {
            target: target.clone(),
            after: timeout,
            phase: Phase::AfterSend,
        },
        ServiceError::Cancelled { .. } => CallError::Cancelled {
            target: target.clone(),
            phase: Phase::AfterSend,
        },
        other => CallError::Protocol {
            target: target.clone(),
            reason: other.to_string(),
        },
    }
}

/// Classifies a failed connect + initialize.
pub(crate) fn initialize(target: &Arc<str>, e: ClientInitializeError) -> CallError {
    match e {
        ClientInitializeError::JsonRpcError(err) => CallError::Connect {
            target: target.clone(),
            reason: format!(
                "initialize was refused with error {}: {}",
                err.code.0, err.message
            ),
        },
        ClientInitializeError::ConnectionClosed(what) => CallError::Connect {
            target: target.clone(),
            reason: format!("the server closed the connection during initialize ({what})"),
        },
        ClientInitializeError::TransportError { error, context } => {
            tracing::debug!(server = %target, "the MCP handshake failed when {context}");
            match transport(target, &*error.error, Phase::BeforeSend) {
                // Nothing reached a tool during the handshake.
                CallError::Closed { target, reason, .. } => CallError::Connect { target, reason },
                classified => classified,
            }
        }
        other => match transport(target, &other, Phase::BeforeSend) {
            // Nothing reached a tool during the handshake.
            CallError::Closed { target, reason, .. } => CallError::Connect { target, reason },
            classified => classified,
        },
    }
}
