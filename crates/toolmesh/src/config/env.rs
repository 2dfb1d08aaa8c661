//! Where `${VAR}` values and `TOOLMESH_*` overrides come from: the process
//! environment, or a fixed set of variables (tests, embedding).

use std::{collections::BTreeMap, sync::Arc};

use figment::{
    Error, Metadata, Profile, Provider, Source,
    providers::Env,
    util::nest,
    value::{Dict, Map, Value},
};

/// A set of environment variables.
#[derive(Debug, Clone, Default)]
pub(crate) enum EnvSource {
    /// The real process environment.
    #[default]
    Process,
    /// Exactly these variables.
    Vars(Arc<BTreeMap<String, String>>),
}

impl EnvSource {
    /// A fixed set of variables.
    pub(crate) fn vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self::Vars(Arc::new(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// The value of `name`; `None` when unset (or, in the process, not UTF-8).
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        match self {
            Self::Process => std::env::var(name).ok(),
            Self::Vars(vars) => vars.get(name).cloned(),
        }
    }
}

/// `PREFIX_A__B=value` variables as the nested key `a.b`, like figment's
/// `Env::prefixed(prefix).split("__")`, limited to variables whose first key is in
/// `only` (so unrelated `TOOLMESH_FIXTURE_BIN`-style variables are left alone).
pub(crate) struct EnvOverrides {
    prefix: String,
    only: &'static [&'static str],
    source: EnvSource,
}

const SEPARATOR: &str = "__";

/// How errors name values that came from the environment.
pub(crate) const ORIGIN: &str = "environment";

impl EnvOverrides {
    pub(crate) fn new(prefix: &str, only: &'static [&'static str], source: EnvSource) -> Self {
        Self {
            prefix: prefix.to_owned(),
            only,
            source,
        }
    }
}

/// Whether the dotted key (after prefix and split) starts with an allowed key.
fn wanted(only: &[&str], key: &str) -> bool {
    let first = key.split('.').next().unwrap_or_default().trim();
    only.iter().any(|k| k.eq_ignore_ascii_case(first))
}

impl Provider for EnvOverrides {
    fn metadata(&self) -> Metadata {
        let prefix = self.prefix.to_ascii_uppercase();
        Metadata::named(format!("`{prefix}` environment variables"))
            .source(Source::Custom(ORIGIN.into()))
            .interpolater(move |_: &Profile, keys: &[&str]| {
                let upper: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
                format!("{prefix}{}", upper.join(SEPARATOR))
            })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        let only = self.only;
        match &self.source {
            EnvSource::Process => Env::prefixed(&self.prefix)
                .split(SEPARATOR)
                .filter(move |key| wanted(only, key.as_str()))
                .data(),
            EnvSource::Vars(vars) => Ok(Profile::Default.collect(self.vars_data(vars))),
        }
    }
}

impl EnvOverrides {
    /// What figment's `Env` does with the process environment, for given variables.
    fn vars_data(&self, vars: &BTreeMap<String, String>) -> Dict {
        let mut dict = Dict::new();
        for (name, value) in vars {
            let name = name.trim();
            let Some(head) = name.get(..self.prefix.len()) else {
                continue;
            };
            if name.is_empty() || !head.eq_ignore_ascii_case(&self.prefix) {
                continue;
            }
            let key = name[self.prefix.len()..].replace(SEPARATOR, ".");
            let key = key.trim();
            if !wanted(self.only, key) || key.split('.').any(str::is_empty) {
                continue;
            }
            let value: Value = match value.parse() {
                Ok(v) => v,
                Err(never) => match never {},
            };
            if let Some(nested) = nest(&key.to_ascii_lowercase(), value).into_dict() {
                dict = merge(dict, nested);
            }
        }
        dict
    }
}

/// Merges `b` into `a`, `b` winning, recursively for maps.
fn merge(mut a: Dict, b: Dict) -> Dict {
    for (key, value) in b {
        let merged = match (a.remove(&key), value) {
            (Some(Value::Dict(_, old)), Value::Dict(tag, new)) => Value::Dict(tag, merge(old, new)),
            (_, value) => value,
        };
        a.insert(key, merged);
    }
    a
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn data(overrides: &EnvOverrides) -> Dict {
        let mut map = overrides.data().unwrap();
        map.remove(&Profile::Default).unwrap_or_default()
    }

    #[test]
    fn injected_variables_match_figment_env_on_the_real_environment() {
        // Cargo sets these when it runs tests.
        const ONLY: &[&str] = &["pkg_name", "pkg_version", "manifest_dir"];
        let real: Vec<(String, String)> = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        let process = EnvOverrides::new("CARGO_", ONLY, EnvSource::Process);
        let injected = EnvOverrides::new("CARGO_", ONLY, EnvSource::vars(real));
        let (process, injected) = (data(&process), data(&injected));
        assert!(process.contains_key("pkg_name"), "{process:?}");
        assert_eq!(process, injected);
    }

    #[test]
    fn nests_on_double_underscore_and_lowercases() {
        let vars = EnvSource::vars([
            ("TOOLMESH_SERVERS__Search__TIMEOUT", "5s"),
            ("toolmesh_servers__search__url", "http://h/mcp"),
            ("TOOLMESH_FIXTURE_BIN", "/bin/x"),
            ("TOOLMESH_SERVERS____X", "dropped"),
            ("OTHER_SERVERS__A__URL", "x"),
        ]);
        let dict = data(&EnvOverrides::new("TOOLMESH_", &["servers"], vars));
        let search = Value::from(dict).find("servers.search").unwrap();
        assert_eq!(
            search.find_ref("timeout").and_then(Value::as_str),
            Some("5s")
        );
        assert_eq!(
            search.find_ref("url").and_then(Value::as_str),
            Some("http://h/mcp")
        );
        assert_eq!(search.as_dict().map(Dict::len), Some(2));
    }
}
