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

/// Keys whose values are lists: an index below one is rendered `[1]`, not `.1`.
const LIST_KEYS: &[&str] = &[
    "instances",
    "args",
    "command",
    "capabilities",
    "tags",
    // workflows.NAME.steps[2].parallel[0].needs[1]
    "steps",
    "parallel",
    "needs",
    "fallback_tools",
    "api_keys",
    "authorization_servers",
];

/// A key path as written in toolmesh's files: `servers.search.instances[1].url`.
pub(crate) fn render_path(keys: &[&str]) -> String {
    let mut out = String::new();
    for (i, key) in keys.iter().enumerate() {
        let index = i > 0
            && LIST_KEYS.contains(&keys[i - 1])
            && !key.is_empty()
            && key.bytes().all(|b| b.is_ascii_digit());
        if index {
            out.push('[');
            out.push_str(key);
            out.push(']');
        } else {
            if i > 0 {
                out.push('.');
            }
            out.push_str(key);
        }
    }
    out
}

/// The merged value at `path`, through maps and lists (figment's own lookup stops at
/// lists).
pub(crate) fn find(figment: &Figment, path: &[String]) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    let mut value = figment.find_value(first).ok()?;
    for key in rest {
        value = match value {
            Value::Dict(_, mut dict) => dict.remove(key)?,
            Value::Array(_, mut items) => {
                let index: usize = key.parse().ok()?;
                (index < items.len()).then(|| items.swap_remove(index))?
            }
            _ => return None,
        };
    }
    Some(value)
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
        .and_then(|f| find(f, &error.path))
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
    match path.as_slice() {
        ["servers"] => Some("a map from server names to server settings"),
        ["servers", _] => Some(
            "server settings like `{ url: http://host:port/mcp }`, `{ command: [program, args...] }` or `{ instances: [...] }`",
        ),
        ["servers", _, "instances"] => Some(
            "a list of instances like [{ url: http://host:port/mcp }, { url: http://host:port/mcp, weight: 2 }]",
        ),
        ["servers", _, "instances", _] => Some(
            "instance settings like `{ url: http://host:port/mcp }` or `{ command: [program, args...] }`",
        ),
        ["servers", _, "instances", _, "id"] => Some("a string"),
        ["servers", _, "instances", _, "weight" | "priority"] => Some(WHOLE_NUMBER),
        ["servers", _, "instances", _, rest @ ..] => endpoint_hint(rest),
        ["servers", _, rest @ ..] => server_hint(rest)
            .or_else(|| endpoint_hint(rest))
            .or_else(|| section_hint(rest)),
        ["defaults"] => {
            Some("a map of settings like `{ timeout: 30s, pool: { max_sessions: 4 } }`")
        }
        ["defaults", rest @ ..] => service_hint(rest).or_else(|| section_hint(rest)),
        ["global_settings", rest @ ..] => global_hint(rest),
        _ => None,
    }
}

const DURATION: &str = "a duration like \"30s\" or a number of seconds";
const WHOLE_NUMBER: &str = "a whole number";
const BOOLEAN: &str = "true or false";

/// Keys of one endpoint (a server's single instance, or an entry of `instances`).
fn endpoint_hint(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        ["timeout" | "connect_timeout"] => DURATION,
        ["command"] => "a program name or a list like [program, arg, ...]",
        ["args"] => "a list of strings like [--stdio]",
        ["env"] => "a map of variable names to strings",
        ["headers"] => "a map of header names to strings",
        ["url"] => "a URL string like http://host:port/mcp",
        ["cwd"] => "a directory path",
        ["name"] => "a string",
        ["transport"] => "one of stdio, streamable-http, websocket",
        ["protocol_version"] => "\"2025-11-25\" or \"2026-07-28\"",
        ["auth"] => {
            "`{ type: bearer, token: \"${TOKEN}\" }` or `{ type: bearer, token_env: TOKEN }`"
        }
        ["auth", "type"] => "`bearer`",
        ["auth", _] => "a string",
        ["args" | "command" | "env" | "headers", _] => "a string",
        _ => return None,
    })
}

