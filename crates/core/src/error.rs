//! The call error taxonomy: what failed, where, and whether trying elsewhere can help.

use std::{fmt, sync::Arc, time::Duration};

/// Whether a failure happened before the request reached the server or after.
///
/// A before-send failure proves the tool did not run, so any other instance may be tried.
/// After-send, the tool may have run; only idempotent or read-only tools may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The request never reached the server.
    BeforeSend,
    /// The request was sent; the server may have acted on it.
    AfterSend,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::BeforeSend => "before the request was sent",
            Phase::AfterSend => "after the request was sent",
        })
    }
}

/// A failure class, stable and cheap: for metrics labels and decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Could not reach or start the server.
    Connect,
    /// The server refused the credentials (HTTP 401/403).
    Unauthorized,
    /// The deadline passed.
    Timeout,
    /// The connection or process went away.
    Closed,
    /// The caller cancelled.
    Cancelled,
    /// The server answered with a JSON-RPC error.
    Rpc,
    /// A message exceeded a size limit.
    TooLarge,
    /// The server broke the protocol.
    Protocol,
    /// No such tool.
    ToolNotFound,
    /// The instance's circuit breaker is open.
    CircuitOpen,
    /// No pooled session became free in time.
    PoolExhausted,
    /// The instance is at its concurrency limit.
    BulkheadFull,
    /// A rate limit refused the call.
    RateLimited,
    /// The policy does not grant the tool to the caller.
    Denied,
    /// The call itself is malformed.
    InvalidRequest,
    /// Every candidate instance failed.
    Exhausted,
}

