//! From a [`Config`] to the registry's [`ServiceSpec`]s: defaults applied key by key,
//! instances numbered, every value checked.

use std::{collections::BTreeMap, sync::Arc};

use toolmesh_core::{DynInvoker, InstanceId, NameError, ServerId, ToolName};
use toolmesh_registry::{InstanceSpec, NativeBackend, ServiceSpec};
use toolmesh_tools::Toolbox;

use super::{
    Config, Defaults, ServerConfig,
    defaults::validate_sections,
    server::{InstanceEntry, Prefer},
};

/// Most copies `replicas` may ask for.
pub(crate) const MAX_REPLICAS: u32 = 1024;

/// A value that deserialized but cannot work: where (`servers.search.pool`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Key path, list indices as numbers (`servers`, `search`, `instances`, `1`, `url`).
    pub(crate) path: Vec<String>,
    /// Segments of `path` to keep when the later ones are not in any file (they were
    /// filled from defaults).
    pub(crate) keep: usize,
    /// What is wrong and what to write instead.
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn new(path: &[&str], keep: usize, message: impl Into<String>) -> Self {
        Self {
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            keep,
            message: message.into(),
        }
    }

    fn at_server(name: &str, rest: &[&str], message: impl Into<String>) -> Self {
        let mut path = vec!["servers", name];
        path.extend_from_slice(rest);
        Self::new(&path, 2, message)
    }
}

/// Whether `name` can prefix tools in the catalog: 1-64 of A-Z, a-z, 0-9, `_`, `-`.
pub(crate) fn is_namespace(name: &str) -> bool {
    !matches!(ToolName::new(name, "x"), Err(NameError::Namespace(_)))
}

const NAMESPACE_FORM: &str = "1-64 characters of A-Z, a-z, 0-9, `_` and `-`";

/// Every server as a service, in name order.
pub(crate) fn build(config: &Config) -> Result<Vec<ServiceSpec>, Problem> {
    let defaults = &config.defaults;
    validate_sections(&defaults.instance_config()).map_err(|(section, message)| {
        let path: &[&str] = if section.is_empty() {
            &["defaults"]
        } else {
            &["defaults", section]
        };
        Problem::new(path, 1, message)
    })?;
    let toolbox = native_toolbox(config)?;
    let mut services = Vec::with_capacity(config.servers.len());
    // Instance id → the server that has it.
    let mut ids: BTreeMap<InstanceId, &str> = BTreeMap::new();
    for (name, server) in &config.servers {
        if name.trim().is_empty() {
            return Err(Problem::at_server(
                name,
                &[],
                "a server name is empty; give each server a name",
            ));
        }
        let mut service = service(name, server, defaults)?;
        if let Some(toolbox) = &toolbox {
            service.native = native_backend(name, server, toolbox)?;
        }
        for (i, instance) in service.instances.iter().enumerate() {
            let Some(other) = ids.insert(instance.id.clone(), name) else {
                continue;
            };
            // The instance's `id` when given, else the entry, else the server.
            let entry = server.instances.as_ref().and_then(|list| list.get(i));
            let index = i.to_string();
            let rest: &[&str] = match entry {
                Some(entry) if entry.id.is_some() => &["instances", &index, "id"],
                Some(_) => &["instances", &index],
                None => &[],
            };
            let holder = if other == name.as_str() {
                "another instance of this server".to_owned()
            } else {
                format!("an instance of server `{other}`")
            };
            return Err(Problem::at_server(
                name,
                rest,
                format!(
                    "instance id `{}` is also the id of {holder}; instance ids must be unique across the configuration",
                    instance.id
                ),
            ));
        }
        services.push(service);
    }
    Ok(services)
}

