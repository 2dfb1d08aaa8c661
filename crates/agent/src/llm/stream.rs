//! Streamed chat completions (`stream: true`), added up into one response. Tool-call
//! deltas are joined by `index`; a chunk without one (some OpenAI-compatible servers omit
//! it for a single call) continues the call in progress, or starts one when it brings a
//! new id. Chunks are read with our own types: async-openai's require the index.

use async_openai::types::chat::{
    ChatChoice, ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionResponseMessage, CompletionUsage, CreateChatCompletionResponse, FinishReason,
    Role,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub(crate) struct Chunk {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    created: u32,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<CompletionUsage>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
    #[serde(default)]
    finish_reason: Option<FinishReason>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Default, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// A response being added up from its chunks.
#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    id: String,
    model: String,
    created: u32,
    content: String,
    calls: Vec<ChatCompletionMessageToolCall>,
    finish: Option<FinishReason>,
    usage: Option<CompletionUsage>,
}

impl Accumulator {
    /// Adds `chunk`; returns its text, if any, for the caller to show.
    pub(crate) fn add(&mut self, chunk: Chunk) -> Option<String> {
        if self.id.is_empty() {
            self.id = chunk.id;
            self.model = chunk.model;
            self.created = chunk.created;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let mut text = String::new();
        for choice in chunk.choices {
            if let Some(delta) = choice.delta.content {
                text.push_str(&delta);
            }
            for call in choice.delta.tool_calls {
                self.add_call(call);
            }
            if choice.finish_reason.is_some() {
                self.finish = choice.finish_reason;
            }
        }
        self.content.push_str(&text);
        (!text.is_empty()).then_some(text)
    }

    fn add_call(&mut self, delta: ToolCallDelta) {
        let new_id = delta
            .id
            .as_ref()
            .is_some_and(|id| !id.is_empty() && self.calls.iter().all(|c| &c.id != id));
        let at = match delta.index {
            Some(index) => index,
            None if new_id || self.calls.is_empty() => self.calls.len(),
            None => self.calls.len() - 1,
        };
        // Indexes beyond the next slot are taken as the next slot: no holes.
        let at = at.min(self.calls.len());
        if at == self.calls.len() {
            self.calls.push(ChatCompletionMessageToolCall::default());
        }
        let call = &mut self.calls[at];
        if let Some(id) = delta.id.filter(|id| !id.is_empty()) {
            call.id = id;
        }
        if let Some(function) = delta.function {
            if let Some(name) = function.name {
                call.function.name.push_str(&name);
            }
            if let Some(arguments) = function.arguments {
                call.function.arguments.push_str(&arguments);
            }
        }
    }

    /// The response the chunks add up to.
    #[allow(deprecated)]
    pub(crate) fn finish(self) -> CreateChatCompletionResponse {
        let message = ChatCompletionResponseMessage {
            content: (!self.content.is_empty()).then_some(self.content),
            refusal: None,
            tool_calls: (!self.calls.is_empty()).then(|| {
                self.calls
                    .into_iter()
                    .map(ChatCompletionMessageToolCalls::Function)
                    .collect()
            }),
            annotations: None,
            role: Role::Assistant,
            function_call: None,
            audio: None,
        };
        CreateChatCompletionResponse {
            id: self.id,
            choices: vec![ChatChoice {
                index: 0,
                message,
                finish_reason: self.finish,
                logprobs: None,
            }],
            created: self.created,
            model: self.model,
            service_tier: None,
            system_fingerprint: None,
            object: "chat.completion".into(),
            usage: self.usage,
            metadata: None,
            moderation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(v: serde_json::Value) -> Chunk {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn deltas_join_by_index_and_without_one() {
        let mut acc = Accumulator::default();
        acc.add(chunk(serde_json::json!({"id": "c", "model": "m", "choices": [{"delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "add", "arguments": ""}},
            {"index": 1, "id": "call_2", "type": "function", "function": {"name": "echo", "arguments": ""}}
        ]}}]})));
        acc.add(chunk(serde_json::json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"arguments": "{\"m\":"}}]}}]})));
        acc.add(chunk(serde_json::json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}]})));
        acc.add(chunk(serde_json::json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"arguments": "1}"}}]}, "finish_reason": "tool_calls"}]})));
        let response = acc.finish();
        let calls = response.choices[0].message.tool_calls.clone().unwrap();
        let args: Vec<String> = calls
            .into_iter()
            .map(|c| match c {
                ChatCompletionMessageToolCalls::Function(f) => {
                    format!("{}:{}:{}", f.id, f.function.name, f.function.arguments)
                }
                ChatCompletionMessageToolCalls::Custom(_) => String::new(),
            })
            .collect();
        assert_eq!(args, ["call_1:add:{}", "call_2:echo:{\"m\":1}"]);

        let mut acc = Accumulator::default();
        acc.add(chunk(serde_json::json!({"choices": [{"delta": {"tool_calls": [{"id": "call_9", "function": {"name": "add", "arguments": "{\"a\""}}]}}]})));
        acc.add(chunk(serde_json::json!({"choices": [{"delta": {"tool_calls": [{"function": {"arguments": ":1}"}}]}}]})));
        let text = acc.add(chunk(serde_json::json!({"choices": [{"delta": {"content": "hi"}}], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})));
        assert_eq!(text.as_deref(), Some("hi"));
        let response = acc.finish();
        let Some(ChatCompletionMessageToolCalls::Function(f)) = response.choices[0]
            .message
            .tool_calls
            .clone()
            .unwrap()
            .pop()
        else {
            panic!("one call");
        };
        assert_eq!(
            (f.id.as_str(), f.function.arguments.as_str()),
            ("call_9", "{\"a\":1}")
        );
        assert_eq!(response.usage.map(|u| u.total_tokens), Some(3));
    }
}