impl ErrorKind {
    /// Snake-case label, e.g. for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Closed => "closed",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Rpc => "rpc",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Protocol => "protocol",
            ErrorKind::ToolNotFound => "tool_not_found",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::PoolExhausted => "pool_exhausted",
            ErrorKind::BulkheadFull => "bulkhead_full",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Denied => "denied",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Exhausted => "exhausted",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a tool call (or a connection for one) failed.
///
/// `target` names the server or endpoint, so the message says where it failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Could not connect to, start or initialize the server.
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// Server or endpoint.
        target: Arc<str>,
        /// What went wrong, with a hint.
        reason: String,
    },
    /// HTTP 401/403 from the server.
    #[error(
        "{target} answered HTTP {status} ({}): {reason}; check the bearer token or headers configured for this endpoint",
        if *status == 401 { "401 Unauthorized" } else { "403 Forbidden" }
    )]
    Unauthorized {
        /// Server or endpoint.
        target: Arc<str>,
        /// 401 or 403.
        status: u16,
        /// Server-provided detail.
        reason: String,
    },
    /// The deadline passed.
    #[error("{target} gave no answer within {} ({phase})", humanize(*after))]
    Timeout {
        /// Server or endpoint.
        target: Arc<str>,
        /// How long the call was allowed.
        after: Duration,
        /// Whether the request had been sent.
        phase: Phase,
    },
    /// The connection or child process went away.
    #[error("connection to {target} closed {phase}: {reason}")]
    Closed {
        /// Server or endpoint.
        target: Arc<str>,
        /// Whether the request had been sent.
        phase: Phase,
        /// What is known about why.
        reason: String,
    },
    /// The caller cancelled the call.
    #[error("call to {target} cancelled by the caller ({phase})")]
    Cancelled {
        /// Server or endpoint.
        target: Arc<str>,
        /// Whether the request had been sent.
        phase: Phase,
    },
    /// The server answered with a JSON-RPC error.
    #[error("{target} returned error {code}: {message}")]
    Rpc {
        /// Server or endpoint.
        target: Arc<str>,
        /// JSON-RPC error code.
        code: i32,
        /// Server's message.
        message: String,
    },
    /// A message exceeded a size limit of the transport.
    #[error("a message for {target} exceeds the transport limit ({reason})")]
    TooLarge {
        /// Server or endpoint.
        target: Arc<str>,
        /// Which limit.
        reason: String,
        /// Whether the request had been sent.
        phase: Phase,
    },
    /// The server sent something the protocol does not allow.
    #[error("{target} broke the MCP protocol: {reason}")]
    Protocol {
        /// Server or endpoint.
        target: Arc<str>,
        /// What was wrong.
        reason: String,
    },
    /// No tool of that name is known.
    #[error("no tool named `{tool}`{hint}")]
    ToolNotFound {
        /// The name asked for.
        tool: String,
        /// Suggestion, starting with "; ".
        hint: String,
    },
    /// The circuit breaker of the instance is open.
    #[error("circuit breaker for {target} is open; it is tried again in {}", humanize(*retry_in))]
    CircuitOpen {
        /// Instance.
        target: Arc<str>,
        /// Time until the breaker lets a probe through.
        retry_in: Duration,
    },
    /// No pooled session became available in time.
    #[error("pool of {target} exhausted: no session free within {}; raise max_sessions or acquire_timeout", humanize(*waited))]
    PoolExhausted {
        /// Instance.
        target: Arc<str>,
        /// How long the call waited.
        waited: Duration,
    },
    /// The bulkhead of the instance is full.
    #[error(
        "bulkhead of {target} full: {limit} calls already in flight; raise max_concurrent_requests or retry later"
    )]
    BulkheadFull {
        /// Instance.
        target: Arc<str>,
        /// The configured concurrency limit.
        limit: usize,
    },
    /// A rate limit refused the call.
    #[error("rate limit `{key}` exceeded; retry in {}", humanize(*retry_in))]
    RateLimited {
        /// Which limit (tool, principal or instance).
        key: Arc<str>,
        /// Earliest time a call may pass.
        retry_in: Duration,
    },
    /// The caller may not use the tool (the policy's roles do not grant it).
    #[error("permission denied: `{tool}` is not granted to {principal}: {reason}")]
    Denied {
        /// The tool asked for.
        tool: String,
        /// Who asked.
        principal: String,
        /// The missing grant.
        reason: String,
    },
    /// The call is malformed.
    #[error("invalid call: {reason}")]
    InvalidRequest {
        /// What to fix.
        reason: String,
    },
    /// Every candidate failed; `tried` says what happened at each.
    #[error("`{tool}` failed on every instance tried: {}", tried.join("; "))]
    Exhausted {
        /// The tool called.
        tool: String,
        /// One line per attempt: instance and error.
        tried: Vec<String>,
        /// After-send if any attempt may have reached a server.
        phase: Phase,
    },
}

