//! Workflows over real fixture MCP servers (every tool step rides the router) and, for
//! agent steps, the testkit's scripted OpenAI-compatible server over real HTTP.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use toolmesh_agent::{
    Agent, Llm, LlmEndpoint,
    workflow::{Step, StepStatus, Workflow, WorkflowError, WorkflowSpec, WorkflowTool},
};
use toolmesh_core::{CallContext, InstanceId, Invoker, ServerId, ToolCall, ToolName};
use toolmesh_registry::{InstanceSpec, Registry, RegistryOptions, ServiceSpec};
use toolmesh_testkit::{FixtureOptions, FixtureServer, Reply, ScriptedCall, ScriptedLlm};
use toolmesh_transport::Endpoint;

/// A service `name` over one fixture server, health checks off.
fn service(name: &str, server: &FixtureServer) -> ServiceSpec {
    let mut spec = ServiceSpec::single(ServerId::new(name), Endpoint::url(server.http_url()));
    spec.instances = vec![InstanceSpec::new(
        InstanceId::new(format!("{name}-1")),
        Endpoint::url(server.http_url()),
    )];
    spec.instance_config.health_check.enabled = false;
    spec
}

async fn mesh(server: &FixtureServer) -> anyhow::Result<Registry> {
    Ok(Registry::from_specs(vec![service("fx", server)], RegistryOptions::default()).await?)
}

fn ctx() -> CallContext {
    CallContext::with_timeout(Duration::from_secs(30))
}

/// A workflow from YAML-shaped JSON.
fn spec(value: Value) -> WorkflowSpec {
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn a_failing_tool_falls_back_to_the_next() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new().instance_id("one")).await?;
    let registry = mesh(&server).await?;
    let workflow = Workflow::builder("fallback", registry.clone())
        .step(
            Step::tool("ask", "fx__fail")
                .arguments(json!({"reason": "primary is out", "message": "{{ input.q }}"}))
                .fallback_tools(["fx__echo"]),
        )
        .build()?;
    let result = workflow.run(json!({"q": "hello"}), &ctx()).await?;
    let step = result.step("ask").unwrap();
    assert_eq!(step.status, StepStatus::Ok, "{step:?}");
    assert_eq!(step.tool.as_deref(), Some("fx__echo"));
    assert_eq!(step.fallbacks_tried.len(), 1);
    assert_eq!(step.fallbacks_tried[0].tool, "fx__fail");
    assert!(step.fallbacks_tried[0].error.contains("primary is out"));
    // The router's metadata of the call that answered.
    assert_eq!(step.instance.as_deref(), Some("fx-1"));
    assert_eq!(step.attempts, 1);
    assert_eq!(result.output["message"], "hello");
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_routing_failure_also_falls_back() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    // `flaky` with p = 1 answers a JSON-RPC error: a CallError, not an isError result.
    let workflow = Workflow::builder("fallback", registry.clone())
        .spec(spec(json!({"steps": [{
            "id": "ask", "tool": "fx__flaky", "arguments": {"p": 1.0, "message": "saved"},
            "fallback_tools": ["fx__fail", "fx__echo"],
        }]})))
        .build()?;
    let result = workflow.run(json!({}), &ctx()).await?;
    let step = &result.steps[0];
    assert_eq!(step.tool.as_deref(), Some("fx__echo"));
    let tried: Vec<&str> = step
        .fallbacks_tried
        .iter()
        .map(|f| f.tool.as_str())
        .collect();
    assert_eq!(tried, ["fx__flaky", "fx__fail"]);
    assert!(
        step.fallbacks_tried[0].error.contains("flaky failure"),
        "{step:?}"
    );
    assert_eq!(step.text, "saved");
    registry.shutdown().await;
    Ok(())
}

