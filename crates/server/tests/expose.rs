//! Agents exposed as MCP servers, called by a real MCP client over streamable HTTP: the
//! answer with structured output, progress per step, cancellation reaching the model
//! loop, and the depth guard for agents calling each other (in process and over MCP).

// Logging is deprecated by SEP-2577 but still relayed.
#![allow(deprecated)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use toolmesh_agent::{Agent, ExposeOptions, Llm, LlmEndpoint, ToolSelection};
use toolmesh_core::{CallContext, Relay, ServerId};
use toolmesh_registry::{NativeBackend, Registry, RegistryOptions, ServiceSpec};
use toolmesh_server::{AgentServer, ExposeAsMcpServer, HttpOptions};
use toolmesh_testkit::{Reply, ScriptedCall, ScriptedLlm};
use toolmesh_tools::Toolbox;
use toolmesh_transport::{Endpoint, Session};

/// Sets the session's log level, then has `solve` work out `expression` (the model
/// scripted to use the calculator, then answer `answer`); what the call relayed.
async fn solve_at_level(
    session: &Session,
    scripted: &ScriptedLlm,
    level: LoggingLevel,
    expression: &str,
    answer: &str,
) -> anyhow::Result<(Arc<Seen>, toolmesh_core::CallToolResult)> {
    session
        .set_log_level(level, &CallContext::with_timeout(Duration::from_secs(10)))
        .await?;
    scripted.push(Reply::tool_call(ScriptedCall::new(
        "calculator",
        json!({ "expression": expression }),
    )));
    scripted.push(Reply::text(answer));
    let seen = Arc::new(Seen::default());
    let ctx = CallContext::with_timeout(Duration::from_secs(20)).relay_to(seen.clone());
    let result = session
        .call_tool(
            "solve",
            json!({ "task": format!("{expression}?") })
                .as_object()
                .cloned(),
            &ctx,
        )
        .await?;
    Ok((seen, result))
}

/// The native tools as one unprefixed service.
async fn native_registry() -> anyhow::Result<Registry> {
    let toolbox = Toolbox::default_tools(&Default::default())?;
    let mut spec = ServiceSpec::native(ServerId::new("native"), NativeBackend::toolbox(toolbox));
    spec.prefix = false;
    Ok(Registry::from_specs(vec![spec], RegistryOptions::default()).await?)
}

fn llm(scripted: &ScriptedLlm) -> anyhow::Result<Llm> {
    Ok(Llm::new([LlmEndpoint::new(scripted.base_url(), None)])?.with_model("scripted"))
}

async fn mathematician(scripted: &ScriptedLlm) -> anyhow::Result<AgentServer> {
    let agent = Agent::builder(llm(scripted)?)
        .name("mathematician")
        .registry(native_registry().await?)
        .instructions("Solve arithmetic with the calculator; answer with the number.")
        .tools(ToolSelection::globs(["calculator"])?)
        .build()?;
    Ok(agent
        .expose_as_mcp_server(
            ExposeOptions::new().capability("solve", "Solve an arithmetic word problem."),
        )
        .await?)
}

/// Serves `server` on a free loopback port; returns the MCP URL.
async fn serve(server: &AgentServer) -> anyhow::Result<(String, CancellationToken)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let router = server.router(HttpOptions::default());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    });
    Ok((url, shutdown))
}

/// What the client receives about its call.
#[derive(Default)]
struct Seen {
    progress: Mutex<Vec<ProgressNotificationParam>>,
    logs: Mutex<Vec<LoggingMessageNotificationParam>>,
}