fn humanize(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl CallError {
    /// The failure class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CallError::Connect { .. } => ErrorKind::Connect,
            CallError::Unauthorized { .. } => ErrorKind::Unauthorized,
            CallError::Timeout { .. } => ErrorKind::Timeout,
            CallError::Closed { .. } => ErrorKind::Closed,
            CallError::Cancelled { .. } => ErrorKind::Cancelled,
            CallError::Rpc { .. } => ErrorKind::Rpc,
            CallError::TooLarge { .. } => ErrorKind::TooLarge,
            CallError::Protocol { .. } => ErrorKind::Protocol,
            CallError::ToolNotFound { .. } => ErrorKind::ToolNotFound,
            CallError::CircuitOpen { .. } => ErrorKind::CircuitOpen,
            CallError::PoolExhausted { .. } => ErrorKind::PoolExhausted,
            CallError::BulkheadFull { .. } => ErrorKind::BulkheadFull,
            CallError::RateLimited { .. } => ErrorKind::RateLimited,
            CallError::Denied { .. } => ErrorKind::Denied,
            CallError::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            CallError::Exhausted { .. } => ErrorKind::Exhausted,
        }
    }

    /// Whether the request may have reached the server.
    pub fn phase(&self) -> Phase {
        match self {
            CallError::Timeout { phase, .. }
            | CallError::Closed { phase, .. }
            | CallError::Cancelled { phase, .. }
            | CallError::TooLarge { phase, .. }
            | CallError::Exhausted { phase, .. } => *phase,
            CallError::Rpc { .. } | CallError::Protocol { .. } => Phase::AfterSend,
            CallError::Connect { .. }
            | CallError::Unauthorized { .. }
            | CallError::ToolNotFound { .. }
            | CallError::CircuitOpen { .. }
            | CallError::PoolExhausted { .. }
            | CallError::BulkheadFull { .. }
            | CallError::RateLimited { .. }
            | CallError::Denied { .. }
            | CallError::InvalidRequest { .. } => Phase::BeforeSend,
        }
    }

    /// Whether another instance (or a later attempt) may succeed where this one failed.
    ///
    /// Says nothing about side effects: combine with [`phase`](Self::phase) and the
    /// tool's idempotency before repeating a call.
    pub fn is_retryable(&self) -> bool {
        match self.kind() {
            ErrorKind::Connect
            | ErrorKind::Timeout
            | ErrorKind::Closed
            | ErrorKind::Protocol
            | ErrorKind::CircuitOpen
            | ErrorKind::PoolExhausted
            | ErrorKind::BulkheadFull
            | ErrorKind::RateLimited => true,
            // JSON-RPC internal errors may be instance-local; parse/param errors are not.
            ErrorKind::Rpc => matches!(self, CallError::Rpc { code: -32603, .. }),
            _ => false,
        }
    }

    /// Whether this failure speaks about the instance's health (for breakers and health):
    /// it could not be reached, was too slow, went away, broke the protocol, or answered
    /// with a JSON-RPC internal error.
    pub fn is_instance_failure(&self) -> bool {
        match self.kind() {
            ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Closed | ErrorKind::Protocol => {
                true
            }
            ErrorKind::Rpc => matches!(self, CallError::Rpc { code: -32603, .. }),
            _ => false,
        }
    }

    /// The server, endpoint or limit the error names, if any.
    pub fn target(&self) -> Option<&str> {
        match self {
            CallError::Connect { target, .. }
            | CallError::Unauthorized { target, .. }
            | CallError::Timeout { target, .. }
            | CallError::Closed { target, .. }
            | CallError::Cancelled { target, .. }
            | CallError::Rpc { target, .. }
            | CallError::TooLarge { target, .. }
            | CallError::Protocol { target, .. }
            | CallError::CircuitOpen { target, .. }
            | CallError::PoolExhausted { target, .. }
            | CallError::BulkheadFull { target, .. } => Some(target),
            CallError::RateLimited { key, .. } => Some(key),
            CallError::ToolNotFound { .. }
            | CallError::Denied { .. }
            | CallError::InvalidRequest { .. }
            | CallError::Exhausted { .. } => None,
        }
    }
}

impl From<crate::NameError> for CallError {
    fn from(e: crate::NameError) -> Self {
        CallError::InvalidRequest {
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Arc<str> {
        Arc::from("server `a` (stdio: fixture)")
    }

    #[test]
    fn phase_decides_what_may_be_repeated() {
        let before = CallError::Connect {
            target: t(),
            reason: "connection refused".into(),
        };
        assert_eq!(before.phase(), Phase::BeforeSend);
        assert!(before.is_retryable());
        let after = CallError::Timeout {
            target: t(),
            after: Duration::from_millis(1500),
            phase: Phase::AfterSend,
        };
        assert_eq!(after.phase(), Phase::AfterSend);
        assert!(after.is_retryable());
        assert!(after.to_string().contains("1.5s"), "{after}");
        let auth = CallError::Unauthorized {
            target: t(),
            status: 401,
            reason: "bad token".into(),
        };
        assert!(!auth.is_retryable());
        assert!(auth.to_string().contains("401 Unauthorized"));
    }

    #[test]
    fn rpc_errors_retry_only_when_internal() {
        let rpc = |code| CallError::Rpc {
            target: t(),
            code,
            message: "x".into(),
        };
        assert!(rpc(-32603).is_retryable());
        assert!(!rpc(-32602).is_retryable());
        assert_eq!(rpc(-32602).kind().as_str(), "rpc");
    }
}
