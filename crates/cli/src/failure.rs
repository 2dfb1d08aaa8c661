//! Exit statuses: 2 for what the user must fix in the configuration or command line,
//! 1 for everything else.

use std::process::ExitCode;

/// A mistake on the command line that clap cannot see (e.g. ARGS_JSON that is not JSON).
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Whether `error` is about the configuration or the command line.
pub(crate) fn is_usage(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.is::<Usage>()
            || cause.is::<toolmesh::ConfigError>()
            || cause.is::<toolmesh::Error>()
            || cause.is::<toolmesh::layers::registry::RegistryError>()
            || matches!(
                cause.downcast_ref::<toolmesh::AgentError>(),
                Some(toolmesh::AgentError::NoModel | toolmesh::AgentError::Config(_))
            )
            || matches!(
                cause.downcast_ref::<toolmesh::WorkflowError>(),
                Some(toolmesh::WorkflowError::Invalid { .. })
            )
            || matches!(
                cause.downcast_ref::<toolmesh::agent::LlmError>(),
                Some(toolmesh::agent::LlmError::Invalid(_))
            )
            || matches!(
                cause.downcast_ref::<toolmesh_server::ServerError>(),
                Some(toolmesh_server::ServerError::InvalidArguments { .. })
            )
            || cause
                .downcast_ref::<toolmesh::CallError>()
                .is_some_and(is_invalid_arguments)
            || matches!(
                cause.downcast_ref::<toolmesh_server::ServerError>(),
                Some(toolmesh_server::ServerError::Call(call)) if is_invalid_arguments(call)
            )
    })
}

/// JSON-RPC "invalid params" from a gateway: the arguments do not fit the tool's schema
/// (an unknown tool, answered with the same code, is a failed call as it is locally).
fn is_invalid_arguments(error: &toolmesh::CallError) -> bool {
    const INVALID_PARAMS: i32 = -32602;
    matches!(error, toolmesh::CallError::Rpc { code: INVALID_PARAMS, message, .. }
        if !message.starts_with("no tool named"))
}

/// Prints `error` on stderr, one cause per line, and picks the exit status.
pub(crate) fn report(error: &anyhow::Error) -> ExitCode {
    let usage = is_usage(error);
    let mut causes = error.chain();
    if let Some(first) = causes.next() {
        if usage && (first.is::<toolmesh::ConfigError>() || first.is::<toolmesh::Error>()) {
            eprintln!("toolmesh: invalid configuration: {first}");
        } else {
            eprintln!("toolmesh: {first}");
        }
    }
    for cause in causes {
        eprintln!("  caused by: {cause}");
    }
    ExitCode::from(if usage { 2 } else { 1 })
}
