//! Claude Desktop / Cursor (`mcpServers`) and VS Code (`servers` with `type`) JSON,
//! translated into toolmesh's `servers` form.

use figment::{
    Error, Metadata, Profile, Provider,
    error::Kind,
    value::{Dict, Map, Value},
};

use super::{
    diagnose::render_path,
    services::{is_namespace, namespace_like},
};

/// Which kind of document a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// toolmesh's own format: passed through.
    Toolmesh,
    /// `{ "mcpServers": { name: { command, args, env } | { url, headers } } }`.
    McpServers,
    /// VS Code's `mcp.json`: `{ "servers": { name: { "type": ..., ... } }, "inputs": [...] }`.
    VsCode,
}

impl Dialect {
    /// Tells a JSON file's dialect from its top level; toolmesh's when unsure.
    pub(crate) fn detect(text: &str) -> Self {
        let Ok(serde_json::Value::Object(top)) = serde_json::from_str(text) else {
            return Self::Toolmesh;
        };
        if top
            .keys()
            .any(|k| k.to_ascii_lowercase().starts_with("mcp"))
        {
            return Self::McpServers;
        }
        match top.get("servers") {
            Some(serde_json::Value::Object(servers))
                if top.contains_key("inputs")
                    || servers.values().any(|s| s.get("type").is_some()) =>
            {
                Self::VsCode
            }
            _ => Self::Toolmesh,
        }
    }

    /// A file known to come from an MCP client: VS Code's when it has `servers`
    /// and no `mcpServers`, else the `mcpServers` form.
    pub(crate) fn detect_client(text: &str) -> Self {
        match Self::detect(text) {
            Self::Toolmesh if text_has_servers(text) => Self::VsCode,
            Self::Toolmesh => Self::McpServers,
            other => other,
        }
    }
}

fn text_has_servers(text: &str) -> bool {
    matches!(serde_json::from_str(text), Ok(serde_json::Value::Object(top)) if top.contains_key("servers"))
}

/// Top-level keys of Claude Desktop's file that are app settings, not servers.
const MCP_SERVERS_IGNORED: &[&str] = &[
    "$schema",
    "globalShortcut",
    "theme",
    "telemetry",
    "preferences",
];
/// Top-level keys of VS Code's file besides `servers`.
const VSCODE_IGNORED: &[&str] = &["$schema", "inputs"];
/// Entry keys that MCP clients use and toolmesh does not need.
const ENTRY_IGNORED: &[&str] = &[
    "autoApprove",
    "alwaysAllow",
    "envFile",
    "timeout",
    "description",
    "trust",
    "includeTools",
    "excludeTools",
    "dev",
];
/// Entry keys toolmesh reads (`serverUrl`, `httpUrl`, `transportType` are aliases).
const ENTRY_KEYS: &[&str] = &[
    "command", "args", "env", "cwd", "url", "headers", "type", "disabled",
];

/// Wraps a JSON provider and translates an MCP client's document into toolmesh's.
pub(crate) struct Translate<P> {
    inner: P,
    dialect: Dialect,
}

impl<P: Provider> Translate<P> {
    pub(crate) fn new(inner: P, dialect: Dialect) -> Self {
        Self { inner, dialect }
    }
}

impl<P: Provider> Provider for Translate<P> {
    /// The inner metadata, with key paths spelled as in the file
    /// (`mcpServers.<name>...` for a translated `servers.<name>...`).
    fn metadata(&self) -> Metadata {
        let metadata = self.inner.metadata();
        match self.dialect {
            Dialect::McpServers => metadata.interpolater(|_: &Profile, keys: &[&str]| match keys {
                ["servers", rest @ ..] if !rest.is_empty() => {
                    format!("mcpServers.{}", render_path(rest))
                }
                _ => render_path(keys),
            }),
            Dialect::Toolmesh | Dialect::VsCode => {
                metadata.interpolater(|_: &Profile, keys: &[&str]| render_path(keys))
            }
        }
    }

    fn profile(&self) -> Option<Profile> {
        self.inner.profile()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let map = self.inner.data()?;
        if self.dialect == Dialect::Toolmesh {
            return Ok(map);
        }
        let mut translated = Map::new();
        for (profile, dict) in map {
            translated.insert(profile, translate(dict, self.dialect).map_err(|e| *e)?);
        }
        Ok(translated)
    }
}

/// figment's error is large; it stays boxed until `data()` returns it.
type Boxed = Box<Error>;

fn error_at(kind: Kind, path: &[&str]) -> Boxed {
    let mut error = Error::from(kind);
    error.path = path.iter().map(|s| (*s).to_owned()).collect();
    Box::new(error)
}

