//! What a run nested in a caller's call tells that caller as it goes: a progress
//! notification per step and a log line per tool call (the edge maps the token to the
//! client's and filters logs by the client's `logging/setLevel`).

// Logging is deprecated by SEP-2577 but 2025-11-25 clients still ask for it.
#![allow(deprecated)]

use std::sync::Arc;

use async_openai::types::chat::ChatCompletionMessageToolCall;
use rmcp::model::{
    LoggingLevel, LoggingMessageNotificationParam, NumberOrString, ProgressNotificationParam,
    ProgressToken,
};
use toolmesh_core::Relay;

use crate::ToolStep;

pub(super) struct Progress {
    relay: Arc<dyn Relay>,
}

impl Progress {
    pub(super) fn new(relay: Arc<dyn Relay>) -> Self {
        Self { relay }
    }

    pub(super) fn calling(&self, step: u32, calls: &[ChatCompletionMessageToolCall]) {
        for call in calls {
            self.relay.log(
                LoggingMessageNotificationParam::new(
                    LoggingLevel::Info,
                    serde_json::json!({ "step": step, "tool": call.function.name }),
                )
                .with_logger("toolmesh.agent"),
            );
        }
    }

    /// Step `step` of at most `max_steps` is done; `steps` are the tool calls so far.
    pub(super) fn step(&self, step: u32, max_steps: u32, steps: &[ToolStep]) {
        let tools: Vec<&str> = steps
            .iter()
            .filter(|s| s.step == step)
            .map(|s| s.tool.as_str())
            .collect();
        let message = if tools.is_empty() {
            format!("step {step}")
        } else {
            format!("step {step}: called {}", tools.join(", "))
        };
        // The edge puts the client's own token in place of this one.
        let token = ProgressToken(NumberOrString::Number(0));
        self.relay.progress(
            ProgressNotificationParam::new(token, f64::from(step))
                .with_total(f64::from(max_steps))
                .with_message(message),
        );
    }
}
