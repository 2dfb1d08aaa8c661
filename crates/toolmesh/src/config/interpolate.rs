//! `${VAR}` expansion in string values, as a figment [`Provider`] wrapper.

use std::sync::{Mutex, PoisonError};

use figment::{
    Error, Metadata, Profile, Provider,
    value::{Dict, Map, Value},
};

use super::{ConfigError, diagnose, env::EnvSource};

/// Wraps a provider and expands environment references in every string value it
/// provides (keys are left alone):
///
/// - `${VAR}` is the value of `VAR` (an error when `VAR` is unset);
/// - `${VAR:-default}` is `default` when `VAR` is unset or empty (the default may
///   itself hold references);
/// - `$$` is a literal `$`; a `$` before anything else is kept as is;
/// - `${env:VAR}` (the VS Code / Cursor spelling) is `${VAR}`.
///
/// The wrapped provider's metadata is passed through, so figment still knows which
/// file each value came from.
///
/// ```
/// use figment::{Figment, providers::{Format, Yaml}};
/// use toolmesh::config::Interpolate;
///
/// let yaml = Yaml::string("token: \"${TOKEN}\"\nprice: \"$$5 ${CURRENCY:-EUR}\"");
/// let figment = Figment::from(Interpolate::new(yaml).with_vars([("TOKEN", "s3cret")]));
/// assert_eq!(figment.extract_inner::<String>("token").unwrap(), "s3cret");
/// assert_eq!(figment.extract_inner::<String>("price").unwrap(), "$5 EUR");
/// ```
pub struct Interpolate<P> {
    inner: P,
    env: EnvSource,
    failure: Mutex<Option<ConfigError>>,
}

impl<P: Provider> Interpolate<P> {
    /// Expands references from the process environment.
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            env: EnvSource::Process,
            failure: Mutex::new(None),
        }
    }

    /// Expands references from exactly these variables instead of the process
    /// environment.
    pub fn with_vars<K: Into<String>, V: Into<String>>(
        self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.with_env(EnvSource::vars(vars))
    }

    pub(crate) fn with_env(mut self, env: EnvSource) -> Self {
        self.env = env;
        self
    }

    /// The error of the last failed [`Provider::data`] call, in full.
    pub(crate) fn take_failure(&self) -> Option<ConfigError> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn fail(&self, error: ConfigError) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

impl<P: Provider> Provider for Interpolate<P> {
    fn metadata(&self) -> Metadata {
        self.inner.metadata()
    }

    fn profile(&self) -> Option<Profile> {
        self.inner.profile()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let metadata = self.inner.metadata();
        let mut map = self
            .inner
            .data()
            .inspect_err(|e| self.fail(diagnose::from_provider(e, &metadata)))?;
        for (profile, dict) in &mut map {
            let mut path = Vec::new();
            if let Err(bad) = expand_dict(dict, &mut path, &self.env) {
                let origin = diagnose::origin(&metadata);
                let key = diagnose::render_key(&metadata, profile, &path);
                let mut error = Error::from(bad.to_string());
                error.path = path;
                self.fail(match bad {
                    Bad::Undefined(var) => ConfigError::UndefinedVariable { origin, key, var },
                    Bad::Malformed(message) => ConfigError::Invalid {
                        origin,
                        key,
                        message,
                    },
                });
                return Err(error);
            }
        }
        Ok(map)
    }
}

/// Why a string could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bad {
    Undefined(String),
    Malformed(String),
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bad::Undefined(var) => write!(
                f,
                "environment variable `{var}` is not set; export {var}=... or write ${{{var}:-default}} to give a default"
            ),
            Bad::Malformed(message) => f.write_str(message),
        }
    }
}

/// Expands every string under `dict`; on failure `path` is the offending key path.
fn expand_dict(dict: &mut Dict, path: &mut Vec<String>, env: &EnvSource) -> Result<(), Bad> {
    for (key, value) in dict.iter_mut() {
        path.push(key.clone());
        expand_value(value, path, env)?;
        path.pop();
    }
    Ok(())
}

