//! The scripted LLM over real HTTP: plain JSON and SSE answers, errors, the
//! script's bookkeeping, and async-openai parsing what it sends.

use std::time::Duration;

use anyhow::{Context, ensure};
use reqwest::{StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use toolmesh_testkit::{Reply, ScriptedCall, ScriptedLlm};

const LIMIT: Duration = Duration::from_secs(10);

/// One answer: status, headers and body text.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {}", self.body))
    }
}

async fn post_with(llm: &ScriptedLlm, body: &Value, auth: Option<&str>) -> anyhow::Result<Answer> {
    let mut request = reqwest::Client::builder()
        .timeout(LIMIT)
        .build()?
        .post(format!("{}/chat/completions", llm.base_url()))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(key) = auth {
        request = request.bearer_auth(key);
    }
    let response = request.send().await?;
    Ok(Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await?,
    })
}

async fn post(llm: &ScriptedLlm, body: &Value) -> anyhow::Result<Answer> {
    post_with(llm, body, None).await
}

fn chat(model: &str, user: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": user}]})
}

fn streamed(mut body: Value, include_usage: bool) -> Value {
    body["stream"] = json!(true);
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// The chunks of an SSE body, checking the `data:` framing and the final `[DONE]`.
fn sse_chunks(answer: &Answer) -> anyhow::Result<Vec<Value>> {
    ensure!(answer.status == StatusCode::OK, "status {}", answer.status);
    let content_type = answer
        .headers
        .get("content-type")
        .context("no content-type")?;
    ensure!(
        content_type == "text/event-stream",
        "content-type {content_type:?}"
    );
    let events: Vec<&str> = answer.body.split_terminator("\n\n").collect();
    let (done, chunks) = events.split_last().context("empty stream")?;
    ensure!(*done == "data: [DONE]", "last event {done:?}");
    chunks
        .iter()
        .map(|event| {
            let data = event
                .strip_prefix("data: ")
                .with_context(|| format!("not a data event: {event:?}"))?;
            serde_json::from_str(data).with_context(|| format!("chunk not JSON: {data}"))
        })
        .collect()
}

/// The assistant message, finish reason and usage the chunks add up to,
/// shaped like a non-streamed choice. A missing tool-call `index` means 0.
fn reassemble(chunks: &[Value]) -> anyhow::Result<(Value, Value, Option<Value>)> {
    let mut content: Option<String> = None;
    let mut calls: Vec<Value> = Vec::new();
    let mut finish = Value::Null;
    let mut usage = None;
    for chunk in chunks {
        ensure!(chunk["object"] == "chat.completion.chunk", "{chunk}");
        if !chunk["usage"].is_null() {
            usage = Some(chunk["usage"].clone());
        }
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str() {
            content.get_or_insert_default().push_str(text);
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap_or(0) as usize;
            if index == calls.len() {
                calls.push(json!({"id": call["id"], "type": call["type"],
                    "function": {"name": call["function"]["name"], "arguments": ""}}));
            }
            let slot = calls
                .get_mut(index)
                .context("tool call index skips ahead")?;
            let fragment = call["function"]["arguments"].as_str().unwrap_or_default();
            let arguments = format!(
                "{}{fragment}",
                slot["function"]["arguments"].as_str().unwrap_or_default()
            );
            slot["function"]["arguments"] = json!(arguments);
        }
        if !choice["finish_reason"].is_null() {
            finish = choice["finish_reason"].clone();
        }
    }
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = json!(calls);
    }
    Ok((message, finish, usage))
}

#[tokio::test]
async fn text_answer_is_a_chat_completion() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([Reply::text("Paris.")]).await?;
    let body = chat("gpt-test", "Capital of France?");
    let answer = post(&llm, &body).await?;
    assert_eq!(answer.status, StatusCode::OK);
    let completion = answer.json()?;
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "gpt-test");
    assert!(
        completion["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    let choice = &completion["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Paris.");
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &completion["usage"];
    assert_eq!(usage["prompt_tokens"], body.to_string().len() / 4);
    assert_eq!(usage["completion_tokens"], 2);
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_u64().unwrap_or(0) + 2
    );
    Ok(())
}

