//! What one registered instance says of itself, and where it is kept.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toolmesh_core::InstanceId;
use toolmesh_transport::Endpoint;

use crate::{InstanceSpec, ServiceSpec};

/// The value of `<prefix>/services/<service>/instances/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// The instance's streamable-HTTP MCP endpoint.
    pub endpoint: String,
    /// Priority tier: lower is preferred.
    #[serde(default = "one")]
    pub tier: u32,
    /// Share of traffic under the `weighted` strategy.
    #[serde(default = "one")]
    pub weight: u32,
    /// What it can do beyond its service, for `capability_match`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// A digest of its tool list (names and schemas), when the registrar could list them:
    /// instances of one service that differ show up in `/status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools_digest: Option<String>,
}

fn one() -> u32 {
    1
}

impl MemberRecord {
    /// A record for `endpoint`, tier 1, weight 1.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            tier: 1,
            weight: 1,
            capabilities: Vec::new(),
            tools_digest: None,
        }
    }

    /// A digest of `tools` (names and input schemas, in name order), for `tools_digest`.
    pub fn digest_of(tools: &[toolmesh_core::Tool]) -> String {
        use sha2::Digest as _;
        let mut sorted: Vec<_> = tools
            .iter()
            .map(|t| (t.name.as_ref(), &t.input_schema))
            .collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let bytes = serde_json::to_vec(&sorted).unwrap_or_default();
        let digest = sha2::Sha256::digest(bytes);
        format!(
            "sha256:{}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    }

    /// The instance it describes.
    pub fn instance(&self, id: &str) -> InstanceSpec {
        let mut instance = InstanceSpec::new(InstanceId::new(id), Endpoint::url(&self.endpoint));
        instance.priority = self.tier;
        instance.weight = self.weight;
        instance.capabilities.clone_from(&self.capabilities);
        instance
    }
}

/// `<prefix>/services/`: everything the registry holds.
pub(crate) fn services_prefix(prefix: &str) -> String {
    format!("{prefix}/services/")
}

/// The key of one instance.
pub(crate) fn instance_key(prefix: &str, service: &str, id: &str) -> String {
    format!("{prefix}/services/{service}/instances/{id}")
}

/// `(service, id)` of a key under `prefix`, if it is an instance key.
pub(crate) fn parse_key<'k>(prefix: &str, key: &'k str) -> Option<(&'k str, &'k str)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix("/services/")?;
    let (service, id) = rest.split_once("/instances/")?;
    (!service.is_empty() && !id.is_empty() && !id.contains('/')).then_some((service, id))
}

/// The services the records describe, by name, each with default settings and its
/// instances by id. A record that cannot serve (bad service name, bad endpoint) is left out
/// with a warning: one bad registration must not keep the others from routing.
pub(crate) fn services(records: &BTreeMap<(String, String), MemberRecord>) -> Vec<ServiceSpec> {
    let mut out: Vec<ServiceSpec> = Vec::new();
    for ((service, id), record) in records {
        let instance = record.instance(id);
        if let Err(e) = instance.endpoint.validate() {
            tracing::warn!(service, instance = id, "registered instance left out: {e}");
            continue;
        }
        if let Err(e) = toolmesh_core::ToolName::new(service, "x") {
            tracing::warn!(service, instance = id, "registered service left out: {e}");
            continue;
        }
        match out.last_mut() {
            Some(spec) if spec.id.as_str() == service => spec.instances.push(instance),
            _ => {
                let mut spec = ServiceSpec::single(service.as_str(), Endpoint::default());
                spec.instances = vec![instance];
                out.push(spec);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_strangers_are_ignored() {
        let key = instance_key("/tm", "search", "search-a");
        assert_eq!(parse_key("/tm", &key), Some(("search", "search-a")));
        assert_eq!(parse_key("/tm", "/tm/services/search"), None);
        assert_eq!(parse_key("/tm", "/other/services/s/instances/i"), None);
        assert_eq!(parse_key("/tm", "/tm/services/s/instances/a/b"), None);
    }

    #[test]
    fn records_become_services_and_bad_ones_are_left_out() {
        let mut records = BTreeMap::new();
        let mut backup = MemberRecord::new("http://127.0.0.1:9/mcp");
        backup.tier = 2;
        records.insert(("search".into(), "b".into()), backup);
        records.insert(
            ("search".into(), "a".into()),
            MemberRecord::new("http://127.0.0.1:8/mcp"),
        );
        records.insert(
            ("bad name!".into(), "x".into()),
            MemberRecord::new("http://127.0.0.1:8/mcp"),
        );
        records.insert(("files".into(), "x".into()), MemberRecord::new("not a url"));
        let services = services(&records);
        assert_eq!(services.len(), 1, "{services:?}");
        let ids: Vec<_> = services[0]
            .instances
            .iter()
            .map(|i| i.id.to_string())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(services[0].instances[1].priority, 2);
    }
}
