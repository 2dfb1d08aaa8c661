//! The `test_*` tools the suite's server scenarios call, by the names they call.

#![allow(
    deprecated,
    reason = "logging and sampling are deprecated by SEP-2577, but the 2025-11-25 conformance scenarios exercise them"
)]

use std::{sync::Arc, time::Duration};

use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolRequestParams, CallToolResult, ClientResult, ContentBlock,
        CreateMessageRequestParams, ElicitRequest, JsonObject, LoggingLevel,
        LoggingMessageNotificationParam, ProgressNotificationParam, ResourceContents,
        SamplingMessage, ServerRequest, Tool,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use super::{
    elicit,
    handler::ConformanceHandler,
    media::{PNG_BASE64, WAV_BASE64},
    streams::RECONNECTION_TOOL,
};

/// Pause between the notifications of the logging and progress tools.
const STEP: Duration = Duration::from_millis(50);
/// How long `test_reconnection` waits for the client to come back before answering anyway.
const RECONNECT_WAIT: Duration = Duration::from_secs(10);

/// `(name, description, input schema)` of every tool.
fn specs() -> Vec<(&'static str, &'static str, Value)> {
    let none = || json!({ "type": "object", "properties": {} });
    let one_string = |name: &str, description: &str| {
        json!({
            "type": "object",
            "properties": { name: { "type": "string", "description": description } },
            "required": [name]
        })
    };
    vec![
        (
            "test_simple_text",
            "Tests simple text content response",
            none(),
        ),
        ("test_image_content", "Tests image content response", none()),
        ("test_audio_content", "Tests audio content response", none()),
        (
            "test_embedded_resource",
            "Tests embedded resource content response",
            none(),
        ),
        (
            "test_multiple_content_types",
            "Tests response with multiple content types (text, image, resource)",
            none(),
        ),
        (
            "test_tool_with_logging",
            "Tests tool that emits log messages during execution",
            none(),
        ),
        (
            "test_tool_with_progress",
            "Tests tool that reports progress notifications",
            none(),
        ),
        (
            "test_error_handling",
            "Tests error response handling",
            none(),
        ),
        (
            RECONNECTION_TOOL,
            "Tests SSE stream disconnection and client reconnection (SEP-1699): closes its \
             stream mid-call and answers once the client has reconnected",
            none(),
        ),
        (
            "test_sampling",
            "Tests server-initiated sampling (LLM completion request)",
            one_string("prompt", "The prompt to send to the LLM"),
        ),
        (
            "test_elicitation",
            "Tests server-initiated elicitation (user input request)",
            one_string("message", "The message to show the user"),
        ),
        (
            "test_elicitation_sep1034_defaults",
            "Tests elicitation with default values per SEP-1034",
            none(),
        ),
        (
            "test_elicitation_sep1330_enums",
            "Tests elicitation with enum schema improvements per SEP-1330",
            none(),
        ),
        (
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "type": "object",
                        "properties": { "street": { "type": "string" }, "city": { "type": "string" } }
                    }
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" }
                },
                "additionalProperties": false
            }),
        ),
    ]
}

/// Every tool, in a fixed order.
pub(super) fn list() -> Vec<Tool> {
    specs()
        .into_iter()
        .map(|(name, description, schema)| {
            let schema = match schema {
                Value::Object(map) => map,
                _ => JsonObject::new(),
            };
            Tool::new(name, description, Arc::new(schema))
        })
        .collect()
}

