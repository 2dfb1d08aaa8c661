//! Turns figment's errors into [`ConfigError`]s that say where and what to write.

use figment::{
    Figment, Metadata, Profile, Source,
    error::{Actual, Kind},
    value::Value,
};

use super::ConfigError;

/// Where a provider's values come from: the file path as given, or a name.
pub(crate) fn origin(metadata: &Metadata) -> String {
    match &metadata.source {
        Some(Source::File(path)) => path.display().to_string(),
        Some(Source::Custom(name)) => name.clone(),
        _ => metadata.name.to_string(),
    }
}

/// A key path as its provider spells it (`servers.search.url`, `mcpServers.x.env`,
/// `TOOLMESH_SERVERS__X__URL`), without figment's `default.` profile prefix.
pub(crate) fn render_key(metadata: &Metadata, profile: &Profile, path: &[String]) -> String {
    let rendered = metadata.interpolate(profile, path);
    match rendered.strip_prefix(&format!("{profile}.")) {
        Some(rest) => rest.to_owned(),
        None => rendered,
    }
}

/// An error from a provider's `data()` (parsing, translating), before any merge.
pub(crate) fn from_provider(error: &figment::Error, metadata: &Metadata) -> ConfigError {
    match &error.kind {
        Kind::Message(message) if error.path.is_empty() => ConfigError::Parse {
            origin: origin(metadata),
            message: format!(
                "invalid {}: {message}",
                metadata.name.trim_end_matches(" file")
            ),
        },
        _ => convert(error, Some(metadata), None),
    }
}

/// An error from extracting the merged configuration.
pub(crate) fn from_figment(error: &figment::Error, figment: Option<&Figment>) -> ConfigError {
    convert(error, error.metadata.as_ref(), figment)
}

fn convert(
    error: &figment::Error,
    metadata: Option<&Metadata>,
    figment: Option<&Figment>,
) -> ConfigError {
    let origin = metadata.map_or_else(|| "configuration".to_owned(), origin);
    let profile = error.profile.clone().unwrap_or(Profile::Default);
    let key = |path: &[String]| match metadata {
        Some(md) => render_key(md, &profile, path),
        None => path.join("."),
    };
    if let Kind::UnknownField(unknown, expected) = &error.kind {
        let mut parent = error.path.clone();
        if parent.last() == Some(unknown) {
            parent.pop();
        }
        return ConfigError::UnknownKey {
            origin,
            key: key(&parent),
            unknown: unknown.clone(),
            expected: expected.iter().map(|s| (*s).to_owned()).collect(),
        };
    }
    let found = figment
        .and_then(|f| f.find_value(&error.path.join(".")).ok())
        .map(|v| describe(&v));
    let mut message = message(error, found);
    if metadata.is_some_and(is_environment)
        && matches!(&error.kind, Kind::InvalidType(found, expected)
        if expected.contains("string") && !matches!(found, Actual::Str(_)))
    {
        message.push_str(
            "; environment values that look like numbers, booleans or lists are read as such: put the value in double quotes (VAR='\"123\"') to pass a string",
        );
    }
    ConfigError::Invalid {
        origin,
        key: key(&error.path),
        message,
    }
}

/// Whether values come from [`EnvOverrides`](super::env::EnvOverrides).
fn is_environment(metadata: &Metadata) -> bool {
    matches!(&metadata.source, Some(Source::Custom(name)) if name == super::env::ORIGIN)
}

fn message(error: &figment::Error, found: Option<String>) -> String {
    let hint = hint(&error.path);
    let expected_found = |expected: &str, actual: Option<&Actual>| {
        let found = found.clone().or_else(|| actual.map(describe_actual));
        match found {
            Some(found) => format!("expected {expected}, found {found}"),
            None => format!("expected {expected}"),
        }
    };
    match &error.kind {
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            expected_found(hint.unwrap_or(expected), Some(actual))
        }
        Kind::InvalidLength(len, expected) => {
            format!("expected {}, found {len} items", hint.unwrap_or(expected))
        }
        // serde lists aliases too; the hint names the main spellings.
        Kind::UnknownVariant(value, expected) => match hint {
            Some(hint) => format!("unknown value `{value}`; expected {hint}"),
            None => format!(
                "unknown value `{value}`; expected one of {}",
                expected.join(", ")
            ),
        },
        Kind::MissingField(field) => match hint {
            Some(hint) => format!("missing key `{field}`; expected {hint}"),
            None => format!("missing key `{field}`"),
        },
        // Untagged enums (`command`, durations) only say that nothing matched.
        Kind::Message(text) if text.starts_with("data did not match any variant") => match hint {
            Some(hint) => expected_found(hint, None),
            None => text.clone(),
        },
        other => other.to_string(),
    }
}