/// Keys a server has besides its endpoint and the sections.
fn server_hint(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        ["namespace"] => "a namespace of 1-64 characters A-Z, a-z, 0-9, `_` and `-`",
        ["capabilities" | "tags"] => "a list of strings like [search, web_search]",
        ["capabilities" | "tags", _] => "a string",
        ["metadata"] => "a map of names to strings like { region: eu-west-1 }",
        ["metadata", _] => "a string",
        ["tools"] => {
            "a map from tool names to policies like { web_search: { idempotent: true, cache_ttl: 5m } }"
        }
        ["tools", _] => {
            "a tool policy like `{ idempotent: true, cache_ttl: 5m, hedge_after: 200ms, timeout: 10s }`"
        }
        ["tools", _, "idempotent"] => BOOLEAN,
        ["tools", _, "cache_ttl" | "hedge_after" | "timeout"] => DURATION,
        ["weight" | "priority"] => WHOLE_NUMBER,
        ["replicas"] => "a whole number of copies, at least 1",
        ["enabled" | "prefix"] => BOOLEAN,
        ["health_check_interval"] => DURATION,
        _ => return service_hint(path),
    })
}

/// Keys that `defaults` sets for every server and a server may override.
fn service_hint(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        ["timeout"] => DURATION,
        ["strategy"] => {
            "one of round_robin, weighted, least_outstanding, random, latency, capability_match"
        }
        ["max_failover_attempts" | "max_retries"] => WHOLE_NUMBER,
        _ => return None,
    })
}

/// The `pool`, `health_check`, `circuit_breaker` and `bulkhead` sections.
fn section_hint(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        ["pool"] => "pool settings like `{ min_sessions: 1, max_sessions: 4 }`",
        ["health_check"] => "health check settings like `{ interval: 30s, method: ping }`",
        ["circuit_breaker"] => {
            "circuit breaker settings like `{ failure_threshold: 5, recovery_timeout: 60s }`"
        }
        ["bulkhead"] => "bulkhead settings like `{ max_concurrent: 64 }`",
        ["pool", "reconnect"] => "`{ initial_backoff: 100ms, max_backoff: 30s }`",
        ["pool", "reconnect", _]
        | [
            "pool",
            "acquire_timeout" | "connection_timeout" | "max_idle_time" | "drain_timeout",
        ]
        | ["health_check", "interval" | "timeout"]
        | ["circuit_breaker", "recovery_timeout" | "window"]
        | ["bulkhead", "max_wait"] => DURATION,
        ["pool", "validate_on_acquire"] | ["health_check", "enabled"] => BOOLEAN,
        ["health_check", "method"] => "one of ping, list_tools",
        ["circuit_breaker", "failure_rate"] => "a fraction above 0 and at most 1, like 0.5",
        ["pool" | "health_check" | "circuit_breaker" | "bulkhead", _] => WHOLE_NUMBER,
        _ => return None,
    })
}

/// The seed configuration's `global_settings`.
fn global_hint(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        [] => "a map of settings like `{ default_timeout: 30, max_concurrent_connections: 10 }`",
        ["default_timeout" | "reconnect_delay"] => DURATION,
        ["max_concurrent_connections"] => WHOLE_NUMBER,
        ["health_check_enabled" | "metrics_enabled"] => BOOLEAN,
        ["log_level"] => "a string like \"INFO\"",
        [section @ "circuit_breaker", rest @ ..] => {
            let mut full = vec![*section];
            full.extend_from_slice(rest);
            return section_hint(&full);
        }
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

/// A value that deserialized but cannot work, at `path`; the reported key path stops at
/// the deepest key present in the sources, but keeps at least `keep` segments.
pub(crate) fn invalid(
    figment: &Figment,
    mut path: Vec<String>,
    keep: usize,
    message: String,
) -> ConfigError {
    while path.len() > keep && find(figment, &path).is_none() {
        path.pop();
    }
    let metadata = find(figment, &path)
        .and_then(|value| figment.get_metadata(value.tag()))
        .or_else(|| path.first().and_then(|top| figment.find_metadata(top)));
    match metadata {
        Some(md) => ConfigError::Invalid {
            origin: origin(md),
            key: render_key(md, &Profile::Default, &path),
            message,
        },
        None => ConfigError::Invalid {
            origin: "configuration".to_owned(),
            key: render_path(&path.iter().map(String::as_str).collect::<Vec<_>>()),
            message,
        },
    }
}