fn service(name: &str, server: &ServerConfig, defaults: &Defaults) -> Result<ServiceSpec, Problem> {
    let namespace = match &server.namespace {
        Some(namespace) if !is_namespace(namespace) => {
            return Err(Problem::at_server(
                name,
                &["namespace"],
                format!(
                    "`{namespace}` is not a valid namespace: use {NAMESPACE_FORM} (it prefixes the service's tools, as in `{}__tool`)",
                    namespace_like(namespace)
                ),
            ));
        }
        Some(namespace) => namespace.clone(),
        None if !is_namespace(name) => {
            return Err(Problem::at_server(
                name,
                &[],
                format!(
                    "the server name `{name}` cannot be its namespace ({NAMESPACE_FORM}); set `namespace: {}` or rename the server",
                    namespace_like(name)
                ),
            ));
        }
        None => name.to_owned(),
    };
    let mut tools = BTreeMap::new();
    for (tool, policy) in &server.tools {
        if let Err(NameError::Tool(_)) = ToolName::new(&namespace, tool) {
            return Err(Problem::at_server(
                name,
                &["tools", tool],
                format!(
                    "`{tool}` is not an MCP tool name: use 1-128 characters of A-Z, a-z, 0-9, `_`, `-`, `.` and `/`"
                ),
            ));
        }
        tools.insert(tool.clone(), policy.clone());
    }
    let instances = match &server.instances {
        Some(list) => listed_instances(name, server, list)?,
        // Only in-process tools: nothing to connect to.
        None if !server.native.is_empty() && server.url.is_none() && server.command.is_none() => {
            Vec::new()
        }
        None => inline_instances(name, server)?,
    };

    let mut instance_config = defaults.instance_config();
    if let Some(interval) = server.health_check_interval {
        if server.health_check.interval.is_some() {
            return Err(Problem::at_server(
                name,
                &["health_check_interval"],
                "both `health_check_interval` and `health_check.interval` are set; keep `health_check.interval`",
            ));
        }
        instance_config.health_check.interval = interval;
    }
    server.pool.apply_to(&mut instance_config.pool);
    server
        .health_check
        .apply_to(&mut instance_config.health_check);
    server
        .circuit_breaker
        .apply_to(&mut instance_config.circuit_breaker);
    server.bulkhead.apply_to(&mut instance_config.bulkhead);
    validate_sections(&instance_config).map_err(|(section, message)| {
        let section: &[&str] = if section.is_empty() { &[] } else { &[section] };
        Problem::at_server(name, section, message)
    })?;

    Ok(ServiceSpec {
        id: ServerId::new(name),
        namespace,
        prefix: server.prefix.unwrap_or(true),
        capabilities: server.capabilities.clone(),
        tags: server.tags.clone(),
        metadata: server.metadata.clone(),
        instances,
        tools,
        strategy: server.strategy.unwrap_or(defaults.strategy),
        max_failover_attempts: server
            .max_failover_attempts
            .unwrap_or(defaults.max_failover_attempts),
        timeout: server.timeout.unwrap_or(defaults.timeout),
        instance_config,
        enabled: server.enabled,
        native: None,
    })
}

/// The in-process toolbox, when any server uses `native`.
fn native_toolbox(config: &Config) -> Result<Option<Arc<Toolbox>>, Problem> {
    if config.servers.values().all(|s| s.native.is_empty()) {
        return Ok(None);
    }
    Toolbox::default_tools(&config.native_tools)
        .map(|t| Some(Arc::new(t)))
        .map_err(|e| Problem::new(&["native_tools"], 1, e.to_string()))
}

/// The native backend of a server listing `native` tools (`"*"` for all of them).
fn native_backend(
    name: &str,
    server: &ServerConfig,
    toolbox: &Arc<Toolbox>,
) -> Result<Option<NativeBackend>, Problem> {
    if server.native.is_empty() {
        return Ok(None);
    }
    let all = toolbox.definitions();
    let tools = if server.native.iter().any(|n| n == "*") {
        all
    } else {
        let mut picked = Vec::with_capacity(server.native.len());
        for wanted in &server.native {
            let Some(tool) = all.iter().find(|t| t.name == wanted.as_str()) else {
                let names: Vec<&str> = all.iter().map(|t| t.name.as_ref()).collect();
                return Err(Problem::at_server(
                    name,
                    &["native"],
                    format!(
                        "unknown native tool `{wanted}`; available: {} (or \"*\" for all)",
                        names.join(", ")
                    ),
                ));
            };
            picked.push(tool.clone());
        }
        picked
    };
    let invoker: Arc<dyn DynInvoker> = toolbox.clone();
    Ok(Some(NativeBackend {
        tools,
        invoker,
        prefer: server.prefer != Some(Prefer::Mcp),
    }))
}

