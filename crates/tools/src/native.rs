//! The definition of a native tool, its object-safe twin and its [`Invoker`] adapter.

use std::{future::Future, sync::Arc};

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool};
use serde::de::DeserializeOwned;
use toolmesh_core::{BoxFuture, CallContext, CallError, Invoker, Phase, ToolCall};

/// A tool implemented in-process.
///
/// Bad input (wrong arguments, an impossible request, a refused path or address) is
/// answered with `Ok` and a result whose `is_error` is `true` (see [`tool_error`]), so
/// the model can read what was wrong and correct itself. `Err` is for the call's deadline
/// or cancellation ([`CallContext`]), and for a provider the tool depends on being out of
/// reach or failing, so the router can try another instance serving the same tool.
pub trait NativeTool: Send + Sync + 'static {
    /// Name, description, input schema and annotations, as listed by `tools/list`.
    fn definition(&self) -> Tool;

    /// Runs the tool with `arguments` (an empty object when the caller sent none).
    fn call(
        &self,
        arguments: JsonObject,
        ctx: &CallContext,
    ) -> impl Future<Output = Result<CallToolResult, CallError>> + Send;
}

/// Object-safe twin of [`NativeTool`], implemented for every `NativeTool`.
pub trait DynNativeTool: Send + Sync + 'static {
    /// Same as [`NativeTool::definition`].
    fn definition_dyn(&self) -> Tool;

    /// Same as [`NativeTool::call`], boxed.
    fn call_dyn<'a>(
        &'a self,
        arguments: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>>;
}

impl<T: NativeTool> DynNativeTool for T {
    fn definition_dyn(&self) -> Tool {
        self.definition()
    }

    fn call_dyn<'a>(
        &'a self,
        arguments: JsonObject,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<CallToolResult, CallError>> {
        Box::pin(self.call(arguments, ctx))
    }
}

/// One native tool behind the [`Invoker`] trait.
///
/// It ignores the namespace of [`ToolCall::name`] (and the tool part, too: it has only
/// one tool to call) and runs its tool within the deadline and cancellation of the
/// context.
#[derive(Clone)]
pub struct NativeInvoker {
    tool: Arc<dyn DynNativeTool>,
    /// Kept so a call does not build the whole definition to name its errors.
    name: Arc<str>,
}

impl NativeInvoker {
    /// Wraps `tool`.
    pub fn new(tool: impl NativeTool) -> Self {
        Self::from_dyn(Arc::new(tool))
    }

    /// Wraps an already shared tool.
    pub fn from_dyn(tool: Arc<dyn DynNativeTool>) -> Self {
        let name = Arc::from(tool.definition_dyn().name.as_ref());
        Self { tool, name }
    }

    /// The tool's definition.
    pub fn definition(&self) -> Tool {
        self.tool.definition_dyn()
    }

    /// The wrapped tool.
    pub fn tool(&self) -> &Arc<dyn DynNativeTool> {
        &self.tool
    }
}

impl std::fmt::Debug for NativeInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("NativeInvoker").field(&self.name).finish()
    }
}

impl From<Arc<dyn DynNativeTool>> for NativeInvoker {
    fn from(tool: Arc<dyn DynNativeTool>) -> Self {
        Self::from_dyn(tool)
    }
}

impl Invoker for NativeInvoker {
    async fn invoke(&self, call: ToolCall, ctx: &CallContext) -> Result<CallToolResult, CallError> {
        let arguments = call.arguments.unwrap_or_default();
        bounded(&self.name, ctx, self.tool.call_dyn(arguments, ctx)).await?
    }
}

/// A tool error: `is_error: true` with `message` as text content.
///
/// Say what was wrong and how to fix it; the model reads it.
pub fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// A successful result: `text` as content and `structured` as structured content.
///
/// A `structured` value that is not a JSON object is wrapped as `{"result": value}`,
/// since MCP structured content is an object.
pub fn tool_success(text: impl Into<String>, structured: serde_json::Value) -> CallToolResult {
    let structured = match structured {
        serde_json::Value::Object(map) => serde_json::Value::Object(map),
        other => serde_json::json!({ "result": other }),
    };
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    result
}

