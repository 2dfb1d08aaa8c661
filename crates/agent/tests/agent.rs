//! The agent against the testkit's scripted OpenAI-compatible server over real HTTP, with
//! tools from real fixture MCP servers: every tool call rides the router.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use toolmesh_agent::{
    Agent, AgentError, Limits, Llm, LlmEndpoint, LlmError, LlmRetry, ToolSelection,
};
use toolmesh_core::{InstanceId, ServerId};
use toolmesh_registry::{
    InstanceSpec, Registry, RegistryOptions, ServiceSpec, Strategy, ToolPolicy,
};
use toolmesh_testkit::{FixtureOptions, FixtureServer, Reply, ScriptedCall, ScriptedLlm};
use toolmesh_transport::Endpoint;

/// A service `fx` over `servers` (instance ids `fx-1..n`), health checks off.
fn service(servers: &[FixtureServer]) -> ServiceSpec {
    let mut spec = ServiceSpec::single(ServerId::new("fx"), Endpoint::url(servers[0].http_url()));
    spec.instances = servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut instance = InstanceSpec::new(
                InstanceId::new(format!("fx-{}", i + 1)),
                Endpoint::url(s.http_url()),
            );
            instance.priority = i as u32 + 1;
            instance
        })
        .collect();
    spec.strategy = Strategy::RoundRobin;
    spec.instance_config.health_check.enabled = false;
    spec
}

async fn mesh(servers: &[FixtureServer]) -> anyhow::Result<Registry> {
    Ok(Registry::from_specs(vec![service(servers)], RegistryOptions::default()).await?)
}

fn llm(scripted: &ScriptedLlm) -> anyhow::Result<Llm> {
    Ok(Llm::new([LlmEndpoint::new(
        scripted.base_url(),
        Some("sk-test".into()),
    )])?
    .with_model("scripted")
    .with_retry(fast_retry()))
}