/// Runs tool `request.name`. Unknown tools and missing arguments are invalid-params
/// errors; a tool that runs and fails answers with `isError: true`.
pub(super) async fn call(
    handler: &ConformanceHandler,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let text = |t: &str| Ok(CallToolResult::success(vec![ContentBlock::text(t)]));
    match request.name.as_ref() {
        "test_simple_text" => text("This is a simple text response for testing."),
        "test_image_content" => Ok(CallToolResult::success(vec![ContentBlock::image(
            PNG_BASE64,
            "image/png",
        )])),
        "test_audio_content" => Ok(CallToolResult::success(vec![ContentBlock::audio(
            WAV_BASE64,
            "audio/wav",
        )])),
        "test_embedded_resource" => Ok(CallToolResult::success(vec![ContentBlock::resource(
            ResourceContents::text(
                "This is an embedded resource content.",
                "test://embedded-resource",
            )
            .with_mime_type("text/plain"),
        )])),
        "test_multiple_content_types" => Ok(CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(PNG_BASE64, "image/png"),
            ContentBlock::resource(
                ResourceContents::text(
                    json!({ "test": "data", "value": 123 }).to_string(),
                    "test://mixed-content-resource",
                )
                .with_mime_type("application/json"),
            ),
        ])),
        "test_tool_with_logging" => with_logging(handler, &context).await,
        "test_tool_with_progress" => with_progress(&context).await,
        "test_error_handling" => Ok(CallToolResult::error(vec![ContentBlock::text(
            "This tool intentionally returns an error for testing",
        )])),
        RECONNECTION_TOOL => reconnection(handler, &context).await,
        "test_sampling" => sampling(string_argument(&request, "prompt")?, &context).await,
        "test_elicitation" => {
            let message = string_argument(&request, "message")?;
            elicitation("User response", message, elicit::basic_schema(), &context).await
        }
        "test_elicitation_sep1034_defaults" => {
            elicitation(
                "Elicitation completed",
                "Please review and update the form fields with defaults",
                elicit::defaults_schema(),
                &context,
            )
            .await
        }
        "test_elicitation_sep1330_enums" => {
            elicitation(
                "Elicitation completed",
                "Please select options from the enum fields",
                elicit::enums_schema(),
                &context,
            )
            .await
        }
        "json_schema_2020_12_tool" => {
            let args = Value::Object(request.arguments.unwrap_or_default());
            text(&format!("JSON Schema 2020-12 tool called with: {args}"))
        }
        other => Err(ErrorData::invalid_params(
            format!("no tool named {other}"),
            None,
        )),
    }
}

fn string_argument<'a>(
    request: &'a CallToolRequestParams,
    key: &str,
) -> Result<&'a str, ErrorData> {
    request
        .arguments
        .as_ref()
        .and_then(|args| args.get(key))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ErrorData::invalid_params(
                format!("tool {} needs a string argument `{key}`", request.name),
                None,
            )
        })
}

/// Waits `STEP`, or fails if the client cancels the call meanwhile.
async fn pause(context: &RequestContext<RoleServer>) -> Result<(), ErrorData> {
    tokio::select! {
        () = tokio::time::sleep(STEP) => Ok(()),
        () = context.ct.cancelled() => Err(ErrorData::internal_error("the call was cancelled", None)),
    }
}

/// Three `info` log messages, `STEP` apart, filtered by the session's log level.
async fn with_logging(
    handler: &ConformanceHandler,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let steps = [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ];
    for (i, step) in steps.into_iter().enumerate() {
        if i > 0 {
            pause(context).await?;
        }
        if handler.logs(LoggingLevel::Info) {
            let mut log =
                LoggingMessageNotificationParam::new(LoggingLevel::Info, Value::from(step))
                    .with_logger("conformance");
            // rmcp sends logs on the session's stream, not the call's: the log names its
            // call so that a gateway can hand it to that call's client (and no other).
            let mut meta = rmcp::model::NotificationMetaObject::new();
            meta.insert(
                "relatedRequestId".to_owned(),
                serde_json::to_value(&context.id).unwrap_or_default(),
            );
            log.meta = Some(meta);
            context
                .peer
                .notify_logging_message(log)
                .await
                .map_err(|e| ErrorData::internal_error(format!("cannot log: {e}"), None))?;
        }
    }
    Ok(CallToolResult::success(vec![ContentBlock::text(
        "Tool with logging executed successfully",
    )]))
}