fn translate(document: Dict, dialect: Dialect) -> Result<Dict, Boxed> {
    let (root, ignored, expected): (&str, &[&str], &'static [&'static str]) = match dialect {
        Dialect::VsCode => ("servers", VSCODE_IGNORED, &["servers"]),
        _ => ("mcpServers", MCP_SERVERS_IGNORED, &["mcpServers"]),
    };
    let mut servers = None;
    for (key, value) in document {
        if key == root {
            servers = Some(value);
        } else if !ignored.contains(&key.as_str()) {
            return Err(error_at(Kind::UnknownField(key.clone(), expected), &[&key]));
        }
    }
    let entries = match servers {
        Some(Value::Dict(_, entries)) => entries,
        Some(other) => {
            let kind = Kind::InvalidType(
                other.to_actual(),
                "a map from server names to server settings".into(),
            );
            return Err(error_at(kind, &[root]));
        }
        None => {
            return Err(Box::new(Error::from(
                "expected a top-level `mcpServers` object (Claude Desktop, Cursor) or `servers` object (VS Code)"
                    .to_owned(),
            )));
        }
    };
    let mut out = Dict::new();
    for (name, entry) in entries {
        if let Some(server) = translate_entry(root, &name, entry)? {
            out.insert(name, Value::from(server));
        }
    }
    let mut document = Dict::new();
    document.insert("servers".into(), Value::from(out));
    Ok(document)
}

/// One server; `None` for a `"disabled": true` one.
fn translate_entry(root: &str, name: &str, entry: Value) -> Result<Option<Dict>, Boxed> {
    let fields = match entry {
        Value::Dict(_, fields) => fields,
        other => {
            let expected = "server settings like { \"command\": \"program\", \"args\": [] } or { \"url\": \"http://host/mcp\" }";
            return Err(error_at(
                Kind::InvalidType(other.to_actual(), expected.into()),
                &[root, name],
            ));
        }
    };
    let mut out = Dict::new();
    // These files cannot say `namespace`; a name the catalog cannot use as one gets a
    // namespace with the other characters replaced by `_`.
    if !name.trim().is_empty() && !is_namespace(name) {
        out.insert("namespace".into(), Value::from(namespace_like(name)));
    }
    for (key, value) in fields {
        let at = [root, name, key.as_str()];
        match key.as_str() {
            "command" | "args" | "env" | "cwd" | "url" | "headers" => {
                out.insert(key, value);
            }
            "serverUrl" | "httpUrl" => {
                out.entry("url".into()).or_insert(value);
            }
            "type" | "transportType" => {
                out.insert("transport".into(), transport(value, &at)?);
            }
            "disabled" => match value {
                Value::Bool(_, true) => return Ok(None),
                Value::Bool(_, false) => {}
                other => {
                    return Err(error_at(
                        Kind::InvalidType(other.to_actual(), "true or false".into()),
                        &at,
                    ));
                }
            },
            k if ENTRY_IGNORED.contains(&k) => {}
            _ => return Err(error_at(Kind::UnknownField(key.clone(), ENTRY_KEYS), &at)),
        }
    }
    Ok(Some(out))
}

/// An MCP client's `type` as toolmesh's `transport`.
fn transport(value: Value, at: &[&str]) -> Result<Value, Boxed> {
    const EXPECTED: &str = "one of stdio, http, streamable-http, sse";
    let Value::String(tag, text) = value else {
        return Err(error_at(
            Kind::InvalidType(value.to_actual(), EXPECTED.into()),
            at,
        ));
    };
    let kind = match text.to_ascii_lowercase().as_str() {
        "stdio" => "stdio",
        "http" | "streamable-http" | "streamablehttp" | "streamable_http" | "sse" => {
            "streamable-http"
        }
        "ws" | "websocket" => "websocket",
        _ => {
            return Err(error_at(
                Kind::InvalidValue(figment::error::Actual::Str(text), EXPECTED.into()),
                at,
            ));
        }
    };
    Ok(Value::String(tag, kind.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn detects_dialects() {
        assert_eq!(
            Dialect::detect(r#"{"mcpServers": {}}"#),
            Dialect::McpServers
        );
        assert_eq!(Dialect::detect(r#"{"mcpServer": {}}"#), Dialect::McpServers);
        assert_eq!(
            Dialect::detect(r#"{"servers": {"a": {"type": "stdio"}}}"#),
            Dialect::VsCode
        );
        assert_eq!(
            Dialect::detect(r#"{"servers": {}, "inputs": []}"#),
            Dialect::VsCode
        );
        assert_eq!(
            Dialect::detect(r#"{"servers": {"a": {"url": "http://h"}}}"#),
            Dialect::Toolmesh
        );
        assert_eq!(Dialect::detect("not json"), Dialect::Toolmesh);
        assert_eq!(
            Dialect::detect_client(r#"{"servers": {}}"#),
            Dialect::VsCode
        );
        assert_eq!(Dialect::detect_client("{}"), Dialect::McpServers);
    }

    #[test]
    fn odd_names_get_a_usable_namespace() {
        assert_eq!(namespace_like("github.com/me repo"), "github_com_me_repo");
        assert_eq!(namespace_like(&"x".repeat(80)).len(), 64);
        assert!(is_namespace(&namespace_like("über-server")));
    }
}
