//! What a streamed run reports as it goes.

use tokio::sync::mpsc;

use crate::{AgentError, RunResult, ToolStep, Usage};

/// One event of [`Agent::stream`](crate::Agent::stream).
#[derive(Debug)]
#[non_exhaustive]
pub enum AgentEvent {
    /// Text of the model's answer, as it arrives.
    Text(String),
    /// A tool call the model asked for is starting.
    ToolCall {
        /// The model call that asked for it.
        step: u32,
        /// The model's id of the call.
        call_id: String,
        /// The tool, as the model named it.
        tool: String,
    },
    /// A tool call's outcome, with its routing.
    ToolResult(ToolStep),
    /// A model call and its tool calls are done.
    Step {
        /// The model call (1-based).
        step: u32,
        /// Tokens used so far.
        usage: Usage,
    },
    /// The run ended: the last event.
    Done(Result<RunResult, AgentError>),
}

/// Where a run's events go: nowhere for [`Agent::run`](crate::Agent::run).
pub(crate) struct Events(Option<mpsc::UnboundedSender<AgentEvent>>);

impl Events {
    pub(crate) fn none() -> Self {
        Self(None)
    }

    pub(crate) fn channel() -> (Self, mpsc::UnboundedReceiver<AgentEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(Some(tx)), rx)
    }

    /// A reader that stopped listening is not an error: the run goes on.
    pub(crate) fn send(&self, event: AgentEvent) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(event);
        }
    }

    /// Streams the model's text as [`AgentEvent::Text`], when someone listens.
    pub(crate) fn text_sink(&self) -> Option<impl FnMut(&str) + Send + 'static> {
        let tx = self.0.clone()?;
        Some(move |text: &str| {
            let _ = tx.send(AgentEvent::Text(text.to_owned()));
        })
    }
}