/// The fixture's own record of when a `sleep` call ran, in Unix microseconds.
fn span(output: &Value) -> (u64, u64) {
    (
        output["started_us"].as_u64().unwrap(),
        output["ended_us"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_parallel_group_runs_its_steps_concurrently() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    let sleep = |id: &str| Step::tool(id, "fx__sleep").arguments(json!({"ms": 300}));
    let workflow = Workflow::builder("parallel", registry.clone())
        .step(Step::parallel("both", [sleep("a"), sleep("b")]))
        // Written one after the other: these two run in sequence.
        .step(sleep("c"))
        .step(sleep("d"))
        .build()?;
    let result = workflow.run(json!({}), &ctx()).await?;
    let (a, b) = (
        span(&result.step("a").unwrap().output),
        span(&result.step("b").unwrap().output),
    );
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "a {a:?} and b {b:?} did not overlap"
    );
    let (c, d) = (
        span(&result.step("c").unwrap().output),
        span(&result.step("d").unwrap().output),
    );
    assert!(d.0 >= c.1, "d {d:?} started before c {c:?} ended");
    assert!(c.0 >= a.1.max(b.1), "c started before the group ended");
    // The group's output maps its steps to theirs; its steps say where they belong.
    let group = result.step("both").unwrap();
    assert_eq!(group.output["a"]["ms"], 300);
    assert_eq!(result.step("a").unwrap().group.as_deref(), Some("both"));
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn steps_with_needs_run_as_soon_as_their_dependencies_are_done() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    let workflow = Workflow::builder("dag", registry.clone())
        .spec(spec(json!({"steps": [
            {"id": "slow", "tool": "fx__sleep", "arguments": {"ms": 300}},
            {"id": "quick", "tool": "fx__sleep", "arguments": {"ms": 300}, "needs": []},
            {"id": "after", "tool": "fx__echo", "arguments": {"message": "{{ steps.slow.output.ms + steps.quick.output.ms }} ms"}},
        ]})))
        .build()?;
    let result = workflow.run(json!({}), &ctx()).await?;
    let (slow, quick) = (span(&result.steps[0].output), span(&result.steps[1].output));
    assert!(slow.0 < quick.1 && quick.0 < slow.1, "{slow:?} {quick:?}");
    assert_eq!(result.output["message"], "600 ms");
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_false_when_skips_the_step_and_dependents_see_it() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    let workflow = Workflow::builder("when", registry.clone())
        .step(Step::tool("maybe", "fx__counter").when("input.count and input.times > 1"))
        .step(
            Step::tool("report", "fx__echo")
                .arguments(json!({"message": "maybe was {{ steps.maybe.status }}"})),
        )
        .step(Step::parallel("group", [Step::tool("inner", "fx__counter")]).when("input.count"))
        .build()?;
    let result = workflow.run(json!({"count": false}), &ctx()).await?;
    let maybe = result.step("maybe").unwrap();
    assert_eq!(maybe.status, StepStatus::Skipped);
    assert!(maybe.error.as_deref().unwrap().contains("is false"));
    assert_eq!(result.step("report").unwrap().text, "maybe was skipped");
    // A skipped group skips its steps.
    assert_eq!(result.step("group").unwrap().status, StepStatus::Skipped);
    let inner = result.step("inner").unwrap();
    assert_eq!(inner.status, StepStatus::Skipped);
    assert!(inner.error.as_deref().unwrap().contains("group `group`"));
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn templates_pass_earlier_outputs_into_later_steps() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    let workflow = Workflow::builder("templating", registry.clone())
        .step(Step::tool("sum", "fx__add").arguments(json!({"a": "{{ input.a }}", "b": 2})))
        // A lone `{{ expression }}` keeps its JSON type: `sum` is a number here.
        .step(Step::tool("twice", "fx__add").arguments(json!({
            "a": "{{ steps.sum.output.sum }}", "b": "{{ steps.sum.output.sum }}"
        })))
        .step(Step::tool("say", "fx__echo").arguments(json!({
            "message": "{{ input.who | upper }} got {{ steps.twice.text }}"
        })))
        .output(json!({"total": "{{ steps.twice.output.sum }}", "said": "{{ steps.say.text }}"}))
        .build()?;
    let result = workflow.run(json!({"a": 40, "who": "ada"}), &ctx()).await?;
    assert_eq!(result.output, json!({"total": 84.0, "said": "ADA got 84"}));
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_failed_step_fails_the_run_and_says_what_did_not_run() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    let workflow = Workflow::builder("failing", registry.clone())
        .step(Step::tool("first", "fx__echo").arguments(json!({"message": "ok"})))
        .step(Step::tool("broken", "fx__fail").arguments(json!({"reason": "no luck"})))
        .step(Step::tool("never", "fx__echo").arguments(json!({"message": "x"})))
        .build()?;
    let error = workflow.run(json!({}), &ctx()).await.unwrap_err();
    assert!(
        error.to_string().starts_with(
            "step `broken` failed: fx__fail: the tool answered with an error: no luck"
        ),
        "{error}"
    );
    let result = error.result().unwrap();
    assert_eq!(result.step("first").unwrap().status, StepStatus::Ok);
    assert_eq!(result.step("broken").unwrap().status, StepStatus::Failed);
    let never = result.step("never").unwrap();
    assert_eq!(never.status, StepStatus::Skipped);
    assert_eq!(
        never.error.as_deref(),
        Some("not run: step `broken` failed")
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_step_timeout_ends_the_step() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    let workflow = Workflow::builder("timeout", registry.clone())
        .spec(spec(json!({"steps": [
            {"id": "slow", "tool": "fx__sleep", "arguments": {"ms": 60_000}, "timeout": "200ms"},
        ]})))
        .build()?;
    let error = workflow.run(json!({}), &ctx()).await.unwrap_err();
    assert!(
        matches!(error, WorkflowError::Step { ref step, .. } if step == "slow"),
        "{error}"
    );
    assert!(error.to_string().contains("within"), "{error}");
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn cancelling_the_context_stops_the_run() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    let workflow = Workflow::builder("cancel", registry.clone())
        .step(Step::tool("slow", "fx__sleep").arguments(json!({"ms": 60_000})))
        .build()?;
    let token = CancellationToken::new();
    let ctx = ctx().cancel_with(token.clone());
    let run = tokio::spawn({
        let workflow = workflow.clone();
        async move { workflow.run(json!({}), &ctx).await }
    });
    token.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(20), run).await??;
    assert!(
        matches!(outcome, Err(WorkflowError::Cancelled { .. })),
        "{outcome:?}"
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn unknown_tools_and_agents_are_refused_at_build_with_the_closest_names() -> anyhow::Result<()>
{
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    let error = Workflow::builder("typo", registry.clone())
        .step(Step::tool("a", "fx__ehco"))
        .build()
        .unwrap_err();
    assert!(
        error.to_string().starts_with(
            "steps[0].tool: no tool named `fx__ehco` in the catalog; did you mean fx__echo"
        ),
        "{error}"
    );
    let error = Workflow::builder("typo", registry.clone())
        .step(Step::agent("a", "writer", "hi"))
        .build()
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("steps[0].agent: no agent named `writer`"),
        "{error}"
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_agent_step_runs_its_agent_on_the_rendered_task() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    let scripted = ScriptedLlm::start([
        Reply::tool_call(ScriptedCall::new("fx__echo", json!({"message": "checked"}))),
        Reply::text("MCP is a protocol for tools."),
    ])
    .await?;
    let llm = Llm::new([LlmEndpoint::new(
        scripted.base_url(),
        Some("sk-test".into()),
    )])?
    .with_model("scripted");
    let writer = Agent::builder(llm)
        .name("writer")
        .registry(registry.clone())
        .build()?;
    let workflow = Workflow::builder("research", registry.clone())
        .step(
            Step::tool("find", "fx__echo")
                .arguments(json!({"message": "notes on {{ input.topic }}"})),
        )
        .step(Step::agent(
            "summary",
            "writer",
            "Summarize: {{ steps.find.text }}",
        ))
        .agent("writer", writer)
        .build()?;
    let result = workflow.run(json!({"topic": "MCP"}), &ctx()).await?;
    let summary = result.step("summary").unwrap();
    assert_eq!(summary.status, StepStatus::Ok, "{summary:?}");
    assert_eq!(summary.agent.as_deref(), Some("writer"));
    assert_eq!(summary.attempts, 1, "one tool call by the agent");
    assert_eq!(result.output, "MCP is a protocol for tools.");
    let asked = &scripted.requests()[0]["messages"];
    assert!(
        asked
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["content"] == "Summarize: notes on MCP"),
        "{asked}"
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_workflow_served_as_a_tool_answers_with_output_and_steps() -> anyhow::Result<()> {
    let server = FixtureServer::start(FixtureOptions::new()).await?;
    let registry = mesh(&server).await?;
    let workflow = Workflow::builder("tool", registry.clone())
        .description("Echoes a topic")
        .step(Step::tool("say", "fx__echo").arguments(json!({"message": "{{ input.topic }}"})))
        .step(Step::tool("oops", "fx__fail").when("input.fail"))
        .output(json!("{{ steps.say.text }}"))
        .build()?;
    let tool = WorkflowTool::new(workflow);
    let definition = tool.definition("research", None);
    assert_eq!(definition.description.as_deref(), Some("Echoes a topic"));
    assert_eq!(definition.input_schema["type"], "object");
    let call = |args: Value| {
        ToolCall::new(ToolName::new("wf", "research").unwrap())
            .with_arguments(args)
            .unwrap()
    };
    let answer = tool.invoke(call(json!({"topic": "mcp"})), &ctx()).await?;
    assert_ne!(answer.is_error, Some(true));
    let structured = answer.structured_content.unwrap();
    assert_eq!(structured["output"], "mcp");
    assert_eq!(structured["steps"][0]["instance"], "fx-1");
    assert!(structured["steps"][0]["latency_ms"].is_number());
    let failed = tool
        .invoke(call(json!({"topic": "mcp", "fail": true})), &ctx())
        .await?;
    assert_eq!(failed.is_error, Some(true));
    let text = toolmesh_core::result_text(&failed);
    assert!(text.contains("step `oops` failed"), "{text}");
    registry.shutdown().await;
    Ok(())
}
