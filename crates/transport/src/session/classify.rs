//! rmcp errors → [`CallError`]: what failed, where, and whether the request was sent.

use std::{error::Error as StdError, sync::Arc};

use rmcp::{
    service::{ClientInitializeError, ServiceError},
    transport::streamable_http_client::{AuthRequiredError, InsufficientScopeError},
};
use toolmesh_core::{CallError, Phase};

/// Walks an error and its causes, joined for a message.
pub(crate) fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
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

/// Classifies a transport-level failure (connect or send).
pub(crate) fn transport(
    target: &Arc<str>,
    e: &(dyn StdError + 'static),
    phase: Phase,
) -> CallError {
    let reason = chain(e);
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
        ServiceError::TransportSend(err) => transport(target, &err, Phase::AfterSend),
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
        other => match transport(target, &other, Phase::BeforeSend) {
            // Nothing reached a tool during the handshake.
            CallError::Closed { target, reason, .. } => CallError::Connect { target, reason },
            classified => classified,
        },
    }
}
