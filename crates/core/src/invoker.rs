//! The one trait every tool implementation sits behind.

use std::{future::Future, pin::Pin};

use rmcp::model::CallToolResult;

use crate::{CallContext, CallError, ToolCall};

/// A boxed, sendable future, as returned by [`DynInvoker`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs tool calls: an upstream MCP session, a native tool, or the whole router.
///
/// A result with `is_error: true` is a tool-level answer, not a [`CallError`].
pub trait Invoker: Send + Sync {
    /// Runs `call` within the deadline and cancellation of `ctx`.
    fn invoke(
        &self,
        call: ToolCall,
        ctx: &CallContext,
    ) -> impl Future<Output = Result<CallToolResult, CallError>> + Send;
}

/// Object-safe twin of [`Invoker`], implemented for every `Invoker`.
pub trait DynInvoker: Send + Sync {
    /// Same as [`Invoker::invoke`], boxed.
    fn invoke_dyn<'a>(
        &'a self,
        call: ToolCall,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>>;
}

impl<T: Invoker> DynInvoker for T {
    fn invoke_dyn<'a>(
        &'a self,
        call: ToolCall,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(self.invoke(call, ctx))
    }
}
