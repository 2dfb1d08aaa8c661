//! Why a workflow could not be built, or a run did not finish.

use crate::workflow::WorkflowResult;

/// Why a workflow is invalid or a run ended without an answer. A run's errors keep
/// what it did until then ([`result`](Self::result)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The workflow is wrong where `at` says (`steps[2].needs`).
    #[error("{}{message}", if at.is_empty() { String::new() } else { format!("{at}: ") })]
    Invalid {
        /// Key path inside the workflow, list indices in brackets; empty for the whole.
        at: String,
        /// Key path segments of `at` (`["steps", "2", "needs"]`), to locate it in a file.
        path: Vec<String>,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// An agent the workflow names could not be built.
    #[error("agent `{agent}`: {source}")]
    Agent {
        /// The agent.
        agent: String,
        /// Why.
        #[source]
        source: crate::AgentError,
    },
    /// A step failed; the run stopped.
    #[error("step `{step}` failed: {reason}")]
    Step {
        /// The step.
        step: String,
        /// Why.
        reason: String,
        /// What ran until then.
        result: Box<WorkflowResult>,
    },
    /// The `output:` template did not render.
    #[error("output: {reason}")]
    Output {
        /// Why.
        reason: String,
        /// Every step's outcome.
        result: Box<WorkflowResult>,
    },
    /// The caller cancelled the run.
    #[error("the workflow was cancelled")]
    Cancelled {
        /// What ran until then.
        result: Box<WorkflowResult>,
    },
    /// The run's deadline passed.
    #[error("the workflow did not finish within its deadline; steps not done: {pending}")]
    Timeout {
        /// The steps still running or waiting.
        pending: String,
        /// What ran until then.
        result: Box<WorkflowResult>,
    },
}

impl WorkflowError {
    pub(crate) fn invalid(path: Vec<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            at: render_path(&path),
            path,
            message: message.into(),
        }
    }

    /// The same error with its key path under `prefix` (`["workflows", "research"]`), as
    /// in the file that holds the workflow.
    pub fn nested(self, prefix: &[&str]) -> Self {
        match self {
            Self::Invalid {
                path: rest,
                message,
                ..
            } => {
                let mut path: Vec<String> = prefix.iter().map(|p| (*p).to_owned()).collect();
                path.extend(rest);
                Self::invalid(path, message)
            }
            other => other,
        }
    }

    /// What the run did until it ended, for errors of a run.
    pub fn result(&self) -> Option<&WorkflowResult> {
        match self {
            Self::Step { result, .. }
            | Self::Output { result, .. }
            | Self::Cancelled { result }
            | Self::Timeout { result, .. } => Some(result),
            Self::Invalid { .. } | Self::Agent { .. } => None,
        }
    }
}

/// `steps.2.parallel.0.needs` as written in a file: `steps[2].parallel[0].needs`.
pub(crate) fn render_path(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}
