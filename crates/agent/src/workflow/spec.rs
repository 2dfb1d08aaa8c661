//! What a workflow is made of, as written in YAML (`workflows:`) or built in Rust: one
//! serde shape for both, so a file and a builder mean the same thing.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolmesh_core::JsonObject;

/// A workflow as written: its steps, in order, and what it answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    /// What the workflow does (the description of its MCP tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the input (the input schema of its MCP tool); default any object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<JsonObject>,
    /// The steps. A step without `needs:` runs after the one before it; with `needs:` it
    /// waits only for those (and the steps its templates use).
    #[serde(default)]
    pub steps: Vec<Step>,
    /// The workflow's answer: a value whose strings are templates; default the last
    /// step's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Steps running at once at most (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<usize>,
    /// Deadline of a whole run (the caller's deadline applies too).
    #[serde(
        default,
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Serve it as an MCP tool (`workflows__NAME`) beside the catalog.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expose: bool,
}

/// One step: a tool call (`tool:`), an agent run (`agent:`) or a group of steps run
/// concurrently (`parallel:`).
///
/// ```
/// use serde_json::json;
/// use toolmesh_agent::workflow::Step;
///
/// let search = Step::tool("search", "papers__search")
///     .arguments(json!({"query": "{{ input.topic }}"}))
///     .fallback_tools(["backup__search"])
///     .timeout(std::time::Duration::from_secs(20));
/// let both = Step::parallel("both", [search, Step::tool("news", "news__latest")]);
/// let summary = Step::agent("summary", "writer", "Summarize: {{ steps.search.text }}")
///     .when("input.summarize");
/// # let _ = (both, summary);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The step's name, unique in the workflow; templates read its result as
    /// `steps.ID`. Letters, digits and `_`, not starting with a digit.
    pub id: String,
    /// The catalog tool to call (`namespace__tool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The tool's arguments: strings are templates; a string that is exactly one
    /// `{{ expression }}` keeps the expression's JSON type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Value>,
    /// Tools tried in order, with the same arguments, when the tool fails (a routing
    /// error or an `isError` result).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_tools: Vec<String>,
    /// The agent to run (a name given to the builder, or from `agents:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The agent's task, a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Steps run concurrently; the group's output maps each one's id to its output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parallel: Vec<Step>,
    /// Steps this one waits for (besides those its templates use); without it, the
    /// step waits for the one before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<Vec<String>>,
    /// A template expression; when false the step is skipped (and steps needing it see
    /// `status: skipped`, `output: null`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Deadline of the step, fallbacks included; a group's applies to each of its steps
    /// that sets none.
    #[serde(
        default,
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

impl Step {
    /// A step calling `tool`.
    pub fn tool(id: impl Into<String>, tool: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            tool: Some(tool.into()),
            ..Self::default()
        }
    }

    /// A step running `agent` on `task` (a template).
    pub fn agent(id: impl Into<String>, agent: impl Into<String>, task: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            agent: Some(agent.into()),
            task: Some(task.into()),
            ..Self::default()
        }
    }

    /// A group running `steps` concurrently.
    pub fn parallel(id: impl Into<String>, steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            id: id.into(),
            parallel: steps.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Sets the tool's arguments (strings are templates).
    pub fn arguments(mut self, arguments: Value) -> Self {
        self.arguments = Some(arguments);
        self
    }

    /// Tools tried in order when the tool fails.
    pub fn fallback_tools<S: Into<String>>(mut self, tools: impl IntoIterator<Item = S>) -> Self {
        self.fallback_tools = tools.into_iter().map(Into::into).collect();
        self
    }

    /// The steps to wait for (instead of the one before).
    pub fn needs<S: Into<String>>(mut self, steps: impl IntoIterator<Item = S>) -> Self {
        self.needs = Some(steps.into_iter().map(Into::into).collect());
        self
    }

    /// Runs the step only when `expression` is true.
    pub fn when(mut self, expression: impl Into<String>) -> Self {
        self.when = Some(expression.into());
        self
    }

    /// The step's deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}