fn fast_retry() -> LlmRetry {
    LlmRetry {
        max_attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

/// The `role: tool` messages of a request body, in order.
fn tool_messages(body: &serde_json::Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap_or_default().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_tool_call_is_routed_and_its_result_fed_back() -> anyhow::Result<()> {
    let servers = vec![FixtureServer::start(FixtureOptions::new()).await?];
    let registry = mesh(&servers).await?;
    let scripted = ScriptedLlm::start([
        Reply::ToolCalls(vec![ScriptedCall::new("fx__add", json!({"a": 2, "b": 40}))]),
        Reply::Text("The sum is 42.".into()),
    ])
    .await?;
    let agent = Agent::builder(llm(&scripted)?)
        .registry(registry.clone())
        .build()?;
    let run = agent.run("What is 2 + 40?").await?;
    assert_eq!(run.answer, "The sum is 42.");
    assert_eq!(run.steps.len(), 1);
    let step = &run.steps[0];
    assert_eq!(step.tool, "fx__add");
    assert!(!step.is_error, "{step:?}");
    assert_eq!(step.instance.as_deref(), Some("fx-1"));
    assert_eq!(run.model_calls, 2);
    assert!(run.usage.total_tokens > 0);
    // The second request carries the tool's answer under the model's call id.
    let requests = scripted.requests();
    let fed = tool_messages(&requests[1]);
    assert_eq!(fed.len(), 1);
    assert_eq!(fed[0].1, "42");
    assert!(
        requests[0]["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "fx__add"))
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn parallel_calls_run_together_and_are_answered_in_call_order() -> anyhow::Result<()> {
    let servers = vec![FixtureServer::start(FixtureOptions::new()).await?];
    let registry = mesh(&servers).await?;
    let scripted = ScriptedLlm::start([
        Reply::ToolCalls(vec![
            ScriptedCall::new("fx__sleep", json!({"ms": 300})),
            ScriptedCall::new("fx__echo", json!({"message": "second"})),
        ]),
        Reply::Text("done".into()),
    ])
    .await?;
    let agent = Agent::builder(llm(&scripted)?)
        .registry(registry.clone())
        .build()?;
    let run = agent.run("go").await?;
    assert_eq!(run.steps.len(), 2);
    let fed = tool_messages(&scripted.requests()[1]);
    assert_eq!(
        fed.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>(),
        ["slept 300ms", "second"]
    );
    assert_eq!(fed[0].0, run.steps[0].call_id);
    assert_eq!(fed[1].0, run.steps[1].call_id);
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn bad_calls_are_told_to_the_model_which_corrects_them() -> anyhow::Result<()> {
    let servers = vec![FixtureServer::start(FixtureOptions::new()).await?];
    let registry = mesh(&servers).await?;
    let scripted = ScriptedLlm::start([
        Reply::ToolCalls(vec![
            ScriptedCall::raw("fx__add", r#"{"a": 1, "b": "#),
            ScriptedCall::new("fx__ad", json!({"a": 1, "b": 2})),
            ScriptedCall::new("fx__sleep", json!({"ms": -5})),
        ]),
        Reply::ToolCalls(vec![ScriptedCall::new("fx__add", json!({"a": 1, "b": 2}))]),
        Reply::Text("3".into()),
    ])
    .await?;
    let agent = Agent::builder(llm(&scripted)?)
        .registry(registry.clone())
        .build()?;
    let run = agent.run("1 + 2?").await?;
    assert_eq!(run.answer, "3");
    assert!(
        run.steps[0].is_error && run.steps[0].output.contains("not valid JSON"),
        "{:?}",
        run.steps[0]
    );
    assert!(
        run.steps[1].is_error && run.steps[1].output.contains("did you mean fx__add"),
        "{:?}",
        run.steps[1]
    );
    let schema = &run.steps[2];
    assert!(
        schema.is_error && schema.output.contains("at `/ms`"),
        "{schema:?}"
    );
    assert_eq!(schema.attempts, 0, "refused before any instance was called");
    assert!(!run.steps[3].is_error);
    let fed = tool_messages(&scripted.requests()[1]);
    assert!(fed[0].1.contains("not valid JSON"));
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_rate_limit_is_waited_out_and_the_run_answers() -> anyhow::Result<()> {
    let scripted = ScriptedLlm::start([
        Reply::Status {
            code: 429,
            retry_after_secs: Some(1),
            message: "slow down".into(),
            error_type: Some("rate_limit_exceeded".into()),
        },
        Reply::Status {
            code: 503,
            retry_after_secs: None,
            message: "overloaded".into(),
            error_type: None,
        },
        Reply::Text("hello".into()),
    ])
    .await?;
    let agent = Agent::builder(llm(&scripted)?).build()?;
    let run = agent.run("hi").await?;
    assert_eq!(run.answer, "hello");
    assert_eq!(scripted.request_count(), 3);
    // Both failures were retried on the one endpoint (how long to wait: `llm` unit tests).
    assert_eq!(run.llm[0].attempts, 3);
    assert!(
        run.llm[0].tried[0].contains("HTTP 429: slow down"),
        "{:?}",
        run.llm[0]
    );
    assert!(
        run.llm[0].tried[1].contains("HTTP 503: overloaded"),
        "{:?}",
        run.llm[0]
    );
    Ok(())
}

#[tokio::test]
async fn refusals_fail_at_once_with_the_servers_message() -> anyhow::Result<()> {
    let scripted = ScriptedLlm::start([
        Reply::Status {
            code: 401,
            retry_after_secs: None,
            message: "Incorrect API key provided".into(),
            error_type: Some("invalid_api_key".into()),
        },
        Reply::Status {
            code: 429,
            retry_after_secs: None,
            message: "You exceeded your current quota".into(),
            error_type: Some("insufficient_quota".into()),
        },
        Reply::Text("never".into()),
    ])
    .await?;
    let agent = Agent::builder(llm(&scripted)?).build()?;
    let err = agent.run("hi").await.unwrap_err();
    assert!(
        matches!(err, AgentError::Llm(LlmError::Unauthorized { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
    let err = agent.run("hi").await.unwrap_err();
    assert!(
        err.to_string().contains("exceeded your current quota"),
        "{err}"
    );
    assert_eq!(scripted.request_count(), 2, "neither was retried");
    Ok(())
}

#[tokio::test]
async fn a_dead_endpoint_is_skipped_and_the_next_answers() -> anyhow::Result<()> {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?;
    let dead_url = format!("http://{}/v1", dead.local_addr()?);
    drop(dead);
    let scripted = ScriptedLlm::start([Reply::Repeat(Box::new(Reply::Text(
        "from the second".into(),
    )))])
    .await?;
    let llm = Llm::new([
        LlmEndpoint::new(dead_url.clone(), None),
        LlmEndpoint::new(scripted.base_url(), None),
    ])?
    .with_model("scripted")
    .with_retry(fast_retry());
    let agent = Agent::builder(llm).build()?;
    let first = agent.run("hi").await?;
    assert_eq!(first.answer, "from the second");
    // The run says how the model was reached, as a tool step says how a tool was.
    assert_eq!(first.llm[0].endpoint, scripted.base_url());
    assert_eq!(first.llm[0].attempts, 2);
    assert!(
        first.llm[0].tried[0].starts_with(&dead_url),
        "{:?}",
        first.llm[0]
    );
    for _ in 0..4 {
        assert_eq!(agent.run("hi").await?.answer, "from the second");
    }
    assert_eq!(scripted.request_count(), 5);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_llm_names_its_url() -> anyhow::Result<()> {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/v1", dead.local_addr()?);
    drop(dead);
    let llm = Llm::new([LlmEndpoint::new(url.clone(), None)])?
        .with_model("m")
        .with_retry(fast_retry());
    let err = Agent::builder(llm).build()?.run("hi").await.unwrap_err();
    assert!(
        matches!(err, AgentError::Llm(LlmError::Unreachable { .. })),
        "{err}"
    );
    assert!(err.to_string().contains(&url), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_replica_killed_during_the_call_fails_over_and_the_step_shows_it() -> anyhow::Result<()> {
    let mut servers = vec![
        FixtureServer::start(FixtureOptions::new().instance_id("fx-1")).await?,
        FixtureServer::start(FixtureOptions::new().instance_id("fx-2")).await?,
    ];
    let registry = mesh(&servers).await?;
    let scripted = ScriptedLlm::start([
        Reply::ToolCalls(vec![ScriptedCall::new("fx__sleep", json!({"ms": 3000}))]),
        Reply::Text("survived".into()),
    ])
    .await?;
    let agent = Agent::builder(llm(&scripted)?)
        .registry(registry.clone())
        .build()?;
    let run = tokio::spawn(async move { agent.run("sleep").await });
    // Kill the preferred replica while the model's call is running on it.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !registry
        .instance_reports()
        .iter()
        .any(|r| r.instance.as_str() == "fx-1" && r.load.outstanding == 1)
    {
        assert!(Instant::now() < deadline, "the call never reached fx-1");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    servers[0].kill().await;
    let run = run.await??;
    assert_eq!(run.answer, "survived");
    let step = &run.steps[0];
    assert!(!step.is_error, "{step:?}");
    assert_eq!(step.instance.as_deref(), Some("fx-2"));
    assert_eq!((step.attempts, step.failovers), (2, 1));
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_side_effecting_call_cut_after_send_is_not_repeated() -> anyhow::Result<()> {
    let servers = vec![
        FixtureServer::start(FixtureOptions::new().latency_ms(2000)).await?,
        FixtureServer::start(FixtureOptions::new()).await?,
    ];
    let mut spec = service(&servers);
    spec.tools.insert(
        "counter".into(),
        ToolPolicy {
            timeout: Some(Duration::from_millis(300)),
            ..ToolPolicy::default()
        },
    );
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let scripted = ScriptedLlm::start([
        Reply::ToolCalls(vec![ScriptedCall::new("fx__counter", json!({}))]),
        Reply::Text("not sure it ran".into()),
    ])
    .await?;
    let agent = Agent::builder(llm(&scripted)?)
        .registry(registry.clone())
        .build()?;
    let run = agent.run("count").await?;
    let step = &run.steps[0];
    assert!(step.is_error, "{step:?}");
    assert!(step.output.contains("may have run"), "{}", step.output);
    // The second replica never saw the call: its first count is 1.
    let direct = Registry::from_specs(
        vec![{
            let mut s = service(&servers[1..]);
            s.id = ServerId::new("second");
            s.namespace = "second".into();
            s
        }],
        RegistryOptions::default(),
    )
    .await?;
    let count = direct
        .call(
            "second__counter",
            None,
            &toolmesh_core::CallContext::default(),
        )
        .await?;
    assert_eq!(
        count.result.structured_content.unwrap_or_default()["count"],
        1
    );
    direct.shutdown().await;
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_step_limit_stops_a_model_that_never_stops() -> anyhow::Result<()> {
    let servers = vec![FixtureServer::start(FixtureOptions::new()).await?];
    let registry = mesh(&servers).await?;
    let scripted = ScriptedLlm::start([Reply::Repeat(Box::new(Reply::ToolCalls(vec![
        ScriptedCall::new("fx__echo", json!({"message": "again"})),
    ])))])
    .await?;
    let agent = Agent::builder(llm(&scripted)?)
        .registry(registry.clone())
        .tools(ToolSelection::globs(["echo"])?)
        .max_steps(3)
        .build()?;
    let err = agent.run("loop").await.unwrap_err();
    let AgentError::Limit {
        limit,
        value,
        transcript,
    } = &err
    else {
        panic!("expected a limit, got {err}");
    };
    assert_eq!((*limit, *value), ("max_steps", 3));
    assert_eq!(transcript.model_calls, 3);
    assert_eq!(transcript.steps.len(), 3);
    assert!(err.to_string().contains("max_steps"), "{err}");
    assert_eq!(scripted.request_count(), 3);
    // Only the selected tool was offered.
    let offered: Vec<_> = scripted.requests()[0]["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["function"]["name"].clone())
        .collect();
    assert_eq!(offered, [json!("fx__echo")]);
    let tight = Agent::builder(llm(&scripted)?)
        .registry(registry.clone())
        .limits(Limits {
            max_tool_calls: 2,
            ..Limits::default()
        })
        .build()?;
    let err = tight.run("loop").await.unwrap_err();
    assert!(
        matches!(
            err,
            AgentError::Limit {
                limit: "max_tool_calls",
                ..
            }
        ),
        "{err}"
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn chat_keeps_the_history_across_turns() -> anyhow::Result<()> {
    let scripted = ScriptedLlm::start([Reply::Repeat(Box::new(Reply::Echo))]).await?;
    let agent = Agent::builder(llm(&scripted)?)
        .instructions("Be brief.")
        .build()?;
    let mut history = Vec::new();
    assert_eq!(agent.chat(&mut history, "first").await?.answer, "first");
    assert_eq!(agent.chat(&mut history, "second").await?.answer, "second");
    // system, user, assistant, user, assistant
    assert_eq!(history.len(), 5);
    let last = &scripted.requests()[1]["messages"];
    assert_eq!(last[0]["role"], "system");
    assert_eq!(last[2]["content"], "first");
    Ok(())
}

#[tokio::test]
async fn a_large_selection_is_narrowed_to_the_relevant_tools_and_used_ones_stay()
-> anyhow::Result<()> {
    let servers = vec![FixtureServer::start(FixtureOptions::new()).await?];
    let registry = mesh(&servers).await?;
    let scripted = ScriptedLlm::start([
        Reply::ToolCalls(vec![ScriptedCall::new("fx__sleep", json!({"ms": 1}))]),
        Reply::Text("done".into()),
    ])
    .await?;
    let agent = Agent::builder(llm(&scripted)?)
        .registry(registry.clone())
        .max_tools(2)
        .build()?;
    let offered = |n: usize| -> Vec<String> {
        scripted.requests()[n]["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
            .collect()
    };
    agent
        .run("Return my message unchanged: echo it back")
        .await?;
    let first = offered(0);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.contains(&"fx__echo".to_owned()), "{first:?}");
    assert!(!first.contains(&"fx__sleep".to_owned()), "{first:?}");
    // The second step keeps the tool the run used, beside the two most relevant.
    let second = offered(1);
    assert!(second.contains(&"fx__sleep".to_owned()), "{second:?}");
    assert!(second.len() <= 3, "{second:?}");
    registry.shutdown().await;
    Ok(())
}

/// Denies the counter (a human said no), rewrites echo's message, and counts callbacks.
#[derive(Default)]
struct Gate {
    results: std::sync::Mutex<Vec<String>>,
    responses: std::sync::atomic::AtomicU32,
}

impl toolmesh_agent::Hooks for Gate {
    async fn before_tool_call(
        &self,
        call: toolmesh_agent::PendingCall<'_>,
    ) -> toolmesh_agent::Verdict {
        match call.tool {
            "fx__counter" => toolmesh_agent::Verdict::Deny("a human declined it".into()),
            "fx__echo" => toolmesh_agent::Verdict::Rewrite(
                json!({"message": "rewritten"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
            _ => toolmesh_agent::Verdict::Allow,
        }
    }

    async fn after_tool_result(&self, step: &toolmesh_agent::ToolStep) {
        self.results
            .lock()
            .unwrap()
            .push(format!("{}={}", step.tool, step.output));
    }

    async fn after_model_response(
        &self,
        _step: u32,
        _message: &toolmesh_agent::openai::ChatCompletionResponseMessage,
    ) {
        self.responses
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn hooks_deny_rewrite_and_observe_tool_calls() -> anyhow::Result<()> {
    let servers = vec![FixtureServer::start(FixtureOptions::new()).await?];
    let registry = mesh(&servers).await?;
    let scripted = ScriptedLlm::start([
        Reply::ToolCalls(vec![
            ScriptedCall::new("fx__counter", json!({})),
            ScriptedCall::new("fx__echo", json!({"message": "original"})),
        ]),
        Reply::Text("ok".into()),
    ])
    .await?;
    let gate = std::sync::Arc::new(Gate::default());
    let agent = Agent::builder(llm(&scripted)?)
        .registry(registry.clone())
        .hooks(gate.clone())
        .build()?;
    let run = agent.run("count and echo").await?;
    assert!(
        run.steps[0].is_error && run.steps[0].output.contains("a human declined it"),
        "{:?}",
        run.steps[0]
    );
    assert_eq!(run.steps[1].output, "rewritten");
    assert_eq!(run.steps[1].arguments, json!({"message": "rewritten"}));
    assert_eq!(
        *gate.results.lock().unwrap(),
        [
            "fx__counter=error: the call was not run: a human declined it",
            "fx__echo=rewritten"
        ]
    );
    assert_eq!(gate.responses.load(std::sync::atomic::Ordering::SeqCst), 2);
    // The denied counter never ran: its first count is still 1.
    let count = registry
        .call("fx__counter", None, &toolmesh_core::CallContext::default())
        .await?;
    assert_eq!(
        count.result.structured_content.unwrap_or_default()["count"],
        1
    );
    registry.shutdown().await;
    Ok(())
}

fn script() -> Vec<Reply> {
    vec![
        Reply::ToolCalls(vec![
            ScriptedCall::new("fx__add", json!({"a": 1, "b": 2})).with_id("call_a"),
            ScriptedCall::new("fx__echo", json!({"message": "both"})).with_id("call_b"),
        ]),
        Reply::ToolCalls(vec![
            ScriptedCall::new("fx__echo", json!({"message": "alone"})).with_id("call_c"),
        ]),
        Reply::Text("The answer, streamed in several pieces.".into()),
    ]
}

/// What a run did, without timings and instances.
fn shape(
    steps: &[toolmesh_agent::ToolStep],
) -> Vec<(u32, String, String, serde_json::Value, String)> {
    steps
        .iter()
        .map(|s| {
            (
                s.step,
                s.call_id.clone(),
                s.tool.clone(),
                s.arguments.clone(),
                s.output.clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn streaming_and_plain_runs_give_the_same_transcript() -> anyhow::Result<()> {
    use futures::StreamExt;
    let servers = vec![FixtureServer::start(FixtureOptions::new()).await?];
    let registry = mesh(&servers).await?;
    let plain = ScriptedLlm::start(script()).await?;
    let agent = Agent::builder(llm(&plain)?)
        .registry(registry.clone())
        .build()?;
    let expected = agent.run("go").await?;

    // Some servers omit the index of a single call's chunks: tolerated.
    let streamed = ScriptedLlm::builder()
        .omit_stream_index(true)
        .start(script())
        .await?;
    let agent = Agent::builder(llm(&streamed)?)
        .registry(registry.clone())
        .build()?;
    let mut events = std::pin::pin!(agent.stream("go"));
    let (mut text, mut started, mut results, mut steps) = (String::new(), Vec::new(), 0, 0);
    let mut done = None;
    while let Some(event) = events.next().await {
        match event {
            toolmesh_agent::AgentEvent::Text(t) => text.push_str(&t),
            toolmesh_agent::AgentEvent::ToolCall { tool, .. } => started.push(tool),
            toolmesh_agent::AgentEvent::ToolResult(_) => results += 1,
            toolmesh_agent::AgentEvent::Step { .. } => steps += 1,
            toolmesh_agent::AgentEvent::Done(outcome) => done = Some(outcome?),
            _ => {}
        }
    }
    let run = done.ok_or_else(|| anyhow::anyhow!("no Done event"))?;
    assert_eq!(run.answer, expected.answer);
    assert_eq!(
        text, expected.answer,
        "the text arrived as deltas that add up to the answer"
    );
    assert_eq!(shape(&run.steps), shape(&expected.steps));
    assert_eq!(started, ["fx__add", "fx__echo", "fx__echo"]);
    assert_eq!((results, steps), (3, 2));
    assert!(streamed.requests().iter().all(|r| r["stream"] == true));
    assert!(
        plain
            .requests()
            .iter()
            .all(|r| r.get("stream").is_none_or(|s| s != true))
    );
    // The messages fed back to the model are the same on both paths.
    assert_eq!(
        streamed.requests()[2]["messages"],
        plain.requests()[2]["messages"]
    );
    registry.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_agent_asking_for_a_capability_is_served_by_the_instance_declaring_it()
-> anyhow::Result<()> {
    let servers = vec![
        FixtureServer::start(FixtureOptions::new().instance_id("fx-1")).await?,
        FixtureServer::start(FixtureOptions::new().instance_id("fx-2")).await?,
        FixtureServer::start(FixtureOptions::new().instance_id("fx-3")).await?,
    ];
    let mut spec = service(&servers);
    spec.strategy = Strategy::CapabilityMatch;
    for instance in &mut spec.instances {
        instance.priority = 1;
    }
    spec.instances[1].capabilities = vec!["gpu".into()];
    spec.instances[2].capabilities = vec!["gpu".into(), "eu".into()];
    let registry = Registry::from_specs(vec![spec], RegistryOptions::default()).await?;
    let call = Reply::ToolCalls(vec![ScriptedCall::new("fx__echo", json!({"message": "m"}))]);
    let scripted = ScriptedLlm::start([
        call.clone(),
        Reply::Text("a".into()),
        call.clone(),
        Reply::Text("b".into()),
        call,
        Reply::Text("c".into()),
    ])
    .await?;
    let served_by = async |capabilities: &[&str]| -> anyhow::Result<Option<String>> {
        let agent = Agent::builder(llm(&scripted)?)
            .registry(registry.clone())
            .capabilities(capabilities.iter().copied())
            .build()?;
        Ok(agent.run("echo").await?.steps[0].instance.clone())
    };
    assert_eq!(served_by(&["gpu", "eu"]).await?.as_deref(), Some("fx-3"));
    assert_eq!(served_by(&["eu"]).await?.as_deref(), Some("fx-3"));
    let gpu = served_by(&["gpu"]).await?;
    assert!(matches!(gpu.as_deref(), Some("fx-2" | "fx-3")), "{gpu:?}");
    registry.shutdown().await;
    Ok(())
}
