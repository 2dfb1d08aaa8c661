#![doc = include_str!("../README.md")]

mod agent;
mod error;
mod expose;
mod hooks;
mod llm;
pub mod narrow;
mod tools;
mod transcript;
pub mod workflow;

pub use agent::{Agent, AgentBuilder, AgentEvent, DEFAULT_MAX_DEPTH, Limits};
pub use error::{AgentError, LlmError};
pub use expose::{Capability, ExposeOptions};
pub use hooks::{DynHooks, Hooks, PendingCall, Verdict};
pub use llm::{Completion, Llm, LlmEndpoint, LlmRetry};
pub use tools::{ToolSelection, closest, did_you_mean};
pub use transcript::{ModelCall, RunResult, ToolStep, Transcript, Usage};

/// The OpenAI-compatible types the agent speaks (messages for [`Agent::chat`]).
pub use async_openai::types::chat as openai;
