//! Checking call arguments against a tool's input schema before any upstream call:
//! required properties present, and the basic JSON type of each given property.
//!
//! Deliberately small (no `$ref`, `anyOf`, formats or ranges): it catches the mistakes
//! clients and LLMs make most (a missing field, a number sent as a string) without a
//! schema engine on the hot path. Whatever it does not check, the upstream server does.

use serde_json::Value;
use toolmesh_core::JsonObject;

/// Why arguments do not fit a tool's input schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// The argument concerned.
    pub(crate) field: String,
    /// What is wrong, naming the field and the tool.
    pub(crate) message: String,
}

/// Checks `arguments` of `tool` against `schema` (the tool's `inputSchema`).
pub(crate) fn arguments(
    tool: &str,
    schema: &JsonObject,
    arguments: Option<&JsonObject>,
) -> Result<(), Invalid> {
    if let Some(Value::Array(required)) = schema.get("required") {
        for field in required.iter().filter_map(Value::as_str) {
            if !arguments.is_some_and(|args| args.contains_key(field)) {
                return Err(Invalid {
                    field: field.to_owned(),
                    message: format!(
                        "missing required argument `{field}` of tool `{tool}`{}",
                        described(schema, field)
                    ),
                });
            }
        }
    }
    let (Some(arguments), Some(Value::Object(properties))) = (arguments, schema.get("properties"))
    else {
        return Ok(());
    };
    for (field, value) in arguments {
        let Some(expected) = properties.get(field).and_then(|p| p.get("type")) else {
            continue;
        };
        if !matches_type(expected, value) {
            return Err(Invalid {
                field: field.clone(),
                message: format!(
                    "argument `{field}` of tool `{tool}` must be {}, got {}",
                    type_names(expected),
                    json_type(value)
                ),
            });
        }
    }
    Ok(())
}

/// ` (description)` of a property, when the schema has one.
fn described(schema: &JsonObject, field: &str) -> String {
    schema
        .get("properties")
        .and_then(|p| p.get(field))
        .and_then(|p| p.get("description"))
        .and_then(Value::as_str)
        .map(|d| format!(" ({})", d.trim_end_matches('.')))
        .unwrap_or_default()
}

/// Whether `value` has the JSON type `expected` names (`"string"` or `["string", "null"]`).
/// Unknown type names pass: they are the upstream server's business.
fn matches_type(expected: &Value, value: &Value) -> bool {
    match expected {
        Value::String(name) => matches_one(name, value),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .any(|name| matches_one(name, value)),
        _ => true,
    }
}

fn matches_one(name: &str, value: &Value) -> bool {
    match name {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => match value {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn type_names(expected: &Value) -> String {
    match expected {
        Value::String(name) => article(name),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .map(article)
            .collect::<Vec<_>>()
            .join(" or "),
        other => other.to_string(),
    }
}

fn article(name: &str) -> String {
    match name {
        "integer" | "object" | "array" => format!("an {name}"),
        "null" => "null".to_owned(),
        _ => format!("a {name}"),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> JsonObject {
        value.as_object().cloned().unwrap()
    }

    fn schema() -> JsonObject {
        object(json!({
            "type": "object",
            "properties": {
                "message": { "type": "string", "description": "Text to send back." },
                "count": { "type": "integer" },
                "ratio": { "type": ["number", "null"] },
                "free": {}
            },
            "required": ["message"]
        }))
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let err = arguments("fx__echo", &schema(), None).unwrap_err();
        assert_eq!(err.field, "message");
        assert_eq!(
            err.message,
            "missing required argument `message` of tool `fx__echo` (Text to send back)"
        );
        let err = arguments("fx__echo", &schema(), Some(&object(json!({"count": 1})))).unwrap_err();
        assert_eq!(err.field, "message");
    }

    #[test]
    fn basic_types_are_checked() {
        let ok = object(json!({"message": "hi", "count": 3, "ratio": null, "free": [1]}));
        assert_eq!(arguments("t", &schema(), Some(&ok)), Ok(()));
        let ok = object(json!({"message": "hi", "count": 3.0, "ratio": 0.5}));
        assert_eq!(arguments("t", &schema(), Some(&ok)), Ok(()));

        let bad = object(json!({"message": 5}));
        let err = arguments("t", &schema(), Some(&bad)).unwrap_err();
        assert_eq!(
            err.message,
            "argument `message` of tool `t` must be a string, got a number"
        );
        let bad = object(json!({"message": "x", "count": 1.5}));
        assert_eq!(
            arguments("t", &schema(), Some(&bad)).unwrap_err().field,
            "count"
        );
        let bad = object(json!({"message": "x", "ratio": "high"}));
        assert!(
            arguments("t", &schema(), Some(&bad))
                .unwrap_err()
                .message
                .contains("a number or null")
        );
    }

    #[test]
    fn schemas_without_constraints_accept_anything() {
        let empty = object(json!({"type": "object"}));
        assert_eq!(arguments("t", &empty, None), Ok(()));
        assert_eq!(
            arguments("t", &empty, Some(&object(json!({"x": 1})))),
            Ok(())
        );
        let odd = object(json!({"properties": {"x": {"type": "uuid"}}, "required": "x"}));
        assert_eq!(arguments("t", &odd, Some(&object(json!({"x": 1})))), Ok(()));
    }
}