#[tokio::test]
async fn tool_calls_carry_their_arguments_verbatim() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([Reply::ToolCalls(vec![
        ScriptedCall::new("add", json!({"a": 1, "b": 2})),
        ScriptedCall::raw("echo", r#"{"message": "unterminated"#),
    ])])
    .await?;
    let completion = post(&llm, &chat("m", "add and echo")).await?.json()?;
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([
            {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": r#"{"a":1,"b":2}"#}},
            {"id": "call_2", "type": "function", "function": {"name": "echo", "arguments": r#"{"message": "unterminated"#}},
        ])
    );
    Ok(())
}

#[tokio::test]
async fn a_stream_adds_up_to_the_plain_answer() -> anyhow::Result<()> {
    let calls = vec![
        ScriptedCall::new("add", json!({"a": 1, "b": 2})).with_id("call_a"),
        ScriptedCall::raw("echo", "{not json").with_id("call_b"),
    ];
    for reply in [Reply::text("The answer is 42."), Reply::ToolCalls(calls)] {
        let llm = ScriptedLlm::start([reply.repeat()]).await?;
        let body = chat("m", "q");
        let plain = post(&llm, &body).await?.json()?;
        let chunks = sse_chunks(&post(&llm, &streamed(body.clone(), true)).await?)?;
        let (message, finish, usage) = reassemble(&chunks)?;
        assert_eq!(message, plain["choices"][0]["message"]);
        assert_eq!(finish, plain["choices"][0]["finish_reason"]);
        assert!(
            chunks
                .iter()
                .all(|c| c["model"] == "m" && c["id"] == chunks[0]["id"])
        );

        let usage = usage.context("include_usage asked for a usage chunk")?;
        let last = chunks.last().context("no chunks")?;
        assert_eq!(last["choices"], json!([]));
        assert_eq!(last["usage"], usage);
        assert_eq!(
            usage["completion_tokens"],
            plain["usage"]["completion_tokens"]
        );
        assert_eq!(
            usage["total_tokens"].as_u64(),
            Some(
                usage["prompt_tokens"].as_u64().unwrap_or(0)
                    + usage["completion_tokens"].as_u64().unwrap_or(0)
            )
        );

        let deltas: Vec<&Value> = chunks
            .iter()
            .filter_map(|c| c["choices"][0].get("delta"))
            .collect();
        if let Some(calls) = plain["choices"][0]["message"]["tool_calls"].as_array() {
            for (index, call) in calls.iter().enumerate() {
                let parts: Vec<&Value> = deltas
                    .iter()
                    .filter_map(|d| d["tool_calls"].get(0))
                    .filter(|c| c["index"] == index)
                    .collect();
                assert_eq!(
                    parts[0],
                    &json!({"index": index, "id": call["id"], "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""}})
                );
                assert!(
                    parts.len() >= 3,
                    "arguments in at least two chunks: {parts:?}"
                );
                for part in &parts[1..] {
                    let keys: Vec<&String> = part
                        .as_object()
                        .into_iter()
                        .flat_map(|o| o.keys())
                        .collect();
                    assert_eq!(keys, ["function", "index"], "{part}");
                    assert_eq!(
                        part["function"].as_object().map(|f| f.len()),
                        Some(1),
                        "{part}"
                    );
                }
            }
        } else {
            let texts = deltas
                .iter()
                .filter(|d| d["content"].as_str().is_some_and(|t| !t.is_empty()));
            assert!(
                texts.count() >= 2,
                "text split into several deltas: {deltas:?}"
            );
        }

        let without_usage = sse_chunks(&post(&llm, &streamed(body, false)).await?)?;
        assert!(
            without_usage.iter().all(|c| c.get("usage").is_none()
                && c["choices"].as_array().is_some_and(|c| c.len() == 1))
        );
    }
    Ok(())
}

#[tokio::test]
async fn omit_stream_index_drops_the_index_of_a_single_call() -> anyhow::Result<()> {
    let two = vec![
        ScriptedCall::new("a", json!({"x": 1})),
        ScriptedCall::new("b", json!({"y": 2})),
    ];
    let llm = ScriptedLlm::omit_stream_index(true)
        .start([
            Reply::tool_call(ScriptedCall::new("echo", json!({"message": "hi"}))),
            Reply::ToolCalls(two),
        ])
        .await?;
    let call_chunks = |chunks: Vec<Value>| -> Vec<Value> {
        chunks
            .into_iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0).cloned())
            .collect()
    };
    let single = sse_chunks(&post(&llm, &streamed(chat("m", "q"), false)).await?)?;
    let (message, _, _) = reassemble(&single)?;
    assert_eq!(
        message["tool_calls"][0]["function"]["arguments"],
        r#"{"message":"hi"}"#
    );
    let single = call_chunks(single);
    assert!(
        single.len() >= 3 && single.iter().all(|c| c.get("index").is_none()),
        "{single:?}"
    );
    let double = call_chunks(sse_chunks(
        &post(&llm, &streamed(chat("m", "q"), false)).await?,
    )?);
    assert!(
        double.iter().all(|c| c.get("index").is_some()),
        "{double:?}"
    );
    Ok(())
}

#[tokio::test]
async fn status_429_carries_retry_after_and_an_openai_error() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([
        Reply::rate_limited(7),
        Reply::Status {
            code: 503,
            retry_after_secs: None,
            message: "overloaded".into(),
            error_type: Some("overloaded_error".into()),
        },
        Reply::text("ok"),
    ])
    .await?;
    let limited = post(&llm, &chat("m", "q")).await?;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"7"[..])
    );
    assert_eq!(
        limited.json()?,
        json!({"error": {"message": "scripted LLM: rate limit reached", "type": "requests",
            "param": null, "code": "rate_limit_exceeded"}})
    );
    let unavailable = post(&llm, &streamed(chat("m", "q"), true)).await?;
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(unavailable.headers.get("retry-after").is_none());
    assert_eq!(
        unavailable.json()?,
        json!({"error": {"message": "overloaded", "type": "overloaded_error", "param": null, "code": null}})
    );
    assert_eq!(post(&llm, &chat("m", "q")).await?.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn repeat_never_runs_out() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([
        Reply::text("first"),
        Reply::tool_call(ScriptedCall::new("loop", json!({}))).repeat(),
    ])
    .await?;
    post(&llm, &chat("m", "q")).await?;
    for n in 1..=20 {
        let completion = post(&llm, &chat("m", "q")).await?.json()?;
        let call = &completion["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "loop");
        assert_eq!(
            call["id"],
            format!("call_{n}"),
            "every repetition gets a fresh id"
        );
    }
    Ok(())
}

#[tokio::test]
async fn an_exhausted_script_answers_500_saying_so() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([Reply::text("only")]).await?;
    assert_eq!(post(&llm, &chat("m", "q")).await?.status, StatusCode::OK);
    let exhausted = post(&llm, &chat("m", "q")).await?;
    assert_eq!(exhausted.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        exhausted.json()?["error"]["message"],
        "scripted LLM: script exhausted after 1 requests"
    );
    llm.push(Reply::text("more"));
    let more = post(&llm, &chat("m", "q")).await?.json()?;
    assert_eq!(more["choices"][0]["message"]["content"], "more");
    Ok(())
}