fn expand_value(value: &mut Value, path: &mut Vec<String>, env: &EnvSource) -> Result<(), Bad> {
    match value {
        Value::String(_, text) if text.contains('$') => *text = expand(text, env, 0)?,
        Value::Dict(_, dict) => expand_dict(dict, path, env)?,
        Value::Array(_, items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                expand_value(item, path, env)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// How deeply `${A:-${B:-...}}` defaults may nest.
const MAX_DEPTH: usize = 8;

/// Expands the references in one string.
fn expand(text: &str, env: &EnvSource, depth: usize) -> Result<String, Bad> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = closing_brace(body).ok_or_else(|| {
                Bad::Malformed(format!(
                    "unclosed `${{` in {text:?}: end the reference with `}}`, or write `$${{` for a literal `${{`"
                ))
            })?;
            out.push_str(&resolve(&body[..end], env, depth)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Index of the `}` that closes a reference whose body starts `body`.
fn closing_brace(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let (mut depth, mut i) = (0usize, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'$' if matches!(bytes.get(i + 1), Some(b'$')) => i += 1,
            b'$' if matches!(bytes.get(i + 1), Some(b'{')) => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of one reference body: `VAR`, `VAR:-default` or `env:VAR`.
fn resolve(body: &str, env: &EnvSource, depth: usize) -> Result<String, Bad> {
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if name.starts_with("input:") {
        return Err(Bad::Malformed(format!(
            "`${{{body}}}` is a VS Code input prompt, which toolmesh cannot ask for; use ${{VAR}} and set the environment variable VAR instead"
        )));
    }
    let var = name.strip_prefix("env:").unwrap_or(name);
    if !is_variable_name(var) {
        return Err(Bad::Malformed(format!(
            "`${{{body}}}` is not a variable reference; write ${{VAR}} or ${{VAR:-default}} (VAR of letters, digits and `_`), or `$$` for a literal `$`"
        )));
    }
    match (env.get(var), default) {
        (Some(value), None) => Ok(value),
        (Some(value), Some(_)) if !value.is_empty() => Ok(value),
        (_, Some(default)) if depth < MAX_DEPTH => expand(default, env, depth + 1),
        (_, Some(_)) => Err(Bad::Malformed(format!(
            "`${{{body}}}` nests defaults more than {MAX_DEPTH} deep"
        ))),
        (None, None) => Err(Bad::Undefined(var.to_owned())),
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<String, Bad> {
        let env = EnvSource::vars([("A", "alpha"), ("EMPTY", ""), ("B", "beta")]);
        expand(text, &env, 0)
    }

    #[test]
    fn expands_references_defaults_and_dollars() {
        assert_eq!(run("x${A}y").unwrap(), "xalphay");
        assert_eq!(run("${env:B}").unwrap(), "beta");
        assert_eq!(run("${MISSING:-d e f}").unwrap(), "d e f");
        assert_eq!(run("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(run("[${EMPTY}]").unwrap(), "[]");
        assert_eq!(run("${MISSING:-${B}}").unwrap(), "beta");
        assert_eq!(run("${MISSING:-}").unwrap(), "");
        assert_eq!(
            run("$$${A} $$$$ $HOME $ 5$").unwrap(),
            "$alpha $$ $HOME $ 5$"
        );
        assert_eq!(run("$${A}").unwrap(), "${A}");
        assert_eq!(run("über ${A}ß").unwrap(), "über alphaß");
    }

    #[test]
    fn reports_undefined_and_malformed_references() {
        assert_eq!(run("${NOPE}"), Err(Bad::Undefined("NOPE".into())));
        assert_eq!(
            run("${MISSING:-${NOPE}}"),
            Err(Bad::Undefined("NOPE".into()))
        );
        for bad in ["${A", "${}", "${A B}", "${1X}", "${input:key}", "${A:-${B}"] {
            assert!(matches!(run(bad), Err(Bad::Malformed(_))), "{bad}");
        }
        let deep = format!("{}x{}", "${M:-".repeat(50), "}".repeat(50));
        assert!(matches!(run(&deep), Err(Bad::Malformed(_))));
    }
}