/// Progress 0, 50 and 100 of 100, `STEP` apart, when the call asked for progress.
async fn with_progress(context: &RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
    let token = context.meta.get_progress_token();
    for (i, progress) in [0u32, 50, 100].into_iter().enumerate() {
        if i > 0 {
            pause(context).await?;
        }
        if let Some(token) = &token {
            let param = ProgressNotificationParam::new(token.clone(), f64::from(progress))
                .with_total(100.0)
                .with_message(format!("Completed step {progress} of 100"));
            context.peer.notify_progress(param).await.map_err(|e| {
                ErrorData::internal_error(format!("cannot report progress: {e}"), None)
            })?;
        }
    }
    let reported = if token.is_some() { "3" } else { "no" };
    Ok(CallToolResult::success(vec![ContentBlock::text(format!(
        "Tool with progress executed successfully ({reported} progress notifications)"
    ))]))
}

/// Closes this call's SSE stream, then answers once the client has resumed it.
async fn reconnection(
    handler: &ConformanceHandler,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let session = context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get("mcp-session-id"))
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            ErrorData::invalid_request(
                "test_reconnection needs a stateful streamable HTTP session",
                None,
            )
        })?;
    let mut resumed = match handler
        .sessions
        .close_call_stream(&session.into(), &context.id)
        .await
    {
        Ok(resumed) => resumed,
        Err(reason) => {
            return Ok(CallToolResult::error(vec![ContentBlock::text(reason)]));
        }
    };
    let came_back = tokio::select! {
        changed = tokio::time::timeout(RECONNECT_WAIT, resumed.changed()) => matches!(changed, Ok(Ok(()))),
        () = context.ct.cancelled() => return Err(ErrorData::internal_error("the call was cancelled", None)),
    };
    let text = if came_back {
        "Reconnection test completed successfully. If you received this, the client properly \
         reconnected after stream closure."
    } else {
        "The stream was closed but the client did not reconnect within 10 s."
    };
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

/// Asks the client's LLM to answer `prompt`.
async fn sampling(
    prompt: &str,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let params = CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], 100);
    match context.peer.create_message(params).await {
        Ok(result) => {
            let message = serde_json::to_value(&result.message).unwrap_or_default();
            let answer = message["content"]["text"].as_str().unwrap_or("(no text)");
            Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                "LLM response: {answer}"
            ))]))
        }
        Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
            "Sampling not supported or error: {e}"
        ))])),
    }
}

/// Asks the client to fill in `schema`; reports the action and content as
/// `<label>: action=…, content=…`.
async fn elicitation(
    label: &str,
    message: &str,
    schema: Value,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, ErrorData> {
    let request = ServerRequest::ElicitRequest(ElicitRequest::new(elicit::form(message, schema)?));
    let answer = match context.peer.send_request(request).await {
        Ok(ClientResult::ElicitResult(result)) => {
            serde_json::to_value(&result).map_err(|e| e.to_string())
        }
        Ok(_) => Err("the client answered with another result type".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    Ok(match answer {
        Ok(result) => {
            let action = result["action"].as_str().unwrap_or("?");
            let content = result.get("content").cloned().unwrap_or_else(|| json!({}));
            CallToolResult::success(vec![ContentBlock::text(format!(
                "{label}: action={action}, content={content}"
            ))])
        }
        Err(reason) => CallToolResult::error(vec![ContentBlock::text(format!(
            "Elicitation not supported or error: {reason}"
        ))]),
    })
}

#[cfg(test)]
mod tests {
    use super::list;

    #[test]
    fn every_tool_has_a_description_and_an_object_schema() {
        let tools = list();
        assert_eq!(tools.len(), 14);
        for tool in tools {
            assert!(tool.description.is_some(), "{}", tool.name);
            assert_eq!(tool.input_schema.get("type"), Some(&"object".into()));
        }
    }
}
