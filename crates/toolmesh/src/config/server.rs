//! One entry of `servers`: a service with one instance given inline (the endpoint keys
//! directly on the server), or with a list of `instances`.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};
use toolmesh_registry::{Strategy, ToolPolicy};
use toolmesh_transport::{Auth, CommandLine, Endpoint, ProtocolChoice, TransportKind};

use super::overrides::{BreakerOverrides, BulkheadOverrides, HealthCheckOverrides, PoolOverrides};

/// The endpoint keys, spelled out: serde's `flatten` cannot be combined with
/// `deny_unknown_fields`, which keeps a typo an error naming the key.
macro_rules! endpoint_of {
    ($entry:expr) => {
        Endpoint {
            name: $entry.name.clone(),
            transport: $entry.transport,
            url: $entry.url.clone(),
            command: $entry.command.clone(),
            args: $entry.args.clone(),
            env: $entry.env.clone(),
            cwd: $entry.cwd.clone(),
            headers: $entry.headers.clone(),
            auth: $entry.auth.clone(),
            timeout: $entry.timeout,
            connect_timeout: $entry.connect_timeout,
            protocol_version: $entry.protocol_version,
        }
    };
}

/// One MCP server (a service) of the `servers` section.
///
/// Either the endpoint keys (`url` or `command`, `headers`, `auth`, …) are given
/// directly, for a single instance (or `replicas` copies of it), or `instances` lists
/// the endpoints; not both. The other keys set what the service is (`namespace`,
/// `capabilities`, `tools`, …) and override [`Defaults`](super::Defaults) key by key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Display name in logs and errors; defaults to the server's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The wire; inferred from `url` or `command` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportKind>,
    /// `http(s)://…` for streamable HTTP, `ws(s)://…` for WebSocket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Program to start for stdio (no shell is involved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandLine>,
    /// Arguments after the program.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment variables for the child.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory of the child.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Extra HTTP headers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// The service's default call deadline, and the call timeout of every instance
    /// that sets none; `defaults.timeout` when absent. Allowed with `instances` too.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Deadline to connect and initialize; 10 s when absent.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// Protocol revision to negotiate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<ProtocolChoice>,
    /// Share of traffic of the single instance under `weighted` (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Tier of the single instance: lower is preferred (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Runs this many copies of the single instance (ids `<server>-1` … `<server>-N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Prefix of the service's tools in the catalog; defaults to the server's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `false` exposes the server's tools and prompts under their own names (no
    /// `namespace__`), as a gateway in front of a single server should (true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<bool>,
    /// What the service is for, for capability discovery.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Free-form labels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Free-form key/values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The instances, when there is more than one endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<Vec<InstanceEntry>>,
    /// Per-tool policies by upstream tool name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, ToolPolicy>,
    /// In-process tools serving this service too (`calculator`, `fs_read`, … or `"*"`);
    /// a server with only `native` needs no `url` or `command`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub native: Vec<String>,
    /// Whether the native tools go first (`native`, the default) or after the MCP
    /// instances (`mcp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefer: Option<Prefer>,
    /// How an instance is picked within a priority tier; `defaults.strategy` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Instances tried after the first one fails; `defaults.max_failover_attempts` when
    /// absent. `max_retries` is accepted too.
    #[serde(alias = "max_retries", skip_serializing_if = "Option::is_none")]
    pub max_failover_attempts: Option<u32>,
    /// The seed configuration's spelling of `health_check.interval` (seconds or a duration).
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_interval: Option<Duration>,
    /// Changes to `defaults.pool`.
    #[serde(skip_serializing_if = "PoolOverrides::is_unset")]
    pub pool: PoolOverrides,
    /// Changes to `defaults.health_check`.
    #[serde(skip_serializing_if = "HealthCheckOverrides::is_unset")]
    pub health_check: HealthCheckOverrides,
    /// Changes to `defaults.circuit_breaker`.
    #[serde(skip_serializing_if = "BreakerOverrides::is_unset")]
    pub circuit_breaker: BreakerOverrides,
    /// Changes to `defaults.bulkhead`.
    #[serde(skip_serializing_if = "BulkheadOverrides::is_unset")]
    pub bulkhead: BulkheadOverrides,
    /// Whether the service takes calls (true).
    #[serde(skip_serializing_if = "is_true")]
    pub enabled: bool,
}

fn is_true(value: &bool) -> bool {
    *value
}

