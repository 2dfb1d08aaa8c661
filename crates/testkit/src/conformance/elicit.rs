//! The forms the elicitation tools send: written as the JSON the scenarios check, then
//! read into rmcp's typed schema (which keeps defaults, titled and legacy enums).

use rmcp::{
    ErrorData,
    model::{ElicitRequestParams, ElicitationSchema},
};
use serde_json::{Value, json};

/// `test_elicitation`: the form the `tools-call-elicitation` scenario describes.
pub(super) fn basic_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "username": { "type": "string", "description": "User's response" },
            "email": { "type": "string", "description": "User's email address" }
        },
        "required": ["username", "email"]
    })
}

/// SEP-1034: a default for every primitive type.
pub(super) fn defaults_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "description": "User name", "default": "John Doe" },
            "age": { "type": "integer", "description": "User age", "default": 30 },
            "score": { "type": "number", "description": "User score", "default": 95.5 },
            "status": {
                "type": "string",
                "description": "User status",
                "enum": ["active", "inactive", "pending"],
                "default": "active"
            },
            "verified": { "type": "boolean", "description": "Verification status", "default": true }
        },
        "required": []
    })
}

/// SEP-1330: the five enum forms (untitled, titled, legacy `enumNames`, and the
/// multi-select untitled and titled ones).
pub(super) fn enums_schema() -> Value {
    let titled = |prefix: &str, titles: [&str; 3]| -> Vec<Value> {
        titles
            .iter()
            .enumerate()
            .map(|(i, title)| json!({ "const": format!("{prefix}{}", i + 1), "title": title }))
            .collect()
    };
    json!({
        "type": "object",
        "properties": {
            "untitledSingle": {
                "type": "string",
                "description": "Select one option",
                "enum": ["option1", "option2", "option3"]
            },
            "titledSingle": {
                "type": "string",
                "description": "Select one option with titles",
                "oneOf": titled("value", ["First Option", "Second Option", "Third Option"])
            },
            "legacyEnum": {
                "type": "string",
                "description": "Select one option (legacy)",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]
            },
            "untitledMulti": {
                "type": "array",
                "description": "Select multiple options",
                "minItems": 1,
                "maxItems": 3,
                "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
            },
            "titledMulti": {
                "type": "array",
                "description": "Select multiple options with titles",
                "minItems": 1,
                "maxItems": 3,
                "items": { "anyOf": titled("value", ["First Choice", "Second Choice", "Third Choice"]) }
            }
        },
        "required": []
    })
}

/// A form elicitation of `schema` with `message`.
pub(super) fn form(message: &str, schema: Value) -> Result<ElicitRequestParams, ErrorData> {
    let invalid = |e: serde_json::Error| {
        ErrorData::internal_error(
            format!("the fixture's elicitation form is invalid: {e}"),
            None,
        )
    };
    let schema: ElicitationSchema = serde_json::from_value(schema).map_err(invalid)?;
    serde_json::from_value(json!({
        "mode": "form",
        "message": message,
        "requestedSchema": schema,
    }))
    .map_err(invalid)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::{basic_schema, defaults_schema, enums_schema, form};

    /// rmcp's typed schema must send exactly what the scenarios check for.
    #[test]
    fn forms_reach_the_wire_unchanged() -> anyhow::Result<()> {
        for schema in [basic_schema(), defaults_schema(), enums_schema()] {
            let params = serde_json::to_value(form("m", schema.clone())?)?;
            assert_eq!(params["requestedSchema"], schema);
            assert_eq!(params["message"], Value::from("m"));
        }
        Ok(())
    }
}
