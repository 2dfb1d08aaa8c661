//! `toolmesh config check`: load, validate and show a configuration.

use std::{collections::BTreeMap, io::Write as _, path::PathBuf};

use serde::Serialize;
use toolmesh::{ServiceSpec, Strategy, ToolPolicy, TransportKind, layers::pool::InstanceConfig};

use crate::{cli::Format, output, target};

pub(crate) fn check(files: &[PathBuf], format: Format) -> anyhow::Result<()> {
    let config = target::loader(files).load()?;
    if let Some(warning) = config.emptiness() {
        eprintln!("warning: {warning}");
    }
    if !config.agents.is_empty() || !config.llm.is_unset() {
        config.llm.build()?;
    }
    let native = crate::native::default_native_service()?;
    let native_tools: Vec<&str> = native
        .native
        .iter()
        .flat_map(|n| n.tools.iter().map(|t| t.name.as_ref()))
        .collect();
    for warning in config.agent_warnings(&native_tools)? {
        eprintln!("warning: {warning}");
    }
    let services = config.services()?;
    let document = Document(&services);
    // Streamed: a copy of the whole text of 10k services would cost more than building it.
    let mut out = output::StdoutSink::new();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &document)?;
            out.write_all(b"\n")?;
        }
        // Ends in exactly one newline (`services: []` or a service's last key).
        Format::Yaml => serde_yaml::to_writer(&mut out, &document)?,
    }
    out.flush()?;
    let instances: usize = services.iter().map(|s| s.instances.len()).sum();
    eprintln!(
        "configuration ok: {} service{}, {instances} instance{}{}{}",
        services.len(),
        if services.len() == 1 { "" } else { "s" },
        if instances == 1 { "" } else { "s" },
        counted(config.agents.len(), "agent"),
        counted(config.workflows.len(), "workflow"),
    );
    Ok(())
}

/// `, 2 agents` (nothing for none).
fn counted(n: usize, what: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!(", 1 {what}"),
        n => format!(", {n} {what}s"),
    }
}

/// `services:` and each service's [`ServiceView`], made as it is written.
struct Document<'a>(&'a [ServiceSpec]);

impl Serialize for Document<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut document = serializer.serialize_struct("Document", 1)?;
        document.serialize_field("services", &Services(self.0))?;
        document.end()
    }
}

struct Services<'a>(&'a [ServiceSpec]);

impl Serialize for Services<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(describe))
    }
}

/// A service as the gateway runs it; endpoints by label, so no secret is printed.
#[derive(Serialize)]
struct ServiceView<'a> {
    name: String,
    namespace: &'a str,
    enabled: bool,
    strategy: Strategy,
    timeout: String,
    max_failover_attempts: u32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    capabilities: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: &'a BTreeMap<String, String>,
    instances: Vec<InstanceView>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tools: &'a BTreeMap<String, ToolPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    native_tools: Option<Vec<String>>,
    instance_config: &'a InstanceConfig,
}

#[derive(Serialize)]
struct InstanceView {
    id: String,
    endpoint: String,
    transport: Option<TransportKind>,
    weight: u32,
    priority: u32,
}

fn describe(spec: &ServiceSpec) -> ServiceView<'_> {
    ServiceView {
        name: spec.id.to_string(),
        namespace: &spec.namespace,
        enabled: spec.enabled,
        strategy: spec.strategy,
        timeout: humantime::format_duration(spec.timeout).to_string(),
        max_failover_attempts: spec.max_failover_attempts,
        capabilities: &spec.capabilities,
        tags: &spec.tags,
        metadata: &spec.metadata,
        instances: spec
            .instances
            .iter()
            .map(|instance| InstanceView {
                id: instance.id.to_string(),
                endpoint: instance.endpoint.label(),
                transport: instance.endpoint.transport_kind().ok(),
                weight: instance.weight,
                priority: instance.priority,
            })
            .collect(),
        tools: &spec.tools,
        native_tools: spec
            .native
            .as_ref()
            .map(|n| n.tools.iter().map(|t| t.name.to_string()).collect()),
        instance_config: &spec.instance_config,
    }
}
