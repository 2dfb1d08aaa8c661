//! [`Hooks`]: the points where an application steers a run — before a tool call (allow,
//! deny with a reason the model is told, or rewrite the arguments: human approval fits
//! here), after its result, and after each model response.

use std::future::{Future, ready};

use async_openai::types::chat::ChatCompletionResponseMessage;
use futures::future::BoxFuture;
use toolmesh_core::JsonObject;

use crate::ToolStep;

/// A tool call the model asked for, about to run.
#[derive(Debug, Clone, Copy)]
pub struct PendingCall<'a> {
    /// The model call (1-based) that asked for it.
    pub step: u32,
    /// The model's id of the call.
    pub call_id: &'a str,
    /// The tool's catalog name.
    pub tool: &'a str,
    /// The arguments, parsed.
    pub arguments: Option<&'a JsonObject>,
}

/// What happens to a [`PendingCall`].
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Run it as asked.
    Allow,
    /// Do not run it; the model is told the reason as the call's result.
    Deny(String),
    /// Run it with these arguments instead.
    Rewrite(JsonObject),
}

/// Callbacks of a run; every method has a default that does nothing (or allows).
pub trait Hooks: Send + Sync + 'static {
    /// Before a tool call runs.
    fn before_tool_call(&self, call: PendingCall<'_>) -> impl Future<Output = Verdict> + Send {
        let _ = call;
        ready(Verdict::Allow)
    }

    /// After a tool call's outcome is known (also for denied and invalid calls).
    fn after_tool_result(&self, step: &ToolStep) -> impl Future<Output = ()> + Send {
        let _ = step;
        ready(())
    }

    /// After each model response, before its tool calls run.
    fn after_model_response(
        &self,
        step: u32,
        message: &ChatCompletionResponseMessage,
    ) -> impl Future<Output = ()> + Send {
        let _ = (step, message);
        ready(())
    }
}

/// Shared hooks, so the application keeps a handle on what they record.
impl<T: Hooks> Hooks for std::sync::Arc<T> {
    fn before_tool_call(&self, call: PendingCall<'_>) -> impl Future<Output = Verdict> + Send {
        (**self).before_tool_call(call)
    }

    fn after_tool_result(&self, step: &ToolStep) -> impl Future<Output = ()> + Send {
        (**self).after_tool_result(step)
    }

    fn after_model_response(
        &self,
        step: u32,
        message: &ChatCompletionResponseMessage,
    ) -> impl Future<Output = ()> + Send {
        (**self).after_model_response(step, message)
    }
}

/// [`Hooks`] as a trait object (a blanket impl covers every `Hooks`).
pub trait DynHooks: Send + Sync + 'static {
    /// [`Hooks::before_tool_call`], boxed.
    fn before_tool_call_dyn<'a>(&'a self, call: PendingCall<'a>) -> BoxFuture<'a, Verdict>;
    /// [`Hooks::after_tool_result`], boxed.
    fn after_tool_result_dyn<'a>(&'a self, step: &'a ToolStep) -> BoxFuture<'a, ()>;
    /// [`Hooks::after_model_response`], boxed.
    fn after_model_response_dyn<'a>(
        &'a self,
        step: u32,
        message: &'a ChatCompletionResponseMessage,
    ) -> BoxFuture<'a, ()>;
}

impl<T: Hooks> DynHooks for T {
    fn before_tool_call_dyn<'a>(&'a self, call: PendingCall<'a>) -> BoxFuture<'a, Verdict> {
        Box::pin(self.before_tool_call(call))
    }

    fn after_tool_result_dyn<'a>(&'a self, step: &'a ToolStep) -> BoxFuture<'a, ()> {
        Box::pin(self.after_tool_result(step))
    }

    fn after_model_response_dyn<'a>(
        &'a self,
        step: u32,
        message: &'a ChatCompletionResponseMessage,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.after_model_response(step, message))
    }
}

impl std::fmt::Debug for dyn DynHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

/// The hooks of an agent without any.
pub(crate) struct NoHooks;

impl Hooks for NoHooks {}
