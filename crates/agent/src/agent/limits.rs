//! The bounds of a run.

use std::time::Duration;

use crate::AgentError;

/// What stops a run that does not stop by itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Model calls per run (default 10).
    pub max_steps: u32,
    /// Tool calls per run (default 50).
    pub max_tool_calls: u32,
    /// Unusable tool calls (unknown tool, arguments that are not JSON) tolerated per run
    /// before it ends (default 5): each is told to the model so it can correct itself.
    pub max_invalid_calls: u32,
    /// Total tokens per run; `None` (default) for no budget.
    pub token_budget: Option<u64>,
    /// Deadline of each tool call (default 60 s).
    pub tool_timeout: Duration,
    /// Deadline of the whole run, model calls included (default 10 min).
    pub run_timeout: Duration,
    /// Tool calls of one model message run at once (default 4).
    pub parallel_tool_calls: usize,
    /// Tools offered per model call (default 64): a larger selection is narrowed to the
    /// tools most relevant to the conversation (BM25), plus those the run has used.
    pub max_tools: usize,
    /// How deeply runs may nest (default 4): an agent whose tools are other agents
    /// (in-process or over MCP) runs one level deeper than its caller, and a run beyond
    /// this depth is refused, so agents calling each other cannot loop forever.
    pub max_depth: u32,
}

/// Default of [`Limits::max_depth`].
pub const DEFAULT_MAX_DEPTH: u32 = 4;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps: 10,
            max_tool_calls: 50,
            max_invalid_calls: 5,
            token_budget: None,
            tool_timeout: super::DEFAULT_TOOL_TIMEOUT,
            run_timeout: Duration::from_secs(600),
            parallel_tool_calls: 4,
            max_tools: 64,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl Limits {
    /// Rejects limits that would stop every run at once, and budgets too long to add
    /// to a clock.
    ///
    /// # Errors
    ///
    /// [`AgentError::Config`] naming the setting.
    pub fn validate(&self) -> Result<(), AgentError> {
        const DAY: Duration = Duration::from_secs(86_400);
        let zero = |name: &str| AgentError::Config(format!("{name} must be at least 1"));
        if self.max_steps == 0 {
            return Err(zero("max_steps"));
        }
        if self.max_tool_calls == 0 {
            return Err(zero("max_tool_calls"));
        }
        if self.max_tools == 0 {
            return Err(zero("max_tools"));
        }
        for (name, d) in [
            ("tool_timeout", self.tool_timeout),
            ("run_timeout", self.run_timeout),
        ] {
            if d.is_zero() || d > DAY {
                return Err(AgentError::Config(format!(
                    "{name} must be between 1ms and 24h, got {d:?}"
                )));
            }
        }
        Ok(())
    }
}
