//! The configuration file: which MCP servers toolmesh talks to.
//!
//! [`ConfigLoader`] reads YAML, TOML or JSON files (and Claude Desktop, Cursor or
//! VS Code `mcpServers` JSON), merges them, applies `TOOLMESH_*` environment overrides,
//! expands `${VAR}` references and validates every server. See the crate README for the
//! file format.

use std::{collections::BTreeMap, path::Path};

use figment::Figment;
use serde::{Deserialize, Serialize};
use toolmesh_registry::ServiceSpec;

mod agents;
mod defaults;
mod diagnose;
mod env;
mod error;
mod gateway;
mod interpolate;
mod load;
mod mcp_servers;
mod overrides;
mod registry;
mod server;
mod services;
mod watch;
mod workflows;

pub use agents::{
    AgentConfig, Agents, CapabilityConfig, ExposeConfig, LlmConfig, LlmEndpointConfig,
    NATIVE_SERVICE,
};
pub use defaults::Defaults;
pub use error::ConfigError;
pub use gateway::{
    ApiKeyConfig, AuthConfig, AuthModeConfig, DEFAULT_STDIO_ROLE, GatewayConfig, JwtConfig,
};
pub use interpolate::Interpolate;
pub use load::{ConfigLoader, Format};
pub use overrides::{
    BreakerOverrides, BulkheadOverrides, HealthCheckOverrides, PoolOverrides, ReconnectOverrides,
};
pub use registry::RegistryConfig;
pub use server::{InstanceEntry, Prefer, ServerConfig};
pub use watch::ConfigWatcher;
pub use workflows::Workflows;

use defaults::{DefaultsSection, GlobalSettings};
use services::Problem;

/// A whole toolmesh configuration.
///
/// [`Config::services`] turns it into what the registry runs: one
/// [`ServiceSpec`] per server, with `defaults` applied.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "ConfigFile")]
pub struct Config {
    /// Settings every server gets unless it overrides them (after the seed format's
    /// `global_settings`, which sets some of the same things, has been folded in).
    pub defaults: Defaults,
    /// The MCP servers, by name.
    pub servers: BTreeMap<String, ServerConfig>,
    /// Settings of the in-process tools servers may use (`native:` on a server).
    pub native_tools: toolmesh_tools::ToolsConfig,
    /// The model agents ask.
    #[serde(skip_serializing_if = "LlmConfig::is_unset")]
    pub llm: LlmConfig,
    /// Named agents over the mesh's tools.
    #[serde(skip_serializing_if = "Agents::is_empty")]
    pub agents: Agents,
    /// Named workflows: steps calling tools and agents.
    #[serde(skip_serializing_if = "Workflows::is_empty")]
    pub workflows: Workflows,
    /// How the gateway serves its clients (inbound authentication).
    #[serde(skip_serializing_if = "GatewayConfig::is_unset")]
    pub gateway: GatewayConfig,
    /// Where services come from besides `servers:` (the shared registry in etcd).
    #[serde(skip_serializing_if = "RegistryConfig::is_unset")]
    pub registry: RegistryConfig,
}

/// A configuration as written: `defaults` holds only the keys given, so that they
/// can win over `global_settings` key by key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    defaults: DefaultsSection,
    #[serde(default)]
    servers: BTreeMap<String, ServerConfig>,
    #[serde(default)]
    global_settings: Option<GlobalSettings>,
    #[serde(default)]
    native_tools: toolmesh_tools::ToolsConfig,
    #[serde(default)]
    llm: LlmConfig,
    #[serde(default)]
    agents: Agents,
    #[serde(default)]
    workflows: Workflows,
    #[serde(default)]
    gateway: GatewayConfig,
    #[serde(default)]
    registry: RegistryConfig,
}

impl From<ConfigFile> for Config {
    fn from(file: ConfigFile) -> Self {
        Self {
            defaults: defaults::resolve(&file.defaults, file.global_settings.as_ref()),
            servers: file.servers,
            native_tools: file.native_tools,
            llm: file.llm,
            agents: file.agents,
            workflows: file.workflows,
            gateway: file.gateway,
            registry: file.registry,
        }
    }
}

