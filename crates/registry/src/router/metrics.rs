//! The router's call metrics, with label values built once per instance rather than on
//! every attempt (every tool call passes here).

use std::sync::Arc;

use metrics::SharedString;
use toolmesh_core::{CallError, CallToolResult};

/// `service` and `instance` labels of one call target.
#[derive(Debug, Clone)]
pub(crate) struct CallLabels {
    service: SharedString,
    instance: SharedString,
}

impl CallLabels {
    pub(crate) fn new(service: &str, instance: &str) -> Self {
        Self {
            service: SharedString::from_shared(Arc::from(service)),
            instance: SharedString::from_shared(Arc::from(instance)),
        }
    }

    /// Counts one attempt in `toolmesh_calls_total`.
    pub(crate) fn count(&self, tool: &str, out: &Result<CallToolResult, CallError>) {
        metrics::counter!(
            "toolmesh_calls_total",
            "service" => self.service.clone(),
            "instance" => self.instance.clone(),
            "tool" => tool.to_owned(),
            "outcome" => outcome(out)
        )
        .increment(1);
    }

    /// The `toolmesh_call_duration_seconds` histogram of this target.
    pub(crate) fn duration(&self) -> metrics::Histogram {
        metrics::histogram!(
            "toolmesh_call_duration_seconds",
            "service" => self.service.clone(),
            "instance" => self.instance.clone()
        )
    }
}

/// The `outcome` label: `ok`, `tool_error`, or the error kind.
fn outcome(out: &Result<CallToolResult, CallError>) -> &'static str {
    match out {
        Ok(r) if r.is_error == Some(true) => "tool_error",
        Ok(_) => "ok",
        Err(e) => e.kind().as_str(),
    }
}
