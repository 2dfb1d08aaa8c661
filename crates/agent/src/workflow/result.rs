//! What a run did: each step's outcome with its routing, and the workflow's answer.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It answered.
    Ok,
    /// Its tool and every fallback failed, its agent failed, or a template did not render.
    Failed,
    /// Its `when:` was false, or it did not run (its group was skipped, or the run
    /// stopped first; `error` says which).
    Skipped,
}

impl StepStatus {
    /// `ok`, `failed` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// What a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A tool call.
    Tool,
    /// An agent run.
    Agent,
    /// A group of steps run concurrently.
    Parallel,
}

/// A tool that failed before the one that answered (or before giving up).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedTool {
    /// The tool.
    pub tool: String,
    /// Its routing error, or the text of its `isError` result.
    pub error: String,
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepOutcome {
    /// The step.
    pub id: String,
    /// What it is.
    pub kind: StepKind,
    /// How it ended.
    pub status: StepStatus,
    /// The parallel group it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The tool that answered (or the last one tried, when none did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The agent that ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Tools that failed before, in order: the step's own tool first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallbacks_tried: Vec<FailedTool>,
    /// The instance that answered (`native` for in-process tools).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Instances called for the tool that answered (an agent: its tool calls).
    pub attempts: u32,
    /// Attempts after the first on that tool.
    pub failovers: u32,
    /// Answered from the router's cache.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cache_hit: bool,
    /// When the step started, from the start of the run.
    #[serde(rename = "started_ms", serialize_with = "millis")]
    pub started: Duration,
    /// How long the step took.
    #[serde(rename = "latency_ms", serialize_with = "millis")]
    pub latency: Duration,
    /// The step's output: the tool's structured content (else its text, parsed when it is
    /// a JSON object or array), the agent's answer, or a group's `{ID: output}`.
    pub output: Value,
    /// The output as text.
    pub text: String,
    /// Why it failed or did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StepOutcome {
    pub(crate) fn new(id: &str, kind: StepKind, group: Option<&str>) -> Self {
        Self {
            id: id.to_owned(),
            kind,
            status: StepStatus::Skipped,
            group: group.map(str::to_owned),
            tool: None,
            agent: None,
            fallbacks_tried: Vec::new(),
            instance: None,
            attempts: 0,
            failovers: 0,
            cache_hit: false,
            started: Duration::ZERO,
            latency: Duration::ZERO,
            output: Value::Null,
            text: String::new(),
            error: None,
        }
    }

    /// What later templates see as `steps.ID`.
    pub(crate) fn view(&self) -> Value {
        serde_json::json!({
            "status": self.status.as_str(),
            "output": self.output,
            "text": self.text,
            "tool": self.tool,
            "error": self.error,
        })
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowResult {
    /// The workflow's answer (`output:` rendered, else the last step's output).
    pub output: Value,
    /// Every step, in the order written (a group before its steps).
    pub steps: Vec<StepOutcome>,
    /// How long the run took.
    #[serde(rename = "latency_ms", serialize_with = "millis")]
    pub latency: Duration,
}

impl WorkflowResult {
    /// The outcome of step `id`.
    pub fn step(&self, id: &str) -> Option<&StepOutcome> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// One line per step: status, id, what answered and timing; for people.
    pub fn summary(&self) -> String {
        let mut lines = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let indent = if step.group.is_some() { "  " } else { "" };
            let what = match (&step.tool, &step.agent, step.kind) {
                (Some(tool), _, _) => match &step.instance {
                    Some(instance) => format!("{tool} @ {instance}"),
                    None => tool.clone(),
                },
                (_, Some(agent), _) => format!("agent {agent}"),
                (_, _, StepKind::Parallel) => "parallel".to_owned(),
                _ => String::new(),
            };
            let mut line = format!("{indent}{:<7} {} {what}", step.status.as_str(), step.id);
            if step.status != StepStatus::Skipped {
                line.push_str(&format!(" (at {}, {})", ms(step.started), ms(step.latency)));
            }
            if step.attempts > 1 || step.failovers > 0 {
                line.push_str(&format!(
                    ", {} attempts, {} failovers",
                    step.attempts, step.failovers
                ));
            }
            for failed in &step.fallbacks_tried {
                line.push_str(&format!(
                    "\n{indent}          {} failed: {}",
                    failed.tool, failed.error
                ));
            }
            if let Some(error) = &step.error {
                line.push_str(&format!(": {error}"));
            }
            lines.push(line);
        }
        lines.join("\n")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0}ms", d.as_secs_f64() * 1000.0)
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}
