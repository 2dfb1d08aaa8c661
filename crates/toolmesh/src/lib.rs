#![doc = include_str!("../README.md")]

pub mod config;
mod mesh;

pub use config::{Config, ConfigError, ConfigLoader, ConfigWatcher, Format};

/// Agent capabilities: an LLM tool loop whose tool calls ride the mesh.
pub mod agent {
    pub use toolmesh_agent::*;
}
/// Workflows: steps calling tools (through the router) and agents, templated, in parallel
/// where they can.
pub mod workflow {
    pub use toolmesh_agent::workflow::*;
}
pub use mesh::{Error, Mesh, ReloadStatus};
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
    pub use toolmesh_transport as transport;
}