#[tokio::test]
async fn requests_are_recorded_in_order() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([Reply::Echo.repeat()]).await?;
    let bodies: Vec<Value> = (0..3).map(|i| chat("m", &format!("turn {i}"))).collect();
    let client = {
        let bodies = bodies.clone();
        let url = llm.base_url();
        tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(LIMIT).build()?;
            let mut answers = Vec::new();
            for body in bodies {
                let response = client
                    .post(format!("{url}/chat/completions"))
                    .body(body.to_string())
                    .send()
                    .await?;
                answers.push(response.text().await?);
            }
            anyhow::Ok(answers)
        })
    };
    llm.wait_for_requests(3, LIMIT).await?;
    assert_eq!(llm.request_count(), 3);
    assert_eq!(llm.requests(), bodies);
    let answers = client.await??;
    for (i, answer) in answers.iter().enumerate() {
        let completion: Value = serde_json::from_str(answer)?;
        assert_eq!(
            completion["choices"][0]["message"]["content"],
            format!("turn {i}")
        );
    }
    let short = llm.wait_for_requests(4, Duration::from_millis(20)).await;
    let error = short.err().context("a fourth request never came")?;
    assert!(error.to_string().contains("3 of 4 requests"), "{error}");
    Ok(())
}

#[tokio::test]
async fn a_required_api_key_is_checked_before_the_script() -> anyhow::Result<()> {
    let llm = ScriptedLlm::with_api_key("sk-test")
        .start([Reply::text("hi")])
        .await?;
    for auth in [None, Some("sk-wrong")] {
        let denied = post_with(&llm, &chat("m", "q"), auth).await?;
        assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
        let error = &denied.json()?["error"];
        assert_eq!(error["code"], "invalid_api_key");
        assert_eq!(error["type"], "invalid_request_error");
    }
    let allowed = post_with(&llm, &chat("m", "q"), Some("sk-test")).await?;
    assert_eq!(allowed.json()?["choices"][0]["message"]["content"], "hi");
    assert_eq!(llm.request_count(), 3);
    Ok(())
}

