//! `server.json` → [`ServiceSpec`]: hosted streamable HTTP remotes become instances;
//! a stdio package becomes an instance only when the options allow-list the server with
//! the command to run. Whatever cannot be used is skipped with a warning naming it.

use std::collections::BTreeMap;

use toolmesh_core::{InstanceId, ServerId, ToolName};
use toolmesh_transport::{Endpoint, TransportKind};

use super::{
    McpRegistryOptions,
    api::{Remote, ServerJson, Status},
};
use crate::{InstanceSpec, ServiceSpec};

/// Metadata key holding the server's registry name.
pub const META_NAME: &str = "mcp_registry.name";
/// Metadata key holding the server's version.
pub const META_VERSION: &str = "mcp_registry.version";
/// Metadata key holding the registry status (`active`, `deprecated`) when known.
pub const META_STATUS: &str = "mcp_registry.status";

/// The services of `servers` (in the given order); a server whose service name another
/// one already took is skipped.
pub(crate) fn services<'a>(
    servers: impl IntoIterator<Item = (&'a ServerJson, Option<Status>)>,
    options: &McpRegistryOptions,
) -> Vec<ServiceSpec> {
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for (server, status) in servers {
        let Some(spec) = service(server, status, options) else {
            continue;
        };
        let id = spec.id.to_string();
        if let Some(first) = taken.get(&id) {
            tracing::warn!(
                server = %server.name,
                service = %id,
                "skipping MCP Registry server `{}`: service name `{id}` is already taken by `{first}`; give one of them another name under `aliases`",
                server.name
            );
            continue;
        }
        taken.insert(id, server.name.clone());
        out.push(spec);
    }
    out
}

/// The service of one server, or `None` (with a warning) when it offers nothing usable.
fn service(
    server: &ServerJson,
    status: Option<Status>,
    options: &McpRegistryOptions,
) -> Option<ServiceSpec> {
    let name = server.name.as_str();
    let Some(id) = service_name(name, options) else {
        tracing::warn!(
            server = %name,
            "skipping MCP Registry server `{name}`: no valid service name can be derived from it; set one under `aliases`"
        );
        return None;
    };
    let mut instances = remote_instances(server, &id);
    if instances.is_empty() {
        instances = package_instance(server, &id, options).into_iter().collect();
    }
    if instances.is_empty() {
        if server.remotes.is_empty() && options.allowed(name).is_none() {
            tracing::warn!(
                server = %name,
                "skipping MCP Registry server `{name}`: it has no streamable-http remote and is not allow-listed under `packages`"
            );
        }
        return None;
    }
    let mut spec = ServiceSpec::single(ServerId::new(id.as_str()), Endpoint::default());
    spec.instances = instances;
    spec.metadata.insert(META_NAME.to_owned(), name.to_owned());
    if let Some(version) = &server.version {
        spec.metadata
            .insert(META_VERSION.to_owned(), version.clone());
    }
    if let Some(status) = status {
        spec.metadata
            .insert(META_STATUS.to_owned(), status.as_str().to_owned());
    }
    Some(spec)
}

/// The alias of `name`, or its last path segment lowercased with characters a namespace
/// cannot hold replaced by `_`.
pub(crate) fn service_name(name: &str, options: &McpRegistryOptions) -> Option<String> {
    if let Some(alias) = options.aliases.get(name) {
        return Some(alias.clone());
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    let sanitized: String = last
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '_',
        })
        .take(64)
        .collect();
    let valid = !sanitized.chars().all(|c| c == '_');
    (valid && ToolName::new(&sanitized, "x").is_ok()).then_some(sanitized)
}

/// One instance per usable streamable HTTP remote, numbered by its place in `remotes` so
/// ids stay the same from one load to the next.
fn remote_instances(server: &ServerJson, id: &str) -> Vec<InstanceSpec> {
    server
        .remotes
        .iter()
        .enumerate()
        .filter_map(|(i, remote)| {
            let endpoint = remote_endpoint(&server.name, i + 1, remote)?;
            Some(InstanceSpec::new(
                InstanceId::new(format!("{id}-remote-{}", i + 1)),
                endpoint,
            ))
        })
        .collect()
}

fn remote_endpoint(name: &str, n: usize, remote: &Remote) -> Option<Endpoint> {
    let skip = |why: String| {
        tracing::warn!(server = %name, remote = n, "skipping remote {n} of MCP Registry server `{name}`: {why}");
    };
    if remote.kind != "streamable-http" {
        skip(format!(
            "its transport `{}` is not supported (only streamable-http is)",
            remote.kind
        ));
        return None;
    }
    let Some(url) = remote.url.as_deref() else {
        skip("it has no `url`".to_owned());
        return None;
    };
    if url.contains('{') {
        skip(format!(
            "its URL `{url}` has template variables toolmesh cannot fill; configure the service directly"
        ));
        return None;
    }
    let mut endpoint = Endpoint::url(url).named(name);
    endpoint.transport = Some(TransportKind::StreamableHttp);
    for header in &remote.headers {
        match &header.value {
            Some(value) if !value.contains('{') => {
                endpoint.headers.insert(header.name.clone(), value.clone());
            }
            _ if header.is_required => {
                skip(format!(
                    "it requires header `{}`, whose value the registry cannot provide; configure the service directly",
                    header.name
                ));
                return None;
            }
            _ => {}
        }
    }
    if let Err(e) = endpoint.validate() {
        skip(e.to_string());
        return None;
    }
    Some(endpoint)
}

