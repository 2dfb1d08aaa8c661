#![doc = include_str!("../README.md")]

pub mod config;
mod mesh;

pub use config::{Config, ConfigError, ConfigLoader, ConfigWatcher, Format};

/// Layer 1, agent capabilities: agents whose tool calls ride the mesh, exposed as MCP
/// servers ([`ExposeAsMcpServer`](agent::ExposeAsMcpServer)) and calling each other.
pub mod agent {
    pub use toolmesh_agent::*;
    pub use toolmesh_server::{AgentServer, ExposeAsMcpServer};
}

/// Layer 2, service management: the MCP servers and their instances — registry,
/// discovery, routing strategies, the router with failover, sessions.
pub mod services {
    pub use crate::{Config, ConfigLoader, ConfigWatcher, Mesh, ReloadStatus, SourceViews};
    /// Where services come from besides the configuration: the shared registry in etcd
    /// (registration and following), and the merge rule.
    pub use toolmesh_registry::discovery;
    pub use toolmesh_registry::{
        CallMeta, Catalog, CatalogEntry, InstanceSpec, MeshEvent, NativeBackend, Registry,
        RegistryOptions, Routed, ServiceMatch, ServiceSpec, Strategy, ToolPolicy,
    };
    pub use toolmesh_transport::{Endpoint, ProtocolChoice, ServerEvent, Session, TransportKind};
}

/// Layer 3, workflows: steps calling tools (through the router) and agents, templated, in
/// parallel where they can.
pub mod workflow {
    pub use toolmesh_agent::workflow::*;
}

/// Layer 4, enterprise management: serving the mesh (the HTTP edge with its Host/Origin
/// checks and limits), the policy (roles granting tools), status reports and metrics.
pub mod enterprise {
    pub use toolmesh_registry::{
        HealthSummary, InstanceReport, MeshReport, Policy, PolicyError, RoleGrant, ServiceReport,
    };
    pub use toolmesh_server::{
        Caller, CatalogServer, DENIED_CODE, GatewayState, HttpOptions, HttpServer, ServerOptions,
        router, serve_http, serve_io, serve_stdio,
    };
}
pub use mesh::{Error, Mesh, ReloadStatus, SourceViews};
pub use toolmesh_agent::workflow::{Workflow, WorkflowError, WorkflowResult};
pub use toolmesh_agent::{Agent, AgentError, Llm, LlmEndpoint, RunResult, ToolSelection};
pub use toolmesh_core::{
    CallContext, CallError, DynInvoker, ErrorKind, InstanceId, Invoker, NameTable, Phase, ServerId,
    ToolCall, ToolName, ToolNaming,
};
pub use toolmesh_registry::{CallMeta, MeshEvent, Registry, Routed};
pub use toolmesh_registry::{InstanceSpec, ServiceSpec, Strategy, ToolPolicy};
pub use toolmesh_transport::{Endpoint, ProtocolChoice, ServerEvent, Session, TransportKind};

/// The layers underneath, for what the facade does not re-export.
pub mod layers {
    pub use toolmesh_core as core;
    pub use toolmesh_pool as pool;
    pub use toolmesh_registry as registry;
    pub use toolmesh_resilience as resilience;
    pub use toolmesh_server as server;
    pub use toolmesh_transport as transport;
}
