//! A native implementation and an MCP instance of the same service: native first when
//! preferred, MCP when the native fails or is disabled.

mod common;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use common::*;
use toolmesh_core::{CallContext, CallError, CallToolResult, Invoker, ServerId, Tool, ToolCall};
use toolmesh_registry::{NATIVE_INSTANCE, NativeBackend, Strategy};
use toolmesh_testkit::FixtureOptions;

/// An in-process `echo`, which can be told to fail.
struct NativeEcho {
    broken: AtomicBool,
}

impl Invoker for NativeEcho {
    async fn invoke(
        &self,
        call: ToolCall,
        _ctx: &CallContext,
    ) -> Result<CallToolResult, CallError> {
        if self.broken.load(Ordering::Relaxed) {
            return Err(CallError::Protocol {
                target: "native echo".into(),
                reason: "out of order".into(),
            });
        }
        let message = call
            .arguments
            .and_then(|a| a.get("message").cloned())
            .unwrap_or_default();
        let mut result = CallToolResult::success(vec![]);
        result.structured_content =
            Some(serde_json::json!({ "instance": "in-process", "message": message }));
        Ok(result)
    }
}

fn echo_tool() -> Tool {
    let schema =
        serde_json::json!({"type": "object", "properties": {"message": {"type": "string"}}});
    let mut tool = Tool::new(
        "echo",
        "Echo in-process",
        Arc::new(schema.as_object().cloned().unwrap_or_default()),
    );
    tool.annotations = Some(
        toolmesh_core::ToolAnnotations::new()
            .read_only(true)
            .idempotent(true),
    );
    tool
}

#[tokio::test]
async fn native_is_preferred_and_mcp_takes_over_when_it_fails_or_is_disabled() -> anyhow::Result<()>
{
    let servers = fleet("mixed", 1, |_| FixtureOptions::new()).await?;
    let native = Arc::new(NativeEcho {
        broken: AtomicBool::new(false),
    });
    let mut spec = service("mixed", &servers, Strategy::RoundRobin);
    spec.native = Some(NativeBackend {
        tools: vec![echo_tool()],
        invoker: native.clone(),
        prefer: true,
    });
    let registry = registry(vec![spec]).await?;
    let ctx = ctx();
    let call = || {
        registry.call(
            "mixed__echo",
            args(serde_json::json!({"message": "n"})),
            &ctx,
        )
    };

    let routed = call().await?;
    assert_eq!(
        routed.meta.instance.as_ref().map(|i| i.as_str()),
        Some(NATIVE_INSTANCE)
    );
    assert_eq!(answered_by(&routed), "in-process");

    native.broken.store(true, Ordering::Relaxed);
    let routed = call().await?;
    assert_eq!(
        answered_by(&routed),
        "mixed-1",
        "the MCP instance answers when native fails"
    );
    assert_eq!(routed.meta.failovers, 1);
    assert_eq!(
        routed.meta.tried[0].instance.as_ref().map(|i| i.as_str()),
        Some(NATIVE_INSTANCE)
    );

    native.broken.store(false, Ordering::Relaxed);
    registry.set_native_enabled(&ServerId::new("mixed"), false)?;
    let routed = call().await?;
    assert_eq!(
        answered_by(&routed),
        "mixed-1",
        "a disabled native is not used"
    );
    assert_eq!(routed.meta.attempts, 1);

    // Tools the native does not implement always go to MCP.
    let sum = registry
        .call(
            "mixed__add",
            args(serde_json::json!({"a": 1, "b": 2})),
            &ctx,
        )
        .await?;
    assert_eq!(answered_by(&sum), "mixed-1");
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_native_only_service_serves_its_tools() -> anyhow::Result<()> {
    let native = Arc::new(NativeEcho {
        broken: AtomicBool::new(false),
    });
    let spec = toolmesh_registry::ServiceSpec::native(
        ServerId::new("local"),
        NativeBackend {
            tools: vec![echo_tool()],
            invoker: native,
            prefer: false,
        },
    );
    let registry = registry(vec![spec]).await?;
    assert_eq!(registry.catalog().len(), 1);
    let routed = registry
        .call(
            "local__echo",
            args(serde_json::json!({"message": "x"})),
            &ctx(),
        )
        .await?;
    assert_eq!(answered_by(&routed), "in-process");
    registry.shutdown().await;
    Ok(())
}
