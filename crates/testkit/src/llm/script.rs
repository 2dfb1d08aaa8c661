//! What the scripted LLM answers: [`Reply`], [`ScriptedCall`], and the queue
//! that hands one reply to each request.

use std::{collections::VecDeque, time::Duration};

use serde_json::Value;

/// One scripted answer of [`ScriptedLlm`](super::ScriptedLlm). Each request
/// takes the next reply of the script, except [`Reply::Repeat`], which stays.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// An assistant answer, `finish_reason: "stop"`.
    Text(String),
    /// An assistant message with `tool_calls`, `finish_reason: "tool_calls"`.
    ToolCalls(Vec<ScriptedCall>),
    /// An HTTP error with an OpenAI error body
    /// `{"error":{"message","type","param","code"}}`.
    Status {
        /// HTTP status (429, 500, 401, ...); a code outside 100..=999 answers 500.
        code: u16,
        /// Sent as the `Retry-After` header, in seconds.
        retry_after_secs: Option<u64>,
        /// `error.message`.
        message: String,
        /// `error.type`; when `None`, the type OpenAI sends for `code`
        /// (`requests` for 429, `server_error` for 5xx, else `invalid_request_error`).
        error_type: Option<String>,
    },
    /// Served to every request from now on and never consumed (a model that never stops).
    Repeat(Box<Reply>),
    /// The inner reply, sent after the delay (for deadline tests).
    Delay(Duration, Box<Reply>),
    /// A [`Reply::Text`] of the last user message of the request.
    Echo,
}

impl Reply {
    /// A [`Reply::Text`].
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// A [`Reply::ToolCalls`] with one call.
    pub fn tool_call(call: ScriptedCall) -> Self {
        Self::ToolCalls(vec![call])
    }

    /// A [`Reply::Status`] with no `Retry-After` and the default error type.
    pub fn status(code: u16, message: impl Into<String>) -> Self {
        Self::Status {
            code,
            retry_after_secs: None,
            message: message.into(),
            error_type: None,
        }
    }

    /// A 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::Status {
            code: 429,
            retry_after_secs: Some(retry_after_secs),
            message: "scripted LLM: rate limit reached".to_owned(),
            error_type: None,
        }
    }

    /// This reply, served forever ([`Reply::Repeat`]).
    #[must_use]
    pub fn repeat(self) -> Self {
        Self::Repeat(Box::new(self))
    }

    /// This reply, sent after `delay` ([`Reply::Delay`]).
    #[must_use]
    pub fn after(self, delay: Duration) -> Self {
        Self::Delay(delay, Box::new(self))
    }
}

/// A function call the scripted model makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedCall {
    /// The tool call id; empty means the server assigns `call_1`, `call_2`, ...
    /// (counted per server, in the order it sends them).
    pub id: String,
    /// The function name.
    pub name: String,
    /// The arguments exactly as sent; may be malformed JSON on purpose.
    pub arguments: String,
}

impl ScriptedCall {
    /// A call of `name` with `arguments` serialized as JSON.
    pub fn new(name: impl Into<String>, arguments: Value) -> Self {
        Self::raw(name, &arguments.to_string())
    }

    /// A call of `name` whose arguments are sent verbatim (malformed JSON too).
    pub fn raw(name: impl Into<String>, arguments: &str) -> Self {
        Self {
            id: String::new(),
            name: name.into(),
            arguments: arguments.to_owned(),
        }
    }

    /// The same call with a fixed id instead of a generated one.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }
}

/// What one request gets, after `Repeat`, `Delay` and `Echo` are resolved.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Answer {
    Text(String),
    ToolCalls(Vec<ScriptedCall>),
    Failure(Failure),
}

/// An HTTP error answer with an OpenAI error body.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Failure {
    pub(super) status: u16,
    pub(super) retry_after_secs: Option<u64>,
    pub(super) message: String,
    /// `None`: the type OpenAI sends with `status`.
    pub(super) error_type: Option<String>,
}

impl Failure {
    /// A failure without `Retry-After` and with the default error type.
    pub(super) fn new(status: u16, message: String) -> Self {
        Self {
            status,
            retry_after_secs: None,
            message,
            error_type: None,
        }
    }
}

/// The replies still to serve, and how many were served.
#[derive(Debug, Default)]
pub(super) struct Script {
    replies: VecDeque<Reply>,
    served: usize,
    next_call_id: usize,
}

impl Script {
    pub(super) fn new(replies: impl IntoIterator<Item = Reply>) -> Self {
        Self {
            replies: replies.into_iter().collect(),
            ..Self::default()
        }
    }