/// `text` with the characters a namespace cannot have replaced by `_`, cut to 64.
pub(crate) fn namespace_like(text: &str) -> String {
    let like: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if like.is_empty() { "name".into() } else { like }
}

/// The single instance given by the endpoint keys on the server, `replicas` times.
fn inline_instances(name: &str, server: &ServerConfig) -> Result<Vec<InstanceSpec>, Problem> {
    let mut endpoint = server.endpoint();
    endpoint.name.get_or_insert_with(|| name.to_owned());
    if let Err(e) = endpoint.validate() {
        let mut message = e.message;
        if endpoint.url.is_none() && endpoint.command.is_none() {
            message.push_str("; or list the endpoints under `instances`");
        }
        let field: Vec<&str> = e.field.split('.').filter(|s| !s.is_empty()).collect();
        return Err(Problem::at_server(name, &field, message));
    }
    let replicas = server.replicas.unwrap_or(1);
    if replicas == 0 || replicas > MAX_REPLICAS {
        return Err(Problem::at_server(
            name,
            &["replicas"],
            format!("expected between 1 and {MAX_REPLICAS} copies, found {replicas}"),
        ));
    }
    Ok((1..=replicas)
        .map(|n| InstanceSpec {
            id: InstanceId::new(format!("{name}-{n}")),
            endpoint: endpoint.clone(),
            weight: server.weight.unwrap_or(1),
            priority: server.priority.unwrap_or(1),
            capabilities: Vec::new(),
        })
        .collect())
}

/// The instances of `instances`; the server may not also give endpoint keys.
fn listed_instances(
    name: &str,
    server: &ServerConfig,
    list: &[InstanceEntry],
) -> Result<Vec<InstanceSpec>, Problem> {
    if let Some(key) = server.shorthand_key() {
        return Err(Problem::at_server(
            name,
            &[key],
            format!(
                "`{key}` belongs to a single-instance server, but this server lists `instances`; move `{key}` into each entry of `instances`, or drop `instances`"
            ),
        ));
    }
    if server.replicas.is_some() {
        return Err(Problem::at_server(
            name,
            &["replicas"],
            "`replicas` copies a single-instance server (`url` or `command` on the server); with `instances`, list every instance instead",
        ));
    }
    if list.is_empty() {
        return Err(Problem::at_server(
            name,
            &["instances"],
            "the list is empty; give at least one instance like `- url: http://host:port/mcp`",
        ));
    }
    let mut instances = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let index = i.to_string();
        let at = |rest: &[&str]| {
            let mut path = vec!["servers", name, "instances", &index];
            path.extend_from_slice(rest);
            path.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
        };
        let mut endpoint = entry.endpoint();
        endpoint.name.get_or_insert_with(|| name.to_owned());
        if let Err(e) = endpoint.validate() {
            let field: Vec<&str> = e.field.split('.').filter(|s| !s.is_empty()).collect();
            return Err(Problem {
                path: at(&field),
                keep: 4,
                message: e.message,
            });
        }
        let id = match &entry.id {
            Some(id) if id.trim().is_empty() => {
                return Err(Problem {
                    path: at(&["id"]),
                    keep: 4,
                    message: format!(
                        "an instance id is empty; give a name, or leave `id` out for `{name}-{}`",
                        i + 1
                    ),
                });
            }
            Some(id) => id.clone(),
            None => format!("{name}-{}", i + 1),
        };
        instances.push(InstanceSpec {
            id: InstanceId::new(id),
            endpoint,
            weight: entry.weight,
            priority: entry.priority,
            capabilities: entry.capabilities.clone(),
        });
    }
    Ok(instances)
}
