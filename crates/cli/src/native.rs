//! The embedded default: toolmesh's native tools as the service `native`.

use toolmesh::{
    Registry, ServerId, ServiceSpec,
    layers::registry::{NativeBackend, RegistryOptions},
};
use toolmesh_tools::{Toolbox, ToolsConfig};

/// The service and namespace of the native tools.
pub(crate) const NATIVE: &str = "native";

/// The native tools (calculator, time, http_fetch, arxiv_search) as one in-process
/// service, preferred over any MCP instance.
pub(crate) fn default_native_service() -> anyhow::Result<ServiceSpec> {
    let toolbox = Toolbox::default_tools(&ToolsConfig::default())?;
    Ok(ServiceSpec::native(
        ServerId::new(NATIVE),
        NativeBackend::toolbox(toolbox),
    ))
}

/// A registry holding only the native tools.
pub(crate) async fn native_registry() -> anyhow::Result<Registry> {
    let registry = Registry::new(RegistryOptions::default());
    registry.add_service(default_native_service()?).await?;
    Ok(registry)
}
