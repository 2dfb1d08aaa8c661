//! One tool call the model asked for, through the router. Whatever goes wrong becomes
//! the text of that call's tool message: the model can correct itself; the run goes on.

use std::time::Duration;

use toolmesh_core::{CallContext, CallError, JsonObject, Phase, result_text};
use toolmesh_registry::Registry;

use crate::{DynHooks, PendingCall, ToolStep, Verdict, tools::Toolset};

/// The outcome of one call, before it is numbered into the transcript.
pub(crate) struct Outcome {
    pub(crate) step: ToolStep,
    /// The model sent something unusable (unknown tool, arguments that are not JSON).
    pub(crate) invalid: bool,
}

pub(crate) struct Request<'a> {
    pub(crate) step: u32,
    pub(crate) id: &'a str,
    pub(crate) name: &'a str,
    pub(crate) arguments: &'a str,
}

pub(crate) async fn run(
    registry: &Registry,
    toolset: &Toolset,
    hooks: &dyn DynHooks,
    request: Request<'_>,
    ctx: CallContext,
) -> Outcome {
    let outcome = attempt(registry, toolset, hooks, &request, ctx).await;
    hooks.after_tool_result_dyn(&outcome.step).await;
    outcome
}

async fn attempt(
    registry: &Registry,
    toolset: &Toolset,
    hooks: &dyn DynHooks,
    request: &Request<'_>,
    ctx: CallContext,
) -> Outcome {
    let mut step = ToolStep {
        step: request.step,
        call_id: request.id.to_owned(),
        tool: request.name.to_owned(),
        arguments: serde_json::from_str(request.arguments)
            .unwrap_or_else(|_| serde_json::Value::String(request.arguments.to_owned())),
        is_error: true,
        output: String::new(),
        instance: None,
        attempts: 0,
        failovers: 0,
        latency: Duration::ZERO,
    };
    let invalid = |mut step: ToolStep, output: String| {
        step.output = output;
        Outcome {
            step,
            invalid: true,
        }
    };
    let Some(tool) = toolset.resolve(request.name) else {
        let close = toolset.closest(request.name);
        let hint = if close.is_empty() {
            "no tools are available".to_owned()
        } else {
            format!("did you mean {}?", close.join(", "))
        };
        return invalid(
            step,
            format!("error: there is no tool named `{}`; {hint}", request.name),
        );
    };
    let mut arguments = match parse_arguments(request.arguments) {
        Ok(arguments) => arguments,
        Err(reason) => {
            return invalid(
                step,
                format!(
                    "error: {reason}; call `{tool}` again with a JSON object matching its input schema"
                ),
            );
        }
    };
    let pending = PendingCall {
        step: request.step,
        call_id: request.id,
        tool,
        arguments: arguments.as_ref(),
    };
    match hooks.before_tool_call_dyn(pending).await {
        Verdict::Allow => {}
        Verdict::Deny(reason) => {
            step.output = format!("error: the call was not run: {reason}");
            return Outcome {
                step,
                invalid: false,
            };
        }
        Verdict::Rewrite(rewritten) => {
            step.arguments = serde_json::Value::Object(rewritten.clone());
            arguments = Some(rewritten);
        }
    }
    if let Err(e) = registry.check_arguments(tool, arguments.as_ref()) {
        return invalid(
            step,
            format!(
                "error: {} (at `{}`); call `{tool}` again with arguments that fit its input schema",
                e.message, e.pointer
            ),
        );
    }
    let started = tokio::time::Instant::now();
    match registry.call(tool, arguments, &ctx).await {
        Ok(routed) => {
            step.is_error = routed.result.is_error == Some(true);
            step.output = result_text(&routed.result);
            step.instance = routed.meta.instance.map(|i| i.to_string());
            step.attempts = routed.meta.attempts;
            step.failovers = routed.meta.failovers;
            step.latency = routed.meta.latency;
        }
        Err(e) => {
            step.latency = started.elapsed();
            let safe = toolset.catalog.resolve(tool).is_some_and(|e| e.idempotent);
            step.output = failure_text(&e, safe);
            let invalid = matches!(
                e,
                CallError::ToolNotFound { .. } | CallError::InvalidRequest { .. }
            );
            return Outcome { step, invalid };
        }
    }
    Outcome {
        step,
        invalid: false,
    }
}

/// The model's arguments: a JSON object, or nothing (`""`, `null`).
fn parse_arguments(raw: &str) -> Result<Option<JsonObject>, String> {
    if raw.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
        Ok(serde_json::Value::Null) => Ok(None),
        Ok(other) => Err(format!(
            "the arguments must be a JSON object, got {}",
            match other {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                _ => "a boolean",
            }
        )),
        Err(e) => Err(format!("the arguments are not valid JSON ({e})")),
    }
}

/// What the model is told when the call did not produce a result.
fn failure_text(e: &CallError, idempotent: bool) -> String {
    if e.phase() == Phase::AfterSend && !idempotent {
        format!(
            "error: {e} (the request reached the tool, so it may have run; it was not retried: check before calling it again)"
        )
    } else {
        format!("error: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_an_object_or_nothing() {
        assert_eq!(parse_arguments("").unwrap(), None);
        assert_eq!(parse_arguments("null").unwrap(), None);
        assert!(parse_arguments(r#"{"a":1}"#).unwrap().is_some());
        assert!(parse_arguments("[1]").unwrap_err().contains("an array"));
        assert!(
            parse_arguments("{\"a\":")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }
}
