//! An agent as a service of the mesh: each capability is one tool, and calling it runs the
//! agent. Registered in a [`Registry`](toolmesh_registry::Registry) like any in-process
//! service, it is routed, served by the gateway and callable by other agents alike.

use std::{borrow::Cow, sync::Arc, time::Duration};

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};
use toolmesh_core::{CallContext, CallError, Invoker, Phase, ServerId, ToolCall};
use toolmesh_registry::{NativeBackend, ServiceSpec, ToolPolicy};

use crate::{Agent, AgentError, RunResult};

/// One tool an exposed agent offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Capability {
    /// The tool's name within the agent's namespace (`solve`).
    pub name: String,
    /// What it does, for the caller (a model, mostly) to pick it.
    pub description: String,
    /// Its input schema; default `{task: string, context?: string}`.
    pub input_schema: Option<JsonObject>,
    /// Budget of one run; default the agent's `run_timeout`.
    pub timeout: Option<Duration>,
}

impl Capability {
    /// A capability taking the default `{task, context?}` input.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            input_schema: None,
            timeout: None,
        }
    }

    /// Sets the budget of one run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the input schema: an object schema whose `task` (string) is required; the
    /// other properties are given to the agent beside the task.
    pub fn input_schema(mut self, schema: JsonObject) -> Self {
        self.input_schema = Some(schema);
        self
    }
}

/// How an agent is exposed: its capabilities and the service they form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExposeOptions {
    /// Name of the service (the namespace of its tools: `mathematician__solve`);
    /// default the agent's name.
    pub name: Option<String>,
    /// What the agent is for, sent to clients as the server's instructions.
    pub description: Option<String>,
    /// The tools; at least one.
    pub capabilities: Vec<Capability>,
    /// Whether tool names carry the service's namespace (default `true`).
    pub prefix: Option<bool>,
}

impl ExposeOptions {
    /// No capabilities yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a capability with the default input.
    pub fn capability(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.capabilities.push(Capability::new(name, description));
        self
    }

    /// Adds `capability`.
    pub fn with(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Sets the service's description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

impl Agent {
    /// The service that exposes this agent: one in-process tool per capability, each
    /// running the agent with [`run_within`](Agent::run_within) (the caller's deadline,
    /// cancellation and progress; one level deeper). Register it in a registry to route
    /// to it, serve it, or give it to other agents.
    ///
    /// # Errors
    ///
    /// [`AgentError::Config`] when there is no capability, a name is not a valid tool
    /// name, or two capabilities share one.
    pub fn service(&self, options: &ExposeOptions) -> Result<ServiceSpec, AgentError> {
        let name = options
            .name
            .clone()
            .unwrap_or_else(|| self.name().to_owned());
        let tools = options.tools(&name)?;
        let run_timeout = self.limits().run_timeout;
        let policies = options
            .capabilities
            .iter()
            .map(|capability| {
                let policy = ToolPolicy {
                    // A run is not repeated elsewhere once it may have started.
                    idempotent: Some(false),
                    timeout: Some(capability.timeout.unwrap_or(run_timeout)),
                    ..ToolPolicy::default()
                };
                (capability.name.clone(), policy)
            })
            .collect();
        let invoker = Exposed {
            agent: self.clone(),
            capabilities: options.capabilities.clone().into(),
        };
        let mut spec = ServiceSpec::native(
            ServerId::new(name),
            NativeBackend {
                tools,
                invoker: Arc::new(invoker),
                prefer: true,
            },
        );
        spec.tools = policies;
        spec.prefix = options.prefix.unwrap_or(true);
        spec.timeout = options
            .capabilities
            .iter()
            .map(|c| c.timeout.unwrap_or(run_timeout))
            .max()
            .unwrap_or(run_timeout);
        Ok(spec)
    }
}

impl ExposeOptions {
    /// Checks the capabilities without building anything (for `config check`).
    ///
    /// # Errors
    ///
    /// As [`Agent::service`].
    pub fn validate(&self, agent: &str) -> Result<(), AgentError> {
        self.tools(agent).map(drop)
    }

    /// One tool definition per capability.
    fn tools(&self, agent: &str) -> Result<Vec<Tool>, AgentError> {
        if self.capabilities.is_empty() {
            return Err(AgentError::Config(format!(
                "exposing agent `{agent}` needs at least one capability (a tool name and what it does)"
            )));
        }
        let mut tools: Vec<Tool> = Vec::with_capacity(self.capabilities.len());
        for capability in &self.capabilities {
            check_name(&capability.name)?;
            if tools.iter().any(|t| t.name == capability.name) {
                return Err(AgentError::Config(format!(
                    "capability `{}` of agent `{agent}` is given twice",
                    capability.name
                )));
            }
            tools.push(definition(capability)?);
        }
        Ok(tools)
    }
}

fn check_name(name: &str) -> Result<(), AgentError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(AgentError::Config(format!(
            "capability name `{name}` is not a tool name: use 1 to 64 letters, digits, `_` or `-`"
        )))
    }
}

