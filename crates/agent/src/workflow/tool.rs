//! A workflow behind the [`Invoker`] trait, so it can be served as an MCP tool.

use std::sync::Arc;

use rmcp::model::ContentBlock;
use serde_json::{Value, json};
use toolmesh_core::{CallContext, CallError, CallToolResult, Invoker, JsonObject, Tool, ToolCall};

use super::Workflow;

/// Runs a workflow as a tool call: the call's arguments are the input; the result's
/// text is the output (then one line per step), its structured content
/// `{output, steps}`. A run that fails is an `isError` result saying why, with the
/// steps that ran.
#[derive(Debug, Clone)]
pub struct WorkflowTool {
    workflow: Workflow,
}

impl WorkflowTool {
    /// The tool running `workflow`.
    pub fn new(workflow: Workflow) -> Self {
        Self { workflow }
    }

    /// The MCP definition: `name`, `description` (else the workflow's own), and the
    /// workflow's `input_schema` (else any object).
    pub fn definition(&self, name: &str, description: Option<&str>) -> Tool {
        let spec = self.workflow.spec();
        let description = description
            .map(str::to_owned)
            .or_else(|| spec.description.clone())
            .unwrap_or_else(|| format!("Runs the workflow `{}`", self.workflow.name()));
        let schema = spec.input_schema.clone().unwrap_or_else(any_object);
        Tool::new(name.to_owned(), description, Arc::new(schema))
    }
}

fn any_object() -> JsonObject {
    let mut schema = JsonObject::new();
    schema.insert("type".into(), Value::from("object"));
    schema
}

impl Invoker for WorkflowTool {
    async fn invoke(&self, call: ToolCall, ctx: &CallContext) -> Result<CallToolResult, CallError> {
        let input = Value::Object(call.arguments.unwrap_or_default());
        Ok(match self.workflow.run(input, ctx).await {
            Ok(result) => {
                let output = match &result.output {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                let text = format!("{output}\n\n{}", result.summary());
                let mut answer = CallToolResult::success(vec![ContentBlock::text(text)]);
                answer.structured_content =
                    Some(json!({ "output": result.output, "steps": result.steps }));
                answer
            }
            Err(e) => {
                let mut text = format!("workflow `{}` failed: {e}", self.workflow.name());
                let steps = e.result().map(|r| {
                    text.push_str(&format!("\n\n{}", r.summary()));
                    json!(r.steps)
                });
                let mut answer = CallToolResult::error(vec![ContentBlock::text(text)]);
                answer.structured_content = Some(json!({
                    "error": e.to_string(),
                    "steps": steps.unwrap_or_else(|| json!([])),
                }));
                answer
            }
        })
    }
}
