//! What a service is: its instances, tools policies and routing settings. The config
//! layer builds these; the registry runs them.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde::{Deserialize, Serialize};
use toolmesh_core::{DynInvoker, InstanceId, ServerId, Tool};
use toolmesh_pool::InstanceConfig;
use toolmesh_transport::Endpoint;

use crate::Strategy;

/// One MCP server (a service), run as one or more instances.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// The service's name.
    pub id: ServerId,
    /// Prefix of its tools in the catalog (`namespace__tool`); defaults to the name.
    pub namespace: String,
    /// Whether catalog names carry the namespace. `false` exposes the server's own tool
    /// and prompt names, for a gateway in front of one server (clashes are reported).
    pub prefix: bool,
    /// What it is for, for capability discovery (`search`, `web_search`).
    pub capabilities: Vec<String>,
    /// Free-form labels (`production`).
    pub tags: Vec<String>,
    /// Free-form key/values (`region: eu-west-1`).
    pub metadata: BTreeMap<String, String>,
    /// The instances, all serving the same tools.
    pub instances: Vec<InstanceSpec>,
    /// Per-tool policies by upstream tool name.
    pub tools: BTreeMap<String, ToolPolicy>,
    /// How an instance is picked within a priority tier.
    pub strategy: Strategy,
    /// Instances tried after the first one fails (within the call's deadline).
    pub max_failover_attempts: u32,
    /// Default deadline of a call.
    pub timeout: Duration,
    /// Pool, health check, breaker and bulkhead settings of each instance.
    pub instance_config: InstanceConfig,
    /// Whether the service takes calls.
    pub enabled: bool,
    /// In-process implementations of (some of) its tools.
    pub native: Option<NativeBackend>,
}

/// Tools implemented in-process, served as one more instance of a service.
#[derive(Clone)]
pub struct NativeBackend {
    /// The tools it implements (upstream names, without namespace).
    pub tools: Vec<Tool>,
    /// Runs them.
    pub invoker: Arc<dyn DynInvoker>,
    /// Try it before the service's MCP instances (`prefer: native`); otherwise it is the
    /// last resort after them.
    pub prefer: bool,
}

impl NativeBackend {
    /// Every tool of `toolbox`, preferred over the service's MCP instances.
    pub fn toolbox(toolbox: toolmesh_tools::Toolbox) -> Self {
        Self {
            tools: toolbox.definitions(),
            invoker: Arc::new(toolbox),
            prefer: true,
        }
    }

    /// Whether it implements `tool`.
    pub fn offers(&self, tool: &str) -> bool {
        self.tools.iter().any(|t| t.name == tool)
    }
}

impl PartialEq for NativeBackend {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.invoker, &other.invoker)
            && self.tools == other.tools
            && self.prefer == other.prefer
    }
}

impl std::fmt::Debug for NativeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeBackend")
            .field(
                "tools",
                &self
                    .tools
                    .iter()
                    .map(|t| t.name.as_ref())
                    .collect::<Vec<_>>(),
            )
            .field("prefer", &self.prefer)
            .finish()
    }
}

impl ServiceSpec {
    /// A service with one instance and default settings.
    pub fn single(id: impl Into<ServerId>, endpoint: Endpoint) -> Self {
        let id = id.into();
        Self {
            namespace: id.to_string(),
            prefix: true,
            capabilities: Vec::new(),
            tags: Vec::new(),
            metadata: BTreeMap::new(),
            instances: vec![InstanceSpec::new(
                InstanceId::new(format!("{id}-1")),
                endpoint,
            )],
            tools: BTreeMap::new(),
            strategy: Strategy::default(),
            max_failover_attempts: 3,
            timeout: Duration::from_secs(30),
            instance_config: InstanceConfig::default(),
            enabled: true,
            native: None,
            id,
        }
    }

    /// A service served only in-process: no MCP instance.
    pub fn native(id: impl Into<ServerId>, backend: NativeBackend) -> Self {
        let id = id.into();
        let mut spec = Self::single(id, Endpoint::default());
        spec.instances.clear();
        spec.native = Some(backend);
        spec
    }
}

/// One instance of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSpec {
    /// Unique across the registry (`search-1`).
    pub id: InstanceId,
    /// How to reach it.
    pub endpoint: Endpoint,
    /// Share of traffic under the `weighted` strategy.
    pub weight: u32,
    /// Tier: lower is preferred; higher tiers are backups used only when lower ones fail.
    pub priority: u32,
    /// What this instance can do beyond its service (`gpu`, `eu`), for the
    /// `capability_match` strategy.
    pub capabilities: Vec<String>,
}

impl InstanceSpec {
    /// Weight 1, priority 1, no capabilities of its own.
    pub fn new(id: InstanceId, endpoint: Endpoint) -> Self {
        Self {
            id,
            endpoint,
            weight: 1,
            priority: 1,
            capabilities: Vec::new(),
        }
    }
}

/// How the router treats one tool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolPolicy {
    /// Safe to repeat after an after-send failure (overrides the tool's annotations).
    pub idempotent: Option<bool>,
    /// Results are cached this long (idempotent or read-only tools only).
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_ttl: Option<Duration>,
    /// Start a second attempt on another instance if none answered by then (read-only tools).
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub hedge_after: Option<Duration>,
    /// Deadline of a call to this tool.
    #[serde(
        with = "toolmesh_core::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}