/// Whether `seen` gets a log line naming the calculator within `within`.
async fn logged_within(seen: &Seen, within: Duration) -> bool {
    let logged = || {
        seen.logs
            .lock()
            .is_ok_and(|logs| logs.iter().any(|l| l.data["tool"] == "calculator"))
    };
    tokio::time::timeout(within, async {
        while !logged() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .is_ok()
}

impl Relay for Seen {
    fn progress(&self, progress: ProgressNotificationParam) {
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(progress);
    }
    fn log(&self, message: LoggingMessageNotificationParam) {
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }
}

#[tokio::test]
async fn an_exposed_agent_answers_a_client_with_progress_and_structured_output()
-> anyhow::Result<()> {
    let scripted = ScriptedLlm::start([
        Reply::tool_call(ScriptedCall::new(
            "calculator",
            json!({"expression": "6 * 7"}),
        )),
        Reply::text("42"),
    ])
    .await?;
    let server = mathematician(&scripted).await?;
    let (url, shutdown) = serve(&server).await?;
    let session = Session::connect(&Endpoint::url(url)).await?;

    let tools = session
        .list_tools(&CallContext::with_timeout(Duration::from_secs(10)))
        .await?;
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].name, "solve");
    assert!(
        tools[0].output_schema.is_some(),
        "structured output declared"
    );

    let seen = Arc::new(Seen::default());
    let ctx = CallContext::with_timeout(Duration::from_secs(20)).relay_to(seen.clone());
    let result = session
        .call_tool(
            "solve",
            json!({"task": "What is six times seven?"})
                .as_object()
                .cloned(),
            &ctx,
        )
        .await?;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let structured = result.structured_content.clone().unwrap_or_default();
    assert_eq!(structured["answer"], "42");
    assert_eq!(structured["steps"][0]["tool"], "calculator");
    assert!(
        structured["steps"][0]["output"]
            .as_str()
            .is_some_and(|o| o.contains("42")),
        "{structured}"
    );
    // One notification per model call, in order, out of max_steps.
    let progress = seen.progress.lock().unwrap().clone();
    let steps: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert_eq!(steps, vec![1.0], "{progress:?}");
    assert_eq!(progress[0].total, Some(10.0));
    assert!(
        progress[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("calculator"))
    );
    // Logs come on the session's stream, not the call's: one may land just after the
    // answer (the relay still takes it for a moment).
    assert!(
        logged_within(&seen, Duration::from_secs(5)).await,
        "a log line per tool call"
    );
    // A client that asks for warnings and above gets no info lines, still progress.
    let (quiet, result) =
        solve_at_level(&session, &scripted, LoggingLevel::Warning, "1 + 2", "3").await?;
    assert_eq!(result.structured_content.unwrap_or_default()["answer"], "3");
    assert_eq!(quiet.progress.lock().map(|p| p.len()).unwrap_or(0), 1);
    // Back at info, a third call's log arrives on the same stream after any the quiet
    // call could have sent: by then the quiet call must have seen none.
    let (loud, _) = solve_at_level(&session, &scripted, LoggingLevel::Info, "2 + 2", "4").await?;
    assert!(logged_within(&loud, Duration::from_secs(5)).await);
    assert!(
        quiet.logs.lock().map(|l| l.is_empty()).unwrap_or(false),
        "logging/setLevel honoured"
    );

    // The task reached the model with the capability's description.
    let first = scripted.requests()[0].to_string();
    assert!(first.contains("What is six times seven?") && first.contains("[solve]"));

    // A call without a task is refused at the edge, before any model call.
    let bad = session
        .call_tool(
            "solve",
            json!({}).as_object().cloned(),
            &CallContext::with_timeout(Duration::from_secs(10)),
        )
        .await
        .expect_err("`task` is required");
    assert!(bad.to_string().contains("task"), "{bad}");
    assert_eq!(scripted.request_count(), 6);
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn cancelling_the_client_request_stops_the_agent_run() -> anyhow::Result<()> {
    let scripted = ScriptedLlm::start([
        Reply::tool_call(ScriptedCall::new(
            "calculator",
            json!({"expression": "1 + 1"}),
        )),
        // The second model call hangs until the run is cancelled.
        Reply::Delay(Duration::from_secs(60), Box::new(Reply::text("too late"))),
        Reply::Repeat(Box::new(Reply::text("never asked"))),
    ])
    .await?;
    let server = mathematician(&scripted).await?;
    let (url, shutdown) = serve(&server).await?;
    let session = Session::connect(&Endpoint::url(url)).await?;

    let give_up = CancellationToken::new();
    let call = {
        let ctx = CallContext::with_timeout(Duration::from_secs(50)).cancel_with(give_up.clone());
        let session = session.clone();
        tokio::spawn(async move {
            session
                .call_tool(
                    "solve",
                    json!({"task": "1 + 1, slowly"}).as_object().cloned(),
                    &ctx,
                )
                .await
        })
    };
    // The run is waiting on its second model call when the client gives up.
    scripted
        .wait_for_requests(2, Duration::from_secs(20))
        .await?;
    assert_eq!(server.catalog_server().in_flight(), 1);
    give_up.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(10), call).await??;
    assert!(outcome.is_err(), "{outcome:?}");
    assert!(
        server.catalog_server().drain(Duration::from_secs(10)).await,
        "the run did not stop"
    );
    assert_eq!(
        scripted.request_count(),
        2,
        "no model call after the cancel"
    );
    shutdown.cancel();
    Ok(())
}