fn definition(capability: &Capability) -> Result<Tool, AgentError> {
    let input = match &capability.input_schema {
        Some(schema) => {
            let task = schema
                .get("properties")
                .and_then(|p| p.get("task"))
                .and_then(|t| t.get("type"));
            if task != Some(&json!("string")) {
                return Err(AgentError::Config(format!(
                    "the input schema of capability `{}` must have a string property `task`",
                    capability.name
                )));
            }
            schema.clone()
        }
        None => object(json!({
            "type": "object",
            "properties": {
                "task": { "type": "string", "description": "What to do, in plain words." },
                "context": { "type": "string", "description": "Anything the agent should know beside the task." }
            },
            "required": ["task"],
        })),
    };
    let output = object(json!({
        "type": "object",
        "properties": {
            "answer": { "type": "string" },
            "steps": {
                "type": "array",
                "description": "The tool calls the agent made, with their routing.",
                "items": { "type": "object" }
            }
        },
        "required": ["answer", "steps"],
    }));
    let mut tool = Tool::new(
        Cow::Owned(capability.name.clone()),
        Cow::Owned(capability.description.clone()),
        Arc::new(input),
    );
    tool.output_schema = Some(Arc::new(output));
    tool.annotations = Some(
        ToolAnnotations::new()
            .read_only(false)
            .idempotent(false)
            .open_world(true),
    );
    Ok(tool)
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// Runs the agent for calls to its capabilities.
struct Exposed {
    agent: Agent,
    capabilities: Arc<[Capability]>,
}

impl Invoker for Exposed {
    async fn invoke(&self, call: ToolCall, ctx: &CallContext) -> Result<CallToolResult, CallError> {
        let Some(capability) = self
            .capabilities
            .iter()
            .find(|c| c.name == call.name.tool())
        else {
            return Err(CallError::ToolNotFound {
                tool: call.name.to_string(),
                hint: format!("; agent `{}` offers no such capability", self.agent.name()),
            });
        };
        let task = match message(capability, call.arguments.unwrap_or_default()) {
            Ok(task) => task,
            Err(reason) => return Ok(CallToolResult::error(vec![ContentBlock::text(reason)])),
        };
        match self.agent.run_within(&task, ctx).await {
            Ok(run) => Ok(answered(run)),
            Err(AgentError::Cancelled) => Err(CallError::Cancelled {
                target: format!("agent `{}`", self.agent.name()).into(),
                phase: Phase::AfterSend,
            }),
            Err(error) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "agent `{}` could not finish: {error}",
                self.agent.name()
            ))])),
        }
    }
}

/// The user message of a run: the capability asked for, the task, and the rest of the
/// arguments as context.
fn message(capability: &Capability, mut arguments: JsonObject) -> Result<String, String> {
    let task = match arguments.remove("task") {
        Some(Value::String(task)) if !task.trim().is_empty() => task,
        Some(Value::String(_)) | None => {
            return Err(format!(
                "`{}` needs a `task`: say in plain words what to do",
                capability.name
            ));
        }
        Some(other) => {
            return Err(format!(
                "`task` of `{}` must be a string, got {other}",
                capability.name
            ));
        }
    };
    let mut text = format!("[{}] {}\n\n{task}", capability.name, capability.description);
    match arguments.remove("context") {
        Some(Value::String(context)) if !context.is_empty() => {
            text.push_str("\n\nContext:\n");
            text.push_str(&context);
        }
        Some(Value::String(_) | Value::Null) | None => {}
        Some(other) => {
            text.push_str("\n\nContext:\n");
            text.push_str(&other.to_string());
        }
    }
    if !arguments.is_empty() {
        text.push_str("\n\nInputs:\n");
        text.push_str(&Value::Object(arguments).to_string());
    }
    Ok(text)
}

/// The answer as text, and `{answer, steps, usage}` as structured content.
fn answered(run: RunResult) -> CallToolResult {
    let structured = json!({
        "answer": run.answer,
        "steps": run.steps,
        "usage": run.usage,
    });
    let mut result = CallToolResult::success(vec![ContentBlock::text(run.answer)]);
    result.structured_content = Some(structured);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_is_required_and_the_rest_is_context() {
        let solve = Capability::new("solve", "Solve arithmetic.");
        let args = |v: Value| object(v);
        assert!(message(&solve, args(json!({}))).is_err());
        assert!(message(&solve, args(json!({"task": 3}))).is_err());
        let text = message(
            &solve,
            args(json!({"task": "2+2?", "context": "be brief", "unit": "apples"})),
        )
        .unwrap_or_default();
        assert!(text.contains("2+2?") && text.contains("be brief") && text.contains("apples"));
    }

    #[test]
    fn capability_names_must_be_tool_names() {
        assert!(check_name("solve_it-2").is_ok());
        assert!(check_name("solve it").is_err());
        assert!(check_name("").is_err());
    }
}