#[tokio::test]
async fn a_delayed_reply_outlasts_a_short_client_deadline() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([
        Reply::text("late").after(Duration::from_secs(30)),
        Reply::text("on time"),
    ])
    .await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()?;
    let url = format!("{}/chat/completions", llm.base_url());
    let late = client
        .post(&url)
        .body(chat("m", "q").to_string())
        .send()
        .await;
    assert!(
        late.is_err_and(|e| e.is_timeout()),
        "the delayed reply came within 200 ms"
    );
    let on_time = client
        .post(&url)
        .body(chat("m", "q").to_string())
        .send()
        .await?;
    let completion: Value = serde_json::from_str(&on_time.text().await?)?;
    assert_eq!(completion["choices"][0]["message"]["content"], "on time");
    Ok(())
}

#[tokio::test]
async fn other_routes_and_bodies_get_openai_errors() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([Reply::text("kept")]).await?;
    let client = reqwest::Client::builder().timeout(LIMIT).build()?;
    let missing = client
        .post(format!("{}/completions", llm.base_url()))
        .send()
        .await?;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let error: Value = serde_json::from_str(&missing.text().await?)?;
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("POST /v1/chat/completions"))
    );

    let bad = client
        .post(format!("{}/chat/completions", llm.base_url()))
        .body("{oops")
        .send()
        .await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(llm.requests(), [json!("{oops")]);
    let kept = post(&llm, &chat("m", "q")).await?.json()?;
    assert_eq!(
        kept["choices"][0]["message"]["content"], "kept",
        "a bad body takes no reply"
    );
    Ok(())
}

/// async-openai, the client the agent runtime uses, parses every answer.
mod async_openai_parses {
    use async_openai::{
        Client,
        config::OpenAIConfig,
        error::OpenAIError,
        types::chat::{
            ChatCompletionMessageToolCalls, ChatCompletionRequestUserMessage,
            ChatCompletionStreamOptions, CreateChatCompletionRequest,
            CreateChatCompletionRequestArgs, FinishReason,
        },
    };
    use futures::StreamExt;

    use super::*;

    fn client(llm: &ScriptedLlm) -> Client<OpenAIConfig> {
        Client::with_config(
            OpenAIConfig::new()
                .with_api_base(llm.base_url())
                .with_api_key("sk-test"),
        )
    }

    fn request(stream_usage: bool) -> anyhow::Result<CreateChatCompletionRequest> {
        let mut args = CreateChatCompletionRequestArgs::default();
        args.model("gpt-test")
            .messages([ChatCompletionRequestUserMessage::from("hello").into()]);
        if stream_usage {
            // With async-openai's `byot` feature (the agent enables it) the caller sets it.
            args.stream(true);
            args.stream_options(ChatCompletionStreamOptions {
                include_usage: Some(true),
                ..Default::default()
            });
        }
        Ok(args.build()?)
    }

    fn script() -> Vec<Reply> {
        let calls = Reply::ToolCalls(vec![
            ScriptedCall::new("add", json!({"a": 1})),
            ScriptedCall::raw("echo", "{broken"),
        ]);
        vec![
            Reply::text("hi there"),
            calls.clone(),
            Reply::text("hi there"),
            calls,
            Reply::Status {
                code: 429,
                retry_after_secs: None,
                message: "You exceeded your current quota".into(),
                error_type: Some("insufficient_quota".into()),
            },
        ]
    }

    /// (content, [(id, name, arguments)], finish reason)
    type Parsed = (
        Option<String>,
        Vec<(String, String, String)>,
        Option<FinishReason>,
    );