    pub(super) fn push(&mut self, reply: Reply) {
        self.replies.push_back(reply);
    }

    /// Drops the replies no request has taken yet; how many.
    pub(super) fn discard(&mut self) -> usize {
        let pending = self.replies.len();
        self.replies.clear();
        pending
    }

    /// The answer to `request` and how long to wait before sending it.
    pub(super) fn next(&mut self, request: &Value) -> (Duration, Answer) {
        let reply = match self.replies.front() {
            Some(Reply::Repeat(inner)) => Some((**inner).clone()),
            _ => self.replies.pop_front(),
        };
        let Some(reply) = reply else {
            let message = format!(
                "scripted LLM: script exhausted after {} requests",
                self.served
            );
            return (Duration::ZERO, Answer::Failure(Failure::new(500, message)));
        };
        self.served += 1;
        let (delay, answer) = resolve(reply, request);
        (delay, self.assign_ids(answer))
    }

    /// Give every call without an id the next `call_N`.
    fn assign_ids(&mut self, answer: Answer) -> Answer {
        let Answer::ToolCalls(calls) = answer else {
            return answer;
        };
        let calls = calls
            .into_iter()
            .map(|mut call| {
                if call.id.is_empty() {
                    self.next_call_id += 1;
                    call.id = format!("call_{}", self.next_call_id);
                }
                call
            })
            .collect();
        Answer::ToolCalls(calls)
    }
}

/// Unwrap `Repeat` and `Delay` (delays add up) and answer `Echo`.
fn resolve(reply: Reply, request: &Value) -> (Duration, Answer) {
    match reply {
        Reply::Text(text) => (Duration::ZERO, Answer::Text(text)),
        Reply::ToolCalls(calls) => (Duration::ZERO, Answer::ToolCalls(calls)),
        Reply::Status {
            code,
            retry_after_secs,
            message,
            error_type,
        } => {
            let failure = Failure {
                status: code,
                retry_after_secs,
                message,
                error_type,
            };
            (Duration::ZERO, Answer::Failure(failure))
        }
        Reply::Repeat(inner) => resolve(*inner, request),
        Reply::Delay(delay, inner) => {
            let (more, answer) = resolve(*inner, request);
            (delay.saturating_add(more), answer)
        }
        Reply::Echo => (Duration::ZERO, Answer::Text(last_user_text(request))),
    }
}

/// The text of the last `user` message: a string content, or its text parts joined.
fn last_user_text(request: &Value) -> String {
    let Some(message) = request["messages"]
        .as_array()
        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
    else {
        return String::new();
    };
    match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn repeat_stays_and_delays_add_up() {
        let mut script = Script::new([Reply::text("a")
            .after(Duration::from_millis(5))
            .after(Duration::from_millis(7))
            .repeat()]);
        for _ in 0..3 {
            assert_eq!(
                script.next(&json!({})),
                (Duration::from_millis(12), Answer::Text("a".into()))
            );
        }
    }

    #[test]
    fn exhausted_script_says_how_many_were_served() {
        let mut script = Script::new([Reply::text("a")]);
        script.next(&json!({}));
        let (_, answer) = script.next(&json!({}));
        let expected = Failure::new(
            500,
            "scripted LLM: script exhausted after 1 requests".into(),
        );
        assert_eq!(answer, Answer::Failure(expected));
    }

    #[test]
    fn call_ids_count_per_server_and_fixed_ids_stay() {
        let mut script = Script::new([
            Reply::ToolCalls(vec![
                ScriptedCall::new("a", json!({})),
                ScriptedCall::new("b", json!({})).with_id("mine"),
            ]),
            Reply::tool_call(ScriptedCall::raw("c", "{")),
        ]);
        let ids = |answer: Answer| match answer {
            Answer::ToolCalls(calls) => calls.into_iter().map(|c| c.id).collect::<Vec<_>>(),
            other => panic!("expected tool calls, got {other:?}"),
        };
        assert_eq!(ids(script.next(&json!({})).1), ["call_1", "mine"]);
        assert_eq!(ids(script.next(&json!({})).1), ["call_2"]);
    }

    #[test]
    fn echo_answers_the_last_user_message() {
        let request = json!({"messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "sec"}, {"type": "text", "text": "ond"}]},
            {"role": "tool", "content": "t", "tool_call_id": "call_1"},
        ]});
        let (_, answer) = Script::new([Reply::Echo]).next(&request);
        assert_eq!(answer, Answer::Text("second".into()));
    }
}
