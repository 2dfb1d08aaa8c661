//! `registry:`: where services come from besides `servers:` — the shared registry in etcd
//! (and whether this gateway publishes its own instances there), and the MCP Registry API
//! or local `server.json` files.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use toolmesh_registry::{
    ServiceSpec,
    discovery::{
        etcd::{EtcdOptions, Member, MemberRecord},
        mcp_registry::McpRegistryOptions,
    },
};
use toolmesh_transport::TransportKind;

use super::services::Problem;

/// The `registry:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// The shared registry: instances registered there (by `toolmesh register`, the
    /// library, or gateways publishing) join the catalog, and leave it when their lease
    /// expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdOptions>,
    /// Registers this configuration's HTTP instances in etcd for the other gateways.
    pub publish: bool,
    /// Lease of published instances: how long they outlive this gateway.
    #[serde(with = "toolmesh_core::duration")]
    pub ttl: Duration,
    /// Servers listed by an MCP Registry (`url`) or in local `server.json` files
    /// (`files`): their streamable-HTTP remotes become services; packages only when
    /// allow-listed with the command that runs them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_registry: Option<McpRegistryOptions>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            etcd: None,
            publish: false,
            ttl: Duration::from_secs(10),
            mcp_registry: None,
        }
    }
}

impl RegistryConfig {
    /// Whether nothing is set.
    pub fn is_unset(&self) -> bool {
        self == &Self::default()
    }

    /// The instances to publish: every streamable-HTTP or WebSocket instance of
    /// `services` (a stdio instance is a child of this process, reachable by nobody else).
    pub(crate) fn members(services: &[ServiceSpec]) -> Vec<Member> {
        services
            .iter()
            .flat_map(|spec| {
                spec.instances.iter().filter_map(move |instance| {
                    let url = instance.endpoint.url.as_ref()?;
                    let remote = matches!(
                        instance.endpoint.transport_kind(),
                        Ok(TransportKind::StreamableHttp | TransportKind::Websocket)
                    );
                    remote.then(|| {
                        let mut record = MemberRecord::new(url.as_str());
                        record.tier = instance.priority;
                        record.weight = instance.weight;
                        record.capabilities.clone_from(&instance.capabilities);
                        Member {
                            service: spec.id.to_string(),
                            id: instance.id.to_string(),
                            record,
                        }
                    })
                })
            })
            .collect()
    }
}

/// Checks `registry`; problems name their key path.
pub(crate) fn check(registry: &RegistryConfig) -> Result<(), Problem> {
    if let Some(etcd) = &registry.etcd {
        etcd.validate()
            .map_err(|e| Problem::new(&["registry", "etcd"], 2, e.to_string()))?;
    } else if registry.publish {
        return Err(Problem::new(
            &["registry", "publish"],
            2,
            "publishing needs the shared registry: add `registry.etcd.endpoints`",
        ));
    }
    if let Some(source) = &registry.mcp_registry {
        source
            .validate()
            .map_err(|e| Problem::new(&["registry", "mcp_registry"], 2, e.to_string()))?;
    }
    if registry.ttl < Duration::from_secs(2) {
        return Err(Problem::new(
            &["registry", "ttl"],
            2,
            "give a lease of at least 2s (etcd cannot renew shorter ones reliably)",
        ));
    }
    Ok(())
}
