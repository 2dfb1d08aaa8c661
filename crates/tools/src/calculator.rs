//! `calculator`: evaluates arithmetic expressions with exmex, in `f64`.

use rmcp::model::{CallToolResult, JsonObject, Tool, ToolAnnotations};
use serde::Deserialize;
use toolmesh_core::{CallContext, CallError};

use crate::native::{NativeTool, answer, schema_for, tool_success};

/// Longest expression accepted, in bytes.
const MAX_EXPRESSION_LEN: usize = 1000;

/// Names the model may use besides numbers and operators, for error messages.
const VOCABULARY: &str = "operators + - * / ^ (power; ** also works; a leading minus binds tighter: \
write -(2^2) for -4) and parentheses; \
functions sqrt, cbrt, exp, ln (natural log; log is the same), log10, log2, abs, signum, \
floor, ceil, round, trunc, fract, sin, cos, tan, asin, acos, atan, sinh, cosh, tanh, \
asinh, acosh, atanh; binary operators `a atan2 b`, `a min b`, `a max b`; constants pi (π, PI), \
e (E), tau (τ, TAU)";

/// `calculator {expression}`: evaluates an arithmetic expression in `f64`.
///
/// Operators `+ - * / ^` with the usual precedence and parentheses; `**` is accepted as
/// `^`. As in exmex, a unary minus binds tighter than `^`: `-2^2` is `4`; write `-(2^2)`. Functions: `sqrt`, `cbrt`, `exp`, `ln` and
/// `log` (both natural), `log10`, `log2`, `abs`, `signum`, `floor`, `ceil`, `round`,
/// `trunc`, `fract`, the trigonometric and hyperbolic functions and their inverses (in
/// radians), and the binary operators `atan2`, `min`, `max` (`3 min 4`). Constants:
/// `pi`/`π`/`PI`, `e`/`E`, `tau`/`τ`/`TAU`. A division by zero, an infinite or NaN
/// result, an unknown name or a syntax error is a tool error that says which.
#[derive(Debug, Clone, Copy, Default)]
pub struct Calculator;

/// Arguments of `calculator`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct CalculatorArgs {
    /// Arithmetic expression, e.g. `2 * (3 + 4) ^ 2 / sqrt(16)` or `sin(pi / 6)`.
    expression: String,
}

impl NativeTool for Calculator {
    fn definition(&self) -> Tool {
        Tool::new(
            "calculator",
            format!(
                "Evaluate an arithmetic expression exactly as a calculator would (64-bit floating point). \
                 Supports {VOCABULARY}. Example: `2 * (3 + 4)^2 / sqrt(16)`."
            ),
            schema_for::<CalculatorArgs>(),
        )
        .with_title("Calculator")
        .with_annotations(
            ToolAnnotations::new()
                .read_only(true)
                .idempotent(true)
                .destructive(false)
                .open_world(false),
        )
    }

    async fn call(
        &self,
        arguments: JsonObject,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        Ok(
            answer("calculator", arguments, |args: CalculatorArgs| async move {
                let value = evaluate(&args.expression)?;
                Ok(tool_success(
                    format_number(value),
                    serde_json::json!({ "expression": args.expression, "result": value }),
                ))
            })
            .await,
        )
    }
}

/// Evaluates `expression`, or says what is wrong with it.
fn evaluate(expression: &str) -> Result<f64, String> {
    let trimmed = expression.trim();
    if trimmed.is_empty() {
        return Err("the expression is empty; pass something like `2 + 2`".to_owned());
    }
    if trimmed.len() > MAX_EXPRESSION_LEN {
        return Err(format!(
            "the expression is {} bytes long; at most {MAX_EXPRESSION_LEN} are accepted",
            trimmed.len()
        ));
    }
    let normalized = normalize(trimmed);
    let parsed = exmex::parse::<f64>(&normalized).map_err(|e| {
        format!(
            "cannot parse `{trimmed}`: {}. Use {VOCABULARY}",
            e.msg().trim_end_matches('.')
        )
    })?;
    use exmex::Express;
    let unknown = parsed.var_names();
    if !unknown.is_empty() {
        return Err(format!(
            "`{trimmed}` uses unknown name(s) {}; only numbers, {VOCABULARY} are allowed (no variables)",
            unknown
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let value = parsed
        .eval(&[])
        .map_err(|e| format!("cannot evaluate `{trimmed}`: {}", e.msg()))?;
    if value.is_nan() {
        return Err(format!(
            "`{trimmed}` is not a number (NaN): it contains an undefined operation such as 0/0, \
             the square root or logarithm of a negative number, or inf - inf"
        ));
    }
    if value.is_infinite() {
        return Err(if trimmed.contains('/') {
            format!(
                "`{trimmed}` divides by zero (or overflows): the result is {}infinite; check the divisor",
                if value < 0.0 { "negative " } else { "" }
            )
        } else {
            format!(
                "`{trimmed}` overflows: the result is beyond ±1.8e308 (or ln/log of 0); use smaller numbers"
            )
        });
    }
    Ok(value)
}

/// Rewrites `**` to `^` and the lowercase constants `pi`, `tau` to exmex's names.
fn normalize(expression: &str) -> String {
    let expression = expression.replace("**", "^");
    let mut out = String::with_capacity(expression.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(match word.as_str() {
            "pi" => "PI",
            "tau" => "TAU",
            other => other,
        });
        word.clear();
    };
    for c in expression.chars() {
        if c.is_alphanumeric() || c == '_' || c == '.' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Integers without a fraction, everything else in Rust's shortest round-trip form.
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_functions_and_constants() -> Result<(), String> {
        assert_eq!(evaluate("2 + 3 * 4")?, 14.0);
        assert_eq!(evaluate("(2 + 3) * 4")?, 20.0);
        assert_eq!(evaluate("2 ** 10")?, 1024.0);
        assert!((evaluate("sin(pi / 6)")? - 0.5).abs() < 1e-12);
        assert!((evaluate("ln(e)")? - 1.0).abs() < 1e-12);
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(0.1 + 0.2), "0.30000000000000004");
        Ok(())
    }

    #[test]
    fn problems_are_named() {
        let err = evaluate("1 / 0").unwrap_err();
        assert!(err.contains("divides by zero"), "{err}");
        let err = evaluate("sqrt(-1)").unwrap_err();
        assert!(err.contains("NaN"), "{err}");
        let err = evaluate("2 + x").unwrap_err();
        assert!(err.contains("`x`"), "{err}");
        let err = evaluate("2 +* 3").unwrap_err();
        assert!(err.contains("cannot parse"), "{err}");
        assert!(evaluate("  ").unwrap_err().contains("empty"));
    }
}
