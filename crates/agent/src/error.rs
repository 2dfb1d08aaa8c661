//! What can end a run.

use std::time::Duration;

use crate::Transcript;

/// Why the model could not be asked, after retries and failover.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// No endpoint answered: connection refused, reset or timed out.
    #[error("LLM unreachable at {url}: {reason}")]
    Unreachable {
        /// The endpoint tried last.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The endpoint refused the API key (HTTP 401).
    #[error("LLM at {url} refused the API key (HTTP 401: {message}); check OPENAI_API_KEY")]
    Unauthorized {
        /// The endpoint.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The endpoint answered with an error that retrying cannot fix (400, 403, 404,
    /// `insufficient_quota`, ...).
    #[error("LLM at {url} answered HTTP {status}: {message}")]
    Rejected {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// Retryable failures (429, 5xx, connect errors) until attempts or the deadline ran out.
    #[error("LLM failed after {attempts} attempt(s); last: {last}")]
    Exhausted {
        /// Requests made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The answer was not a chat completion.
    #[error("LLM at {url} sent an answer that is not a chat completion: {reason}")]
    Malformed {
        /// The endpoint.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The run's deadline passed while waiting for the model.
    #[error("LLM did not answer within {0:?}")]
    Timeout(Duration),
    /// The request could not be built.
    #[error("invalid LLM request: {0}")]
    Invalid(String),
}

/// Why a run ended without an answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// No model is configured.
    #[error("no model set: pass --model, set llm.model in the configuration or TOOLMESH_MODEL")]
    NoModel,
    /// The model could not be asked.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// A limit of the run was reached; the transcript so far is kept.
    #[error("{limit} limit reached ({value}) before the model answered")]
    Limit {
        /// Which limit: `max_steps`, `max_tool_calls`, `max_invalid_calls`, `token_budget`.
        limit: &'static str,
        /// Its value.
        value: u64,
        /// Everything the run did until then.
        transcript: Box<Transcript>,
    },
    /// The caller cancelled the run (the client cancelled its request, say).
    #[error("the run was cancelled by its caller")]
    Cancelled,
    /// The run would nest deeper than `max_depth` (agents calling each other).
    #[error(
        "refused: this run would be nested {depth} levels deep, beyond max_depth {max}; agents calling each other in a loop? Raise max_depth if the nesting is intended"
    )]
    TooDeep {
        /// The depth of the call that asked for the run.
        depth: u32,
        /// The agent's limit.
        max: u32,
    },
    /// A setting of the agent is wrong.
    #[error("invalid agent setting: {0}")]
    Config(String),
}

impl AgentError {
    /// The transcript a run ended with, when it ended on a limit.
    pub fn transcript(&self) -> Option<&Transcript> {
        match self {
            AgentError::Limit { transcript, .. } => Some(transcript),
            _ => None,
        }
    }
}