/// The stdio instance of an allow-listed server that really lists a stdio package.
fn package_instance(
    server: &ServerJson,
    id: &str,
    options: &McpRegistryOptions,
) -> Option<InstanceSpec> {
    let name = server.name.as_str();
    let allowed = options.allowed(name)?;
    if !server.packages.iter().any(|p| p.is_stdio()) {
        tracing::warn!(
            server = %name,
            "not starting MCP Registry server `{name}`: it is allow-listed under `packages` but lists no stdio package"
        );
        return None;
    }
    let mut endpoint = Endpoint::stdio(allowed.command.clone(), allowed.args.clone()).named(name);
    endpoint.env = allowed.env.clone();
    Some(InstanceSpec::new(
        InstanceId::new(format!("{id}-stdio")),
        endpoint,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::mcp_registry::AllowedPackage;

    fn server(v: serde_json::Value) -> ServerJson {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("bad test server.json: {e}"))
    }

    #[test]
    fn names_are_sanitized_or_aliased() {
        let mut o = McpRegistryOptions::default();
        assert_eq!(
            service_name("io.github.Acme/Weather.API", &o).as_deref(),
            Some("weather_api")
        );
        assert_eq!(service_name("plain", &o).as_deref(), Some("plain"));
        assert_eq!(service_name("io.x/...", &o), None);
        o.aliases.insert("io.x/...".into(), "dots".into());
        assert_eq!(service_name("io.x/...", &o).as_deref(), Some("dots"));
    }

    #[test]
    fn remotes_become_instances_and_sse_is_skipped() {
        let s = server(serde_json::json!({
            "name": "io.github.acme/weather", "version": "2.0.0",
            "remotes": [
                {"type": "sse", "url": "https://w.example/sse"},
                {"type": "streamable-http", "url": "https://w.example/mcp",
                 "headers": [{"name": "X-Region", "value": "eu"}, {"name": "X-Opt", "description": "optional"}]},
                {"type": "streamable-http", "url": "https://{tenant}.w.example/mcp"},
                {"type": "streamable-http", "url": "https://w2.example/mcp",
                 "headers": [{"name": "Authorization", "isRequired": true, "isSecret": true}]}
            ]
        }));
        let specs = services([(&s, Some(Status::Active))], &McpRegistryOptions::default());
        assert_eq!(specs.len(), 1);
        let spec = &specs[0];
        assert_eq!(spec.id.to_string(), "weather");
        assert_eq!(spec.namespace, "weather");
        assert_eq!(spec.metadata[META_NAME], "io.github.acme/weather");
        assert_eq!(spec.metadata[META_VERSION], "2.0.0");
        assert_eq!(spec.metadata[META_STATUS], "active");
        let ids: Vec<_> = spec.instances.iter().map(|i| i.id.to_string()).collect();
        assert_eq!(ids, ["weather-remote-2"]);
        let endpoint = &spec.instances[0].endpoint;
        assert_eq!(endpoint.url.as_deref(), Some("https://w.example/mcp"));
        assert_eq!(
            endpoint.headers.get("X-Region").map(String::as_str),
            Some("eu")
        );
        assert_eq!(endpoint.headers.len(), 1);
    }

    #[test]
    fn packages_run_only_when_allow_listed_and_really_stdio() {
        let fs = server(serde_json::json!({
            "name": "io.github.acme/fs",
            "packages": [{"registryType": "npm", "identifier": "@acme/fs", "transport": {"type": "stdio"}}]
        }));
        let http_only = server(serde_json::json!({
            "name": "io.github.acme/web",
            "packages": [{"registryType": "oci", "identifier": "acme/web", "transport": {"type": "streamable-http", "url": "http://localhost:8080/mcp"}}]
        }));
        let mut o = McpRegistryOptions::default();
        assert!(services([(&fs, None), (&http_only, None)], &o).is_empty());
        for name in ["io.github.acme/fs", "io.github.acme/web"] {
            o.packages.push(AllowedPackage {
                name: name.into(),
                command: "npx".into(),
                args: vec!["-y".into(), "@acme/fs@1.2.3".into()],
                env: [("ROOT".to_owned(), "/srv".to_owned())].into(),
            });
        }
        let specs = services([(&fs, None), (&http_only, None)], &o);
        assert_eq!(specs.len(), 1, "a package that is not stdio never runs");
        let instance = &specs[0].instances[0];
        assert_eq!(instance.id.to_string(), "fs-stdio");
        assert_eq!(
            instance.endpoint.argv().ok(),
            Some((
                "npx".to_owned(),
                vec!["-y".to_owned(), "@acme/fs@1.2.3".to_owned()]
            ))
        );
        assert_eq!(instance.endpoint.env["ROOT"], "/srv");
    }

    #[test]
    fn the_second_server_with_a_taken_name_is_skipped() {
        let remote = |name: &str, url: &str| {
            server(serde_json::json!({
                "name": name, "remotes": [{"type": "streamable-http", "url": url}]
            }))
        };
        let a = remote("io.github.a/search", "https://a.example/mcp");
        let b = remote("io.github.b/search", "https://b.example/mcp");
        let specs = services([(&a, None), (&b, None)], &McpRegistryOptions::default());
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].metadata[META_NAME], "io.github.a/search");
    }
}