/// A tool message the model was sent, by content.
fn tool_messages(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "tool")
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn agents_calling_each_other_stop_at_max_depth() -> anyhow::Result<()> {
    // Each agent's model calls the other twice down the chain, then answers.
    let ask = |other: &str| Reply::tool_call(ScriptedCall::new(other, json!({"task": "go on"})));
    let alice_llm = ScriptedLlm::start([
        ask("bob__ask"),
        ask("bob__ask"),
        Reply::text("alice 2 done"),
        Reply::text("alice 1 done"),
    ])
    .await?;
    let bob_llm = ScriptedLlm::start([
        ask("alice__ask"),
        ask("alice__ask"),
        Reply::text("bob 2 done"),
        Reply::text("bob 1 done"),
    ])
    .await?;
    let registry = Registry::new(RegistryOptions::default());
    let agent = |name: &str, scripted: &ScriptedLlm, other: &str| -> anyhow::Result<Agent> {
        Ok(Agent::builder(llm(scripted)?)
            .name(name)
            .registry(registry.clone())
            .tools(ToolSelection::globs([other])?)
            .build()?)
    };
    let alice = agent("alice", &alice_llm, "bob__ask")?;
    let bob = agent("bob", &bob_llm, "alice__ask")?;
    for a in [&alice, &bob] {
        registry
            .add_service(a.service(&ExposeOptions::new().capability("ask", "Ask me."))?)
            .await?;
    }

    // Client -> alice (0) -> bob (1) -> alice (2) -> bob (3) -> alice refused (4).
    let run = alice.run("start").await?;
    assert_eq!(run.answer, "alice 1 done");
    assert_eq!(alice_llm.request_count(), 4);
    let refused = tool_messages(&bob_llm.requests()[2]);
    assert!(
        refused
            .iter()
            .any(|m| m.contains("nested 4 levels deep") && m.contains("max_depth 4")),
        "{refused:?}"
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_depth_travels_over_mcp_and_is_refused_past_the_limit() -> anyhow::Result<()> {
    let scripted = ScriptedLlm::start([Reply::Repeat(Box::new(Reply::text("answered")))]).await?;
    let server = mathematician(&scripted).await?;
    let (url, shutdown) = serve(&server).await?;
    let session = Session::connect(&Endpoint::url(url)).await?;
    let call = |depth: u32| {
        let mut ctx = CallContext::with_timeout(Duration::from_secs(10));
        ctx.depth = depth;
        let session = session.clone();
        async move {
            session
                .call_tool("solve", json!({"task": "1 + 1"}).as_object().cloned(), &ctx)
                .await
        }
    };
    let nested = call(3).await?;
    assert_ne!(nested.is_error, Some(true), "{nested:?}");
    let too_deep = call(4).await?;
    assert_eq!(too_deep.is_error, Some(true));
    let text = serde_json::to_string(&too_deep.content)?;
    assert!(text.contains("max_depth 4"), "{text}");
    assert_eq!(
        scripted.request_count(),
        1,
        "the refused run asked no model"
    );
    shutdown.cancel();
    Ok(())
}
