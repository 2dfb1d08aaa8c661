use serde_json::json;
use toolmesh_tools::{Calculator, NativeTool};

use crate::support::{call, ok, text, tool_err};

#[tokio::test]
async fn evaluates_with_precedence_functions_and_constants() -> anyhow::Result<()> {
    let result = call(
        &Calculator,
        json!({ "expression": "2 * (3 + 4)^2 / sqrt(16)" }),
    )
    .await?;
    let structured = ok(&result);
    assert_eq!(text(&result), "24.5");
    assert_eq!(structured["result"], json!(24.5));

    for (expression, expected) in [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        // exmex binds a unary minus tighter than `^` (documented).
        ("-2^2", 4.0),
        ("-(2^2)", -4.0),
        ("2 ** 3", 8.0),
        ("10 / 4", 2.5),
        ("sin(pi / 2)", 1.0),
        ("cos(0) + exp(0)", 2.0),
        ("ln(e)", 1.0),
        ("log10(1000)", 3.0),
        ("abs(-3.5)", 3.5),
        ("3 max 4", 4.0),
    ] {
        let result = call(&Calculator, json!({ "expression": expression })).await?;
        let value = ok(&result)["result"].as_f64().unwrap_or(f64::NAN);
        assert!(
            (value - expected).abs() < 1e-9,
            "{expression} = {value}, expected {expected}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn division_by_zero_is_a_tool_error() -> anyhow::Result<()> {
    let result = call(&Calculator, json!({ "expression": "1 / (2 - 2)" })).await?;
    tool_err(&result, &["divides by zero"]);
    let result = call(&Calculator, json!({ "expression": "0 / 0" })).await?;
    tool_err(&result, &["NaN"]);
    Ok(())
}

#[tokio::test]
async fn syntax_errors_and_unknown_names_are_tool_errors() -> anyhow::Result<()> {
    let result = call(&Calculator, json!({ "expression": "2 +* 3" })).await?;
    tool_err(&result, &["cannot parse", "2 +* 3"]);
    let result = call(&Calculator, json!({ "expression": "(1 + 2" })).await?;
    tool_err(&result, &["cannot parse"]);
    let result = call(&Calculator, json!({ "expression": "2 * radius" })).await?;
    tool_err(&result, &["unknown name", "`radius`"]);
    Ok(())
}

#[tokio::test]
async fn wrong_arguments_are_tool_errors() -> anyhow::Result<()> {
    let result = call(&Calculator, json!({})).await?;
    tool_err(
        &result,
        &[
            "invalid arguments for `calculator`",
            "missing field `expression`",
        ],
    );
    let result = call(&Calculator, json!({ "expression": 42 })).await?;
    tool_err(&result, &["invalid arguments", "expected a string"]);
    let result = call(&Calculator, json!({ "expression": "1", "precision": 3 })).await?;
    tool_err(&result, &["unknown field `precision`"]);
    Ok(())
}

#[test]
fn definition_is_read_only_idempotent_and_closed_world() {
    let tool = Calculator.definition();
    assert_eq!(tool.name, "calculator");
    let annotations = tool.annotations.unwrap_or_default();
    assert_eq!(annotations.read_only_hint, Some(true));
    assert_eq!(annotations.idempotent_hint, Some(true));
    assert_eq!(annotations.open_world_hint, Some(false));
    let schema = serde_json::Value::Object(tool.input_schema.as_ref().clone());
    assert_eq!(schema["required"], json!(["expression"]), "{schema}");
}
