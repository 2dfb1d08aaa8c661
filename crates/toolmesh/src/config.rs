//! The configuration file: which MCP servers toolmesh talks to.
//!
//! [`ConfigLoader`] reads YAML, TOML or JSON files (and Claude Desktop, Cursor or
//! VS Code `mcpServers` JSON), merges them, applies `TOOLMESH_*` environment overrides,
//! expands `${VAR}` references and validates every server. See the crate README for the
//! file format.

use std::{collections::BTreeMap, path::Path};

use figment::Figment;
use serde::{Deserialize, Serialize};
use toolmesh_pool::InstanceConfig;
use toolmesh_transport::Endpoint;

mod diagnose;
mod env;
mod error;
mod interpolate;
mod load;
mod mcp_servers;

pub use error::ConfigError;
pub use interpolate::Interpolate;
pub use load::{ConfigLoader, Format};

/// A whole toolmesh configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Settings every server gets unless it overrides them: `pool`, `health_check`,
    /// `circuit_breaker` and `bulkhead`.
    #[serde(default)]
    pub defaults: InstanceConfig,
    /// The MCP servers, by name. Each endpoint's `name` is its key unless set.
    #[serde(default)]
    pub servers: BTreeMap<String, Endpoint>,
}

/// The keys a configuration file may have at its top level. Environment variables
/// whose first segment is none of these are not configuration overrides (so
/// `TOOLMESH_LOG` and friends do not break loading).
pub(crate) const TOP_LEVEL_KEYS: &[&str] = &["defaults", "servers"];

impl Config {
    /// Loads one file (format by extension), with `TOOLMESH_*` environment overrides.
    ///
    /// Shorthand for `ConfigLoader::new().file(path).load()`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        ConfigLoader::new().file(path).load()
    }

    /// Reads a Claude Desktop / Cursor (`mcpServers`) or VS Code (`servers`) MCP
    /// configuration given as text; `source_name` names it in errors.
    ///
    /// `${VAR}` references are expanded from the process environment; `TOOLMESH_*`
    /// overrides are not applied.
    pub fn from_mcp_servers_json(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        ConfigLoader::new()
            .without_env_overrides()
            .mcp_servers_json(source_name, text)
            .load()
    }

    /// Extracts and checks a configuration from a figment built by [`ConfigLoader`].
    fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let mut config: Config = figment
            .extract()
            .map_err(|e| diagnose::from_figment(&e, Some(figment)))?;
        config
            .defaults
            .validate()
            .map_err(|message| diagnose::invalid(figment, vec!["defaults".into()], 1, message))?;
        for (name, endpoint) in &mut config.servers {
            if name.trim().is_empty() {
                return Err(diagnose::invalid_server(
                    figment,
                    name,
                    "",
                    "a server name is empty; give each server a name".into(),
                ));
            }
            endpoint.name.get_or_insert_with(|| name.clone());
            endpoint
                .validate()
                .map_err(|e| diagnose::invalid_server(figment, name, e.field, e.message))?;
        }
        Ok(config)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use figment::error::Kind;

    use super::*;

    #[test]
    fn top_level_keys_match_the_struct() {
        let err = Figment::from(("no_such_key", 1))
            .extract::<Config>()
            .unwrap_err();
        match err.kind {
            Kind::UnknownField(_, expected) => assert_eq!(expected, TOP_LEVEL_KEYS),
            other => panic!("unexpected error kind {other:?}"),
        }
    }
}
