//! Checking call arguments against a tool's input schema before any upstream call,
//! with a full JSON Schema validator (`jsonschema`): one check for every caller (the
//! gateway's `tools/call`, an agent's tool calls).
//!
//! Schemas compile once per catalog: the first check after the catalog changed compiles
//! every tool's schema, later checks only look the tool up. A schema that does not
//! compile (invalid, or a `$ref` to elsewhere: nothing is fetched) leaves that tool's
//! arguments to its server, with a warning.

use std::{collections::HashMap, sync::Arc};

use crate::{Catalog, CatalogEntry, Registry};
use arc_swap::ArcSwapOption;
use jsonschema::{ValidationError, Validator, error::ValidationErrorKind};
use serde_json::Value;
use toolmesh_core::JsonObject;

/// Why arguments do not fit a tool's input schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidArguments {
    /// The tool's catalog name.
    pub tool: String,
    /// The top-level argument concerned (`config` for `/config/name`).
    pub field: String,
    /// JSON pointer to the value at fault (`/count`, `/config/name`).
    pub pointer: String,
    /// What is wrong, naming the argument and the tool.
    pub message: String,
}

impl Registry {
    /// Checks `arguments` of catalog tool `tool` against its input schema (compiled once
    /// per catalog). An unknown tool, or one whose schema does not compile, passes: the
    /// call itself reports the first, the server checks the second.
    ///
    /// # Errors
    ///
    /// [`InvalidArguments`] naming the argument and its JSON pointer.
    pub fn check_arguments(
        &self,
        tool: &str,
        arguments: Option<&JsonObject>,
    ) -> Result<(), InvalidArguments> {
        let catalog = self.catalog();
        let Some(entry) = catalog.resolve(tool) else {
            return Ok(());
        };
        let value = Value::Object(arguments.cloned().unwrap_or_default());
        self.inner.schemas.check(&catalog, entry, &value)
    }

    /// Compiles the current catalog's input schemas now, so that no call waits for it.
    pub fn warm_argument_checks(&self) {
        self.inner.schemas.warm(self.catalog());
    }

    /// [`check_arguments`](Self::check_arguments) of arguments that may not be an
    /// object (a client's raw JSON).
    ///
    /// # Errors
    ///
    /// As [`check_arguments`](Self::check_arguments).
    pub fn check_argument_value(
        &self,
        tool: &str,
        arguments: &Value,
    ) -> Result<(), InvalidArguments> {
        let catalog = self.catalog();
        let Some(entry) = catalog.resolve(tool) else {
            return Ok(());
        };
        self.inner.schemas.check(&catalog, entry, arguments)
    }
}

/// The compiled input schemas of one catalog.
struct Compiled {
    /// The catalog they were compiled for (held, so its address stays its own).
    catalog: Arc<Catalog>,
    /// By rendered tool name; tools whose schema did not compile are absent.
    tools: HashMap<String, Validator>,
}

impl Compiled {
    fn build(catalog: Arc<Catalog>) -> Self {
        let tools = catalog
            .entries()
            .iter()
            .filter_map(|entry| {
                let validator = compile(&entry.rendered, &entry.tool.input_schema)?;
                Some((entry.rendered.clone(), validator))
            })
            .collect();
        Self { catalog, tools }
    }
}

/// The validator of `schema`, or `None` (with a warning) when it does not compile.
fn compile(tool: &str, schema: &JsonObject) -> Option<Validator> {
    match jsonschema::validator_for(&Value::Object(schema.clone())) {
        Ok(validator) => Some(validator),
        Err(error) => {
            tracing::warn!(
                tool,
                "the tool's input schema does not compile, so its arguments go to its server \
                 unchecked: {error}"
            );
            None
        }
    }
}

/// Compiled input schemas, rebuilt when the catalog changes.
#[derive(Default)]
pub(crate) struct Schemas {
    compiled: ArcSwapOption<Compiled>,
}

impl Schemas {
    /// Compiles the schemas of `catalog` now, so that no call waits for it.
    pub(crate) fn warm(&self, catalog: Arc<Catalog>) {
        self.compiled
            .store(Some(Arc::new(Compiled::build(catalog))));
    }

    fn for_catalog(&self, catalog: &Arc<Catalog>) -> Arc<Compiled> {
        if let Some(compiled) = self.compiled.load_full()
            && Arc::ptr_eq(&compiled.catalog, catalog)
        {
            return compiled;
        }
        let compiled = Arc::new(Compiled::build(catalog.clone()));
        self.compiled.store(Some(compiled.clone()));
        compiled
    }

    /// Checks `arguments` (an object; `{}` when the call has none) of `entry`, a tool of
    /// `catalog`, against its input schema.
    pub(crate) fn check(
        &self,
        catalog: &Arc<Catalog>,
        entry: &CatalogEntry,
        arguments: &Value,
    ) -> Result<(), InvalidArguments> {
        let compiled = self.for_catalog(catalog);
        let Some(validator) = compiled.tools.get(&entry.rendered) else {
            return Ok(());
        };
        match validator.validate(arguments) {
            Ok(()) => Ok(()),
            Err(error) => Err(invalid(&entry.rendered, &entry.tool.input_schema, &error)),
        }
    }
}

