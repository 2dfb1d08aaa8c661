//! What a run did: the conversation, each tool call with its routing, and tokens used.

use std::time::Duration;

use async_openai::types::chat::{ChatCompletionRequestMessage, CompletionUsage};
use serde::Serialize;

/// Tokens used by a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens, summed over model calls.
    pub prompt_tokens: u64,
    /// Completion tokens, summed over model calls.
    pub completion_tokens: u64,
    /// Their sum.
    pub total_tokens: u64,
}

impl Usage {
    pub(crate) fn add(&mut self, usage: Option<&CompletionUsage>) {
        if let Some(u) = usage {
            self.prompt_tokens += u64::from(u.prompt_tokens);
            self.completion_tokens += u64::from(u.completion_tokens);
            self.total_tokens += u64::from(u.total_tokens);
        }
    }
}

/// One tool call the model asked for, and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolStep {
    /// The model call (1-based) that asked for it.
    pub step: u32,
    /// The model's id of the call.
    pub call_id: String,
    /// The tool, as the model named it.
    pub tool: String,
    /// The arguments as the model sent them (a string when they were not JSON).
    pub arguments: serde_json::Value,
    /// The tool failed, or the call never reached it; the output says why.
    pub is_error: bool,
    /// What the model was told.
    pub output: String,
    /// The instance that served it (`native` for in-process tools).
    pub instance: Option<String>,
    /// Instances called.
    pub attempts: u32,
    /// Attempts after the first.
    pub failovers: u32,
    /// Time from call to answer.
    #[serde(rename = "latency_ms", serialize_with = "millis")]
    pub latency: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// How one model call was served: the LLM side's routing metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelCall {
    /// The model call (1-based).
    pub step: u32,
    /// The endpoint that answered.
    pub endpoint: String,
    /// Requests made (retries and failovers included).
    pub attempts: u32,
    /// What failed before the answer.
    pub tried: Vec<String>,
}

/// Everything a run did, in order.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// The conversation sent to the model, with its answers and the tool results.
    pub messages: Vec<ChatCompletionRequestMessage>,
    /// Every tool call.
    pub steps: Vec<ToolStep>,
    /// Tokens used.
    pub usage: Usage,
    /// Model calls made.
    pub model_calls: u32,
    /// How each model call was served.
    pub llm: Vec<ModelCall>,
}

/// A finished run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// The model's final answer.
    pub answer: String,
    /// Every tool call, in order.
    pub steps: Vec<ToolStep>,
    /// Tokens used.
    pub usage: Usage,
    /// Model calls made.
    pub model_calls: u32,
    /// How each model call was served (endpoint, attempts, failures before the answer).
    pub llm: Vec<ModelCall>,
}
