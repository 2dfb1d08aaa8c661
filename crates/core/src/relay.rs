//! [`Relay`]: where an upstream server's messages about one call go.
//!
//! While a tool call runs, the server may report progress, log, or ask the client for
//! something (sampling, elicitation, roots). A gateway must hand these to the client
//! whose call caused them, and only to it; a relay on the [`CallContext`](crate::CallContext)
//! is that client's side of the call.

// Logging is deprecated by SEP-2577 but 2025-11-25 servers still send it.
#![allow(deprecated)]

use std::fmt;

use rmcp::{
    ErrorData,
    model::{
        ClientResult, LoggingMessageNotificationParam, ProgressNotificationParam, ServerRequest,
    },
};

use crate::BoxFuture;

/// The caller's end of one call's server-to-client traffic.
///
/// Every method has a default that drops the message or refuses the request, so a
/// relay implements only what its caller can take.
pub trait Relay: Send + Sync + 'static {
    /// Progress of the call. The token is the upstream one; map it to the caller's.
    fn progress(&self, progress: ProgressNotificationParam) {
        let _ = progress;
    }

    /// A log message the server sent while the call ran.
    fn log(&self, message: LoggingMessageNotificationParam) {
        let _ = message;
    }

    /// A request the server made while the call ran (sampling, elicitation, roots, …);
    /// the answer goes back to the server.
    fn request(
        &self,
        request: ServerRequest,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let _ = request;
        Box::pin(std::future::ready(Err(ErrorData::method_not_found::<
            rmcp::model::CreateMessageRequestMethod,
        >())))
    }
}

impl fmt::Debug for dyn Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Relay")
    }
}