    #[tokio::test]
    async fn create_and_create_stream() -> anyhow::Result<()> {
        let llm = ScriptedLlm::with_api_key("sk-test").start(script()).await?;
        let client = client(&llm);
        let mut plain: Vec<Parsed> = Vec::new();
        for _ in 0..2 {
            let response = client.chat().create(request(false)?).await?;
            assert_eq!(response.model, "gpt-test");
            let usage = response.usage.context("usage")?;
            assert_eq!(
                usage.total_tokens,
                usage.prompt_tokens + usage.completion_tokens
            );
            let choice = response.choices.into_iter().next().context("no choice")?;
            let calls = choice
                .message
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .map(|call| match call {
                    ChatCompletionMessageToolCalls::Function(f) => {
                        Ok((f.id, f.function.name, f.function.arguments))
                    }
                    other => anyhow::bail!("not a function call: {other:?}"),
                })
                .collect::<anyhow::Result<_>>()?;
            plain.push((choice.message.content, calls, choice.finish_reason));
        }
        assert_eq!(
            plain[0],
            (Some("hi there".into()), vec![], Some(FinishReason::Stop))
        );
        assert_eq!(
            plain[1].1[1],
            ("call_2".into(), "echo".into(), "{broken".into())
        );
        assert_eq!(plain[1].2, Some(FinishReason::ToolCalls));

        for expected in &plain {
            let mut stream = client.chat().create_stream(request(true)?).await?;
            let (mut content, mut calls, mut finish, mut usage) = (
                None::<String>,
                Vec::<(String, String, String)>::new(),
                None,
                None,
            );
            while let Some(chunk) = tokio::time::timeout(LIMIT, stream.next()).await? {
                let chunk = chunk?;
                usage = usage.or(chunk.usage);
                for choice in chunk.choices {
                    if let Some(text) = choice.delta.content {
                        content.get_or_insert_default().push_str(&text);
                    }
                    for call in choice.delta.tool_calls.unwrap_or_default() {
                        let index = call.index as usize;
                        if index == calls.len() {
                            calls.push(Default::default());
                        }
                        let slot = calls.get_mut(index).context("index skips ahead")?;
                        let function = call.function.unwrap_or_default();
                        slot.0.push_str(&call.id.unwrap_or_default());
                        slot.1.push_str(&function.name.unwrap_or_default());
                        slot.2.push_str(&function.arguments.unwrap_or_default());
                    }
                    finish = finish.or(choice.finish_reason);
                }
            }
            // Stream ids are fresh: compare names and arguments.
            let strip = |calls: &[(String, String, String)]| {
                calls
                    .iter()
                    .map(|c| (c.1.clone(), c.2.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(content, expected.0);
            assert_eq!(strip(&calls), strip(&expected.1));
            assert_eq!(finish, expected.2);
            assert!(usage.is_some_and(|u| u.total_tokens == u.prompt_tokens + u.completion_tokens));
        }

        // async-openai retries 429 and 5xx by default, but not these two.
        let wrong_key = Client::with_config(
            OpenAIConfig::new()
                .with_api_base(llm.base_url())
                .with_api_key("sk-wrong"),
        );
        for (client, status, error_type, code) in [
            (
                &wrong_key,
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
            ),
            (
                &client,
                429,
                "insufficient_quota",
                Some("rate_limit_exceeded"),
            ),
        ] {
            let failed = client.chat().create(request(false)?).await;
            let Err(OpenAIError::ApiError(error)) = failed else {
                anyhow::bail!("expected an API error, got {failed:?}");
            };
            assert_eq!(error.status_code.as_u16(), status, "{error}");
            assert_eq!(error.api_error.r#type.as_deref(), Some(error_type));
            assert_eq!(error.api_error.code.as_deref(), code);
        }
        assert_eq!(llm.request_count(), 6);
        Ok(())
    }
}

#[tokio::test]
async fn dropping_the_server_stops_it() -> anyhow::Result<()> {
    let llm = ScriptedLlm::start([Reply::text("up").repeat()]).await?;
    let url = format!("{}/chat/completions", llm.base_url());
    assert_eq!(post(&llm, &chat("m", "q")).await?.status, StatusCode::OK);
    drop(llm);
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        // A fresh client each time: no pooled connection outlives the server.
        let client = reqwest::Client::builder().timeout(LIMIT).build()?;
        match client
            .post(&url)
            .body(chat("m", "q").to_string())
            .send()
            .await
        {
            Err(error) if error.is_connect() => return Ok(()),
            other => ensure!(
                tokio::time::Instant::now() < deadline,
                "still answering {LIMIT:?} after drop: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