/// The expected form of a key, by its place in the file.
fn hint(path: &[String]) -> Option<&'static str> {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    Some(match path.as_slice() {
        ["servers"] => "a map from server names to server settings",
        ["servers", _] => {
            "server settings like `{ url: http://host:port/mcp }` or `{ command: [program, args...] }`"
        }
        ["servers", _, "timeout" | "connect_timeout"] => {
            "a duration like \"30s\" or a number of seconds"
        }
        ["servers", _, "command"] => "a program name or a list like [program, arg, ...]",
        ["servers", _, "args"] => "a list of strings like [--stdio]",
        ["servers", _, "env"] => "a map of variable names to strings",
        ["servers", _, "headers"] => "a map of header names to strings",
        ["servers", _, "url"] => "a URL string like http://host:port/mcp",
        ["servers", _, "cwd"] => "a directory path",
        ["servers", _, "name"] => "a string",
        ["servers", _, "transport"] => "one of stdio, streamable-http, websocket",
        ["servers", _, "protocol_version"] => "\"2025-11-25\" or \"2026-07-28\"",
        ["servers", _, "auth"] => {
            "`{ type: bearer, token: \"${TOKEN}\" }` or `{ type: bearer, token_env: TOKEN }`"
        }
        ["servers", _, "auth", "type"] => "`bearer`",
        ["servers", _, "auth", _] => "a string",
        ["servers", _, "args" | "command" | "env" | "headers", _] => "a string",
        _ => return None,
    })
}

/// A value as a user would recognise it in the file.
fn describe(value: &Value) -> String {
    match value {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("{c:?}"),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => describe_actual(&n.to_actual()),
        Value::Empty(..) => "nothing (null)".to_owned(),
        Value::Dict(..) => format!("a map {}", short_json(value)),
        Value::Array(..) => format!("a list {}", short_json(value)),
    }
}

fn describe_actual(actual: &Actual) -> String {
    match actual {
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Str(s) => format!("{s:?}"),
        Actual::Seq => "a list".to_owned(),
        Actual::Map => "a map".to_owned(),
        Actual::Unit | Actual::Option => "nothing (null)".to_owned(),
        other => other.to_string(),
    }
}

fn short_json(value: &Value) -> String {
    const MAX: usize = 60;
    let text = serde_json::to_string(value).unwrap_or_default();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A server that deserialized but cannot work (`Endpoint::validate`); `field` is
/// its key (`url`, `auth.token`). The key path stops at the deepest key present.
pub(crate) fn invalid_server(
    figment: &Figment,
    name: &str,
    field: &str,
    message: String,
) -> ConfigError {
    let mut path = vec!["servers".to_owned(), name.to_owned()];
    path.extend(
        field
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    );
    invalid(figment, path, 2, message)
}

/// A value that deserialized but cannot work, at `path`; the reported key path stops at
/// the deepest key present in the sources, but keeps at least `keep` segments.
pub(crate) fn invalid(
    figment: &Figment,
    mut path: Vec<String>,
    keep: usize,
    message: String,
) -> ConfigError {
    while path.len() > keep && figment.find_value(&path.join(".")).is_err() {
        path.pop();
    }
    let metadata = figment
        .find_metadata(&path.join("."))
        .or_else(|| path.first().and_then(|top| figment.find_metadata(top)));
    match metadata {
        Some(md) => ConfigError::Invalid {
            origin: origin(md),
            key: render_key(md, &Profile::Default, &path),
            message,
        },
        None => ConfigError::Invalid {
            origin: "configuration".to_owned(),
            key: path.join("."),
            message,
        },
    }
}
