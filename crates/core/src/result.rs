//! A tool result as text, for people and for models.

use rmcp::model::CallToolResult;
use serde_json::Value;

/// The text of a result: text blocks as they are, anything else as JSON; the structured
/// content when there is no text.
pub fn result_text(result: &CallToolResult) -> String {
    let mut parts: Vec<String> = result
        .content
        .iter()
        .map(|block| match serde_json::to_value(block) {
            Ok(Value::Object(map)) if map.get("type") == Some(&Value::from("text")) => map
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            Ok(other) => other.to_string(),
            Err(e) => format!("<unprintable content: {e}>"),
        })
        .collect();
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    parts.join("\n")
}