/// The first validation error as an [`InvalidArguments`] naming the argument by JSON pointer.
fn invalid(tool: &str, schema: &JsonObject, error: &ValidationError<'_>) -> InvalidArguments {
    let at = error.instance_path().as_str();
    if let ValidationErrorKind::Required { property } = error.kind() {
        let name = property
            .as_str()
            .map_or_else(|| property.to_string(), str::to_owned);
        let pointer = format!("{at}/{}", escape(&name));
        // A top-level argument by its name, described as the schema describes it.
        let message = if at.is_empty() {
            format!(
                "missing required argument `{name}` of tool `{tool}`{}",
                described(schema, &name)
            )
        } else {
            format!("missing required argument `{pointer}` of tool `{tool}`")
        };
        return InvalidArguments {
            tool: tool.to_owned(),
            field: top_level(&pointer),
            pointer,
            message,
        };
    }
    let field = top_level(at);
    let message = if at.is_empty() {
        format!("the arguments of tool `{tool}` do not fit its schema (at the top level): {error}")
    } else {
        format!("argument `{field}` of tool `{tool}` does not fit its schema at `{at}`: {error}")
    };
    InvalidArguments {
        tool: tool.to_owned(),
        field,
        pointer: at.to_owned(),
        message,
    }
}

/// The top-level argument a JSON pointer points into, unescaped.
fn top_level(pointer: &str) -> String {
    let segment = pointer
        .strip_prefix('/')
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    segment.replace("~1", "/").replace("~0", "~")
}

/// A property name as a JSON pointer segment (RFC 6901).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// ` (description)` of a top-level property, when the schema has one.
fn described(schema: &JsonObject, field: &str) -> String {
    schema
        .get("properties")
        .and_then(|p| p.get(field))
        .and_then(|p| p.get("description"))
        .and_then(Value::as_str)
        .map(|d| format!(" ({})", d.trim_end_matches('.')))
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> JsonObject {
        json!({
            "type": "object",
            "properties": {
                "message": { "type": "string", "description": "Text to send back." },
                "count": { "type": "integer", "minimum": 1 },
                "mode": { "enum": ["fast", "slow"] },
                "options": {
                    "type": "object",
                    "properties": { "name": { "type": "string", "pattern": "^[a-z]+$" } },
                    "required": ["name"]
                }
            },
            "required": ["message"]
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn check(arguments: Value) -> Result<(), InvalidArguments> {
        let validator = compile("fx__echo", &schema()).unwrap();
        match validator.validate(&arguments) {
            Ok(()) => Ok(()),
            Err(error) => Err(invalid("fx__echo", &schema(), &error)),
        }
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let err = check(json!({})).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.pointer.as_str()),
            ("message", "/message")
        );
        assert_eq!(
            err.message,
            "missing required argument `message` of tool `fx__echo` (Text to send back)"
        );
        let err = check(json!({"message": "hi", "options": {}})).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.pointer.as_str()),
            ("options", "/options/name")
        );
        assert!(err.message.contains("`/options/name`"), "{}", err.message);
    }

    #[test]
    fn constraints_beyond_types_are_checked_and_located() {
        assert_eq!(
            check(json!({"message": "hi", "count": 2, "mode": "fast"})),
            Ok(())
        );
        let err = check(json!({"message": "hi", "count": 0})).unwrap_err();
        assert_eq!(err.pointer, "/count");
        assert!(err.message.contains("minimum"), "{}", err.message);
        let err = check(json!({"message": "hi", "mode": "medium"})).unwrap_err();
        assert_eq!(err.pointer, "/mode");
        let err = check(json!({"message": "hi", "options": {"name": "A1"}})).unwrap_err();
        assert_eq!(err.pointer, "/options/name");
        assert!(err.message.contains("`/options/name`"), "{}", err.message);
        let err = check(json!({"message": 5})).unwrap_err();
        assert_eq!(err.pointer, "/message");
        assert!(
            err.message.starts_with(
                "argument `message` of tool `fx__echo` does not fit its schema at `/message`: "
            ),
            "{}",
            err.message
        );
        assert!(err.message.contains("\"string\""), "{}", err.message);
        let err = check(json!("not an object")).unwrap_err();
        assert_eq!((err.field.as_str(), err.pointer.as_str()), ("", ""));
        assert!(err.message.contains("top level"), "{}", err.message);
    }

    #[test]
    fn a_schema_that_does_not_compile_is_skipped() {
        let broken = json!({"type": "object", "properties": {"x": {"type": 5}}});
        assert!(compile("t", broken.as_object().unwrap()).is_none());
        let remote = json!({"$ref": "https://schemas.example/args.json"});
        assert!(compile("t", remote.as_object().unwrap()).is_none());
    }
}