fn one() -> u32 {
    1
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            name: None,
            transport: None,
            url: None,
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            headers: BTreeMap::new(),
            auth: None,
            timeout: None,
            connect_timeout: None,
            protocol_version: None,
            weight: None,
            priority: None,
            replicas: None,
            namespace: None,
            prefix: None,
            capabilities: Vec::new(),
            tags: Vec::new(),
            metadata: BTreeMap::new(),
            instances: None,
            tools: BTreeMap::new(),
            native: Vec::new(),
            prefer: None,
            strategy: None,
            max_failover_attempts: None,
            health_check_interval: None,
            pool: PoolOverrides::default(),
            health_check: HealthCheckOverrides::default(),
            circuit_breaker: BreakerOverrides::default(),
            bulkhead: BulkheadOverrides::default(),
            enabled: true,
        }
    }
}

impl From<Endpoint> for ServerConfig {
    /// A single-instance server reached at `endpoint`.
    fn from(endpoint: Endpoint) -> Self {
        Self {
            name: endpoint.name,
            transport: endpoint.transport,
            url: endpoint.url,
            command: endpoint.command,
            args: endpoint.args,
            env: endpoint.env,
            cwd: endpoint.cwd,
            headers: endpoint.headers,
            auth: endpoint.auth,
            timeout: endpoint.timeout,
            connect_timeout: endpoint.connect_timeout,
            protocol_version: endpoint.protocol_version,
            ..Self::default()
        }
    }
}

impl ServerConfig {
    /// The endpoint of the single-instance form: the endpoint keys given directly on
    /// the server (empty apart from `timeout` when the server lists `instances`).
    pub fn endpoint(&self) -> Endpoint {
        endpoint_of!(self)
    }

    /// The first single-instance key that is set, other than `timeout` (which sets
    /// the service's deadline in both forms).
    pub(crate) fn shorthand_key(&self) -> Option<&'static str> {
        let keys: [(&'static str, bool); 13] = [
            ("name", self.name.is_some()),
            ("transport", self.transport.is_some()),
            ("url", self.url.is_some()),
            ("command", self.command.is_some()),
            ("args", !self.args.is_empty()),
            ("env", !self.env.is_empty()),
            ("cwd", self.cwd.is_some()),
            ("headers", !self.headers.is_empty()),
            ("auth", self.auth.is_some()),
            ("connect_timeout", self.connect_timeout.is_some()),
            ("protocol_version", self.protocol_version.is_some()),
            ("weight", self.weight.is_some()),
            ("priority", self.priority.is_some()),
        ];
        keys.into_iter().find(|(_, set)| *set).map(|(key, _)| key)
    }
}

/// One entry of a server's `instances`: an endpoint with its place in the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceEntry {
    /// Display name in logs and errors; defaults to the server's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The wire; inferred from `url` or `command` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportKind>,
    /// `http(s)://…` for streamable HTTP, `ws(s)://…` for WebSocket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Program to start for stdio (no shell is involved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandLine>,
    /// Arguments after the program.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment variables for the child.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory of the child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// Extra HTTP headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// Call timeout of this instance; the server's `timeout` when absent.
    #[serde(
        default,
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Deadline to connect and initialize; 10 s when absent.
    #[serde(
        default,
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_timeout: Option<Duration>,
    /// Protocol revision to negotiate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<ProtocolChoice>,
    /// Unique instance id; `<server>-<n>` (1-based position) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Share of traffic under the `weighted` strategy (1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Tier: lower is preferred; higher tiers are backups (1).
    #[serde(default = "one")]
    pub priority: u32,
    /// What this instance can do beyond the server's `capabilities` (`gpu`), for the
    /// `capability_match` strategy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

impl From<Endpoint> for InstanceEntry {
    /// An instance reached at `endpoint`, weight 1, priority 1.
    fn from(endpoint: Endpoint) -> Self {
        Self {
            name: endpoint.name,
            transport: endpoint.transport,
            url: endpoint.url,
            command: endpoint.command,
            args: endpoint.args,
            env: endpoint.env,
            cwd: endpoint.cwd,
            headers: endpoint.headers,
            auth: endpoint.auth,
            timeout: endpoint.timeout,
            connect_timeout: endpoint.connect_timeout,
            protocol_version: endpoint.protocol_version,
            id: None,
            weight: 1,
            priority: 1,
            capabilities: Vec::new(),
        }
    }
}

impl InstanceEntry {
    /// This instance's endpoint.
    pub fn endpoint(&self) -> Endpoint {
        endpoint_of!(self)
    }
}

/// Which implementation of a tool goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prefer {
    /// The in-process tool; MCP instances are the fallback.
    Native,
    /// The MCP instances; the in-process tool is the last resort.
    Mcp,
}