/// Runs `work` on the arguments of `tool`. Arguments that do not parse, and an `Err` from
/// `work`, become a [`tool_error`] saying what to fix.
pub(crate) async fn answer<A, F>(
    tool: &str,
    arguments: JsonObject,
    work: impl FnOnce(A) -> F,
) -> CallToolResult
where
    A: DeserializeOwned,
    F: Future<Output = Result<CallToolResult, String>>,
{
    match serde_json::from_value(serde_json::Value::Object(arguments)) {
        Ok(args) => work(args).await.unwrap_or_else(tool_error),
        Err(e) => invalid_arguments(tool, &e),
    }
}

/// Why a tool fronting a provider (arXiv, a search API) did not answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad input or an answer that makes no sense: a tool error the caller reads.
    Tool(String),
    /// The provider is out of reach or failing (connect error, timeout, 429, 5xx): a call
    /// error, so the router tries another instance serving the same tool (native-first
    /// falling back to MCP).
    Unavailable(CallError),
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::Tool(message)
    }
}

/// [`answer`] for tools fronting a provider: [`Failure::Unavailable`] is a call error.
pub(crate) async fn answer_from_provider<A, F>(
    tool: &str,
    arguments: JsonObject,
    work: impl FnOnce(A) -> F,
) -> Result<CallToolResult, CallError>
where
    A: DeserializeOwned,
    F: Future<Output = Result<CallToolResult, Failure>>,
{
    match serde_json::from_value(serde_json::Value::Object(arguments)) {
        Ok(args) => match work(args).await {
            Ok(result) => Ok(result),
            Err(Failure::Tool(message)) => Ok(tool_error(message)),
            Err(Failure::Unavailable(error)) => Err(error),
        },
        Err(e) => Ok(invalid_arguments(tool, &e)),
    }
}

fn invalid_arguments(tool: &str, error: &serde_json::Error) -> CallToolResult {
    tool_error(format!(
        "invalid arguments for `{tool}`: {error}; see the tool's input schema for the expected fields"
    ))
}

/// The input schema of an argument type, in the draft MCP clients expect.
pub(crate) fn schema_for<T: schemars::JsonSchema + 'static>() -> Arc<JsonObject> {
    rmcp::handler::server::common::schema_for_type::<T>()
}

/// Runs `fut` until it finishes, the deadline of `ctx` passes or `ctx` is cancelled.
pub(crate) async fn bounded<T>(
    tool: &str,
    ctx: &CallContext,
    fut: impl Future<Output = T>,
) -> Result<T, CallError> {
    let allowed = ctx.remaining();
    tokio::select! {
        biased;
        () = ctx.cancelled() => Err(CallError::Cancelled {
            target: target(tool),
            phase: Phase::AfterSend,
        }),
        () = tokio::time::sleep_until(ctx.deadline) => Err(CallError::Timeout {
            target: target(tool),
            after: allowed,
            phase: Phase::AfterSend,
        }),
        value = fut => Ok(value),
    }
}

/// How errors name a native tool.
pub(crate) fn target(tool: &str) -> Arc<str> {
    Arc::from(format!("native tool `{tool}`"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    struct Slow;

    impl NativeTool for Slow {
        fn definition(&self) -> Tool {
            Tool::new(
                "slow",
                "sleeps",
                rmcp::handler::server::common::schema_for_empty_input(),
            )
        }

        async fn call(
            &self,
            _arguments: JsonObject,
            _ctx: &CallContext,
        ) -> Result<CallToolResult, CallError> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(tool_success("done", serde_json::json!({})))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn invoker_enforces_the_deadline_and_cancellation() -> Result<(), CallError> {
        let invoker = NativeInvoker::new(Slow);
        let call = ToolCall::new(toolmesh_core::ToolName::new("any", "slow")?);
        let ctx = CallContext::with_timeout(Duration::from_secs(2));
        let err = invoker.invoke(call.clone(), &ctx).await.unwrap_err();
        assert_eq!(err.kind(), toolmesh_core::ErrorKind::Timeout, "{err}");

        let token = tokio_util::sync::CancellationToken::new();
        token.cancel();
        let ctx = CallContext::with_timeout(Duration::from_secs(2)).cancel_with(token);
        let err = invoker.invoke(call, &ctx).await.unwrap_err();
        assert_eq!(err.kind(), toolmesh_core::ErrorKind::Cancelled, "{err}");
        Ok(())
    }

    #[test]
    fn success_wraps_non_objects() {
        let result = tool_success("4", serde_json::json!(4));
        assert_eq!(
            result.structured_content,
            Some(serde_json::json!({ "result": 4 }))
        );
        assert_eq!(result.is_error, Some(false));
        assert_eq!(tool_error("no").is_error, Some(true));
    }
}