/// The keys a configuration file may have at its top level. Environment variables
/// whose first segment is none of these are not configuration overrides (so
/// `TOOLMESH_LOG` and friends do not break loading).
pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "defaults",
    "servers",
    "global_settings",
    "native_tools",
    "llm",
    "agents",
    "workflows",
    "gateway",
    "registry",
];

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

    /// Every server as the registry's [`ServiceSpec`], in name order: `defaults`
    /// applied key by key under each server's own settings, instances numbered
    /// (`<server>-<n>` unless given an `id`), namespaces, endpoints and sections checked.
    ///
    /// A configuration from [`ConfigLoader::load`] has passed these checks already
    /// (with errors naming the file); this only fails for one changed in code since,
    /// and then names the key path in `configuration`.
    pub fn services(&self) -> Result<Vec<ServiceSpec>, ConfigError> {
        services::build(self).map_err(unlocated)
    }

    /// Puts `gateway.roles`, `gateway.rate_limits` and `gateway.audit` in force on
    /// `registry` (each lifted when absent): the router checks and records every call.
    ///
    /// # Errors
    ///
    /// A role or rate limit that cannot work, or an audit file that cannot be opened,
    /// naming the key path.
    pub fn apply_gateway(&self, registry: &toolmesh_registry::Registry) -> Result<(), ConfigError> {
        let gateway = &self.gateway;
        registry.set_policy(gateway.policy().map_err(unlocated)?);
        registry.set_rate_limits(gateway.rate_limits().map_err(unlocated)?);
        registry.set_audit(gateway.audit().map_err(unlocated)?);
        Ok(())
    }

    /// The HTTP edge's authentication, when `gateway.auth` is set; `default_resource`
    /// (the URL the gateway listens at) is the resource unless `gateway.auth.resource`
    /// names one.
    ///
    /// A configuration from [`ConfigLoader::load`] has passed these checks already;
    /// this only fails for one changed in code since, naming the key path.
    pub fn auth_settings(
        &self,
        default_resource: &str,
    ) -> Result<Option<toolmesh_server::auth::AuthSettings>, ConfigError> {
        let Some(auth) = &self.gateway.auth else {
            return Ok(None);
        };
        auth.settings(default_resource).map(Some).map_err(unlocated)
    }

    /// A warning when the configuration defines no server: it loads, but serves nothing
    /// (often the wrong file, or servers under a misspelt parent key).
    pub fn emptiness(&self) -> Option<&'static str> {
        let discovers = self.registry.etcd.is_some() || self.registry.mcp_registry.is_some();
        (self.servers.is_empty() && self.agents.is_empty() && self.workflows.is_empty() && !discovers).then_some(
            "the configuration defines no servers, so no tools will be served; add them under `servers:` (servers: { search: { url: http://host:port/mcp } })",
        )
    }

    /// Extracts and checks a configuration from a figment built by [`ConfigLoader`].
    fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let mut config: Config = figment
            .extract()
            .map_err(|e| diagnose::from_figment(&e, Some(figment)))?;
        for (name, server) in &mut config.servers {
            // The single instance's display name is the server's key unless set.
            if server.instances.is_none() && !name.trim().is_empty() {
                server.name.get_or_insert_with(|| name.clone());
            }
        }
        services::build(&config).map_err(|problem| locate(figment, problem))?;
        workflows::check(&config).map_err(|problem| locate(figment, problem))?;
        gateway::check(&config.gateway).map_err(|problem| locate(figment, problem))?;
        registry::check(&config.registry).map_err(|problem| locate(figment, problem))?;
        if let Some(warning) = config.emptiness() {
            tracing::warn!("{warning}");
        }
        Ok(config)
    }
}

/// A [`Problem`] in a configuration built or changed in code: no file to name.
fn unlocated(problem: Problem) -> ConfigError {
    let path: Vec<&str> = problem.path.iter().map(String::as_str).collect();
    ConfigError::Invalid {
        origin: "configuration".to_owned(),
        key: diagnose::render_path(&path),
        message: problem.message,
    }
}

/// A [`Problem`] as an error naming the file (or variable) that set the value.
fn locate(figment: &Figment, problem: Problem) -> ConfigError {
    let Problem {
        mut path,
        keep,
        message,
    } = problem;
    // Defaults that came from the seed format's `global_settings`.
    if path.first().is_some_and(|top| top == "defaults")
        && diagnose::find(figment, &path).is_none()
        && figment.contains("global_settings")
    {
        let key = GlobalSettings::key_for(path.get(1).map_or("", String::as_str));
        path = vec!["global_settings".to_owned()];
        path.extend(key.map(str::to_owned));
    }
    diagnose::invalid(figment, path, keep, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use figment::{Figment, error::Kind, providers::Format as _};

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

    #[test]
    fn a_config_serializes_to_a_file_that_loads_as_the_same_config() {
        let yaml = r#"
defaults: { timeout: 20s, strategy: latency, pool: { min_sessions: 2 }, circuit_breaker: { failure_rate: 0.5 } }
global_settings: { max_concurrent_connections: 7 }
servers:
  a: { url: "http://h/mcp", weight: 3, pool: { max_sessions: 9 }, enabled: false, tools: { t: { cache_ttl: 1m } } }
  b:
    instances: [{ command: [x, --y], id: b-x, priority: 2 }, { url: "ws://h/ws" }]
    capabilities: [c]
"#;
        let config: Config = Figment::from(figment::providers::Yaml::string(yaml))
            .extract()
            .unwrap();
        assert_eq!(config.defaults.bulkhead.max_concurrent, 7);
        let json = serde_json::to_value(&config).unwrap();
        let again: Config = serde_json::from_value(json).unwrap();
        assert_eq!(again, config);
        assert_eq!(again.services().unwrap(), config.services().unwrap());
    }
}
