//! Templates in step arguments, tasks, `when:` and `output:` (minijinja), rendered against
//! `{input, steps: {ID: {status, output, text, ...}}}`.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// The variables templates see, besides minijinja's globals (`range`, `dict`, ...).
const VARIABLES: &[&str] = &["input", "steps"];

/// One environment for a workflow's templates: undefined values may be tested (`when:
/// input.flag`) but not printed, so a misspelt `steps.a.outptu` is an error, not "".
#[derive(Debug)]
pub(crate) struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        Self { env }
    }
}

/// Where in a value a template is (`["query"]`, `["items", "0"]`) and what is wrong.
pub(crate) type Located = (Vec<String>, String);

impl Templates {
    /// Checks the templates in `value` and adds the steps they read to `refs`.
    pub(crate) fn check_value(
        &self,
        value: &Value,
        refs: &mut BTreeSet<String>,
    ) -> Result<(), Located> {
        match value {
            Value::String(text) => self
                .check_text(text)
                .map(|found| refs.extend(found))
                .map_err(|message| (Vec::new(), message)),
            Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
                self.check_value(item, refs).map_err(|(mut at, m)| {
                    at.insert(0, i.to_string());
                    (at, m)
                })
            }),
            Value::Object(map) => map.iter().try_for_each(|(key, item)| {
                self.check_value(item, refs).map_err(|(mut at, m)| {
                    at.insert(0, key.clone());
                    (at, m)
                })
            }),
            _ => Ok(()),
        }
    }

    /// Checks a template string; the steps it reads.
    pub(crate) fn check_text(&self, text: &str) -> Result<BTreeSet<String>, String> {
        if let Some(expression) = single_expression(text) {
            return self.check_expression(expression);
        }
        let template = self.env.template_from_str(text).map_err(|e| describe(&e))?;
        variables(template.undeclared_variables(true), &self.env)
    }

    /// Checks an expression (`when:`); the steps it reads.
    pub(crate) fn check_expression(&self, expression: &str) -> Result<BTreeSet<String>, String> {
        let compiled = self
            .env
            .compile_expression(expression)
            .map_err(|e| describe(&e))?;
        variables(compiled.undeclared_variables(true), &self.env)
    }

    /// `value` with its templates rendered against `ctx`.
    pub(crate) fn render_value(
        &self,
        value: &Value,
        ctx: &minijinja::Value,
    ) -> Result<Value, String> {
        Ok(match value {
            Value::String(text) => self.render(text, ctx)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.render_value(item, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render_value(v, ctx)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// A template string rendered: the expression's value when the string is exactly one
    /// `{{ expression }}`, else the rendered text.
    pub(crate) fn render(&self, text: &str, ctx: &minijinja::Value) -> Result<Value, String> {
        match single_expression(text) {
            Some(expression) => self.evaluate(expression, ctx),
            None => self.render_text(text, ctx).map(Value::String),
        }
    }

    /// A template rendered as text.
    pub(crate) fn render_text(&self, text: &str, ctx: &minijinja::Value) -> Result<String, String> {
        self.env.render_str(text, ctx).map_err(|e| describe(&e))
    }

    /// Whether the expression `when` holds.
    pub(crate) fn condition(&self, when: &str, ctx: &minijinja::Value) -> Result<bool, String> {
        let compiled = self
            .env
            .compile_expression(when)
            .map_err(|e| describe(&e))?;
        compiled
            .eval(ctx)
            .map(|v| v.is_true())
            .map_err(|e| describe(&e))
    }

    fn evaluate(&self, expression: &str, ctx: &minijinja::Value) -> Result<Value, String> {
        let compiled = self
            .env
            .compile_expression(expression)
            .map_err(|e| describe(&e))?;
        let value = compiled.eval(ctx).map_err(|e| describe(&e))?;
        if value.is_undefined() {
            return Err(format!(
                "`{}` is undefined (templates see `input` and `steps.ID.output`, `.text`, `.status`)",
                expression.trim()
            ));
        }
        serde_json::to_value(&value).map_err(|e| format!("`{}`: {e}", expression.trim()))
    }
}

/// The expression of a string that is exactly one `{{ expression }}`.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("{#")
    {
        return None;
    }
    // Whitespace control (`{{- x -}}`) means nothing for a whole value.
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    Some(inner.strip_suffix('-').unwrap_or(inner))
}

/// The steps read by a template's free variables (`steps.a.output` → `a`); a variable
/// that is neither `input`, `steps` nor a global is a mistake.
fn variables(
    names: std::collections::HashSet<String>,
    env: &Environment<'_>,
) -> Result<BTreeSet<String>, String> {
    let mut steps = BTreeSet::new();
    let mut names: Vec<String> = names.into_iter().collect();
    names.sort();
    for name in names {
        let mut parts = name.split('.');
        let root = parts.next().unwrap_or_default();
        if root == "steps" {
            steps.extend(parts.next().map(str::to_owned));
        } else if !VARIABLES.contains(&root) && env.globals().all(|(g, _)| g != root) {
            return Err(format!(
                "unknown variable `{root}`: templates see `input` (the workflow's input) and `steps` (`steps.ID.output`)"
            ));
        }
    }
    Ok(steps)
}

/// A minijinja error without its template name (always `<string>` here).
fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line().filter(|l| *l > 1) {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ctx() -> minijinja::Value {
        minijinja::Value::from_serialize(json!({
            "input": {"topic": "mcp", "n": 3},
            "steps": {"a": {"output": {"items": [1, 2]}, "text": "hello", "status": "ok"}}
        }))
    }

    #[test]
    fn a_lone_expression_keeps_its_type() {
        let t = Templates::default();
        assert_eq!(t.render("{{ input.n }}", &ctx()).unwrap(), json!(3));
        assert_eq!(
            t.render(" {{- steps.a.output -}} ", &ctx()).unwrap(),
            json!({"items": [1, 2]})
        );
        assert_eq!(t.render("n={{ input.n }}", &ctx()).unwrap(), json!("n=3"));
        assert_eq!(
            t.render_value(
                &json!({"q": "{{ input.topic }} papers", "k": ["{{ input.n + 1 }}"]}),
                &ctx()
            )
            .unwrap(),
            json!({"q": "mcp papers", "k": [4]})
        );
    }

    #[test]
    fn undefined_values_fail_when_printed_but_test_false() {
        let t = Templates::default();
        assert!(
            t.render("{{ steps.a.outptu }}", &ctx())
                .unwrap_err()
                .contains("undefined")
        );
        assert!(t.render("x {{ steps.a.outptu }}", &ctx()).is_err());
        assert!(!t.condition("input.missing", &ctx()).unwrap());
        assert!(t.condition("steps.a.status == 'ok'", &ctx()).unwrap());
    }

    #[test]
    fn checking_finds_the_steps_read_and_unknown_variables() {
        let t = Templates::default();
        let refs = t
            .check_text("{{ steps.a.text }} and {% for x in steps.b.output %}{{ x }}{% endfor %}")
            .unwrap();
        assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["a", "b"]);
        assert!(
            t.check_text("{{ inptu.topic }}")
                .unwrap_err()
                .contains("unknown variable `inptu`")
        );
        assert!(t.check_text("{{ range(3) | list }}").is_ok());
        assert!(t.check_expression("input.x ==").is_err());
        let mut refs = BTreeSet::new();
        let (at, _) = t
            .check_value(&json!({"q": ["ok", "{% if %}"]}), &mut refs)
            .unwrap_err();
        assert_eq!(at, ["q", "1"]);
    }
}
