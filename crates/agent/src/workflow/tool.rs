//! A workflow behind the [`Invoker`] trait, so it can be served as an MCP tool.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use rmcp::model::ContentBlock;
use serde_json::{Value, json};
use toolmesh_core::{
    CallContext, CallError, CallToolResult, Invoker, JsonObject, ServerId, Tool, ToolCall,
};
use toolmesh_registry::{NativeBackend, ServiceSpec, ToolPolicy};

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

/// The service `workflows` of the mesh: one tool per workflow (`workflows__NAME`), each
/// running it under the caller's deadline and cancellation. A run is never repeated on
/// failure (its steps may have had effects).
pub fn workflows_service(workflows: impl IntoIterator<Item = Workflow>) -> ServiceSpec {
    /// Budget of a run whose workflow sets no `timeout`.
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
    let tools: BTreeMap<String, WorkflowTool> = workflows
        .into_iter()
        .map(|w| (w.name().to_owned(), WorkflowTool::new(w)))
        .collect();
    let definitions = tools
        .iter()
        .map(|(name, tool)| tool.definition(name, None))
        .collect();
    let policies: BTreeMap<String, ToolPolicy> = tools
        .iter()
        .map(|(name, tool)| {
            let policy = ToolPolicy {
                idempotent: Some(false),
                timeout: Some(tool.workflow.spec().timeout.unwrap_or(DEFAULT_TIMEOUT)),
                ..ToolPolicy::default()
            };
            (name.clone(), policy)
        })
        .collect();
    let longest = policies
        .values()
        .filter_map(|p| p.timeout)
        .max()
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut spec = ServiceSpec::native(
        ServerId::new(WORKFLOWS_SERVICE),
        NativeBackend {
            tools: definitions,
            invoker: Arc::new(Workflows(tools)),
            prefer: true,
        },
    );
    spec.tools = policies;
    spec.timeout = longest;
    spec
}

/// The service (and namespace) of exposed workflows.
pub const WORKFLOWS_SERVICE: &str = "workflows";

/// Runs the workflow a call names.
struct Workflows(BTreeMap<String, WorkflowTool>);

impl Invoker for Workflows {
    async fn invoke(&self, call: ToolCall, ctx: &CallContext) -> Result<CallToolResult, CallError> {
        match self.0.get(call.name.tool()) {
            Some(tool) => tool.invoke(call, ctx).await,
            None => Err(CallError::ToolNotFound {
                tool: call.name.to_string(),
                hint: format!(
                    "; exposed workflows: {}",
                    self.0.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }),
        }
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
