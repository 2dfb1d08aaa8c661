//! The OpenAI chat-completions wire format: response bodies, stream chunks,
//! usage and error bodies, as `serde_json` values.

use serde_json::{Value, json};

use super::script::ScriptedCall;

/// A successful answer, as the model's message.
#[derive(Debug, Clone, Copy)]
pub(super) enum Message<'a> {
    /// Assistant text, `finish_reason: "stop"`.
    Text(&'a str),
    /// Tool calls, `finish_reason: "tool_calls"`.
    ToolCalls(&'a [ScriptedCall]),
}

impl Message<'_> {
    fn finish_reason(self) -> &'static str {
        match self {
            Self::Text(_) => "stop",
            Self::ToolCalls(_) => "tool_calls",
        }
    }
}

/// What every body of one response shares.
#[derive(Debug)]
pub(super) struct Meta {
    /// `id`, the same in every chunk of a stream.
    pub(super) id: String,
    /// `created`, Unix seconds.
    pub(super) created: u64,
    /// `model`, echoed from the request.
    pub(super) model: String,
    /// `usage`.
    pub(super) usage: Value,
}

/// `usage`: a quarter of the request body's bytes as prompt tokens, a quarter
/// (at least one) of the answer's bytes as completion tokens.
pub(super) fn usage(request_bytes: usize, message: Message<'_>) -> Value {
    let answer_bytes = match message {
        Message::Text(text) => text.len(),
        Message::ToolCalls(calls) => calls.iter().map(|c| c.name.len() + c.arguments.len()).sum(),
    };
    let prompt = request_bytes / 4;
    let completion = answer_bytes.div_ceil(4).max(1);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

/// A `chat.completion` body (the answer of a request without `"stream": true`).
pub(super) fn completion(meta: &Meta, message: Message<'_>) -> Value {
    let body = match message {
        Message::ToolCalls(calls) => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": calls.iter().map(tool_call).collect::<Vec<_>>(),
        }),
        Message::Text(text) => json!({"role": "assistant", "content": text, "refusal": null}),
    };
    json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{
            "index": 0,
            "message": body,
            "logprobs": null,
            "finish_reason": message.finish_reason(),
        }],
        "usage": meta.usage,
    })
}

fn tool_call(call: &ScriptedCall) -> Value {
    json!({
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    })
}

/// How a stream is cut into chunks.
#[derive(Debug, Clone, Copy)]
pub(super) struct StreamShape {
    /// Leave `index` out of tool-call chunks when there is a single call.
    pub(super) omit_single_index: bool,
    /// End with a chunk carrying `usage` and no choices (`stream_options.include_usage`).
    pub(super) include_usage: bool,
}

/// The `chat.completion.chunk` bodies of a streamed answer, in order
/// (without the closing `[DONE]`).
pub(super) fn chunks(meta: &Meta, message: Message<'_>, shape: StreamShape) -> Vec<Value> {
    let mut deltas = Vec::new();
    match message {
        Message::ToolCalls(calls) => {
            let with_index = calls.len() != 1 || !shape.omit_single_index;
            for (index, call) in calls.iter().enumerate() {
                let header = json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                });
                let fragments = pieces(&call.arguments, 2, 3)
                    .into_iter()
                    .map(|part| json!({"function": {"arguments": part}}));
                for mut fragment in std::iter::once(header).chain(fragments) {
                    if with_index {
                        fragment["index"] = json!(index);
                    }
                    deltas.push(json!({"tool_calls": [fragment]}));
                }
            }
            // OpenAI sends the role with the first call's header.
            if let Some(first) = deltas.first_mut() {
                first["role"] = json!("assistant");
                first["content"] = Value::Null;
            }
        }
        Message::Text(text) => {
            deltas.push(json!({"role": "assistant", "content": ""}));
            deltas.extend(
                pieces(text, 1, 3)
                    .into_iter()
                    .map(|part| json!({"content": part})),
            );
        }
    }
    let chunk = |delta: Value, finish: Value| {
        let mut chunk = json!({
            "id": meta.id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if shape.include_usage {
            // OpenAI sends `"usage": null` in every chunk but the last.
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let mut out: Vec<Value> = deltas
        .into_iter()
        .map(|delta| chunk(delta, Value::Null))
        .collect();
    out.push(chunk(json!({}), json!(message.finish_reason())));
    if shape.include_usage {
        out.push(json!({
            "id": meta.id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "choices": [],
            "usage": meta.usage,
        }));
    }
    out
}

/// `text` cut at char boundaries into between `min` and `max` pieces of
/// near-equal length (pieces are empty when the text is shorter than `min`).
fn pieces(text: &str, min: usize, max: usize) -> Vec<&str> {
    let bounds: Vec<usize> = text
        .char_indices()
        .map(|(at, _)| at)
        .chain([text.len()])
        .collect();
    let chars = bounds.len() - 1;
    let n = chars.clamp(min, max);
    (0..n)
        .map(|k| &text[bounds[k * chars / n]..bounds[(k + 1) * chars / n]])
        .collect()
}

/// `error.type` OpenAI sends with `status` when the script names none.
pub(super) fn default_error_type(status: u16) -> &'static str {
    match status {
        429 => "requests",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

/// `error.code` OpenAI sends with `status`.
pub(super) fn error_code(status: u16) -> Option<&'static str> {
    match status {
        401 => Some("invalid_api_key"),
        429 => Some("rate_limit_exceeded"),
        _ => None,
    }
}

/// The OpenAI error body `{"error":{"message","type","param","code"}}`.
pub(super) fn error_body(message: &str, error_type: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": error_type, "param": null, "code": code}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_text_at_char_boundaries() {
        for text in ["", "a", "ab", "héllo wörld", "{\"path\":\"/tmp/ü\"}"] {
            for (min, max) in [(1, 3), (2, 3)] {
                let parts = pieces(text, min, max);
                assert_eq!(parts.concat(), text);
                assert!((min..=max).contains(&parts.len()), "{text:?}: {parts:?}");
            }
        }
        assert_eq!(pieces("abcdef", 1, 3), ["ab", "cd", "ef"]);
    }
}
