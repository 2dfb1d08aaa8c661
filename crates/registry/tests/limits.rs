//! Rate limits by caller and tool, on an in-process service under a paused clock: a
//! budget trips at its rate, says when to retry, and refills as time passes.

use std::{sync::Arc, time::Duration};

use toolmesh_core::{
    CallContext, CallError, CallToolResult, ErrorKind, Invoker, ServerId, Tool, ToolCall,
};
use toolmesh_registry::{
    NativeBackend, RateLimits, RateRule, Registry, RegistryOptions, ServiceSpec,
};

/// Answers every call.
struct Answers;

impl Invoker for Answers {
    async fn invoke(&self, _: ToolCall, _: &CallContext) -> Result<CallToolResult, CallError> {
        Ok(CallToolResult::success(Vec::new()))
    }
}

async fn registry(rules: &[RateRule]) -> anyhow::Result<Registry> {
    let schema = Arc::new(serde_json::Map::new());
    let tool = |name: &'static str| Tool::new(name, "a tool", schema.clone());
    let spec = ServiceSpec::native(
        ServerId::new("svc"),
        NativeBackend {
            tools: vec![tool("read"), tool("write")],
            invoker: Arc::new(Answers),
            prefer: true,
        },
    );
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    registry.set_rate_limits(Some(RateLimits::new(rules)?));
    Ok(registry)
}

fn rule(principal: Option<&str>, tool: Option<&str>, per_second: u32) -> RateRule {
    RateRule {
        principal: principal.map(str::to_owned),
        tool: tool.map(str::to_owned),
        per_second,
        burst: None,
    }
}

async fn call(registry: &Registry, tool: &str, who: &str) -> Result<(), CallError> {
    let ctx = CallContext::with_timeout(Duration::from_secs(5)).principal(who);
    registry.call(tool, None, &ctx).await.map(drop)
}

#[tokio::test(start_paused = true)]
async fn each_caller_has_its_own_budget_and_it_refills() -> anyhow::Result<()> {
    let registry = registry(&[rule(Some("*"), None, 2)]).await?;
    call(&registry, "svc__read", "alice").await?;
    call(&registry, "svc__write", "alice").await?;
    let limited = call(&registry, "svc__read", "alice").await.unwrap_err();
    assert_eq!(limited.kind(), ErrorKind::RateLimited);
    let CallError::RateLimited { retry_in, .. } = limited else {
        anyhow::bail!("not a rate limit: {limited}");
    };
    assert!(retry_in > Duration::ZERO && retry_in <= Duration::from_millis(500));
    call(&registry, "svc__read", "bob").await?; // a budget of its own
    tokio::time::advance(retry_in).await;
    call(&registry, "svc__read", "alice").await?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_tool_budget_is_shared_and_a_pair_budget_is_per_caller() -> anyhow::Result<()> {
    let registry = registry(&[
        rule(None, Some("*write"), 1),
        rule(Some("alice"), Some("svc__read"), 1),
    ])
    .await?;
    call(&registry, "svc__write", "alice").await?;
    let shared = call(&registry, "svc__write", "bob").await.unwrap_err();
    assert!(shared.to_string().contains("tool=*write"), "{shared}");
    call(&registry, "svc__read", "alice").await?;
    assert!(call(&registry, "svc__read", "alice").await.is_err());
    call(&registry, "svc__read", "bob").await?; // the pair rule names alice only
    call(&registry, "svc__read", "bob").await?;
    Ok(())
}

#[test]
fn a_rule_without_a_rate_is_refused() {
    let error = RateLimits::new(&[rule(None, None, 0)]).unwrap_err();
    assert_eq!(error.index, 0);
}

/// A tool that answers in a given time and fails when told to.
struct Paced;

impl Invoker for Paced {
    async fn invoke(&self, call: ToolCall, _: &CallContext) -> Result<CallToolResult, CallError> {
        let args = call.arguments.unwrap_or_default();
        let ms = args
            .get("ms")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(10);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        if args.get("fail").is_some() {
            return Err(CallError::Closed {
                target: "paced".into(),
                phase: toolmesh_core::Phase::AfterSend,
                reason: "told to".into(),
            });
        }
        Ok(CallToolResult::success(Vec::new()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_far_slower_than_its_baseline_is_an_anomaly_event() -> anyhow::Result<()> {
    let schema = Arc::new(serde_json::Map::new());
    let spec = ServiceSpec::native(
        ServerId::new("svc"),
        NativeBackend {
            tools: vec![Tool::new("paced", "a tool", schema)],
            invoker: Arc::new(Paced),
            prefer: true,
        },
    );
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let mut events = registry.subscribe();
    let ctx = CallContext::with_timeout(Duration::from_secs(30));
    let call =
        |args: serde_json::Value| registry.call("svc__paced", args.as_object().cloned(), &ctx);
    for i in 0..60 {
        call(serde_json::json!({"ms": 10 + i % 3})).await?;
    }
    assert!(
        registry.anomalies().is_empty(),
        "steady calls are no anomaly"
    );
    call(serde_json::json!({"ms": 500})).await?;
    let anomalies = registry.anomalies();
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert_eq!(
        (anomalies[0].tool.as_str(), anomalies[0].kind),
        ("svc__paced", "latency")
    );
    let mut seen = false;
    while let Ok(event) = events.try_recv() {
        seen |= matches!(
            event,
            toolmesh_registry::MeshEvent::Anomaly {
                kind: "latency",
                ..
            }
        );
    }
    assert!(seen, "an Anomaly event was sent");
    Ok(())
}
